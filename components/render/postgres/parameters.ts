// The PostgreSQL parameters of each member, as plain data; postgresql-conf.ts
// writes them out. Layered as CloudNativePG layers them: defaults, then the
// operator's own (config postgresParameters), then the values sized from the
// member's container and the parameters the program owns, which nothing
// before them may override (parameter-settings.ts refuses them up front).

import { PRELOADED_LIBRARIES, readOnlyAtStart } from "../../postgres-catalog";
import { type ClusterSettings, MAX_REPLICATION_SLOTS, MAX_WAL_SENDERS, SUPERUSER_RESERVED_CONNECTIONS } from "../../settings";
import { AUTOVACUUM_MAX_WORKERS, type PostgresSizing, postgresSize, postgresSizing } from "../../sizing";
import { FILES, MEMBER_TLS_FILES, SOCKET_DIR } from "../paths";
import { archiveParameters } from "../pgbackrest/pgbackrest";
import type { ConfValue } from "./postgresql-conf";

/**
 * Every member's parameters: the same on each, since any member may lead.
 * Patroni's dynamic configuration in etcd carries the cluster-wide ones and
 * every one PostgreSQL can reload (dynamicParameters), except those that name
 * the member's TLS files (memberFileParameters, in patroni.yml);
 * postgresql.conf the rest (postgresqlConfParameters).
 */
export function postgresParameters(s: ClusterSettings): Record<string, ConfValue> {
    return {
        ...TUNING_DEFAULTS,
        // PostgreSQL's names are case-insensitive: in one case, so each overrides its default.
        ...Object.fromEntries(Object.entries(s.postgresParameters).map(([name, value]) => [name.toLowerCase(), value])),
        ...sizedParameters(postgresSizing(s.postgresResources, s.maxConnections)),
        ...ownedParameters(s),
    };
}

/**
 * The parameters Patroni takes from its dynamic configuration only, ignoring
 * local values: a standby may not run below the primary's value of most of
 * them (Patroni's `CMDLINE_OPTIONS` in patroni/postgresql/config.py, 4.0.7).
 */
export const CLUSTER_WIDE_PARAMETERS: ReadonlySet<string> = new Set([
    "max_connections",
    "max_wal_senders",
    "max_replication_slots",
    "max_worker_processes",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "track_commit_timestamp",
    "wal_level",
    "wal_log_hints",
    "wal_keep_size",
    "hot_standby",
]);

/**
 * The parameters a hot standby may not run below the primary's value of
 * (PostgreSQL's documentation, "Hot Standby", administrator's overview), all
 * integers. A standby records the primary's values as it replays them, and
 * Patroni starts it with the recorded one when that is higher.
 */
export const HOT_STANDBY_MINIMUMS: readonly string[] = [
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_wal_senders",
    "max_worker_processes",
];

/**
 * The parameters that name the member's TLS files, which live in its own
 * container and volume: in each member's patroni.yml (memberFileParameters),
 * whose parameters take precedence over etcd's, so that while an update
 * replaces the members one at a time, a replaced member and one not yet
 * replaced each name the files their own container has.
 */
const MEMBER_FILE_PARAMETERS: ReadonlySet<string> = new Set(["ssl_ca_file", "ssl_cert_file", "ssl_key_file"]);

/** Only in postgresql.conf: needed at start, and Patroni does not take them from etcd. */
function startOnly(name: string): boolean {
    return readOnlyAtStart(name) && !CLUSTER_WIDE_PARAMETERS.has(name);
}

function pick(parameters: Record<string, ConfValue>, wanted: (name: string) => boolean): Record<string, ConfValue> {
    return Object.fromEntries(Object.entries(parameters).filter(([name]) => wanted(name)));
}

/**
 * For Patroni's dynamic configuration in etcd: the cluster-wide parameters
 * and every reloadable one. A change reaches every member through Patroni
 * (leader-commands.ts), which reloads PostgreSQL: no container is replaced,
 * and only a cluster-wide parameter that needs a restart restarts a member.
 */
export function dynamicParameters(s: ClusterSettings): Record<string, ConfValue> {
    return pick(postgresParameters(s), (name) => !startOnly(name) && !MEMBER_FILE_PARAMETERS.has(name));
}

/** For the member's own patroni.yml: where its TLS files are (MEMBER_FILE_PARAMETERS). */
export function memberFileParameters(s: ClusterSettings): Record<string, ConfValue> {
    return pick(postgresParameters(s), (name) => MEMBER_FILE_PARAMETERS.has(name));
}

/**
 * For the postgresql.conf Patroni includes (`custom_conf`) under its own
 * settings: the rest, which need a restart. They stay in a file, so a change
 * replaces the members, each stopped by Patroni's graceful shutdown, in which
 * a leader hands its key over first; Patroni would restart a leader in place.
 */
export function postgresqlConfParameters(s: ClusterSettings): Record<string, ConfValue> {
    return pick(postgresParameters(s), startOnly);
}

/** Defaults that do not depend on the node's size: SSD storage, WAL and checkpoints for OLTP. */
const TUNING_DEFAULTS: Readonly<Record<string, ConfValue>> = {
    /** Spread a checkpoint's writes over 90% of the interval: PostgreSQL's default since 14 (commit bbcc4eb2), pgtune, autobase. */
    checkpoint_completion_target: 0.9,
    /** pgtune's web profile: WAL kept for reuse up to 1GB, a checkpoint forced once 4GB accumulate (PostgreSQL's 1GB forces them early under sustained writes). */
    min_wal_size: "1GB",
    max_wal_size: "4GB",
    /** Compress full-page images with lz4, cheaper in CPU than pglz: pgtune for PostgreSQL 15+, Pigsty's oltp.yml. */
    wal_compression: "lz4",
    /** SSD: a random read costs little more than a sequential one. pgtune, autobase and Pigsty (4 is PostgreSQL's default, for spinning disks). */
    random_page_cost: 1.1,
    /** SSD: prefetch 200 pages of a bitmap heap scan at once. pgtune, autobase and Pigsty (PostgreSQL's default is 1). */
    effective_io_concurrency: 200,
};

/** The memory and worker parameters from the member's limits; each figure's source is on PostgresSizing. */
function sizedParameters(z: PostgresSizing): Record<string, ConfValue> {
    return {
        shared_buffers: postgresSize(z.sharedBuffersKb),
        effective_cache_size: postgresSize(z.effectiveCacheSizeKb),
        work_mem: postgresSize(z.workMemKb),
        maintenance_work_mem: postgresSize(z.maintenanceWorkMemKb),
        autovacuum_max_workers: AUTOVACUUM_MAX_WORKERS,
        wal_buffers: postgresSize(z.walBuffersKb),
        max_worker_processes: z.maxWorkerProcesses,
        max_parallel_workers: z.maxParallelWorkers,
        max_parallel_workers_per_gather: z.maxParallelWorkersPerGather,
        max_parallel_maintenance_workers: z.maxParallelMaintenanceWorkers,
    };
}

/**
 * What the program's design depends on: files, replication, TLS, auditing,
 * logging. Patroni sets listen_addresses, port and cluster_name itself.
 */
function ownedParameters(s: ClusterSettings): Record<string, ConfValue> {
    return {
        hba_file: FILES.pgHba,
        unix_socket_directories: SOCKET_DIR,
        max_connections: s.maxConnections,
        superuser_reserved_connections: SUPERUSER_RESERVED_CONNECTIONS,
        password_encryption: s.authMethod,
        wal_level: "replica",
        wal_log_hints: true,
        // PostgreSQL's defaults, owned so that postgresParameters cannot trade away durability:
        // production's quorum commit promises that a failover loses no acknowledged commit.
        fsync: true,
        full_page_writes: true,
        synchronous_commit: "on",
        ...archiveParameters(),
        max_wal_senders: MAX_WAL_SENDERS,
        max_replication_slots: MAX_REPLICATION_SLOTS,
        max_slot_wal_keep_size: `${s.maxSlotWalKeepSizeMb}MB`,
        // WAL kept beyond the slots, for a member that rejoins through pg_rewind (Patroni's
        // minimum is 16MB and it replaces a lower value with its default, 128MB).
        wal_keep_size: "128MB",
        hot_standby: true,
        hot_standby_feedback: true,
        // How long a replica that found no WAL waits before it tries the archive and the leader
        // again (default 5 s). A promotion requested meanwhile can wait it out: seen as 4.3 s of
        // a 7.3 s write gap when a leader was stopped.
        wal_retrieve_retry_interval: "1s",
        ssl: true,
        ssl_cert_file: MEMBER_TLS_FILES.cert,
        ssl_key_file: MEMBER_TLS_FILES.key,
        ssl_ca_file: FILES.tlsCa,
        ssl_min_protocol_version: "TLSv1.2",
        shared_preload_libraries: PRELOADED_LIBRARIES.join(","),
        "pg_stat_statements.track": "top",
        // Session audit log to stderr, the container's log. pgaudit redacts
        // the password of CREATE/ALTER ROLE, so verifiers never reach it.
        "pgaudit.log": s.auditLog,
        // Statement parameters can carry application data; the statement is enough.
        "pgaudit.log_parameter": false,
        timezone: s.timezone,
        log_timezone: s.timezone,
        log_destination: "stderr",
        logging_collector: false,
        log_line_prefix: "%m [%p] %q%u@%d ",
    };
}
