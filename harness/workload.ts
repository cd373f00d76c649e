// Load and consistency tools for the reliability tests: a writer that keeps
// committing numbered rows through PgBouncer and remembers which commits
// succeeded, a checksum of those rows on every node, and one-off containers on
// the cluster network (pgbench, psql) run from the stack's own image.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { Background } from "./background";
import type { StartedStack } from "./cluster";
import { waitForHealthyCluster, waitForLeader } from "./patroni";
import { clientConfig, containerLog, docker, query, waitFor } from "./sql";

const run = promisify(execFile);

export const WRITES_TABLE = "reliability_writes";

export interface WriterReport {
    /** Ids whose COMMIT returned successfully. */
    readonly committed: number[];
    readonly failures: number;
    /** Longest stretch without a successful commit, in seconds. */
    readonly longestGapSeconds: number;
    readonly errors: string[];
}

/**
 * Commits one numbered row at a time through `url` until stopped or until
 * `maxSeconds`, reconnecting after any error, so that a fault shows as a gap
 * in successful commits and never as a lost acknowledged row.
 */
export class Writer {
    private readonly committed: number[] = [];
    private readonly errors: string[] = [];
    private readonly task: Background<WriterReport>;

    /** Ids start at `firstId`, so writers run one after another never collide. */
    constructor(url: string, firstId: number, maxSeconds: number, pauseMs = 20) {
        this.task = new Background((running) => this.write(url, firstId, maxSeconds, pauseMs, running));
    }

    /** Commits acknowledged so far. */
    get commits(): number {
        return this.committed.length;
    }

    /**
     * Waits until `count` commits in all have been acknowledged: writes under
     * way before a fault, or going again after it. Fails after `timeoutMs`
     * with the writer's last errors.
     */
    async waitForCommits(count: number, timeoutMs: number): Promise<void> {
        await waitFor(`${count} acknowledged commits`, timeoutMs, async () => (this.committed.length >= count ? true : undefined)).catch(
            (error: Error) => {
                throw new Error(`${error.message} (${this.committed.length} so far; errors: ${this.errors.slice(-5).join(" | ")})`);
            },
        );
    }

    private async write(url: string, firstId: number, maxSeconds: number, pauseMs: number, running: () => boolean): Promise<WriterReport> {
        const deadline = Date.now() + maxSeconds * 1000;
        const { committed, errors } = this;
        let failures = 0;
        let lastCommit = Date.now();
        let longestGap = 0;
        let client: pg.Client | undefined;
        let next = firstId;
        while (running() && Date.now() < deadline) {
            const id = next++;
            try {
                if (!client) {
                    // A statement on a connection whose server vanished without a reset would otherwise wait
                    // for TCP to give up (minutes): it fails, and the writer reconnects.
                    client = new pg.Client({ ...clientConfig(url), connectionTimeoutMillis: 2_000, query_timeout: 60_000 });
                    client.on("error", () => undefined);
                    await client.connect();
                }
                await client.query("BEGIN");
                await client.query(`INSERT INTO ${WRITES_TABLE} (id) VALUES ($1)`, [id]);
                await client.query("COMMIT");
                committed.push(id);
                const now = Date.now();
                longestGap = Math.max(longestGap, now - lastCommit);
                lastCommit = now;
            } catch (error) {
                failures++;
                if (errors.length < 20) {
                    errors.push((error as Error).message);
                }
                await client?.end().catch(() => undefined);
                client = undefined;
                await new Promise((resolve) => setTimeout(resolve, 200));
            }
            await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
        await client?.end().catch(() => undefined);
        longestGap = Math.max(longestGap, Date.now() - lastCommit);
        return { committed: [...committed], failures, longestGapSeconds: longestGap / 1000, errors: [...errors] };
    }

    /** Stops writing and returns the report; throws if the writer itself failed. */
    async stop(): Promise<WriterReport> {
        return this.task.stop();
    }
}

/**
 * The writers' table. Each row records, as CloudNativePG's failover test
 * does, the timeline it was committed on (from the WAL file name) and when,
 * so a failover's write gap is read from the rows themselves.
 */
export async function createWritesTable(stack: StartedStack): Promise<void> {
    await query(stack.outputs.databaseUrl, `DROP TABLE IF EXISTS ${WRITES_TABLE}`);
    await query(
        stack.outputs.databaseUrl,
        `CREATE TABLE ${WRITES_TABLE} (
            id int PRIMARY KEY,
            timeline int NOT NULL DEFAULT ('x' || substring(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int,
            committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )`,
    );
}

export interface TimelineSpan {
    readonly timeline: number;
    readonly rows: number;
    readonly first: Date;
    readonly last: Date;
    /** The lowest and highest id committed on the timeline: a writer's ids rise in commit order. */
    readonly firstId: number;
    readonly lastId: number;
}

/** The committed rows per timeline, oldest timeline first. */
export async function timelineSpans(url: string): Promise<TimelineSpan[]> {
    return query<TimelineSpan>(
        url,
        `SELECT timeline, count(*)::int AS rows, min(committed_at) AS first, max(committed_at) AS last,
                min(id) AS "firstId", max(id) AS "lastId"
         FROM ${WRITES_TABLE} GROUP BY timeline ORDER BY timeline`,
    );
}

/** The commits on either side of a failover: on the old timeline, and on the first one after it. */
export interface FailoverSpans {
    readonly before: TimelineSpan;
    readonly after: TimelineSpan;
}

export function failoverSpans(spans: readonly TimelineSpan[], oldTimeline: number): FailoverSpans {
    const before = spans.find((s) => s.timeline === oldTimeline);
    const after = spans.find((s) => s.timeline > oldTimeline);
    if (!before || !after) {
        throw new Error(`no commits on both sides of timeline ${oldTimeline}: ${JSON.stringify(spans)}`);
    }
    return { before, after };
}

/**
 * The failover's write gap as CloudNativePG measures it: from the last
 * commit on the old timeline to the first on the next, in seconds.
 */
export function failoverGapSeconds({ before, after }: FailoverSpans): number {
    return (after.first.getTime() - before.last.getTime()) / 1000;
}

export interface NodeDigest {
    readonly count: number;
    readonly checksum: string;
}

const DIGEST_SQL = `SELECT count(*)::int AS count, md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) AS checksum FROM ${WRITES_TABLE}`;

/**
 * Waits until every member streams from one leader and every replica has
 * replayed everything the leader has written, then returns each member's
 * digest: the leader first, then the replicas in member order. Rows that the
 * writer saw fail may or may not be there (a commit can succeed after its
 * acknowledgement is lost), so callers compare the leader against the
 * acknowledged rows with `toContain`-style checks, and every replica against
 * the leader exactly.
 */
export async function digestsAfterCatchUp(
    stack: StartedStack,
    timeoutMs: number,
): Promise<{ catchUpSeconds: number; digests: NodeDigest[] }> {
    const started = Date.now();
    const members = await waitForHealthyCluster(stack, timeoutMs);
    const leader = members.find((m) => m.role === "leader")!;
    const replicas = members.filter((m) => m.role === "replica");
    const [{ lsn }] = await query(leader.url, "SELECT pg_current_wal_lsn()::text AS lsn");
    await Promise.all(
        replicas.map((replica) =>
            waitFor(`${replica.name} to replay the leader's WAL`, timeoutMs, async () => {
                const [row] = await query(replica.url, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done", [lsn]);
                return row.done ? true : undefined;
            }),
        ),
    );
    const catchUpSeconds = (Date.now() - started) / 1000;
    const digests = await Promise.all([leader, ...replicas].map(async (m) => (await query<NodeDigest>(m.url, DIGEST_SQL))[0]));
    return { catchUpSeconds, digests };
}

/** Ids present on the leader, to check that no acknowledged commit was lost. */
export async function leaderIds(stack: StartedStack): Promise<Set<number>> {
    const leader = await waitForLeader(stack, 120_000);
    const rows = await query<{ id: number }>(leader.url, `SELECT id FROM ${WRITES_TABLE}`);
    return new Set(rows.map((r) => r.id));
}

/** The image the stack's containers run, for one-off tools on the cluster network. */
export async function stackImage(stack: StartedStack): Promise<string> {
    return (await docker("inspect", "--format", "{{.Image}}", stack.topology.pgbouncer.container)).trim();
}

export interface ToolOptions {
    /** Files mounted read-only under /work, e.g. a pgbench script. */
    readonly files?: Record<string, string>;
    /** Credentials go here (PGPASSWORD), never on the command line. */
    readonly env?: Record<string, string>;
    /** Host directory mounted writable at /out, for files the command leaves behind (pgbench's transaction logs). */
    readonly outputDir?: string;
}

/** A throwaway container from the stack's image on the cluster network, running one command. */
export class ClusterTool {
    private constructor(
        readonly name: string,
        private readonly dir: string,
    ) {}

    static async start(stack: StartedStack, command: string[], options: ToolOptions = {}): Promise<ClusterTool> {
        const dir = await mkdtemp(path.join(tmpdir(), "obcms-tool-"));
        // mkdtemp makes it 0700; the command runs as the service user, not as us.
        await chmod(dir, 0o755);
        for (const [file, content] of Object.entries(options.files ?? {})) {
            await writeFile(path.join(dir, file), content, { mode: 0o644 });
        }
        const name = `${stack.clusterName}-tool-${randomBytes(3).toString("hex")}`;
        await docker(
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            `${stack.clusterName}-net`,
            "--user",
            "postgres",
            // Enough descriptors for one socket per pgbench client.
            "--ulimit",
            "nofile=8192:8192",
            "-v",
            `${dir}:/work:ro`,
            ...(options.outputDir ? ["-v", `${options.outputDir}:/out`] : []),
            ...Object.entries(options.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
            "--entrypoint",
            command[0],
            await stackImage(stack),
            ...command.slice(1),
        );
        return new ClusterTool(name, dir);
    }

    /** Everything the command printed so far, both streams. */
    output(): Promise<string> {
        return containerLog(this.name);
    }

    /** Waits for the command, at most `timeoutMs` (then kills it), and removes the container. */
    async finish(timeoutMs: number): Promise<{ exitCode: number; output: string }> {
        try {
            const waited = await run("docker", ["wait", this.name], { timeout: timeoutMs }).catch(async () => {
                await docker("kill", this.name).catch(() => undefined);
                return { stdout: "137" };
            });
            return { exitCode: Number(waited.stdout.trim()), output: await this.output() };
        } finally {
            await docker("rm", "-f", this.name).catch(() => undefined);
            await rm(this.dir, { recursive: true, force: true });
        }
    }
}

/** Runs one command to completion in a ClusterTool. */
export async function runOnClusterNetwork(
    stack: StartedStack,
    command: string[],
    options: ToolOptions & { timeoutMs: number },
): Promise<{ exitCode: number; output: string }> {
    return (await ClusterTool.start(stack, command, options)).finish(options.timeoutMs);
}
