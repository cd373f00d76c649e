// The alert rules, as data computed from the settings: thresholds are the
// configured shares of the cluster's own sizes (pool, max_connections,
// max_client_conn, max_slot_wal_keep_size) and the failover bound, so
// resizing the cluster moves them. No target carries a member's role: which
// member leads is read from Patroni's own series (patroni_primary,
// patroni_replica) and joined on `instance`, so every rule follows the leader
// when it moves.
import { alertLimits, type BackupSettings, type ClusterSettings, type MonitoringSettings } from "../../settings";
import { clusterTopology } from "../../topology";
import { ROUTER_BACKENDS } from "../haproxy/haproxy-cfg";
import { ARCHIVE_CHECK_SECONDS } from "../pgbackrest/pgbackrest";
import { RESTORE_DRILL_METRICS } from "../pgbackrest/restore-drill";
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

/**
 * How long PatroniFailover keeps firing once it fires: long enough to be
 * seen, short enough that the next failover raises it afresh.
 */
export const FAILOVER_NOTICE_SECONDS = 600;
/**
 * How long the cluster may stay in maintenance mode before an alert says so:
 * a planned window is shorter, and a forgotten `pause` (or `pause-delayed`)
 * leaves a dead leader unreplaced.
 */
export const MAINTENANCE_ALERT_SECONDS = 1800;

const POSTGRES = `job="${JOBS.postgres}"`;
const PATRONI = `job="${JOBS.patroni}"`;
const PGBOUNCER = `job="${JOBS.pgbouncer}"`;
const HAPROXY = `job="${JOBS.haproxy}"`;
const ETCD = `job="${JOBS.etcd}"`;
/** PgBouncer's pools without its admin console. */
const POOLS = `${PGBOUNCER}, database!="pgbouncer"`;

/** The member Patroni reports as the leader: one series, `instance` its member name. */
export const LEADER = `patroni_primary{${PATRONI}} == 1`;
/** The members Patroni reports as replicas. */
export const REPLICAS = `patroni_replica{${PATRONI}} == 1`;

/** The series of `expr` whose `instance` is the member that leads now. */
export function onLeader(expr: string): string {
    return `${expr} and on (instance) ${LEADER}`;
}

/** The series of `expr` whose `instance` is a member that is a replica now. */
export function onReplicas(expr: string): string {
    return `${expr} and on (instance) ${REPLICAS}`;
}

/**
 * The leader's pg_stat_replication rows, one per WAL sender, with the
 * streaming member's name (its application_name, which Patroni sets) as
 * `instance`, so they line up with that member's own series.
 */
export function replicationByReplica(): string {
    return `label_replace(${onLeader(`pg_stat_replication_pg_wal_lsn_diff{${POSTGRES}}`)}, "instance", "$1", "application_name", "(.+)")`;
}

/**
 * Patroni keeps a physical slot per member on the leader, named after the
 * member with `-` as `_` (the topology's `slot`): the pattern that turns a
 * slot name back into its member's name, for label_replace.
 */
export function slotMemberPattern(s: ClusterSettings): { readonly regex: string; readonly replacement: string } {
    const first = clusterTopology(s).members[0];
    const suffix = String(first.index);
    // Any name after the prefix: the delayed replica's too (pg_delayed).
    return { regex: `${first.slot.slice(0, -suffix.length)}(.+)`, replacement: `${first.node.slice(0, -suffix.length)}$1` };
}

/**
 * `expr` without the delayed replica's series: its replay lags by design,
 * and that lag is no alert. What it has not received yet still is
 * (PostgreSQLMemberPastFailoverLag), and so is its not streaming
 * (PostgreSQLMemberNotStreaming). It has no exporter of its own (scrapeJobs).
 */
function exceptDelayedReplica(s: ClusterSettings, expr: string): string {
    const delayed = clusterTopology(s).delayedReplica;
    // `up` exists for every configured target, whether it answers or not.
    return delayed ? `(${expr}) unless on (instance) up{${PATRONI}, instance="${delayed.node}"}` : expr;
}

/**
 * Bytes of WAL each member has not received (flushed) yet, as the leader
 * sees it in one query: the leader's position minus the restart_lsn of the
 * member's slot, which the member's replies advance to what it flushed. The
 * same position Patroni weighs against maximum_lag_on_failover, without the
 * skew of comparing two targets scraped at different moments.
 */
export function walNotReceivedByMember(s: ClusterSettings): string {
    const slot = slotMemberPattern(s);
    return `label_replace(${onLeader(`pg_replication_slots_pg_wal_lsn_diff{${POSTGRES}}`)}, "instance", "${slot.replacement}", "slot_name", "${slot.regex}")`;
}

/** HAProxy's servers of `proxy` that are DOWN, with the member's name (the server's) as `instance`. */
function routerServersDown(proxy: string): string {
    return `label_replace(haproxy_server_status{${HAPROXY}, proxy="${proxy}", state="DOWN"} == 1, "instance", "$1", "server", "(.+)")`;
}

function mb(bytes: number): string {
    return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
}

/** Every alert rule of the stack, in a stable order. */
export function alertRules(s: ClusterSettings, m: MonitoringSettings): AlertRule[] {
    const limit = alertLimits(s, m);
    const forSeconds = limit.forSeconds;
    const failoverLagBytes = s.maximumLagOnFailoverMb * 1024 * 1024;
    const rw = ROUTER_BACKENDS.readWrite;
    const ro = ROUTER_BACKENDS.readOnly;
    return [
        {
            alert: "ExporterDown",
            // etcd serves its own metrics: a silent member is EtcdMemberDown. A member's
            // targets carry its name only, so one that changes role stays the same target.
            expr: `up{job!="${JOBS.etcd}"} == 0`,
            forSeconds,
            severity: "warning",
            summary: "Metrics of {{ $labels.job }} on {{ $labels.instance }} are not answering",
            description: "Prometheus cannot scrape {{ $labels.job }} on {{ $labels.instance }}; the alerts on its metrics are blind.",
        },
        {
            alert: "PostgreSQLDown",
            expr: `pg_up{${POSTGRES}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "PostgreSQL {{ $labels.instance }} is down",
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
            alert: "PatroniNoLeader",
            // Also when no member's Patroni answers: nothing then says a leader runs.
            expr: `absent(${LEADER})`,
            forSeconds,
            severity: "critical",
            summary: "No PostgreSQL member leads",
            description:
                `No member's Patroni reports itself the leader: writes fail. A failover takes up to failoverTtl (${s.failover.ttlSeconds} s) ` +
                "and a promotion; longer than that, no member could be promoted (none within the failover lag bound, or etcd has no quorum).",
        },
        {
            alert: "PatroniMultipleLeaders",
            expr: `count(${LEADER}) > 1`,
            forSeconds,
            severity: "critical",
            summary: "More than one PostgreSQL member leads",
            description:
                "More than one member's Patroni reports itself the leader: both may take writes that the other never sees (split brain).",
        },
        {
            alert: "PatroniFailover",
            // The highest timeline of the running members: a promotion raises it, a
            // member that merely restarts (timeline 0 while stopped) does not move it.
            expr: `changes(max(patroni_postgres_timeline{${PATRONI}} > 0)[${forSeconds + FAILOVER_NOTICE_SECONDS}s:]) > 0`,
            forSeconds,
            severity: "warning",
            summary: "The PostgreSQL leader changed",
            description:
                "A member was promoted (the cluster's timeline rose): a failover or a switchover. " +
                "Check why the old leader lost its role and that it streams from the new one.",
        },
        {
            alert: "PatroniFailsafeActive",
            expr: `max(patroni_failsafe_mode_is_active{${PATRONI}}) == 1`,
            forSeconds,
            severity: "critical",
            summary: "Patroni runs in failsafe mode: etcd is unreachable",
            description:
                "Patroni cannot reach etcd. The leader keeps its role only while every member answers it; " +
                "no failover can happen until etcd answers again.",
        },
        {
            alert: "PatroniMaintenanceMode",
            expr: `max(patroni_is_paused{${PATRONI}}) == 1`,
            forSeconds: MAINTENANCE_ALERT_SECONDS,
            severity: "warning",
            summary: "Automatic failover is off: Patroni's maintenance mode",
            description:
                `The cluster has been in maintenance mode for ${MAINTENANCE_ALERT_SECONDS / 60} minutes (scripts/cluster.sh pause, or pause-delayed): ` +
                "a dead leader is not replaced until it resumes (cluster.sh resume, or resume-delayed).",
        },
        {
            alert: "PostgreSQLMemberNotStreaming",
            // Every member's Patroni is a target, so a member that is down shows up here too.
            expr: `up{${PATRONI}} unless on (instance) (${LEADER} or patroni_postgres_streaming{${PATRONI}} == 1)`,
            forSeconds,
            severity: "critical",
            summary: "Member {{ $labels.instance }} neither leads nor streams",
            description:
                "{{ $labels.instance }} is not the leader and is not streaming WAL from it: it is down, catching up, or cannot connect, " +
                "and a failover cannot promote it. " +
                `Its slot keeps WAL on the leader meanwhile, up to maxSlotWalKeepSizeMb (${s.maxSlotWalKeepSizeMb} MB).`,
        },
        {
            alert: "PostgreSQLMemberPastFailoverLag",
            expr: `max by (instance) (${walNotReceivedByMember(s)}) > ${failoverLagBytes}`,
            forSeconds,
            severity: "warning",
            summary: `Member {{ $labels.instance }} has not received more than ${mb(failoverLagBytes)} of the leader's WAL`,
            description:
                `{{ $labels.instance }} lags past maximumLagOnFailoverMb (${s.maximumLagOnFailoverMb} MB): ` +
                "Patroni would not promote it in a failover, and the read-only route skips it.",
        },
        {
            alert: "PostgreSQLReplicationLagBytes",
            expr: `max by (instance) (${exceptDelayedReplica(s, replicationByReplica())}) > ${limit.replicationLagBytes}`,
            forSeconds,
            severity: "warning",
            summary: `Replica {{ $labels.instance }} is more than ${mb(limit.replicationLagBytes)} of WAL behind`,
            description: `WAL the leader has written but {{ $labels.instance }} has not replayed exceeds replicationLagAlertMb (${m.alerts.replicationLagMb} MB).`,
        },
        {
            alert: "PostgreSQLReplicationLagSeconds",
            expr: `max by (instance) (${onReplicas(`pg_replication_lag_seconds{${POSTGRES}}`)}) > ${limit.replicationLagSeconds}`,
            forSeconds,
            severity: "warning",
            summary: `Replica {{ $labels.instance }} replays more than ${limit.replicationLagSeconds} s behind`,
            description: `Reads from {{ $labels.instance }} are older than replicationLagAlertSeconds (${limit.replicationLagSeconds} s).`,
        },
        {
            alert: "PostgreSQLReplicationSlotInactive",
            // Replicas keep copies of the slots, unused until they lead: only the leader's count.
            expr: `max by (instance, slot_name) (${onLeader(`pg_replication_slot_slot_is_active{${POSTGRES}}`)}) == 0`,
            forSeconds,
            severity: "warning",
            summary: "Replication slot {{ $labels.slot_name }} is inactive",
            description: "No member streams through {{ $labels.slot_name }}, so the leader keeps WAL for it until the slot is invalidated.",
        },
        {
            alert: "PostgreSQLReplicationSlotWalNearLimit",
            expr: `max by (instance, slot_name) (${onLeader(`pg_replication_slots_pg_wal_lsn_diff{${POSTGRES}}`)}) >= ${limit.slotWalBytes}`,
            forSeconds,
            severity: "critical",
            summary: "Replication slot {{ $labels.slot_name }} retains WAL near max_slot_wal_keep_size",
            description:
                `{{ $labels.slot_name }} retains at least ${m.alerts.slotWalPercent}% of maxSlotWalKeepSizeMb (${mb(limit.slotWalBytes)} of ${s.maxSlotWalKeepSizeMb} MB); ` +
                "at the limit the slot is invalidated and its member must be cloned again.",
        },
        {
            alert: "PostgreSQLConnectionsNearLimit",
            expr: `sum by (instance) (pg_stat_database_numbackends{${POSTGRES}}) >= ${limit.serverConnections}`,
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
            alert: "RouterNoLeader",
            expr: `haproxy_backend_active_servers{${HAPROXY}, proxy="${rw}"} == 0`,
            forSeconds,
            severity: "critical",
            summary: "The read-write route has no server",
            description:
                `HAProxy's ${rw} backend finds no member whose Patroni API calls it the leader: PgBouncer's ` +
                "read-write pool cannot reach PostgreSQL, and writes fail.",
        },
        {
            alert: "RouterServerDown",
            // Each backend serves only some members (the leader, or the replicas):
            // a server is missed only when Patroni gives its member that role.
            expr: `(${routerServersDown(rw)} and on (instance) ${LEADER}) or (${routerServersDown(ro)} and on (instance) ${REPLICAS})`,
            forSeconds,
            severity: "warning",
            summary: "HAProxy's {{ $labels.proxy }} backend does not serve {{ $labels.instance }}",
            description:
                "HAProxy marks {{ $labels.instance }} DOWN in {{ $labels.proxy }} although Patroni gives it that backend's role: " +
                "its REST API does not answer HAProxy's check, or (read-only) it lags past maximumLagOnFailoverMb.",
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
 * How late the newest passed restore drill may be past `restoreDrillEvery`
 * before it counts as missing: a drill of a large database (verify, restore,
 * recovery, checks) takes hours, and a drill that fails is
 * RestoreDrillFailed's, so this only has to catch drills that stop running
 * or never finish.
 */
export const DRILL_LATE_SECONDS = 86_400;

/** Age past which the newest passed restore drill is too old (RestoreDrillTooOld; the dashboard's line). */
export function restoreDrillOldestSeconds(b: BackupSettings): number {
    return b.restoreDrillEverySeconds + DRILL_LATE_SECONDS;
}

/**
 * Alerts on the backups: the newest one older than the schedule allows, a
 * failed scheduled run, and WAL archiving stalled (the backup container's
 * check pushes a segment every ARCHIVE_CHECK_SECONDS, so even an idle
 * cluster archives that often) or failing; and the restore drill failing, or
 * not having passed for longer than its schedule allows.
 */
export function backupAlertRules(b: BackupSettings, m: MonitoringSettings): AlertRule[] {
    const forSeconds = m.alerts.forSeconds;
    const oldest = b.diffEverySeconds + BACKUP_LATE_SECONDS;
    const walStalled = 3 * ARCHIVE_CHECK_SECONDS;
    const drillOldest = restoreDrillOldestSeconds(b);
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
        {
            alert: "RestoreDrillFailed",
            expr: `${RESTORE_DRILL_METRICS.lastRunSuccess[0]}{${BACKUP}} == 0`,
            forSeconds,
            severity: "critical",
            summary: "The last restore drill failed",
            description:
                "The newest backup or its WAL did not restore and pass the drill's checks, so a restore may fail too; " +
                "run scripts/backup.sh drill for the report and read the backup container's log. The drill is retried within an hour.",
        },
        {
            alert: "RestoreDrillTooOld",
            // Warning, not critical: backups and archiving keep their own critical alerts, and a
            // failing drill raises RestoreDrillFailed; this adds drills that stop running or never finish.
            expr: `time() - max(${RESTORE_DRILL_METRICS.lastSuccess[0]}{${BACKUP}}) > ${drillOldest}`,
            forSeconds,
            severity: "warning",
            summary: `No restore drill has passed for ${drillOldest} s`,
            description:
                `No restore drill has passed for longer than restoreDrillEvery (${b.restoreDrillEverySeconds} s) plus ${DRILL_LATE_SECONDS} s ` +
                "(before the first one passes, counted from when the drill schedule began): drills stopped running or do not finish, " +
                "so no recent backup is proven to restore; see the backup container's log.",
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
