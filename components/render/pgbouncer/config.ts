// What PgBouncer's pgbouncer.ini says, as plain data; pgbouncer-ini.ts writes it out.
import {
    type ClusterSettings,
    HAPROXY_METRICS_PORT,
    PATRONI_REST_PORT,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    pooledServerConnections,
    ROLES,
    ROUTER_CONNECTION_LIMIT,
    ROUTER_PORTS,
    readonlyDatabase,
} from "../../settings";
import { clusterTopology, possibleMembers } from "../../topology";
import type { HaproxySpec } from "../haproxy/haproxy-cfg";
import {
    FILES,
    PGBOUNCER_RELOADABLE_DIR,
    PGBOUNCER_RELOADABLE_FILE,
    PGBOUNCER_TLS_FILES,
    PGBOUNCER_USERLIST_FILE,
    ROUTER_ADMIN_SOCKET,
    SOCKET_DIR,
} from "../paths";
import type { VolumeTarget } from "../volume-command";
import type { IniValue, PgbouncerIni } from "./pgbouncer-ini";

/** How long PgBouncer keeps a server connection (server_lifetime; see pgbouncerConfig). */
export const SERVER_LIFETIME_SECONDS = 60;

/**
 * Connections the kernel queues for PgBouncer to accept (listen_backlog): a
 * burst of new clients waits there instead of being refused. PgBouncer reads
 * it only at start, so it is fixed; the kernel caps it at net.core.somaxconn
 * (4096 by default).
 */
const LISTEN_BACKLOG = 4096;

/** How long a server connection may take to connect and log in (server_connect_timeout; see pgbouncerConfig). */
const SERVER_CONNECT_TIMEOUT_SECONDS = 3;

/**
 * pgbouncer.ini: the read-write database through the router's read-write
 * route (the leader), the read-only one through its read-only route (the
 * replicas). The routes' names resolve to loopback in PgBouncer's container
 * and every member's certificate carries them, so verify-full holds; and
 * neither scaling nor a failover changes PgBouncer's configuration. The
 * pool's sizes and waits and the client limit come from an included file (see
 * pgbouncerReloadableSettings); what this file sets wins over it.
 */
export function pgbouncerConfig(s: ClusterSettings): PgbouncerIni {
    const t = clusterTopology(s);
    return {
        include: PGBOUNCER_RELOADABLE_FILE,
        databases: {
            [s.database]: { host: t.routes.readWrite, port: ROUTER_PORTS.readWrite, dbname: s.database },
            [readonlyDatabase(s)]: { host: t.routes.readOnly, port: ROUTER_PORTS.readOnly, dbname: s.database },
        },
        settings: {
            listen_addr: "*",
            listen_port: PGBOUNCER_PORT,
            unix_socket_dir: SOCKET_DIR,
            auth_type: s.authMethod,
            auth_file: PGBOUNCER_USERLIST_FILE,
            admin_users: ROLES.pgbouncerAdmin,
            stats_users: ROLES.monitoring,
            pool_mode: s.pool.mode,
            listen_backlog: LISTEN_BACKLOG,
            server_round_robin: 1,
            // After a failed server login PgBouncer waits this long before the
            // next try (default 15 s): it adds to the write gap of a failover.
            server_login_retry: 1,
            // How long a server connection may take to connect and log in (default 15 s). Each goes
            // through the router, and HAProxy 3.0 leaves one unanswered and open when the member it
            // was connecting to is marked down meanwhile (a leader stopped with docker stop, as
            // writers reconnect): PgBouncer then gives up on it after this long, and tries again.
            server_connect_timeout: SERVER_CONNECT_TIMEOUT_SECONDS,
            // A server connection is closed once released after this long (default 3600 s). The router
            // cannot move an open session: while no replica streams, the read-only pool's connections go
            // to the leader, and this is how soon they return to a replica that streams again.
            server_lifetime: SERVER_LIFETIME_SECONDS,
            client_tls_sslmode: s.clientTlsSslmode,
            client_tls_ca_file: FILES.tlsCa,
            // On the volume, where the certificate command writes them: a renewal is a RELOAD.
            client_tls_cert_file: PGBOUNCER_TLS_FILES.cert,
            client_tls_key_file: PGBOUNCER_TLS_FILES.key,
            // PgBouncer checks each server's certificate and host name against the stack's CA.
            server_tls_sslmode: "verify-full",
            server_tls_ca_file: FILES.tlsCa,
            ignore_startup_parameters: "extra_float_digits",
        },
    };
}

/**
 * The settings PgBouncer applies on RELOAD, to the pools and clients it
 * already has: changing them costs no client its connection. What is fixed at
 * PgBouncer's start (the router's connection limit, the open-files limit) is
 * sized for the largest values validation allows. A lowered client limit
 * closes no connection: PgBouncer refuses new clients until fewer are connected.
 */
export function pgbouncerReloadableSettings(s: ClusterSettings): Record<string, IniValue> {
    return {
        max_client_conn: s.pool.maxClientConn,
        default_pool_size: s.pool.defaultPoolSize,
        reserve_pool_size: s.pool.reservePoolSize,
        // Caps each database's server connections, so PostgreSQL never sees
        // more than the pool and its reserve whatever the number of users.
        max_db_connections: pooledServerConnections(s.pool),
        query_wait_timeout: s.pool.queryWaitTimeoutSeconds,
    };
}

/**
 * The router's config: every member the stack may have (MAX_REPLICAS
 * replicas), checked through Patroni's REST API. A member not running has no
 * address on the cluster network, and the router keeps it in maintenance
 * until its name resolves; so scaling changes neither this file nor
 * PgBouncer's container, whose clients keep their connections.
 */
export function routerConfig(s: ClusterSettings): HaproxySpec {
    return {
        members: possibleMembers(s).map((m) => ({ name: m.node, host: m.container })),
        postgresPort: POSTGRES_PORT,
        restPort: PATRONI_REST_PORT,
        readWritePort: ROUTER_PORTS.readWrite,
        readOnlyPort: ROUTER_PORTS.readOnly,
        metricsPort: HAPROXY_METRICS_PORT,
        caFile: FILES.tlsCa,
        adminSocket: ROUTER_ADMIN_SOCKET,
        maxReadLagMb: s.maximumLagOnFailoverMb,
        maxConnections: ROUTER_CONNECTION_LIMIT,
    };
}

/** In PgBouncer's container the routes' names lead to the router on loopback. */
export function routeHosts(s: ClusterSettings): Array<{ host: string; ip: string }> {
    const { routes } = clusterTopology(s);
    return [routes.readWrite, routes.readOnly].map((host) => ({ host, ip: "127.0.0.1" }));
}

/** PgBouncer's container and the volume its commands write the files it reloads to. */
export function pgbouncerVolumeTarget(s: ClusterSettings): VolumeTarget {
    const { pgbouncer } = clusterTopology(s);
    return { container: pgbouncer.container, volume: pgbouncer.volume, mountPath: PGBOUNCER_RELOADABLE_DIR };
}
