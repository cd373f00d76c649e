import { describe, expect, it } from "vitest";
import { pgbouncerConfig, pgbouncerReloadableSettings, routeHosts } from "../../components/render/pgbouncer/config";
import { type PgbouncerIni, renderPgbouncerIncluded, renderPgbouncerIni } from "../../components/render/pgbouncer/pgbouncer-ini";
import { exactly, production, staging } from "./fixtures";
import { readPgbouncerConnstring } from "./formats";

const STAGING_INI = [
    "; Rendered by obcms-database; changes here are overwritten.",
    "[databases]",
    "obcms = dbname='obcms' host='obcms-database-staging-rw' port='5432'",
    "obcms_readonly = dbname='obcms' host='obcms-database-staging-ro' port='5433'",
    "",
    "[pgbouncer]",
    "%include /var/lib/obcms/pgbouncer/pool.ini",
    "admin_users = pgbouncer",
    "auth_file = /var/lib/obcms/pgbouncer/userlist.txt",
    "auth_type = scram-sha-256",
    "client_tls_ca_file = /etc/obcms/tls/ca.crt",
    "client_tls_cert_file = /var/lib/obcms/pgbouncer/server.crt",
    "client_tls_key_file = /var/lib/obcms/pgbouncer/server.key",
    "client_tls_sslmode = prefer",
    "ignore_startup_parameters = extra_float_digits",
    "listen_addr = *",
    "listen_backlog = 4096",
    "listen_port = 6432",
    "pool_mode = transaction",
    "server_connect_timeout = 3",
    "server_lifetime = 60",
    "server_login_retry = 1",
    "server_round_robin = 1",
    "server_tls_ca_file = /etc/obcms/tls/ca.crt",
    "server_tls_sslmode = verify-full",
    "stats_users = monitoring",
    "unix_socket_dir = /var/run/postgresql",
    "",
].join("\n");

const PRODUCTION_INI = [
    "; Rendered by obcms-database; changes here are overwritten.",
    "[databases]",
    "obcms = dbname='obcms' host='obcms-database-production-rw' port='5432'",
    "obcms_readonly = dbname='obcms' host='obcms-database-production-ro' port='5433'",
    "",
    "[pgbouncer]",
    "%include /var/lib/obcms/pgbouncer/pool.ini",
    "admin_users = pgbouncer",
    "auth_file = /var/lib/obcms/pgbouncer/userlist.txt",
    "auth_type = scram-sha-256",
    "client_tls_ca_file = /etc/obcms/tls/ca.crt",
    "client_tls_cert_file = /var/lib/obcms/pgbouncer/server.crt",
    "client_tls_key_file = /var/lib/obcms/pgbouncer/server.key",
    "client_tls_sslmode = require",
    "ignore_startup_parameters = extra_float_digits",
    "listen_addr = *",
    "listen_backlog = 4096",
    "listen_port = 6432",
    "pool_mode = transaction",
    "server_connect_timeout = 3",
    "server_lifetime = 60",
    "server_login_retry = 1",
    "server_round_robin = 1",
    "server_tls_ca_file = /etc/obcms/tls/ca.crt",
    "server_tls_sslmode = verify-full",
    "stats_users = monitoring",
    "unix_socket_dir = /var/run/postgresql",
    "",
].join("\n");

const STAGING_POOL = [
    "; Rendered by obcms-database; PgBouncer takes these by RELOAD.",
    "default_pool_size = 25",
    "max_client_conn = 1000",
    "max_db_connections = 30",
    "query_wait_timeout = 120",
    "reserve_pool_size = 5",
    "",
].join("\n");

/** The `[databases]` entries, each connection string read back as PgBouncer reads it. */
function databases(text: string): Record<string, Record<string, string>> {
    const section = text.split("[databases]\n")[1].split("\n\n")[0];
    return Object.fromEntries(
        section.split("\n").map((line) => {
            const [name, connstring] = line.split(/ = (.*)/s);
            return [name, readPgbouncerConnstring(connstring)];
        }),
    );
}

/** The keys of the `[pgbouncer]` section, in file order. */
function settingKeys(text: string): string[] {
    return text
        .split("[pgbouncer]\n")[1]
        .split("\n")
        .filter((line) => line !== "" && !line.startsWith("%include "))
        .map((line) => line.split(" = ")[0]);
}

function withSetting(key: string, value: string | number): PgbouncerIni {
    return { databases: {}, settings: { [key]: value } };
}

describe("renderPgbouncerIni", () => {
    it("renders the staging config as the exact file", () => {
        expect(renderPgbouncerIni(pgbouncerConfig(staging))).toBe(STAGING_INI);
    });

    it("renders the production config (3 replicas, pool 50, 2000 clients, client TLS required) as the exact file", () => {
        expect(renderPgbouncerIni(pgbouncerConfig(production))).toBe(PRODUCTION_INI);
    });

    it("sends obcms to the router's read-write route and obcms_readonly to its read-only one, as PgBouncer reads the connection strings", () => {
        expect(databases(renderPgbouncerIni(pgbouncerConfig(production)))).toEqual({
            obcms: { dbname: "obcms", host: "obcms-database-production-rw", port: "5432" },
            obcms_readonly: { dbname: "obcms", host: "obcms-database-production-ro", port: "5433" },
        });
    });

    it("leads both routes' names to the router on loopback, in PgBouncer's container", () => {
        expect(routeHosts(production)).toEqual([
            { host: "obcms-database-production-rw", ip: "127.0.0.1" },
            { host: "obcms-database-production-ro", ip: "127.0.0.1" },
        ]);
    });

    // Neither scaling nor a failover reaches pgbouncer.ini: the router follows the members.
    it("does not change when only the replica count does", () => {
        expect(renderPgbouncerIni(pgbouncerConfig({ ...production, replicaCount: 1 }))).toBe(PRODUCTION_INI);
    });

    it("writes the settings sorted by key", () => {
        const keys = settingKeys(renderPgbouncerIni(pgbouncerConfig(staging)));
        expect(keys).toHaveLength(20);
        expect(keys).toEqual([...keys].sort());
    });

    it("renders the same bytes for the same config built in a different order", () => {
        const config = pgbouncerConfig(production);
        const reversed: PgbouncerIni = {
            databases: Object.fromEntries(
                Object.entries(config.databases)
                    .reverse()
                    .map(([name, params]) => [name, Object.fromEntries(Object.entries(params).reverse())]),
            ),
            settings: Object.fromEntries(Object.entries(config.settings).reverse()),
            include: config.include,
        };
        expect(Object.keys(reversed.settings)).not.toEqual(Object.keys(config.settings));
        expect(renderPgbouncerIni(reversed)).toBe(PRODUCTION_INI);
    });

    it("renders the staging pool's sizes and waits and client limit, which PgBouncer reloads, as the exact included file", () => {
        expect(renderPgbouncerIncluded(pgbouncerReloadableSettings(staging))).toBe(STAGING_POOL);
    });

    // The pool's settings are in the included file only: a change there leaves the container's files alone.
    it("does not change when only the pool's sizes and waits or the client limit do, which the included file carries", () => {
        const pool = { ...production.pool, defaultPoolSize: 40, reservePoolSize: 3, queryWaitTimeoutSeconds: 60, maxClientConn: 1500 };
        expect(renderPgbouncerIni(pgbouncerConfig({ ...production, pool }))).toBe(PRODUCTION_INI);
        expect(renderPgbouncerIncluded(pgbouncerReloadableSettings({ ...production, pool }))).toBe(
            [
                "; Rendered by obcms-database; PgBouncer takes these by RELOAD.",
                "default_pool_size = 40",
                "max_client_conn = 1500",
                "max_db_connections = 43",
                "query_wait_timeout = 60",
                "reserve_pool_size = 3",
                "",
            ].join("\n"),
        );
    });

    // PgBouncer reads in order: pgbouncer.ini's own settings (TLS, authentication) win over the included file's.
    it("includes the file first in [pgbouncer], and refuses a path PgBouncer would read otherwise", () => {
        expect(renderPgbouncerIni({ databases: {}, settings: { auth_type: "scram-sha-256" }, include: "/a/b.ini" })).toBe(
            "; Rendered by obcms-database; changes here are overwritten.\n[databases]\n\n[pgbouncer]\n%include /a/b.ini\nauth_type = scram-sha-256\n",
        );
        expect(() => renderPgbouncerIni({ databases: {}, settings: {}, include: "pool.ini" })).toThrow(
            exactly('pgbouncer.ini: "pool.ini" is not an absolute path PgBouncer can include'),
        );
        expect(() => renderPgbouncerIni({ databases: {}, settings: {}, include: "/a.ini\nauth_type = trust" })).toThrow(
            exactly('pgbouncer.ini: "/a.ini\\nauth_type = trust" is not an absolute path PgBouncer can include'),
        );
    });

    it("writes setting values bare, with comment signs and quotes kept as they are", () => {
        expect(renderPgbouncerIni(withSetting("application_name_add_host", "a;b # 'c' \"d\" \\ Ñoño 東京"))).toBe(
            "; Rendered by obcms-database; changes here are overwritten.\n[databases]\n\n[pgbouncer]\napplication_name_add_host = a;b # 'c' \"d\" \\ Ñoño 東京\n",
        );
    });

    // PgBouncer's own parser (src/loader.c, cstr_unquote_value) doubles quotes
    // and takes backslashes literally; libpq's escapes would make PgBouncer 1.24
    // refuse the file with "syntax error in connection string".
    it("a connection value with a quote and a backslash reads back unchanged in PgBouncer", () => {
        const text = renderPgbouncerIni({
            databases: { obcms: { dbname: "it's", password: "C:\\dir", host: "primary" } },
            settings: {},
        });
        expect(databases(text)).toEqual({ obcms: { dbname: "it's", host: "primary", password: "C:\\dir" } });
    });

    it.each([
        [
            "a setting value",
            withSetting("listen_addr", "*\nauth_type = trust"),
            'pgbouncer.ini: cannot write "*\\nauth_type = trust": line breaks are not allowed',
        ],
        ["a setting value (CR)", withSetting("listen_addr", "*\rx"), 'pgbouncer.ini: cannot write "*\\rx": line breaks are not allowed'],
        [
            "a connection value",
            { databases: { obcms: { host: "primary\n[pgbouncer]" } }, settings: {} },
            'pgbouncer.ini: cannot write "primary\\n[pgbouncer]": line breaks are not allowed',
        ],
        [
            "a connection value (U+2028)",
            { databases: { obcms: { host: "primary\u2028x" } }, settings: {} },
            'pgbouncer.ini: cannot write "primary\u2028x": line breaks are not allowed',
        ],
        [
            "a database name",
            { databases: { "obcms\nx": { host: "primary" } }, settings: {} },
            'pgbouncer.ini: "obcms\\nx" is not a valid database name',
        ],
        [
            "a connection parameter",
            { databases: { obcms: { "host\nx": "primary" } }, settings: {} },
            'pgbouncer.ini: "host\\nx" is not a valid connection parameter',
        ],
        [
            "a setting key",
            withSetting("listen_addr\nauth_type", "trust"),
            'pgbouncer.ini: "listen_addr\\nauth_type" is not a valid setting',
        ],
    ] satisfies Array<[string, PgbouncerIni, string]>)("refuses a line break in %s", (_what, ini, message) => {
        expect(() => renderPgbouncerIni(ini)).toThrow(exactly(message));
    });

    it.each([
        [
            "a database name with a space",
            { databases: { "my db": { host: "h" } }, settings: {} },
            'pgbouncer.ini: "my db" is not a valid database name',
        ],
        [
            "a connection parameter with =",
            { databases: { obcms: { "host=x": "h" } }, settings: {} },
            'pgbouncer.ini: "host=x" is not a valid connection parameter',
        ],
        ["a setting key with a space", withSetting("auth type", "trust"), 'pgbouncer.ini: "auth type" is not a valid setting'],
    ] satisfies Array<[string, PgbouncerIni, string]>)("refuses %s", (_what, ini, message) => {
        expect(() => renderPgbouncerIni(ini)).toThrow(exactly(message));
    });
});
