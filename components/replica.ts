import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RoleCredential } from "./credentials";
import { postgresAccess, postgresContainer } from "./postgres-node";
import type { Primary } from "./primary";
import { renderPgpass } from "./render/credentials/credential-files";
import { FILES } from "./render/paths";
import { postgresParameters, standbyParameters } from "./render/postgres/parameters";
import { renderPostgresqlConf } from "./render/postgres/postgresql-conf";
import { createSlotCommand, dropSlotCommand } from "./render/postgres/slots";
import { renderReplicaStart } from "./render/postgres/start-scripts";
import { type ClusterSettings, POSTGRES_PORT, ROLES, replicaHostPort } from "./settings";
import type { NodeTls } from "./tls";
import { clusterTopology, type ReplicaMember } from "./topology";

export interface ReplicaArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** This replica in the cluster's topology: its names, its slot and its position. */
    readonly member: ReplicaMember;
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
        const { member } = args;
        const topology = clusterTopology(s);
        const primaryHost = topology.primary.container;

        const slot = new command.local.Command(
            `${name}-slot`,
            { create: createSlotCommand(topology.primary, member), delete: dropSlotCommand(topology.primary, member) },
            { parent: this, dependsOn: [args.primary] },
        );

        // Removed with the replica: a later replica of the same index clones afresh
        // instead of resuming from WAL its dropped slot no longer holds.
        const volume = new docker.Volume(`${name}-data`, { name: member.volume }, { parent: this });

        const pgpass = pulumi.secret(
            args.replication.password.apply((password) =>
                renderPgpass([{ host: primaryHost, port: POSTGRES_PORT, database: "*", user: ROLES.replication, password }]),
            ),
        );

        const container = postgresContainer(
            `${name}-container`,
            {
                settings: s,
                containerName: member.container,
                image: args.image,
                network: args.network,
                aliases: [topology.replicasAlias],
                startScript: renderReplicaStart({
                    primaryHost,
                    primaryPort: POSTGRES_PORT,
                    replicationUser: ROLES.replication,
                    slotName: member.slot,
                    cloneAttempts: CLONE_ATTEMPTS,
                }),
                files: [
                    {
                        path: FILES.postgresqlConf,
                        content: renderPostgresqlConf({
                            ...postgresParameters(s, member),
                            ...standbyParameters(topology.primary, member),
                        }),
                    },
                    { path: FILES.pgpass, content: pgpass, secret: true },
                ],
                tls: args.tls,
                backupPassphrase: args.backupPassphrase,
                volumeName: volume.name,
                hostPort: replicaHostPort(s, member.index),
                // A clone of a large primary takes a while.
                healthyWithinSeconds: 1800,
            },
            { parent: this, dependsOn: [slot] },
        );

        this.containerName = container.name;
        this.slotName = pulumi.output(slot.stdout).apply(() => member.slot);
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
