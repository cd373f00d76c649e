// What Prometheus scrapes and how the exporters and Prometheus start: exact
// files for the stacks, and the values as a parser or the shell reads them.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderPrometheusConfig } from "../../components/render/monitoring/prometheus-config";
import {
    backupScrapeJob,
    etcdScrapeJob,
    exporterConnectionUrl,
    haproxyScrapeJob,
    patroniScrapeJob,
    scrapeJobs,
} from "../../components/render/monitoring/prometheus-targets";
import {
    renderPgbouncerExporterStart,
    renderPostgresExporterStart,
    renderPrometheusStart,
} from "../../components/render/monitoring/start-scripts";
import { production, shellSyntaxCheck, staging } from "./fixtures";

function stagingConfig(scrapeIntervalSeconds = 15): string {
    return renderPrometheusConfig({
        scrapeIntervalSeconds,
        externalLabels: { cluster: staging.clusterName },
        ruleFiles: ["/etc/obcms/alert-rules.yml"],
        jobs: [...scrapeJobs(staging), patroniScrapeJob(staging, "/etc/obcms/tls/ca.crt"), haproxyScrapeJob(staging)],
    });
}

describe("prometheus.yml", () => {
    it("is exactly this for the staging stack", () => {
        expect(stagingConfig()).toBe(
            [
                "# Rendered by obcms-database; changes here are overwritten.",
                "global:",
                '  evaluation_interval: "15s"',
                "  external_labels:",
                '    cluster: "obcms-database-staging"',
                '  scrape_interval: "15s"',
                '  scrape_timeout: "10s"',
                "rule_files:",
                '  - "/etc/obcms/alert-rules.yml"',
                "scrape_configs:",
                '  - job_name: "postgres"',
                "    static_configs:",
                "      - labels:",
                '          instance: "pg-1"',
                '          role: "postgres"',
                "        targets:",
                '          - "obcms-database-staging-pg-1-exporter:9187"',
                "      - labels:",
                '          instance: "pg-2"',
                '          role: "postgres"',
                "        targets:",
                '          - "obcms-database-staging-pg-2-exporter:9187"',
                '  - job_name: "pgbouncer"',
                "    static_configs:",
                "      - labels:",
                '          instance: "pgbouncer"',
                '          role: "pgbouncer"',
                "        targets:",
                '          - "obcms-database-staging-pgbouncer-exporter:9127"',
                '  - job_name: "patroni"',
                '    scheme: "https"',
                "    static_configs:",
                "      - labels:",
                '          instance: "pg-1"',
                '          role: "patroni"',
                "        targets:",
                '          - "obcms-database-staging-pg-1:8008"',
                "      - labels:",
                '          instance: "pg-2"',
                '          role: "patroni"',
                "        targets:",
                '          - "obcms-database-staging-pg-2:8008"',
                "    tls_config:",
                '      ca_file: "/etc/obcms/tls/ca.crt"',
                '  - job_name: "haproxy"',
                "    static_configs:",
                "      - labels:",
                '          instance: "haproxy"',
                '          role: "haproxy"',
                "        targets:",
                '          - "obcms-database-staging-pgbouncer:8404"',
                "",
            ].join("\n"),
        );
    });

    it("keeps the scrape timeout within a short scrape interval", () => {
        expect(parse(stagingConfig(2)).global).toMatchObject({ scrape_interval: "2s", scrape_timeout: "2s", evaluation_interval: "2s" });
        expect(parse(stagingConfig(60)).global).toMatchObject({ scrape_interval: "60s", scrape_timeout: "10s" });
    });

    it("adds a postgres and a Patroni target per member, labelled with its name and never its role: 4 of each for production", () => {
        const jobs = [
            ...scrapeJobs(production),
            patroniScrapeJob(production, "/ca.crt"),
            haproxyScrapeJob(production),
            backupScrapeJob(production),
            etcdScrapeJob(production),
        ];
        const members = [1, 2, 3, 4];
        expect(jobs.map((j) => [j.name, j.caFile, j.targets.map((t) => `${t.labels.role}/${t.labels.instance}@${t.address}`)])).toEqual([
            ["postgres", undefined, members.map((i) => `postgres/pg-${i}@obcms-database-production-pg-${i}-exporter:9187`)],
            ["pgbouncer", undefined, ["pgbouncer/pgbouncer@obcms-database-production-pgbouncer-exporter:9127"]],
            ["patroni", "/ca.crt", members.map((i) => `patroni/pg-${i}@obcms-database-production-pg-${i}:8008`)],
            ["haproxy", undefined, ["haproxy/haproxy@obcms-database-production-pgbouncer:8404"]],
            ["backup", undefined, ["backup/backup@obcms-database-production-backup:9100"]],
            ["etcd", undefined, [1, 2, 3].map((i) => `etcd/etcd-${i}@obcms-database-production-etcd-${i}:2381`)],
        ]);
    });
});

describe("exporterConnectionUrl", () => {
    it("writes a URL without a password, keeping paths in the query readable", () => {
        expect(
            exporterConnectionUrl({
                user: "monitoring",
                host: "db",
                port: 5432,
                database: "obcms",
                params: { sslmode: "verify-full", sslrootcert: "/etc/obcms/tls/ca.crt" },
            }),
        ).toBe("postgresql://monitoring@db:5432/obcms?sslmode=verify-full&sslrootcert=/etc/obcms/tls/ca.crt");
    });

    it("percent-encodes every part, so hostile values come back unchanged from a URL parser", () => {
        const hostile = { user: "mon:it@r/ing", host: "db", port: 6432, database: "a b?c#d", params: { "x&y": "1=2&z#" } };
        const url = new URL(exporterConnectionUrl(hostile));
        expect([decodeURIComponent(url.username), url.password, url.hostname, url.port, decodeURIComponent(url.pathname.slice(1))]).toEqual(
            ["mon:it@r/ing", "", "db", "6432", "a b?c#d"],
        );
        expect([...url.searchParams]).toEqual([["x&y", "1=2&z#"]]);
    });
});

/** The arguments /bin/sh passes to the program on the script's `exec` line, with the program stubbed out to print them. */
function execArguments(script: string): string[] {
    const line = script.split("\n").find((l) => l.startsWith("exec "));
    expect(line).toBeDefined();
    const program = line!.split(" ")[1];
    const output = execFileSync(
        "/bin/sh",
        [
            "-c",
            `${program.replace(/-/g, "_")}() { for a in "$@"; do printf '%s\\0' "$a"; done; }; ${line!.replace(/^exec \S+/, program.replace(/-/g, "_"))}`,
        ],
        { encoding: "utf8" },
    );
    return output.split("\0").slice(0, -1);
}

/** The lines a script adds after the shared header (which ends with the PATH line). */
function ownLines(script: string): string[] {
    const lines = script.split("\n");
    return lines.slice(lines.findIndex((l) => l.startsWith("export PATH=")) + 1);
}

describe("monitoring start scripts", () => {
    const dsn = "postgresql://monitoring@obcms-database-staging-pg-1:5432/obcms?sslmode=verify-full&sslrootcert=/etc/obcms/tls/ca.crt";
    const postgres = renderPostgresExporterStart({ dataSourceName: dsn, configFile: "/etc/obcms/postgres_exporter.yml", listenPort: 9187 });
    const admin = "postgresql://monitoring@obcms-database-staging-pgbouncer:6432/pgbouncer?sslmode=disable";
    const pgbouncer = renderPgbouncerExporterStart({ connectionString: admin, listenPort: 9127 });
    const prometheus = renderPrometheusStart({
        configFile: "/etc/obcms/prometheus.yml",
        dataDir: "/var/lib/obcms/prometheus",
        retention: "15d",
        listenPort: 9090,
    });
    const SCRIPTS: Array<[string, string]> = [
        ["postgres exporter", postgres],
        ["pgbouncer exporter", pgbouncer],
        ["prometheus", prometheus],
    ];

    it.each(SCRIPTS)("the %s script parses as POSIX shell and starts like every other", (_, script) => {
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
        expect(script.split("\n").slice(0, 3)).toEqual(["#!/bin/sh", "# Rendered by obcms-database.", "set -eu"]);
    });

    it("the postgres exporter reads its password from the passfile, and its URL from the environment", () => {
        expect(ownLines(postgres)).toEqual([
            "export PGPASSFILE='/etc/obcms/pgpass'",
            `export DATA_SOURCE_NAME='${dsn}'`,
            "exec prometheus-postgres-exporter " +
                "--config.file='/etc/obcms/postgres_exporter.yml' --web.listen-address=:9187 --collector.stat_statements",
            "",
        ]);
        expect(execArguments(postgres)).toEqual([
            "--config.file=/etc/obcms/postgres_exporter.yml",
            "--web.listen-address=:9187",
            "--collector.stat_statements",
        ]);
    });

    it("the pgbouncer exporter takes the admin console URL, which has no password, as one argument", () => {
        expect(ownLines(pgbouncer)).toEqual([
            "export PGPASSFILE='/etc/obcms/pgpass'",
            "exec prometheus-pgbouncer-exporter " +
                `--pgBouncer.connectionString='${admin}' --pgBouncer.pid-file= --web.listen-address=:9127`,
            "",
        ]);
        expect(execArguments(pgbouncer)).toEqual([
            `--pgBouncer.connectionString=${admin}`,
            "--pgBouncer.pid-file=",
            "--web.listen-address=:9127",
        ]);
    });

    it("prometheus keeps its data on its volume, for the configured retention", () => {
        expect(ownLines(prometheus)).toEqual([
            "exec prometheus --config.file='/etc/obcms/prometheus.yml' " +
                "--storage.tsdb.path='/var/lib/obcms/prometheus' --storage.tsdb.retention.time='15d' --web.listen-address=:9090",
            "",
        ]);
    });

    it("single-quotes a hostile retention and URL, so each stays one argument", () => {
        const hostile = "15d' --web.enable-admin-api '$(id)";
        const script = renderPrometheusStart({ configFile: "/c", dataDir: "/d", retention: hostile, listenPort: 9090 });
        expect(execArguments(script)).toContain(`--storage.tsdb.retention.time=${hostile}`);
        const url = "postgresql://m@h:1/p?a='b'&c=$(id)";
        expect(execArguments(renderPgbouncerExporterStart({ connectionString: url, listenPort: 1 }))).toContain(
            `--pgBouncer.connectionString=${url}`,
        );
    });

    it.each(SCRIPTS)("the %s script carries no password", (_, script) => {
        expect(script).not.toMatch(/password\s*[=:]|PGPASSWORD|DATA_SOURCE_PASS/i);
    });
});
