// What PgBouncer's pgbouncer.ini says, as plain data; pgbouncer-ini.ts writes it out.
import {
    type ClusterSettings,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    pgbouncerFileLimit,
    pooledServerConnections,
    ROLES,
    readonlyDatabase,
} from "../../settings";
import { clusterTopology } from "../../topology";
import { FILES, SOCKET_DIR } from "../paths";
import type { PgbouncerIni } from "./pgbouncer-ini";

/**
 * pgbouncer.ini: the read-write database on the primary, the read-only one on
 * the replicas' shared alias. One name rather than a host list, because
 * PgBouncer checks a certificate against the whole `host` value, and so that
 * scaling the replicas does not change PgBouncer's configuration.
 */
export function pgbouncerConfig(s: ClusterSettings): PgbouncerIni {
    const t = clusterTopology(s);
    return {
        databases: {
            [s.database]: { host: t.primary.container, port: POSTGRES_PORT, dbname: s.database },
            [readonlyDatabase(s)]: { host: t.replicasAlias, port: POSTGRES_PORT, dbname: s.database },
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
