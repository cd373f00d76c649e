// Backups and restores on the staging stack brought up for real: the first
// full backup taken from the replica at creation, continuous WAL archiving,
// encryption, point-in-time and full restores into scratch containers through
// scripts/backup.sh (the operators' commands), a backup under write load, a
// killed pgBackRest server, an in-place point-in-time restore of the cluster,
// and the schedule with retention.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_STOP_GRACE_SECONDS } from "../../components/backup";
import { type StartedStack, startStack } from "../../harness/cluster";
import { containerLog, docker, query, waitFor } from "../../harness/sql";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { createWritesTable, WRITES_TABLE, Writer, type WriterReport } from "../../harness/workload";
import { Prometheus } from "../support/prometheus";

const run = promisify(execFile);
const SCRIPT = path.join(PROJECT_ROOT, "scripts", "backup.sh");
/** No Grafana image can be pulled here. */
const NO_GRAFANA = { grafanaEnabled: false };
const TABLE = "backup_rows";
const DIGEST_SQL = `SELECT count(*)::int || '|' || md5(coalesce(string_agg(id::text || ':' || note, ',' ORDER BY id), '')) FROM ${TABLE}`;
const CONF = "/etc/obcms/pgbackrest.conf";

interface BackupInfo {
    label: string;
    type: "full" | "diff" | "incr";
    timestamp: { start: number; stop: number };
    info: { size: number; repository: { size: number; delta: number } };
}

/** Runs scripts/backup.sh against the stack, as an operator would. */
async function backupScript(stack: StartedStack, ...args: string[]): Promise<string> {
    const { stdout } = await run(SCRIPT, ["-c", stack.clusterName, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 });
    return stdout;
}

async function pgbackrest(stack: StartedStack, ...args: string[]): Promise<string> {
    return docker("exec", `${stack.clusterName}-backup`, "pgbackrest", `--config=${CONF}`, "--stanza=main", ...args);
}

async function info(stack: StartedStack): Promise<{ backup: BackupInfo[]; archive: Array<{ id: string; max: string }> }> {
    return JSON.parse(await pgbackrest(stack, "info", "--output=json"))[0];
}

/** psql on the scratch container's local socket; one value. */
async function scratchValue(stack: StartedStack, name: string, sql: string): Promise<string> {
    return (await docker("exec", `${stack.clusterName}-scratch-${name}`, "psql", "-X", "-A", "-t", "-d", "obcms", "-c", sql)).trim();
}

async function primaryDigest(stack: StartedStack): Promise<string> {
    const [row] = await query(stack.outputs.primaryUrl, `SELECT (${DIGEST_SQL}) AS digest`);
    return row.digest;
}

async function insertBatch(stack: StartedStack, from: number, to: number, note: string): Promise<void> {
    await query(stack.outputs.primaryUrl, `INSERT INTO ${TABLE} SELECT g, $1 FROM generate_series($2::int, $3::int) g`, [note, from, to]);
}

/** The primary's clock, as a recovery target with its offset. */
async function primaryNow(stack: StartedStack): Promise<string> {
    const [row] = await query(stack.outputs.primaryUrl, "SELECT clock_timestamp()::text AS now");
    return row.now;
}

describe("backups and restores on the staging stack", () => {
    let stack: StartedStack;
    const scratches: string[] = [];

    async function restoreScratch(name: string, target?: string): Promise<void> {
        scratches.push(name);
        await backupScript(stack, "restore-scratch", name, ...(target ? [target] : []));
    }

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: NO_GRAFANA });
        await query(stack.outputs.primaryUrl, `CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text NOT NULL)`);
    }, 900_000);

    afterAll(async () => {
        for (const name of scratches) {
            await backupScript(stack, "drop-scratch", name).catch(() => undefined);
        }
        await stack?.stop();
    }, 180_000);

    it("has a full backup, taken from the replica, when the stack is up, and pgbackrest check passes", async () => {
        const { backup } = await info(stack);
        expect(backup.map((b) => b.type)).toEqual(["full"]);
        expect(stack.outputs.lastBackupLabel).toBe(backup[0].label);
        expect(stack.outputs.backupRepository).toBe(`volume:${stack.clusterName}-backup-data`);
        const log = await containerLog(`${stack.clusterName}-backup`);
        expect(log).toMatch(/replay on the standby reached/);
        expect(log).toMatch(new RegExp(`obcms-backup: end type=full label=${backup[0].label} duration=\\d+s outcome=success`));
        await expect(backupScript(stack, "check")).resolves.toBeDefined();
    });

    it("archives WAL continuously: a switched segment reaches the repository within seconds", async () => {
        const [{ segment }] = await query(stack.outputs.primaryUrl, "SELECT pg_walfile_name(pg_current_wal_lsn()) AS segment");
        await query(stack.outputs.primaryUrl, `INSERT INTO ${TABLE} VALUES (0, 'switch')`);
        const started = Date.now();
        await query(stack.outputs.primaryUrl, "SELECT pg_switch_wal()");
        await waitFor("the switched segment in the repository", 30_000, async () => {
            const { archive } = await info(stack);
            return archive[0].max >= segment ? true : undefined;
        });
        const seconds = (Date.now() - started) / 1000;
        console.log(`WAL segment ${segment} archived ${seconds.toFixed(2)} s after the switch`);
        expect(seconds).toBeLessThan(10);
        await query(stack.outputs.primaryUrl, `DELETE FROM ${TABLE}`);
    });

    it("restores to a point in time: exactly the rows committed before it", async () => {
        await insertBatch(stack, 1, 500, "before");
        const target = await primaryNow(stack);
        const digestAtTarget = await primaryDigest(stack);
        const [{ at }] = await query(
            stack.outputs.primaryUrl,
            `INSERT INTO ${TABLE} VALUES (501, 'after') RETURNING clock_timestamp()::text AS at`,
        );
        await insertBatch(stack, 502, 1000, "after");
        await backupScript(stack, "check");
        await restoreScratch("pitr", target);
        expect(await scratchValue(stack, "pitr", DIGEST_SQL)).toBe(digestAtTarget);
        expect(await scratchValue(stack, "pitr", `SELECT count(*) FROM ${TABLE} WHERE note = 'after'`)).toBe("0");
        const gapMs =
            new Date(at.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")).getTime() -
            new Date(target.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")).getTime();
        console.log(`PITR: target ${target}; the first later commit, ${gapMs} ms after it, was left out; 500 rows before it restored`);
    }, 300_000);

    it("restores the latest backup and the archived WAL into a fresh container that matches the primary", async () => {
        await backupScript(stack, "now", "diff");
        await insertBatch(stack, 1001, 1500, "after the backup");
        await backupScript(stack, "check");
        await restoreScratch("latest");
        expect(await scratchValue(stack, "latest", DIGEST_SQL)).toBe(await primaryDigest(stack));
    }, 300_000);

    it("keeps the repository encrypted, and a wrong passphrase fails clearly", async () => {
        const canary = `obcms-plaintext-canary-${Date.now()}`;
        await query(stack.outputs.primaryUrl, `INSERT INTO ${TABLE} VALUES (2001, $1)`, [canary]);
        await backupScript(stack, "now", "incr");
        await backupScript(stack, "check");
        const image = (await docker("inspect", "--format", "{{.Config.Image}}", `${stack.clusterName}-backup`)).trim();
        // Every file of the repository: its first eight bytes, and whether the canary is in it.
        const scan = await docker(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            `${stack.clusterName}-backup-data:/repo:ro`,
            "--entrypoint",
            "sh",
            image,
            "-c",
            `find /repo -type f | sort | while read -r f; do printf '%s %s\\n' "$(head -c 8 "$f")" "$f"; done; grep -rl -- '${canary}' /repo || true`,
        );
        const lines = scan.trim().split("\n");
        const files = lines.filter((l) => l.includes(" /repo/"));
        expect(files.length).toBeGreaterThan(10);
        expect(files.filter((l) => !l.startsWith("Salted__ "))).toEqual([]);
        expect(lines.filter((l) => l.startsWith("/repo/"))).toEqual([]);

        const wrong = (await docker("exec", `${stack.clusterName}-backup`, "cat", "/etc/obcms/pgbackrest-restore.conf")).replace(
            /^repo1-cipher-pass=.*$/m,
            "repo1-cipher-pass=not-the-passphrase",
        );
        const failed = await run(
            "sh",
            [
                "-c",
                `printf '%s' "$CONF" | docker run -i --rm --network none --user 999:999 -v ${stack.clusterName}-backup-data:/var/lib/pgbackrest:ro ` +
                    `--entrypoint sh ${image} -c 'cat > /tmp/p.conf && pgbackrest --config=/tmp/p.conf --stanza=main restore; echo "exit $?"; ls /var/lib/postgresql/data/pgdata | wc -l'`,
            ],
            { env: { ...process.env, CONF: wrong } },
        );
        // The encrypted backup.info does not decrypt to an info file: no backup can be found, nothing is written.
        const output = failed.stdout + failed.stderr;
        expect(output).toMatch(
            /WARN: repo1: \[FormatError\] unable to load info file '\/var\/lib\/pgbackrest\/backup\/main\/backup\.info'/,
        );
        expect(output).toMatch(/ERROR: \[075\]: no backup set found to restore\n/);
        expect(failed.stdout).toMatch(/\nexit 75\n0\n$/);
    }, 300_000);

    it("takes a consistent backup while writes run", async () => {
        await createWritesTable(stack);
        const writer = new Writer(stack.outputs.databaseUrl, 1, 120, 5);
        let report: WriterReport;
        try {
            await writer.waitForCommits(51, 30_000);
            await backupScript(stack, "now", "incr");
            // The backup's stop point is behind us: a commit acknowledged from now on is not in it.
            await writer.waitForCommits(writer.commits + 1, 30_000);
        } finally {
            // Also when the backup fails: a writer left running would write into the next tests.
            report = await writer.stop();
        }
        const { backup } = await info(stack);
        const label = backup[backup.length - 1].label;
        await restoreScratch("underload", label);
        const restored = (await scratchValue(stack, "underload", `SELECT string_agg(id::text, ',' ORDER BY id) FROM ${WRITES_TABLE}`))
            .split(",")
            .map(Number);
        // The backup ends in the middle of the writes: what it holds is exactly the writer's first rows, without a hole.
        expect(restored.length).toBeGreaterThan(50);
        expect(restored.length).toBeLessThan(report.committed.length);
        expect(restored).toEqual(report.committed.slice(0, restored.length));
        console.log(
            `backup ${label} under load: the first ${restored.length} of ${report.committed.length} acknowledged rows, in order, none missing`,
        );
    }, 300_000);

    it("survives a killed pgBackRest server without a PostgreSQL restart", async () => {
        const primary = `${stack.clusterName}-primary`;
        const [{ started }] = await query(stack.outputs.primaryUrl, "SELECT pg_postmaster_start_time()::text AS started");
        const servers = () =>
            docker(
                "exec",
                primary,
                "sh",
                "-c",
                `for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null | grep -q '^pgbackrest .*server $' && echo \${d#/proc/}; done; true`,
            );
        const before = (await servers()).trim().split("\n").filter(Boolean);
        expect(before.length).toBeGreaterThan(0);
        await docker("exec", primary, "kill", "-KILL", ...before);
        await waitFor("a new pgBackRest server", 10_000, async () => {
            const now = (await servers()).trim().split("\n").filter(Boolean);
            return now.length > 0 && now.every((pid) => !before.includes(pid)) ? now : undefined;
        });
        const [after] = await query(stack.outputs.primaryUrl, "SELECT pg_postmaster_start_time()::text AS started");
        expect(after.started).toBe(started);
        expect(await containerLog(`${stack.clusterName}-primary`)).not.toMatch(/terminated by signal|crash/);
        await expect(backupScript(stack, "check")).resolves.toBeDefined();
    }, 120_000);

    it("restores the whole cluster in place to a point in time, replicas cloned afresh", async () => {
        await query(stack.outputs.primaryUrl, `DELETE FROM ${TABLE}`);
        await insertBatch(stack, 1, 300, "kept");
        const target = await primaryNow(stack);
        const kept = await primaryDigest(stack);
        await insertBatch(stack, 301, 600, "undone");
        await backupScript(stack, "restore-pitr", target);
        await stack.refreshAddresses();
        expect(await primaryDigest(stack)).toBe(kept);
        await waitFor("the replica streaming again and caught up", 120_000, async () => {
            const [{ lsn }] = await query(stack.outputs.primaryUrl, "SELECT pg_current_wal_lsn()::text AS lsn");
            const [row] = await query(stack.outputs.replicaUrls[0], "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done", [lsn]);
            return row.done ? true : undefined;
        });
        const [replica] = await query(stack.outputs.replicaUrls[0], `SELECT (${DIGEST_SQL}) AS digest`);
        expect(replica.digest).toBe(kept);
        // The restored cluster archives and backs up on its new timeline.
        await expect(backupScript(stack, "check")).resolves.toBeDefined();
        await backupScript(stack, "now", "incr");
    }, 600_000);
});

describe("the backup schedule on the staging stack", () => {
    let stack: StartedStack;

    beforeAll(async () => {
        // Short intervals, to watch the schedule; staging keeps one full backup.
        stack = await startStack("staging", { overrides: { ...NO_GRAFANA, backupFullEvery: "60s", backupDiffEvery: "20s" } });
    }, 900_000);

    afterAll(async () => {
        await stack?.stop();
    }, 180_000);

    it("runs differentials and fulls on time, logs each run, expires by retention, and exposes the metrics to Prometheus", async () => {
        const initial = stack.outputs.lastBackupLabel;
        const log = () => containerLog(`${stack.clusterName}-backup`);
        const secondFull = await waitFor("a scheduled diff, then a second full", 240_000, async () => {
            const text = await log();
            const diff = new RegExp(`end type=diff label=${initial}_\\d{8}-\\d{6}D duration=\\d+s outcome=success`).exec(text);
            const full = /end type=full label=(\d{8}-\d{6}F) duration=\d+s outcome=success/g;
            const fulls = [...text.matchAll(full)].map((m) => m[1]).filter((label) => label !== initial);
            return diff && fulls.length > 0 ? fulls[0] : undefined;
        });
        expect(await log()).toMatch(/obcms-backup: start type=diff\n/);
        // Retention 1: the new full replaced the first one and its differentials.
        const { backup } = await info(stack);
        expect(backup[0].label).toBe(secondFull);
        expect(backup.every((b) => b.label.startsWith(secondFull))).toBe(true);

        const prometheus = new Prometheus(stack.outputs.prometheusUrl!);
        const newestFull = Math.max(...backup.filter((b) => b.type === "full").map((b) => b.timestamp.stop));
        await waitFor("the new full backup's time in Prometheus", 60_000, async () => {
            const found = await prometheus.query('obcms_backup_last_success_timestamp_seconds{job="backup", type="full"}');
            return found.length === 1 && Number(found[0].value[1]) >= newestFull ? found : undefined;
        });
        const [check] = await prometheus.query('obcms_backup_archive_check_success{job="backup"}');
        expect(check.value[1]).toBe("1");
        const [wal] = await prometheus.query('time() - obcms_backup_wal_archived_timestamp_seconds{job="backup"}');
        expect(Number(wal.value[1])).toBeLessThan(300);
        expect((await prometheus.alerts()).filter((a) => /^(Backup|WalArchiv)/.test(a.labels.alertname))).toEqual([]);
    }, 360_000);

    it(
        "lets a running backup finish when the container is stopped, within its grace",
        async () => {
            const backupContainer = `${stack.clusterName}-backup`;
            // Enough changed data that the next differential runs for a few seconds.
            await query(
                stack.outputs.primaryUrl,
                "CREATE TABLE backup_filler AS SELECT g, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 200000) g",
            );
            const runs = (text: string, word: "start" | "end") =>
                text.split("\n").filter((line) => line.includes(`obcms-backup: ${word} type=`)).length;
            await waitFor("a scheduled backup in progress", 120_000, async () => {
                const text = await containerLog(backupContainer);
                return runs(text, "start") > runs(text, "end") ? true : undefined;
            });
            const started = Date.now();
            // No -t: the container's own stop timeout, the grace the provider's delete uses too.
            await docker("stop", backupContainer);
            const seconds = (Date.now() - started) / 1000;
            const text = await containerLog(backupContainer);
            const lines = text.split("\n").filter((line) => line.includes("obcms-backup:"));
            console.log(
                `backup container stopped in ${seconds.toFixed(1)} s with a backup running; last lines:\n${lines.slice(-3).join("\n")}`,
            );
            expect(lines.at(-2)).toMatch(/obcms-backup: end type=(diff|full) label=\S+ duration=\d+s outcome=success$/);
            expect(lines.at(-1)).toMatch(/obcms-backup: stop requested: no further backups$/);
            expect((await docker("inspect", "--format", "{{.State.ExitCode}}", backupContainer)).trim()).toBe("0");
            // The scheduler exits once the backup is done, without waiting out its 10 s tick.
            const at = (line: string) => Date.parse(line.split(" ")[0]);
            expect(at(lines.at(-1)!) - at(lines.at(-2)!)).toBeLessThanOrEqual(2_000);
            // A slow backup may use the whole grace (its WAL can wait on the archiver); the test gives it that, and more.
        },
        (BACKUP_STOP_GRACE_SECONDS + 180) * 1000,
    );
});

/**
 * The figures for README: a primary holding `BACKUP_MEASURE_GB` GB (pgbench
 * tables), a full backup from the replica and a restore into a scratch
 * container, timed and sized. Off in CI; run with
 * `BACKUP_MEASURE_GB=1 npx vitest run test/integration/backup.test.ts -t figures`.
 */
describe.runIf(process.env.BACKUP_MEASURE_GB)("figures for a large primary", () => {
    const gb = Number(process.env.BACKUP_MEASURE_GB);
    let stack: StartedStack;

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { ...NO_GRAFANA, monitoringEnabled: false } });
    }, 900_000);

    afterAll(async () => {
        await backupScript(stack, "drop-scratch", "figures").catch(() => undefined);
        await stack?.stop();
    }, 300_000);

    it("backs up and restores the primary", async () => {
        // pgbench's scale 1 is about 15 MB of tables and indexes.
        await docker(
            "exec",
            `${stack.clusterName}-primary`,
            "pgbench",
            "-i",
            "-q",
            "-s",
            String(Math.round(gb * 68)),
            "-d",
            "obcms",
            "-U",
            "postgres",
        );
        const [{ size, bytes }] = await query(
            stack.outputs.primaryUrl,
            "SELECT pg_size_pretty(pg_database_size('obcms')) AS size, pg_database_size('obcms')::bigint AS bytes",
        );
        const timed = async (what: () => Promise<unknown>) => {
            const started = Date.now();
            await what();
            return (Date.now() - started) / 1000;
        };
        const backupSeconds = await timed(() => backupScript(stack, "now", "full"));
        const { backup } = await info(stack);
        const last = backup[backup.length - 1];
        const restoreSeconds = await timed(() => backupScript(stack, "restore-scratch", "figures"));
        const digest = "SELECT sum(abalance)::text || '|' || count(*)::text FROM pgbench_accounts";
        const [primary] = await query(stack.outputs.primaryUrl, `SELECT (${digest}) AS digest`);
        expect(await scratchValue(stack, "figures", digest)).toBe(primary.digest);
        console.log(
            `figures: database obcms ${size} (${bytes} bytes); full backup ${last.label} from the replica in ${backupSeconds.toFixed(1)} s, ` +
                `${(last.info.size / 2 ** 20).toFixed(0)} MiB of files, ${(last.info.repository.size / 2 ** 20).toFixed(0)} MiB in the repository (zstd, encrypted); ` +
                `restore into a scratch container and recovery in ${restoreSeconds.toFixed(1)} s`,
        );
    }, 3_600_000);
});
