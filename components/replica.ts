import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RoleCredential } from "./credentials";
import { postgresAccess, postgresContainer } from "./postgres-node";
import type { Primary } from "./primary";
import {
    createSlotCommand,
    dropSlotCommand,
    nodeNames,
    postgresParameters,
    replicaNode,
    slotName,
    standbyParameters,
} from "./render/cluster";
import { renderPgpass } from "./render/credential-files";
import { FILES } from "./render/paths";
import { renderPostgresqlConf } from "./render/postgresql-conf";
import { renderReplicaStart } from "./render/start-scripts";
import { type ClusterSettings, POSTGRES_PORT, ROLES, replicaHostPort } from "./settings";
import type { NodeTls } from "./tls";

export interface ReplicaArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** 1-based position of this replica; names its container, volume and slot. */
    readonly index: number;
    /** Image with PostgreSQL's binaries and a `postgres` user. */
    readonly image: pulumi.Input<string>;
    /** Docker network shared with the primary. */
    readonly network: pulumi.Input<string>;
    /** The primary to clone and stream from. */
    readonly primary: Primary;
    readonly replication: RoleCredential;
    /** Superuser credential, for the operators' direct URL. */
    readonly superuser: RoleCredential;
    /** This replica's certificate and the cluster CA, which it also checks the primary against. */
    readonly tls: NodeTls;
    /** Secret: the backup repository's passphrase (pgBackRest encrypts the WAL it archives). */
    readonly backupPassphrase: pulumi.Output<string>;
}

/** How many times a fresh replica tries to reach the primary, 2 s apart, before Docker restarts it. */
const CLONE_ATTEMPTS = 30;

/**
 * A hot standby: its slot is created on the primary first, then it clones the
 * primary through that slot on an empty volume and streams from it; removing
 * the replica from the stack drops the slot again.
 */
export class Replica extends pulumi.ComponentResource {
    public readonly containerName: pulumi.Output<string>;
    public readonly slotName: pulumi.Output<string>;
    /** Host and port for operators: published on the host, or the container on the cluster network. */
    public readonly host: pulumi.Output<string>;
    public readonly port: pulumi.Output<number>;
    /** Secret: superuser URL, direct to this replica, for operators. */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: ReplicaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Replica", name, args, opts);
        const s = args.settings;
        const names = nodeNames(s);
        const containerName = names.replica(args.index);

        const slot = new command.local.Command(
            `${name}-slot`,
            { create: createSlotCommand(s, args.index), delete: dropSlotCommand(s, args.index) },
            { parent: this, dependsOn: [args.primary] },
        );

        // Removed with the replica: a later replica of the same index clones afresh
        // instead of resuming from WAL its dropped slot no longer holds.
        const volume = new docker.Volume(`${name}-data`, { name: names.volume(containerName) }, { parent: this });

        const pgpass = pulumi.secret(
            args.replication.password.apply((password) =>
                renderPgpass([{ host: names.primary, port: POSTGRES_PORT, database: "*", user: ROLES.replication, password }]),
            ),
        );

        const container = postgresContainer(
            `${name}-container`,
            {
                settings: s,
                containerName,
                image: args.image,
                network: args.network,
                aliases: [names.replicas],
                startScript: renderReplicaStart({
                    primaryHost: names.primary,
                    primaryPort: POSTGRES_PORT,
                    replicationUser: ROLES.replication,
                    slotName: slotName(args.index),
                    cloneAttempts: CLONE_ATTEMPTS,
                }),
                files: [
                    {
                        path: FILES.postgresqlConf,
                        content: renderPostgresqlConf({
                            ...postgresParameters(s, replicaNode(args.index)),
                            ...standbyParameters(s, args.index),
                        }),
                    },
                    { path: FILES.pgpass, content: pgpass, secret: true },
                ],
                tls: args.tls,
                backupPassphrase: args.backupPassphrase,
                volumeName: volume.name,
                hostPort: replicaHostPort(s, args.index),
                // A clone of a large primary takes a while.
                healthyWithinSeconds: 1800,
            },
            { parent: this, dependsOn: [slot] },
        );

        this.containerName = container.name;
        this.slotName = pulumi.output(slot.stdout).apply(() => slotName(args.index));
        ({ host: this.host, port: this.port, url: this.url } = postgresAccess(container, s, args.superuser));
        this.registerOutputs({
            containerName: this.containerName,
            slotName: this.slotName,
            host: this.host,
            port: this.port,
            url: this.url,
        });
    }
}
