// What Prometheus watches, as plain data computed from the settings: for each
// PostgreSQL member its postgres_exporter and Patroni's own metrics, PgBouncer's
// exporter and the router's (HAProxy), the backup container, the etcd
// members, and the labels every series carries (`instance` = the member's
// name, `role` = the kind of target). No label says which member leads: that
// moves, and only Patroni's own series (patroni_primary) know it.
import {
    BACKUP_METRICS_PORT,
    type ClusterSettings,
    ETCD_METRICS_PORT,
    HAPROXY_METRICS_PORT,
    PATRONI_REST_PORT,
    PGBOUNCER_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
} from "../../settings";
import { clusterTopology } from "../../topology";

/** Scrape job names: one job per kind of target. */
export const JOBS = {
    postgres: "postgres",
    patroni: "patroni",
    pgbouncer: "pgbouncer",
    haproxy: "haproxy",
    backup: "backup",
    etcd: "etcd",
} as const;

type Job = (typeof JOBS)[keyof typeof JOBS];

/** The `instance` label of PgBouncer's exporter. */
export const PGBOUNCER_INSTANCE = "pgbouncer";
/** The `instance` label of the router's metrics (HAProxy runs in PgBouncer's container). */
export const HAPROXY_INSTANCE = "haproxy";

export interface ScrapeTarget {
    /** host:port on the cluster network. */
    readonly address: string;
    readonly labels: { readonly instance: string; readonly role: Job };
}

export interface ScrapeJob {
    readonly name: string;
    readonly targets: readonly ScrapeTarget[];
    /** Scraped over HTTPS, the server's certificate checked against this CA file (a path in the Prometheus container). */
    readonly caFile?: string;
}

function target(address: string, instance: string, role: Job): ScrapeTarget {
    return { address, labels: { instance, role } };
}

/**
 * The postgres_exporter of every member but the delayed replica, and
 * PgBouncer's exporter. The delayed replica's catalog, roles and passwords
 * included, is its delay behind the leader: the monitoring role cannot log in
 * there until it has replayed the role's creation or last password change.
 * Patroni's metrics, which need no login, watch it instead (patroniScrapeJob).
 */
export function scrapeJobs(s: ClusterSettings): ScrapeJob[] {
    const t = clusterTopology(s);
    return [
        {
            name: JOBS.postgres,
            targets: t.members.map((m) => target(`${m.exporter}:${POSTGRES_EXPORTER_PORT}`, m.node, JOBS.postgres)),
        },
        {
            name: JOBS.pgbouncer,
            targets: [target(`${t.pgbouncer.exporter}:${PGBOUNCER_EXPORTER_PORT}`, PGBOUNCER_INSTANCE, JOBS.pgbouncer)],
        },
    ];
}

/**
 * Patroni's `/metrics` on each member's REST API, the delayed replica's too (no login, GET only), over
 * TLS: the member's certificate, from the stack's CA, names its container.
 * Its series carry the member's role (patroni_primary, patroni_replica).
 */
export function patroniScrapeJob(s: ClusterSettings, caFile: string): ScrapeJob {
    return {
        name: JOBS.patroni,
        targets: clusterTopology(s).allMembers.map((m) => target(`${m.container}:${PATRONI_REST_PORT}`, m.node, JOBS.patroni)),
        caFile,
    };
}

/** HAProxy's own exporter, in PgBouncer's container: which member each route's backend serves. */
export function haproxyScrapeJob(s: ClusterSettings): ScrapeJob {
    return {
        name: JOBS.haproxy,
        targets: [target(`${clusterTopology(s).pgbouncer.container}:${HAPROXY_METRICS_PORT}`, HAPROXY_INSTANCE, JOBS.haproxy)],
    };
}

/** The backup container's metrics (the schedule's textfile, through prometheus-node-exporter). */
export function backupScrapeJob(s: ClusterSettings): ScrapeJob {
    return {
        name: JOBS.backup,
        targets: [target(`${clusterTopology(s).backup.container}:${BACKUP_METRICS_PORT}`, "backup", JOBS.backup)],
    };
}

/** Each etcd member serves its own metrics, on a port apart from its client port. */
export function etcdScrapeJob(s: ClusterSettings): ScrapeJob {
    return {
        name: JOBS.etcd,
        targets: clusterTopology(s).etcd.map((e) => target(`${e.container}:${ETCD_METRICS_PORT}`, e.name, JOBS.etcd)),
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
