import { psqlMetaIdentifier, sqlIdentifier, sqlLiteral } from "../escape";

export interface RoleSpec {
    readonly name: string;
    /** SCRAM or md5 verifier: PostgreSQL stores it as given and never sees the password. */
    readonly verifier: string;
    /** Role attributes besides LOGIN; everything not listed is explicitly denied. */
    readonly attributes: ReadonlyArray<"REPLICATION">;
    /** Predefined roles granted to this one, e.g. pg_monitor. */
    readonly memberOf: readonly string[];
}

export interface BootstrapSpec {
    readonly superuser: RoleSpec;
    readonly roles: readonly RoleSpec[];
    readonly database: string;
    readonly owner: string;
    readonly timezone: string;
    readonly extensions: readonly string[];
}

const DENIABLE = ["SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS"] as const;

function roleStatements(role: RoleSpec): string[] {
    const name = sqlIdentifier(role.name);
    const attributes = DENIABLE.map((a) => ((role.attributes as readonly string[]).includes(a) ? a : `NO${a}`));
    return [
        `SELECT format('CREATE ROLE %I', ${sqlLiteral(role.name)}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${sqlLiteral(role.name)})`,
        "\\gexec",
        `ALTER ROLE ${name} WITH LOGIN ${attributes.join(" ")} PASSWORD ${sqlLiteral(role.verifier)};`,
        ...role.memberOf.map((group) => `GRANT ${sqlIdentifier(group)} TO ${name};`),
    ];
}

/**
 * The SQL the primary runs on every start, over its local socket, before it
 * accepts network connections. It is idempotent: it creates what is missing
 * and resets passwords and privileges to what the stack declares, so a
 * password rotated in the stack is applied by the next start.
 */
export function renderBootstrapSql(spec: BootstrapSpec): string {
    const db = sqlIdentifier(spec.database);
    return [
        "-- Rendered by obcms-database; runs as the superuser on every primary start.",
        "\\set ON_ERROR_STOP on",
        `ALTER ROLE ${sqlIdentifier(spec.superuser.name)} WITH PASSWORD ${sqlLiteral(spec.superuser.verifier)};`,
        ...spec.roles.flatMap(roleStatements),
        `SELECT format('CREATE DATABASE %I OWNER %I', ${sqlLiteral(spec.database)}, ${sqlLiteral(spec.owner)}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${sqlLiteral(spec.database)})`,
        "\\gexec",
        `ALTER DATABASE ${db} OWNER TO ${sqlIdentifier(spec.owner)};`,
        `ALTER DATABASE ${db} SET timezone TO ${sqlLiteral(spec.timezone)};`,
        `\\connect ${psqlMetaIdentifier(spec.database)}`,
        ...spec.extensions.map((ext) => `CREATE EXTENSION IF NOT EXISTS ${sqlIdentifier(ext)};`),
        "",
    ].join("\n");
}
