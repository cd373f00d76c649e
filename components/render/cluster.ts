// What every file of the cluster says, as plain data computed from the
// settings; the format-specific renderers beside this file turn it into bytes.
import {
    type ClusterSettings,
    maxReplicationSlots,
    maxWalSenders,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    pgbouncerFileLimit,
    pooledServerConnections,
    ROLES,
    readonlyDatabase,
    SUPERUSER_RESERVED_CONNECTIONS,
} from "../settings";
import { libpqConnstringValue, shellWord, sqlLiteral } from "./escape";
import { FILES, SOCKET_DIR } from "./paths";
import type { HbaRule } from "./pg-hba";
import { archiveParameters } from "./pgbackrest";
import type { PgbouncerIni } from "./pgbouncer-ini";
import type { ConfValue } from "./postgresql-conf";

/** Docker names of the cluster's objects; containers reach each other by these names. */
export function nodeNames(s: ClusterSettings) {
    return {
        network: `${s.clusterName}-net`,
        primary: `${s.clusterName}-primary`,
        replica: (index: number) => `${s.clusterName}-replica-${index}`,
        /**
         * A network alias every replica answers to: Docker's DNS returns all
         * of them, and PgBouncer spreads connections over the addresses.
         */
        replicas: `${s.clusterName}-replicas`,
        pgbouncer: `${s.clusterName}-pgbouncer`,
        /** pgBackRest's repository host: runs the backups, receives the WAL. */
        backup: `${s.clusterName}-backup`,
        volume: (node: string) => `${node}-data`,
    };
}

/**
 * The names each node's certificate covers, by node ("primary", "replica-k",
 * "pgbouncer", "backup"): how its peers reach it (its container name, and the replicas'
 * shared alias) and how operators reach it from the host.
 */
export function certificateNames(s: ClusterSettings): Record<string, { dnsNames: string[]; ipAddresses: string[] }> {
    const names = nodeNames(s);
    const ipAddresses = [...new Set(["127.0.0.1", s.publishAddress])].filter((ip) => ip !== "0.0.0.0");
    const nodes: Array<[string, string[]]> = [
        ["primary", [names.primary]],
        ...Array.from({ length: s.replicaCount }, (_, i): [string, string[]] => [
            `replica-${i + 1}`,
            [names.replica(i + 1), names.replicas],
        ]),
        ["pgbouncer", [names.pgbouncer]],
        ["backup", [names.backup]],
    ];
    return Object.fromEntries(nodes.map(([node, dnsNames]) => [node, { dnsNames: [...dnsNames, "localhost"], ipAddresses }]));
}

/** Node name of the primary in cluster_name and logs. */
export const PRIMARY_NODE = "primary";

/** Node name of replica `index` (1-based): its cluster_name and the application name it streams under. */
export function replicaNode(index: number): string {
    return `replica_${index}`;
}

/** Physical replication slot of replica `index` (1-based). */
export function slotName(index: number): string {
    return `${replicaNode(index)}_slot`;
}

/**
 * Parameters shared by the primary and its replicas. A hot standby refuses to
 * start when max_connections, max_wal_senders, max_worker_processes,
 * max_locks_per_transaction or max_prepared_transactions is below the
 * primary's, so both render them from the same settings.
 */
export function postgresParameters(s: ClusterSettings, node: string): Record<string, ConfValue> {
    return {
        // Names the node in ps output and lets a client see which server answered.
        cluster_name: node,
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
        max_wal_senders: maxWalSenders(s.replicaCount),
        max_replication_slots: maxReplicationSlots(s.replicaCount),
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

/** Extra parameters of replica `index`: where to stream from, through which slot. */
export function standbyParameters(s: ClusterSettings, index: number): Record<string, ConfValue> {
    const conninfo = {
        application_name: replicaNode(index),
        host: nodeNames(s).primary,
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
        primary_slot_name: slotName(index),
    };
}

/**
 * pg_hba.conf rules: peer on the local socket (the start script and operators'
 * `docker exec`), replication only for the replication role over TLS from the
 * cluster's own network, the replication role nowhere else, everyone else by
 * password — over TLS only when clients are required to use it.
 */
export function hbaSections(s: ClusterSettings): Array<{ title: string; rules: HbaRule[] }> {
    const clients = s.clientTlsSslmode === "require" ? "hostssl" : "host";
    return [
        {
            title: "Local socket: operating-system user must match the role",
            rules: [{ type: "local", database: "all", user: "all", method: "peer" }],
        },
        {
            title: "Streaming replication: the replication role, from the cluster network only",
            rules: [
                { type: "hostssl", database: "replication", user: ROLES.replication, address: "samenet", method: s.authMethod },
                { type: "host", database: "replication", user: "all", address: "all", method: "reject" },
                { type: "host", database: "all", user: ROLES.replication, address: "all", method: "reject" },
            ],
        },
        {
            title: clients === "hostssl" ? "Everything else: password, over TLS only" : "Everything else: password",
            rules: [{ type: clients, database: "all", user: "all", address: "all", method: s.authMethod }],
        },
    ];
}

/**
 * pgbouncer.ini: the read-write database on the primary, the read-only one on
 * the replicas' shared alias. One name rather than a host list, because
 * PgBouncer checks a certificate against the whole `host` value, and so that
 * scaling the replicas does not change PgBouncer's configuration.
 */
export function pgbouncerConfig(s: ClusterSettings): PgbouncerIni {
    const names = nodeNames(s);
    return {
        databases: {
            [s.database]: { host: names.primary, port: POSTGRES_PORT, dbname: s.database },
            [readonlyDatabase(s)]: { host: names.replicas, port: POSTGRES_PORT, dbname: s.database },
        },
        settings: {
            listen_addr: "*",
            listen_port: PGBOUNCER_PORT,
            unix_socket_dir: SOCKET_DIR,
            auth_type: s.authMethod,
            auth_file: FILES.userlist,
            admin_users: ROLES.pgbouncerAdmin,
            stats_users: ROLES.monitoring,
            pool_mode: s.pool.mode,
            default_pool_size: s.pool.defaultPoolSize,
            reserve_pool_size: s.pool.reservePoolSize,
            // Caps each database's server connections, so PostgreSQL never sees
            // more than the pool and its reserve whatever the number of users.
            max_db_connections: pooledServerConnections(s.pool),
            max_client_conn: s.pool.maxClientConn,
            query_wait_timeout: s.pool.queryWaitTimeoutSeconds,
            // Lets a burst of new clients queue in the kernel instead of being refused.
            listen_backlog: Math.min(s.pool.maxClientConn, 4096),
            server_round_robin: 1,
            // After a failed server login PgBouncer waits this long before the
            // next try (default 15 s): it is the write gap of a primary restart.
            server_login_retry: 1,
            client_tls_sslmode: s.clientTlsSslmode,
            client_tls_ca_file: FILES.tlsCa,
            client_tls_cert_file: FILES.tlsCert,
            client_tls_key_file: FILES.tlsKey,
            // PgBouncer checks each server's certificate and host name against the stack's CA.
            server_tls_sslmode: "verify-full",
            server_tls_ca_file: FILES.tlsCa,
            ignore_startup_parameters: "extra_float_digits",
        },
    };
}

/** Open-files limit for the PgBouncer container. */
export function pgbouncerUlimit(s: ClusterSettings): number {
    return pgbouncerFileLimit(s.pool);
}

/** Runs SQL as the superuser over the primary's local socket, from wherever Pulumi runs. */
function primarySql(s: ClusterSettings, sql: string): string {
    return `docker exec -u postgres ${shellWord(nodeNames(s).primary)} psql -X -q -v ON_ERROR_STOP=1 -d postgres -c ${shellWord(sql)}`;
}

/** Creates replica `index`'s slot on the primary if it does not exist yet. */
export function createSlotCommand(s: ClusterSettings, index: number): string {
    const slot = sqlLiteral(slotName(index));
    return primarySql(
        s,
        `SELECT pg_create_physical_replication_slot(${slot}) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = ${slot})`,
    );
}

/**
 * Drops replica `index`'s slot, so the primary stops keeping WAL for a replica
 * that is gone. The replica is removed first; its WAL sender may take a moment
 * to exit, while the slot is still active, hence the bounded retry. With no
 * primary container there is no slot left to drop.
 */
export function dropSlotCommand(s: ClusterSettings, index: number): string {
    const slot = sqlLiteral(slotName(index));
    const drop = primarySql(s, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${slot}`);
    return [
        `docker container inspect ${shellWord(nodeNames(s).primary)} >/dev/null 2>&1 || exit 0`,
        `for attempt in $(seq 1 30); do ${drop} && exit 0; sleep 1; done`,
        "exit 1",
    ].join("\n");
}
