// The operator's own PostgreSQL parameters (config `postgresParameters`):
// which ones the program leaves to them, and whether a value is one
// PostgreSQL would take. Layered as CloudNativePG layers them: the program's
// defaults, then the operator's values, then what is sized from the member's
// limits and what the program owns, which the operator may not set.
import { type PostgresSetting, postgresSetting } from "./postgres-catalog";
import { SettingsError } from "./settings-error";

export type ParameterValue = string | number | boolean;

/** Who sets a parameter the operator may not: a config key, the program's design, or Patroni. */
export type ParameterOwner = { readonly configKey: string } | "program" | "patroni";

const setBy = (configKey: string): ParameterOwner => ({ configKey });

/**
 * Every parameter the program or Patroni sets. render/postgres/parameters.ts
 * sets each with the owner `program` or a config key (test/render/cluster.test.ts
 * holds the two together); Patroni sets the others from its own configuration
 * (listen address, replication, recovery) and ignores them in `parameters`.
 */
export const PARAMETER_OWNERS: Readonly<Record<string, ParameterOwner>> = {
    max_connections: setBy("maxConnections"),
    password_encryption: setBy("authMethod"),
    max_slot_wal_keep_size: setBy("maxSlotWalKeepSizeMb"),
    recovery_min_apply_delay: setBy("delayedReplicaMinutes"),
    "pgaudit.log": setBy("auditLog"),
    timezone: setBy("timezone"),
    log_timezone: setBy("timezone"),
    shared_buffers: setBy("postgresMemoryMb"),
    effective_cache_size: setBy("postgresMemoryMb"),
    work_mem: setBy("postgresMemoryMb"),
    maintenance_work_mem: setBy("postgresMemoryMb"),
    wal_buffers: setBy("postgresMemoryMb"),
    max_worker_processes: setBy("postgresCpus"),
    max_parallel_workers: setBy("postgresCpus"),
    max_parallel_workers_per_gather: setBy("postgresCpus"),
    max_parallel_maintenance_workers: setBy("postgresCpus"),
    autovacuum_max_workers: "program",
    hba_file: "program",
    unix_socket_directories: "program",
    superuser_reserved_connections: "program",
    wal_level: "program",
    wal_log_hints: "program",
    fsync: "program",
    full_page_writes: "program",
    synchronous_commit: "program",
    archive_mode: "program",
    archive_command: "program",
    archive_timeout: "program",
    max_wal_senders: "program",
    max_replication_slots: "program",
    wal_keep_size: "program",
    hot_standby: "program",
    hot_standby_feedback: "program",
    wal_retrieve_retry_interval: "program",
    ssl: "program",
    ssl_cert_file: "program",
    ssl_key_file: "program",
    ssl_ca_file: "program",
    ssl_min_protocol_version: "program",
    shared_preload_libraries: "program",
    "pg_stat_statements.track": "program",
    "pgaudit.log_parameter": "program",
    log_destination: "program",
    logging_collector: "program",
    log_line_prefix: "program",
    listen_addresses: "patroni",
    port: "patroni",
    cluster_name: "patroni",
    synchronous_standby_names: "patroni",
    data_directory: "patroni",
    config_file: "patroni",
    ident_file: "patroni",
    // Recovery: Patroni writes these from its own configuration and ignores them in `parameters`.
    archive_cleanup_command: "patroni",
    primary_conninfo: "patroni",
    primary_slot_name: "patroni",
    recovery_end_command: "patroni",
    recovery_target: "patroni",
    recovery_target_action: "patroni",
    recovery_target_inclusive: "patroni",
    recovery_target_lsn: "patroni",
    recovery_target_name: "patroni",
    recovery_target_time: "patroni",
    recovery_target_timeline: "patroni",
    recovery_target_xid: "patroni",
    restore_command: "patroni",
};

function ownerReason(owner: ParameterOwner): string {
    if (owner === "program") {
        return "the program sets it: durability, replication, failover, backups, TLS or auditing depend on its value";
    }
    if (owner === "patroni") {
        return "Patroni sets it from its own configuration and ignores it here";
    }
    return `it follows ${owner.configKey}: set that key instead`;
}

const BOOLEANS = ["on", "off", "true", "false", "yes", "no", "1", "0"];
const MEMORY_UNITS = ["B", "kB", "MB", "GB", "TB"];
const TIME_UNITS = ["us", "ms", "s", "min", "h", "d"];

/** The units a number of this parameter may carry (PostgreSQL's, case-sensitive), or none. */
function unitsOf(setting: PostgresSetting): readonly string[] {
    if (setting.unit === undefined) {
        return [];
    }
    return setting.unit.endsWith("B") ? MEMORY_UNITS : TIME_UNITS;
}

function inRange(setting: PostgresSetting, n: number): boolean {
    return (setting.min === undefined || n >= setting.min) && (setting.max === undefined || n <= setting.max);
}

/** Why PostgreSQL would refuse `value` for `setting`, or undefined when it takes it. */
function valueProblem(setting: PostgresSetting, value: ParameterValue): string | undefined {
    const range = setting.min === undefined ? "" : ` from ${setting.min} to ${setting.max}`;
    const unitNote =
        setting.unit === undefined ? "" : ` (in ${setting.unit}), or a string with one of the units ${unitsOf(setting).join(", ")}`;
    switch (setting.type) {
        case "bool":
            return typeof value === "boolean" || (typeof value === "string" && BOOLEANS.includes(value.toLowerCase()))
                ? undefined
                : `a boolean (true, false, or one of ${BOOLEANS.join(", ")})`;
        case "enum": {
            const values = setting.values ?? [];
            const text = typeof value === "boolean" ? (value ? "on" : "off") : String(value).toLowerCase();
            return values.includes(text) ? undefined : `one of ${values.join(", ")}`;
        }
        case "integer":
        case "real": {
            const what = `${setting.type === "integer" ? "an integer" : "a number"}${range}${unitNote}`;
            if (typeof value === "number") {
                const whole = setting.type === "real" || Number.isInteger(value);
                return whole && inRange(setting, value) ? undefined : what;
            }
            if (typeof value !== "string") {
                return what;
            }
            const match = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
            if (!match || (setting.type === "integer" && match[2] === "" && !Number.isInteger(Number(match[1])))) {
                return what;
            }
            if (match[2] === "") {
                return inRange(setting, Number(match[1])) ? undefined : what;
            }
            return unitsOf(setting).includes(match[2]) ? undefined : what;
        }
        case "string":
            if (typeof value !== "string") {
                return "a string";
            }
            // postgresql.conf holds one parameter per line; PostgreSQL refuses a NUL.
            return [...value].some(isControlCharacter) ? "a string without control characters (newlines, tabs)" : undefined;
    }
}

function isControlCharacter(character: string): boolean {
    const code = character.charCodeAt(0);
    return code < 0x20 || code === 0x7f;
}

/** A parameter name as PostgreSQL reads one: letters, digits and _, with at most one `.` (a library's parameter). */
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/**
 * Checks the operator's parameters: each one PostgreSQL 17 (or a library every
 * member preloads) has, that a running server may set, that neither the program
 * nor Patroni sets, with a value PostgreSQL takes. Throws SettingsError naming
 * `postgresParameters.<name>` and what is allowed.
 */
export function validatePostgresParameters(parameters: Readonly<Record<string, ParameterValue>>): void {
    if (typeof parameters !== "object" || parameters === null || Array.isArray(parameters)) {
        throw new SettingsError(`postgresParameters must be an object of parameter names and values, got ${JSON.stringify(parameters)}`);
    }
    const seen = new Map<string, string>();
    for (const [name, value] of Object.entries(parameters)) {
        const key = `postgresParameters.${name}`;
        if (!PARAMETER_NAME.test(name)) {
            throw new SettingsError(`${key}: not a PostgreSQL parameter name`);
        }
        const lower = name.toLowerCase();
        const earlier = seen.get(lower);
        if (earlier !== undefined) {
            throw new SettingsError(`${key} and postgresParameters.${earlier} name one parameter (PostgreSQL ignores case): keep one`);
        }
        seen.set(lower, name);
        // Own properties only: `constructor` or `__proto__` are names an object inherits, not owners.
        const owner = Object.hasOwn(PARAMETER_OWNERS, lower) ? PARAMETER_OWNERS[lower] : undefined;
        if (owner !== undefined) {
            throw new SettingsError(`${key} may not be set here: ${ownerReason(owner)}`);
        }
        const setting = postgresSetting(name);
        if (setting === undefined) {
            throw new SettingsError(
                `${key}: PostgreSQL 17 has no such parameter, nor has a library the members preload (components/postgres-catalog.generated.ts lists them)`,
            );
        }
        if (setting.context === "internal") {
            throw new SettingsError(`${key} is read-only: PostgreSQL fixes it when the cluster is created or built`);
        }
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
            throw new SettingsError(`${key} must be a string, a number or a boolean, got ${JSON.stringify(value)}`);
        }
        const problem = valueProblem(setting, value);
        if (problem !== undefined) {
            throw new SettingsError(`${key} must be ${problem}, got ${JSON.stringify(value)}`);
        }
    }
}
