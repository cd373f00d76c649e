// Backups and restores on the staging stack brought up for real: the first
// full backup taken from the replica at creation, continuous WAL archiving by
// whichever member leads, encryption, point-in-time and full restores into
// scratch containers through scripts/backup.sh (the operators' commands), a
// backup under write load, a killed pgBackRest server, members created from
// the repository, a failover followed by a backup and a restore, an in-place
// point-in-time restore of the cluster, and the schedule with retention.
// Who leads is asked of Patroni (harness/patroni.ts), never read from a name.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_STOP_GRACE_SECONDS } from "../../components/backup";
import { PGDATA, VOLUME_DIR } from "../../components/render/paths";
import { type StartedStack, startStack } from "../../harness/cluster";
import { clusterStatus, type MemberStatus, waitForHealthyCluster, waitForLeader } from "../../harness/patroni";
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
/** How long a test waits for Patroni to name a leader, or for every member to stream again. */
const CLUSTER_WAIT_MS = 300_000;

interface BackupInfo {
    label: string;
    type: "full" | "diff" | "incr";
    timestamp: { start: number; stop: number };
    lsn: { start: string; stop: string };
    info: { size: number; repository: { size: number; delta: number } };
}

/** Runs scripts/backup.sh against the stack, as an operator would. */
async function backupScript(stack: StartedStack, ...args: string[]): Promise<string> {
    try {
        const { stdout } = await run(SCRIPT, ["-c", stack.clusterName, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 900_000 });
        return stdout;
    } catch (error) {
        // What the script and pgBackRest said, not only that it failed.
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        throw new Error(`backup.sh ${args.join(" ")} failed: ${(error as Error).message}\n${stdout ?? ""}\n${stderr ?? ""}`);
    }
}

async function pgbackrest(stack: StartedStack, ...args: string[]): Promise<string> {
    return docker("exec", `${stack.clusterName}-backup`, "pgbackrest", `--config=${CONF}`, "--stanza=main", ...args);
}

async function info(stack: StartedStack): Promise<{ backup: BackupInfo[]; archive: Array<{ id: string; max: string }> }> {
    return JSON.parse(await pgbackrest(stack, "info", "--output=json"))[0];
}

/** The timeline history files in the repository's WAL archive, e.g. `00000002.history`. */
async function archivedHistoryFiles(stack: StartedStack): Promise<string[]> {
    const { archive } = await info(stack);
    const listing = await docker(
        "exec",
        `${stack.clusterName}-backup`,
        "pgbackrest",
        `--config=${CONF}`,
        "repo-ls",
        "--output=json",
        `archive/main/${archive[archive.length - 1].id}`,
    );
    return Object.keys(JSON.parse(listing))
        .filter((name) => name.endsWith(".history"))
        .sort();
}

/** psql on the scratch container's local socket; one value. */
async function scratchValue(stack: StartedStack, name: string, sql: string): Promise<string> {
    return (await docker("exec", `${stack.clusterName}-scratch-${name}`, "psql", "-X", "-A", "-t", "-d", "obcms", "-c", sql)).trim();
}

/** The member that leads now, as Patroni says. */
function leader(stack: StartedStack): Promise<MemberStatus> {
    return waitForLeader(stack, CLUSTER_WAIT_MS);
}

// Each test asks Patroni for the leader once and passes its URL on: a look-up between two
// statements would put seconds between them.
async function digestAt(url: string): Promise<string> {
    const [row] = await query(url, `SELECT (${DIGEST_SQL}) AS digest`);
    return row.digest;
}

async function insertBatch(url: string, from: number, to: number, note: string): Promise<void> {
    await query(url, `INSERT INTO ${TABLE} SELECT g, $1 FROM generate_series($2::int, $3::int) g`, [note, from, to]);
}

/** The server's clock, as a recovery target with its offset. */
async function clockAt(url: string): Promise<string> {
    const [row] = await query(url, "SELECT clock_timestamp()::text AS now");
    return row.now;
}

/** Every member streaming again and caught up with the leader; each member's digest, the leader's first. */
async function digestsWhenCaughtUp(stack: StartedStack): Promise<Array<{ name: string; digest: string }>> {
    const members = await waitForHealthyCluster(stack, CLUSTER_WAIT_MS);
    const lead = members.find((m) => m.role === "leader")!;
    const [{ lsn }] = await query(lead.url, "SELECT pg_current_wal_lsn()::text AS lsn");
    for (const replica of members.filter((m) => m.role === "replica")) {
        await waitFor(`${replica.name} to replay the leader's WAL`, CLUSTER_WAIT_MS, async () => {
            const [row] = await query(replica.url, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done", [lsn]);
            return row.done ? true : undefined;
        });
    }
    const ordered = [lead, ...members.filter((m) => m !== lead)];
    return Promise.all(
        ordered.map(async (m) => ({ name: m.name, digest: (await query(m.url, `SELECT (${DIGEST_SQL}) AS digest`))[0].digest })),
    );
}

/** Seconds between two Patroni log lines' timestamps (`2026-12-05 07:08:52,931 INFO: ...`, UTC). */
function patroniTime(line: string): number {
    const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3}) /.exec(line);
    if (!match) {
        throw new Error(`not a Patroni log line: ${line}`);
    }
    return Date.parse(`${match[1]}T${match[2]}.${match[3]}Z`);
}

/** A PostgreSQL log line's time, in ms; only differences count (the line's zone is the cluster's). */
function postgresTime(line: string): number {
    const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) /.exec(line);
    if (!match) {
        throw new Error(`not a PostgreSQL log line: ${line}`);
    }
    return Date.parse(`${match[1]}T${match[2]}Z`);
}

/** A container's log since `since` (an ISO time), both streams. */
async function logSince(container: string, since: string): Promise<string> {
    const { stdout, stderr } = await run("docker", ["logs", "--since", since, container], { maxBuffer: 64 * 1024 * 1024 });
    return stdout + stderr;
}

/** The history file that starts the timeline the member at `url` writes on, e.g. `00000002.history`. */
async function timelineHistoryFile(url: string): Promise<string> {
    const [{ timeline }] = await query(url, "SELECT substring(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline");
    return `${timeline}.history`;
}

/**
 * Empties the member's data directory while it is stopped and starts it
 * again, so its Patroni creates it anew. Returns the member's log from that
 * start on, once every member streams again, and how long that took.
 */
async function recreateMember(stack: StartedStack, member: MemberStatus, image: string): Promise<{ log: string; seconds: number }> {
    await docker("stop", member.container);
    await docker(
        "run",
        "--rm",
        "--user",
        "999:999",
        "-v",
        `${member.container}-data:${VOLUME_DIR}`,
        "--entrypoint",
        "rm",
        image,
        "-rf",
        PGDATA,
    );
    const since = new Date();
    await docker("start", member.container);
    await waitForHealthyCluster(stack, CLUSTER_WAIT_MS);
    return { log: await logSince(member.container, since.toISOString()), seconds: (Date.now() - since.getTime()) / 1000 };
}

/** From Patroni's "trying to bootstrap" to "replica has been created using <method>", in seconds. */
function creationSeconds(log: string, method: string): number {
    const lines = log.split("\n");
    const start = lines.find((l) => / INFO: trying to bootstrap from /.test(l));
    const end = lines.find((l) => l.includes(`INFO: replica has been created using ${method}`));
    if (!start || !end) {
        throw new Error(`no creation using ${method} in the log:\n${lines.filter((l) => / (INFO|ERROR): /.test(l)).join("\n")}`);
    }
    return (patroniTime(end) - patroniTime(start)) / 1000;
}

describe("backups and restores on the staging stack", () => {
    let stack: StartedStack;
    let image: string;
    const scratches: string[] = [];

    async function restoreScratch(name: string, target?: string): Promise<void> {
        scratches.push(name);
        await backupScript(stack, "restore-scratch", name, ...(target ? [target] : []));
    }

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: NO_GRAFANA });
        image = (await docker("inspect", "--format", "{{.Config.Image}}", `${stack.clusterName}-backup`)).trim();
        await query((await leader(stack)).url, `CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text NOT NULL)`);
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

    it("created the replica at bring-up with pg_basebackup, the repository host not there yet, without waiting on it", async () => {
        const replica = (await clusterStatus(stack)).find((m) => m.role === "replica")!;
        const log = await containerLog(replica.container);
        expect(log).toContain("no repository host yet: the member is cloned instead\n");
        // The failed method cost no time: pgBackRest is not even started.
        expect(creationSeconds(log, "basebackup")).toBeLessThan(30);
        expect(log).not.toMatch(/restore command begin/);
        console.log(
            `bring-up: replica cloned with pg_basebackup in ${creationSeconds(log, "basebackup").toFixed(1)} s after the pgbackrest method declined`,
        );
    });

    it("archives WAL continuously: a switched segment reaches the repository within seconds", async () => {
        const url = (await leader(stack)).url;
        const [{ segment }] = await query(url, "SELECT pg_walfile_name(pg_current_wal_lsn()) AS segment");
        await query(url, `INSERT INTO ${TABLE} VALUES (0, 'switch')`);
        const started = Date.now();
        await query(url, "SELECT pg_switch_wal()");
        await waitFor("the switched segment in the repository", 30_000, async () => {
            const { archive } = await info(stack);
            return archive[0].max >= segment ? true : undefined;
        });
        const seconds = (Date.now() - started) / 1000;
        console.log(`WAL segment ${segment} archived ${seconds.toFixed(2)} s after the switch`);
        expect(seconds).toBeLessThan(10);
        await query(url, `DELETE FROM ${TABLE}`);
    });

    it("restores to a point in time: exactly the rows committed before it", async () => {
        const url = (await leader(stack)).url;
        await insertBatch(url, 1, 500, "before");
        const target = await clockAt(url);
        const digestAtTarget = await digestAt(url);
        const [{ at }] = await query(url, `INSERT INTO ${TABLE} VALUES (501, 'after') RETURNING clock_timestamp()::text AS at`);
        await insertBatch(url, 502, 1000, "after");
        await backupScript(stack, "check");
        await restoreScratch("pitr", target);
        expect(await scratchValue(stack, "pitr", DIGEST_SQL)).toBe(digestAtTarget);
        expect(await scratchValue(stack, "pitr", `SELECT count(*) FROM ${TABLE} WHERE note = 'after'`)).toBe("0");
        const gapMs =
            new Date(at.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")).getTime() -
            new Date(target.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")).getTime();
        console.log(`PITR: target ${target}; the first later commit, ${gapMs} ms after it, was left out; 500 rows before it restored`);
    }, 300_000);

    it("restores the latest backup and the archived WAL into a fresh container that matches the leader", async () => {
        await backupScript(stack, "now", "diff");
        const url = (await leader(stack)).url;
        await insertBatch(url, 1001, 1500, "after the backup");
        await backupScript(stack, "check");
        await restoreScratch("latest");
        expect(await scratchValue(stack, "latest", DIGEST_SQL)).toBe(await digestAt(url));
    }, 300_000);

    it("keeps the repository encrypted, and a wrong passphrase fails clearly", async () => {
        const canary = `obcms-plaintext-canary-${Date.now()}`;
        await query((await leader(stack)).url, `INSERT INTO ${TABLE} VALUES (2001, $1)`, [canary]);
        await backupScript(stack, "now", "incr");
        await backupScript(stack, "check");
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

    it("survives a killed pgBackRest server on the leader without a PostgreSQL restart", async () => {
        const lead = await leader(stack);
        const [{ started }] = await query(lead.url, "SELECT pg_postmaster_start_time()::text AS started");
        const servers = () =>
            docker(
                "exec",
                lead.container,
                "sh",
                "-c",
                `for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null | grep -q '^pgbackrest .*server $' && echo \${d#/proc/}; done; true`,
            );
        const before = (await servers()).trim().split("\n").filter(Boolean);
        expect(before.length).toBeGreaterThan(0);
        await docker("exec", lead.container, "kill", "-KILL", ...before);
        await waitFor("a new pgBackRest server", 10_000, async () => {
            const now = (await servers()).trim().split("\n").filter(Boolean);
            return now.length > 0 && now.every((pid) => !before.includes(pid)) ? now : undefined;
        });
        const [after] = await query(lead.url, "SELECT pg_postmaster_start_time()::text AS started");
        expect(after.started).toBe(started);
        expect(await containerLog(lead.container)).not.toMatch(/terminated by signal|crash/);
        await expect(backupScript(stack, "check")).resolves.toBeDefined();
    }, 120_000);

    it("re-creates a member from the repository, the leader serving no base backup, and from the leader while the repository host is away", async () => {
        // Enough data that copying it shows: about 100 MB, in a backup the new member restores.
        const lead = await leader(stack);
        await query(lead.url, "CREATE TABLE backup_filler AS SELECT g, repeat(md5(g::text), 10) AS pad FROM generate_series(1, 300000) g");
        await backupScript(stack, "now", "incr");
        const { backup } = await info(stack);
        const newest = backup[backup.length - 1];
        // Written after the backup: the new member reaches it through the archive and the stream.
        await insertBatch(lead.url, 3001, 3100, "after the member's backup");
        await backupScript(stack, "check");

        const replica = (await clusterStatus(stack)).find((m) => m.role === "replica")!;
        // pg_basebackup always has the leader checkpoint first; a restore from the repository does not touch it.
        const requestedCheckpoints = async () =>
            (await query(lead.url, "SELECT num_requested::int AS n FROM pg_stat_checkpointer"))[0].n as number;
        const checkpointsBefore = await requestedCheckpoints();
        const restored = await recreateMember(stack, replica, image);
        const restoredLog = restored.log;
        expect(restoredLog).toContain("INFO: replica has been created using pgbackrest");
        expect(restoredLog).not.toContain("replica has been created using basebackup");
        expect(restoredLog).toMatch(new RegExp(`repo1: restore backup set ${newest.label}, recovery will start at`));
        expect(await requestedCheckpoints()).toBe(checkpointsBefore);
        // The backup label the member started from is pgBackRest's, at the backup's start.
        const label = await docker("exec", replica.container, "cat", `${PGDATA}/backup_label.old`);
        expect(label).toContain(`START WAL LOCATION: ${newest.lsn.start} `);
        expect(label).toMatch(/^LABEL: pgBackRest backup started at /m);
        // It replayed the archive past the backup, then streamed.
        expect(restoredLog).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
        const fromRepository = creationSeconds(restoredLog, "pgbackrest");

        // Without the repository host the same member is cloned from the leader.
        await docker("stop", `${stack.clusterName}-backup`);
        let cloned: { log: string; seconds: number };
        try {
            cloned = await recreateMember(stack, replica, image);
        } finally {
            await docker("start", `${stack.clusterName}-backup`);
        }
        expect(cloned.log).toContain("no repository host yet: the member is cloned instead\n");
        expect(cloned.log).toContain("INFO: replica has been created using basebackup");
        const fromLeader = creationSeconds(cloned.log, "basebackup");
        const digests = await digestsWhenCaughtUp(stack);
        expect(new Set(digests.map((d) => d.digest)).size).toBe(1);
        console.log(
            `member ${replica.name} re-created (database ${(await query(lead.url, "SELECT pg_size_pretty(pg_database_size('obcms')) AS s"))[0].s}): ` +
                `from the repository (backup ${newest.label}) in ${fromRepository.toFixed(1)} s, streaming ${restored.seconds.toFixed(1)} s after its start; ` +
                `with pg_basebackup from the leader in ${fromLeader.toFixed(1)} s, streaming after ${cloned.seconds.toFixed(1)} s`,
        );
        await query(lead.url, "DROP TABLE backup_filler");
        await waitFor("the backup container healthy again", 120_000, async () =>
            (await docker("inspect", "--format", "{{.State.Health.Status}}", `${stack.clusterName}-backup`)).trim() === "healthy"
                ? true
                : undefined,
        );
    }, 1_200_000);

    it("after a failover the new leader archives its timeline, a backup comes from a replica, and a restore holds the rows written since", async () => {
        const old = await leader(stack);
        await insertBatch(old.url, 4001, 4100, "before the failover");
        const historyBefore = await archivedHistoryFiles(stack);
        // The leader dies: the replica, whose streaming stops, runs restore_command until Patroni promotes it.
        const since = new Date().toISOString();
        await docker("kill", old.container);
        const promoted = await waitForLeader(stack, CLUSTER_WAIT_MS, old.name);
        // Patroni reports the leader once it holds the leader key, which can be before PostgreSQL
        // has left recovery and logged it.
        const promotionLines = ["received promote request", "redo done at", "selected new timeline ID"];
        const promotion = await waitFor("the promoted member's log to show its promotion", 60_000, async () => {
            const lines = (await logSince(promoted.container, since)).split("\n").filter((l) => / LOG: {2}/.test(l));
            return promotionLines.every((what) => lines.some((l) => l.includes(what))) ? lines : undefined;
        });
        const at = (what: string) => postgresTime(promotion.find((l) => l.includes(what))!);
        const requestToTimeline = (at("selected new timeline ID") - at("received promote request")) / 1000;
        console.log(
            `promotion on ${promoted.name} with restore_command (synchronous archive-get): promote request to redo done ` +
                `${((at("redo done at") - at("received promote request")) / 1000).toFixed(3)} s, to the new timeline ${requestToTimeline.toFixed(3)} s`,
        );
        // A few archive-get calls (the last segment, the next timeline's history file), not a stall on the repository.
        expect(requestToTimeline).toBeLessThan(5);

        // "selected new timeline ID" comes before the end-of-recovery checkpoint, and until that is done a
        // new session is still read-only (seen on a slow machine: "cannot execute INSERT in a read-only transaction").
        await waitFor("the promoted member out of recovery", 60_000, async () =>
            (await query(promoted.url, "SELECT pg_is_in_recovery() AS recovering"))[0].recovering === false ? true : undefined,
        );
        await insertBatch(promoted.url, 4101, 4200, "after the failover");
        // The new leader archives its timeline's history file first.
        const historyFile = await timelineHistoryFile(promoted.url);
        await waitFor("the new timeline's history file in the repository", 120_000, async () =>
            (await archivedHistoryFiles(stack)).includes(historyFile) ? true : undefined,
        );
        expect(await archivedHistoryFiles(stack)).toEqual([...historyBefore, historyFile]);
        // The old leader rejoins as a replica (pgbackrest check lists every member's data directory,
        // so it passes only with all of them up): the archive is proven on the new timeline, and
        // backups come from the old leader now.
        await docker("start", old.container);
        await digestsWhenCaughtUp(stack);
        await backupScript(stack, "check");
        // pgBackRest's own lines: the files came from the standby, whichever member that is now.
        const backupLog = await backupScript(stack, "now", "incr");
        expect(backupLog).toMatch(/wait for replay on the standby to reach/);
        expect(backupLog).toMatch(/backup start archive = [0-9A-F]{24}/);
        const { backup } = await info(stack);
        expect(backup[backup.length - 1].label).toMatch(/I$/);
        await insertBatch(promoted.url, 4201, 4300, "after the backup");
        await backupScript(stack, "check");
        await restoreScratch("failover");
        expect(await scratchValue(stack, "failover", DIGEST_SQL)).toBe(await digestAt(promoted.url));
        expect(await scratchValue(stack, "failover", `SELECT count(*) FROM ${TABLE} WHERE id BETWEEN 4101 AND 4300`)).toBe("200");
    }, 900_000);

    it("restores the whole cluster in place to a point in time, every other member created afresh", async () => {
        const before = await leader(stack);
        await query(before.url, `DELETE FROM ${TABLE}`);
        await insertBatch(before.url, 1, 300, "kept");
        const target = await clockAt(before.url);
        const kept = await digestAt(before.url);
        await insertBatch(before.url, 301, 600, "undone");
        const historyBefore = await archivedHistoryFiles(stack);
        const started = Date.now();
        const output = await backupScript(stack, "restore-pitr", target);
        const seconds = (Date.now() - started) / 1000;
        await stack.refreshAddresses();
        const digests = await digestsWhenCaughtUp(stack);
        expect(digests).toEqual(stack.topology.members.map(() => expect.objectContaining({ digest: kept })));
        const after = await leader(stack);
        // The member that led was restored in place and leads the new cluster, on a new timeline in the repository.
        expect(after.name).toBe(before.name);
        const historyFile = await timelineHistoryFile(after.url);
        expect(output).toContain(
            `cluster restored to ${target}; ${after.container} leads on timeline ${Number.parseInt(historyFile, 16)}\n`,
        );
        expect(historyBefore).not.toContain(historyFile);
        expect(await archivedHistoryFiles(stack)).toContain(historyFile);
        // The restored cluster archives and backs up on its new timeline.
        await expect(backupScript(stack, "check")).resolves.toBeDefined();
        await backupScript(stack, "now", "incr");
        console.log(`restore-pitr to ${target}: ${seconds.toFixed(1)} s until every member streamed again`);
    }, 1_200_000);
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
                (await waitForLeader(stack, CLUSTER_WAIT_MS)).url,
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
 * The figures for README: a leader holding `BACKUP_MEASURE_GB` GB (pgbench
 * tables), a full backup from the replica and a restore into a scratch
 * container, timed and sized. Off in CI; run with
 * `BACKUP_MEASURE_GB=1 npx vitest run test/integration/backup.test.ts -t figures`.
 */
describe.runIf(process.env.BACKUP_MEASURE_GB)("figures for a large database", () => {
    const gb = Number(process.env.BACKUP_MEASURE_GB);
    let stack: StartedStack;

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { ...NO_GRAFANA, monitoringEnabled: false } });
    }, 900_000);

    afterAll(async () => {
        await backupScript(stack, "drop-scratch", "figures").catch(() => undefined);
        await stack?.stop();
    }, 300_000);

    it("backs up and restores the leader's data", async () => {
        const lead = await waitForLeader(stack, CLUSTER_WAIT_MS);
        // pgbench's scale 1 is about 15 MB of tables and indexes.
        await docker("exec", lead.container, "pgbench", "-i", "-q", "-s", String(Math.round(gb * 68)), "-d", "obcms", "-U", "postgres");
        const [{ size, bytes }] = await query(
            lead.url,
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
        const [leaderRow] = await query(lead.url, `SELECT (${digest}) AS digest`);
        expect(await scratchValue(stack, "figures", digest)).toBe(leaderRow.digest);
        console.log(
            `figures: database obcms ${size} (${bytes} bytes); full backup ${last.label} from the replica in ${backupSeconds.toFixed(1)} s, ` +
                `${(last.info.size / 2 ** 20).toFixed(0)} MiB of files, ${(last.info.repository.size / 2 ** 20).toFixed(0)} MiB in the repository (zstd, encrypted); ` +
                `restore into a scratch container and recovery in ${restoreSeconds.toFixed(1)} s`,
        );
    }, 3_600_000);
});
