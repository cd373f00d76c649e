// Plain, validated description of one cluster, read from stack config by
// `config.ts`. Nothing here imports Pulumi: the renderers and the tests use it
// as ordinary data.
import { isIPv4 } from "node:net";
import { type ParameterValue, validatePostgresParameters } from "./parameter-settings";
import { SettingsError } from "./settings-error";
import { MAX_POSTGRES_CPUS, memoryBudget, type NodeResources, postgresSize, postgresSizing } from "./sizing";

export { SettingsError };

/** How PostgreSQL and PgBouncer store a password; `md5` is kept for old clients only. */
export type AuthMethod = "scram-sha-256" | "md5";
export const AUTH_METHODS: readonly AuthMethod[] = ["scram-sha-256", "md5"];

export type ClientTlsMode = "disable" | "allow" | "prefer" | "require";
export const CLIENT_TLS_MODES: readonly ClientTlsMode[] = ["disable", "allow", "prefer", "require"];

export type PoolMode = "session" | "transaction" | "statement";
export const POOL_MODES: readonly PoolMode[] = ["session", "transaction", "statement"];

/** Roles the program owns; the application role and database come from config. */
export const ROLES = {
    superuser: "postgres",
    replication: "replicator",
    monitoring: "monitoring",
    pgbouncerAdmin: "pgbouncer",
    /** pg_rewind's role: Patroni grants it the functions a rewind reads, nothing more. */
    rewind: "rewinder",
    /** The backup container's restore drill: writes its canary rows on the leader, in a schema of its own. */
    restoreDrill: "restore_drill",
} as const;

/** Patroni's REST API on every member (TLS; changes need the REST credential). */
export const PATRONI_REST_PORT = 8008;
/** HAProxy, in the PgBouncer container, on loopback: the read-write route to the leader and the read-only one to the replicas. */
export const ROUTER_PORTS = { readWrite: 5432, readOnly: 5433 } as const;
/** HAProxy's built-in Prometheus exporter, plain HTTP, metrics only. */
export const HAPROXY_METRICS_PORT = 8404;
/** Patroni refuses a ttl below this (its validator's minimum). */
export const MIN_PATRONI_TTL = 20;
/** Patroni silently raises a lower retry_timeout to this (patroni/config.py, _validate_and_adjust_timeouts). */
export const MIN_PATRONI_RETRY_TIMEOUT = 3;

export const MIN_REPLICAS = 1;
export const MAX_REPLICAS = 10;
/** etcd's own guidance: more than seven members slows every write and adds no useful fault tolerance. */
export const MAX_ETCD_MEMBERS = 7;
/** etcd's client port (TLS, client certificates), its peer port (TLS, peer certificates) and its metrics port (plain HTTP, /metrics and /health only). */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_METRICS_PORT = 2381;
/** Connections kept for exporters and the stats user, counted against max_connections. */
export const MONITORING_CONNECTIONS = 5;
/** PostgreSQL's superuser_reserved_connections, which the program sets. */
export const SUPERUSER_RESERVED_CONNECTIONS = 3;
/** Port PostgreSQL listens on inside every container. */
export const POSTGRES_PORT = 5432;
/** Port PgBouncer listens on inside its container. */
export const PGBOUNCER_PORT = 6432;
/** A PostgreSQL identifier we never need to quote: lower case, at most 63 bytes. */
export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Statement classes pgaudit can log in a session; "-class" excludes one. */
export const AUDIT_CLASSES = ["all", "ddl", "function", "misc", "misc_set", "none", "read", "role", "write"] as const;

/** Platforms the project's image builds for: Debian's packages exist for both. */
export const IMAGE_PLATFORMS = ["linux/amd64", "linux/arm64"] as const;
export type ImagePlatform = (typeof IMAGE_PLATFORMS)[number];

export interface PoolSettings {
    readonly mode: PoolMode;
    readonly defaultPoolSize: number;
    readonly reservePoolSize: number;
    readonly maxClientConn: number;
    /** Longest time a client waits for a server connection (`query_wait_timeout`). */
    readonly queryWaitTimeoutSeconds: number;
}

export interface ClusterSettings {
    /** Prefix of every Docker object: `<project>-<stack>`. */
    readonly clusterName: string;
    /** Image for every container; undefined builds the project's own from `image/`. */
    readonly image: string | undefined;
    /** Platform the project's image is built for: the Docker engine's (`os/arch`). */
    readonly imagePlatform: ImagePlatform;
    readonly replicaCount: number;
    /** Members of the etcd cluster that holds the cluster's state (the DCS): an odd number. */
    readonly etcdMembers: number;
    /** Replicas a commit waits for (Patroni's quorum mode, strict): 0 is asynchronous. */
    readonly synchronousReplicas: number;
    /**
     * Minutes by which the delayed replica replays the leader's commits
     * (recovery_min_apply_delay); 0: the cluster has none. It never leads and
     * serves no reads: a copy of the data as it was, for a mistake undone.
     */
    readonly delayedReplicaMinutes: number;
    /** Patroni promotes no replica further behind than this (maximum_lag_on_failover); HAProxy routes no reads to one either. */
    readonly maximumLagOnFailoverMb: number;
    /** Patroni's leader lease and loop: how fast a dead leader is replaced. */
    readonly failover: FailoverTimings;
    readonly database: string;
    readonly appUser: string;
    readonly timezone: string;
    readonly authMethod: AuthMethod;
    readonly maxConnections: number;
    /** Container limits of every PostgreSQL member, the same for each: a standby may not run with fewer worker slots than its primary. */
    readonly postgresResources: NodeResources;
    readonly maxSlotWalKeepSizeMb: number;
    /** pgaudit's session audit classes (`pgaudit.log`), e.g. "ddl, role". */
    readonly auditLog: string;
    /**
     * The operator's own PostgreSQL parameters, on every member: any PostgreSQL 17 has
     * that the program does not set itself (parameter-settings.ts says which it does).
     */
    readonly postgresParameters: Readonly<Record<string, ParameterValue>>;
    /** Host address the published ports bind to. */
    readonly publishAddress: string;
    /** Whether the primary's and replicas' ports are published on the host; PgBouncer's always is. */
    readonly publishPostgresPorts: boolean;
    /**
     * PgBouncer's client_tls_sslmode. `require` also makes PostgreSQL refuse
     * network logins without TLS; server-side connections always use TLS.
     */
    readonly clientTlsSslmode: ClientTlsMode;
    readonly pgbouncerPort: number;
    readonly primaryPort: number;
    /** Host port of replica 1; replica k is published on `replicaBasePort + k - 1`. */
    readonly replicaBasePort: number;
    readonly pool: PoolSettings;
}

export interface FailoverTimings {
    /** Seconds the leader key lives without renewal (Patroni's ttl): a killed leader is replaced after at most this. */
    readonly ttlSeconds: number;
    /** Seconds between two runs of each member's HA loop (loop_wait). */
    readonly loopWaitSeconds: number;
    /** Seconds a DCS or PostgreSQL call may retry before the member gives up (retry_timeout). */
    readonly retryTimeoutSeconds: number;
}

/** Longest delay of the delayed replica: a week, within recovery_min_apply_delay's limit of 2^31 - 1 ms (24.8 days). */
export const MAX_DELAYED_REPLICA_MINUTES = 10_080;

/** Replicas that stream from the leader: the declared ones and the delayed replica, if any. */
export function streamingReplicas(s: ClusterSettings): number {
    return s.replicaCount + (s.delayedReplicaMinutes > 0 ? 1 : 0);
}

/** Host port on which the delayed replica is published: past every replica the stack may have, so scaling moves it not. */
export function delayedReplicaHostPort(s: ClusterSettings): number {
    return replicaHostPort(s, MAX_REPLICAS + 1);
}

/** Replication connections at once: each replica streams with one and clones with two, plus two for operators' tools. */
export function replicationConnections(replicaCount: number): number {
    return 2 * replicaCount + 2;
}

/**
 * max_wal_senders and max_replication_slots, sized for the largest cluster
 * allowed rather than for this one: both need a restart to change, and a
 * standby may not run below the primary's value, so following the replica
 * count would restart every member on each scaling. The cost is a few
 * unused shared-memory entries per member.
 */
export const MAX_WAL_SENDERS = replicationConnections(MAX_REPLICAS);
/** One slot per replica of the largest cluster allowed, plus two spare for operators' tools (e.g. a backup client). */
export const MAX_REPLICATION_SLOTS = MAX_REPLICAS + 2;

/** Most server connections PgBouncer may open to one PostgreSQL server. */
export function pooledServerConnections(pool: PoolSettings): number {
    return pool.defaultPoolSize + pool.reservePoolSize;
}

/** Connections a server must accept: the pool, replication, monitoring and superuser reserve. */
export function requiredServerConnections(s: ClusterSettings): number {
    return (
        pooledServerConnections(s.pool) +
        replicationConnections(streamingReplicas(s)) +
        MONITORING_CONNECTIONS +
        SUPERUSER_RESERVED_CONNECTIONS
    );
}

/**
 * Open-files limit of PgBouncer's container, which each of its processes has.
 * Docker cannot change it in place, and PgBouncer takes its client limit and
 * pool sizes by RELOAD, so it is fixed and bounds those instead of following
 * them. 16384 fits engines whose own limit is as low as 20000 (such as CI
 * machines without CAP_SYS_RESOURCE); most engines allow 1048576.
 */
export const PGBOUNCER_FILE_LIMIT = 16_384;

/**
 * Connections the router beside PgBouncer admits, all routes together: two
 * descriptors each. Its connections are PgBouncer's server connections to
 * both databases (each database's at most defaultPoolSize + reservePoolSize)
 * and operators' tools; fixed, for the reason above.
 */
export const ROUTER_CONNECTION_LIMIT = 4_096;
/** Router connections kept for operators' tools beside both databases' pools. */
const ROUTER_TOOL_CONNECTIONS = 64;
/** Largest defaultPoolSize + reservePoolSize: both databases' pools within the router's limit. */
export const MAX_POOLED_SERVER_CONNECTIONS = (ROUTER_CONNECTION_LIMIT - ROUTER_TOOL_CONNECTIONS) / 2;
/**
 * Largest maxClientConn: a descriptor per client beside one per server
 * connection of the largest pool, and 256 for listeners, logs and lookups.
 */
export const MAX_CLIENT_CONN = PGBOUNCER_FILE_LIMIT - 2 * MAX_POOLED_SERVER_CONNECTIONS - 256;

/** Host port on which replica `index` (1-based) is published. */
export function replicaHostPort(s: ClusterSettings, index: number): number {
    return s.replicaBasePort + index - 1;
}

/** Host name that reaches the published ports from the Docker host. */
export function connectHost(s: ClusterSettings): string {
    return s.publishAddress === "0.0.0.0" ? "127.0.0.1" : s.publishAddress;
}

/** sslmode for URLs through PgBouncer, or undefined when TLS is disabled there. */
export function pgbouncerUrlSslmode(s: ClusterSettings): string | undefined {
    return s.clientTlsSslmode === "disable" ? undefined : s.clientTlsSslmode;
}

/** sslmode for direct URLs: PostgreSQL always offers TLS, and demands it when clients must use it. */
export function directUrlSslmode(s: ClusterSettings): string {
    return s.clientTlsSslmode === "require" ? "require" : "prefer";
}

/** The read-only PgBouncer database that spreads over the replicas. */
export function readonlyDatabase(s: ClusterSettings): string {
    return `${s.database}_readonly`;
}

function requireInteger(key: string, value: number, min: number, max: number, what: string): void {
    if (!Number.isInteger(value) || value < min || value > max) {
        throw new SettingsError(`${key} must be ${what}, got ${value}`);
    }
}

function isTimezone(name: string): boolean {
    try {
        new Intl.DateTimeFormat("en", { timeZone: name });
        return true;
    } catch {
        return false;
    }
}

const PROGRAM_DATABASES = ["postgres", "template0", "template1", "pgbouncer"];

/**
 * Checks everything a single config getter cannot: integers, value ranges that
 * depend on other keys, and names that would collide. Throws SettingsError
 * naming the offending key and what is allowed.
 */
export function validateSettings(s: ClusterSettings): void {
    requireInteger("replicaCount", s.replicaCount, MIN_REPLICAS, MAX_REPLICAS, `an integer from ${MIN_REPLICAS} to ${MAX_REPLICAS}`);
    // An even count tolerates no more failures than the odd count below it, and splits evenly in a partition.
    if (!Number.isInteger(s.etcdMembers) || s.etcdMembers < 1 || s.etcdMembers > MAX_ETCD_MEMBERS || s.etcdMembers % 2 === 0) {
        throw new SettingsError(
            `etcdMembers must be an odd number from 1 to ${MAX_ETCD_MEMBERS} (n members stay available with (n - 1) / 2 of them down), got ${s.etcdMembers}`,
        );
    }
    requireInteger("synchronousReplicas", s.synchronousReplicas, 0, MAX_REPLICAS, `an integer from 0 to ${MAX_REPLICAS}`);
    if (s.synchronousReplicas > s.replicaCount) {
        throw new SettingsError(
            `synchronousReplicas (${s.synchronousReplicas}) must not exceed replicaCount (${s.replicaCount}): a commit cannot wait for replicas the cluster does not have`,
        );
    }
    requireInteger(
        "delayedReplicaMinutes",
        s.delayedReplicaMinutes,
        0,
        MAX_DELAYED_REPLICA_MINUTES,
        `a number of minutes from 0 (no delayed replica) to ${MAX_DELAYED_REPLICA_MINUTES} (a week)`,
    );
    if (streamingReplicas(s) > MAX_REPLICAS) {
        throw new SettingsError(
            `delayedReplicaMinutes adds a replica, and replicaCount (${s.replicaCount}) plus it exceeds ${MAX_REPLICAS}, ` +
                "the replicas every member's WAL senders and slots are sized for; lower replicaCount or set delayedReplicaMinutes to 0",
        );
    }
    requireInteger("maximumLagOnFailoverMb", s.maximumLagOnFailoverMb, 0, 1_048_576, "a size in MB from 0 to 1048576");
    validateFailoverTimings(s.failover);
    const pooled = MAX_POOLED_SERVER_CONNECTIONS;
    requireInteger("defaultPoolSize", s.pool.defaultPoolSize, 1, pooled, `an integer from 1 to ${pooled}`);
    requireInteger("reservePoolSize", s.pool.reservePoolSize, 0, pooled, `an integer from 0 to ${pooled}`);
    requireInteger("maxClientConn", s.pool.maxClientConn, 1, MAX_CLIENT_CONN, `an integer from 1 to ${MAX_CLIENT_CONN}`);
    requireInteger("queryWaitTimeout", s.pool.queryWaitTimeoutSeconds, 1, 86_400, "a number of seconds from 1 to 86400");
    requireInteger("maxConnections", s.maxConnections, 10, 10_000, "an integer from 10 to 10000");
    requireInteger("maxSlotWalKeepSizeMb", s.maxSlotWalKeepSizeMb, 64, 1_048_576, "a size in MB from 64 to 1048576");

    if (!AUTH_METHODS.includes(s.authMethod)) {
        throw new SettingsError(`authMethod must be one of ${AUTH_METHODS.join(", ")}, got ${JSON.stringify(s.authMethod)}`);
    }
    if (!CLIENT_TLS_MODES.includes(s.clientTlsSslmode)) {
        throw new SettingsError(
            `clientTlsSslmode must be one of ${CLIENT_TLS_MODES.join(", ")}, got ${JSON.stringify(s.clientTlsSslmode)}`,
        );
    }
    if (!POOL_MODES.includes(s.pool.mode)) {
        throw new SettingsError(`poolMode must be one of ${POOL_MODES.join(", ")}, got ${JSON.stringify(s.pool.mode)}`);
    }
    if (pooledServerConnections(s.pool) > pooled) {
        throw new SettingsError(
            `defaultPoolSize + reservePoolSize (${s.pool.defaultPoolSize} + ${s.pool.reservePoolSize} = ${pooledServerConnections(s.pool)}) ` +
                `must be at most ${pooled}: the router beside PgBouncer admits ${ROUTER_CONNECTION_LIMIT} connections, ` +
                `both databases' pools and ${ROUTER_TOOL_CONNECTIONS} for operators' tools`,
        );
    }
    if (s.pool.maxClientConn < pooledServerConnections(s.pool)) {
        throw new SettingsError(
            `maxClientConn (${s.pool.maxClientConn}) must be at least defaultPoolSize + reservePoolSize ` +
                `(${s.pool.defaultPoolSize} + ${s.pool.reservePoolSize} = ${pooledServerConnections(s.pool)})`,
        );
    }
    const required = requiredServerConnections(s);
    if (required > s.maxConnections) {
        throw new SettingsError(
            `maxConnections (${s.maxConnections}) is below the ${required} connections the cluster needs: ` +
                `defaultPoolSize ${s.pool.defaultPoolSize} + reservePoolSize ${s.pool.reservePoolSize} + ` +
                `replication ${replicationConnections(streamingReplicas(s))} + monitoring ${MONITORING_CONNECTIONS} + ` +
                `superuser reserved ${SUPERUSER_RESERVED_CONNECTIONS}; raise maxConnections or lower the pool`,
        );
    }
    validatePostgresResources(s);
    validatePostgresParameters(s.postgresParameters);

    for (const [key, name] of [
        ["database", s.database],
        ["appUser", s.appUser],
    ] as const) {
        if (!IDENTIFIER.test(name)) {
            throw new SettingsError(
                `${key} must be a lower-case identifier (letters, digits, _; at most 63 characters, not starting with a digit), got ${JSON.stringify(name)}`,
            );
        }
    }
    if (Object.values<string>(ROLES).includes(s.appUser)) {
        throw new SettingsError(`appUser must not be one of the program's roles (${Object.values(ROLES).join(", ")}), got "${s.appUser}"`);
    }
    if (PROGRAM_DATABASES.includes(s.database) || readonlyDatabase(s).length > 63) {
        throw new SettingsError(
            `database must not be ${PROGRAM_DATABASES.join(", ")} and must leave room for the "_readonly" suffix, got "${s.database}"`,
        );
    }
    if (!isTimezone(s.timezone)) {
        throw new SettingsError(`timezone must be an IANA time zone such as Asia/Manila, got ${JSON.stringify(s.timezone)}`);
    }
    const auditClasses = s.auditLog.split(",").map((c) => c.trim().replace(/^-/, ""));
    if (!auditClasses.every((c) => (AUDIT_CLASSES as readonly string[]).includes(c))) {
        throw new SettingsError(
            `auditLog must be a comma-separated list of pgaudit classes (${AUDIT_CLASSES.join(", ")}), each optionally prefixed with -, got ${JSON.stringify(s.auditLog)}`,
        );
    }
    if (!isIPv4(s.publishAddress)) {
        throw new SettingsError(`publishAddress must be an IPv4 address such as 127.0.0.1, got ${JSON.stringify(s.publishAddress)}`);
    }
    validatePorts(s);
}

/**
 * Patroni's own rule: a member that loses the DCS must give up the leader key
 * before it expires, which takes one loop and two retries. Patroni would
 * quietly shorten loop_wait or raise retry_timeout instead of refusing, so
 * the stack checks first: what it declares is what runs.
 */
function validateFailoverTimings(t: FailoverTimings): void {
    requireInteger(
        "failoverTtl",
        t.ttlSeconds,
        MIN_PATRONI_TTL,
        3600,
        `a number of seconds from ${MIN_PATRONI_TTL} (Patroni's minimum) to 3600`,
    );
    requireInteger("failoverLoopWait", t.loopWaitSeconds, 1, 3600, "a number of seconds from 1 to 3600");
    requireInteger(
        "failoverRetryTimeout",
        t.retryTimeoutSeconds,
        MIN_PATRONI_RETRY_TIMEOUT,
        3600,
        `a number of seconds from ${MIN_PATRONI_RETRY_TIMEOUT} (Patroni's minimum) to 3600`,
    );
    if (t.loopWaitSeconds + 2 * t.retryTimeoutSeconds > t.ttlSeconds) {
        throw new SettingsError(
            `failoverLoopWait (${t.loopWaitSeconds}) + 2 × failoverRetryTimeout (${t.retryTimeoutSeconds}) must not exceed failoverTtl (${t.ttlSeconds}): ` +
                "a leader cut off from etcd must be able to step down before its key expires",
        );
    }
}

/** The members' limits, and whether their memory holds what max_connections backends may use besides shared_buffers and maintenance. */
function validatePostgresResources(s: ClusterSettings): void {
    const r = s.postgresResources;
    requireInteger("postgresMemoryMb", r.memoryMb, 256, 1_048_576, "a size in MB from 256 to 1048576");
    requireInteger("postgresCpus", r.cpus, 1, MAX_POSTGRES_CPUS, `a whole number of CPUs from 1 to ${MAX_POSTGRES_CPUS}`);
    const sizing = postgresSizing(r, s.maxConnections);
    const budget = memoryBudget(sizing, s.maxConnections);
    if (budget.totalKb > r.memoryMb * 1024) {
        throw new SettingsError(
            `postgresMemoryMb (${r.memoryMb}) cannot hold what maxConnections (${s.maxConnections}) may use: ` +
                `${budget.backends} backends × work_mem ${postgresSize(sizing.workMemKb)} + shared_buffers ${postgresSize(sizing.sharedBuffersKb)} + ` +
                `${budget.maintenanceSessions} × maintenance_work_mem ${postgresSize(sizing.maintenanceWorkMemKb)} = ${Math.ceil(budget.totalKb / 1024)}MB; ` +
                "raise postgresMemoryMb or lower maxConnections",
        );
    }
}

/** The host ports the database nodes publish, each with the config key it comes from. */
function publishedPorts(s: ClusterSettings): Array<[string, number]> {
    const ports: Array<[string, number]> = [["pgbouncerPort", s.pgbouncerPort]];
    if (s.publishPostgresPorts) {
        ports.push(["primaryPort", s.primaryPort]);
        for (let k = 1; k <= s.replicaCount; k++) {
            ports.push([k === 1 ? "replicaBasePort" : `replicaBasePort (replica ${k})`, replicaHostPort(s, k)]);
        }
        if (s.delayedReplicaMinutes > 0) {
            ports.push([`replicaBasePort (delayed replica, + ${MAX_REPLICAS})`, delayedReplicaHostPort(s)]);
        }
    }
    return ports;
}

/** Every port in range, and no two the same; the message names the later key. */
function requireDistinctPorts(ports: ReadonlyArray<[string, number]>): void {
    const seen = new Map<number, string>();
    for (const [key, port] of ports) {
        requireInteger(key, port, 1, 65_535, "a port from 1 to 65535");
        const other = seen.get(port);
        if (other !== undefined) {
            throw new SettingsError(`${key} uses port ${port}, which ${other} already uses; every published port must differ`);
        }
        seen.set(port, key);
    }
}

function validatePorts(s: ClusterSettings): void {
    requireDistinctPorts(publishedPorts(s));
}

// ---------------------------------------------------------------------------
// Monitoring: exporters, Prometheus and Grafana, read by `readMonitoringSettings`.

/** Port postgres_exporter listens on inside its container. */
export const POSTGRES_EXPORTER_PORT = 9187;
/** Port pgbouncer_exporter listens on inside its container. */
export const PGBOUNCER_EXPORTER_PORT = 9127;
/** Port Prometheus listens on inside its container. */
export const PROMETHEUS_PORT = 9090;
/** Port Grafana listens on inside its container. */
export const GRAFANA_PORT = 3000;
/** A Prometheus duration such as `15d` or `1w3d` (units y, w, d, h, m, s, ms). */
export const PROMETHEUS_DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;
const MIB = 1024 * 1024;

/** When the alert rules fire; sizes are shares of the cluster's configured sizes. */
export interface AlertThresholds {
    /** Seconds a condition must hold before its alert fires (the rules' `for`). */
    readonly forSeconds: number;
    /** Replication lag, in MB of WAL not yet replayed by a replica. */
    readonly replicationLagMb: number;
    /** Replication lag, in seconds of replay delay on a replica. */
    readonly replicationLagSeconds: number;
    /** Percent of maxSlotWalKeepSizeMb a slot may retain. */
    readonly slotWalPercent: number;
    /** Seconds the oldest waiting PgBouncer client may wait. */
    readonly clientWaitSeconds: number;
    /** Percent of defaultPoolSize a pool may have busy. */
    readonly poolSaturationPercent: number;
    /** Percent of maxConnections a server may have connected. */
    readonly connectionsPercent: number;
    /** Percent of maxClientConn PgBouncer may have connected. */
    readonly clientConnectionsPercent: number;
}

export interface MonitoringSettings {
    /** Exporters, Prometheus and (unless grafanaEnabled is false) Grafana. */
    readonly enabled: boolean;
    /** Whether to run Grafana; its provisioning is rendered either way. */
    readonly grafanaEnabled: boolean;
    readonly grafanaImage: string;
    /** Host port of Prometheus. */
    readonly prometheusPort: number;
    /** Host port of Grafana. */
    readonly grafanaPort: number;
    /** Prometheus `storage.tsdb.retention.time`. */
    readonly prometheusRetention: string;
    /** Prometheus scrape and rule evaluation interval. */
    readonly scrapeIntervalSeconds: number;
    readonly alerts: AlertThresholds;
}

/** The alert rules' thresholds in the units of the metrics they compare against. */
export interface AlertLimits {
    readonly forSeconds: number;
    readonly replicationLagBytes: number;
    readonly replicationLagSeconds: number;
    /** WAL bytes a slot may retain. */
    readonly slotWalBytes: number;
    readonly clientWaitSeconds: number;
    /** Busy server connections of one PgBouncer pool. */
    readonly poolServerConnections: number;
    /** Connected backends of one PostgreSQL server. */
    readonly serverConnections: number;
    /** Client connections to PgBouncer. */
    readonly clientConnections: number;
}

/** Alert thresholds scaled to the cluster's configured sizes. */
export function alertLimits(s: ClusterSettings, m: MonitoringSettings): AlertLimits {
    const a = m.alerts;
    return {
        forSeconds: a.forSeconds,
        replicationLagBytes: a.replicationLagMb * MIB,
        replicationLagSeconds: a.replicationLagSeconds,
        slotWalBytes: Math.round((s.maxSlotWalKeepSizeMb * MIB * a.slotWalPercent) / 100),
        clientWaitSeconds: a.clientWaitSeconds,
        poolServerConnections: (s.pool.defaultPoolSize * a.poolSaturationPercent) / 100,
        serverConnections: (s.maxConnections * a.connectionsPercent) / 100,
        clientConnections: (s.pool.maxClientConn * a.clientConnectionsPercent) / 100,
    };
}

/** Backends a server has connected under normal full load: PgBouncer's pool and reserve, and the exporters. */
export function busyServerConnections(s: ClusterSettings): number {
    return pooledServerConnections(s.pool) + MONITORING_CONNECTIONS;
}

/**
 * Checks the monitoring keys, when monitoring is enabled: ranges, the
 * thresholds against the sizes they are shares of, and host ports against
 * the cluster's. Throws SettingsError naming the key.
 */
export function validateMonitoringSettings(m: MonitoringSettings, s: ClusterSettings): void {
    if (!m.enabled) {
        return;
    }
    const a = m.alerts;
    requireInteger("scrapeIntervalSeconds", m.scrapeIntervalSeconds, 1, 3_600, "a number of seconds from 1 to 3600");
    requireInteger("alertForSeconds", a.forSeconds, 0, 86_400, "a number of seconds from 0 to 86400");
    requireInteger("replicationLagAlertMb", a.replicationLagMb, 1, 1_048_576, "a size in MB from 1 to 1048576");
    requireInteger("replicationLagAlertSeconds", a.replicationLagSeconds, 1, 86_400, "a number of seconds from 1 to 86400");
    requireInteger("clientWaitAlertSeconds", a.clientWaitSeconds, 1, 86_400, "a number of seconds from 1 to 86400");
    for (const [key, value] of [
        ["slotWalAlertPercent", a.slotWalPercent],
        ["poolSaturationAlertPercent", a.poolSaturationPercent],
        ["connectionsAlertPercent", a.connectionsPercent],
        ["clientConnectionsAlertPercent", a.clientConnectionsPercent],
    ] as const) {
        requireInteger(key, value, 1, 100, "a percentage from 1 to 100");
    }
    if (!PROMETHEUS_DURATION.test(m.prometheusRetention) || /^(0+(ms|s|m|h|d|w|y))+$/.test(m.prometheusRetention)) {
        throw new SettingsError(
            `prometheusRetention must be a Prometheus duration such as 15d or 1w3d (units y, w, d, h, m, s, ms), got ${JSON.stringify(m.prometheusRetention)}`,
        );
    }
    if (a.replicationLagMb >= s.maxSlotWalKeepSizeMb) {
        throw new SettingsError(
            `replicationLagAlertMb (${a.replicationLagMb}) must be below maxSlotWalKeepSizeMb (${s.maxSlotWalKeepSizeMb}): ` +
                "a replica that far behind has already lost the WAL its slot kept",
        );
    }
    if (a.clientWaitSeconds >= s.pool.queryWaitTimeoutSeconds) {
        throw new SettingsError(
            `clientWaitAlertSeconds (${a.clientWaitSeconds}) must be below queryWaitTimeout (${s.pool.queryWaitTimeoutSeconds}), ` +
                "when PgBouncer gives up on a waiting client",
        );
    }
    const serverConnections = alertLimits(s, m).serverConnections;
    const busy = busyServerConnections(s);
    if (serverConnections <= busy) {
        throw new SettingsError(
            `connectionsAlertPercent (${a.connectionsPercent}) of maxConnections (${s.maxConnections}) is ${serverConnections} connections, ` +
                `not above the ${busy} a server has under normal full load (pool ${pooledServerConnections(s.pool)} + monitoring ${MONITORING_CONNECTIONS}); ` +
                "raise connectionsAlertPercent or maxConnections",
        );
    }
    if (m.grafanaEnabled && !/^[^\s]+$/.test(m.grafanaImage)) {
        throw new SettingsError(`grafanaImage must be an image reference without spaces, got ${JSON.stringify(m.grafanaImage)}`);
    }
    validateMonitoringPorts(m, s);
}

function validateMonitoringPorts(m: MonitoringSettings, s: ClusterSettings): void {
    const ports: Array<[string, number]> = [["prometheusPort", m.prometheusPort]];
    if (m.grafanaEnabled) {
        ports.push(["grafanaPort", m.grafanaPort]);
    }
    requireDistinctPorts([...publishedPorts(s), ...ports]);
}

// ---------------------------------------------------------------------------
// Backups: pgBackRest's schedule, retention and repository, read by `readBackupSettings`.

/** Port of prometheus-node-exporter's textfile collector in the backup container (the backup metrics). */
export const BACKUP_METRICS_PORT = 9100;

export type BackupRepositoryType = "volume" | "s3";
export const BACKUP_REPOSITORY_TYPES: readonly BackupRepositoryType[] = ["volume", "s3"];
export type S3UriStyle = "host" | "path";
export const S3_URI_STYLES: readonly S3UriStyle[] = ["host", "path"];

/** An S3-compatible repository; its access keys are secrets and travel separately. */
export interface S3Repository {
    readonly type: "s3";
    readonly bucket: string;
    /** Host name of the endpoint, e.g. `s3.eu-west-1.amazonaws.com` or a MinIO server. */
    readonly endpoint: string;
    readonly region: string;
    readonly uriStyle: S3UriStyle;
    /** Path of the repository inside the bucket. */
    readonly path: string;
}

export interface BackupSettings {
    /** Seconds between full backups. */
    readonly fullEverySeconds: number;
    /** Seconds between backups of any kind; the ones between fulls are differential. */
    readonly diffEverySeconds: number;
    /** Full backups kept (pgBackRest `repo1-retention-full`); older ones and their WAL expire. */
    readonly retentionFull: number;
    /** Seconds between restore drills (`restoreDrillEvery`): the newest backup and its WAL restored into scratch space and checked. */
    readonly restoreDrillEverySeconds: number;
    readonly repository: { readonly type: "volume" } | S3Repository;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 };

/** "90s", "15m", "12h", "1d", "1w" to seconds; undefined for anything else. */
export function durationSeconds(text: string): number | undefined {
    const match = /^([1-9][0-9]{0,5})(s|m|h|d|w)$/.exec(text);
    return match ? Number(match[1]) * DURATION_UNITS[match[2]] : undefined;
}

/** Reads a schedule duration; the message names the key. */
export function requireDuration(key: string, text: string): number {
    const seconds = durationSeconds(text);
    if (seconds === undefined || seconds < 10 || seconds > 366 * 86_400) {
        throw new SettingsError(
            `${key} must be a duration from 10s to 366d with one unit (s, m, h, d, w), such as 1d or 12h, got ${JSON.stringify(text)}`,
        );
    }
    return seconds;
}

/** Checks what the getters cannot: retention range, the schedule's order, and a complete S3 location. */
export function validateBackupSettings(b: BackupSettings): void {
    requireInteger("backupRetentionFull", b.retentionFull, 1, 100, "an integer from 1 to 100");
    if (b.diffEverySeconds > b.fullEverySeconds) {
        throw new SettingsError(
            `backupDiffEvery (${b.diffEverySeconds}s) must not be longer than backupFullEvery (${b.fullEverySeconds}s)`,
        );
    }
    const r = b.repository;
    if (r.type === "volume") {
        return;
    }
    for (const [key, value] of [
        ["backupS3Bucket", r.bucket],
        ["backupS3Endpoint", r.endpoint],
        ["backupS3Region", r.region],
    ] as const) {
        if (!/^[^\s]+$/.test(value)) {
            throw new SettingsError(`${key} must be set, without spaces, when backupRepository is s3, got ${JSON.stringify(value)}`);
        }
    }
    if (!/^\/[^\s]*$/.test(r.path)) {
        throw new SettingsError(`backupS3Path must be an absolute path without spaces, got ${JSON.stringify(r.path)}`);
    }
}
