// npm run bench [-- --quick] | [-- --report-only <results.json>]
//
// Brings the production stack up through the integration tests' path
// (startStack: the real program, real containers) and measures, side by side
// in one run, what the stack exists for: PgBouncer against direct connections,
// replication lag, bring-up, basebackup and read scaling. Writes the raw
// figures to bench/results/<date>.json, then renders the Markdown report, its
// SVG charts and the README block from that file alone.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import * as path from "node:path";
import { type StartedStack, startStack } from "../harness/cluster";
import { type MemberStatus, waitForHealthyCluster } from "../harness/patroni";
import { docker, query } from "../harness/sql";
import { loadStackConfig, PROJECT_ROOT, projectName, type StackName } from "../harness/stack-config";
import { runOnClusterNetwork } from "../harness/workload";
import { FAILOVER_WRITERS, LEADER_FAULTS, measureRouterHop, runFailovers } from "./failover";
import { type CellSpec, initialize, runCell, runLag, Target } from "./load";
import { pgbenchDuration } from "./pgbench";
import { importProgramFresh } from "./program-import";
import { runSteps, type Step } from "./progress";
import { renderReport, replaceReadmeBlock } from "./report";
import type { Basebackup, BenchResults, BringUp, Cell, LagRun, RoundTrip, RouterHop } from "./results";
import { measureRoundTrip } from "./round-trip";

const RESULTS_DIR = path.join(PROJECT_ROOT, "bench", "results");
const README = path.join(PROJECT_ROOT, "README.md");

/** Run lengths and cells of one mode. */
interface Plan {
    readonly mode: "full" | "quick";
    readonly scale: number;
    readonly cellSeconds: number;
    /** The 1-client runs behind the pooler's overhead. */
    readonly singleClientSeconds: number;
    readonly clientCounts: readonly number[];
    /** Extra direct TPC-B client counts, to find direct's best (the reference's is at 10–50). */
    readonly directSweep: readonly number[];
    readonly connectPerTransactionClients: number;
    /** Length of the staging stacks' -C pairs (without TLS; with md5 logins), which only explain a gap. */
    readonly plainConnectSeconds: number;
    /** Clients of the read-scaling runs (select-only) and of the lag runs' writes. */
    readonly readClients: number;
    readonly lagSeconds: number;
    readonly roundTrips: number;
    /** Bring up staging and production from nothing, the basebackup, and 3 replicas. */
    readonly replicaPhases: boolean;
    /** Runs of each leader fault on a production stack of its own. */
    readonly failoverRuns: number;
}

const FULL: Plan = {
    mode: "full",
    scale: 50,
    cellSeconds: 20,
    singleClientSeconds: 5,
    clientCounts: [100, 1000, 2000],
    directSweep: [10, 50],
    connectPerTransactionClients: 50,
    plainConnectSeconds: 10,
    readClients: 100,
    lagSeconds: 60,
    roundTrips: 10_000,
    replicaPhases: true,
    failoverRuns: 5,
};

const QUICK: Plan = {
    mode: "quick",
    scale: 5,
    cellSeconds: 3,
    singleClientSeconds: 3,
    clientCounts: [50],
    directSweep: [],
    connectPerTransactionClients: 10,
    plainConnectSeconds: 3,
    readClients: 50,
    lagSeconds: 5,
    roundTrips: 2_000,
    replicaPhases: false,
    failoverRuns: 1,
};

/** Production's stack file, plus room for 2000 direct clients (and PgBouncer's 2000) and no Grafana (no image here). */
const BENCH_STACK: StackName = "production";
const BENCH_OVERRIDES = { replicaCount: 1, maxConnections: 2100, maxClientConn: 2100, grafanaEnabled: false };
/** A replica joins a primary holding this much. */
const BASEBACKUP_BYTES = 1024 ** 3;
const LAG_SAMPLE_MS = 100;

/** Starts a stack and waits until each of its replicas streams; returns the seconds it took. */
async function bringUp(
    stack: StackName,
    overrides: Record<string, unknown>,
    stacks: StartedStack[],
): Promise<{ started: StartedStack; seconds: number }> {
    const t0 = Date.now();
    const started = await startStack(stack, { overrides, importProgram: importProgramFresh });
    stacks.push(started);
    await streaming(started);
    return { started, seconds: (Date.now() - t0) / 1000 };
}

/** Waits until the stack's members all stream from one leader; returns the leader's superuser URL. */
async function streaming(stack: StartedStack): Promise<string> {
    const members = await waitForHealthyCluster(stack, 300_000);
    return (members.find((m) => m.role === "leader") as MemberStatus).url;
}

async function stopStack(stack: StartedStack, stacks: StartedStack[]): Promise<void> {
    stacks.splice(stacks.indexOf(stack), 1);
    await stack.stop();
}

async function databaseBytes(stack: StartedStack): Promise<number> {
    const [row] = await query(await streaming(stack), "SELECT sum(pg_database_size(datname))::float8 AS bytes FROM pg_database");
    return row.bytes;
}

/**
 * Grows the primary to `bytes` with a table of ~1 kB rows (stored inline and
 * uncompressed, so the bytes are real), then checkpoints.
 */
async function fillTo(stack: StartedStack, bytes: number): Promise<void> {
    const missing = bytes - (await databaseBytes(stack));
    const leader = await streaming(stack);
    if (missing > 0) {
        // The superuser, in the application's database.
        const url = new URL(leader);
        url.pathname = new URL(stack.outputs.databaseUrl).pathname;
        await query(
            url.toString(),
            "CREATE TABLE bench_filler AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, $1::int) AS g",
            [Math.ceil(missing / 1_000)],
        );
    }
    await query(leader, "CHECKPOINT");
}

/** A replica added to a leader holding `bytes`: the update's time and the clone's, from its container's start to streaming. */
async function addReplica(stack: StartedStack, replicas: number): Promise<Omit<Basebackup, "bytes">> {
    const t0 = Date.now();
    await stack.update({ ...BENCH_OVERRIDES, replicaCount: replicas });
    await streaming(stack);
    const updateSeconds = (Date.now() - t0) / 1000;
    const added = stack.topology.members[replicas];
    const startedAt = (await docker("inspect", "--format", "{{.State.StartedAt}}", added.container)).trim();
    return { updateSeconds, cloneSeconds: (Date.now() - Date.parse(startedAt)) / 1000 };
}

async function versions(stack: StartedStack): Promise<BenchResults["versions"]> {
    const [{ version }] = await query(await streaming(stack), "SELECT version()");
    const pgbouncer = await runOnClusterNetwork(stack, ["pgbouncer", "--version"], { timeoutMs: 60_000 });
    return {
        postgresql: version.split(" on ")[0],
        pgbouncer: pgbouncer.output.split("\n")[0].trim(),
        docker: (await docker("version", "--format", "{{.Server.Version}}")).trim(),
        node: process.version,
    };
}

function machine(): BenchResults["machine"] {
    return { cores: cpus().length, memoryBytes: totalmem(), kernel: release(), cpu: cpus()[0]?.model ?? "unknown" };
}

/** The cells of the pooling, overhead and connection-setup metrics, on the bench stack with one replica. */
function poolingCells(plan: Plan): CellSpec[] {
    const cells: CellSpec[] = [
        { workload: "select", route: "pgbouncer", clients: 1, seconds: plan.singleClientSeconds },
        { workload: "select", route: "direct", clients: 1, seconds: plan.singleClientSeconds },
    ];
    for (const workload of ["tpcb", "select"] as const) {
        for (const clients of plan.clientCounts) {
            cells.push({ workload, route: "pgbouncer", clients, seconds: plan.cellSeconds, memory: true });
        }
        for (const clients of [...(workload === "tpcb" ? plan.directSweep : []), ...plan.clientCounts]) {
            cells.push({ workload, route: "direct", clients, seconds: plan.cellSeconds, memory: true });
        }
    }
    return [...cells, ...connectPerTransactionCells(plan)];
}

/** Select-only with a new connection per transaction, through PgBouncer and direct. */
function connectPerTransactionCells(plan: Plan, seconds = plan.cellSeconds): CellSpec[] {
    return (["pgbouncer", "direct"] as const).map((route) => ({
        workload: "select",
        route,
        clients: plan.connectPerTransactionClients,
        connectPerTransaction: true,
        seconds,
    }));
}

function describe(spec: CellSpec): string {
    return `${spec.workload === "tpcb" ? "TPC-B" : "select-only"} ${spec.route}${spec.connectPerTransaction ? " -C" : ""}, ${spec.clients} client${spec.clients === 1 ? "" : "s"}`;
}

/** Seconds a cell takes: pgbench's run, logins included, and ~4 s for the container and the logs. */
function cellEstimate(spec: CellSpec): number {
    return pgbenchDuration(spec) + 4;
}

async function measure(plan: Plan): Promise<BenchResults> {
    const started = new Date().toISOString();
    const stacks: StartedStack[] = [];
    const stopAll = async () => {
        await Promise.all(stacks.splice(0).map((s) => s.stop()));
    };
    process.once("SIGINT", () => {
        process.stderr.write("\ninterrupted: removing the benchmark's containers\n");
        void stopAll().finally(() => process.exit(130));
    });

    const bringUps: BringUp[] = [];
    const cells: Cell[] = [];
    const lag: LagRun[] = [];
    let roundTrip: RoundTrip | undefined;
    let basebackup: Basebackup | undefined;
    let routerHop: RouterHop | undefined;
    let failover: BenchResults["failover"];
    let bench: StartedStack | undefined;
    let staging: StartedStack | undefined;
    let target: Target | undefined;
    let replicas = BENCH_OVERRIDES.replicaCount;
    let benchVersions: BenchResults["versions"] | undefined;
    const benchStack = () => bench ?? failNotStarted();
    const benchTarget = () => target ?? failNotStarted();

    const steps: Step[] = [];
    if (plan.replicaPhases) {
        for (const [stack, count] of [
            ["staging", 1],
            ["production", 3],
        ] as const) {
            steps.push({
                label: `bring-up: ${stack} from nothing to ${count} replica${count === 1 ? "" : "s"} streaming`,
                estimateSeconds: 40,
                run: async () => {
                    const { started: s, seconds } = await bringUp(stack, { grafanaEnabled: false }, stacks);
                    bringUps.push({ stack, replicas: count, seconds });
                    if (stack === "staging") {
                        staging = s;
                    } else {
                        await stopStack(s, stacks);
                    }
                },
            });
            if (stack === "staging") {
                // Staging accepts clients without TLS: the same -C pair there shows what TLS costs a login.
                steps.push({
                    label: `connection setup without client TLS: staging, pgbench -C, ${plan.connectPerTransactionClients} clients`,
                    estimateSeconds: 10 + 2 * (plan.plainConnectSeconds + 4),
                    run: async () => {
                        const s = staging ?? failNotStarted();
                        const plain = await Target.open(s, false);
                        await initialize(plain, 1);
                        for (const spec of connectPerTransactionCells(plan, plan.plainConnectSeconds)) {
                            cells.push(await runCell(plain, spec, s.outputs.replicaCount));
                        }
                        await stopStack(s, stacks);
                    },
                });
                // md5 logins cost the client one hash where SCRAM costs 4096 PBKDF2 rounds: the same pair shows what SCRAM costs a login.
                steps.push({
                    label: `connection setup with md5 logins, without client TLS: staging, pgbench -C, ${plan.connectPerTransactionClients} clients`,
                    estimateSeconds: 40 + 2 * (plan.plainConnectSeconds + 4),
                    run: async () => {
                        const { started: s } = await bringUp(
                            "staging",
                            { grafanaEnabled: false, monitoringEnabled: false, authMethod: "md5" },
                            stacks,
                        );
                        const md5 = await Target.open(s, false, "md5");
                        await initialize(md5, 1);
                        for (const spec of connectPerTransactionCells(plan, plan.plainConnectSeconds)) {
                            cells.push(await runCell(md5, spec, s.outputs.replicaCount));
                        }
                        await stopStack(s, stacks);
                    },
                });
            }
        }
    }
    steps.push({
        label: "bench stack: production, 1 replica, max_connections 2100",
        estimateSeconds: 30,
        run: async () => {
            const { started: s, seconds } = await bringUp(BENCH_STACK, BENCH_OVERRIDES, stacks);
            if (!plan.replicaPhases) {
                bringUps.push({ stack: "production (bench overrides)", replicas: 1, seconds });
            }
            bench = s;
            target = await Target.open(s);
            benchVersions = await versions(s);
        },
    });
    steps.push({
        label: `round trips: ${plan.roundTrips} ping-pongs over loopback and over the cluster network`,
        estimateSeconds: 10 + plan.roundTrips / 1000,
        run: async () => {
            roundTrip = await measureRoundTrip(benchStack(), plan.roundTrips);
        },
    });
    steps.push({
        label: `pgbench -i -s ${plan.scale}`,
        estimateSeconds: 5 + plan.scale,
        run: () => initialize(benchTarget(), plan.scale),
    });
    // pgbench's select-only run reads the tables initialized just before.
    steps.push({
        label: `the router's hop: 1 client from PgBouncer's container, through HAProxy and straight, ${plan.singleClientSeconds} s each`,
        estimateSeconds: 2 * plan.singleClientSeconds + 6,
        run: async () => {
            routerHop = await measureRouterHop(benchStack(), benchTarget().leader.container, plan.singleClientSeconds);
        },
    });
    for (const spec of poolingCells(plan)) {
        steps.push({
            label: describe(spec),
            estimateSeconds: cellEstimate(spec),
            run: async () => void cells.push(await runCell(benchTarget(), spec, replicas)),
        });
    }
    const readScaling = (): Step => {
        const spec: CellSpec = { workload: "select", route: "readonly", clients: plan.readClients, seconds: plan.cellSeconds };
        return {
            label: `read scaling: ${describe(spec)}`,
            estimateSeconds: cellEstimate(spec),
            run: async () => void cells.push(await runCell(benchTarget(), spec, replicas)),
        };
    };
    const lagRun = (): Step => ({
        label: `replay lag under ${plan.lagSeconds} s of TPC-B writes`,
        estimateSeconds: plan.lagSeconds + 8,
        run: async () => void lag.push(await runLag(benchTarget(), replicas, plan.readClients, plan.lagSeconds, LAG_SAMPLE_MS)),
    });
    steps.push(readScaling(), lagRun());
    if (plan.replicaPhases) {
        let bytes = 0;
        steps.push({
            label: "basebackup: primary grown to 1 GiB",
            estimateSeconds: 40,
            run: async () => {
                await fillTo(benchStack(), BASEBACKUP_BYTES);
                bytes = await databaseBytes(benchStack());
            },
        });
        steps.push({
            label: "basebackup: replica 2 joins",
            estimateSeconds: 60,
            run: async () => {
                basebackup = { bytes, ...(await addReplica(benchStack(), 2)) };
                replicas = 2;
            },
        });
        steps.push({
            label: "replica 3 joins",
            estimateSeconds: 60,
            run: async () => {
                await addReplica(benchStack(), 3);
                replicas = 3;
            },
        });
        steps.push(lagRun(), readScaling());
    }

    steps.push({
        label: `failover: production from nothing, then ${plan.failoverRuns} run(s) each of ${LEADER_FAULTS.join(", ")}`,
        estimateSeconds: 60 + plan.failoverRuns * LEADER_FAULTS.length * 60,
        run: async () => {
            if (bench) {
                // The failover stack has the 2 cores to itself.
                await stopStack(bench, stacks);
                bench = undefined;
            }
            const { started: s, seconds } = await bringUp("production", { grafanaEnabled: false }, stacks);
            bringUps.push({ stack: "production (failover runs)", replicas: s.outputs.replicaCount, seconds });
            const runs = await runFailovers(s, plan.failoverRuns, (line) => process.stderr.write(`  ${line}\n`));
            failover = { ttlSeconds: s.settings.failover.ttlSeconds, writers: FAILOVER_WRITERS, runs };
            await stopStack(s, stacks);
        },
    });

    try {
        await runSteps(steps);
    } finally {
        await stopAll();
    }
    const config = loadStackConfig(BENCH_STACK, BENCH_OVERRIDES);
    const key = (name: string) => config[`${projectName()}:${name}`];
    return {
        mode: plan.mode,
        started,
        finished: new Date().toISOString(),
        machine: machine(),
        versions: benchVersions ?? failNotStarted(),
        settings: {
            stack: `${BENCH_STACK} with ${Object.entries(BENCH_OVERRIDES)
                .map(([k, v]) => `${k}=${v}`)
                .join(", ")}`,
            scale: plan.scale,
            cellSeconds: plan.cellSeconds,
            threads: 2,
            poolSize: Number(key("defaultPoolSize")),
            reservePoolSize: Number(key("reservePoolSize")),
            maxConnections: Number(key("maxConnections")),
            maxClientConn: Number(key("maxClientConn")),
            clientTls: key("clientTlsSslmode"),
            monitoring: key("monitoringEnabled") === "true",
        },
        bringUp: bringUps,
        cells,
        roundTrip: roundTrip ?? failNotStarted(),
        lag,
        ...(basebackup ? { basebackup } : {}),
        ...(routerHop ? { routerHop } : {}),
        ...(failover ? { failover } : {}),
    };
}

function failNotStarted(): never {
    throw new Error("the bench stack is not up");
}

/** The report, its charts and (for a full run) the README block, from one results file. */
async function render(resultsFile: string): Promise<void> {
    const results = JSON.parse(await readFile(resultsFile, "utf8")) as BenchResults;
    const base = path.basename(resultsFile, ".json");
    const report = renderReport(results, base);
    const dir = path.dirname(resultsFile);
    await writeFile(path.join(dir, `${base}.md`), report.markdown);
    for (const [name, svg] of Object.entries(report.charts)) {
        await writeFile(path.join(dir, name), svg);
    }
    if (results.mode === "full") {
        const readme = await readFile(README, "utf8");
        await writeFile(README, replaceReadmeBlock(readme, report.readmeBlock));
    }
    process.stderr.write(
        `wrote ${path.relative(PROJECT_ROOT, path.join(dir, `${base}.md`))}${results.mode === "full" ? " and the README block" : ""}\n`,
    );
}

async function main(argv: readonly string[]): Promise<void> {
    const reportOnly = argv.indexOf("--report-only");
    if (reportOnly !== -1) {
        const file = argv[reportOnly + 1];
        if (!file) {
            throw new Error("--report-only needs a results file, e.g. bench/results/2026-11-29.json");
        }
        return render(path.resolve(file));
    }
    const unknown = argv.filter((a) => a !== "--quick");
    if (unknown.length > 0) {
        throw new Error(`unknown arguments ${unknown.join(" ")}; usage: npm run bench [-- --quick | --report-only <results.json>]`);
    }
    const plan = argv.includes("--quick") ? QUICK : FULL;
    if (process.getuid?.() !== 0) {
        throw new Error("the benchmark reads the containers' processes in /proc from the host (memory, PgBouncer's CPU): run it as root");
    }
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
    await docker("info");
    const results = await measure(plan);
    await mkdir(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${results.started.slice(0, 10)}${plan.mode === "quick" ? "-quick" : ""}.json`);
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    await render(file);
}

main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
});
