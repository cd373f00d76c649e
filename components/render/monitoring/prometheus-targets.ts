// What Prometheus watches, as plain data computed from the settings: one
// postgres_exporter per PostgreSQL member, one pgbouncer_exporter, the etcd
// members, and the labels every series carries (`instance` = the member's
// node name, `role`).
import {
    BACKUP_METRICS_PORT,
    type ClusterSettings,
    ETCD_METRICS_PORT,
    PGBOUNCER_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
} from "../../settings";
import { clusterTopology, type MemberRole } from "../../topology";

/** Scrape job names: one job per kind of exporter. */
export const JOBS = { postgres: "postgres", pgbouncer: "pgbouncer", backup: "backup", etcd: "etcd" } as const;

/** The `instance` label of PgBouncer's exporter. */
export const PGBOUNCER_INSTANCE = "pgbouncer";

export interface ScrapeTarget {
    /** host:port on the cluster network. */
    readonly address: string;
    readonly labels: { readonly instance: string; readonly role: MemberRole | "pgbouncer" | "backup" | "etcd" };
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
            targets: clusterTopology(s).members.map((m) => ({
                address: `${m.exporter}:${POSTGRES_EXPORTER_PORT}`,
                labels: { instance: m.node, role: m.role },
            })),
        },
        {
            name: JOBS.pgbouncer,
            targets: [
                {
                    address: `${clusterTopology(s).pgbouncer.exporter}:${PGBOUNCER_EXPORTER_PORT}`,
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
        targets: [
            { address: `${clusterTopology(s).backup.container}:${BACKUP_METRICS_PORT}`, labels: { instance: "backup", role: "backup" } },
        ],
    };
}

/** Each etcd member serves its own metrics, on a port apart from its client port. */
export function etcdScrapeJob(s: ClusterSettings): ScrapeJob {
    return {
        name: JOBS.etcd,
        targets: clusterTopology(s).etcd.map((e) => ({
            address: `${e.container}:${ETCD_METRICS_PORT}`,
            labels: { instance: e.name, role: "etcd" },
        })),
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
