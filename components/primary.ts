import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RoleCredential } from "./credentials";
import { postgresAccess, postgresContainer } from "./postgres-node";
import { FILES } from "./render/paths";
import { renderBootstrapSql } from "./render/postgres/bootstrap-sql";
import { postgresParameters } from "./render/postgres/parameters";
import { renderPostgresqlConf } from "./render/postgres/postgresql-conf";
import { renderPrimaryStart } from "./render/postgres/start-scripts";
import { type ClusterSettings, ROLES } from "./settings";
import type { NodeTls } from "./tls";
import { clusterTopology } from "./topology";

export interface PrimaryArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Image with PostgreSQL's binaries and a `postgres` user. */
    readonly image: pulumi.Input<string>;
    /** Docker network shared with the replicas and PgBouncer. */
    readonly network: pulumi.Input<string>;
    readonly superuser: RoleCredential;
    readonly app: RoleCredential;
    readonly replication: RoleCredential;
    readonly monitoring: RoleCredential;
    /** The primary's certificate and the cluster CA. */
    readonly tls: NodeTls;
    /** Secret: the backup repository's passphrase (pgBackRest encrypts the WAL it archives). */
    readonly backupPassphrase: pulumi.Output<string>;
}

/**
 * The read-write PostgreSQL server: data on a named volume that outlives the
 * container, roles and database reconciled with the stack on every start.
 */
export class Primary extends pulumi.ComponentResource {
    /** Docker name of the container, which is also its host name on the cluster network. */
    public readonly containerName: pulumi.Output<string>;
    public readonly volumeName: pulumi.Output<string>;
    /** Host and port for operators: published on the host, or the container on the cluster network. */
    public readonly host: pulumi.Output<string>;
    public readonly port: pulumi.Output<number>;
    /** Secret: superuser URL, direct to the primary, for operators. */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: PrimaryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Primary", name, args, opts);
        const s = args.settings;
        const member = clusterTopology(s).primary;

        const volume = new docker.Volume(
            `${name}-data`,
            { name: member.volume },
            // The primary's data outlives `pulumi destroy`: a volume of the same
            // name found by a later `pulumi up` is reused, never initialised over.
            { parent: this, retainOnDelete: true },
        );

        const bootstrapSql = pulumi
            .all([args.superuser.verifier, args.app.verifier, args.replication.verifier, args.monitoring.verifier])
            .apply(([superuser, app, replication, monitoring]) =>
                renderBootstrapSql({
                    superuser: { name: ROLES.superuser, verifier: superuser, attributes: [], memberOf: [] },
                    roles: [
                        { name: s.appUser, verifier: app, attributes: [], memberOf: [] },
                        { name: ROLES.replication, verifier: replication, attributes: ["REPLICATION"], memberOf: [] },
                        { name: ROLES.monitoring, verifier: monitoring, attributes: [], memberOf: ["pg_monitor"] },
                    ],
                    database: s.database,
                    owner: s.appUser,
                    timezone: s.timezone,
                    extensions: ["pg_stat_statements"],
                }),
            );

        const container = postgresContainer(
            `${name}-container`,
            {
                settings: s,
                containerName: member.container,
                image: args.image,
                network: args.network,
                startScript: renderPrimaryStart(),
                files: [
                    { path: FILES.postgresqlConf, content: renderPostgresqlConf(postgresParameters(s, member)) },
                    { path: FILES.bootstrapSql, content: bootstrapSql, secret: true },
                ],
                tls: args.tls,
                backupPassphrase: args.backupPassphrase,
                volumeName: volume.name,
                hostPort: s.primaryPort,
                healthyWithinSeconds: 300,
            },
            { parent: this },
        );

        this.containerName = container.name;
        this.volumeName = volume.name;
        ({ host: this.host, port: this.port, url: this.url } = postgresAccess(container, s, args.superuser));
        this.registerOutputs({
            containerName: this.containerName,
            volumeName: this.volumeName,
            host: this.host,
            port: this.port,
            url: this.url,
        });
    }
}
