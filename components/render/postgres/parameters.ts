// The PostgreSQL parameters of each member, as plain data; postgresql-conf.ts
// writes them out.

import {
    type ClusterSettings,
    MAX_REPLICATION_SLOTS,
    MAX_WAL_SENDERS,
    POSTGRES_PORT,
    ROLES,
    SUPERUSER_RESERVED_CONNECTIONS,
} from "../../settings";
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
