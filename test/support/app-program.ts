// Runs the example app stack (examples/app/index.ts) under Pulumi's mocks, with
// config read from its own Pulumi.yaml as the CLI would: defaults, then values.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";
import { parse } from "yaml";
import { recordResourceOptions } from "../../harness/resource-options";
import { PROJECT_ROOT } from "../../harness/stack-config";

export const APP_ROOT = path.join(PROJECT_ROOT, "examples", "app");

interface ProjectFile {
    name: string;
    config: Record<string, { default?: unknown }>;
}

export interface AppProgramOptions {
    /** Stack name given to the program; it names the app's container. */
    readonly stack: string;
    /** Config values (without namespace), as `pulumi config set` would set them. */
    readonly config: Record<string, string | number>;
    readonly mocks: pulumi.runtime.Mocks;
}

/** The example program's exports (its stack outputs), as Outputs. */
export async function runAppProgram(options: AppProgramOptions): Promise<Record<string, unknown>> {
    await pulumi.runtime.disconnect();
    const project = parse(readFileSync(path.join(APP_ROOT, "Pulumi.yaml"), "utf8")) as ProjectFile;
    const values = {
        ...Object.fromEntries(Object.entries(project.config).map(([key, schema]) => [key, schema.default])),
        ...options.config,
    };
    pulumi.runtime.setAllConfig(
        Object.fromEntries(
            Object.entries(values)
                .filter(([, value]) => value !== undefined)
                .map(([key, value]) => [`${project.name}:${key}`, String(value)]),
        ),
    );
    await pulumi.runtime.setMocks(options.mocks, project.name, options.stack, false);
    recordResourceOptions(options.mocks);
    vi.resetModules();
    return (await import("../../examples/app/index")) as Record<string, unknown>;
}
