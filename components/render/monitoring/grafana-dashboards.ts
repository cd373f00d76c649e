// The Grafana dashboards (PostgreSQL, PgBouncer, the cluster: roles,
// timelines, failover and routing, and the backups' restore drills), as data
// computed from the settings
// (thresholds drawn where the alerts fire), and the renderer that writes
// Grafana's dashboard JSON with sorted keys.
import { alertLimits, type BackupSettings, type ClusterSettings, type MonitoringSettings } from "../../settings";
import { RESTORE_DRILL_METRICS } from "../pgbackrest/restore-drill";
import { LEADER, onLeader, onReplicas, replicationByReplica, restoreDrillOldestSeconds, walNotReceivedByMember } from "./alert-rules";
import { GRAFANA_DATASOURCE } from "./grafana-provisioning";
import { JOBS } from "./prometheus-targets";

export interface PanelQuery {
    /** PromQL; may use Grafana's `$__rate_interval`. */
    readonly expr: string;
    readonly legend: string;
}

/** A value a stat or state-timeline panel names, and its colour. */
export interface PanelState {
    readonly value: number;
    readonly text: string;
    readonly color: string;
}

export interface DashboardPanel {
    readonly title: string;
    readonly description: string;
    readonly kind: "timeseries" | "stat" | "state-timeline";
    /** Grafana unit id, e.g. `bytes`, `s`, `percentunit`, `short`. */
    readonly unit: string;
    readonly queries: readonly PanelQuery[];
    /** Where a red line marks the alert threshold. */
    readonly threshold?: number;
    /** What a stat or state-timeline panel shows for each value. */
    readonly states?: readonly PanelState[];
}

export interface DashboardSpec {
    readonly uid: string;
    readonly title: string;
    /** How far back the dashboard looks when opened, in Grafana's relative time; default `now-1h`. */
    readonly timeFrom?: string;
    readonly panels: readonly DashboardPanel[];
}

/** Grafana's range variable for rate(): at least four scrape intervals. */
export const RATE_INTERVAL = "$__rate_interval";

const POSTGRES = `job="${JOBS.postgres}"`;
const PATRONI = `job="${JOBS.patroni}"`;
const HAPROXY = `job="${JOBS.haproxy}"`;
const ETCD = `job="${JOBS.etcd}"`;
const PGBOUNCER = `job="${JOBS.pgbouncer}"`;
const BACKUP = `job="${JOBS.backup}"`;
const POOLS = `${PGBOUNCER}, database!="pgbouncer"`;
const POOL_LEGEND = "{{database}}/{{user}}";

const UP_DOWN: readonly PanelState[] = [
    { value: 0, text: "DOWN", color: "red" },
    { value: 1, text: "UP", color: "green" },
];

function rate(metric: string, selector: string): string {
    return `rate(${metric}{${selector}}[${RATE_INTERVAL}])`;
}

/** PostgreSQL: every node's health and load, replication, and the costliest statements. */
export function postgresqlDashboard(s: ClusterSettings, m: MonitoringSettings): DashboardSpec {
    const limit = alertLimits(s, m);
    const hits = `sum by (instance) (${rate("pg_stat_database_blks_hit", POSTGRES)})`;
    const reads = `sum by (instance) (${rate("pg_stat_database_blks_read", POSTGRES)})`;
    return {
        uid: "obcms-postgresql",
        title: `PostgreSQL · ${s.clusterName}`,
        panels: [
            {
                title: "PostgreSQL up",
                description: "Whether each node's exporter can log in to PostgreSQL.",
                kind: "stat",
                unit: "none",
                queries: [{ expr: `pg_up{${POSTGRES}}`, legend: "{{instance}}" }],
                states: UP_DOWN,
            },
            {
                title: "Connections",
                description: "Backends connected to each node, against max_connections; the red line is where the alert fires.",
                kind: "timeseries",
                unit: "short",
                queries: [
                    { expr: `sum by (instance) (pg_stat_database_numbackends{${POSTGRES}})`, legend: "{{instance}}" },
                    { expr: `max by (instance) (pg_settings_max_connections{${POSTGRES}})`, legend: "{{instance}} max_connections" },
                ],
                threshold: limit.serverConnections,
            },
            {
                title: "Transactions per second",
                description: "Commits and rollbacks per second on each node.",
                kind: "timeseries",
                unit: "ops",
                queries: [
                    {
                        expr: `sum by (instance) (${rate("pg_stat_database_xact_commit", POSTGRES)} + ${rate("pg_stat_database_xact_rollback", POSTGRES)})`,
                        legend: "{{instance}}",
                    },
                ],
            },
            {
                title: "Cache hit ratio",
                description: "Share of block reads served from shared buffers on each node.",
                kind: "timeseries",
                unit: "percentunit",
                queries: [{ expr: `${hits} / (${hits} + ${reads})`, legend: "{{instance}}" }],
            },
            {
                title: "Replication lag (bytes)",
                description: "WAL the leader has written that each replica has not replayed yet.",
                kind: "timeseries",
                unit: "bytes",
                queries: [{ expr: `max by (instance) (${replicationByReplica()})`, legend: "{{instance}}" }],
                threshold: limit.replicationLagBytes,
            },
            {
                title: "Replication lag (seconds)",
                description: "How far each replica's replay is behind.",
                kind: "timeseries",
                unit: "s",
                queries: [{ expr: `max by (instance) (${onReplicas(`pg_replication_lag_seconds{${POSTGRES}}`)})`, legend: "{{instance}}" }],
                threshold: limit.replicationLagSeconds,
            },
            {
                title: "WAL retained per slot",
                description: `WAL the leader keeps for each replication slot; slots are invalidated at ${s.maxSlotWalKeepSizeMb} MB.`,
                kind: "timeseries",
                unit: "bytes",
                queries: [
                    {
                        expr: `max by (slot_name) (${onLeader(`pg_replication_slots_pg_wal_lsn_diff{${POSTGRES}}`)})`,
                        legend: "{{slot_name}}",
                    },
                ],
                threshold: limit.slotWalBytes,
            },
            {
                title: "Top statements by execution time",
                description: "The ten pg_stat_statements entries with the most execution time per second (by query id).",
                kind: "timeseries",
                unit: "s",
                queries: [
                    {
                        expr: `topk(10, sum by (instance, datname, user, queryid) (${rate("pg_stat_statements_seconds_total", POSTGRES)}))`,
                        legend: "{{instance}} {{datname}} {{user}} {{queryid}}",
                    },
                ],
            },
            {
                title: "Top statements by calls",
                description: "The ten pg_stat_statements entries called most often per second (by query id).",
                kind: "timeseries",
                unit: "ops",
                queries: [
                    {
                        expr: `topk(10, sum by (instance, datname, user, queryid) (${rate("pg_stat_statements_calls_total", POSTGRES)}))`,
                        legend: "{{instance}} {{datname}} {{user}} {{queryid}}",
                    },
                ],
            },
        ],
    };
}

/** PgBouncer: clients and servers per pool, throughput and how long clients wait. */
export function pgbouncerDashboard(s: ClusterSettings, m: MonitoringSettings): DashboardSpec {
    const limit = alertLimits(s, m);
    const perPool = (metric: string) => `sum by (database, user) (${metric}{${POOLS}})`;
    return {
        uid: "obcms-pgbouncer",
        title: `PgBouncer · ${s.clusterName}`,
        panels: [
            {
                title: "PgBouncer up",
                description: "Whether the exporter can read PgBouncer's admin console.",
                kind: "stat",
                unit: "none",
                queries: [{ expr: `pgbouncer_up{${PGBOUNCER}}`, legend: "{{instance}}" }],
                states: UP_DOWN,
            },
            {
                title: "Client connections",
                description: "Clients connected to PgBouncer, against the alert threshold on max_client_conn.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: `max by (instance) (pgbouncer_used_clients{${PGBOUNCER}})`, legend: "{{instance}}" }],
                threshold: limit.clientConnections,
            },
            {
                title: "Clients active per pool",
                description: "Clients linked to a server connection.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: perPool("pgbouncer_pools_client_active_connections"), legend: POOL_LEGEND }],
            },
            {
                title: "Clients waiting per pool",
                description: "Clients queued for a server connection.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: perPool("pgbouncer_pools_client_waiting_connections"), legend: POOL_LEGEND }],
            },
            {
                title: "Servers active per pool",
                description: "Server connections linked to a client; the red line is where the saturation alert fires.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: perPool("pgbouncer_pools_server_active_connections"), legend: POOL_LEGEND }],
                threshold: limit.poolServerConnections,
            },
            {
                title: "Servers idle per pool",
                description: "Server connections ready for a client.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: perPool("pgbouncer_pools_server_idle_connections"), legend: POOL_LEGEND }],
            },
            {
                title: "Queries per second",
                description: "Queries pooled per second, per database.",
                kind: "timeseries",
                unit: "ops",
                queries: [{ expr: `sum by (database) (${rate("pgbouncer_stats_queries_pooled_total", POOLS)})`, legend: "{{database}}" }],
            },
            {
                title: "Transactions per second",
                description: "Transactions pooled per second, per database.",
                kind: "timeseries",
                unit: "ops",
                queries: [
                    { expr: `sum by (database) (${rate("pgbouncer_stats_sql_transactions_pooled_total", POOLS)})`, legend: "{{database}}" },
                ],
            },
            {
                title: "Longest client wait",
                description: "Age of the oldest client waiting for a server connection, per pool.",
                kind: "timeseries",
                unit: "s",
                queries: [{ expr: `max by (database, user) (pgbouncer_pools_client_maxwait_seconds{${POOLS}})`, legend: POOL_LEGEND }],
                threshold: limit.clientWaitSeconds,
            },
            {
                title: "Client wait time per second",
                description: "Seconds clients spent waiting for a server, per second, per database.",
                kind: "timeseries",
                unit: "s",
                queries: [
                    { expr: `sum by (database) (${rate("pgbouncer_stats_client_wait_seconds_total", POOLS)})`, legend: "{{database}}" },
                ],
            },
        ],
    };
}

/** A panel that draws each series as a band, coloured by the state its value names. */
function stateTimeline(title: string, description: string, query: PanelQuery, states: readonly PanelState[]): DashboardPanel {
    return { title, description, kind: "state-timeline", unit: "none", queries: [query], states };
}

/**
 * The cluster as Patroni, HAProxy and etcd see it: each member's role and
 * timeline over time, whether the members stream within the failover bound,
 * failsafe mode, which member each route serves, and etcd's leader.
 */
export function clusterDashboard(s: ClusterSettings): DashboardSpec {
    return {
        uid: "obcms-cluster",
        title: `Cluster · ${s.clusterName}`,
        panels: [
            stateTimeline(
                "Member role",
                "Each member's role as its Patroni reports it; a gap is a member whose Patroni did not answer.",
                { expr: `2 * patroni_primary{${PATRONI}} + patroni_replica{${PATRONI}}`, legend: "{{instance}}" },
                [
                    { value: 0, text: "no role", color: "red" },
                    { value: 1, text: "replica", color: "green" },
                    { value: 2, text: "leader", color: "blue" },
                ],
            ),
            {
                title: "Timeline",
                description: "Each running member's PostgreSQL timeline: every promotion starts a new one.",
                kind: "timeseries",
                unit: "none",
                queries: [{ expr: `patroni_postgres_timeline{${PATRONI}} > 0`, legend: "{{instance}}" }],
            },
            stateTimeline(
                "Streaming",
                "Whether each member other than the leader streams WAL from it.",
                { expr: `patroni_postgres_streaming{${PATRONI}} unless on (instance) ${LEADER}`, legend: "{{instance}}" },
                [
                    { value: 0, text: "not streaming", color: "red" },
                    { value: 1, text: "streaming", color: "green" },
                ],
            ),
            {
                title: "WAL not received",
                description: `WAL each member has not received from the leader; past maximumLagOnFailoverMb (${s.maximumLagOnFailoverMb} MB) Patroni would not promote it.`,
                kind: "timeseries",
                unit: "bytes",
                queries: [{ expr: `max by (instance) (${walNotReceivedByMember(s)})`, legend: "{{instance}}" }],
                threshold: s.maximumLagOnFailoverMb * 1024 * 1024,
            },
            {
                title: "Leaders",
                description: "Members that report themselves the leader: 1 when healthy.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: `sum(patroni_primary{${PATRONI}})`, legend: "leaders" }],
            },
            stateTimeline(
                "Failsafe mode",
                "Active while Patroni cannot reach etcd: the leader keeps its role only while every member answers it.",
                { expr: `max(patroni_failsafe_mode_is_active{${PATRONI}})`, legend: "failsafe mode" },
                [
                    { value: 0, text: "off", color: "green" },
                    { value: 1, text: "active", color: "red" },
                ],
            ),
            {
                title: "Since etcd last answered",
                description: "Seconds since each member's Patroni last reached etcd.",
                kind: "timeseries",
                unit: "s",
                queries: [{ expr: `time() - patroni_dcs_last_seen{${PATRONI}}`, legend: "{{instance}}" }],
            },
            {
                title: "Servers per route",
                description:
                    "Members HAProxy serves on each route: the leader on the read-write one, the replicas within the lag bound on the read-only one.",
                kind: "timeseries",
                unit: "short",
                queries: [{ expr: `haproxy_backend_active_servers{${HAPROXY}}`, legend: "{{proxy}}" }],
            },
            stateTimeline(
                "Route servers",
                "Whether HAProxy serves each member on each route. The router lists every member the stack may have; those not running are in maintenance, and left out.",
                {
                    expr: `haproxy_server_status{${HAPROXY}, state="UP"} unless on (proxy, server) haproxy_server_status{${HAPROXY}, state="MAINT"} == 1`,
                    legend: "{{proxy}} {{server}}",
                },
                [
                    { value: 0, text: "not served", color: "transparent" },
                    { value: 1, text: "served", color: "green" },
                ],
            ),
            stateTimeline(
                "etcd leader",
                "Whether each etcd member sees a leader; without one the store takes no writes.",
                { expr: `etcd_server_has_leader{${ETCD}}`, legend: "{{instance}}" },
                [
                    { value: 0, text: "no leader", color: "red" },
                    { value: 1, text: "leader", color: "green" },
                ],
            ),
        ],
    };
}

/**
 * The restore drills' history, from the backup container's gauges: whether
 * each drill passed, how long since one last did against where
 * RestoreDrillTooOld fires, and each drill's duration, size and restore rate.
 * Two weeks on opening: drills run daily to weekly.
 */
export function backupDashboard(s: ClusterSettings, b: BackupSettings): DashboardSpec {
    return {
        uid: "obcms-backup",
        title: `Backups · ${s.clusterName}`,
        timeFrom: "now-14d",
        panels: [
            stateTimeline(
                "Restore drill",
                "Whether the last restore drill (the newest backup and its WAL restored into scratch space, then checked) passed; empty before the first drill.",
                { expr: `${RESTORE_DRILL_METRICS.lastRunSuccess[0]}{${BACKUP}}`, legend: "restore drill" },
                [
                    { value: 0, text: "failed", color: "red" },
                    { value: 1, text: "passed", color: "green" },
                ],
            ),
            {
                title: "Since a restore drill last passed",
                description:
                    "Seconds since a restore drill last passed, or, before the first one passes, since the drill schedule began; " +
                    `the red line is where RestoreDrillTooOld fires: restoreDrillEvery (${b.restoreDrillEverySeconds} s) plus a day.`,
                kind: "timeseries",
                unit: "s",
                queries: [{ expr: `time() - max(${RESTORE_DRILL_METRICS.lastSuccess[0]}{${BACKUP}})`, legend: "since the last pass" }],
                threshold: restoreDrillOldestSeconds(b),
            },
            {
                title: "Restore drill duration",
                description: "How long the last restore drill took: verify, restore, recovery and checks.",
                kind: "timeseries",
                unit: "s",
                queries: [{ expr: `${RESTORE_DRILL_METRICS.duration[0]}{${BACKUP}}`, legend: "duration" }],
            },
            {
                title: "Restored per drill",
                description: "Bytes the last restore drill restored: the data directory.",
                kind: "timeseries",
                unit: "bytes",
                queries: [{ expr: `${RESTORE_DRILL_METRICS.restoredBytes[0]}{${BACKUP}}`, legend: "restored" }],
            },
            {
                title: "Restore rate",
                description: "Bytes per second of the last drill's pgBackRest restore step: about how fast a real restore goes.",
                kind: "timeseries",
                unit: "binBps",
                queries: [{ expr: `${RESTORE_DRILL_METRICS.restoreRate[0]}{${BACKUP}}`, legend: "restore rate" }],
            },
        ],
    };
}

type Json = null | string | number | boolean | Json[] | { [key: string]: Json };

const PANEL_WIDTH = 12;
const PANEL_HEIGHT = 8;

function fieldConfig(panel: DashboardPanel): Json {
    const steps: Json[] = [{ color: "green", value: null }];
    if (panel.threshold !== undefined) {
        steps.push({ color: "red", value: panel.threshold });
    }
    const defaults: { [key: string]: Json } = {
        unit: panel.unit,
        thresholds: { mode: "absolute", steps },
    };
    if (panel.kind === "timeseries") {
        defaults.custom = { thresholdsStyle: { mode: panel.threshold === undefined ? "off" : "line" } };
    }
    if (panel.kind === "state-timeline") {
        // Each state in its mapping's colour, as a solid band.
        defaults.color = { mode: "thresholds" };
        defaults.custom = { fillOpacity: 80, lineWidth: 0 };
    }
    if (panel.states !== undefined) {
        defaults.mappings = [
            {
                type: "value",
                options: Object.fromEntries(
                    panel.states.map((state, index) => [String(state.value), { text: state.text, color: state.color, index }]),
                ),
            },
        ];
    }
    return { defaults, overrides: [] };
}

function panelOptions(panel: DashboardPanel): Json {
    const legend = { displayMode: "list", placement: "bottom", showLegend: true };
    if (panel.kind === "state-timeline") {
        return {
            alignValue: "left",
            legend,
            mergeValues: true,
            rowHeight: 0.9,
            showValue: "auto",
            tooltip: { mode: "single", sort: "none" },
        };
    }
    if (panel.kind === "stat") {
        return {
            colorMode: "background",
            graphMode: "none",
            textMode: "value_and_name",
            reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
        };
    }
    return { legend, tooltip: { mode: "multi", sort: "desc" } };
}

function panelJson(panel: DashboardPanel, index: number): Json {
    const datasource = { ...GRAFANA_DATASOURCE };
    return {
        id: index + 1,
        type: panel.kind,
        title: panel.title,
        description: panel.description,
        datasource,
        gridPos: { h: PANEL_HEIGHT, w: PANEL_WIDTH, x: (index % 2) * PANEL_WIDTH, y: Math.floor(index / 2) * PANEL_HEIGHT },
        fieldConfig: fieldConfig(panel),
        options: panelOptions(panel),
        targets: panel.queries.map((q, i) => ({
            refId: String.fromCharCode(65 + i),
            datasource,
            expr: q.expr,
            legendFormat: q.legend,
            range: true,
        })),
    };
}

function sortedKeys(value: Json): Json {
    if (Array.isArray(value)) {
        return value.map(sortedKeys);
    }
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(
            Object.keys(value)
                .sort()
                .map((k) => [k, sortedKeys(value[k])]),
        );
    }
    return value;
}

/** Grafana 10+ dashboard JSON, keys sorted, provisioned read-only. */
export function renderDashboard(d: DashboardSpec): string {
    const dashboard: Json = {
        uid: d.uid,
        title: d.title,
        tags: ["obcms-database"],
        editable: false,
        schemaVersion: 39,
        version: 1,
        refresh: "30s",
        time: { from: d.timeFrom ?? "now-1h", to: "now" },
        timezone: "browser",
        annotations: { list: [] },
        templating: { list: [] },
        panels: d.panels.map(panelJson),
    };
    return `${JSON.stringify(sortedKeys(dashboard), null, 2)}\n`;
}
