// Grafana cannot run on the test machines, so its provisioning is validated
// here: exact provisioning files, and dashboards checked the way Grafana reads
// them (ids, layout, datasource, queries). monitoring-promtool.test.ts parses
// every panel query with promtool; the integration test runs them all against
// a live Prometheus.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
    type DashboardSpec,
    pgbouncerDashboard,
    postgresqlDashboard,
    RATE_INTERVAL,
    renderDashboard,
} from "../../components/render/monitoring/grafana-dashboards";
import {
    GRAFANA_DATASOURCE,
    renderGrafanaDashboardProviders,
    renderGrafanaDatasources,
} from "../../components/render/monitoring/grafana-provisioning";
import { GRAFANA_DASHBOARDS_DIR } from "../../components/render/paths";
import { defaultMonitoring } from "../support/monitoring-fixtures";
import { production, staging } from "./fixtures";

interface Panel {
    id: number;
    type: string;
    title: string;
    description: string;
    datasource: { type: string; uid: string };
    gridPos: { h: number; w: number; x: number; y: number };
    fieldConfig: { defaults: { unit: string; thresholds: { steps: Array<{ color: string; value: number | null }> }; custom?: unknown } };
    targets: Array<{ refId: string; expr: string; legendFormat: string; datasource: { type: string; uid: string } }>;
}

function dashboards(): Array<[string, DashboardSpec]> {
    return [
        ["PostgreSQL (staging)", postgresqlDashboard(staging, defaultMonitoring)],
        ["PgBouncer (staging)", pgbouncerDashboard(staging, defaultMonitoring)],
        ["PostgreSQL (production)", postgresqlDashboard(production, defaultMonitoring)],
        ["PgBouncer (production)", pgbouncerDashboard(production, defaultMonitoring)],
    ];
}

/** Paths of the objects anywhere in `value` whose keys are not in sorted order. */
function unsortedObjects(value: unknown, path = "$"): string[] {
    if (Array.isArray(value)) {
        return value.flatMap((item, i) => unsortedObjects(item, `${path}[${i}]`));
    }
    if (value !== null && typeof value === "object") {
        const keys = Object.keys(value);
        const here = keys.join() === [...keys].sort().join() ? [] : [path];
        return [...here, ...keys.flatMap((k) => unsortedObjects((value as Record<string, unknown>)[k], `${path}.${k}`))];
    }
    return [];
}

describe("Grafana provisioning", () => {
    it("provisions Prometheus as the default, read-only datasource, with the scrape interval for $__rate_interval", () => {
        expect(renderGrafanaDatasources({ url: "http://obcms-database-staging-prometheus:9090", scrapeIntervalSeconds: 15 })).toBe(
            [
                "# Rendered by obcms-database; changes here are overwritten.",
                "apiVersion: 1",
                "datasources:",
                '  - access: "proxy"',
                "    editable: false",
                "    isDefault: true",
                "    jsonData:",
                '      httpMethod: "POST"',
                '      timeInterval: "15s"',
                '    name: "Prometheus"',
                '    type: "prometheus"',
                '    uid: "obcms-prometheus"',
                '    url: "http://obcms-database-staging-prometheus:9090"',
                "",
            ].join("\n"),
        );
    });

    it("loads the dashboards from the directory they are uploaded to, and keeps them from being deleted or saved over", () => {
        const text = renderGrafanaDashboardProviders({ folder: "obcms-database", path: GRAFANA_DASHBOARDS_DIR });
        expect(parse(text)).toEqual({
            apiVersion: 1,
            providers: [
                {
                    name: "obcms-database",
                    folder: "obcms-database",
                    type: "file",
                    disableDeletion: true,
                    allowUiUpdates: false,
                    updateIntervalSeconds: 60,
                    options: { path: "/etc/obcms/grafana/dashboards", foldersFromFilesStructure: false },
                },
            ],
        });
    });
});

describe.each(dashboards())("the %s dashboard", (_, spec) => {
    const json = renderDashboard(spec);
    const dashboard = JSON.parse(json);
    const panels: Panel[] = dashboard.panels;

    it("is JSON with sorted keys, the same bytes for the same settings", () => {
        expect(unsortedObjects(dashboard)).toEqual([]);
        expect(json).toBe(`${JSON.stringify(dashboard, null, 2)}\n`);
        expect(renderDashboard(spec)).toBe(json);
    });

    it("has a stable uid Grafana accepts, a title, and is read-only", () => {
        expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
        expect(dashboard).toMatchObject({ uid: spec.uid, title: spec.title, editable: false, schemaVersion: 39, tags: ["obcms-database"] });
        expect(dashboard.templating).toEqual({ list: [] });
    });

    it("numbers its panels 1..n and lays them out on Grafana's 24-column grid without overlap", () => {
        expect(panels.map((p) => p.id)).toEqual(panels.map((__, i) => i + 1));
        const cells = new Set<string>();
        for (const p of panels) {
            expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
            for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
                for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
                    expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
                    cells.add(`${x},${y}`);
                }
            }
        }
    });

    it("queries only the provisioned datasource, each panel with distinct refIds and a legend", () => {
        for (const p of panels) {
            expect(["timeseries", "stat"]).toContain(p.type);
            expect(p.datasource, p.title).toEqual(GRAFANA_DATASOURCE);
            expect(p.description.length, p.title).toBeGreaterThan(0);
            expect(p.targets.length, p.title).toBeGreaterThan(0);
            expect(p.targets.map((t) => t.refId)).toEqual(p.targets.map((__, i) => String.fromCharCode(65 + i)));
            for (const t of p.targets) {
                expect(t.datasource, p.title).toEqual(GRAFANA_DATASOURCE);
                expect(t.expr.length, p.title).toBeGreaterThan(0);
                expect(t.legendFormat.length, p.title).toBeGreaterThan(0);
                // No dashboard variables: Grafana's own $__rate_interval only ($1 is label_replace's).
                expect(t.expr.replaceAll(RATE_INTERVAL, "").match(/\$(?!1")/g), `${p.title}: ${t.expr}`).toBeNull();
            }
        }
    });

    it("draws each alert threshold as a red line at the value the alert fires", () => {
        for (const [i, p] of panels.entries()) {
            const threshold = spec.panels[i].threshold;
            const steps = p.fieldConfig.defaults.thresholds.steps;
            expect(steps, p.title).toEqual(
                threshold === undefined
                    ? [{ color: "green", value: null }]
                    : [
                          { color: "green", value: null },
                          { color: "red", value: threshold },
                      ],
            );
        }
    });
});

describe("the dashboards' panels", () => {
    it("cover what the runbook asked for in PostgreSQL", () => {
        const spec = postgresqlDashboard(staging, defaultMonitoring);
        expect(spec.panels.map((p) => [p.title, p.unit, p.threshold])).toEqual([
            ["PostgreSQL up", "none", undefined],
            ["Connections", "short", 80],
            ["Transactions per second", "ops", undefined],
            ["Cache hit ratio", "percentunit", undefined],
            ["Replication lag (bytes)", "bytes", 64 * 1024 * 1024],
            ["Replication lag (seconds)", "s", 30],
            ["WAL retained per slot", "bytes", 1_717_986_918],
            ["Top statements by execution time", "s", undefined],
            ["Top statements by calls", "ops", undefined],
        ]);
        const exprs = Object.fromEntries(spec.panels.map((p) => [p.title, p.queries.map((q) => q.expr)]));
        expect(exprs["Replication lag (bytes)"]).toEqual([
            'max by (instance) (label_replace(pg_stat_replication_pg_wal_lsn_diff{job="postgres", role="primary"}, "instance", "$1", "application_name", "(.+)"))',
        ]);
        expect(exprs["Top statements by execution time"]).toEqual([
            'topk(10, sum by (instance, datname, user, queryid) (rate(pg_stat_statements_seconds_total{job="postgres"}[$__rate_interval])))',
        ]);
    });

    it("cover what the runbook asked for in PgBouncer", () => {
        const spec = pgbouncerDashboard(production, defaultMonitoring);
        expect(spec.panels.map((p) => [p.title, p.unit, p.threshold])).toEqual([
            ["PgBouncer up", "none", undefined],
            ["Client connections", "short", 1600],
            ["Clients active per pool", "short", undefined],
            ["Clients waiting per pool", "short", undefined],
            ["Servers active per pool", "short", 45],
            ["Servers idle per pool", "short", undefined],
            ["Queries per second", "ops", undefined],
            ["Transactions per second", "ops", undefined],
            ["Longest client wait", "s", 5],
            ["Client wait time per second", "s", undefined],
        ]);
        const exprs = Object.fromEntries(spec.panels.map((p) => [p.title, p.queries.map((q) => q.expr)]));
        expect(exprs["Clients waiting per pool"]).toEqual([
            'sum by (database, user) (pgbouncer_pools_client_waiting_connections{job="pgbouncer", database!="pgbouncer"})',
        ]);
    });
});
