// Grafana cannot run on the test machines, so its provisioning is validated
// here: exact provisioning files, and dashboards checked the way Grafana reads
// them (ids, layout, datasource, queries). monitoring-promtool.test.ts parses
// every panel query with promtool; the integration test runs them all against
// a live Prometheus.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
    backupDashboard,
    clusterDashboard,
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
import { defaultBackup, defaultMonitoring } from "../support/monitoring-fixtures";
import { production, staging } from "./fixtures";

interface Panel {
    id: number;
    type: string;
    title: string;
    description: string;
    datasource: { type: string; uid: string };
    gridPos: { h: number; w: number; x: number; y: number };
    fieldConfig: {
        defaults: {
            unit: string;
            thresholds: { steps: Array<{ color: string; value: number | null }> };
            custom?: unknown;
            color?: unknown;
            mappings?: Array<{ type: string; options: Record<string, { text: string; color: string; index: number }> }>;
        };
    };
    options: Record<string, unknown>;
    targets: Array<{ refId: string; expr: string; legendFormat: string; datasource: { type: string; uid: string } }>;
}

function dashboards(): Array<[string, DashboardSpec]> {
    return [
        ["PostgreSQL (staging)", postgresqlDashboard(staging, defaultMonitoring)],
        ["PgBouncer (staging)", pgbouncerDashboard(staging, defaultMonitoring)],
        ["PostgreSQL (production)", postgresqlDashboard(production, defaultMonitoring)],
        ["PgBouncer (production)", pgbouncerDashboard(production, defaultMonitoring)],
        ["Cluster (staging)", clusterDashboard(staging)],
        ["Cluster (production)", clusterDashboard(production)],
        ["Backups (staging)", backupDashboard(staging, { ...defaultBackup, restoreDrillEverySeconds: 86_400 })],
        ["Backups (production)", backupDashboard(production, defaultBackup)],
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
        expect(dashboard.time).toEqual({ from: spec.timeFrom ?? "now-1h", to: "now" });
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
            expect(["timeseries", "stat", "state-timeline"]).toContain(p.type);
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

    it("names every value a stat or state-timeline panel shows, in the colour of its mapping", () => {
        for (const [i, p] of panels.entries()) {
            const states = spec.panels[i].states;
            if (p.type === "timeseries") {
                expect(states, p.title).toBeUndefined();
                expect(p.fieldConfig.defaults.mappings, p.title).toBeUndefined();
                continue;
            }
            expect(states, p.title).toBeDefined();
            expect(p.fieldConfig.defaults.mappings, p.title).toEqual([
                {
                    type: "value",
                    options: Object.fromEntries(states!.map((st, index) => [String(st.value), { text: st.text, color: st.color, index }])),
                },
            ]);
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
        // Roles from Patroni's series, never from a target label.
        expect(exprs["Replication lag (bytes)"]).toEqual([
            'max by (instance) (label_replace(pg_stat_replication_pg_wal_lsn_diff{job="postgres"} and on (instance) patroni_primary{job="patroni"} == 1, "instance", "$1", "application_name", "(.+)"))',
        ]);
        expect(exprs["Replication lag (seconds)"]).toEqual([
            'max by (instance) (pg_replication_lag_seconds{job="postgres"} and on (instance) patroni_replica{job="patroni"} == 1)',
        ]);
        expect(exprs["WAL retained per slot"]).toEqual([
            'max by (slot_name) (pg_replication_slots_pg_wal_lsn_diff{job="postgres"} and on (instance) patroni_primary{job="patroni"} == 1)',
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

    it("show each member's role and timeline over time, and what decides a failover", () => {
        const spec = clusterDashboard(production);
        expect(spec.panels.map((p) => [p.title, p.kind, p.unit, p.threshold])).toEqual([
            ["Member role", "state-timeline", "none", undefined],
            ["Timeline", "timeseries", "none", undefined],
            ["Streaming", "state-timeline", "none", undefined],
            ["WAL not received", "timeseries", "bytes", 1024 * 1024],
            ["Leaders", "timeseries", "short", undefined],
            ["Failsafe mode", "state-timeline", "none", undefined],
            ["Since etcd last answered", "timeseries", "s", undefined],
            ["Servers per route", "timeseries", "short", undefined],
            ["Route servers", "state-timeline", "none", undefined],
            ["etcd leader", "state-timeline", "none", undefined],
        ]);
        const panel = (title: string) => spec.panels.find((p) => p.title === title)!;
        // 2 for the leader, 1 for a replica, 0 for a member whose PostgreSQL has neither role (stopped, starting).
        expect(panel("Member role").queries).toEqual([
            { expr: '2 * patroni_primary{job="patroni"} + patroni_replica{job="patroni"}', legend: "{{instance}}" },
        ]);
        expect(panel("Member role").states).toEqual([
            { value: 0, text: "no role", color: "red" },
            { value: 1, text: "replica", color: "green" },
            { value: 2, text: "leader", color: "blue" },
        ]);
        expect(panel("Timeline").queries).toEqual([{ expr: 'patroni_postgres_timeline{job="patroni"} > 0', legend: "{{instance}}" }]);
        expect(panel("Streaming").queries).toEqual([
            {
                expr: 'patroni_postgres_streaming{job="patroni"} unless on (instance) patroni_primary{job="patroni"} == 1',
                legend: "{{instance}}",
            },
        ]);
        expect(panel("WAL not received").queries[0].expr).toBe(
            'max by (instance) (label_replace(pg_replication_slots_pg_wal_lsn_diff{job="postgres"} and on (instance) patroni_primary{job="patroni"} == 1, "instance", "pg-$1", "slot_name", "pg_(.+)"))',
        );
    });

    it("show the restore drills' history over two weeks: outcome, age against RestoreDrillTooOld, duration, size and rate", () => {
        const spec = backupDashboard(production, defaultBackup);
        expect([spec.uid, spec.title, spec.timeFrom]).toEqual(["obcms-backup", "Backups · obcms-database-production", "now-14d"]);
        expect(spec.panels.map((p) => [p.title, p.kind, p.unit, p.threshold])).toEqual([
            ["Restore drill", "state-timeline", "none", undefined],
            ["Since a restore drill last passed", "timeseries", "s", 604_800 + 86_400],
            ["Restore drill duration", "timeseries", "s", undefined],
            ["Restored per drill", "timeseries", "bytes", undefined],
            ["Restore rate", "timeseries", "binBps", undefined],
        ]);
        expect(spec.panels.map((p) => p.queries)).toEqual([
            [{ expr: 'obcms_restore_drill_last_run_success{job="backup"}', legend: "restore drill" }],
            [{ expr: 'time() - max(obcms_restore_drill_last_success_timestamp_seconds{job="backup"})', legend: "since the last pass" }],
            [{ expr: 'obcms_restore_drill_duration_seconds{job="backup"}', legend: "duration" }],
            [{ expr: 'obcms_restore_drill_restored_bytes{job="backup"}', legend: "restored" }],
            [{ expr: 'obcms_restore_drill_restore_rate_bytes_per_second{job="backup"}', legend: "restore rate" }],
        ]);
        expect(spec.panels[0].states).toEqual([
            { value: 0, text: "failed", color: "red" },
            { value: 1, text: "passed", color: "green" },
        ]);
        // The line follows the drill schedule: staging drills daily.
        expect(backupDashboard(staging, { ...defaultBackup, restoreDrillEverySeconds: 86_400 }).panels[1].threshold).toBe(86_400 + 86_400);
        // The other dashboards keep their hour.
        expect(JSON.parse(renderDashboard(clusterDashboard(staging))).time).toEqual({ from: "now-1h", to: "now" });
    });

    it("draw state panels as Grafana's state timeline: one band per series, coloured by its mapping", () => {
        const dashboard = JSON.parse(renderDashboard(clusterDashboard(staging)));
        const role = dashboard.panels.find((p: Panel) => p.title === "Member role") as Panel;
        expect(role.type).toBe("state-timeline");
        expect(role.fieldConfig.defaults.color).toEqual({ mode: "thresholds" });
        expect(role.fieldConfig.defaults.custom).toEqual({ fillOpacity: 80, lineWidth: 0 });
        expect(role.options).toEqual({
            alignValue: "left",
            legend: { displayMode: "list", placement: "bottom", showLegend: true },
            mergeValues: true,
            rowHeight: 0.9,
            showValue: "auto",
            tooltip: { mode: "single", sort: "none" },
        });
        expect(role.fieldConfig.defaults.mappings).toEqual([
            {
                type: "value",
                options: {
                    "0": { text: "no role", color: "red", index: 0 },
                    "1": { text: "replica", color: "green", index: 1 },
                    "2": { text: "leader", color: "blue", index: 2 },
                },
            },
        ]);
    });
});
