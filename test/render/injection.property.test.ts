// Property tests: whatever value reaches a renderer, the rendered file keeps
// exactly the lines and fields intended — the value is either escaped so it
// reads back unchanged under the format's own rules, or refused.
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderPgpass, renderUserlist } from "../../components/render/credentials/credential-files";
import {
    hbaToken,
    pgbouncerIniValue,
    postgresConfLiteral,
    shellWord,
    sqlIdentifier,
    sqlLiteral,
    UnsafeValueError,
} from "../../components/render/escape";
import { renderPgbouncerIni } from "../../components/render/pgbouncer/pgbouncer-ini";
import { renderPostgresqlConf } from "../../components/render/postgres/postgresql-conf";
import { readPgbouncerConnstring } from "./formats";

/** Strings heavy in the characters that break config formats, plus any unicode. */
const hostile = fc.oneof(
    fc.string({ unit: fc.constantFrom("'", '"', "\\", "\n", "\r", "#", ";", "=", ":", " ", "\t", "$", "`", "a", "é", "東", "\u2028") }),
    fc.string({ unit: "grapheme", maxLength: 200 }),
    fc.string({ unit: "binary", maxLength: 50 }),
);

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LINE_BREAK = /[\r\n\u0085\u2028\u2029]/;

/** Reads a postgresql.conf quoted string back as PostgreSQL's GUC lexer does (GUC_scanstr). */
function readConfLiteral(literal: string): string {
    expect(literal.startsWith("'") && literal.endsWith("'")).toBe(true);
    const body = literal.slice(1, -1);
    let out = "";
    for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (c === "'") {
            expect(body[i + 1]).toBe("'");
            out += "'";
            i++;
        } else if (c === "\\") {
            const next = body[++i];
            out += ({ n: "\n", r: "\r", t: "\t", b: "\b", f: "\f" } as Record<string, string>)[next] ?? next;
        } else {
            out += c;
        }
    }
    return out;
}

/** Reads a `"user" "secret"` line as PgBouncer reads its auth_file: `""` stands for a quote. */
function readUserlistLine(line: string): string[] {
    const match = /^"((?:[^"]|"")*)" "((?:[^"]|"")*)"$/.exec(line);
    expect(match).not.toBeNull();
    return [match![1], match![2]].map((field) => field.replace(/""/g, '"'));
}

/** Splits a libpq password file line on unescaped colons. */
function readPgpassLine(line: string): string[] {
    const fields = [""];
    for (let i = 0; i < line.length; i++) {
        if (line[i] === "\\") {
            fields[fields.length - 1] += line[++i];
        } else if (line[i] === ":") {
            fields.push("");
        } else {
            fields[fields.length - 1] += line[i];
        }
    }
    return fields;
}

describe("postgresql.conf literals", () => {
    it("read back unchanged and stay on their own line, or are refused", () => {
        fc.assert(
            fc.property(hostile, (value) => {
                if (CONTROL.test(value)) {
                    expect(() => postgresConfLiteral(value)).toThrow(UnsafeValueError);
                    return;
                }
                const conf = renderPostgresqlConf({ application_name: value, port: 5432 });
                const lines = conf.trimEnd().split("\n");
                expect(lines).toHaveLength(3);
                const line = lines.find((l) => l.startsWith("application_name = "))!;
                expect(readConfLiteral(line.slice("application_name = ".length))).toBe(value);
                expect(lines[2]).toBe("port = 5432");
            }),
            { numRuns: 500 },
        );
    });
});

describe("pgbouncer.ini", () => {
    it("keeps exactly the intended keys whatever the values, refusing line breaks", () => {
        fc.assert(
            fc.property(hostile, hostile, (setting, dbname) => {
                const ini = { databases: { obcms: { dbname, host: "primary" } }, settings: { admin_users: setting, listen_port: 6432 } };
                if (dbname === "" || [setting, dbname].some((v) => LINE_BREAK.test(v) || CONTROL.test(v))) {
                    expect(() => renderPgbouncerIni(ini)).toThrow(UnsafeValueError);
                    return;
                }
                const lines = renderPgbouncerIni(ini).split("\n");
                expect(lines.filter((l) => l.startsWith("["))).toEqual(["[databases]", "[pgbouncer]"]);
                const keyed = lines.filter((l) => / = /.test(l)).map((l) => l.slice(0, l.indexOf(" = ")));
                expect(keyed).toEqual(["obcms", "admin_users", "listen_port"]);
                expect(lines).toContain(`admin_users = ${setting}`);
                const db = lines.find((l) => l.startsWith("obcms = "))!;
                expect(readPgbouncerConnstring(db.slice("obcms = ".length))).toEqual({ dbname, host: "primary" });
                expect(pgbouncerIniValue(setting)).toBe(setting);
            }),
            { numRuns: 500 },
        );
    });
});

describe("credential files", () => {
    it("userlist lines split back into the original user and secret", () => {
        fc.assert(
            fc.property(hostile, hostile, (user, secret) => {
                if ([user, secret].some((v) => LINE_BREAK.test(v) || CONTROL.test(v))) {
                    expect(() => renderUserlist([{ user, secret }])).toThrow(UnsafeValueError);
                    return;
                }
                const text = renderUserlist([{ user, secret }]);
                expect(text.endsWith("\n")).toBe(true);
                expect(text.slice(0, -1).includes("\n")).toBe(false);
                expect(readUserlistLine(text.slice(0, -1))).toEqual([user, secret]);
            }),
            { numRuns: 500 },
        );
    });

    it("password file lines split back into their five fields", () => {
        fc.assert(
            fc.property(hostile, hostile, (user, password) => {
                const entry = { host: "primary", port: 5432, database: "*", user, password };
                if ([user, password].some((v) => LINE_BREAK.test(v) || CONTROL.test(v))) {
                    expect(() => renderPgpass([entry])).toThrow(UnsafeValueError);
                    return;
                }
                const text = renderPgpass([entry]);
                expect(readPgpassLine(text.slice(0, -1))).toEqual(["primary", "5432", "*", user, password]);
            }),
            { numRuns: 500 },
        );
    });
});

describe("pg_hba.conf tokens", () => {
    it("are quoted whole or refused", () => {
        fc.assert(
            fc.property(hostile, (value) => {
                if (value === "" || /["\s]/.test(value) || CONTROL.test(value)) {
                    expect(() => hbaToken(value)).toThrow(UnsafeValueError);
                    return;
                }
                expect(hbaToken(value)).toBe(`"${value}"`);
            }),
            { numRuns: 500 },
        );
    });
});

describe("shell words", () => {
    it("reach the program as one unchanged argument", () => {
        fc.assert(
            fc.property(hostile, (value) => {
                if (value.includes("\u0000")) {
                    expect(() => shellWord(value)).toThrow(UnsafeValueError);
                    return;
                }
                const echoed = execFileSync("/bin/sh", ["-c", `printf %s ${shellWord(value)}`]);
                expect(echoed.equals(Buffer.from(value, "utf8"))).toBe(true);
            }),
            // Each run forks a shell.
            { numRuns: 150 },
        );
    });
});

describe("SQL literals and identifiers", () => {
    it("double every quote so the text cannot end the literal early", () => {
        fc.assert(
            fc.property(hostile, (value) => {
                if (value.includes("\u0000")) {
                    expect(() => sqlLiteral(value)).toThrow(UnsafeValueError);
                    expect(() => sqlIdentifier(value)).toThrow(UnsafeValueError);
                    return;
                }
                const literal = sqlLiteral(value);
                expect(literal.slice(1, -1).replace(/''/g, "")).not.toContain("'");
                expect(literal.slice(1, -1).replace(/''/g, "'")).toBe(value);
                const identifier = sqlIdentifier(value);
                expect(identifier.slice(1, -1).replace(/""/g, "")).not.toContain('"');
                expect(identifier.slice(1, -1).replace(/""/g, '"')).toBe(value);
            }),
            { numRuns: 500 },
        );
    });
});
