// Monitoring on a real Docker engine: the exporters, Patroni's and HAProxy's
// metrics, Prometheus and its rules as the program declares them
// (startStack), checked through Prometheus's own API. Who leads is asked of
// Patroni (harness/patroni.ts), never read from a name. Grafana has no image
// on test machines, so only its container is disabled; every dashboard query
// runs against the live Prometheus instead.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBackupSettings, readMonitoringSettings, readSettings } from "../../components/config";
import { alertRules, backupAlertRules, MAINTENANCE_ALERT_SECONDS } from "../../components/render/monitoring/alert-rules";
import {
    backupDashboard,
    clusterDashboard,
    pgbouncerDashboard,
    postgresqlDashboard,
    RATE_INTERVAL,
    renderDashboard,
} from "../../components/render/monitoring/grafana-dashboards";
import { FILES } from "../../components/render/paths";
import { type BackupSettings, type ClusterSettings, MONITORING_CONNECTIONS, type MonitoringSettings } from "../../components/settings";
import { type StartedStack, startStack } from "../../harness/cluster";
import { type MemberStatus, waitForHealthyCluster } from "../../harness/patroni";
import { containerLog, docker, processesText, query, waitFor, withClient } from "../../harness/sql";
import { type Alert, Prometheus } from "../support/prometheus";

/**
 * Short enough that an alert's life cycle fits in a test; the stack defaults
 * are 15 s and 60 s. The scrape timeout equals the interval, so not below
 * 3 s: an exporter whose server's name no longer resolves takes about 1.4 s to
 * say pg_up 0, and a member's PostgreSQL exporter took up to 2.3 s to answer
 * while a switchover loaded the 2 cores (at 2 s, ExporterDown once fired for
 * both members of a switchover in a full run).
 */
const SCRAPE_SECONDS = 3;
/** Four scrapes, as in the stack's defaults, and a multiple of the evaluation interval: an alert turns firing only at an evaluation. */
const FOR_SECONDS = 12;
/** What the bounds below allow besides `for` and the scrape and evaluation intervals: the scrape's own duration and this test's polling. */
const MEASUREMENT_SLACK_MS = 1_000;
/**
 * An alert on one target's series fires at most `for` + two scrape intervals
 * after the fault: the next scrape sees it, the next evaluation makes the
 * rule pending, and it fires `for` later.
 */
const ALERT_BOUND_MS = (FOR_SECONDS + 2 * SCRAPE_SECONDS) * 1000 + MEASUREMENT_SLACK_MS;
const OVERRIDES = { grafanaEnabled: false, scrapeIntervalSeconds: SCRAPE_SECONDS, alertForSeconds: FOR_SECONDS };
/** What Grafana substitutes for $__rate_interval: four scrape intervals (the datasource's timeInterval). */
const RATE_WINDOW = `${4 * SCRAPE_SECONDS}s`;
/** How long a cluster may take to have every member streaming again after a test stopped one or moved the leader. */
const HEALTHY_WITHIN_MS = 120_000;

/** Production's topology: every alert below has a member of each kind to spare, and etcd a quorum to lose. */
const MEMBERS = 4;
const ETCD_MEMBERS = 3;

function etcdNames(count: number): string[] {
    return Array.from({ length: count }, (_, i) => `etcd-${i + 1}`);
}

/** Every query of a rendered dashboard, read back from its JSON as Grafana would. */
function dashboardQueries(json: string): Array<{ panel: string; expr: string }> {
    const dashboard = JSON.parse(json) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
}

function isAlert(alert: Alert, name: string, instance?: string): boolean {
    return alert.labels.alertname === name && (instance === undefined || alert.labels.instance === instance);
}

function seconds(ms: number): string {
    return (ms / 1000).toFixed(1);
}

describe("monitoring of the production stack on a real Docker engine", () => {
    const members = Array.from({ length: MEMBERS }, (_, i) => `pg-${i + 1}`);
    /** Targets: an exporter and a Patroni per member, PgBouncer's exporter, HAProxy, the backup container, each etcd member. */
    const targetCount = 2 * MEMBERS + 3 + ETCD_MEMBERS;
    let stack: StartedStack;
    let prometheus: Prometheus;
    let cluster: ClusterSettings;
    let monitoring: MonitoringSettings;
    let backup: BackupSettings;

    /** The members as Patroni reports them once every one streams from the leader: the leader first. */
    async function healthyMembers(): Promise<{ leader: MemberStatus; replicas: MemberStatus[] }> {
        const status = await waitForHealthyCluster(stack, HEALTHY_WITHIN_MS);
        return { leader: status.find((m) => m.role === "leader")!, replicas: status.filter((m) => m.role !== "leader") };
    }

    /** Waits until Prometheus sees the members as Patroni does: `leader` alone leads, every other member streams. */
    async function prometheusSees(leader: string, timeoutMs: number): Promise<void> {
        await waitFor(`Prometheus to see ${leader} lead and the others stream`, timeoutMs, async () => {
            const leaders = await prometheus.query("patroni_primary == 1");
            const streaming = await prometheus.query("patroni_postgres_streaming == 1");
            return leaders.map((s) => s.metric.instance).join() === leader &&
                streaming
                    .map((s) => s.metric.instance)
                    .sort()
                    .join() === members.filter((m) => m !== leader).join()
                ? true
                : undefined;
        });
    }

    async function firing(name: string, instance?: string): Promise<Alert[]> {
        return (await prometheus.alerts()).filter((a) => a.state === "firing" && isAlert(a, name, instance));
    }

    beforeAll(async () => {
        const started = Date.now();
        stack = await startStack("production", { overrides: OVERRIDES });
        // The settings the program just read, from the same stack config.
        cluster = readSettings();
        monitoring = readMonitoringSettings(cluster);
        backup = readBackupSettings();
        expect(stack.topology.members.map((m) => m.node)).toEqual(members);
        expect(stack.outputs.prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        prometheus = new Prometheus(stack.outputs.prometheusUrl!);
        // Pools appear in PgBouncer once a client has used them.
        await query(stack.outputs.databaseUrl, "SELECT 1");
        await query(stack.outputs.readonlyDatabaseUrl, "SELECT 1");
        const { leader } = await healthyMembers();
        await waitFor("every target up", 60_000, async () => {
            const up = await prometheus.query("up");
            return up.length === targetCount && up.every((s) => s.value[1] === "1") ? true : undefined;
        });
        await prometheusSees(leader.name, 60_000);
        // Enough samples for rate() over the dashboards' window.
        await waitFor("a rate window of samples", 30_000, async () => {
            const [fewest] = await prometheus.query(`min(count_over_time(up[${RATE_WINDOW}]))`);
            return fewest !== undefined && Number(fewest.value[1]) >= 3 ? true : undefined;
        });
        console.log(`stack with monitoring up in ${seconds(Date.now() - started)} s`);
    }, 600_000);

    afterAll(async () => {
        await stack?.stop();
    }, 120_000);

    it("has no Grafana outputs while Grafana is disabled", () => {
        expect(Object.keys(stack.outputs)).toContain("prometheusUrl");
        expect(stack.outputs.grafanaUrl).toBeUndefined();
        expect(stack.outputs.grafanaAdminPassword).toBeUndefined();
    });

    it("scrapes every member's exporter and Patroni (over verified TLS), PgBouncer, HAProxy, the backup container and each etcd member, all up", async () => {
        const targets = await prometheus.targets();
        const seen = targets.map((t) => [t.labels.job, t.labels.instance, t.labels.role, t.health, t.lastError]).sort();
        expect(seen).toEqual(
            [
                ["backup", "backup", "backup", "up", ""],
                ["pgbouncer", "pgbouncer", "pgbouncer", "up", ""],
                ["haproxy", "haproxy", "haproxy", "up", ""],
                ...members.map((n) => ["postgres", n, "postgres", "up", ""]),
                ...members.map((n) => ["patroni", n, "patroni", "up", ""]),
                ...etcdNames(ETCD_MEMBERS).map((n) => ["etcd", n, "etcd", "up", ""]),
            ].sort(),
        );
        // Patroni's API is TLS only: these scrapes checked each member's certificate against the stack's CA.
        expect(
            targets
                .filter((t) => t.labels.job === "patroni")
                .map((t) => t.scrapeUrl)
                .sort(),
        ).toEqual(stack.topology.members.map((m) => `https://${m.container}:8008/metrics`).sort());
        expect(await prometheus.query("up == 1")).toHaveLength(targetCount);
        const hasLeader = await prometheus.query("etcd_server_has_leader == 1");
        expect(hasLeader.map((s) => s.metric.instance).sort()).toEqual(etcdNames(ETCD_MEMBERS));
        const pgUp = await prometheus.query("pg_up == 1");
        expect(pgUp.map((s) => s.metric.instance).sort()).toEqual(members);
        expect(await prometheus.query("pgbouncer_up == 1")).toHaveLength(1);
    });

    it("takes each member's role from Patroni's metrics, as Patroni itself reports it, and HAProxy routes to match", async () => {
        const { leader, replicas } = await healthyMembers();
        const instances = async (expr: string) => (await prometheus.query(expr)).map((s) => s.metric.instance).sort();
        expect(await instances("patroni_primary == 1")).toEqual([leader.name]);
        expect(await instances("patroni_replica == 1")).toEqual(replicas.map((m) => m.name).sort());
        expect(await instances(`patroni_postgres_timeline == ${leader.timeline}`)).toEqual(members);
        const servers = async (proxy: string) =>
            (await prometheus.query(`haproxy_server_status{proxy="${proxy}", state="UP"} == 1`)).map((s) => s.metric.server).sort();
        expect(await servers("postgres_rw")).toEqual([leader.name]);
        expect(await servers("postgres_ro")).toEqual(replicas.map((m) => m.name).sort());
        const active = await prometheus.query("haproxy_backend_active_servers");
        expect(Object.fromEntries(active.map((s) => [s.metric.proxy, s.value[1]]))).toEqual({
            postgres_rw: "1",
            postgres_ro: String(replicas.length),
        });
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
                // alertForSeconds, but the maintenance-mode alert's own half hour.
                duration: rule.name === "PatroniMaintenanceMode" ? MAINTENANCE_ALERT_SECONDS : FOR_SECONDS,
            });
        }
        for (const rule of rendered) {
            await expect(prometheus.query(rule.expr), rule.alert).resolves.toBeInstanceOf(Array);
        }
        expect((await prometheus.alerts()).filter((a) => a.state === "firing")).toEqual([]);
    });

    it("runs every Grafana panel query on the live Prometheus; the core ones return a series per member, route or pool", async () => {
        const dashboards = [
            postgresqlDashboard(cluster, monitoring),
            pgbouncerDashboard(cluster, monitoring),
            clusterDashboard(cluster),
            backupDashboard(cluster, backup),
        ];
        const queries = dashboards.map(renderDashboard).flatMap(dashboardQueries);
        expect(queries).toHaveLength(35);
        for (const q of queries) {
            const expr = q.expr.replaceAll(RATE_INTERVAL, RATE_WINDOW);
            expect(expr, q.panel).not.toMatch(/\$__/);
            await expect(prometheus.queryRange(expr, 60, SCRAPE_SECONDS), q.panel).resolves.toBeInstanceOf(Array);
        }

        const samples = async (panel: string) => {
            const found = queries.filter((q) => q.panel === panel);
            expect(found.length, panel).toBeGreaterThan(0);
            return prometheus.query(found[0].expr.replaceAll(RATE_INTERVAL, RATE_WINDOW));
        };
        const labels = async (panel: string, label: string) => (await samples(panel)).map((s) => s.metric[label]).sort();
        const { leader, replicas } = await healthyMembers();
        const replicaNames = replicas.map((m) => m.name).sort();
        expect(await labels("PostgreSQL up", "instance")).toEqual(members);
        expect(await labels("Connections", "instance")).toEqual(members);
        expect(await labels("Transactions per second", "instance")).toEqual(members);
        expect(await labels("Replication lag (bytes)", "instance")).toEqual(replicaNames);
        expect(await labels("Replication lag (seconds)", "instance")).toEqual(replicaNames);
        const slots = stack.topology.members.filter((m) => m.node !== leader.name).map((m) => m.slot);
        expect(await labels("WAL retained per slot", "slot_name")).toEqual(slots.sort());
        const pools = ["obcms", "obcms_readonly"];
        expect(await labels("Clients active per pool", "database")).toEqual(pools);
        expect(await labels("Clients waiting per pool", "database")).toEqual(pools);
        expect(await labels("Servers active per pool", "database")).toEqual(pools);
        expect(await labels("Servers idle per pool", "database")).toEqual(pools);
        expect(await labels("Longest client wait", "database")).toEqual(pools);
        // The cluster dashboard: 2 for the leader, 1 for each replica.
        const roles = Object.fromEntries((await samples("Member role")).map((s) => [s.metric.instance, s.value[1]]));
        expect(roles).toEqual(Object.fromEntries(members.map((m) => [m, m === leader.name ? "2" : "1"])));
        expect(await labels("Timeline", "instance")).toEqual(members);
        expect(await labels("Streaming", "instance")).toEqual(replicaNames);
        expect(await labels("WAL not received", "instance")).toEqual(replicaNames);
        expect((await samples("Leaders")).map((s) => s.value[1])).toEqual(["1"]);
        expect((await samples("Failsafe mode")).map((s) => s.value[1])).toEqual(["0"]);
        expect(await labels("Since etcd last answered", "instance")).toEqual(members);
        expect(await labels("Servers per route", "proxy")).toEqual(["postgres_ro", "postgres_rw"]);
        expect((await samples("Route servers")).map((s) => `${s.metric.proxy} ${s.metric.server}`).sort()).toEqual(
            ["postgres_ro", "postgres_rw"].flatMap((proxy) => members.map((m) => `${proxy} ${m}`)).sort(),
        );
        expect(await labels("etcd leader", "instance")).toEqual(etcdNames(ETCD_MEMBERS));
    });

    it("logs in over TLS as the monitoring role, within the connections the cluster reserves for monitoring", async () => {
        for (const url of Object.values(stack.outputs.memberUrls)) {
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
        const exporters = [...stack.topology.members.map((m) => m.exporter), stack.topology.pgbouncer.exporter];
        for (const name of exporters) {
            const passfile = await docker("exec", name, "cat", "/etc/obcms/pgpass");
            const password = passfile.trim().split(":").at(-1)!;
            expect(password.length).toBeGreaterThanOrEqual(16);
            expect((await docker("exec", name, "stat", "-c", "%a %U", "/etc/obcms/pgpass")).trim()).toBe("600 postgres");
            const [inspect] = JSON.parse(await docker("inspect", name));
            const visible = JSON.stringify([inspect.Config.Env, inspect.Config.Cmd, inspect.Config.Entrypoint, inspect.Path, inspect.Args]);
            const processes = await processesText(name);
            const logs = await containerLog(name);
            expect(processes).toMatch(/prometheus-(postgres|pgbouncer)-exporter/);
            for (const text of [visible, processes, logs]) {
                expect(text).not.toContain(password);
            }
        }
    });

    it("fires PostgreSQLMemberNotStreaming within `for` + 2 scrape intervals of a replica stopping, and resolves once it streams again", async () => {
        const { replicas } = await healthyMembers();
        const replica = replicas[0];
        // It stops streaming as soon as its stop begins; Patroni's graceful stop takes a few seconds more.
        const stopping = Date.now();
        await docker("stop", replica.container);
        const stopTook = Date.now() - stopping;
        let fired: number;
        try {
            const alerts = await waitFor("the not-streaming alert to fire", ALERT_BOUND_MS + 5_000, async () => {
                const found = await firing("PostgreSQLMemberNotStreaming");
                return found.length > 0 ? found : undefined;
            });
            fired = Date.now() - stopping;
            expect(alerts.map((a) => a.labels.instance)).toEqual([replica.name]);
            // PostgreSQL's own alert: its exporter sees it down once the stop has finished, `for` later.
            await waitFor(`PostgreSQLDown for ${replica.name}`, ALERT_BOUND_MS, async () =>
                (await firing("PostgreSQLDown", replica.name)).length > 0 ? true : undefined,
            );
        } finally {
            // Also when an alert is late: the tests after this one need the member back.
            await docker("start", replica.container);
        }
        const restarted = Date.now();
        await waitFor("the not-streaming alert to resolve", 60_000, async () =>
            (await prometheus.alerts()).some((a) => isAlert(a, "PostgreSQLMemberNotStreaming")) ? undefined : true,
        );
        const resolved = Date.now() - restarted;
        console.log(
            `PostgreSQLMemberNotStreaming fired ${seconds(fired)} s after ${replica.name} was told to stop ` +
                `(its stop took ${seconds(stopTook)} s; bound ${seconds(stopTook + ALERT_BOUND_MS)} s), resolved ${seconds(resolved)} s after it was started again`,
        );
        // Not before `for` has passed, and not much after.
        expect(fired).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
        expect(fired).toBeLessThanOrEqual(stopTook + ALERT_BOUND_MS);
        await healthyMembers();
    }, 240_000);

    it("follows a switchover in the role series, fires PatroniFailover, and no ExporterDown for the members that changed role", async () => {
        const { leader, replicas } = await healthyMembers();
        // In quorum mode Patroni switches over only to a member of the quorum.
        const candidate = replicas.find((m) => cluster.synchronousReplicas === 0 || m.quorumStandby)!;
        // An exporter the previous test stopped may still be reported down: only what the switchover causes counts.
        await waitFor("no ExporterDown before the switchover", 60_000, async () =>
            (await prometheus.alerts()).some((a) => isAlert(a, "ExporterDown")) ? undefined : true,
        );
        const issued = Date.now();
        const answer = await docker(
            "exec",
            candidate.container,
            "patronictl",
            "-c",
            FILES.patroniConf,
            "switchover",
            "--leader",
            leader.name,
            "--candidate",
            candidate.name,
            "--force",
        );
        // patronictl returns once Patroni has promoted the candidate.
        const switched = Date.now() - issued;
        expect(answer).toContain(`Successfully switched over to "${candidate.name}"`);

        await waitFor(`Prometheus to see ${candidate.name} alone lead`, 60_000, async () =>
            (await prometheus.query("patroni_primary == 1")).map((s) => s.metric.instance).join() === candidate.name ? true : undefined,
        );
        const roleSeen = Date.now() - issued;
        await waitFor("PatroniFailover to fire", 60_000, async () => ((await firing("PatroniFailover")).length > 0 ? true : undefined));
        const fired = Date.now() - issued;
        // The new leader's timeline comes in the same scrape as its role: the rule (a subquery at the
        // evaluation interval) sees it within two evaluations of Prometheus seeing the role, and fires `for` later.
        const bound = roleSeen + (FOR_SECONDS + 2 * SCRAPE_SECONDS) * 1000 + MEASUREMENT_SLACK_MS;
        // Long enough after the role change that an ExporterDown it caused would be firing by now.
        await new Promise((resolve) => setTimeout(resolve, ALERT_BOUND_MS));
        const window = Math.ceil((Date.now() - issued) / 1000);
        // Prometheus keeps every alert's state as the ALERTS series: none was firing since the switchover began.
        const exporterDown = await prometheus.query(`max_over_time(ALERTS{alertname="ExporterDown", alertstate="firing"}[${window}s])`);
        const lowestUp = await prometheus.query(
            `min by (job, instance) (min_over_time(up{instance=~"${leader.name}|${candidate.name}"}[${window}s]))`,
        );
        console.log(
            `switchover ${leader.name} → ${candidate.name} done in ${seconds(switched)} s; Prometheus saw the new leader alone ` +
                `${seconds(roleSeen)} s and PatroniFailover fired ${seconds(fired)} s after it was asked (bound ${seconds(bound)} s); ` +
                `lowest up of the two members' targets over the switchover: ${lowestUp.map((s) => `${s.metric.job}/${s.metric.instance}=${s.value[1]}`).join(" ")}`,
        );
        expect(exporterDown).toEqual([]);
        // The old leader's Patroni may answer no scrape while it demotes and restarts as a replica: its last
        // sample goes stale only when a scrape times out (scrape_timeout: one interval here), and two may.
        expect(roleSeen).toBeLessThanOrEqual(switched + 4 * SCRAPE_SECONDS * 1000 + MEASUREMENT_SLACK_MS);
        expect(fired).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
        expect(fired).toBeLessThanOrEqual(bound);
        // The old leader streams from the new one, and Prometheus sees it: the leader-joined rules see the new picture.
        const after = await healthyMembers();
        expect(after.leader.name).toBe(candidate.name);
        await prometheusSees(candidate.name, 2 * SCRAPE_SECONDS * 1000 + MEASUREMENT_SLACK_MS);
        await waitFor("no member-not-streaming alert", 60_000, async () =>
            (await prometheus.alerts()).some((a) => isAlert(a, "PostgreSQLMemberNotStreaming")) ? undefined : true,
        );
    }, 240_000);

    it("fires EtcdMemberDown, and neither ExporterDown nor failsafe mode, when one etcd member stops; EtcdNoLeader and PatroniFailsafeActive once a second one takes the quorum", async () => {
        const [survivor, second, first] = stack.topology.etcd;
        const stopping = Date.now();
        await docker("stop", first.container);
        const stopTook = Date.now() - stopping;
        let fired: number;
        let failsafeFired: number;
        try {
            const alerts = await waitFor("EtcdMemberDown to fire", ALERT_BOUND_MS + 5_000, async () => {
                const all = await prometheus.alerts();
                return all.some((a) => a.state === "firing" && isAlert(a, "EtcdMemberDown", first.name)) ? all : undefined;
            });
            fired = Date.now() - stopping;
            expect(alerts.filter((a) => a.labels.alertname === "ExporterDown")).toEqual([]);
            // Two of three keep the quorum: long enough for failsafe mode to fire, had it begun when the member stopped.
            await new Promise((resolve) => setTimeout(resolve, ALERT_BOUND_MS));
            expect(await firing("PatroniFailsafeActive")).toEqual([]);
            expect(await firing("EtcdNoLeader")).toEqual([]);

            const secondStopping = Date.now();
            await docker("stop", second.container);
            // Patroni's members reach no quorum: the leader keeps its role only because every member answers it.
            await waitFor("PatroniFailsafeActive to fire", 60_000, async () =>
                (await firing("PatroniFailsafeActive")).length > 0 ? true : undefined,
            );
            failsafeFired = Date.now() - secondStopping;
            await waitFor(`EtcdNoLeader for ${survivor.name}`, ALERT_BOUND_MS, async () =>
                (await firing("EtcdNoLeader", survivor.name)).length > 0 ? true : undefined,
            );
            expect(await firing("PatroniNoLeader")).toEqual([]);
        } finally {
            // Also when an alert is late: the tests after this one need etcd back.
            await docker("start", first.container, second.container);
        }
        await waitFor("the etcd and failsafe alerts to resolve", 60_000, async () =>
            (await prometheus.alerts()).some((a) =>
                ["EtcdMemberDown", "EtcdNoLeader", "PatroniFailsafeActive"].some((name) => isAlert(a, name)),
            )
                ? undefined
                : true,
        );
        console.log(
            `EtcdMemberDown fired ${seconds(fired)} s after ${first.name} was told to stop ` +
                `(its stop took ${seconds(stopTook)} s; bound ${seconds(stopTook + ALERT_BOUND_MS)} s); ` +
                `PatroniFailsafeActive fired ${seconds(failsafeFired)} s after ${second.name} was told to stop`,
        );
        expect(fired).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
        expect(fired).toBeLessThanOrEqual(stopTook + ALERT_BOUND_MS);
    }, 240_000);
});
