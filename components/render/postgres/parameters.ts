// The PostgreSQL parameters of each member, as plain data; postgresql-conf.ts
// writes them out. Layered as CloudNativePG layers them: defaults, then the
// values sized from the member's container, then the parameters the program
// owns, which nothing before them may override.

import {
    type ClusterSettings,
    MAX_REPLICATION_SLOTS,
    MAX_WAL_SENDERS,
    POSTGRES_PORT,
    ROLES,
    SUPERUSER_RESERVED_CONNECTIONS,
} from "../../settings";
import { AUTOVACUUM_MAX_WORKERS, type PostgresSizing, postgresSize, postgresSizing } from "../../sizing";
import type { PostgresMember, ReplicaMember } from "../../topology";
import { libpqConnstringValue } from "../escape";
import { FILES, SOCKET_DIR } from "../paths";
import { archiveParameters } from "../pgbackrest/pgbackrest";
import type { ConfValue } from "./postgresql-conf";

/**
 * Parameters shared by the primary and its replicas. A hot standby refuses to
 * start when max_connections, max_wal_senders, max_worker_processes,
 * max_locks_per_transaction or max_prepared_transactions is below the
 * primary's, so both render them from the same settings.
 */
export function postgresParameters(s: ClusterSettings, member: PostgresMember): Record<string, ConfValue> {
    return {
        ...TUNING_DEFAULTS,
        ...sizedParameters(postgresSizing(s.postgresResources, s.maxConnections)),
        ...ownedParameters(s, member),
    };
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

/** What the program's design depends on: addresses, files, replication, TLS, auditing, logging. */
function ownedParameters(s: ClusterSettings, member: PostgresMember): Record<string, ConfValue> {
    return {
        // Names the node in ps output and lets a client see which server answered.
        cluster_name: member.node,
        listen_addresses: "*",
        port: POSTGRES_PORT,
        hba_file: FILES.pgHba,
        unix_socket_directories: SOCKET_DIR,
        max_connections: s.maxConnections,
        superuser_reserved_connections: SUPERUSER_RESERVED_CONNECTIONS,
        password_encryption: s.authMethod,
        wal_level: "replica",
        wal_log_hints: true,
        ...archiveParameters(),
        max_wal_senders: MAX_WAL_SENDERS,
        max_replication_slots: MAX_REPLICATION_SLOTS,
        max_slot_wal_keep_size: `${s.maxSlotWalKeepSizeMb}MB`,
        hot_standby: true,
        hot_standby_feedback: true,
        ssl: true,
        ssl_cert_file: FILES.tlsCert,
        ssl_key_file: FILES.tlsKey,
        ssl_ca_file: FILES.tlsCa,
        ssl_min_protocol_version: "TLSv1.2",
        shared_preload_libraries: "pg_stat_statements,pgaudit",
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

/** Extra parameters of a replica: where to stream from, through which slot. */
export function standbyParameters(primary: PostgresMember, replica: ReplicaMember): Record<string, ConfValue> {
    const conninfo = {
        application_name: replica.node,
        host: primary.container,
        passfile: FILES.pgpass,
        port: POSTGRES_PORT,
        sslmode: "verify-full",
        sslrootcert: FILES.tlsCa,
        user: ROLES.replication,
    };
    return {
        primary_conninfo: Object.entries(conninfo)
            .map(([key, value]) => `${key}=${libpqConnstringValue(String(value))}`)
            .join(" "),
        primary_slot_name: replica.slot,
    };
}
