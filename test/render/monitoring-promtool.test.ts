// Prometheus's own checker on the rendered files: `promtool check config`,
// `promtool check rules`, and `promtool test rules` with, for every alert, a
// series that fires it and one just on the other side of its threshold. The
// project image carries promtool (Debian's prometheus package), so this runs
// wherever Docker does, without Prometheus on the host.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { alertRules, renderAlertRules } from "../../components/render/monitoring/alert-rules";
import { pgbouncerDashboard, postgresqlDashboard, RATE_INTERVAL } from "../../components/render/monitoring/grafana-dashboards";
import { renderPrometheusConfig } from "../../components/render/monitoring/prometheus-config";
import { etcdScrapeJob, scrapeJobs } from "../../components/render/monitoring/prometheus-targets";
import { alertLimits, type ClusterSettings, type MonitoringSettings } from "../../components/settings";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { defaultMonitoring } from "../support/monitoring-fixtures";
import { PROMTOOL_DIR as DIR, PROJECT_IMAGE as IMAGE, promtool } from "../support/promtool";
import { production, staging } from "./fixtures";

const run = promisify(execFile);
const RULES = "alert-rules.yml";

type Labels = Record<string, string>;
/** One input series: its labels (with __name__) and the value it keeps. */
type Series = [Labels, number];

function selector(labels: Labels): string {
    const { __name__, ...rest } = labels;
    return `${__name__}{${Object.entries(rest)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ")}}`;
}

interface AlertCase {
    readonly alert: string;
    /** Series that make the alert fire, and the labels of the alert they fire. */
    readonly fires: { readonly series: Series[]; readonly labels: Labels };
    /** Series on the other side of the threshold (or healthy): no alert. */
    readonly quiet: Series[];
}

const POSTGRES = { job: "postgres" };
const PRIMARY = { ...POSTGRES, instance: "primary", role: "primary" };
const REPLICA = { ...POSTGRES, instance: "replica_1", role: "replica" };
const PGBOUNCER = { job: "pgbouncer", instance: "pgbouncer", role: "pgbouncer" };
const ETCD_MEMBER = { job: "etcd", instance: "etcd-1", role: "etcd" };
const APP_POOL = { ...PGBOUNCER, database: "obcms", user: "obcms_app" };
/** PgBouncer's admin console: busy or not, it is no pool of the application's. */
const ADMIN_POOL = { ...PGBOUNCER, database: "pgbouncer", user: "pgbouncer" };

/** For each alert, what fires it and what does not, at the thresholds the stack's sizes give. */
function alertCases(s: ClusterSettings, m: MonitoringSettings): AlertCase[] {
    const limit = alertLimits(s, m);
    const walSender = (state: string) => ({
        __name__: "pg_stat_replication_pg_wal_lsn_diff",
        ...PRIMARY,
        application_name: "replica_1",
        client_addr: "172.18.0.3",
        state,
    });
    const slot = { ...PRIMARY, slot_name: "replica_1_slot" };
    const atLeast = (n: number) => Math.ceil(n);
    return [
        {
            alert: "ExporterDown",
            fires: { series: [[{ __name__: "up", ...REPLICA }, 0]], labels: REPLICA },
            // An etcd member is no exporter: EtcdMemberDown speaks for it.
            quiet: [
                [{ __name__: "up", ...REPLICA }, 1],
                [{ __name__: "up", ...ETCD_MEMBER }, 0],
            ],
        },
        {
            alert: "PostgreSQLDown",
            fires: { series: [[{ __name__: "pg_up", ...PRIMARY }, 0]], labels: PRIMARY },
            quiet: [[{ __name__: "pg_up", ...PRIMARY }, 1]],
        },
        {
            alert: "PgBouncerDown",
            fires: { series: [[{ __name__: "pgbouncer_up", ...PGBOUNCER }, 0]], labels: PGBOUNCER },
            quiet: [[{ __name__: "pgbouncer_up", ...PGBOUNCER }, 1]],
        },
        {
            alert: "PostgreSQLReplicaNotStreaming",
            // The primary has a WAL sender for the replica, but it is only catching up.
            fires: {
                series: [
                    [{ __name__: "up", ...REPLICA }, 1],
                    [walSender("catchup"), 0],
                ],
                labels: REPLICA,
            },
            quiet: [
                [{ __name__: "up", ...REPLICA }, 1],
                [walSender("streaming"), 0],
            ],
        },
        {
            alert: "PostgreSQLReplicationLagBytes",
            fires: { series: [[walSender("streaming"), limit.replicationLagBytes + 1]], labels: { instance: "replica_1" } },
            quiet: [[walSender("streaming"), limit.replicationLagBytes]],
        },
        {
            alert: "PostgreSQLReplicationLagSeconds",
            fires: {
                series: [[{ __name__: "pg_replication_lag_seconds", ...REPLICA }, limit.replicationLagSeconds + 1]],
                labels: { instance: "replica_1" },
            },
            quiet: [[{ __name__: "pg_replication_lag_seconds", ...REPLICA }, limit.replicationLagSeconds]],
        },
        {
            alert: "PostgreSQLReplicationSlotInactive",
            fires: {
                series: [[{ __name__: "pg_replication_slot_slot_is_active", ...slot, slot_type: "physical" }, 0]],
                labels: { instance: "primary", slot_name: "replica_1_slot" },
            },
            quiet: [[{ __name__: "pg_replication_slot_slot_is_active", ...slot, slot_type: "physical" }, 1]],
        },
        {
            alert: "PostgreSQLReplicationSlotWalNearLimit",
            fires: {
                series: [[{ __name__: "pg_replication_slots_pg_wal_lsn_diff", ...slot, database: "" }, atLeast(limit.slotWalBytes)]],
                labels: { instance: "primary", slot_name: "replica_1_slot" },
            },
            quiet: [[{ __name__: "pg_replication_slots_pg_wal_lsn_diff", ...slot, database: "" }, atLeast(limit.slotWalBytes) - 1]],
        },
        {
            alert: "PostgreSQLConnectionsNearLimit",
            // Backends of every database of the node count together.
            fires: {
                series: [
                    [{ __name__: "pg_stat_database_numbackends", ...PRIMARY, datname: "obcms" }, atLeast(limit.serverConnections) - 10],
                    [{ __name__: "pg_stat_database_numbackends", ...PRIMARY, datname: "postgres" }, 10],
                ],
                labels: { instance: "primary", role: "primary" },
            },
            quiet: [
                [{ __name__: "pg_stat_database_numbackends", ...PRIMARY, datname: "obcms" }, atLeast(limit.serverConnections) - 11],
                [{ __name__: "pg_stat_database_numbackends", ...PRIMARY, datname: "postgres" }, 10],
            ],
        },
        {
            alert: "PgBouncerClientsWaiting",
            fires: {
                series: [
                    [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...APP_POOL }, limit.clientWaitSeconds + 1],
                    [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...ADMIN_POOL }, 0],
                ],
                labels: { instance: "pgbouncer", database: "obcms", user: "obcms_app" },
            },
            quiet: [
                [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...APP_POOL }, limit.clientWaitSeconds],
                [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...ADMIN_POOL }, 1000],
            ],
        },
        {
            alert: "PgBouncerPoolSaturated",
            fires: {
                series: [[{ __name__: "pgbouncer_pools_server_active_connections", ...APP_POOL }, atLeast(limit.poolServerConnections)]],
                labels: { instance: "pgbouncer", database: "obcms", user: "obcms_app" },
            },
            quiet: [
                [{ __name__: "pgbouncer_pools_server_active_connections", ...APP_POOL }, atLeast(limit.poolServerConnections) - 1],
                [{ __name__: "pgbouncer_pools_server_active_connections", ...ADMIN_POOL }, 1000],
            ],
        },
        {
            alert: "PgBouncerClientConnectionsNearLimit",
            fires: {
                series: [[{ __name__: "pgbouncer_used_clients", ...PGBOUNCER }, atLeast(limit.clientConnections)]],
                labels: { instance: "pgbouncer" },
            },
            quiet: [[{ __name__: "pgbouncer_used_clients", ...PGBOUNCER }, atLeast(limit.clientConnections) - 1]],
        },
        {
            alert: "EtcdMemberDown",
            fires: { series: [[{ __name__: "up", ...ETCD_MEMBER }, 0]], labels: ETCD_MEMBER },
            quiet: [
                [{ __name__: "up", ...ETCD_MEMBER }, 1],
                [{ __name__: "up", ...REPLICA }, 0],
            ],
        },
        {
            alert: "EtcdNoLeader",
            fires: { series: [[{ __name__: "etcd_server_has_leader", ...ETCD_MEMBER }, 0]], labels: ETCD_MEMBER },
            quiet: [[{ __name__: "etcd_server_has_leader", ...ETCD_MEMBER }, 1]],
        },
    ];
}

const INTERVAL_SECONDS = 15;
/** Ten minutes of samples, so no series goes stale before the last evaluation. */
const SAMPLES = 40;

function inputSeries(series: Series[]) {
    return series.map(([labels, value]) => ({ series: selector(labels), values: `${value}x${SAMPLES}` }));
}

/** An annotation as Prometheus expands it for these labels (the rules use only {{ $labels.<name> }}). */
function expand(template: string, labels: Labels): string {
    return template.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, name: string) => labels[name] ?? "");
}

/** promtool's unit-test file: per alert, it fires after `for` (and not before) and stays quiet across the threshold. */
function ruleTests(s: ClusterSettings, m: MonitoringSettings): string {
    const rules = Object.fromEntries(alertRules(s, m).map((r) => [r.alert, r]));
    const forSeconds = alertLimits(s, m).forSeconds;
    const tests = alertCases(s, m).flatMap((c) => {
        const rule = rules[c.alert];
        const labels = { ...c.fires.labels, severity: rule.severity };
        return [
            {
                name: `${c.alert} fires`,
                interval: `${INTERVAL_SECONDS}s`,
                input_series: inputSeries(c.fires.series),
                alert_rule_test: [
                    // Pending until `for` has passed: not yet firing.
                    { eval_time: `${Math.max(0, forSeconds - INTERVAL_SECONDS)}s`, alertname: c.alert, exp_alerts: [] },
                    {
                        eval_time: `${forSeconds + 2 * INTERVAL_SECONDS}s`,
                        alertname: c.alert,
                        exp_alerts: [
                            {
                                exp_labels: labels,
                                exp_annotations: { summary: expand(rule.summary, labels), description: expand(rule.description, labels) },
                            },
                        ],
                    },
                ],
            },
            {
                name: `${c.alert} stays quiet`,
                interval: `${INTERVAL_SECONDS}s`,
                input_series: inputSeries(c.quiet),
                alert_rule_test: [{ eval_time: `${forSeconds + 2 * INTERVAL_SECONDS}s`, alertname: c.alert, exp_alerts: [] }],
            },
        ];
    });
    return stringify({ rule_files: [RULES], evaluation_interval: `${INTERVAL_SECONDS}s`, tests });
}

/** Every dashboard query as a recording rule, with $__rate_interval as Grafana fills it in, for `check rules` to parse. */
function panelQueriesAsRules(s: ClusterSettings, m: MonitoringSettings): string {
    const panels = [...postgresqlDashboard(s, m).panels, ...pgbouncerDashboard(s, m).panels];
    const rules = panels.flatMap((p, i) =>
        p.queries.map((q, j) => ({
            record: `obcms:panel_${i}_${j}`,
            expr: q.expr.replaceAll(RATE_INTERVAL, `${4 * m.scrapeIntervalSeconds}s`),
        })),
    );
    return stringify({ groups: [{ name: "dashboard-queries", rules }] });
}

beforeAll(async () => {
    await run(
        "docker",
        ["build", "--quiet", "--tag", IMAGE, "--file", path.join(PROJECT_ROOT, "image", "Dockerfile"), path.join(PROJECT_ROOT, "image")],
        {
            maxBuffer: 16 * 1024 * 1024,
        },
    );
}, 900_000);

describe.each([
    ["staging", staging],
    ["production", production],
] as const)("promtool on the %s stack's files", (_, s) => {
    const m = defaultMonitoring;
    const rules = renderAlertRules(alertRules(s, m));
    const config = renderPrometheusConfig({
        scrapeIntervalSeconds: m.scrapeIntervalSeconds,
        externalLabels: { cluster: s.clusterName },
        ruleFiles: [`${DIR}/${RULES}`],
        jobs: [...scrapeJobs(s), etcdScrapeJob(s)],
    });

    it("check config accepts prometheus.yml and the rules file it names", async () => {
        const result = await promtool({ "prometheus.yml": config, [RULES]: rules }, "check", "config", `${DIR}/prometheus.yml`);
        expect(result.output).toContain(`SUCCESS: ${DIR}/prometheus.yml is valid prometheus config file syntax`);
        expect(result.output).toContain(`SUCCESS: 14 rules found`);
        expect(result.code).toBe(0);
    }, 60_000);

    it("check rules accepts the 14 alert rules", async () => {
        const result = await promtool({ [RULES]: rules }, "check", "rules", `${DIR}/${RULES}`);
        expect(result).toEqual({ code: 0, output: `Checking ${DIR}/${RULES}\n  SUCCESS: 14 rules found\n\n` });
    }, 60_000);

    it("test rules: every alert fires on its series after `for`, and not on the series across its threshold", async () => {
        const tests = ruleTests(s, m);
        expect(tests.match(/- name: /g)).toHaveLength(28);
        const result = await promtool({ [RULES]: rules, "tests.yml": tests }, "test", "rules", `${DIR}/tests.yml`);
        expect(result.output).toContain("SUCCESS");
        expect(result.code).toBe(0);
    }, 60_000);

    it("check rules parses every dashboard panel query", async () => {
        const queries = [...postgresqlDashboard(s, m).panels, ...pgbouncerDashboard(s, m).panels].flatMap((p) => p.queries);
        expect(queries).toHaveLength(20);
        const result = await promtool({ "panels.yml": panelQueriesAsRules(s, m) }, "check", "rules", `${DIR}/panels.yml`);
        expect(result.output).toContain(`SUCCESS: ${queries.length} rules found`);
        expect(result.code).toBe(0);
    }, 60_000);
});

describe("promtool catches what these tests rely on it to catch", () => {
    it("a rule that does not parse", async () => {
        const broken = renderAlertRules(alertRules(staging, defaultMonitoring)).replace(" == 0", " ==");
        const result = await promtool({ [RULES]: broken }, "check", "rules", `${DIR}/${RULES}`);
        expect(result.code).not.toBe(0);
        expect(result.output).toContain("FAILED");
    }, 60_000);

    it("an alert expected to fire that does not", async () => {
        const tests = stringify({
            rule_files: [RULES],
            evaluation_interval: "15s",
            tests: [
                {
                    interval: "15s",
                    input_series: inputSeries([[{ __name__: "up", ...REPLICA }, 1]]),
                    alert_rule_test: [
                        { eval_time: "5m", alertname: "ExporterDown", exp_alerts: [{ exp_labels: { ...REPLICA, severity: "warning" } }] },
                    ],
                },
            ],
        });
        const result = await promtool(
            { [RULES]: renderAlertRules(alertRules(staging, defaultMonitoring)), "tests.yml": tests },
            "test",
            "rules",
            `${DIR}/tests.yml`,
        );
        expect(result.code).not.toBe(0);
        expect(result.output).toContain("FAILED");
    }, 60_000);
});
