import { psqlMetaIdentifier, sqlIdentifier, sqlLiteral } from "../escape";

export interface RoleSpec {
    readonly name: string;
    /** SCRAM or md5 verifier: PostgreSQL stores it as given and never sees the password. */
    readonly verifier: string;
    /** Role attributes besides LOGIN; everything not listed is explicitly denied. */
    readonly attributes: ReadonlyArray<"REPLICATION">;
    /** Predefined roles granted to this one, e.g. pg_monitor. */
    readonly memberOf: readonly string[];
    /** Functions of pg_catalog it may execute, by signature, e.g. `pg_ls_dir(text, boolean, boolean)`. */
    readonly functions?: readonly string[];
    /**
     * The verifier is given only to a role this SQL creates: PgBouncer's
     * credentials command applies a changed one, holding its clients
     * meanwhile (see pgbouncer/credentials-command.ts). Default false.
     */
    readonly verifierOnCreateOnly?: boolean;
}

export interface BootstrapSpec {
    readonly superuser: RoleSpec;
    readonly roles: readonly RoleSpec[];
    /** Schemas of the program's own roles in the `postgres` database, each owned by its role. */
    readonly schemas: ReadonlyArray<{ readonly name: string; readonly owner: string }>;
    readonly database: string;
    readonly owner: string;
    readonly timezone: string;
    readonly extensions: readonly string[];
}

const DENIABLE = ["SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS"] as const;

/** A function signature from the program's own constants: a name and argument types, nothing else. */
function functionSignature(signature: string): string {
    if (!/^[a-z_]+\((?:[a-z]+(?:, [a-z]+)*)?\)$/.test(signature)) {
        throw new Error(`not a function signature: ${JSON.stringify(signature)}`);
    }
    return signature;
}

/** The statement that gives a role its verifier: PostgreSQL stores a verifier as given. */
export function rolePasswordSql(name: string, verifier: string): string {
    return `ALTER ROLE ${sqlIdentifier(name)} WITH PASSWORD ${sqlLiteral(verifier)};`;
}

/** A query that answers `t` when the role already has this verifier, as PostgreSQL stores it. */
export function roleHasVerifierSql(name: string, verifier: string): string {
    return `SELECT EXISTS (SELECT FROM pg_authid WHERE rolname = ${sqlLiteral(name)} AND rolpassword = ${sqlLiteral(verifier)})`;
}

function roleStatements(role: RoleSpec): string[] {
    const name = sqlIdentifier(role.name);
    const attributes = DENIABLE.map((a) => ((role.attributes as readonly string[]).includes(a) ? a : `NO${a}`));
    const create = role.verifierOnCreateOnly
        ? `SELECT format('CREATE ROLE %I PASSWORD %L', ${sqlLiteral(role.name)}, ${sqlLiteral(role.verifier)})`
        : `SELECT format('CREATE ROLE %I', ${sqlLiteral(role.name)})`;
    return [
        `${create} WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${sqlLiteral(role.name)})`,
        "\\gexec",
        `ALTER ROLE ${name} WITH LOGIN ${attributes.join(" ")}${role.verifierOnCreateOnly ? "" : ` PASSWORD ${sqlLiteral(role.verifier)}`};`,
        ...role.memberOf.map((group) => `GRANT ${sqlIdentifier(group)} TO ${name};`),
        ...(role.functions ?? []).map((f) => `GRANT EXECUTE ON FUNCTION pg_catalog.${functionSignature(f)} TO ${name};`),
    ];
}

/**
 * Forgets what pg_stat_statements kept of statements that carried a verifier
 * (ALTER ROLE … PASSWORD, as earlier versions ran it in a session that
 * recorded its text): its members of pg_monitor could read them. Quietly:
 * the reset's rows are of no interest.
 */
const FORGET_RECORDED_VERIFIERS = [
    "\\o /dev/null",
    "SELECT pg_stat_statements_reset(userid, dbid, queryid) FROM pg_stat_statements " +
        "WHERE query ~* '\\mPASSWORD\\M' AND query ~ 'SCRAM-SHA-256\\$|md5[0-9a-f]{32}';",
    "\\o",
];

/**
 * The SQL that reconciles the leader with the stack, run over its local
 * socket after the cluster bootstraps and whenever it changes. It is
 * idempotent: it creates what is missing and resets passwords and privileges
 * to what the stack declares, so a password rotated in the stack is applied
 * without a restart.
 */
export function renderBootstrapSql(spec: BootstrapSpec): string {
    const db = sqlIdentifier(spec.database);
    return [
        "-- Rendered by obcms-database; runs as the superuser on the leader.",
        "\\set ON_ERROR_STOP on",
        rolePasswordSql(spec.superuser.name, spec.superuser.verifier),
        ...spec.roles.flatMap(roleStatements),
        ...spec.schemas.flatMap(({ name, owner }) => [
            `CREATE SCHEMA IF NOT EXISTS ${sqlIdentifier(name)} AUTHORIZATION ${sqlIdentifier(owner)};`,
            `ALTER SCHEMA ${sqlIdentifier(name)} OWNER TO ${sqlIdentifier(owner)};`,
        ]),
        `SELECT format('CREATE DATABASE %I OWNER %I', ${sqlLiteral(spec.database)}, ${sqlLiteral(spec.owner)}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${sqlLiteral(spec.database)})`,
        "\\gexec",
        `ALTER DATABASE ${db} OWNER TO ${sqlIdentifier(spec.owner)};`,
        `ALTER DATABASE ${db} SET timezone TO ${sqlLiteral(spec.timezone)};`,
        `\\connect ${psqlMetaIdentifier(spec.database)}`,
        ...spec.extensions.map((ext) => `CREATE EXTENSION IF NOT EXISTS ${sqlIdentifier(ext)};`),
        ...(spec.extensions.includes("pg_stat_statements") ? FORGET_RECORDED_VERIFIERS : []),
        "",
    ].join("\n");
}
