// Every escaping helper, with plain and hostile values: the exact text it
// writes, the exact refusal, and a read-back by the target format's own rules
// (or, for the shell, by /bin/sh itself).
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
    hbaToken,
    libpqConnstringValue,
    pgbouncerConnstringValue,
    pgbouncerIniValue,
    pgpassField,
    postgresConfLiteral,
    shellWord,
    sqlIdentifier,
    sqlLiteral,
    UnsafeValueError,
    userlistField,
} from "../../components/render/escape";
import { exactly, LONG, LONG_MULTILINE } from "./fixtures";
import { readLibpqConninfo, readPgbouncerConnstring, readPgpassLine, readPostgresqlConf, readSqlQuoted, readUserlistLine } from "./formats";

/** 10,000 characters that pg_hba.conf can hold in one token: no quote, no whitespace. */
const LONG_TOKEN = "a'\\#;".repeat(2000);

const INPUT = {
    plain: "obcms_app",
    "single-quote": "it's",
    "double-quote": 'say "hi"',
    backslash: "C:\\dir\\",
    colon: "p:w",
    newline: "a\nb",
    "carriage-return": "a\rb",
    "line-separator (U+2028)": "a\u2028b",
    "next-line (U+0085)": "a\u0085b",
    tab: "a\tb",
    hash: "# not a comment",
    "hash without spaces": "a#b",
    semicolon: "a; DROP ROLE postgres",
    "command substitution": "$(id) `id` $HOME",
    unicode: "Ñoño 東京",
    "unicode without spaces": "Ñoño東京",
    NUL: "a\u0000b",
    "escape control character": "\u001b[31m",
    empty: "",
    "10,000-character": LONG,
    "10,000-character multi-line": LONG_MULTILINE,
    "10,000-character token": LONG_TOKEN,
} as const;

type Label = keyof typeof INPUT;

describe("escape", () => {
    it("hostile fixtures are as long as the tests claim", () => {
        expect(LONG).toHaveLength(10_000);
        expect(LONG_MULTILINE).toHaveLength(10_000);
        expect(LONG_TOKEN).toHaveLength(10_000);
    });

    describe("postgresConfLiteral", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "'obcms_app'"],
            ["single-quote", "'it''s'"],
            ["double-quote", `'say "hi"'`],
            ["backslash", "'C:\\\\dir\\\\'"],
            ["newline", "'a\\nb'"],
            ["carriage-return", "'a\\rb'"],
            ["line-separator (U+2028)", "'a\u2028b'"],
            ["tab", "'a\tb'"],
            ["hash", "'# not a comment'"],
            ["semicolon", "'a; DROP ROLE postgres'"],
            ["unicode", "'Ñoño 東京'"],
            ["10,000-character", `'${"a''\"\\\\#; 東".repeat(1250)}'`],
            ["10,000-character multi-line", `'${"a''\\\\\\n".repeat(2500)}'`],
        ];

        it.each(accepted)("writes the %s value exactly", (label, expected) => {
            expect(postgresConfLiteral(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value that the GUC lexer reads back unchanged on one line", (label) => {
            const line = `x = ${postgresConfLiteral(INPUT[label])}`;
            expect(line.split("\n")).toHaveLength(1);
            expect(readPostgresqlConf(line)).toEqual({ x: INPUT[label] });
        });

        it.each<[Label, string]>([
            ["NUL", 'postgresql.conf: cannot write "a\\u0000b": control characters are not allowed'],
            ["escape control character", 'postgresql.conf: cannot write "\\u001b[31m": control characters are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => postgresConfLiteral(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("hbaToken", () => {
        it.each<[Label, string]>([
            ["plain", '"obcms_app"'],
            ["single-quote", `"it's"`],
            ["backslash", '"C:\\dir\\"'],
            ["hash without spaces", '"a#b"'],
            ["unicode without spaces", '"Ñoño東京"'],
            ["10,000-character token", `"${LONG_TOKEN}"`],
        ])("writes the %s value exactly, double-quoted", (label, expected) => {
            expect(hbaToken(INPUT[label])).toBe(expected);
        });

        it.each<[Label, string]>([
            ["double-quote", 'pg_hba.conf: cannot write "say \\"hi\\"": quotes and whitespace are not allowed in a token'],
            ["newline", 'pg_hba.conf: cannot write "a\\nb": quotes and whitespace are not allowed in a token'],
            ["carriage-return", 'pg_hba.conf: cannot write "a\\rb": quotes and whitespace are not allowed in a token'],
            ["line-separator (U+2028)", 'pg_hba.conf: cannot write "a\u2028b": quotes and whitespace are not allowed in a token'],
            ["tab", 'pg_hba.conf: cannot write "a\\tb": quotes and whitespace are not allowed in a token'],
            ["unicode", 'pg_hba.conf: cannot write "Ñoño 東京": quotes and whitespace are not allowed in a token'],
            ["NUL", 'pg_hba.conf: cannot write "a\\u0000b": control characters are not allowed'],
            ["empty", 'pg_hba.conf: cannot write "": a token cannot be empty'],
        ])("refuses the %s value", (label, message) => {
            expect(() => hbaToken(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("pgbouncerIniValue", () => {
        it.each<Label>(["plain", "single-quote", "double-quote", "backslash", "hash", "semicolon", "unicode", "10,000-character"])(
            "writes the %s value unchanged",
            (label) => {
                expect(pgbouncerIniValue(INPUT[label])).toBe(INPUT[label]);
            },
        );

        it.each<[Label, string]>([
            ["newline", 'pgbouncer.ini: cannot write "a\\nb": line breaks are not allowed'],
            ["carriage-return", 'pgbouncer.ini: cannot write "a\\rb": line breaks are not allowed'],
            ["line-separator (U+2028)", 'pgbouncer.ini: cannot write "a\u2028b": line breaks are not allowed'],
            ["next-line (U+0085)", 'pgbouncer.ini: cannot write "a\u0085b": line breaks are not allowed'],
            ["NUL", 'pgbouncer.ini: cannot write "a\\u0000b": control characters are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => pgbouncerIniValue(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("libpqConnstringValue", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "'obcms_app'"],
            ["single-quote", "'it\\'s'"],
            ["double-quote", `'say "hi"'`],
            ["backslash", "'C:\\\\dir\\\\'"],
            ["hash", "'# not a comment'"],
            ["semicolon", "'a; DROP ROLE postgres'"],
            ["unicode", "'Ñoño 東京'"],
            ["10,000-character", `'${"a\\'\"\\\\#; 東".repeat(1250)}'`],
        ];

        it.each(accepted)("writes the %s value exactly, single-quoted with backslash escapes", (label, expected) => {
            expect(libpqConnstringValue(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value that libpq's conninfo parser reads back unchanged", (label) => {
            expect(readLibpqConninfo(`k=${libpqConnstringValue(INPUT[label])} next=1`)).toEqual({ k: INPUT[label], next: "1" });
        });

        it.each<[Label, string]>([
            ["newline", 'connection string: cannot write "a\\nb": line breaks are not allowed'],
            ["carriage-return", 'connection string: cannot write "a\\rb": line breaks are not allowed'],
            ["line-separator (U+2028)", 'connection string: cannot write "a\u2028b": line breaks are not allowed'],
            ["NUL", 'connection string: cannot write "a\\u0000b": control characters are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => libpqConnstringValue(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("pgbouncerConnstringValue", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "'obcms_app'"],
            ["single-quote", "'it''s'"],
            ["double-quote", `'say "hi"'`],
            ["backslash", "'C:\\dir\\'"],
            ["hash", "'# not a comment'"],
            ["semicolon", "'a; DROP ROLE postgres'"],
            ["unicode", "'Ñoño 東京'"],
        ];

        it.each(accepted)("writes the %s value exactly, single-quoted with quotes doubled and backslashes kept", (label, expected) => {
            expect(pgbouncerConnstringValue(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value that PgBouncer's connection-string parser reads back unchanged", (label) => {
            expect(readPgbouncerConnstring(`k=${pgbouncerConnstringValue(INPUT[label])} next=1`)).toEqual({ k: INPUT[label], next: "1" });
        });

        it.each<[Label, string]>([
            ["newline", 'pgbouncer.ini: cannot write "a\\nb": line breaks are not allowed'],
            ["NUL", 'pgbouncer.ini: cannot write "a\\u0000b": control characters are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => pgbouncerConnstringValue(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("userlistField", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", '"obcms_app"'],
            ["single-quote", `"it's"`],
            ["double-quote", '"say ""hi"""'],
            ["backslash", '"C:\\dir\\"'],
            ["hash", '"# not a comment"'],
            ["semicolon", '"a; DROP ROLE postgres"'],
            ["unicode", '"Ñoño 東京"'],
            ["10,000-character", `"${'a\'""\\#; 東'.repeat(1250)}"`],
        ];

        it.each(accepted)("writes the %s value exactly, double-quoted with quotes doubled", (label, expected) => {
            expect(userlistField(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value that splits back into its fields by the auth_file rules", (label) => {
            const line = `${userlistField(INPUT[label])} ${userlistField(INPUT[label])}`;
            expect(readUserlistLine(line)).toEqual([INPUT[label], INPUT[label]]);
        });

        it.each<[Label, string]>([
            ["newline", 'userlist.txt: cannot write "a\\nb": line breaks are not allowed'],
            ["carriage-return", 'userlist.txt: cannot write "a\\rb": line breaks are not allowed'],
            ["line-separator (U+2028)", 'userlist.txt: cannot write "a\u2028b": line breaks are not allowed'],
            ["NUL", 'userlist.txt: cannot write "a\\u0000b": control characters are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => userlistField(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("pgpassField", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "obcms_app"],
            ["single-quote", "it's"],
            ["double-quote", 'say "hi"'],
            ["backslash", "C\\:\\\\dir\\\\"],
            ["colon", "p\\:w"],
            ["hash", "\\# not a comment"],
            ["semicolon", "a; DROP ROLE postgres"],
            ["unicode", "Ñoño 東京"],
            ["10,000-character", "a'\"\\\\#; 東".repeat(1250)],
        ];

        it.each(accepted)("writes the %s value exactly, with : and \\ escaped", (label, expected) => {
            expect(pgpassField(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value that splits back into its fields by the password-file rules", (label) => {
            const value = INPUT[label];
            const line = [value, "5432", value, value, value].map(pgpassField).join(":");
            expect(readPgpassLine(line)).toEqual([value, "5432", value, value, value]);
        });

        it.each<[Label, string]>([
            ["newline", 'pgpass: cannot write "a\\nb": line breaks are not allowed'],
            ["carriage-return", 'pgpass: cannot write "a\\rb": line breaks are not allowed'],
            ["line-separator (U+2028)", 'pgpass: cannot write "a\u2028b": line breaks are not allowed'],
        ])("refuses the %s value", (label, message) => {
            expect(() => pgpassField(INPUT[label])).toThrow(exactly(message));
        });
    });

    describe("sqlLiteral", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "'obcms_app'"],
            ["single-quote", "'it''s'"],
            ["double-quote", `'say "hi"'`],
            ["backslash", "'C:\\dir\\'"],
            ["newline", "'a\nb'"],
            ["carriage-return", "'a\rb'"],
            ["line-separator (U+2028)", "'a\u2028b'"],
            ["hash", "'# not a comment'"],
            ["semicolon", "'a; DROP ROLE postgres'"],
            ["unicode", "'Ñoño 東京'"],
            ["10,000-character", `'${"a''\"\\#; 東".repeat(1250)}'`],
            ["10,000-character multi-line", `'${"a''\\\n".repeat(2500)}'`],
        ];

        it.each(accepted)("writes the %s value exactly, with quotes doubled", (label, expected) => {
            expect(sqlLiteral(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value as one complete literal that reads back unchanged", (label) => {
            expect(readSqlQuoted(sqlLiteral(INPUT[label]), "'")).toEqual({ value: INPUT[label], rest: "" });
        });

        it("refuses NUL", () => {
            expect(() => sqlLiteral(INPUT.NUL)).toThrow(exactly('SQL: cannot write "a\\u0000b": NUL is not allowed'));
        });
    });

    describe("sqlIdentifier", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", '"obcms_app"'],
            ["single-quote", `"it's"`],
            ["double-quote", '"say ""hi"""'],
            ["backslash", '"C:\\dir\\"'],
            ["newline", '"a\nb"'],
            ["semicolon", '"a; DROP ROLE postgres"'],
            ["unicode", '"Ñoño 東京"'],
            ["10,000-character", `"${'a\'""\\#; 東'.repeat(1250)}"`],
        ];

        it.each(accepted)("writes the %s value exactly, with double quotes doubled", (label, expected) => {
            expect(sqlIdentifier(INPUT[label])).toBe(expected);
        });

        it.each(accepted)("writes the %s value as one complete identifier that reads back unchanged", (label) => {
            expect(readSqlQuoted(sqlIdentifier(INPUT[label]), '"')).toEqual({ value: INPUT[label], rest: "" });
        });

        it("refuses NUL", () => {
            expect(() => sqlIdentifier(INPUT.NUL)).toThrow(exactly('SQL: cannot write "a\\u0000b": NUL is not allowed'));
        });
    });

    describe("shellWord", () => {
        const accepted: Array<[Label, string]> = [
            ["plain", "'obcms_app'"],
            ["single-quote", "'it'\\''s'"],
            ["double-quote", `'say "hi"'`],
            ["backslash", "'C:\\dir\\'"],
            ["newline", "'a\nb'"],
            ["command substitution", "'$(id) `id` $HOME'"],
            ["hash", "'# not a comment'"],
            ["semicolon", "'a; DROP ROLE postgres'"],
            ["unicode", "'Ñoño 東京'"],
            ["10,000-character", `'${"a'\\''\"\\#; 東".repeat(1250)}'`],
        ];

        it.each(accepted)("writes the %s value exactly, single-quoted", (label, expected) => {
            expect(shellWord(INPUT[label])).toBe(expected);
        });

        it.each<Label>([
            "plain",
            "single-quote",
            "double-quote",
            "backslash",
            "newline",
            "carriage-return",
            "line-separator (U+2028)",
            "tab",
            "command substitution",
            "hash",
            "semicolon",
            "unicode",
            "empty",
            "10,000-character",
            "10,000-character multi-line",
        ])("writes the %s value that /bin/sh passes on as exactly one unchanged argument", (label) => {
            const value = INPUT[label];
            const printed = execFileSync("/bin/sh", ["-c", `printf '%s|' ${shellWord(value)}`], { encoding: "utf8" });
            expect(printed).toBe(`${value}|`);
        });

        it("refuses NUL", () => {
            expect(() => shellWord(INPUT.NUL)).toThrow(exactly('shell: cannot write "a\\u0000b": NUL is not allowed'));
        });
    });

    it("every refusal is an UnsafeValueError", () => {
        const refusals = [
            () => postgresConfLiteral(INPUT.NUL),
            () => hbaToken(INPUT.empty),
            () => pgbouncerIniValue(INPUT.newline),
            () => libpqConnstringValue(INPUT.newline),
            () => pgbouncerConnstringValue(INPUT.newline),
            () => userlistField(INPUT.newline),
            () => pgpassField(INPUT.newline),
            () => sqlLiteral(INPUT.NUL),
            () => sqlIdentifier(INPUT.NUL),
            () => shellWord(INPUT.NUL),
        ];
        for (const refusal of refusals) {
            expect(refusal).toThrow(UnsafeValueError);
        }
    });
});
