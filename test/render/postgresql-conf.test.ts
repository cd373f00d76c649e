import { describe, expect, it } from "vitest";
import { type ConfValue, renderPostgresqlConf } from "../../components/render/postgres/postgresql-conf";
import { exactly } from "./fixtures";
import { readPostgresqlConf } from "./formats";

const SMALL: Record<string, ConfValue> = {
    work_mem: "64MB",
    max_connections: 100,
    hot_standby: true,
    logging_collector: false,
    "pg_stat_statements.track": "top",
};

/** A value token the GUC lexer (guc-file.l) reads as one token: INTEGER, REAL or a quoted STRING. */
const GUC_VALUE_TOKEN = /^(?:[-+]?(?:\d+|0x[0-9a-fA-F]+)[A-Za-z]*|[-+]?\d*\.\d+(?:[Ee][-+]?\d+)?|'.*')$/;

function parameterLines(text: string): string[] {
    return text.split("\n").filter((line) => line.includes(" = "));
}

describe("renderPostgresqlConf", () => {
    it("renders a small parameter map as the exact file", () => {
        expect(renderPostgresqlConf(SMALL)).toBe(
            [
                "# Rendered by obcms-database; changes here are overwritten.",
                "hot_standby = on",
                "logging_collector = off",
                "max_connections = 100",
                "pg_stat_statements.track = 'top'",
                "work_mem = '64MB'",
                "",
            ].join("\n"),
        );
    });

    it("renders the same bytes for the same map built in a different order", () => {
        const reversed = Object.fromEntries(Object.entries(SMALL).reverse());
        expect(Object.keys(reversed)).not.toEqual(Object.keys(SMALL));
        expect(renderPostgresqlConf(reversed)).toBe(renderPostgresqlConf(SMALL));
    });

    it("writes booleans as on/off and numbers bare", () => {
        expect(renderPostgresqlConf({ a: true, b: false, c: 0, d: -1, e: 0.5, f: 2048 })).toBe(
            "# Rendered by obcms-database; changes here are overwritten.\na = on\nb = off\nc = 0\nd = -1\ne = 0.5\nf = 2048\n",
        );
    });

    it("quotes every string, even one that looks like a boolean or a number", () => {
        expect(renderPostgresqlConf({ a: "on", b: "100", c: "" })).toBe(
            "# Rendered by obcms-database; changes here are overwritten.\na = 'on'\nb = '100'\nc = ''\n",
        );
    });

    it("keeps a value with a newline, a quote and a comment sign on its own line, unable to add a parameter", () => {
        const parameters = {
            application_name: "x'\nport = 6666\n# y",
            log_line_prefix: "a\r\nshared_preload_libraries = 'evil'",
            cluster_name: "b\u2028ssl = off",
            port: 5432,
        };
        const text = renderPostgresqlConf(parameters);
        expect(text).toBe(
            [
                "# Rendered by obcms-database; changes here are overwritten.",
                "application_name = 'x''\\nport = 6666\\n# y'",
                "cluster_name = 'b\u2028ssl = off'",
                "log_line_prefix = 'a\\r\\nshared_preload_libraries = ''evil'''",
                "port = 5432",
                "",
            ].join("\n"),
        );
        expect(parameterLines(text)).toHaveLength(Object.keys(parameters).length);
        expect(readPostgresqlConf(text)).toEqual({ ...parameters, port: "5432" });
    });

    it("refuses a number PostgreSQL cannot read", () => {
        expect(() => renderPostgresqlConf({ a: Number.NaN })).toThrow(exactly("postgresql.conf: NaN is not a finite number"));
        expect(() => renderPostgresqlConf({ a: Number.POSITIVE_INFINITY })).toThrow(
            exactly("postgresql.conf: Infinity is not a finite number"),
        );
    });

    it.each([
        ["Work_Mem", 'postgresql.conf: "Work_Mem" is not a parameter name'],
        ["work mem", 'postgresql.conf: "work mem" is not a parameter name'],
        ["a=b", 'postgresql.conf: "a=b" is not a parameter name'],
        ["x\ny", 'postgresql.conf: "x\\ny" is not a parameter name'],
        ["1abc", 'postgresql.conf: "1abc" is not a parameter name'],
        ["a-b", 'postgresql.conf: "a-b" is not a parameter name'],
        ["", 'postgresql.conf: "" is not a parameter name'],
    ])("refuses the parameter name %j", (name, message) => {
        expect(() => renderPostgresqlConf({ [name]: 1 })).toThrow(exactly(message));
    });

    // guc-file.l only reads ID or ID.ID as a name; PostgreSQL refuses to start
    // on any other ("syntax error ... near token \"a.b.c\"").
    it.each([["a.b.c"], ["a."], ["a..b"]])("refuses the name %j, which PostgreSQL cannot read", (name) => {
        expect(() => renderPostgresqlConf({ [name]: 1 })).toThrow(
            exactly(`postgresql.conf: ${JSON.stringify(name)} is not a parameter name`),
        );
    });

    it.each([[0], [-1], [0.5], [2048], [0.000001], [1e20]])("writes the number %d as one token PostgreSQL can read", (value) => {
        const line = parameterLines(renderPostgresqlConf({ a: value }))[0];
        expect(line.slice("a = ".length)).toMatch(GUC_VALUE_TOKEN);
    });

    // String(1e-7) is "1e-7", which guc-file.l would lex as INTEGER "1e"
    // followed by "-7", a syntax error; such numbers are written quoted.
    it.each([[1e-7], [1e21]])("writes the number %d as one token PostgreSQL can read", (value) => {
        const line = parameterLines(renderPostgresqlConf({ a: value }))[0];
        expect(line.slice("a = ".length)).toMatch(GUC_VALUE_TOKEN);
    });
});
