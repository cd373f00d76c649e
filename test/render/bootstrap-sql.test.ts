import { describe, expect, it } from "vitest";
import { passwordVerifier } from "../../components/render/credentials/verifier";
import { shellWord, sqlLiteral, UnsafeValueError } from "../../components/render/escape";
import { UNRECORDED_SESSION_OPTIONS } from "../../components/render/patroni/leader-commands";
import {
    type BootstrapSpec,
    type RoleSpec,
    renderBootstrapSql,
    roleHasVerifierSql,
    rolePasswordSql,
} from "../../components/render/postgres/bootstrap-sql";
import { onPostgres, psqlValue } from "../support/postgres";
import { exactly } from "./fixtures";
import { readSqlQuoted } from "./formats";

const SPEC: BootstrapSpec = {
    superuser: { name: "postgres", verifier: "SCRAM-superuser", attributes: [], memberOf: [] },
    roles: [
        { name: "obcms_app", verifier: "SCRAM-app", attributes: [], memberOf: [] },
        { name: "replicator", verifier: "SCRAM-replicator", attributes: ["REPLICATION"], memberOf: [] },
        {
            name: "monitoring",
            verifier: "md5d2a1fca49af0303efbde6f40bbfe070f",
            attributes: [],
            memberOf: ["pg_monitor", "pg_read_all_stats"],
        },
    ],
    schemas: [{ name: "restore_drill", owner: "monitoring" }],
    database: "obcms",
    owner: "obcms_app",
    timezone: "Asia/Manila",
    extensions: ["pg_stat_statements", "pgcrypto"],
};

const HOSTILE_NAME = `o'brien"; DROP ROLE postgres; --`;
const HOSTILE_VERIFIER = `x'); DROP TABLE t; --"`;

function withRole(role: RoleSpec, overrides: Partial<BootstrapSpec> = {}): BootstrapSpec {
    return { ...SPEC, roles: [role], schemas: [], ...overrides };
}

describe("renderBootstrapSql", () => {
    it("renders a small spec as the exact script", () => {
        expect(renderBootstrapSql(SPEC)).toBe(
            [
                "-- Rendered by obcms-database; runs as the superuser on the leader.",
                "\\set ON_ERROR_STOP on",
                `ALTER ROLE "postgres" WITH PASSWORD 'SCRAM-superuser';`,
                "SELECT format('CREATE ROLE %I', 'obcms_app') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'obcms_app')",
                "\\gexec",
                `ALTER ROLE "obcms_app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-app';`,
                "SELECT format('CREATE ROLE %I', 'replicator') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator')",
                "\\gexec",
                `ALTER ROLE "replicator" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS PASSWORD 'SCRAM-replicator';`,
                "SELECT format('CREATE ROLE %I', 'monitoring') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'monitoring')",
                "\\gexec",
                `ALTER ROLE "monitoring" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'md5d2a1fca49af0303efbde6f40bbfe070f';`,
                `GRANT "pg_monitor" TO "monitoring";`,
                `GRANT "pg_read_all_stats" TO "monitoring";`,
                `CREATE SCHEMA IF NOT EXISTS "restore_drill" AUTHORIZATION "monitoring";`,
                `ALTER SCHEMA "restore_drill" OWNER TO "monitoring";`,
                "SELECT format('CREATE DATABASE %I OWNER %I', 'obcms', 'obcms_app') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'obcms')",
                "\\gexec",
                `ALTER DATABASE "obcms" OWNER TO "obcms_app";`,
                `ALTER DATABASE "obcms" SET timezone TO 'Asia/Manila';`,
                `\\connect "obcms"`,
                `CREATE EXTENSION IF NOT EXISTS "pg_stat_statements";`,
                `CREATE EXTENSION IF NOT EXISTS "pgcrypto";`,
                "\\o /dev/null",
                "SELECT pg_stat_statements_reset(userid, dbid, queryid) FROM pg_stat_statements WHERE query ~* '\\mPASSWORD\\M' AND query ~ 'SCRAM-SHA-256\\$|md5[0-9a-f]{32}';",
                "\\o",
                "",
            ].join("\n"),
        );
    });

    it("keeps a role name and a verifier with quotes inside their literal and identifier", () => {
        const lines = renderBootstrapSql(
            withRole({ name: HOSTILE_NAME, verifier: HOSTILE_VERIFIER, attributes: [], memberOf: ["pg_monitor"] }),
        ).split("\n");
        expect(lines.slice(3, 7)).toEqual([
            `SELECT format('CREATE ROLE %I', 'o''brien"; DROP ROLE postgres; --') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'o''brien"; DROP ROLE postgres; --')`,
            "\\gexec",
            `ALTER ROLE "o'brien""; DROP ROLE postgres; --" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'x''); DROP TABLE t; --"';`,
            `GRANT "pg_monitor" TO "o'brien""; DROP ROLE postgres; --";`,
        ]);

        const alter = lines[5];
        const name = readSqlQuoted(alter.slice("ALTER ROLE ".length), '"');
        expect(name.value).toBe(HOSTILE_NAME);
        const afterName = " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ";
        expect(name.rest.startsWith(afterName)).toBe(true);
        expect(readSqlQuoted(name.rest.slice(afterName.length), "'")).toEqual({ value: HOSTILE_VERIFIER, rest: ";" });
    });

    // PgBouncer's credentials command gives such a role a changed verifier, holding its clients meanwhile.
    it("gives a role whose verifier is rotated elsewhere its verifier only when creating it, quoted by format()", () => {
        const lines = renderBootstrapSql(
            withRole({ name: "obcms_app", verifier: HOSTILE_VERIFIER, attributes: [], memberOf: [], verifierOnCreateOnly: true }),
        ).split("\n");
        expect(lines.slice(3, 6)).toEqual([
            `SELECT format('CREATE ROLE %I PASSWORD %L', 'obcms_app', 'x''); DROP TABLE t; --"') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'obcms_app')`,
            "\\gexec",
            `ALTER ROLE "obcms_app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;`,
        ]);
    });

    it("sets a verifier alone in one statement, quoted", () => {
        expect(rolePasswordSql(HOSTILE_NAME, HOSTILE_VERIFIER)).toBe(
            `ALTER ROLE "o'brien""; DROP ROLE postgres; --" WITH PASSWORD 'x''); DROP TABLE t; --"';`,
        );
    });

    it("asks whether a role has a verifier with both as literals, in one statement", () => {
        expect(roleHasVerifierSql(HOSTILE_NAME, HOSTILE_VERIFIER)).toBe(
            `SELECT EXISTS (SELECT FROM pg_authid WHERE rolname = 'o''brien"; DROP ROLE postgres; --' AND rolpassword = 'x''); DROP TABLE t; --"')`,
        );
    });

    it("keeps a superuser verifier, database, owner and timezone with quotes inside their literals and identifiers", () => {
        const text = renderBootstrapSql({
            ...SPEC,
            superuser: { ...SPEC.superuser, verifier: HOSTILE_VERIFIER },
            roles: [],
            schemas: [{ name: HOSTILE_NAME, owner: HOSTILE_NAME }],
            database: `we"ird 'db'`,
            owner: HOSTILE_NAME,
            timezone: "Asia/Manila'; DROP DATABASE obcms; --",
            extensions: ['ext"; DROP'],
        });
        expect(text).toBe(
            [
                "-- Rendered by obcms-database; runs as the superuser on the leader.",
                "\\set ON_ERROR_STOP on",
                `ALTER ROLE "postgres" WITH PASSWORD 'x''); DROP TABLE t; --"';`,
                `CREATE SCHEMA IF NOT EXISTS "o'brien""; DROP ROLE postgres; --" AUTHORIZATION "o'brien""; DROP ROLE postgres; --";`,
                `ALTER SCHEMA "o'brien""; DROP ROLE postgres; --" OWNER TO "o'brien""; DROP ROLE postgres; --";`,
                `SELECT format('CREATE DATABASE %I OWNER %I', 'we"ird ''db''', 'o''brien"; DROP ROLE postgres; --') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'we"ird ''db''')`,
                "\\gexec",
                `ALTER DATABASE "we""ird 'db'" OWNER TO "o'brien""; DROP ROLE postgres; --";`,
                `ALTER DATABASE "we""ird 'db'" SET timezone TO 'Asia/Manila''; DROP DATABASE obcms; --';`,
                `\\connect "we""ird 'db'"`,
                `CREATE EXTENSION IF NOT EXISTS "ext""; DROP";`,
                "",
            ].join("\n"),
        );
    });

    it("grants a role the pg_catalog functions it lists, and nothing else", () => {
        const rewinder: RoleSpec = {
            name: "rewinder",
            verifier: "SCRAM-rewinder",
            attributes: [],
            memberOf: [],
            functions: ["pg_ls_dir(text, boolean, boolean)", "pg_read_binary_file(text, bigint, bigint, boolean)"],
        };
        expect(renderBootstrapSql(withRole(rewinder)).split("\n").slice(3, 8)).toEqual([
            "SELECT format('CREATE ROLE %I', 'rewinder') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rewinder')",
            "\\gexec",
            `ALTER ROLE "rewinder" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-rewinder';`,
            `GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO "rewinder";`,
            `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO "rewinder";`,
        ]);
    });

    it("refuses a function signature that is more than a name and argument types", () => {
        const role = (signature: string): RoleSpec => ({ name: "r", verifier: "v", attributes: [], memberOf: [], functions: [signature] });
        expect(() => renderBootstrapSql(withRole(role("pg_ls_dir(text); DROP ROLE postgres; --()")))).toThrow(
            exactly('not a function signature: "pg_ls_dir(text); DROP ROLE postgres; --()"'),
        );
        expect(() => renderBootstrapSql(withRole(role("pg_stat_file(text,boolean)")))).toThrow(
            exactly('not a function signature: "pg_stat_file(text,boolean)"'),
        );
    });

    it("refuses NUL in any name", () => {
        expect(() => renderBootstrapSql(withRole({ name: "a\u0000b", verifier: "v", attributes: [], memberOf: [] }))).toThrow(
            exactly('SQL: cannot write "a\\u0000b": NUL is not allowed'),
        );
    });

    // `\connect` is a psql meta-command, which ends at the line break: psql
    // would run the rest of such a name as SQL, as the superuser.
    it("refuses a database name with a line break, which would end the \\connect line", () => {
        expect(() => renderBootstrapSql({ ...SPEC, database: "obcms\nDROP DATABASE postgres; --" })).toThrow(UnsafeValueError);
    });
});

describe("a role's verifier on PostgreSQL 17 in the project image", { timeout: 60_000 }, () => {
    // What the credentials command asks the leader before it pauses PgBouncer: PostgreSQL stores a verifier as given.
    it("answers t for the verifier the role was given, f for another and for a role with none", () => {
        const verifier = passwordVerifier("scram-sha-256", "obcms_app", "Application-Password-0001", Buffer.alloc(16, 7));
        const other = passwordVerifier("scram-sha-256", "obcms_app", "Application-Password-0002", Buffer.alloc(16, 7));
        const run = onPostgres("", [
            `${psqlValue("CREATE ROLE obcms_app LOGIN")} >/dev/null`,
            psqlValue(roleHasVerifierSql("obcms_app", verifier)),
            `${psqlValue(rolePasswordSql("obcms_app", verifier))} >/dev/null`,
            psqlValue(roleHasVerifierSql("obcms_app", verifier)),
            psqlValue(roleHasVerifierSql("obcms_app", other)),
            psqlValue(roleHasVerifierSql("no_such_role", verifier)),
        ]);
        expect(run).toEqual([0, "f\nt\nf\nf\n", ""]);
    });
});

// The cluster may log every statement (postgresParameters), and pg_stat_statements keeps the text of
// utility statements verbatim for pg_monitor's members to read: neither may hold a verifier.
describe("a session that sets a verifier, on PostgreSQL 17 in the project image", { timeout: 60_000 }, () => {
    const verifier = passwordVerifier("scram-sha-256", "obcms_app", "Application-Password-0001", Buffer.alloc(16, 7));
    const recordingEverything =
        "-c shared_preload_libraries=pg_stat_statements -c log_statement=all -c log_min_duration_statement=0 -c log_min_error_statement=debug5";
    /** Sets the verifier and asks for it in sessions started with `options`; prints where it was recorded. */
    const recorded = (options: string) =>
        onPostgres(recordingEverything, [
            `${psqlValue("CREATE EXTENSION pg_stat_statements")} >/dev/null`,
            `${psqlValue("CREATE ROLE obcms_app LOGIN")} >/dev/null`,
            `export PGOPTIONS=${shellWord(options)}`,
            `printf '%s\\n' ${shellWord(rolePasswordSql("obcms_app", verifier))} | psql -X -q -v ON_ERROR_STOP=1 -h /tmp -d postgres -f -`,
            psqlValue(roleHasVerifierSql("obcms_app", verifier)),
            "unset PGOPTIONS",
            `echo "log: $(grep -cF ${shellWord(verifier)} /tmp/pg.log)"`,
            psqlValue(`SELECT 'statements: ' || count(*) FROM pg_stat_statements WHERE strpos(query, ${sqlLiteral(verifier)}) > 0`),
        ]);

    it("records it nowhere with the leader commands' session options", () => {
        expect(recorded(UNRECORDED_SESSION_OPTIONS)).toEqual([0, "t\nlog: 0\nstatements: 0\n", ""]);
    });

    // Earlier versions ran the roles SQL in a session that pg_stat_statements recorded.
    it("has the roles SQL forget what pg_stat_statements kept of statements that carried a verifier, and nothing else", () => {
        const spec: BootstrapSpec = {
            ...SPEC,
            roles: [{ name: "obcms_app", verifier, attributes: [], memberOf: [] }],
            schemas: [{ name: "restore_drill", owner: "obcms_app" }],
            extensions: ["pg_stat_statements"],
        };
        const count = (pattern: string) =>
            psqlValue(`SELECT count(*) FROM pg_stat_statements WHERE strpos(query, ${sqlLiteral(pattern)}) > 0`);
        const run = onPostgres(recordingEverything, [
            `${psqlValue("CREATE EXTENSION pg_stat_statements")} >/dev/null`,
            `${psqlValue(`CREATE ROLE obcms_app LOGIN PASSWORD ${sqlLiteral(verifier)}`)} >/dev/null`,
            `${psqlValue("CREATE TABLE kept (id int)")} >/dev/null`,
            count(verifier),
            `printf '%s' ${shellWord(renderBootstrapSql(spec))} | PGOPTIONS=${shellWord(UNRECORDED_SESSION_OPTIONS)} psql -X -q -v ON_ERROR_STOP=1 -h /tmp -d postgres -f -`,
            count(verifier),
            count("CREATE TABLE kept"),
        ]);
        expect(run).toEqual([0, "1\n0\n1\n", ""]);
    });

    it("would have it in the log and in pg_stat_statements without them (the control)", () => {
        const [status, stdout] = recorded("");
        expect(status).toBe(0);
        expect(stdout).not.toMatch(/log: 0\n/);
        expect(stdout).toMatch(/statements: [1-9]/);
    });
});
