// The restore drill on the staging stack brought up for real: a drill that
// passes on a healthy stack while a writer runs (its commit latency measured
// before and during), one that fails early for want of scratch space, drills
// that fail visibly (exit status, report, metric, alert) with a corrupted
// backup file and with a WAL segment missing from the repository and pass
// again once repaired, and the schedule running a drill once one is due.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PGBACKREST_FILES, RESTORE_DRILL_VOLUME_DIR } from "../../components/render/paths";
import {
    RESTORE_DRILL_METRICS,
    RESTORE_DRILL_SCRATCH_DIR,
    RESTORE_DRILL_STATE_FILE,
} from "../../components/render/pgbackrest/restore-drill";
import { type StartedStack, startStack } from "../../harness/cluster";
import { waitForLeader } from "../../harness/patroni";
import { containerLog, docker, query, waitFor, withClient } from "../../harness/sql";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { Prometheus } from "../support/prometheus";

const run = promisify(execFile);
const SCRIPT = path.join(PROJECT_ROOT, "scripts", "backup.sh");
const CONF = "/etc/obcms/pgbackrest.conf";
const REPO = "/var/lib/pgbackrest";
const TABLE = "drill_rows";
const ROWS = 5000;
const SUCCESS = RESTORE_DRILL_METRICS.lastRunSuccess[0];

interface DrillRun {
    readonly code: number;
    readonly output: string;
    readonly seconds: number;
}

/** `scripts/backup.sh drill`, as an operator runs it: its exit status and report, whatever they are. */
async function drill(stack: StartedStack): Promise<DrillRun> {
    const started = Date.now();
    try {
        const { stdout, stderr } = await run(SCRIPT, ["-c", stack.clusterName, "drill"], { maxBuffer: 16 * 1024 * 1024, timeout: 900_000 });
        return { code: 0, output: stdout + stderr, seconds: (Date.now() - started) / 1000 };
    } catch (error) {
        const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
        return { code: code ?? -1, output: `${stdout ?? ""}${stderr ?? ""}`, seconds: (Date.now() - started) / 1000 };
    }
}

function backupExec(stack: StartedStack, ...args: string[]): Promise<string> {
    return docker("exec", `${stack.clusterName}-backup`, ...args);
}

/** The newest backup's label and last WAL segment, and the repository's newest archive id, from one `pgbackrest info`. */
async function newestBackup(stack: StartedStack): Promise<{ label: string; walStop: string; archiveId: string }> {
    const [stanza] = JSON.parse(await backupExec(stack, "pgbackrest", `--config=${CONF}`, "--stanza=main", "info", "--output=json"));
    const newest = stanza.backup[stanza.backup.length - 1];
    return { label: newest.label, walStop: newest.archive.stop, archiveId: stanza.archive[stanza.archive.length - 1].id };
}

/** The nearest rank of `q` (0..1) in ascending `values`. */
function percentile(values: readonly number[], q: number): number {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

interface TimedWrites {
    readonly latenciesMs: number[];
    readonly errors: string[];
}

/** One client committing one row at a time through `url` until `done()`, `maxSeconds` or 100 errors, each commit timed. */
async function timedWrites(url: string, done: () => boolean, maxSeconds: number): Promise<TimedWrites> {
    const latenciesMs: number[] = [];
    const errors: string[] = [];
    const until = Date.now() + maxSeconds * 1000;
    await withClient(url, async (client) => {
        while (!done() && Date.now() < until && errors.length < 100) {
            const started = process.hrtime.bigint();
            try {
                await client.query(`INSERT INTO ${TABLE} (note) VALUES ('under the drill')`);
                latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
            } catch (error) {
                errors.push((error as Error).message);
            }
        }
    });
    return { latenciesMs, errors };
}

describe("restore drills on the staging stack", () => {
    let stack: StartedStack;
    let prometheus: Prometheus;
    const backup = () => `${stack.clusterName}-backup`;

    /** The drill metric's value in Prometheus once it shows `expected`. */
    async function metricBecomes(name: string, expected: string): Promise<void> {
        await waitFor(`${name} ${expected} in Prometheus`, 90_000, async () => {
            const [sample] = await prometheus.query(`${name}{job="backup"}`);
            return sample?.value[1] === expected ? true : undefined;
        });
    }

    /** RestoreDrillFailed, pending or firing, raised at `since` (ms) or later: by this failure, not an earlier one. */
    function drillFailedAlertSince(since: number) {
        return waitFor("RestoreDrillFailed raised by this drill", 120_000, async () =>
            (await prometheus.alerts()).find((a) => a.labels.alertname === "RestoreDrillFailed" && Date.parse(a.activeAt) >= since),
        );
    }

    /** Once a fault is repaired: a drill passes, its metric says so, and RestoreDrillFailed clears. */
    async function passesAgain(): Promise<void> {
        const repaired = await drill(stack);
        expect(repaired.code, repaired.output).toBe(0);
        await metricBecomes(SUCCESS, "1");
        await waitFor("RestoreDrillFailed to clear", 120_000, async () =>
            (await prometheus.alerts()).some((a) => a.labels.alertname === "RestoreDrillFailed") ? undefined : true,
        );
    }

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { grafanaEnabled: false } });
        prometheus = new Prometheus(stack.outputs.prometheusUrl!);
        // The application's own table, through PgBouncer, as the application's role.
        await query(
            stack.outputs.databaseUrl,
            `CREATE TABLE ${TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL)`,
        );
        await query(stack.outputs.databaseUrl, `INSERT INTO ${TABLE} (note) SELECT 'row ' || g FROM generate_series(1, ${ROWS}) g`);
    }, 900_000);

    afterAll(async () => {
        await stack?.stop();
    }, 180_000);

    it("starts the record with the schedule: no drill has run, and none is due for restoreDrillEvery", async () => {
        const record = await backupExec(stack, "cat", RESTORE_DRILL_STATE_FILE);
        const began = Number(/^obcms_restore_drill_last_success_timestamp_seconds (\d+)$/m.exec(record)?.[1]);
        expect(Math.abs(Date.now() / 1000 - began)).toBeLessThan(900);
        expect(record).not.toContain(SUCCESS);
        await expect(backupExec(stack, "sh", PGBACKREST_FILES.restoreDrill, "due")).rejects.toThrow();
        await metricBecomes(RESTORE_DRILL_METRICS.lastSuccess[0], String(began));
    });

    it("passes on a healthy stack while a writer commits, with no client error, and removes its scratch data", async () => {
        // The writer's latency alone, then with the drill running, in one run.
        let stop = false;
        const baseline = await timedWrites(stack.outputs.databaseUrl, () => false, 20);
        const during = timedWrites(stack.outputs.databaseUrl, () => stop, 600);
        // Awaited below, after the drill: a rejection meanwhile must not count as unhandled.
        during.catch(() => undefined);
        const result = await drill(stack);
        stop = true;
        const writes = await during;
        expect(result.code, result.output).toBe(0);
        const lines = result.output.split("\n").map((line) => line.replace(/^\S+ restore drill: /, ""));
        expect(lines).toContain("pgbackrest verify: every backup file and WAL segment in the repository against its checksum");
        expect(
            lines.some((l) => /^canary \S+: a row before .+, one after; waiting for WAL segment [0-9A-F]{24} in the repository$/.test(l)),
        ).toBe(true);
        expect(lines.some((l) => /^restored \d+ bytes in \d+ ms \(\d+ bytes\/s\)$/.test(l))).toBe(true);
        expect(lines.some((l) => /^canary \S+: the row before the target is there, the one after is not$/.test(l))).toBe(true);
        expect(lines).toContain("pg_amcheck obcms: every table and B-tree index, and every heap tuple in its indexes");
        // The table's rows at the target: the first batch and every commit the writer had made by then.
        const counted = Number(lines.find((l) => l.startsWith(`rows public.${TABLE} `))?.split(" ")[2]);
        expect(counted).toBeGreaterThanOrEqual(ROWS + baseline.latenciesMs.length);
        expect(counted).toBeLessThanOrEqual(ROWS + baseline.latenciesMs.length + writes.latenciesMs.length);
        expect(lines.some((l) => /^passed in \d+s$/.test(l))).toBe(true);

        expect(baseline.errors).toEqual([]);
        expect(writes.errors).toEqual([]);
        expect(writes.latenciesMs.length).toBeGreaterThan(0);
        await expect(backupExec(stack, "ls", RESTORE_DRILL_SCRATCH_DIR)).rejects.toThrow();
        await metricBecomes(SUCCESS, "1");
        const [bytes] = await prometheus.query(`${RESTORE_DRILL_METRICS.restoredBytes[0]}{job="backup"}`);
        const [rate] = await prometheus.query(`${RESTORE_DRILL_METRICS.restoreRate[0]}{job="backup"}`);
        const restored = /^restored (\d+) bytes in (\d+) ms/m.exec(lines.join("\n"))!;
        expect(bytes.value[1]).toBe(restored[1]);
        const ms = (xs: number[], q: number) => percentile(xs, q).toFixed(1);
        console.log(result.output);
        console.log(
            `drill passed in ${result.seconds.toFixed(1)} s: restored ${restored[1]} bytes in ${restored[2]} ms (${rate.value[1]} bytes/s); ` +
                `writer commits: ${baseline.latenciesMs.length} before, p50 ${ms(baseline.latenciesMs, 0.5)} ms, p99 ${ms(baseline.latenciesMs, 0.99)} ms; ` +
                `${writes.latenciesMs.length} during, p50 ${ms(writes.latenciesMs, 0.5)} ms, p99 ${ms(writes.latenciesMs, 0.99)} ms; 0 errors`,
        );
    }, 900_000);

    it("fails visibly when a backup file is corrupted, metric and alert included, and passes again once it is repaired, the alert cleared", async () => {
        const { label } = await newestBackup(stack);
        const files = await backupExec(stack, "find", `${REPO}/backup/main/${label}/pg_data/base`, "-type", "f", "-size", "+8k");
        const victim = files.trim().split("\n")[0];
        await backupExec(stack, "cp", "-p", victim, `${RESTORE_DRILL_VOLUME_DIR}/victim`);
        try {
            await backupExec(
                stack,
                "sh",
                "-c",
                `printf 'not what was backed up' | dd of='${victim}' bs=1 seek=512 conv=notrunc status=none`,
            );
            const started = Date.now();
            const result = await drill(stack);
            expect(result.code, result.output).toBe(1);
            expect(result.output).toMatch(/FAILED after \d+s: pgbackrest verify found the repository damaged \(above\)/);
            expect(result.output).toMatch(/^ *status: error$/m);
            await metricBecomes(SUCCESS, "0");
            const alert = await drillFailedAlertSince(started);
            console.log(
                `corrupted ${path.basename(victim)}: drill failed in ${result.seconds.toFixed(1)} s, RestoreDrillFailed ${alert.state}`,
            );
        } finally {
            await backupExec(stack, "mv", `${RESTORE_DRILL_VOLUME_DIR}/victim`, victim);
        }
        await passesAgain();
    }, 900_000);

    it("fails visibly when a WAL segment the restore needs is missing from the repository, and passes again once it is back", async () => {
        const { walStop, archiveId } = await newestBackup(stack);
        const dir = `${REPO}/archive/main/${archiveId}/${walStop.slice(0, 16)}`;
        const segment = (await backupExec(stack, "sh", "-c", `ls '${dir}' | grep '^${walStop}-'`)).trim();
        expect(segment).not.toBe("");
        await backupExec(stack, "mv", `${dir}/${segment}`, `${RESTORE_DRILL_VOLUME_DIR}/segment`);
        try {
            const started = Date.now();
            const result = await drill(stack);
            expect(result.code, result.output).toBe(1);
            expect(result.output).toMatch(/FAILED after \d+s: /);
            await metricBecomes(SUCCESS, "0");
            await drillFailedAlertSince(started);
            // pgbackrest verify's own verdict is reported, whatever it is: the restore is what must fail.
            console.log(
                `missing WAL segment ${walStop}: verify said status ${/^ *status: (\w+)$/m.exec(result.output)?.[1]}; ` +
                    `drill failed in ${result.seconds.toFixed(1)} s: ${/FAILED after .*/.exec(result.output)?.[0]}`,
            );
        } finally {
            await backupExec(stack, "mv", `${RESTORE_DRILL_VOLUME_DIR}/segment`, `${dir}/${segment}`);
        }
        await passesAgain();
    }, 900_000);

    it("fails early, naming the space it needs, when its scratch space cannot hold the restore", async () => {
        // /dev/shm: the container's own 64 MB tmpfs.
        const failed = await backupExec(stack, "sh", PGBACKREST_FILES.restoreDrill, "run", "/dev/shm/drill").then(
            () => "passed",
            (error: Error) => error.message,
        );
        expect(failed).toMatch(
            /FAILED after \d+s: scratch space \/dev\/shm\/drill has \d+ bytes free; the restore needs \d+ \(backup \d{8}-\d{6}F\S* holds \d+ bytes, and recovery up to 1073741824 of WAL\)/,
        );
        expect(failed).not.toContain("pgbackrest verify");
        await metricBecomes(SUCCESS, "0");
    }, 300_000);

    it("runs a drill from the schedule once one is due, and logs it", async () => {
        // The record as if the last drill passed a day and a minute ago.
        const [name, help] = RESTORE_DRILL_METRICS.lastRun;
        const longAgo = Math.floor(Date.now() / 1000) - 86_460;
        const record = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${longAgo}`, `${SUCCESS} 1`].join("\n");
        await backupExec(stack, "sh", "-c", `printf '%s\\n' '${record}' > ${RESTORE_DRILL_STATE_FILE}`);
        const since = Date.now();
        await waitFor("a scheduled drill", 600_000, async () => {
            const log = await containerLog(backup());
            return /obcms-backup: drill start\n(.*\n)*.*obcms-backup: drill end outcome=success/.test(log) ? true : undefined;
        });
        const ran = Number(
            /^obcms_restore_drill_last_run_timestamp_seconds (\d+)$/m.exec(await backupExec(stack, "cat", RESTORE_DRILL_STATE_FILE))?.[1],
        );
        expect(ran * 1000).toBeGreaterThan(since);
        await expect(backupExec(stack, "sh", PGBACKREST_FILES.restoreDrill, "due")).rejects.toThrow();
    }, 900_000);
});

/**
 * The figures for README: a restore drill of a leader holding
 * `DRILL_MEASURE_GB` GB (pgbench tables), each step's time from its report.
 * Off in CI; run with
 * `DRILL_MEASURE_GB=1 npx vitest run test/integration/restore-drill.test.ts -t figures`.
 */
describe.runIf(process.env.DRILL_MEASURE_GB)("figures for a large database", () => {
    const gb = Number(process.env.DRILL_MEASURE_GB);
    let stack: StartedStack;

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { grafanaEnabled: false, monitoringEnabled: false } });
    }, 900_000);

    afterAll(async () => {
        await stack?.stop();
    }, 300_000);

    it("drills the newest backup of the leader's data", async () => {
        const lead = await waitForLeader(stack, 300_000);
        // pgbench's scale 1 is about 15 MB of tables and indexes.
        await docker("exec", lead.container, "pgbench", "-i", "-q", "-s", String(Math.round(gb * 68)), "-d", "obcms", "-U", "postgres");
        const [{ bytes }] = await query(lead.url, "SELECT pg_database_size('obcms')::bigint AS bytes");
        await run(SCRIPT, ["-c", stack.clusterName, "now", "full"], { maxBuffer: 16 * 1024 * 1024, timeout: 3_600_000 });
        const result = await drill(stack);
        expect(result.code, result.output).toBe(0);
        // Seconds between the report's steps, from its own timestamps.
        const steps = result.output
            .split("\n")
            .map((line) => /^(\S+Z) restore drill: (.*)$/.exec(line))
            .filter((m): m is RegExpExecArray => m !== null)
            .map(([, at, what]) => ({ at: Date.parse(at), what }));
        const lines = steps.map((s, i) => `${i === 0 ? 0 : (s.at - steps[i - 1].at) / 1000} s: ${s.what}`);
        console.log(`figures: database obcms ${bytes} bytes; drill in ${result.seconds.toFixed(1)} s\n${lines.join("\n")}`);
    }, 3_600_000);
});
