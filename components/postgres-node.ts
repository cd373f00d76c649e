// What the primary and the replicas share as containers: pg_hba.conf, TLS
// files, pgBackRest's config, a data volume, the optional host port, the
// health check, the fast shutdown, and how operators reach them.
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { credentialUrl, type RoleCredential } from "./credentials";
import { FILES, PGBACKREST_FILES, SOCKET_DIR, VOLUME_DIR } from "./render/paths";
import { postgresNodePgbackrestConf, renderPgbackrestConf } from "./render/pgbackrest/pgbackrest";
import { hbaSections } from "./render/postgres/hba-rules";
import { renderPgHba } from "./render/postgres/pg-hba";
import { type ServiceContainerArgs, type ServiceFile, serviceContainer, serviceEndpoint } from "./service-container";
import { type ClusterSettings, connectHost, directUrlSslmode, POSTGRES_PORT } from "./settings";
import { type NodeTls, tlsFiles } from "./tls";

export interface PostgresNodeArgs
    extends Pick<ServiceContainerArgs, "containerName" | "image" | "network" | "aliases" | "startScript" | "healthyWithinSeconds"> {
    readonly settings: ClusterSettings;
    /** The node's own files; pg_hba.conf and the TLS files are added here. */
    readonly files: readonly ServiceFile[];
    readonly tls: NodeTls;
    /** Secret: the backup repository's passphrase, for pgBackRest's archive-push and restores. */
    readonly backupPassphrase: pulumi.Output<string>;
    readonly volumeName: pulumi.Input<string>;
    /** Host port used when the stack publishes PostgreSQL's ports. */
    readonly hostPort: number;
}

/** A PostgreSQL server container, primary or replica. */
export function postgresContainer(name: string, args: PostgresNodeArgs, opts: pulumi.CustomResourceOptions): docker.Container {
    const s = args.settings;
    return serviceContainer(
        name,
        {
            containerName: args.containerName,
            image: args.image,
            network: args.network,
            aliases: args.aliases,
            startScript: args.startScript,
            files: [
                ...args.files,
                { path: FILES.pgHba, content: renderPgHba(hbaSections(s)) },
                {
                    path: PGBACKREST_FILES.conf,
                    content: pulumi.secret(args.backupPassphrase.apply((p) => renderPgbackrestConf(postgresNodePgbackrestConf(s, p)))),
                    secret: true,
                },
                ...tlsFiles(args.tls),
            ],
            volume: { name: args.volumeName, mountPath: VOLUME_DIR },
            publish: s.publishPostgresPorts ? { internal: POSTGRES_PORT, external: args.hostPort, ip: s.publishAddress } : undefined,
            healthcheck: ["pg_isready", "-q", "-h", SOCKET_DIR, "-p", String(POSTGRES_PORT)],
            healthyWithinSeconds: args.healthyWithinSeconds,
            // Fast shutdown: SIGTERM would wait for every client to disconnect.
            stopSignal: "SIGINT",
            // Fast shutdown ends with a checkpoint that writes every dirty buffer;
            // killed before it, the next start runs crash recovery.
            stopGraceSeconds: 120,
            // pgBackRest's TLS server runs beside PostgreSQL, adopted by tini.
            init: true,
            // The limits postgresql.conf is sized for.
            resources: s.postgresResources,
        },
        opts,
    );
}

/** Where operators reach a PostgreSQL node, and the superuser URL for it (secret). */
export function postgresAccess(container: docker.Container, s: ClusterSettings, superuser: RoleCredential) {
    const endpoint = serviceEndpoint(container, POSTGRES_PORT, s.publishPostgresPorts ? connectHost(s) : undefined);
    return { ...endpoint, url: credentialUrl(superuser, endpoint.host, endpoint.port, s.database, directUrlSslmode(s)) };
}
