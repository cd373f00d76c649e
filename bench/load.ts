// Load on a running stack: pgbench from a container on the cluster network,
// with the server-side figures sampled while it runs (peak backends, memory,
// PgBouncer's CPU) and replay lag sampled on the primary.
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { type AuthMethod, PGBOUNCER_PORT, POSTGRES_PORT } from "../components/settings";
import { Background } from "../harness/background";
import type { StartedStack } from "../harness/cluster";
import { type MemberStatus, waitForLeader } from "../harness/patroni";
import { clientConfig, docker } from "../harness/sql";
import { ClusterTool } from "../harness/workload";
import { parseSummary, parseTransactionLog, pgbenchDuration, steadyWindow, type TransactionLog } from "./pgbench";
import { type ContainerProcess, clientBackends, parseSmapsRollup, parseStatTicks, parseTop } from "./procfs";
import type { Cell, LagRun, MemoryFigures, Route, Workload } from "./results";
import { distribution } from "./stats";

const run = promisify(execFile);
/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface CellSpec {
    readonly workload: Workload;
    readonly route: Route;
    readonly clients: number;
    readonly connectPerTransaction?: boolean;
    readonly seconds: number;
    /** Sample the primary's backends' and PgBouncer's memory halfway through. */
    readonly memory?: boolean;
}

/** The application role's credentials, the member that leads, and the stack's container names. */
export class Target {
    readonly user: string;
    readonly password: string;

    /**
     * `clientTls` false connects pgbench without TLS (sslmode=disable), where
     * the stack allows it (staging); `auth` is the stack's authMethod. The
     * leader is asked of Patroni once: nothing in a benchmark run moves it.
     */
    private constructor(
        readonly stack: StartedStack,
        readonly leader: MemberStatus,
        readonly clientTls: boolean,
        readonly auth: AuthMethod,
    ) {
        const url = new URL(stack.outputs.databaseUrl);
        this.user = decodeURIComponent(url.username);
        this.password = decodeURIComponent(url.password);
    }

    static async open(stack: StartedStack, clientTls = true, auth: AuthMethod = "scram-sha-256"): Promise<Target> {
        return new Target(stack, await waitForLeader(stack, 120_000), clientTls, auth);
    }

    container(node: "leader" | "pgbouncer"): string {
        return node === "leader" ? this.leader.container : this.stack.topology.pgbouncer.container;
    }

    /** Host, port and database pgbench connects to for `route`, on the cluster network; databases as the stack's URLs name them. */
    endpoint(route: Route): { host: string; port: number; database: string } {
        const database = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));
        switch (route) {
            case "pgbouncer":
                return { host: this.container("pgbouncer"), port: PGBOUNCER_PORT, database: database(this.stack.outputs.databaseUrl) };
            case "readonly":
                return {
                    host: this.container("pgbouncer"),
                    port: PGBOUNCER_PORT,
                    database: database(this.stack.outputs.readonlyDatabaseUrl),
                };
            case "direct":
                return { host: this.container("leader"), port: POSTGRES_PORT, database: database(this.stack.outputs.databaseUrl) };
            default: {
                const never: never = route;
                throw new Error(`unknown route ${String(never)}`);
            }
        }
    }

    /** PgBouncer's address on the cluster network: the client address of its server connections. */
    async pgbouncerAddress(): Promise<string> {
        const format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
        return (await docker("inspect", "--format", format, this.container("pgbouncer"))).trim();
    }

    /** A pgbench container on the cluster network; credentials through the environment. */
    pgbench(route: Route, args: readonly string[], outputDir?: string): Promise<ClusterTool> {
        const { host, port, database } = this.endpoint(route);
        return ClusterTool.start(this.stack, ["pgbench", "-h", host, "-p", String(port), "-U", this.user, ...args, database], {
            env: { PGPASSWORD: this.password, PGSSLMODE: this.clientTls ? "require" : "disable" },
            outputDir,
        });
    }
}

/** `pgbench -i` at `scale`, straight to the primary, then a checkpoint so runs start alike. */
export async function initialize(target: Target, scale: number): Promise<void> {
    const init = await (await target.pgbench("direct", ["-i", "-s", String(scale), "-q"])).finish(1_800_000);
    if (init.exitCode !== 0) {
        throw new Error(`pgbench -i failed:\n${init.output.slice(-2000)}`);
    }
    await withLeader(target, (c) => c.query("CHECKPOINT"));
}

async function withLeader<T>(target: Target, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client(clientConfig(target.leader.url));
    await client.connect();
    try {
        return await fn(client);
    } finally {
        await client.end();
    }
}

/** The application role's backends on the primary serving `route`, as a pg_stat_activity filter (see memorySample). */
function backendsSql(route: Route): string {
    const from = route === "direct" ? "client_addr IS DISTINCT FROM $2::inet" : "client_addr = $2::inet";
    return `FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend' AND ${from}`;
}

/** The container's processes, by host PID. */
async function processes(container: string): Promise<ContainerProcess[]> {
    return parseTop(await docker("top", container, "-eo", "pid,args"));
}

async function pgbouncerPid(target: Target): Promise<number> {
    const [pgbouncer] = (await processes(target.container("pgbouncer"))).filter((p) => /^pgbouncer /.test(p.args));
    if (!pgbouncer) {
        throw new Error(`no pgbouncer process in ${target.container("pgbouncer")}`);
    }
    return pgbouncer.pid;
}

async function pgbouncerTicks(target: Target): Promise<number> {
    return parseStatTicks(await readFile(`/proc/${await pgbouncerPid(target)}/stat`, "utf8"));
}

/** Private memory of each process still there when read; one that exited meanwhile is left out. */
async function privateBytes(pids: readonly number[]): Promise<number[]> {
    const sizes: number[] = [];
    for (const pid of pids) {
        const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch((error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT" || error.code === "ESRCH") {
                return undefined;
            }
            throw error;
        });
        if (rollup !== undefined) {
            sizes.push(parseSmapsRollup(rollup).private);
        }
    }
    return sizes;
}

/**
 * The application role's backends serving `route` (PgBouncer's server
 * connections, or everyone else's when direct; PgBouncer keeps idle server
 * connections a while, so a direct run still sees the pool of the run before)
 * and PgBouncer's memory. Read from the host, as root: a reader inside the
 * primary's container would share its CPU with a thousand busy backends and
 * take longer than the run.
 */
async function memorySample(target: Target, route: Route, pgbouncerIp: string): Promise<MemoryFigures | undefined> {
    const serving = clientBackends(await processes(target.container("leader"))).filter(
        (b) => b.user === target.user && (route === "direct" ? b.clientAddress !== pgbouncerIp : b.clientAddress === pgbouncerIp),
    );
    const backends = await privateBytes(serving.map((b) => b.pid));
    if (backends.length === 0) {
        process.stderr.write(`\nno ${route} backends of ${target.user} on the primary mid-run: memory not measured\n`);
        return undefined;
    }
    const pgbouncer = route === "direct" ? [] : await privateBytes([await pgbouncerPid(target)]);
    return {
        backends: backends.length,
        backendsPrivateBytes: backends.reduce((sum, b) => sum + b, 0),
        pgbouncerPrivateBytes: pgbouncer.reduce((sum, b) => sum + b, 0),
    };
}

/** Whether a pgbench run is over (its container collected); the samplers then stop waiting for it. */
interface RunState {
    ended: boolean;
}

/**
 * Resolves once pgbench prints its first progress line: every client is
 * connected and running. Fails when the run ends first or after `timeoutMs`.
 */
async function running(tool: ClusterTool, state: RunState, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (state.ended) {
            throw new Error("pgbench ended before every client was connected");
        }
        const logs = await run("docker", ["logs", "--tail", "3", tool.name]).catch(() => ({ stdout: "", stderr: "" }));
        if (/^progress: /m.test(logs.stdout + logs.stderr)) {
            return;
        }
        if (Date.now() > deadline) {
            throw new Error(`pgbench's clients were not all connected after ${timeoutMs} ms`);
        }
        await sleep(200);
    }
}

async function readTransactionLogs(dir: string): Promise<TransactionLog> {
    let log: TransactionLog = { latenciesUs: [], endsUs: [], failed: 0 };
    for (const file of await readdir(dir)) {
        log = parseTransactionLog(await readFile(path.join(dir, file), "utf8"), log);
    }
    return log;
}

/** Connection budget for a run: a client's TLS and SCRAM login takes a few ms of both cores. */
function connectTimeoutMs(clients: number): number {
    return 60_000 + clients * 100;
}

/**
 * Samples the most backends serving a route on the primary, every 250 ms,
 * until stopped; a failed sample fails stop(), not the process meanwhile.
 */
class PeakConnections {
    private peak = 0;
    private readonly sampler: Background<void>;

    constructor(client: pg.Client, route: Route, user: string, pgbouncerIp: string) {
        this.sampler = new Background(async (sampling) => {
            while (sampling()) {
                const [row] = (await client.query(`SELECT count(*)::int AS n ${backendsSql(route)}`, [user, pgbouncerIp])).rows;
                this.peak = Math.max(this.peak, row.n);
                await sleep(250);
            }
        });
    }

    async stop(): Promise<number> {
        await this.sampler.stop();
        return this.peak;
    }
}

interface ServerFigures {
    readonly cpu?: number;
    readonly memory?: MemoryFigures;
}

/**
 * Once pgbench runs, PgBouncer's CPU over the measured window and, if asked,
 * memory halfway through. The window ends just before pgbench's own end.
 */
async function serverFigures(
    target: Target,
    spec: CellSpec,
    tool: ClusterTool,
    state: RunState,
    pgbouncerIp: string,
    windowEnd: number,
): Promise<ServerFigures> {
    await running(tool, state, connectTimeoutMs(spec.clients));
    const pooled = spec.route !== "direct";
    const ticksBefore = pooled ? await pgbouncerTicks(target) : 0;
    const windowStart = Date.now();
    let memory: MemoryFigures | undefined;
    if (spec.memory) {
        await sleep((windowEnd - windowStart) / 2);
        memory = await memorySample(target, spec.route, pgbouncerIp);
    }
    await sleep(Math.max(0, windowEnd - Date.now()));
    if (!pooled) {
        return { memory };
    }
    const ticks = (await pgbouncerTicks(target)) - ticksBefore;
    return { cpu: ticks / CLOCK_TICKS_PER_SECOND / ((Date.now() - windowStart) / 1000), memory };
}

/** One pgbench run with its server-side figures. */
export async function runCell(target: Target, spec: CellSpec, replicas: number): Promise<Cell> {
    const outputDir = await mkdtemp(path.join(tmpdir(), "obcms-bench-"));
    // The container writes as the service user, not as whoever runs the benchmark.
    await chmod(outputDir, 0o777);
    const pgbouncerIp = await target.pgbouncerAddress();
    const sampler = new pg.Client(clientConfig(target.leader.url));
    // A lost connection fails the next sample, which PeakConnections.stop() reports; as an event it would crash the run.
    sampler.on("error", () => undefined);
    await sampler.connect();
    // Read-only runs are served by the replicas: nothing to count on the primary.
    const peak = spec.route === "readonly" ? undefined : new PeakConnections(sampler, spec.route, target.user, pgbouncerIp);
    try {
        const duration = pgbenchDuration(spec);
        const args = [
            "-n",
            "-c",
            String(spec.clients),
            "-j",
            String(Math.min(2, spec.clients)),
            "-T",
            String(duration),
            "-P",
            "1",
            "-l",
            "--log-prefix=/out/tx",
            ...(spec.workload === "select" ? ["-S"] : []),
            ...(spec.connectPerTransaction ? ["-C"] : []),
        ];
        const launched = Date.now();
        const tool = await target.pgbench(spec.route, args, outputDir);
        const state: RunState = { ended: false };
        // Server figures stop a second before pgbench does.
        const figures = serverFigures(target, spec, tool, state, pgbouncerIp, launched + (duration - 1) * 1000);
        // Awaited below, after pgbench has ended; until then a failure must not count as unhandled.
        figures.catch(() => undefined);
        // Collected whatever happened to the sampling, so the container never outlives the cell.
        const result = await tool.finish(duration * 1000 + connectTimeoutMs(spec.clients));
        state.ended = true;
        // Before the server figures, which would wait for a run that never started.
        if (result.exitCode !== 0) {
            throw new Error(`pgbench exited with ${result.exitCode}:\n${result.output.slice(-2000)}`);
        }
        const { cpu, memory } = await figures;
        const summary = parseSummary(result.output);
        const window = steadyWindow(await readTransactionLogs(outputDir), spec.seconds);
        const latency = distribution(window.latenciesUs);
        return {
            workload: spec.workload,
            route: spec.route,
            clients: spec.clients,
            connectPerTransaction: spec.connectPerTransaction ?? false,
            clientTls: target.clientTls,
            auth: target.auth,
            replicas,
            seconds: window.seconds,
            tps: window.tps,
            transactions: window.transactions,
            failed: summary.failed,
            latency: { p50Ms: latency.p50 / 1000, p99Ms: latency.p99 / 1000, meanMs: latency.mean / 1000 },
            ...(summary.initialConnectionMs === undefined ? {} : { connectSeconds: summary.initialConnectionMs / 1000 }),
            ...(summary.averageConnectionMs === undefined ? {} : { averageConnectionMs: summary.averageConnectionMs }),
            ...(peak ? { peakServerConnections: await peak.stop() } : {}),
            ...(cpu === undefined ? {} : { pgbouncerCpuCores: cpu }),
            ...(memory ? { memory } : {}),
        };
    } finally {
        await peak?.stop().catch(() => undefined);
        await sampler.end().catch(() => undefined);
        await rm(outputDir, { recursive: true, force: true });
    }
}

const LAG_SQL = `SELECT application_name AS replica,
    pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS bytes,
    coalesce(extract(epoch FROM replay_lag), 0)::float8 AS seconds
  FROM pg_stat_replication ORDER BY application_name`;

/**
 * A TPC-B write run through PgBouncer with every replica's replay lag sampled
 * on the primary every `intervalMs` while it runs. `replay_lag` is NULL once a
 * standby has replayed everything and nothing new arrives: counted as 0.
 */
export async function runLag(target: Target, replicas: number, clients: number, seconds: number, intervalMs: number): Promise<LagRun> {
    const sampler = new pg.Client(clientConfig(target.leader.url));
    // A lost connection fails the next sample, and with it `sampling`; as an event it would crash the run.
    sampler.on("error", () => undefined);
    await sampler.connect();
    try {
        const duration = pgbenchDuration({ seconds, clients });
        const launched = Date.now();
        const tool = await target.pgbench("pgbouncer", ["-n", "-c", String(clients), "-j", "2", "-T", String(duration), "-P", "1"]);
        const samples = new Map<string, { bytes: number[]; seconds: number[] }>();
        const state: RunState = { ended: false };
        const sampling = (async () => {
            await running(tool, state, connectTimeoutMs(clients));
            const start = Date.now();
            const end = launched + (duration - 1) * 1000;
            for (let k = 1; start + k * intervalMs < end; k++) {
                for (const row of (await sampler.query(LAG_SQL)).rows) {
                    const series = samples.get(row.replica) ?? { bytes: [], seconds: [] };
                    series.bytes.push(row.bytes);
                    series.seconds.push(row.seconds);
                    samples.set(row.replica, series);
                }
                await sleep(Math.max(0, start + k * intervalMs - Date.now()));
            }
        })();
        sampling.catch(() => undefined);
        const result = await tool.finish(duration * 1000 + connectTimeoutMs(clients));
        state.ended = true;
        if (result.exitCode !== 0) {
            throw new Error(`pgbench exited with ${result.exitCode}:\n${result.output.slice(-2000)}`);
        }
        await sampling;
        const figures = (values: number[]) => {
            const d = distribution(values);
            return { p50: d.p50, p99: d.p99, max: d.max };
        };
        return {
            replicas,
            clients,
            seconds,
            sampleIntervalMs: intervalMs,
            tps: parseSummary(result.output).tps,
            perReplica: [...samples.entries()].map(([replica, s]) => ({
                replica,
                samples: s.bytes.length,
                bytes: figures(s.bytes),
                seconds: figures(s.seconds),
            })),
        };
    } finally {
        await sampler.end().catch(() => undefined);
    }
}
