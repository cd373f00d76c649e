import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { GENERATED_PASSWORD_LENGTH, type RoleCredential } from "./credentials";
import { renderPgpass } from "./render/credentials/credential-files";
import { alertRules, backupAlertRules, renderAlertRules } from "./render/monitoring/alert-rules";
import {
    backupDashboard,
    clusterDashboard,
    pgbouncerDashboard,
    postgresqlDashboard,
    renderDashboard,
} from "./render/monitoring/grafana-dashboards";
import { renderGrafanaDashboardProviders, renderGrafanaDatasources } from "./render/monitoring/grafana-provisioning";
import { renderPrometheusConfig } from "./render/monitoring/prometheus-config";
import {
    backupScrapeJob,
    etcdScrapeJob,
    exporterConnectionUrl,
    haproxyScrapeJob,
    patroniScrapeJob,
    scrapeJobs,
} from "./render/monitoring/prometheus-targets";
import { renderPgbouncerExporterStart, renderPostgresExporterStart, renderPrometheusStart } from "./render/monitoring/start-scripts";
import { FILES, GRAFANA_DASHBOARDS_DIR, MONITORING_FILES, PROMETHEUS_DATA_DIR } from "./render/paths";
import { containerTimeouts, dockerDuration, serviceContainer, serviceEndpoint } from "./service-container";
import {
    type BackupSettings,
    type ClusterSettings,
    connectHost,
    GRAFANA_PORT,
    type MonitoringSettings,
    PGBOUNCER_EXPORTER_PORT,
    PGBOUNCER_PORT,
    POSTGRES_EXPORTER_PORT,
    POSTGRES_PORT,
    PROMETHEUS_PORT,
} from "./settings";
import { caFile } from "./tls";
import { clusterTopology } from "./topology";

export interface MonitoringArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Validated monitoring settings; `enabled` is the caller's business. */
    readonly monitoring: MonitoringSettings;
    /** The backup schedule, which the backup alerts' thresholds and the backup dashboard follow. */
    readonly backupSettings: BackupSettings;
    /** Image with Prometheus, both exporters, bash and a `postgres` user (the project's image). */
    readonly image: pulumi.Input<string>;
    /** Docker network on which the PostgreSQL nodes and PgBouncer are reachable by name. */
    readonly network: pulumi.Input<string>;
    /** The `monitoring` role: pg_monitor on PostgreSQL, stats user on PgBouncer. */
    readonly credential: RoleCredential;
    /** PEM of the CA that signed the servers' certificates; the exporters and Prometheus (Patroni's API) verify them with it. */
    readonly caCertPem: pulumi.Input<string>;
    /** The primary; its exporter starts once it is up. */
    readonly primary: pulumi.Resource;
    /** Replicas 1..replicaCount, in order; each exporter starts once its replica is up. */
    readonly replicas: readonly pulumi.Resource[];
    /** PgBouncer, with the router (HAProxy) whose metrics Prometheus scrapes; its exporter starts once it is up (the exporter exits when it cannot log in at start). */
    readonly pgbouncer: pulumi.Resource;
    /** The backup container, whose metrics Prometheus scrapes. */
    readonly backup: pulumi.Resource;
    /** The etcd cluster, whose members serve their own metrics. */
    readonly etcd: pulumi.Resource;
}

/** Grafana's uid and gid in the official image: it reads the 0640 root:root password file through group 0. */
const GRAFANA_USER = "472:0";
const GRAFANA_ADMIN = "admin";
const DASHBOARD_FOLDER = "obcms-database";
/** The exporters hold no state: a short grace, for their HTTP server to close. */
const EXPORTER_STOP_GRACE_SECONDS = 10;
/** Grafana closes its SQLite database on SIGTERM. */
const GRAFANA_STOP_GRACE_SECONDS = 30;
const GRAFANA_HEALTHY_WITHIN_SECONDS = 120;

/** A health check that passes once `port` accepts connections (bash's /dev/tcp; no HTTP client in the image). */
function listening(port: number): string[] {
    return ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`];
}

interface GrafanaArgs {
    readonly settings: ClusterSettings;
    readonly monitoring: MonitoringSettings;
    readonly backupSettings: BackupSettings;
    readonly network: pulumi.Input<string>;
    /** Secret. */
    readonly adminPassword: pulumi.Output<string>;
}

/**
 * Grafana from its own image (it has its own entrypoint and user, so not a
 * serviceContainer): the datasource, the dashboard provider and the four
 * dashboards uploaded where its provisioning looks, and the admin password as
 * a file named by GF_SECURITY_ADMIN_PASSWORD__FILE. It keeps no volume: all
 * it shows is provisioned, and a new container applies a new password.
 */
function grafanaContainer(name: string, args: GrafanaArgs, opts: pulumi.CustomResourceOptions): docker.Container {
    const s = args.settings;
    const m = args.monitoring;
    const t = clusterTopology(s);
    const dashboards = [postgresqlDashboard(s, m), pgbouncerDashboard(s, m), clusterDashboard(s), backupDashboard(s, args.backupSettings)];
    return new docker.Container(
        name,
        {
            name: t.grafana.container,
            hostname: t.grafana.container,
            image: m.grafanaImage,
            user: GRAFANA_USER,
            envs: [
                `GF_SECURITY_ADMIN_USER=${GRAFANA_ADMIN}`,
                // A path: the password itself is only in the uploaded file.
                `GF_SECURITY_ADMIN_PASSWORD__FILE=${MONITORING_FILES.grafanaAdminPassword}`,
                "GF_USERS_ALLOW_SIGN_UP=false",
                "GF_ANALYTICS_REPORTING_ENABLED=false",
                "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
                "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
            ],
            uploads: [
                {
                    file: MONITORING_FILES.grafanaDatasources,
                    content: renderGrafanaDatasources({
                        url: `http://${t.prometheus.container}:${PROMETHEUS_PORT}`,
                        scrapeIntervalSeconds: m.scrapeIntervalSeconds,
                    }),
                    permissions: "0644",
                },
                {
                    file: MONITORING_FILES.grafanaDashboardProviders,
                    content: renderGrafanaDashboardProviders({ folder: DASHBOARD_FOLDER, path: GRAFANA_DASHBOARDS_DIR }),
                    permissions: "0644",
                },
                ...dashboards.map((d) => ({
                    file: `${GRAFANA_DASHBOARDS_DIR}/${d.uid}.json`,
                    content: renderDashboard(d),
                    permissions: "0644",
                })),
                { file: MONITORING_FILES.grafanaAdminPassword, content: args.adminPassword, permissions: "0640" },
            ],
            networksAdvanced: [{ name: args.network }],
            ports: [{ internal: GRAFANA_PORT, external: m.grafanaPort, ip: s.publishAddress }],
            healthcheck: {
                // The official image has curl.
                tests: ["CMD", "curl", "-fsS", "-o", "/dev/null", `http://127.0.0.1:${GRAFANA_PORT}/api/health`],
                interval: dockerDuration(5),
                startPeriod: dockerDuration(GRAFANA_HEALTHY_WITHIN_SECONDS),
                timeout: dockerDuration(5),
                retries: 3,
            },
            wait: true,
            waitTimeout: GRAFANA_HEALTHY_WITHIN_SECONDS,
            restart: "unless-stopped",
            stopSignal: "SIGTERM",
            stopTimeout: GRAFANA_STOP_GRACE_SECONDS,
            destroyGraceSeconds: GRAFANA_STOP_GRACE_SECONDS,
        },
        {
            ...opts,
            // The container name is fixed, so the old container must go before its replacement starts.
            deleteBeforeReplace: true,
            customTimeouts: containerTimeouts(GRAFANA_HEALTHY_WITHIN_SECONDS, GRAFANA_STOP_GRACE_SECONDS),
        },
    );
}

/**
 * Observability for the stack: a postgres_exporter per PostgreSQL member and a
 * pgbouncer_exporter, all logging in as the monitoring role through a 0600
 * passfile over verified TLS; Prometheus, published on the host, scraping
 * them, every member's Patroni (over TLS checked against the stack's CA),
 * the router, the backup container and etcd, with the alert rules; and
 * Grafana with its datasource and the four dashboards provisioned.
 * Everything is rendered from the same settings as the cluster.
 */
export class Monitoring extends pulumi.ComponentResource {
    public readonly prometheusUrl: pulumi.Output<string>;
    /** Undefined when Grafana is disabled. */
    public readonly grafanaUrl: pulumi.Output<string> | undefined;
    /** Secret; undefined when Grafana is disabled. */
    public readonly grafanaAdminPassword: pulumi.Output<string> | undefined;

    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:monitoring:Monitoring", name, args, opts);
        const s = args.settings;
        const m = args.monitoring;
        if (args.replicas.length !== s.replicaCount) {
            throw new pulumi.ResourceError(
                `Monitoring needs an exporter target for each of the ${s.replicaCount} replicas the settings declare, got ${args.replicas.length} replica resources`,
                this,
            );
        }
        const t = clusterTopology(s);
        const caCertificate = caFile(args.caCertPem);
        // Same-network TLS, checked against the stack's CA and the server's name.
        const verifyFull = { sslmode: "verify-full", sslrootcert: FILES.tlsCa };
        const pgpass = (host: string, port: number, database: string) =>
            pulumi.secret(
                args.credential.password.apply((password) =>
                    renderPgpass([{ host, port, database, user: args.credential.user, password }]),
                ),
            );

        const nodeResources = [args.primary, ...args.replicas];
        const exporters = t.members.map((member, i) =>
            serviceContainer(
                `${name}-${member.resourceName}-exporter`,
                {
                    containerName: member.exporter,
                    image: args.image,
                    network: args.network,
                    startScript: renderPostgresExporterStart({
                        dataSourceName: exporterConnectionUrl({
                            user: args.credential.user,
                            host: member.container,
                            port: POSTGRES_PORT,
                            database: s.database,
                            params: { application_name: "postgres_exporter", ...verifyFull },
                        }),
                        configFile: MONITORING_FILES.postgresExporterConfig,
                        listenPort: POSTGRES_EXPORTER_PORT,
                    }),
                    files: [
                        // No auth modules: each exporter scrapes its own node only.
                        { path: MONITORING_FILES.postgresExporterConfig, content: "auth_modules: {}\n" },
                        { path: FILES.pgpass, content: pgpass(member.container, POSTGRES_PORT, s.database), secret: true },
                        caCertificate,
                    ],
                    healthcheck: listening(POSTGRES_EXPORTER_PORT),
                    healthyWithinSeconds: 60,
                    stopSignal: "SIGTERM",
                    stopGraceSeconds: EXPORTER_STOP_GRACE_SECONDS,
                },
                { parent: this, dependsOn: [nodeResources[i]] },
            ),
        );

        const pgbouncerHost = t.pgbouncer.container;
        exporters.push(
            serviceContainer(
                `${name}-pgbouncer-exporter`,
                {
                    containerName: t.pgbouncer.exporter,
                    image: args.image,
                    network: args.network,
                    startScript: renderPgbouncerExporterStart({
                        connectionString: exporterConnectionUrl({
                            user: args.credential.user,
                            host: pgbouncerHost,
                            port: PGBOUNCER_PORT,
                            database: "pgbouncer",
                            // PgBouncer offers TLS unless client_tls_sslmode is disable.
                            params: s.clientTlsSslmode === "disable" ? { sslmode: "disable" } : verifyFull,
                        }),
                        listenPort: PGBOUNCER_EXPORTER_PORT,
                    }),
                    files: [
                        { path: FILES.pgpass, content: pgpass(pgbouncerHost, PGBOUNCER_PORT, "pgbouncer"), secret: true },
                        caCertificate,
                    ],
                    healthcheck: listening(PGBOUNCER_EXPORTER_PORT),
                    healthyWithinSeconds: 60,
                    stopSignal: "SIGTERM",
                    stopGraceSeconds: EXPORTER_STOP_GRACE_SECONDS,
                },
                { parent: this, dependsOn: [args.pgbouncer] },
            ),
        );

        const volume = new docker.Volume(`${name}-prometheus-data`, { name: t.prometheus.volume }, { parent: this });
        const prometheus = serviceContainer(
            `${name}-prometheus`,
            {
                containerName: t.prometheus.container,
                image: args.image,
                network: args.network,
                startScript: renderPrometheusStart({
                    configFile: MONITORING_FILES.prometheusConfig,
                    dataDir: PROMETHEUS_DATA_DIR,
                    retention: m.prometheusRetention,
                    listenPort: PROMETHEUS_PORT,
                }),
                files: [
                    {
                        path: MONITORING_FILES.prometheusConfig,
                        content: renderPrometheusConfig({
                            scrapeIntervalSeconds: m.scrapeIntervalSeconds,
                            externalLabels: { cluster: s.clusterName },
                            ruleFiles: [MONITORING_FILES.alertRules],
                            jobs: [
                                ...scrapeJobs(s),
                                patroniScrapeJob(s, FILES.tlsCa),
                                haproxyScrapeJob(s),
                                backupScrapeJob(s),
                                etcdScrapeJob(s),
                            ],
                        }),
                    },
                    {
                        path: MONITORING_FILES.alertRules,
                        content: renderAlertRules([...alertRules(s, m), ...backupAlertRules(args.backupSettings, m)]),
                    },
                    caCertificate,
                ],
                volumes: [{ name: volume.name, mountPath: PROMETHEUS_DATA_DIR }],
                publish: { internal: PROMETHEUS_PORT, external: m.prometheusPort, ip: s.publishAddress },
                healthcheck: ["promtool", "check", "healthy", `--url=http://127.0.0.1:${PROMETHEUS_PORT}`],
                healthyWithinSeconds: 120,
                stopSignal: "SIGTERM",
                // Prometheus writes its head block and closes its WAL on SIGTERM.
                stopGraceSeconds: 60,
            },
            // Its first scrapes find every target up (the exporters wait for their members and
            // PgBouncer), so no alert fires for a start-up race.
            { parent: this, dependsOn: [...exporters, args.backup, args.etcd] },
        );
        const prometheusEndpoint = serviceEndpoint(prometheus, PROMETHEUS_PORT, connectHost(s));
        this.prometheusUrl = pulumi.interpolate`http://${prometheusEndpoint.host}:${prometheusEndpoint.port}`;

        if (m.grafanaEnabled) {
            const password = pulumi.secret(
                new random.RandomPassword(
                    `${name}-grafana-admin-password`,
                    { length: GENERATED_PASSWORD_LENGTH, special: false },
                    { parent: this },
                ).result,
            );
            const grafana = grafanaContainer(
                `${name}-grafana`,
                { settings: s, monitoring: m, backupSettings: args.backupSettings, network: args.network, adminPassword: password },
                // Its datasource is this Prometheus.
                { parent: this, dependsOn: [prometheus] },
            );
            const grafanaEndpoint = serviceEndpoint(grafana, GRAFANA_PORT, connectHost(s));
            this.grafanaUrl = pulumi.interpolate`http://${grafanaEndpoint.host}:${grafanaEndpoint.port}`;
            this.grafanaAdminPassword = password;
        }

        this.registerOutputs({
            prometheusUrl: this.prometheusUrl,
            grafanaUrl: this.grafanaUrl,
            grafanaAdminPassword: this.grafanaAdminPassword,
        });
    }
}
