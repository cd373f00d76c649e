// Runs the real program (index.ts) under Pulumi's mocks, the way Pulumi
// documents unit testing: mocks and config first, then a fresh import.
import * as pulumi from "@pulumi/pulumi";
import { recordResourceOptions } from "./resource-options";
import { loadStackConfig, projectName, type StackName } from "./stack-config";

export interface ProgramRun {
    /** The program's exports: the stack outputs, as Outputs. */
    readonly exports: Record<string, unknown>;
}

export interface ProgramOptions {
    readonly stack: StackName;
    /** Stack name given to the program; defaults to `stack`. It prefixes every Docker name. */
    readonly stackName?: string;
    readonly overrides?: Record<string, unknown>;
    /** Config keys (without namespace) to mark secret, as `pulumi config set --secret` does. */
    readonly secretKeys?: readonly string[];
    readonly mocks: pulumi.runtime.Mocks;
    /**
     * Evaluates index.ts afresh and returns its exports. Defaults to vitest's
     * module reset; a run outside vitest (the benchmark, under tsx) passes its own.
     */
    readonly importProgram?: () => Promise<Record<string, unknown>>;
}

/** Inside vitest: drop the module registry, then import the program again. */
async function importWithVitest(): Promise<Record<string, unknown>> {
    // Imported here, not at the top: vitest refuses to load outside its runner.
    const { vi } = await import("vitest");
    vi.resetModules();
    return (await import("../index")) as Record<string, unknown>;
}

export async function runProgram(options: ProgramOptions): Promise<ProgramRun> {
    // Let the previous run's last registrations (e.g. registerOutputs) finish
    // against its own mocks before new mocks replace them.
    await pulumi.runtime.disconnect();
    const project = projectName();
    pulumi.runtime.setAllConfig(
        loadStackConfig(options.stack, options.overrides),
        (options.secretKeys ?? []).map((key) => `${project}:${key}`),
    );
    await pulumi.runtime.setMocks(options.mocks, project, options.stackName ?? options.stack, false);
    recordResourceOptions(options.mocks);
    const exports = await (options.importProgram ?? importWithVitest)();
    return { exports };
}
