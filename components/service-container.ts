import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { FILES, SERVICE_UID } from "./render/paths";

/** tini, from the image: forwards the stop signal to the start script's process and reaps orphans. */
const TINI = "/usr/bin/tini";

/** A rendered file shipped into a container, owned by the service user; secret files are 0600. */
export interface ServiceFile {
    readonly path: string;
    readonly content: pulumi.Input<string>;
    readonly secret?: boolean;
}

export interface ServiceContainerArgs {
    /** Docker container name; other containers reach this one by it. */
    readonly containerName: string;
    readonly image: pulumi.Input<string>;
    readonly network: pulumi.Input<string>;
    /** Extra names the container answers to on the network, besides its own. */
    readonly aliases?: string[];
    readonly startScript: string;
    readonly files: readonly ServiceFile[];
    /** Named volume mounted at `mountPath`, if the service keeps data. */
    readonly volume?: { readonly name: pulumi.Input<string>; readonly mountPath: string };
    /** Host port to publish, if any; the port is always reachable on the cluster network. */
    readonly publish?: { readonly internal: number; readonly external: number; readonly ip: string };
    /** Health check command (exec form), cheap enough to run every 2 s; `pulumi up` waits until it passes. */
    readonly healthcheck: string[];
    /** Seconds `pulumi up` waits for the container to turn healthy. */
    readonly healthyWithinSeconds: number;
    readonly stopSignal: string;
    readonly openFilesLimit?: number;
    /**
     * Run the start script under tini as PID 1, which adopts and reaps the
     * helpers it double-forks (pgBackRest's TLS server). Default false.
     */
    readonly init?: boolean;
}

/**
 * The container shape every node of the cluster shares: the program's own
 * files and start script uploaded into a stock image, restarted by Docker
 * unless stopped by hand, and only reported created once healthy.
 */
export function serviceContainer(
    name: string,
    args: ServiceContainerArgs,
    opts: pulumi.CustomResourceOptions,
): docker.Container {
    return new docker.Container(
        name,
        {
            name: args.containerName,
            hostname: args.containerName,
            image: args.image,
            // Never root: the service user from the first process on.
            user: `${SERVICE_UID}:${SERVICE_UID}`,
            entrypoints: [...(args.init ? [TINI, "--"] : []), "/bin/sh", FILES.start],
            uploads: [
                { file: FILES.start, content: args.startScript, permissions: "0755" },
                ...args.files.map((f) => ({ file: f.path, content: f.content, permissions: f.secret ? "0600" : "0644" })),
            ].map((upload) => ({ ...upload, owner: String(SERVICE_UID), group: String(SERVICE_UID) })),
            networksAdvanced: [{ name: args.network, aliases: args.aliases ?? [] }],
            volumes: args.volume ? [{ volumeName: args.volume.name, containerPath: args.volume.mountPath }] : [],
            ports: args.publish ? [args.publish] : [],
            healthcheck: {
                tests: ["CMD", ...args.healthcheck],
                // Short, because `pulumi up` waits for the first passing check and
                // engines before Docker 25 ignore startInterval.
                interval: "2s",
                startPeriod: `${args.healthyWithinSeconds}s`,
                timeout: "5s",
                retries: 3,
            },
            wait: true,
            waitTimeout: args.healthyWithinSeconds,
            restart: "unless-stopped",
            stopSignal: args.stopSignal,
            stopTimeout: 60,
            ulimits: args.openFilesLimit
                ? [{ name: "nofile", soft: args.openFilesLimit, hard: args.openFilesLimit }]
                : [],
        },
        {
            ...opts,
            // The container name is fixed, so the old container must go before its replacement starts.
            deleteBeforeReplace: true,
        },
    );
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
