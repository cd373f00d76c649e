// Monitoring on a real Docker engine: the exporters, Prometheus and its rules
// as the program declares them (startStack), checked through Prometheus's
// own API. Grafana has no image on test machines, so only its container is
// disabled; every dashboard query runs against the live Prometheus instead.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBackupSettings, readMonitoringSettings, readSettings } from "../../components/config";
import { alertRules, backupAlertRules } from "../../components/render/monitoring/alert-rules";
import {
    pgbouncerDashboard,
    postgresqlDashboard,
    RATE_INTERVAL,
    renderDashboard,
} from "../../components/render/monitoring/grafana-dashboards";
import { type BackupSettings, type ClusterSettings, MONITORING_CONNECTIONS, type MonitoringSettings } from "../../components/settings";
import { type StartedStack, startStack } from "../../harness/cluster";
import { containerLog, docker, query, waitFor, withClient } from "../../harness/sql";
import { type Alert, Prometheus } from "../support/prometheus";

/**
 * Short enough that an alert's life cycle fits in a test; the stack defaults
 * are 15 s and 60 s. Not 1 s: the scrape timeout equals the interval, and an
 * exporter whose server's name no longer resolves takes about 1.4 s to say
 * pg_up 0.
 */
const SCRAPE_SECONDS = 2;
/** A multiple of the evaluation interval: an alert turns firing only at an evaluation. */
const FOR_SECONDS = 6;
/** What the bound below allows besides `for` and two scrape intervals: the scrape's own duration and this test's polling. */
const MEASUREMENT_SLACK_MS = 1_000;
const OVERRIDES = { grafanaEnabled: false, scrapeIntervalSeconds: SCRAPE_SECONDS, alertForSeconds: FOR_SECONDS };
/** What Grafana substitutes for $__rate_interval: four scrape intervals (the datasource's timeInterval). */
const RATE_WINDOW = `${4 * SCRAPE_SECONDS}s`;

const EXPECTED = { staging: { replicas: 1, etcdMembers: 1 }, production: { replicas: 3, etcdMembers: 3 } } as const;

function etcdNames(count: number): string[] {
    return Array.from({ length: count }, (_, i) => `etcd-${i + 1}`);
}

function replicaNodes(count: number): string[] {
    return Array.from({ length: count }, (_, i) => `replica_${i + 1}`);
}

/** Every query of a rendered dashboard, read back from its JSON as Grafana would. */
function dashboardQueries(json: string): Array<{ panel: string; expr: string }> {
    const dashboard = JSON.parse(json) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
}

function isAlert(alert: Alert, name: string, instance: string): boolean {
    return alert.labels.alertname === name && alert.labels.instance === instance;
}

describe.each(["staging", "production"] as const)("monitoring of the %s stack on a real Docker engine", (stackName) => {
    const expected = EXPECTED[stackName];
    const nodes = ["primary", ...replicaNodes(expected.replicas)];
    let stack: StartedStack;
    let prometheus: Prometheus;
    let cluster: ClusterSettings;
    let monitoring: MonitoringSettings;
    let backup: BackupSettings;

    beforeAll(async () => {
        const started = Date.now();
        stack = await startStack(stackName, { overrides: OVERRIDES });
        // The settings the program just read, from the same stack config.
        cluster = readSettings();
        monitoring = readMonitoringSettings(cluster);
        backup = readBackupSettings();
        expect(stack.outputs.prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        prometheus = new Prometheus(stack.outputs.prometheusUrl!);
        // Pools appear in PgBouncer once a client has used them.
        await query(stack.outputs.databaseUrl, "SELECT 1");
        await query(stack.outputs.readonlyDatabaseUrl, "SELECT 1");
        await waitFor("every target up and every replica streaming", 60_000, async () => {
            const up = await prometheus.query("up");
            const streaming = await prometheus.query('pg_stat_replication_pg_wal_lsn_diff{state="streaming"}');
            // One postgres target per node, PgBouncer's, the backup container's and one per etcd member.
            return up.length === nodes.length + 2 + expected.etcdMembers &&
                up.every((s) => s.value[1] === "1") &&
                streaming.length === expected.replicas
                ? true
                : undefined;
        });
        // Enough samples for rate() over the dashboards' window.
        await waitFor("a rate window of samples", 30_000, async () => {
            const [fewest] = await prometheus.query(`min(count_over_time(up[${RATE_WINDOW}]))`);
            return fewest !== undefined && Number(fewest.value[1]) >= 3 ? true : undefined;
        });
        console.log(`${stackName}: stack with monitoring up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }, 600_000);

    afterAll(async () => {
        await stack?.stop();
    }, 120_000);

    it("has no Grafana outputs while Grafana is disabled", () => {
        expect(Object.keys(stack.outputs)).toContain("prometheusUrl");
        expect(stack.outputs.grafanaUrl).toBeUndefined();
        expect(stack.outputs.grafanaAdminPassword).toBeUndefined();
    });

    it("scrapes one postgres target per node, one pgbouncer and one backup target, and each etcd member, all up", async () => {
        const targets = await prometheus.targets();
        const seen = targets.map((t) => [t.labels.job, t.labels.instance, t.labels.role, t.health, t.lastError]).sort();
        expect(seen).toEqual(
            [
                ["backup", "backup", "backup", "up", ""],
                ["pgbouncer", "pgbouncer", "pgbouncer", "up", ""],
                ["postgres", "primary", "primary", "up", ""],
                ...replicaNodes(expected.replicas).map((n) => ["postgres", n, "replica", "up", ""]),
                ...etcdNames(expected.etcdMembers).map((n) => ["etcd", n, "etcd", "up", ""]),
            ].sort(),
        );
        const up = await prometheus.query("up == 1");
        expect(up).toHaveLength(nodes.length + 2 + expected.etcdMembers);
        const hasLeader = await prometheus.query("etcd_server_has_leader == 1");
        expect(hasLeader.map((s) => s.metric.instance).sort()).toEqual(etcdNames(expected.etcdMembers));
        const pgUp = await prometheus.query("pg_up == 1");
        expect(pgUp.map((s) => s.metric.instance).sort()).toEqual(nodes.sort());
        expect(await prometheus.query("pgbouncer_up == 1")).toHaveLength(1);
    });

    it("loads every alert rule, evaluates each without error, and none fires in a healthy cluster", async () => {
        const rendered = [...alertRules(cluster, monitoring), ...backupAlertRules(backup, monitoring)];
        const loaded = await prometheus.rules();
        expect(loaded.map((r) => r.name)).toEqual(rendered.map((r) => r.alert));
        for (const rule of loaded) {
            expect({ rule: rule.name, type: rule.type, health: rule.health, duration: rule.duration }).toEqual({
                rule: rule.name,
                type: "alerting",
                health: "ok",
                duration: FOR_SECONDS,
            });
        }
        for (const rule of rendered) {
            await expect(prometheus.query(rule.expr), rule.alert).resolves.toBeInstanceOf(Array);
        }
        expect((await prometheus.alerts()).filter((a) => a.state === "firing")).toEqual([]);
    });

    it("runs every Grafana panel query on the live Prometheus; the core ones return a series per node or pool", async () => {
        const dashboards = [postgresqlDashboard(cluster, monitoring), pgbouncerDashboard(cluster, monitoring)].map(renderDashboard);
        const queries = dashboards.flatMap(dashboardQueries);
        expect(queries).toHaveLength(20);
        for (const q of queries) {
            const expr = q.expr.replaceAll(RATE_INTERVAL, RATE_WINDOW);
            expect(expr, q.panel).not.toMatch(/\$__/);
            await expect(prometheus.queryRange(expr, 60, SCRAPE_SECONDS), q.panel).resolves.toBeInstanceOf(Array);
        }

        const instant = async (panel: string, label: string) => {
            const found = queries.filter((q) => q.panel === panel);
            expect(found.length, panel).toBeGreaterThan(0);
            const samples = await prometheus.query(found[0].expr.replaceAll(RATE_INTERVAL, RATE_WINDOW));
            return samples.map((s) => s.metric[label]).sort();
        };
        const replicas = replicaNodes(expected.replicas);
        expect(await instant("PostgreSQL up", "instance")).toEqual([...nodes].sort());
        expect(await instant("Connections", "instance")).toEqual([...nodes].sort());
        expect(await instant("Transactions per second", "instance")).toEqual([...nodes].sort());
        expect(await instant("Replication lag (bytes)", "instance")).toEqual(replicas);
        expect(await instant("Replication lag (seconds)", "instance")).toEqual(replicas);
        expect(await instant("WAL retained per slot", "slot_name")).toEqual(replicas.map((r) => `${r}_slot`));
        const pools = ["obcms", "obcms_readonly"];
        expect(await instant("Clients active per pool", "database")).toEqual(pools);
        expect(await instant("Clients waiting per pool", "database")).toEqual(pools);
        expect(await instant("Servers active per pool", "database")).toEqual(pools);
        expect(await instant("Servers idle per pool", "database")).toEqual(pools);
        expect(await instant("Longest client wait", "database")).toEqual(pools);
    });

    it("logs in over TLS as the monitoring role, within the connections the cluster reserves for monitoring", async () => {
        for (const url of [stack.outputs.primaryUrl, ...stack.outputs.replicaUrls]) {
            const sessions = await query(
                url,
                "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'monitoring'",
            );
            expect(sessions.length).toBeGreaterThanOrEqual(1);
            expect(sessions.length).toBeLessThanOrEqual(MONITORING_CONNECTIONS);
            expect(new Set(sessions.map((r) => `${r.application_name} ssl=${r.ssl}`))).toEqual(new Set(["postgres_exporter ssl=true"]));
        }
        const clients = await withClient(stack.outputs.pgbouncerAdminUrl, async (c) => (await c.query("SHOW CLIENTS")).rows);
        const exporter = clients.filter((c) => c.user === "monitoring");
        expect(exporter.map((c) => c.database)).toEqual(["pgbouncer"]);
        expect(exporter[0].tls).toMatch(/^TLSv1\.[23]/);
    });

    it("keeps the monitoring password out of the exporters' environment, command lines and logs", async () => {
        const exporters = [...nodes.map((n) => n.replace("_", "-")), "pgbouncer"].map((n) => `${stack.clusterName}-${n}-exporter`);
        for (const name of exporters) {
            const passfile = await docker("exec", name, "cat", "/etc/obcms/pgpass");
            const password = passfile.trim().split(":").at(-1)!;
            expect(password.length).toBeGreaterThanOrEqual(16);
            expect((await docker("exec", name, "stat", "-c", "%a %U", "/etc/obcms/pgpass")).trim()).toBe("600 postgres");
            const [inspect] = JSON.parse(await docker("inspect", name));
            const visible = JSON.stringify([inspect.Config.Env, inspect.Config.Cmd, inspect.Config.Entrypoint, inspect.Path, inspect.Args]);
            // Every process's command line and environment, as the kernel shows them.
            const processes = await docker(
                "exec",
                name,
                "sh",
                "-c",
                "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' ' '",
            );
            const logs = await containerLog(name);
            expect(processes).toMatch(/prometheus-(postgres|pgbouncer)-exporter/);
            for (const text of [visible, processes, logs]) {
                expect(text).not.toContain(password);
            }
        }
    });

    it("fires PostgreSQLReplicaNotStreaming within `for` + 2 scrape intervals of a replica stopping, and resolves once it streams again", async () => {
        const replica = `${stack.clusterName}-replica-1`;
        // The primary's exporter stops reporting the WAL sender at its next scrape, the
        // rule goes pending at the evaluation after that, and fires `for` later.
        const bound = (FOR_SECONDS + 2 * SCRAPE_SECONDS) * 1000 + MEASUREMENT_SLACK_MS;
        await docker("stop", replica);
        const stopped = Date.now();
        const firing = await waitFor("the replica-down alert to fire", bound + 5_000, async () => {
            const alerts = await prometheus.alerts();
            return alerts.some((a) => a.state === "firing" && isAlert(a, "PostgreSQLReplicaNotStreaming", "replica_1"))
                ? alerts
                : undefined;
        });
        const fired = Date.now() - stopped;
        expect(
            firing
                .filter((a) => a.state === "firing" && a.labels.alertname === "PostgreSQLReplicaNotStreaming")
                .map((a) => a.labels.instance),
        ).toEqual(["replica_1"]);
        await waitFor("PostgreSQLDown for replica_1", 5_000, async () =>
            (await prometheus.alerts()).some((a) => a.state === "firing" && isAlert(a, "PostgreSQLDown", "replica_1")) ? true : undefined,
        );

        await docker("start", replica);
        const restarted = Date.now();
        await waitFor("the replica-down alert to resolve", 60_000, async () =>
            (await prometheus.alerts()).some((a) => isAlert(a, "PostgreSQLReplicaNotStreaming", "replica_1")) ? undefined : true,
        );
        const resolved = Date.now() - restarted;
        console.log(
            `${stackName}: PostgreSQLReplicaNotStreaming fired ${(fired / 1000).toFixed(1)} s after the replica stopped ` +
                `(bound ${bound / 1000} s), resolved ${(resolved / 1000).toFixed(1)} s after it was started again`,
        );
        // Not before `for` has passed, and not much after.
        expect(fired).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
        expect(fired).toBeLessThanOrEqual(bound);
    }, 120_000);

    it("fires EtcdMemberDown, and no ExporterDown, when an etcd member stops, and resolves once it is back", async () => {
        const member = `${stack.clusterName}-etcd-${expected.etcdMembers}`;
        const instance = `etcd-${expected.etcdMembers}`;
        const bound = (FOR_SECONDS + 2 * SCRAPE_SECONDS) * 1000 + MEASUREMENT_SLACK_MS;
        await docker("stop", member);
        const stopped = Date.now();
        const firing = await waitFor("EtcdMemberDown to fire", bound + 5_000, async () => {
            const alerts = await prometheus.alerts();
            return alerts.some((a) => a.state === "firing" && isAlert(a, "EtcdMemberDown", instance)) ? alerts : undefined;
        });
        const fired = Date.now() - stopped;
        expect(firing.filter((a) => a.labels.alertname === "ExporterDown")).toEqual([]);
        await docker("start", member);
        await waitFor("EtcdMemberDown to resolve", 60_000, async () =>
            (await prometheus.alerts()).some((a) => isAlert(a, "EtcdMemberDown", instance)) ? undefined : true,
        );
        console.log(
            `${stackName}: EtcdMemberDown fired ${(fired / 1000).toFixed(1)} s after ${instance} stopped (bound ${bound / 1000} s)`,
        );
        expect(fired).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
        expect(fired).toBeLessThanOrEqual(bound);
    }, 120_000);
});
