import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { FILES, SERVICE_UID } from "./render/paths";
import { PREFLIGHT_FILE, renderPreflight } from "./render/shell-scripts";
import { dockerCpus, type NodeResources } from "./sizing";

/** tini, from the image: forwards the stop signal to the start script's process and reaps orphans. */
const TINI = "/usr/bin/tini";

/**
 * A name lookup gives up after one second, once. Docker's DNS answers for the
 * running containers at once but forwards the name of a stopped one upstream;
 * with glibc's defaults (5 s, twice) a replica's WAL receiver would block on
 * the dead leader's name for 10 s, and promotion waits for it to exit.
 */
const DNS_OPTIONS = ["timeout:1", "attempts:1"] as const;

/** Seconds between two health checks of a service container. */
const HEALTH_CHECK_INTERVAL_SECONDS = 5;

/** A rendered file shipped into a container, owned by the service user; secret files are 0600. */
export interface ServiceFile {
    readonly path: string;
    readonly content: pulumi.Input<string>;
    readonly secret?: boolean;
}

/** A named volume mounted at `mountPath`. */
export interface VolumeMount {
    readonly name: pulumi.Input<string>;
    readonly mountPath: string;
    /** The service only reads it. Default false. */
    readonly readOnly?: boolean;
}

export interface ServiceContainerArgs {
    /** Docker container name; other containers reach this one by it. */
    readonly containerName: string;
    readonly image: pulumi.Input<string>;
    readonly network: pulumi.Input<string>;
    /** Extra names the container answers to on the network, besides its own. */
    readonly aliases?: string[];
    /** Entries added to the container's /etc/hosts. */
    readonly hosts?: ReadonlyArray<{ readonly host: string; readonly ip: string }>;
    readonly startScript: string;
    readonly files: readonly ServiceFile[];
    /** Named volumes, where the service keeps data or reads files written by a command. Default none. */
    readonly volumes?: readonly VolumeMount[];
    /** Host port to publish, if any; the port is always reachable on the cluster network. */
    readonly publish?: { readonly internal: number; readonly external: number; readonly ip: string };
    /** Health check command (exec form), run every `HEALTH_CHECK_INTERVAL_SECONDS`; `pulumi up` waits until it passes. */
    readonly healthcheck: string[];
    /** Seconds `pulumi up` waits for the container to turn healthy. */
    readonly healthyWithinSeconds: number;
    readonly stopSignal: string;
    /**
     * Seconds the service gets to shut down cleanly after `stopSignal` before
     * Docker kills it, both when `pulumi up` deletes or replaces the container
     * and on a `docker stop`. A clean stop usually takes far less; this is the
     * bound, so it costs nothing when the service is quick.
     */
    readonly stopGraceSeconds: number;
    readonly openFilesLimit?: number;
    /** Memory and CPU limits; unset, the container may use the whole host. */
    readonly resources?: NodeResources;
    /**
     * Run the start script under tini as PID 1, which adopts and reaps the
     * helpers it double-forks (pgBackRest's TLS server). Default false.
     */
    readonly init?: boolean;
    /**
     * Label the container with its replacementDigest (REPLACEMENT_DIGEST_LABEL),
     * so that a command can tell whether an update replaces the running
     * container. Default false.
     */
    readonly labelReplacementDigest?: boolean;
}

/**
 * The container shape every node of the cluster shares: the program's own
 * files and start script uploaded into a stock image, restarted by Docker
 * unless stopped by hand, and only reported created once healthy.
 */
export function serviceContainer(name: string, args: ServiceContainerArgs, opts: pulumi.CustomResourceOptions): docker.Container {
    return new docker.Container(name, containerInputs(args), {
        ...opts,
        // The container name is fixed, so the old container must go before its replacement starts.
        deleteBeforeReplace: true,
        customTimeouts: containerTimeouts(args.healthyWithinSeconds, args.stopGraceSeconds),
    });
}

/** The label on a container whose args ask for it: replacementDigest of those args. */
export const REPLACEMENT_DIGEST_LABEL = "obcms.replacement-digest";

/**
 * A digest of the inputs whose change makes the provider replace the
 * container (secret when any input is). A command that must run before a
 * replacement can follow it: an update in place (a limit, the health check)
 * leaves it as it is.
 */
export function replacementDigest(args: ServiceContainerArgs): pulumi.Output<string> {
    return pulumi.output(replacingInputs(args)).apply((inputs) => createHash("sha256").update(JSON.stringify(inputs)).digest("hex"));
}

/** The inputs serviceContainer gives the provider. */
function containerInputs(args: ServiceContainerArgs): docker.ContainerArgs {
    return {
        ...replacingInputs(args),
        ...(args.labelReplacementDigest ? { labels: [{ label: REPLACEMENT_DIGEST_LABEL, value: replacementDigest(args) }] } : {}),
        ...inPlaceInputs(args),
    };
}

/** The inputs the provider's schema marks ForceNew: a change to any replaces the container. */
export function replacingInputs(args: ServiceContainerArgs): docker.ContainerArgs {
    const uploads = [
        { file: FILES.start, content: args.startScript, permissions: "0755" },
        ...args.files.map((f) => ({ file: f.path, content: f.content, permissions: f.secret ? "0600" : "0644" })),
    ];
    const preflight = renderPreflight(
        uploads.map((u) => u.file),
        FILES.start,
    );
    return {
        name: args.containerName,
        hostname: args.containerName,
        image: args.image,
        // Never root: the service user from the first process on.
        user: `${SERVICE_UID}:${SERVICE_UID}`,
        entrypoints: [...(args.init ? [TINI, "--"] : []), "/bin/sh", PREFLIGHT_FILE],
        uploads: [{ file: PREFLIGHT_FILE, content: preflight, permissions: "0755" }, ...uploads].map((upload) => ({
            ...upload,
            owner: String(SERVICE_UID),
            group: String(SERVICE_UID),
        })),
        networksAdvanced: [{ name: args.network, aliases: args.aliases ?? [] }],
        hosts: args.hosts ? [...args.hosts] : undefined,
        dnsOpts: [...DNS_OPTIONS],
        volumes: (args.volumes ?? []).map((v) => ({ volumeName: v.name, containerPath: v.mountPath, readOnly: v.readOnly })),
        ports: args.publish ? [args.publish] : [],
        stopSignal: args.stopSignal,
        stopTimeout: args.stopGraceSeconds,
        ulimits: args.openFilesLimit ? [{ name: "nofile", soft: args.openFilesLimit, hard: args.openFilesLimit }] : [],
        // /dev/shm, where PostgreSQL's parallel queries keep their dynamic shared memory, as large as the memory
        // limit instead of Docker's 64MB: its pages are charged to the container's memory anyway.
        ...(args.resources ? { cpus: dockerCpus(args.resources.cpus), shmSize: args.resources.memoryMb } : {}),
    };
}

/**
 * The inputs the provider updates in place: the health check and the wait
 * for it, the restart policy, the delete's grace, the memory limits. Swap
 * equal to memory means none: a database paging to swap is slower than one
 * that fails.
 */
export function inPlaceInputs(args: ServiceContainerArgs): Partial<docker.ContainerArgs> {
    return {
        healthcheck: {
            tests: ["CMD", ...args.healthcheck],
            // `pulumi up` waits for the first passing check, and engines before
            // Docker 25 drop startInterval (and read it back as 0s, a diff on every
            // preview), so one interval serves the start and the long run. Each
            // check is a process started in the container: production at rest on
            // 2 cores was 73% busy with checks every 2 s, 36% every 5 s, 24% every
            // 10 s; it came up in 54 s, 55 s and 86 s.
            interval: dockerDuration(HEALTH_CHECK_INTERVAL_SECONDS),
            startPeriod: dockerDuration(args.healthyWithinSeconds),
            timeout: dockerDuration(5),
            retries: 3,
        },
        wait: true,
        waitTimeout: args.healthyWithinSeconds,
        restart: "unless-stopped",
        // The provider stops a container it deletes with this timeout, not stopTimeout: unset, it kills at once.
        destroyGraceSeconds: args.stopGraceSeconds,
        ...(args.resources ? { memory: args.resources.memoryMb, memorySwap: args.resources.memoryMb } : {}),
    };
}

/** Headroom for what a create does besides waiting for health (uploads, start) and a delete besides the grace (removal). */
const TIMEOUT_MARGIN_SECONDS = 120;

/**
 * The provider's create, update and delete are each cut off at 20 minutes
 * unless the resource sets its own timeouts; a container's are derived from
 * how long it may take to turn healthy and to stop.
 */
export function containerTimeouts(healthyWithinSeconds: number, stopGraceSeconds: number): pulumi.CustomTimeouts {
    return {
        create: dockerDuration(healthyWithinSeconds + TIMEOUT_MARGIN_SECONDS),
        update: dockerDuration(TIMEOUT_MARGIN_SECONDS),
        delete: dockerDuration(stopGraceSeconds + TIMEOUT_MARGIN_SECONDS),
    };
}

/**
 * Whole seconds as Go's `time.Duration.String()` writes them ("2s", "5m0s",
 * "1h30m0s"): the provider reads health-check durations back in that form, so
 * any other spelling of the same duration shows as a change in every preview.
 */
export function dockerDuration(seconds: number): string {
    if (!Number.isInteger(seconds) || seconds < 0) {
        throw new Error(`a Docker duration is a whole number of seconds, got ${seconds}`);
    }
    if (seconds === 0) {
        return "0s";
    }
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const sec = seconds % 60;
    if (h > 0) {
        return `${h}h${m}m${sec}s`;
    }
    return m > 0 ? `${m}m${sec}s` : `${sec}s`;
}

export interface Endpoint {
    readonly host: pulumi.Output<string>;
    readonly port: pulumi.Output<number>;
}

/**
 * Where clients reach `internal`: the host port Docker published, as the
 * provider reports it, at `publishedHost`; or, when the port is not published,
 * the container by name on the cluster network.
 */
export function serviceEndpoint(container: docker.Container, internal: number, publishedHost?: string): Endpoint {
    if (publishedHost === undefined) {
        return { host: container.name, port: pulumi.output(internal) };
    }
    const port = container.ports.apply((ports) => {
        const external = ports?.find((p) => p.internal === internal)?.external;
        if (external === undefined) {
            throw new Error(`container publishes no host port for ${internal}`);
        }
        return external;
    });
    return { host: pulumi.output(publishedHost), port };
}
