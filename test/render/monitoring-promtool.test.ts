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
import {
    backupDashboard,
    clusterDashboard,
    pgbouncerDashboard,
    postgresqlDashboard,
    RATE_INTERVAL,
} from "../../components/render/monitoring/grafana-dashboards";
import { renderPrometheusConfig } from "../../components/render/monitoring/prometheus-config";
import { etcdScrapeJob, haproxyScrapeJob, patroniScrapeJob, scrapeJobs } from "../../components/render/monitoring/prometheus-targets";
import { alertLimits, type ClusterSettings, type MonitoringSettings } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { defaultBackup, defaultMonitoring } from "../support/monitoring-fixtures";
import { PROMTOOL_DIR as DIR, PROJECT_IMAGE as IMAGE, promtool } from "../support/promtool";
import { production, staging } from "./fixtures";

const run = promisify(execFile);
const RULES = "alert-rules.yml";

type Labels = Record<string, string>;
/** One input series: its labels (with __name__), and the value it keeps or promtool's expanding notation of its values. */
type Series = [Labels, number | string];

function selector(labels: Labels): string {
    const { __name__, ...rest } = labels;
    return `${__name__}{${Object.entries(rest)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ")}}`;
}

interface Firing {
    /** Series that make the alert fire... */
    readonly series: Series[];
    /** ...and the labels of each alert they fire. */
    readonly alerts: Labels[];
}

interface AlertCase {
    readonly alert: string;
    /** Each way the alert fires. */
    readonly fires: readonly Firing[];
    /** Series on the other side of the threshold (or healthy): no alert. */
    readonly quiet: Series[];
}

/** The members of these cases: which one leads is said by Patroni's series alone. */
const LEADING = "pg-1";
const FOLLOWING = "pg-2";
/** A member's postgres_exporter target, as Prometheus labels its series. */
const exporter = (instance: string) => ({ job: "postgres", instance, role: "postgres" });
/** A member's Patroni target, and the labels Patroni adds to its own series. */
const patroniTarget = (instance: string) => ({ job: "patroni", instance, role: "patroni" });
const patroni = (instance: string) => ({ ...patroniTarget(instance), scope: "obcms-database-staging", name: instance });
const PGBOUNCER = { job: "pgbouncer", instance: "pgbouncer", role: "pgbouncer" };
const HAPROXY = { job: "haproxy", instance: "haproxy", role: "haproxy" };
const ETCD_MEMBER = { job: "etcd", instance: "etcd-1", role: "etcd" };
const APP_POOL = { ...PGBOUNCER, database: "obcms", user: "obcms_app" };
/** PgBouncer's admin console: busy or not, it is no pool of the application's. */
const ADMIN_POOL = { ...PGBOUNCER, database: "pgbouncer", user: "pgbouncer" };

/** Patroni's role series of the members: `leader` leads (none when undefined), every other member is a replica. */
function roles(leader: string | undefined, members = [LEADING, FOLLOWING]): Series[] {
    return members.flatMap((m): Series[] => [
        [{ __name__: "patroni_primary", ...patroni(m) }, m === leader ? 1 : 0],
        [{ __name__: "patroni_replica", ...patroni(m) }, m === leader ? 0 : 1],
    ]);
}

/** For each alert, what fires it and what does not, at the thresholds the stack's sizes give. */
function alertCases(s: ClusterSettings, m: MonitoringSettings): AlertCase[] {
    const limit = alertLimits(s, m);
    const failoverLagBytes = s.maximumLagOnFailoverMb * 1024 * 1024;
    const walSender = (state: string) => ({
        __name__: "pg_stat_replication_pg_wal_lsn_diff",
        ...exporter(LEADING),
        application_name: FOLLOWING,
        client_addr: "172.18.0.3",
        state,
        sync_state: "async",
    });
    /** Slot `slot` on `member`: the leader's is in use, a replica's copy waits until that replica leads. */
    const slot = (name: string, member: string, slotName: string): Labels => ({
        __name__: name,
        ...exporter(member),
        slot_name: slotName,
        database: "",
    });
    const leaderSlot = (name: string) => slot(name, LEADING, "pg_2");
    // The delayed replica, if the stack has one: its replay lags by design, what it has not received does not.
    const delayed = clusterTopology(s).delayedReplica;
    const delayedLag = (series: Series[]): Series[] =>
        delayed ? [...series, [{ __name__: "up", ...patroniTarget(delayed.node) }, 1]] : [];
    const delayedReplayLag: Series[] = delayed
        ? delayedLag([
              [{ ...walSender("streaming"), application_name: delayed.node }, 100 * limit.replicationLagBytes],
              [{ __name__: "patroni_replica", ...patroni(delayed.node) }, 1],
          ])
        : [];
    const replicaCopy = (name: string) => slot(name, FOLLOWING, "pg_1");
    const streaming = (member: string, value: number): Series => [{ __name__: "patroni_postgres_streaming", ...patroni(member) }, value];
    const up = (labels: Labels, value: number): Series => [{ __name__: "up", ...labels }, value];
    const routed = (proxy: string, server: string, down: number): Series => [
        { __name__: "haproxy_server_status", ...HAPROXY, proxy, server, state: "DOWN" },
        down,
    ];
    const timeline = (member: string, values: string): Series => [{ __name__: "patroni_postgres_timeline", ...patroni(member) }, values];
    const atLeast = (n: number) => Math.ceil(n);
    return [
        {
            alert: "ExporterDown",
            fires: [
                { series: [up(exporter(FOLLOWING), 0)], alerts: [exporter(FOLLOWING)] },
                { series: [up(HAPROXY, 0)], alerts: [HAPROXY] },
            ],
            // An etcd member is no exporter: EtcdMemberDown speaks for it.
            quiet: [up(exporter(FOLLOWING), 1), up(patroniTarget(LEADING), 1), up(ETCD_MEMBER, 0)],
        },
        {
            alert: "PostgreSQLDown",
            fires: [{ series: [[{ __name__: "pg_up", ...exporter(LEADING) }, 0]], alerts: [exporter(LEADING)] }],
            quiet: [[{ __name__: "pg_up", ...exporter(LEADING) }, 1]],
        },
        {
            alert: "PgBouncerDown",
            fires: [{ series: [[{ __name__: "pgbouncer_up", ...PGBOUNCER }, 0]], alerts: [PGBOUNCER] }],
            quiet: [[{ __name__: "pgbouncer_up", ...PGBOUNCER }, 1]],
        },
        {
            alert: "PatroniNoLeader",
            fires: [
                // Every member a replica, or no Patroni answering at all.
                { series: roles(undefined), alerts: [{}] },
                { series: [up(patroniTarget(LEADING), 0), up(patroniTarget(FOLLOWING), 0)], alerts: [{}] },
            ],
            quiet: roles(FOLLOWING),
        },
        {
            alert: "PatroniMultipleLeaders",
            fires: [
                {
                    series: [
                        [{ __name__: "patroni_primary", ...patroni(LEADING) }, 1],
                        [{ __name__: "patroni_primary", ...patroni(FOLLOWING) }, 1],
                    ],
                    alerts: [{}],
                },
            ],
            quiet: roles(LEADING),
        },
        {
            alert: "PatroniFailover",
            // One member promoted to timeline 2 at 15 s, the other follows at 30 s: one alert for the cluster.
            fires: [{ series: [timeline(LEADING, "1 2x39"), timeline(FOLLOWING, "1 1 2x38")], alerts: [{}] }],
            // A member that restarts reports timeline 0 while its PostgreSQL is down: no promotion.
            quiet: [timeline(LEADING, "2x40"), timeline(FOLLOWING, "2 0 0 2x37")],
        },
        {
            alert: "PatroniFailsafeActive",
            fires: [
                {
                    series: [
                        [{ __name__: "patroni_failsafe_mode_is_active", ...patroni(LEADING) }, 1],
                        [{ __name__: "patroni_failsafe_mode_is_active", ...patroni(FOLLOWING) }, 1],
                    ],
                    alerts: [{}],
                },
            ],
            quiet: [
                [{ __name__: "patroni_failsafe_mode_is_active", ...patroni(LEADING) }, 0],
                [{ __name__: "patroni_failsafe_mode_is_active", ...patroni(FOLLOWING) }, 0],
            ],
        },
        {
            alert: "PatroniMaintenanceMode",
            // Its `for` is half an hour: the samples cover it.
            fires: [
                {
                    series: [
                        [{ __name__: "patroni_is_paused", ...patroni(LEADING) }, "1x130"],
                        [{ __name__: "patroni_is_paused", ...patroni(FOLLOWING) }, "1x130"],
                    ],
                    alerts: [{}],
                },
            ],
            // Paused for twenty minutes at the evaluation, ten short of the alert.
            quiet: [
                [{ __name__: "patroni_is_paused", ...patroni(LEADING) }, "0x40 1x90"],
                [{ __name__: "patroni_is_paused", ...patroni(FOLLOWING) }, "0x40 1x90"],
            ],
        },
        {
            alert: "PostgreSQLMemberNotStreaming",
            fires: [
                // Its Patroni answers, but it does not stream (the leader never does).
                {
                    series: [
                        up(patroniTarget(LEADING), 1),
                        up(patroniTarget(FOLLOWING), 1),
                        ...roles(LEADING),
                        streaming(LEADING, 0),
                        streaming(FOLLOWING, 0),
                    ],
                    alerts: [patroniTarget(FOLLOWING)],
                },
                // Its Patroni does not answer at all.
                {
                    series: [up(patroniTarget(LEADING), 1), up(patroniTarget(FOLLOWING), 0), ...roles(LEADING, [LEADING])],
                    alerts: [patroniTarget(FOLLOWING)],
                },
            ],
            quiet: [up(patroniTarget(LEADING), 1), up(patroniTarget(FOLLOWING), 1), ...roles(LEADING), streaming(FOLLOWING, 1)],
        },
        {
            alert: "PostgreSQLMemberPastFailoverLag",
            // The leader's slot for pg-2; pg-2's own copy of pg-1's slot lags behind by design and counts for nothing.
            fires: [
                {
                    series: [
                        ...roles(LEADING),
                        [leaderSlot("pg_replication_slots_pg_wal_lsn_diff"), failoverLagBytes + 1],
                        [replicaCopy("pg_replication_slots_pg_wal_lsn_diff"), 10 * failoverLagBytes],
                        ...delayedLag([[slot("pg_replication_slots_pg_wal_lsn_diff", LEADING, delayed?.slot ?? ""), failoverLagBytes + 1]]),
                    ],
                    alerts: [{ instance: FOLLOWING }, ...(delayed ? [{ instance: delayed.node }] : [])],
                },
            ],
            quiet: [
                ...roles(LEADING),
                [leaderSlot("pg_replication_slots_pg_wal_lsn_diff"), failoverLagBytes],
                [replicaCopy("pg_replication_slots_pg_wal_lsn_diff"), 10 * failoverLagBytes],
            ],
        },
        {
            alert: "PostgreSQLReplicationLagBytes",
            fires: [
                {
                    series: [...roles(LEADING), [walSender("streaming"), limit.replicationLagBytes + 1], ...delayedReplayLag],
                    alerts: [{ instance: FOLLOWING }],
                },
            ],
            // The same WAL sender on a member that no longer leads is not the leader's view.
            quiet: [...roles(FOLLOWING), [walSender("streaming"), limit.replicationLagBytes + 1], ...delayedReplayLag],
        },
        {
            alert: "PostgreSQLReplicationLagSeconds",
            fires: [
                {
                    series: [
                        ...roles(LEADING),
                        [{ __name__: "pg_replication_lag_seconds", ...exporter(FOLLOWING) }, limit.replicationLagSeconds + 1],
                    ],
                    alerts: [{ instance: FOLLOWING }],
                },
            ],
            quiet: [
                ...roles(LEADING),
                [{ __name__: "pg_replication_lag_seconds", ...exporter(FOLLOWING) }, limit.replicationLagSeconds],
                // The leader replays nothing; whatever the exporter says of it is no lag.
                [{ __name__: "pg_replication_lag_seconds", ...exporter(LEADING) }, 1000],
            ],
        },
        {
            alert: "PostgreSQLReplicationSlotInactive",
            fires: [
                {
                    series: [...roles(LEADING), [{ ...leaderSlot("pg_replication_slot_slot_is_active"), slot_type: "physical" }, 0]],
                    alerts: [{ instance: LEADING, slot_name: "pg_2" }],
                },
            ],
            quiet: [
                ...roles(LEADING),
                [{ ...leaderSlot("pg_replication_slot_slot_is_active"), slot_type: "physical" }, 1],
                [{ ...replicaCopy("pg_replication_slot_slot_is_active"), slot_type: "physical" }, 0],
            ],
        },
        {
            alert: "PostgreSQLReplicationSlotWalNearLimit",
            fires: [
                {
                    series: [...roles(LEADING), [leaderSlot("pg_replication_slots_pg_wal_lsn_diff"), atLeast(limit.slotWalBytes)]],
                    alerts: [{ instance: LEADING, slot_name: "pg_2" }],
                },
            ],
            quiet: [
                ...roles(LEADING),
                [leaderSlot("pg_replication_slots_pg_wal_lsn_diff"), atLeast(limit.slotWalBytes) - 1],
                [replicaCopy("pg_replication_slots_pg_wal_lsn_diff"), atLeast(limit.slotWalBytes)],
            ],
        },
        {
            alert: "PostgreSQLConnectionsNearLimit",
            // Backends of every database of the member count together.
            fires: [
                {
                    series: [
                        [
                            { __name__: "pg_stat_database_numbackends", ...exporter(LEADING), datname: "obcms" },
                            atLeast(limit.serverConnections) - 10,
                        ],
                        [{ __name__: "pg_stat_database_numbackends", ...exporter(LEADING), datname: "postgres" }, 10],
                    ],
                    alerts: [{ instance: LEADING }],
                },
            ],
            quiet: [
                [
                    { __name__: "pg_stat_database_numbackends", ...exporter(LEADING), datname: "obcms" },
                    atLeast(limit.serverConnections) - 11,
                ],
                [{ __name__: "pg_stat_database_numbackends", ...exporter(LEADING), datname: "postgres" }, 10],
            ],
        },
        {
            alert: "PgBouncerClientsWaiting",
            fires: [
                {
                    series: [
                        [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...APP_POOL }, limit.clientWaitSeconds + 1],
                        [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...ADMIN_POOL }, 0],
                    ],
                    alerts: [{ instance: "pgbouncer", database: "obcms", user: "obcms_app" }],
                },
            ],
            quiet: [
                [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...APP_POOL }, limit.clientWaitSeconds],
                [{ __name__: "pgbouncer_pools_client_maxwait_seconds", ...ADMIN_POOL }, 1000],
            ],
        },
        {
            alert: "PgBouncerPoolSaturated",
            fires: [
                {
                    series: [
                        [{ __name__: "pgbouncer_pools_server_active_connections", ...APP_POOL }, atLeast(limit.poolServerConnections)],
                    ],
                    alerts: [{ instance: "pgbouncer", database: "obcms", user: "obcms_app" }],
                },
            ],
            quiet: [
                [{ __name__: "pgbouncer_pools_server_active_connections", ...APP_POOL }, atLeast(limit.poolServerConnections) - 1],
                [{ __name__: "pgbouncer_pools_server_active_connections", ...ADMIN_POOL }, 1000],
            ],
        },
        {
            alert: "PgBouncerClientConnectionsNearLimit",
            fires: [
                {
                    series: [[{ __name__: "pgbouncer_used_clients", ...PGBOUNCER }, atLeast(limit.clientConnections)]],
                    alerts: [{ instance: "pgbouncer" }],
                },
            ],
            quiet: [[{ __name__: "pgbouncer_used_clients", ...PGBOUNCER }, atLeast(limit.clientConnections) - 1]],
        },
        {
            alert: "RouterNoLeader",
            fires: [
                {
                    series: [[{ __name__: "haproxy_backend_active_servers", ...HAPROXY, proxy: "postgres_rw" }, 0]],
                    alerts: [{ ...HAPROXY, proxy: "postgres_rw" }],
                },
            ],
            // A read-only route without a replica falls back to the read-write one.
            quiet: [
                [{ __name__: "haproxy_backend_active_servers", ...HAPROXY, proxy: "postgres_rw" }, 1],
                [{ __name__: "haproxy_backend_active_servers", ...HAPROXY, proxy: "postgres_ro" }, 0],
            ],
        },
        {
            alert: "RouterServerDown",
            fires: [
                {
                    series: [...roles(LEADING), routed("postgres_rw", LEADING, 1)],
                    alerts: [{ ...HAPROXY, instance: LEADING, proxy: "postgres_rw", server: LEADING, state: "DOWN" }],
                },
                {
                    series: [...roles(LEADING), routed("postgres_ro", FOLLOWING, 1)],
                    alerts: [{ ...HAPROXY, instance: FOLLOWING, proxy: "postgres_ro", server: FOLLOWING, state: "DOWN" }],
                },
            ],
            // Healthy: each backend has the members of the other role DOWN.
            quiet: [
                ...roles(LEADING),
                routed("postgres_rw", LEADING, 0),
                routed("postgres_rw", FOLLOWING, 1),
                routed("postgres_ro", LEADING, 1),
                routed("postgres_ro", FOLLOWING, 0),
            ],
        },
        {
            alert: "EtcdMemberDown",
            fires: [{ series: [up(ETCD_MEMBER, 0)], alerts: [ETCD_MEMBER] }],
            quiet: [up(ETCD_MEMBER, 1), up(exporter(FOLLOWING), 0)],
        },
        {
            alert: "EtcdNoLeader",
            fires: [{ series: [[{ __name__: "etcd_server_has_leader", ...ETCD_MEMBER }, 0]], alerts: [ETCD_MEMBER] }],
            quiet: [[{ __name__: "etcd_server_has_leader", ...ETCD_MEMBER }, 1]],
        },
    ];
}

const INTERVAL_SECONDS = 15;
/** Ten minutes of samples, so no series goes stale before the last evaluation. */
const SAMPLES = 40;

function inputSeries(series: Series[]) {
    return series.map(([labels, value]) => ({
        series: selector(labels),
        values: typeof value === "number" ? `${value}x${SAMPLES}` : value,
    }));
}

/** An annotation as Prometheus expands it for these labels (the rules use only {{ $labels.<name> }}). */
function expand(template: string, labels: Labels): string {
    return template.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, name: string) => labels[name] ?? "");
}

/** promtool's unit-test file: per alert, it fires after `for` (and not before) and stays quiet across the threshold. */
function ruleTests(s: ClusterSettings, m: MonitoringSettings): string {
    const rules = Object.fromEntries(alertRules(s, m).map((r) => [r.alert, r]));
    const tests = alertCases(s, m).flatMap((c) => {
        const rule = rules[c.alert];
        const forSeconds = rule.forSeconds;
        const expected = (labels: Labels) => {
            const all = { ...labels, severity: rule.severity };
            return { exp_labels: all, exp_annotations: { summary: expand(rule.summary, all), description: expand(rule.description, all) } };
        };
        return [
            ...c.fires.map((f, i) => ({
                name: `${c.alert} fires (${i + 1})`,
                interval: `${INTERVAL_SECONDS}s`,
                input_series: inputSeries(f.series),
                alert_rule_test: [
                    // Pending until `for` has passed: not yet firing.
                    { eval_time: `${Math.max(0, forSeconds - INTERVAL_SECONDS)}s`, alertname: c.alert, exp_alerts: [] },
                    { eval_time: `${forSeconds + 2 * INTERVAL_SECONDS}s`, alertname: c.alert, exp_alerts: f.alerts.map(expected) },
                ],
            })),
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

function dashboardPanels(s: ClusterSettings, m: MonitoringSettings) {
    return [
        ...postgresqlDashboard(s, m).panels,
        ...pgbouncerDashboard(s, m).panels,
        ...clusterDashboard(s).panels,
        ...backupDashboard(s, defaultBackup).panels,
    ];
}

/** Every dashboard query as a recording rule, with $__rate_interval as Grafana fills it in, for `check rules` to parse. */
function panelQueriesAsRules(s: ClusterSettings, m: MonitoringSettings): string {
    const rules = dashboardPanels(s, m).flatMap((p, i) =>
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
    ["staging with a delayed replica", { ...staging, delayedReplicaMinutes: 60 }],
] as const)("promtool on the %s stack's files", (_, s) => {
    const m = defaultMonitoring;
    const rules = renderAlertRules(alertRules(s, m));
    const config = renderPrometheusConfig({
        scrapeIntervalSeconds: m.scrapeIntervalSeconds,
        externalLabels: { cluster: s.clusterName },
        ruleFiles: [`${DIR}/${RULES}`],
        jobs: [...scrapeJobs(s), patroniScrapeJob(s, `${DIR}/tls/ca.crt`), haproxyScrapeJob(s), etcdScrapeJob(s)],
    });

    it("check config accepts prometheus.yml and the rules file it names", async () => {
        const result = await promtool({ "prometheus.yml": config, [RULES]: rules }, "check", "config", `${DIR}/prometheus.yml`);
        expect(result.output).toContain(`SUCCESS: ${DIR}/prometheus.yml is valid prometheus config file syntax`);
        expect(result.output).toContain(`SUCCESS: 22 rules found`);
        expect(result.code).toBe(0);
    }, 60_000);

    it("check rules accepts the 22 alert rules", async () => {
        const result = await promtool({ [RULES]: rules }, "check", "rules", `${DIR}/${RULES}`);
        expect(result).toEqual({ code: 0, output: `Checking ${DIR}/${RULES}\n  SUCCESS: 22 rules found\n\n` });
    }, 60_000);

    it("has a case for every alert rule, in the rules' order", () => {
        expect(alertCases(s, m).map((c) => c.alert)).toEqual(alertRules(s, m).map((r) => r.alert));
    });

    it("test rules: every alert fires on its series after `for`, and not on the series across its threshold", async () => {
        const tests = ruleTests(s, m);
        // 22 rules, each quiet once and firing once, ExporterDown, PatroniNoLeader,
        // PostgreSQLMemberNotStreaming and RouterServerDown firing two ways.
        expect(tests.match(/- name: /g)).toHaveLength(48);
        const result = await promtool({ [RULES]: rules, "tests.yml": tests }, "test", "rules", `${DIR}/tests.yml`);
        expect(result.output).toContain("SUCCESS");
        expect(result.code).toBe(0);
    }, 60_000);

    it("check rules parses every dashboard panel query", async () => {
        const queries = dashboardPanels(s, m).flatMap((p) => p.queries);
        expect(queries).toHaveLength(35);
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
                    input_series: inputSeries([[{ __name__: "up", ...exporter(FOLLOWING) }, 1]]),
                    alert_rule_test: [
                        {
                            eval_time: "5m",
                            alertname: "ExporterDown",
                            exp_alerts: [{ exp_labels: { ...exporter(FOLLOWING), severity: "warning" } }],
                        },
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
