// The alert rules, as data computed from the settings: thresholds are the
// configured shares of the cluster's own sizes (pool, max_connections,
// max_client_conn, max_slot_wal_keep_size), so resizing the cluster moves them.
import { alertLimits, type BackupSettings, type ClusterSettings, type MonitoringSettings } from "../../settings";
import { ARCHIVE_CHECK_SECONDS } from "../pgbackrest/pgbackrest";
import { renderYaml } from "../yaml";
import { JOBS } from "./prometheus-targets";

export type Severity = "critical" | "warning";

export interface AlertRule {
    readonly alert: string;
    /** PromQL; every series it returns is one alert. */
    readonly expr: string;
    readonly forSeconds: number;
    readonly severity: Severity;
    /** Annotation templates: only `{{ $labels.<name> }}` is used. */
    readonly summary: string;
    readonly description: string;
}

/** The rule group's name in the rules file. */
export const ALERT_GROUP = "obcms-database";

const POSTGRES = `job="${JOBS.postgres}"`;
const PRIMARY = `${POSTGRES}, role="primary"`;
const REPLICAS = `${POSTGRES}, role="replica"`;
const PGBOUNCER = `job="${JOBS.pgbouncer}"`;
const ETCD = `job="${JOBS.etcd}"`;
/** PgBouncer's pools without its admin console. */
const POOLS = `${PGBOUNCER}, database!="pgbouncer"`;

/**
 * The primary's pg_stat_replication rows, one per WAL sender, with the
 * replica's node name (its application_name) as `instance`, so they line up
 * with the replica's own series.
 */
export function replicationByReplica(selector = PRIMARY): string {
    return `label_replace(pg_stat_replication_pg_wal_lsn_diff{${selector}}, "instance", "$1", "application_name", "(.+)")`;
}

function mb(bytes: number): string {
    return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
}

/** Every alert rule of the stack, in a stable order. */
export function alertRules(s: ClusterSettings, m: MonitoringSettings): AlertRule[] {
    const limit = alertLimits(s, m);
    const forSeconds = limit.forSeconds;
    return [
        {
            alert: "ExporterDown",
            // etcd serves its own metrics: a silent member is EtcdMemberDown.
            expr: `up{job!="${JOBS.etcd}"} == 0`,
            forSeconds,
            severity: "warning",
            summary: "Exporter {{ $labels.job }} of {{ $labels.instance }} is not answering",
            description:
                "Prometheus cannot scrape the {{ $labels.job }} exporter of {{ $labels.instance }}; its metrics and alerts are blind.",
        },
        {
            alert: "PostgreSQLDown",
            expr: `pg_up{${POSTGRES}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "PostgreSQL {{ $labels.instance }} ({{ $labels.role }}) is down",
            description: "The exporter of {{ $labels.instance }} cannot log in to PostgreSQL as the monitoring role.",
        },
        {
            alert: "PgBouncerDown",
            expr: `pgbouncer_up{${PGBOUNCER}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "PgBouncer is down",
            description: "The exporter cannot read PgBouncer's admin console as the stats user.",
        },
        {
            alert: "PostgreSQLReplicaNotStreaming",
            // Every configured replica is a target, so a replica the primary has
            // no streaming WAL sender for shows up here, whatever its own state.
            expr: `up{${REPLICAS}} unless on (instance) ${replicationByReplica(`${PRIMARY}, state="streaming"`)}`,
            forSeconds,
            severity: "critical",
            summary: "Replica {{ $labels.instance }} is not streaming from the primary",
            description:
                "The primary has no streaming WAL sender for {{ $labels.instance }}: the replica is down, catching up, or cannot connect. " +
                `Its slot keeps WAL on the primary meanwhile, up to maxSlotWalKeepSizeMb (${s.maxSlotWalKeepSizeMb} MB).`,
        },
        {
            alert: "PostgreSQLReplicationLagBytes",
            expr: `max by (instance) (${replicationByReplica()}) > ${limit.replicationLagBytes}`,
            forSeconds,
            severity: "warning",
            summary: `Replica {{ $labels.instance }} is more than ${mb(limit.replicationLagBytes)} of WAL behind`,
            description: `WAL the primary has written but {{ $labels.instance }} has not replayed exceeds replicationLagAlertMb (${m.alerts.replicationLagMb} MB).`,
        },
        {
            alert: "PostgreSQLReplicationLagSeconds",
            expr: `max by (instance) (pg_replication_lag_seconds{${REPLICAS}}) > ${limit.replicationLagSeconds}`,
            forSeconds,
            severity: "warning",
            summary: `Replica {{ $labels.instance }} replays more than ${limit.replicationLagSeconds} s behind`,
            description: `Reads from {{ $labels.instance }} are older than replicationLagAlertSeconds (${limit.replicationLagSeconds} s).`,
        },
        {
            alert: "PostgreSQLReplicationSlotInactive",
            expr: `max by (instance, slot_name) (pg_replication_slot_slot_is_active{${PRIMARY}}) == 0`,
            forSeconds,
            severity: "warning",
            summary: "Replication slot {{ $labels.slot_name }} is inactive",
            description:
                "No replica streams through {{ $labels.slot_name }}, so the primary keeps WAL for it until the slot is invalidated.",
        },
        {
            alert: "PostgreSQLReplicationSlotWalNearLimit",
            expr: `max by (instance, slot_name) (pg_replication_slots_pg_wal_lsn_diff{${PRIMARY}}) >= ${limit.slotWalBytes}`,
            forSeconds,
            severity: "critical",
            summary: "Replication slot {{ $labels.slot_name }} retains WAL near max_slot_wal_keep_size",
            description:
                `{{ $labels.slot_name }} retains at least ${m.alerts.slotWalPercent}% of maxSlotWalKeepSizeMb (${mb(limit.slotWalBytes)} of ${s.maxSlotWalKeepSizeMb} MB); ` +
                "at the limit the slot is invalidated and its replica must be cloned again.",
        },
        {
            alert: "PostgreSQLConnectionsNearLimit",
            expr: `sum by (instance, role) (pg_stat_database_numbackends{${POSTGRES}}) >= ${limit.serverConnections}`,
            forSeconds,
            severity: "warning",
            summary: "PostgreSQL {{ $labels.instance }} has connections near max_connections",
            description:
                `At least ${m.alerts.connectionsPercent}% of maxConnections (${limit.serverConnections} of ${s.maxConnections}) ` +
                "backends are connected to {{ $labels.instance }}; new logins will soon be refused.",
        },
        {
            alert: "PgBouncerClientsWaiting",
            expr: `max by (instance, database, user) (pgbouncer_pools_client_maxwait_seconds{${POOLS}}) > ${limit.clientWaitSeconds}`,
            forSeconds,
            severity: "warning",
            summary: `Clients of pool {{ $labels.database }}/{{ $labels.user }} wait more than ${limit.clientWaitSeconds} s`,
            description:
                `A client of {{ $labels.database }}/{{ $labels.user }} has waited longer than clientWaitAlertSeconds (${limit.clientWaitSeconds} s) ` +
                "for a server connection; PgBouncer cancels it at queryWaitTimeout.",
        },
        {
            alert: "PgBouncerPoolSaturated",
            expr: `max by (instance, database, user) (pgbouncer_pools_server_active_connections{${POOLS}}) >= ${limit.poolServerConnections}`,
            forSeconds,
            severity: "warning",
            summary: "Pool {{ $labels.database }}/{{ $labels.user }} is nearly saturated",
            description:
                `At least ${m.alerts.poolSaturationPercent}% of defaultPoolSize (${limit.poolServerConnections} of ${s.pool.defaultPoolSize}) ` +
                "server connections of {{ $labels.database }}/{{ $labels.user }} are busy.",
        },
        {
            alert: "PgBouncerClientConnectionsNearLimit",
            expr: `max by (instance) (pgbouncer_used_clients{${PGBOUNCER}}) >= ${limit.clientConnections}`,
            forSeconds,
            severity: "warning",
            summary: "PgBouncer has client connections near max_client_conn",
            description:
                `At least ${m.alerts.clientConnectionsPercent}% of maxClientConn (${limit.clientConnections} of ${s.pool.maxClientConn}) ` +
                "clients are connected; PgBouncer refuses clients beyond it.",
        },
        {
            alert: "EtcdMemberDown",
            expr: `up{${ETCD}} == 0`,
            forSeconds,
            severity: "warning",
            summary: "etcd member {{ $labels.instance }} is not answering",
            description:
                "Prometheus cannot reach etcd member {{ $labels.instance }}; the cluster keeps its quorum only while a majority of its members answer.",
        },
        {
            alert: "EtcdNoLeader",
            expr: `etcd_server_has_leader{${ETCD}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "etcd member {{ $labels.instance }} has no leader",
            description: "etcd member {{ $labels.instance }} sees no leader: without a majority of members the store takes no writes.",
        },
    ];
}

const BACKUP = `job="${JOBS.backup}"`;
/** How late the newest backup may be past `backupDiffEvery` before it counts as missing: room for the backup itself. */
export const BACKUP_LATE_SECONDS = 3_600;

/**
 * Alerts on the backups: the newest one older than the schedule allows, a
 * failed scheduled run, and WAL archiving stalled (the backup container's
 * check pushes a segment every ARCHIVE_CHECK_SECONDS, so even an idle
 * cluster archives that often) or failing.
 */
export function backupAlertRules(b: BackupSettings, m: MonitoringSettings): AlertRule[] {
    const forSeconds = m.alerts.forSeconds;
    const oldest = b.diffEverySeconds + BACKUP_LATE_SECONDS;
    const walStalled = 3 * ARCHIVE_CHECK_SECONDS;
    return [
        {
            alert: "BackupTooOld",
            expr: `time() - max(obcms_backup_last_success_timestamp_seconds{${BACKUP}, type="any"}) > ${oldest}`,
            forSeconds,
            severity: "critical",
            summary: `The newest backup is older than ${oldest} s`,
            description: `No backup has completed for longer than backupDiffEvery (${b.diffEverySeconds} s) plus ${BACKUP_LATE_SECONDS} s; see the backup container's log.`,
        },
        {
            alert: "BackupFailed",
            expr: `obcms_backup_last_run_success{${BACKUP}} == 0`,
            forSeconds,
            severity: "warning",
            summary: "The last scheduled backup failed",
            description: "The backup container's last scheduled run ended with outcome=failed; it retries, and its log says why.",
        },
        {
            alert: "WalArchivingStalled",
            expr: `time() - obcms_backup_wal_archived_timestamp_seconds{${BACKUP}} > ${walStalled}`,
            forSeconds,
            severity: "critical",
            summary: `No WAL segment has reached the repository for ${walStalled} s`,
            description:
                "Point-in-time recovery can reach only the last archived segment; check the primary's log for archive-push errors.",
        },
        {
            alert: "WalArchiveCheckFailed",
            expr: `obcms_backup_archive_check_success{${BACKUP}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "pgbackrest check failed",
            description: "A forced WAL switch did not reach the repository, or the repository is broken; see the backup container's log.",
        },
    ];
}

/** The rules file: one group, evaluated at Prometheus's evaluation_interval. */
export function renderAlertRules(rules: readonly AlertRule[]): string {
    return renderYaml("Rendered by obcms-database; changes here are overwritten.", {
        groups: [
            {
                name: ALERT_GROUP,
                rules: rules.map((r) => ({
                    alert: r.alert,
                    expr: r.expr,
                    for: `${r.forSeconds}s`,
                    labels: { severity: r.severity },
                    annotations: { summary: r.summary, description: r.description },
                })),
            },
        ],
    });
}
