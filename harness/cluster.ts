// startStack: brings up, on the local Docker engine, exactly what the program
// declares for a stack (see docker-mocks.ts), and hands back its outputs.
import { randomBytes } from "node:crypto";
import { readSettings } from "../components/config";
import type { ClusterSettings } from "../components/settings";
import { clusterTopology, type Topology } from "../components/topology";
import { DockerMocks, type StoppedContainer } from "./docker-mocks";
import { resolveAll } from "./outputs";
import type { PlannedStep } from "./preview";
import { runProgram } from "./program";
import { projectName, type StackName } from "./stack-config";

/**
 * The stack outputs, resolved: the same keys as `pulumi stack output`, with
 * servers that are not published on the host addressed by their container's
 * IP on the cluster network instead of its name.
 */
export interface StackOutputs {
    readonly databaseUrl: string;
    readonly readonlyDatabaseUrl: string;
    /** The cluster's Docker network, and the URLs for containers on it. */
    readonly networkName: string;
    readonly networkDatabaseUrl: string;
    readonly networkReadonlyDatabaseUrl: string;
    readonly pgbouncerAdminUrl: string;
    /** Superuser URLs, direct to each member, keyed by member name (`pg-1`, ...). */
    memberUrls: Record<string, string>;
    /** PEM of the stack's CA certificate. */
    readonly caCertificate: string;
    readonly replicaCount: number;
    readonly poolSize: number;
    /** `volume:<name>` or the S3 location of the backup repository. */
    readonly backupRepository: string;
    /** Newest backup when the backup container was created. */
    readonly lastBackupLabel: string;
    readonly backupPassphrase: string;
    /** Present while monitoring is enabled. */
    readonly prometheusUrl?: string;
    /** Present while monitoring and Grafana are enabled. */
    readonly grafanaUrl?: string;
    readonly grafanaAdminPassword?: string;
}

export interface StartedStack {
    readonly outputs: StackOutputs;
    /** The validated settings the program ran with, as `readSettings` read them. */
    readonly settings: ClusterSettings;
    /** The model the program built its resources from: every member's and service's names. */
    readonly topology: Topology;
    /** Prefix of the stack's Docker names (`<project>-<stack name>`). */
    readonly clusterName: string;
    /**
     * Looks the unpublished servers' addresses up again, after a test moved a
     * container on the network (a reconnected container may get a new one).
     */
    readonly refreshAddresses: () => Promise<void>;
    /**
     * `pulumi up` with changed config, as the providers apply it (see
     * provider-model.ts): unchanged resources kept, changed ones updated in
     * place or replaced, the ones no longer declared deleted. Outputs follow.
     * `replace` names resources replaced whatever changed, as `pulumi up
     * --replace` does (and the tls provider does with a certificate due for
     * renewal). Returns what it did to each resource it touched.
     */
    readonly update: (overrides: Record<string, unknown>, options?: UpdateOptions) => Promise<PlannedStep[]>;
    /** How a container stopped when `update` last deleted it (by Docker name), if one did. */
    readonly stopped: (containerName: string) => StoppedContainer | undefined;
    /** Removes every container, volume and network the stack created. */
    readonly stop: () => Promise<void>;
}

export interface UpdateOptions {
    /** Resource names to replace whatever changed (`pulumi up --replace`). */
    readonly replace?: readonly string[];
}

export interface StartOptions {
    /** Config values set on top of the stack file, as `pulumi config set` would. */
    readonly overrides?: Record<string, unknown>;
    /** How the program is imported afresh for each run; see `ProgramOptions.importProgram`. */
    readonly importProgram?: () => Promise<Record<string, unknown>>;
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
    let settings: ClusterSettings | undefined;
    const declare = async (overrides: Record<string, unknown> | undefined): Promise<StackOutputs> => {
        const { exports } = await runProgram({ stack, stackName, overrides, mocks, importProgram: options.importProgram });
        // The config the program just read, read again the same way.
        settings = readSettings();
        return (await Promise.race([resolveAll(exports), mocks.failure])) as unknown as StackOutputs;
    };
    try {
        let resolved = await declare(options.overrides);
        const outputs = { ...resolved };
        const refreshAddresses = async () => {
            const reachable = (url: string) => mocks.reachableFromHost(url);
            const memberUrls = await Promise.all(
                Object.entries(resolved.memberUrls).map(async ([name, url]) => [name, await reachable(url)]),
            );
            Object.assign(outputs, resolved, { memberUrls: Object.fromEntries(memberUrls) });
        };
        const update = async (overrides: Record<string, unknown>, updateOptions: UpdateOptions = {}) => {
            mocks.beginUpdate(updateOptions.replace);
            resolved = await declare({ ...options.overrides, ...overrides });
            const steps = await mocks.finishUpdate();
            await refreshAddresses();
            return steps;
        };
        await refreshAddresses();
        return {
            outputs,
            get settings() {
                return settings as ClusterSettings;
            },
            get topology() {
                return clusterTopology(settings as ClusterSettings);
            },
            clusterName: `${projectName()}-${stackName}`,
            refreshAddresses,
            update,
            stopped: (containerName) => mocks.stopped(containerName),
            stop,
        };
    } catch (error) {
        if (!process.env.KEEP) await stop();
        throw error;
    }
}
