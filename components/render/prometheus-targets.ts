// What Prometheus watches, as plain data computed from the settings: one
// postgres_exporter per PostgreSQL node, one pgbouncer_exporter, and the
// labels every series carries (`instance` = node name, `role`).
import { BACKUP_METRICS_PORT, type ClusterSettings, PGBOUNCER_EXPORTER_PORT, POSTGRES_EXPORTER_PORT } from "../settings";
import { nodeNames, PRIMARY_NODE, replicaNode } from "./cluster";

export type NodeRole = "primary" | "replica";

/** Scrape job names: one job per kind of exporter. */
export const JOBS = { postgres: "postgres", pgbouncer: "pgbouncer", backup: "backup" } as const;

/** The `instance` label of PgBouncer's exporter. */
export const PGBOUNCER_INSTANCE = "pgbouncer";

export interface PostgresNode {
    /** Node name: its cluster_name, the `instance` label of its series. */
    readonly node: string;
    readonly role: NodeRole;
    /** Container (and host name) of the PostgreSQL server. */
    readonly host: string;
    /** Container (and host name) of its exporter. */
    readonly exporter: string;
}

/** Docker names of the monitoring containers and volume. */
export function monitoringNames(s: ClusterSettings) {
    const names = nodeNames(s);
    return {
        exporter: (host: string) => `${host}-exporter`,
        pgbouncerExporter: `${names.pgbouncer}-exporter`,
        prometheus: `${s.clusterName}-prometheus`,
        prometheusVolume: `${s.clusterName}-prometheus-data`,
        grafana: `${s.clusterName}-grafana`,
    };
}

/** The primary, then replicas 1..replicaCount. */
export function postgresNodes(s: ClusterSettings): PostgresNode[] {
    const names = nodeNames(s);
    const exporter = monitoringNames(s).exporter;
    return [
        { node: PRIMARY_NODE, role: "primary" as const, host: names.primary, exporter: exporter(names.primary) },
        ...Array.from({ length: s.replicaCount }, (_, i) => {
            const host = names.replica(i + 1);
            return { node: replicaNode(i + 1), role: "replica" as const, host, exporter: exporter(host) };
        }),
    ];
}

export interface ScrapeTarget {
    /** host:port on the cluster network. */
    readonly address: string;
    readonly labels: { readonly instance: string; readonly role: NodeRole | "pgbouncer" | "backup" };
}

export interface ScrapeJob {
    readonly name: string;
    readonly targets: readonly ScrapeTarget[];
}

/** One job per exporter kind; each replica adds a target to the postgres job. */
export function scrapeJobs(s: ClusterSettings): ScrapeJob[] {
    return [
        {
            name: JOBS.postgres,
            targets: postgresNodes(s).map((n) => ({
                address: `${n.exporter}:${POSTGRES_EXPORTER_PORT}`,
                labels: { instance: n.node, role: n.role },
            })),
        },
        {
            name: JOBS.pgbouncer,
            targets: [
                {
                    address: `${monitoringNames(s).pgbouncerExporter}:${PGBOUNCER_EXPORTER_PORT}`,
                    labels: { instance: PGBOUNCER_INSTANCE, role: "pgbouncer" },
                },
            ],
        },
    ];
}

/** The backup container's metrics (the schedule's textfile, through prometheus-node-exporter). */
export function backupScrapeJob(s: ClusterSettings): ScrapeJob {
    return {
        name: JOBS.backup,
        targets: [{ address: `${nodeNames(s).backup}:${BACKUP_METRICS_PORT}`, labels: { instance: "backup", role: "backup" } }],
    };
}

export interface ExporterConnection {
    readonly user: string;
    readonly host: string;
    readonly port: number;
    readonly database: string;
    /** libpq parameters, e.g. sslmode; written in this order. */
    readonly params: Readonly<Record<string, string>>;
}

function urlPart(value: string): string {
    // A `/` is legal in a query value and keeps file paths readable in `ps`.
    return encodeURIComponent(value).replace(/%2F/g, "/");
}

/**
 * The `postgresql://` URL an exporter logs in with. It has no password: the
 * exporters' driver (lib/pq) reads that from the PGPASSFILE passfile.
 */
export function exporterConnectionUrl(c: ExporterConnection): string {
    const query = Object.entries(c.params)
        .map(([key, value]) => `${urlPart(key)}=${urlPart(value)}`)
        .join("&");
    return `postgresql://${encodeURIComponent(c.user)}@${encodeURIComponent(c.host)}:${c.port}/${encodeURIComponent(c.database)}${query ? `?${query}` : ""}`;
}
