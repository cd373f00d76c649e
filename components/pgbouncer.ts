import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { credentialUrl, type RoleCredential } from "./credentials";
import { renderPgpass, renderUserlist } from "./render/credentials/credential-files";
import { renderHaproxyCfg } from "./render/haproxy/haproxy-cfg";
import { FILES, PGBOUNCER_RELOADABLE_DIR, SOCKET_DIR } from "./render/paths";
import { pgbouncerCertificateCommand } from "./render/pgbouncer/certificate-command";
import { pgbouncerConfig, pgbouncerReloadableSettings, pgbouncerVolumeTarget, routeHosts, routerConfig } from "./render/pgbouncer/config";
import { pgbouncerCredentialsCommand, renderCredentialsInput } from "./render/pgbouncer/credentials-command";
import { renderPgbouncerIncluded, renderPgbouncerIni } from "./render/pgbouncer/pgbouncer-ini";
import { pgbouncerSettingsCommand } from "./render/pgbouncer/settings-command";
import { pgbouncerHealthCheck, renderPgbouncerStart } from "./render/pgbouncer/start-script";
import { roleHasVerifierSql, rolePasswordSql } from "./render/postgres/bootstrap-sql";
import { IMAGE_VARIABLE } from "./render/volume-command";
import { serviceContainer, serviceEndpoint } from "./service-container";
import { type ClusterSettings, connectHost, PGBOUNCER_FILE_LIMIT, PGBOUNCER_PORT, pgbouncerUrlSslmode, readonlyDatabase } from "./settings";
import { caFile, certificateOnVolume, type NodeTls } from "./tls";
import { clusterTopology, possibleMembers } from "./topology";

export interface PgBouncerArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Image with PgBouncer's binary and a `postgres` user. */
    readonly image: pulumi.Input<string>;
    /** Docker network on which the members are reachable by name. */
    readonly network: pulumi.Input<string>;
    /** Application role: owner of the read-write and read-only databases' pools. */
    readonly app: RoleCredential;
    /** Admin console user (`admin_users`). */
    readonly admin: RoleCredential;
    /** Stats user (`stats_users`), also a PostgreSQL role. */
    readonly stats: RoleCredential;
    /** PgBouncer's certificate for clients, and the CA it checks servers against. */
    readonly tls: NodeTls;
    /**
     * The cluster's roles, which must exist before PgBouncer logs in for its clients, and before the
     * credentials command gives the application role a new verifier on whichever member leads.
     */
    readonly clusterConfig: pulumi.Resource;
}

/**
 * PgBouncer in front of the cluster, with the router (HAProxy) beside it: the
 * application's database on whichever member leads, its read-only twin
 * spread over the streaming replicas, and the admin console. Its userlist
 * holds verifiers, never passwords; only the admin console's own password is
 * there, in a private password file for operators' tools inside the container.
 * The pool's sizes and waits, the client limit, the userlist and PgBouncer's
 * certificate live on the container's volume, written by commands that have
 * PgBouncer RELOAD them: changing them keeps every client, and neither a
 * rotated application password nor a renewed certificate restarts anything.
 */
export class PgBouncer extends pulumi.ComponentResource {
    public readonly containerName: pulumi.Output<string>;
    public readonly host: pulumi.Output<string>;
    public readonly port: pulumi.Output<number>;
    /** Secret: read-write URL for the application. */
    public readonly databaseUrl: pulumi.Output<string>;
    /** Secret: read-only URL, load-balanced over the replicas. */
    public readonly readonlyDatabaseUrl: pulumi.Output<string>;
    /** Secret: `databaseUrl` for containers on the cluster network, naming PgBouncer's container. */
    public readonly networkDatabaseUrl: pulumi.Output<string>;
    /** Secret: `readonlyDatabaseUrl` for containers on the cluster network. */
    public readonly networkReadonlyDatabaseUrl: pulumi.Output<string>;
    /** Secret: admin console URL. */
    public readonly adminUrl: pulumi.Output<string>;

    constructor(name: string, args: PgBouncerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:PgBouncer", name, args, opts);
        const s = args.settings;
        const users = [args.app, args.admin, args.stats];

        const userlist = pulumi.secret(
            pulumi
                .all(users.map((u) => u.verifier))
                .apply((verifiers) => renderUserlist(users.map((u, i) => ({ user: u.user, secret: verifiers[i] })))),
        );

        // For the admin console over PgBouncer's socket inside its container (scripts/cluster.sh holds clients
        // with PAUSE there, the settings command reloads): whoever can exec into the container can read its files anyway.
        const adminPgpass = pulumi.secret(
            pulumi
                .output(args.admin.password)
                .apply((password) =>
                    renderPgpass([{ host: SOCKET_DIR, port: PGBOUNCER_PORT, database: "pgbouncer", user: args.admin.user, password }]),
                ),
        );

        // Pool sizes, waits and the client limit: PgBouncer reads them from its volume, where this command writes them, and
        // takes a change by RELOAD; the container, and its clients' connections, stay.
        const t = clusterTopology(s);
        const volume = new docker.Volume(`${name}-settings`, { name: t.pgbouncer.volume }, { parent: this });
        const target = pgbouncerVolumeTarget(s);
        const reloadable = pgbouncerReloadableSettings(s);
        const settingsCommand = new command.local.Command(
            `${name}-settings-reload`,
            {
                create: pgbouncerSettingsCommand(target, reloadable),
                stdin: renderPgbouncerIncluded(reloadable),
                environment: { [IMAGE_VARIABLE]: args.image },
            },
            { parent: this, dependsOn: [volume] },
        );
        // The userlist, and the application role's verifier on the leader, applied together (see
        // pgbouncerCredentialsCommand): a rotated password restarts nothing, and drops no client.
        const credentialsCommand = new command.local.Command(
            `${name}-credentials-reload`,
            {
                create: pgbouncerCredentialsCommand(target, possibleMembers(s), { user: args.app.user, database: s.database }),
                stdin: pulumi.secret(
                    pulumi.all([args.app.password, args.app.verifier, userlist]).apply(([password, verifier, list]) =>
                        renderCredentialsInput({
                            password,
                            sql: rolePasswordSql(args.app.user, verifier),
                            current: roleHasVerifierSql(args.app.user, verifier),
                            userlist: list,
                        }),
                    ),
                ),
                environment: { [IMAGE_VARIABLE]: args.image },
            },
            { parent: this, dependsOn: [volume, args.clusterConfig] },
        );

        // PgBouncer's certificate and key, on its volume: a renewed certificate is a RELOAD, and clients stay.
        const certificateCommand = certificateOnVolume(
            `${name}-certificate-reload`,
            {
                script: pgbouncerCertificateCommand(target, s.clientTlsSslmode !== "disable"),
                certificate: args.tls.certificate,
                image: args.image,
            },
            { parent: this, dependsOn: [volume] },
        );

        const container = serviceContainer(
            `${name}-container`,
            {
                containerName: t.pgbouncer.container,
                image: args.image,
                network: args.network,
                hosts: routeHosts(s),
                startScript: renderPgbouncerStart(),
                files: [
                    { path: FILES.pgbouncerIni, content: renderPgbouncerIni(pgbouncerConfig(s)) },
                    { path: FILES.haproxyCfg, content: renderHaproxyCfg(routerConfig(s)) },
                    { path: FILES.pgpass, content: adminPgpass, secret: true },
                    // The CA, which PgBouncer and the router check the members against; its own certificate is on the volume.
                    caFile(args.tls.caCertPem),
                ],
                volumes: [{ name: volume.name, mountPath: PGBOUNCER_RELOADABLE_DIR, readOnly: true }],
                publish: { internal: PGBOUNCER_PORT, external: s.pgbouncerPort, ip: s.publishAddress },
                healthcheck: pgbouncerHealthCheck(),
                healthyWithinSeconds: 60,
                // Safe shutdown: waits for running transactions, then closes.
                stopSignal: "SIGINT",
                // SIGINT waits for every server connection to be released: the
                // transactions in flight finish, and this bounds the wait.
                stopGraceSeconds: 30,
                openFilesLimit: PGBOUNCER_FILE_LIMIT,
                // The router runs beside PgBouncer, adopted by tini.
                init: true,
            },
            { parent: this, dependsOn: [args.clusterConfig, settingsCommand, credentialsCommand, certificateCommand] },
        );

        this.containerName = container.name;
        const endpoint = serviceEndpoint(container, PGBOUNCER_PORT, connectHost(s));
        this.host = endpoint.host;
        this.port = endpoint.port;
        const sslmode = pgbouncerUrlSslmode(s);
        this.databaseUrl = credentialUrl(args.app, this.host, this.port, s.database, sslmode);
        this.readonlyDatabaseUrl = credentialUrl(args.app, this.host, this.port, readonlyDatabase(s), sslmode);
        this.networkDatabaseUrl = credentialUrl(args.app, this.containerName, PGBOUNCER_PORT, s.database, sslmode);
        this.networkReadonlyDatabaseUrl = credentialUrl(args.app, this.containerName, PGBOUNCER_PORT, readonlyDatabase(s), sslmode);
        this.adminUrl = credentialUrl(args.admin, this.host, this.port, "pgbouncer", sslmode);
        this.registerOutputs({
            containerName: this.containerName,
            host: this.host,
            port: this.port,
            databaseUrl: this.databaseUrl,
            readonlyDatabaseUrl: this.readonlyDatabaseUrl,
            networkDatabaseUrl: this.networkDatabaseUrl,
            networkReadonlyDatabaseUrl: this.networkReadonlyDatabaseUrl,
            adminUrl: this.adminUrl,
        });
    }
}
