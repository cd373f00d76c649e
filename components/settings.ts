// Plain, validated description of one cluster, read from stack config by
// `config.ts`. Nothing here imports Pulumi: the renderers and the tests use it
// as ordinary data.
import { isIPv4 } from "node:net";
import type { AuthMethod } from "./render/verifier";

export type { AuthMethod };
export const AUTH_METHODS: readonly AuthMethod[] = ["scram-sha-256", "md5"];

export type PoolMode = "session" | "transaction" | "statement";
export const POOL_MODES: readonly PoolMode[] = ["session", "transaction", "statement"];

/** Roles the program owns; the application role and database come from config. */
export const ROLES = {
    superuser: "postgres",
    replication: "replicator",
    monitoring: "monitoring",
    pgbouncerAdmin: "pgbouncer",
} as const;

export const MIN_REPLICAS = 1;
export const MAX_REPLICAS = 10;
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
    readonly replicaCount: number;
    readonly database: string;
    readonly appUser: string;
    readonly timezone: string;
    readonly authMethod: AuthMethod;
    readonly maxConnections: number;
    readonly maxSlotWalKeepSizeMb: number;
    /** Host address the published ports bind to. */
    readonly publishAddress: string;
    readonly pgbouncerPort: number;
    readonly primaryPort: number;
    /** Host port of replica 1; replica k is published on `replicaBasePort + k - 1`. */
    readonly replicaBasePort: number;
    readonly pool: PoolSettings;
}

/** A stack config value that cannot work; the message names the key. */
export class SettingsError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "SettingsError";
    }
}

/** WAL senders: each replica streams with one and clones with two, plus two for operators' tools. */
export function maxWalSenders(replicaCount: number): number {
    return 2 * replicaCount + 2;
}

/** One slot per replica plus two spare for operators' tools (e.g. a backup client). */
export function maxReplicationSlots(replicaCount: number): number {
    return replicaCount + 2;
}

/** Most server connections PgBouncer may open to one PostgreSQL server. */
export function pooledServerConnections(pool: PoolSettings): number {
    return pool.defaultPoolSize + pool.reservePoolSize;
}

/** Connections a server must accept: the pool, replication, monitoring and superuser reserve. */
export function requiredServerConnections(s: ClusterSettings): number {
    return (
        pooledServerConnections(s.pool) +
        maxWalSenders(s.replicaCount) +
        MONITORING_CONNECTIONS +
        SUPERUSER_RESERVED_CONNECTIONS
    );
}

/** Open-files limit for PgBouncer: a socket per client and per server, with room to spare. */
export function pgbouncerFileLimit(pool: PoolSettings): number {
    return 2 * pool.maxClientConn + 1024;
}

/** Host port on which replica `index` (1-based) is published. */
export function replicaHostPort(s: ClusterSettings, index: number): number {
    return s.replicaBasePort + index - 1;
}

/** Host name that reaches the published ports from the Docker host. */
export function connectHost(s: ClusterSettings): string {
    return s.publishAddress === "0.0.0.0" ? "127.0.0.1" : s.publishAddress;
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
    requireInteger("defaultPoolSize", s.pool.defaultPoolSize, 1, 10_000, "an integer greater than 0");
    requireInteger("reservePoolSize", s.pool.reservePoolSize, 0, 10_000, "an integer of 0 or more");
    requireInteger("maxClientConn", s.pool.maxClientConn, 1, 100_000, "an integer from 1 to 100000");
    requireInteger("queryWaitTimeout", s.pool.queryWaitTimeoutSeconds, 1, 86_400, "a number of seconds from 1 to 86400");
    requireInteger("maxConnections", s.maxConnections, 10, 10_000, "an integer from 10 to 10000");
    requireInteger("maxSlotWalKeepSizeMb", s.maxSlotWalKeepSizeMb, 64, 1_048_576, "a size in MB from 64 to 1048576");

    if (!AUTH_METHODS.includes(s.authMethod)) {
        throw new SettingsError(`authMethod must be one of ${AUTH_METHODS.join(", ")}, got ${JSON.stringify(s.authMethod)}`);
    }
    if (!POOL_MODES.includes(s.pool.mode)) {
        throw new SettingsError(`poolMode must be one of ${POOL_MODES.join(", ")}, got ${JSON.stringify(s.pool.mode)}`);
    }
    if (s.pool.maxClientConn < s.pool.defaultPoolSize) {
        throw new SettingsError(
            `maxClientConn (${s.pool.maxClientConn}) must be at least defaultPoolSize (${s.pool.defaultPoolSize})`,
        );
    }
    const required = requiredServerConnections(s);
    if (required > s.maxConnections) {
        throw new SettingsError(
            `maxConnections (${s.maxConnections}) is below the ${required} connections the cluster needs: ` +
                `defaultPoolSize ${s.pool.defaultPoolSize} + reservePoolSize ${s.pool.reservePoolSize} + ` +
                `replication ${maxWalSenders(s.replicaCount)} + monitoring ${MONITORING_CONNECTIONS} + ` +
                `superuser reserved ${SUPERUSER_RESERVED_CONNECTIONS}; raise maxConnections or lower the pool`,
        );
    }

    for (const [key, name] of [["database", s.database], ["appUser", s.appUser]] as const) {
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
    if (!isIPv4(s.publishAddress)) {
        throw new SettingsError(`publishAddress must be an IPv4 address such as 127.0.0.1, got ${JSON.stringify(s.publishAddress)}`);
    }
    validatePorts(s);
}

function validatePorts(s: ClusterSettings): void {
    const ports: Array<[string, number]> = [
        ["pgbouncerPort", s.pgbouncerPort],
        ["primaryPort", s.primaryPort],
    ];
    for (let k = 1; k <= s.replicaCount; k++) {
        ports.push([k === 1 ? "replicaBasePort" : `replicaBasePort (replica ${k})`, replicaHostPort(s, k)]);
    }
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
