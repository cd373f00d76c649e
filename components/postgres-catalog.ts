// What PostgreSQL itself says of its parameters, for the image the stack
// runs (postgres-catalog.generated.ts, from `pg_settings`): which exist, when
// each takes effect, and what values each accepts.
import { POSTGRES_CATALOG } from "./postgres-catalog.generated";

/** The libraries every member preloads (shared_preload_libraries): their parameters are in the catalog too. */
export const PRELOADED_LIBRARIES: readonly string[] = ["pg_stat_statements", "pgaudit"];

/** One row of `pg_settings`, as far as validating a value and placing it need. */
export interface PostgresSetting {
    /** When a new value takes effect: `postmaster` at start only, `sighup` on reload, `internal` never (read-only). */
    readonly context: "internal" | "postmaster" | "sighup" | "superuser-backend" | "backend" | "superuser" | "user";
    readonly type: "bool" | "integer" | "real" | "string" | "enum";
    /** The unit of a bare number (`kB`, `8kB`, `ms`, `s`, `min`, ...). */
    readonly unit?: string;
    readonly min?: number;
    readonly max?: number;
    /** An enum's accepted values. */
    readonly values?: readonly string[];
}

/** Parameter names are case-insensitive (`pg_settings` spells a few in mixed case, e.g. `TimeZone`). */
const BY_LOWER_NAME: ReadonlyMap<string, PostgresSetting> = new Map(
    Object.entries(POSTGRES_CATALOG).map(([name, setting]) => [name.toLowerCase(), setting]),
);

/** The parameter's row, or undefined when this PostgreSQL has no such parameter. */
export function postgresSetting(name: string): PostgresSetting | undefined {
    return BY_LOWER_NAME.get(name.toLowerCase());
}

/** PostgreSQL reads the parameter only when the server starts (`postmaster` context). */
export function readOnlyAtStart(name: string): boolean {
    return postgresSetting(name)?.context === "postmaster";
}
