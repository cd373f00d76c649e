// startStack: brings up, on the local Docker engine, exactly what the program
// declares for a stack (see docker-mocks.ts), and hands back its outputs.
import { randomBytes } from "node:crypto";
import { DockerMocks } from "./docker-mocks";
import { resolveAll } from "./outputs";
import { runProgram } from "./program";
import { projectName, StackName } from "./stack-config";

/** The stack outputs, resolved: the same keys as `pulumi stack output`. */
export interface StackOutputs {
    readonly databaseUrl: string;
    readonly readonlyDatabaseUrl: string;
    readonly pgbouncerAdminUrl: string;
    readonly primaryUrl: string;
    readonly replicaUrls: string[];
    readonly replicaCount: number;
    readonly poolSize: number;
}

export interface StartedStack {
    readonly outputs: StackOutputs;
    /** Prefix of the stack's Docker names (`<project>-<stack name>`). */
    readonly clusterName: string;
    /** Deletes the named resources as `pulumi up` would once the program no longer declares them. */
    readonly destroy: (resourceNames: readonly string[]) => Promise<void>;
    /** Removes every container, volume and network the stack created. */
    readonly stop: () => Promise<void>;
}

export interface StartOptions {
    /** Config values set on top of the stack file, as `pulumi config set` would. */
    readonly overrides?: Record<string, unknown>;
}

/**
 * Runs the program for `stack` with its stack file, under a unique stack name
 * (so runs never collide on Docker names), creating every resource for real.
 */
export async function startStack(stack: StackName, options: StartOptions = {}): Promise<StartedStack> {
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
    const stackName = `${stack}-it${randomBytes(3).toString("hex")}`;
    const mocks = new DockerMocks();
    const stop = () => mocks.removeAll();
    try {
        const { exports } = await runProgram({ stack, stackName, overrides: options.overrides, mocks });
        const outputs = (await Promise.race([resolveAll(exports), mocks.failure])) as unknown as StackOutputs;
        return {
            outputs,
            clusterName: `${projectName()}-${stackName}`,
            destroy: (names) => mocks.destroy(names),
            stop,
        };
    } catch (error) {
        await stop();
        throw error;
    }
}
