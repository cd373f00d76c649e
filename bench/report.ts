// The Markdown report, its SVG charts and the README block, rendered from a
// results file alone: `npm run bench -- --report-only <file>` re-renders
// without measuring again. Pure: the same results give the same bytes.
import type { BenchResults, Cell, FailoverRun, LagRun, Route, Workload } from "./results";
import { distribution, ratio } from "./stats";
import { type BarChart, renderBarChart } from "./svg";

export const README_START = "<!-- bench:start -->";
export const README_END = "<!-- bench:end -->";

/**
 * The reference the issue set: Debian's PostgreSQL and PgBouncer straight on
 * loopback on a 2-core machine, pool 50, scale 50, 20 s runs.
 */
export const REFERENCE = {
    tpcb1000: { pooled: 2800, direct: 1400, ratio: 2.0 },
    tpcb2000: { pooled: 2450, direct: 780, ratio: 3.1 },
    pooledVsDirectBest: { pooled: 2800, direct: 4270, ratio: 0.65 },
    select1000: { ratio: 1.6 },
    connectPerTransaction: { ratio: 13 },
    /** Backends' private memory at 1000 clients, direct against pooled (bytes). */
    memory1000: { direct: 1.35e9, pooled: 67e6, ratio: 1.35e9 / 67e6 },
} as const;
/** How close a ratio must come to the reference's. */
const TOLERANCE = 0.1;

export interface Report {
    readonly markdown: string;
    /** File name → SVG document. */
    readonly charts: Record<string, string>;
    /** The README's figures, between README_START and README_END. */
    readonly readmeBlock: string;
}

/** Text for a Markdown table cell. */
export function markdownCell(value: string): string {
    return value.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
    return [header, header.map(() => "---"), ...rows].map((r) => `| ${r.map(markdownCell).join(" | ")} |`).join("\n");
}

const NOT_MEASURED = "—";
const fixed = (v: number | undefined, digits: number) => (v === undefined ? NOT_MEASURED : v.toFixed(digits));
const integer = (v: number | undefined) => (v === undefined ? NOT_MEASURED : Math.round(v).toLocaleString("en-US"));
const mb = (bytes: number | undefined) => (bytes === undefined ? NOT_MEASURED : `${(bytes / 1e6).toFixed(1)} MB`);
const times = (v: number | undefined) => (v === undefined ? NOT_MEASURED : `${v.toFixed(2)}×`);

/** Looks cells up by what was run: those over TLS, as production requires; `plain` holds the rest. */
class Cells {
    private readonly cells: readonly Cell[];
    /** The staging stack's runs without client TLS. */
    readonly plain: readonly Cell[];

    constructor(all: readonly Cell[]) {
        this.cells = all.filter((c) => c.clientTls);
        this.plain = all.filter((c) => !c.clientTls);
    }

    find(
        workload: Workload,
        route: Route,
        clients: number,
        options: { connectPerTransaction?: boolean; replicas?: number } = {},
    ): Cell | undefined {
        return this.cells.find(
            (c) =>
                c.workload === workload &&
                c.route === route &&
                c.clients === clients &&
                c.connectPerTransaction === (options.connectPerTransaction ?? false) &&
                (options.replicas === undefined || c.replicas === options.replicas),
        );
    }

    /** Direct runs of a workload with persistent connections, fewest clients first. */
    direct(workload: Workload): Cell[] {
        return this.cells
            .filter((c) => c.workload === workload && c.route === "direct" && !c.connectPerTransaction)
            .sort((a, b) => a.clients - b.clients);
    }

    /** Direct's best TPS for a workload, and at how many clients. */
    directBest(workload: Workload): Cell | undefined {
        return this.direct(workload).reduce<Cell | undefined>((best, c) => (best === undefined || c.tps > best.tps ? c : best), undefined);
    }

    pooled(workload: Workload): Cell[] {
        return this.cells
            .filter((c) => c.workload === workload && c.route === "pgbouncer" && !c.connectPerTransaction && c.clients > 1)
            .sort((a, b) => a.clients - b.clients);
    }

    where(predicate: (c: Cell) => boolean): Cell[] {
        return this.cells.filter(predicate);
    }
}

/** Private memory that serves the clients: backends, plus PgBouncer when pooled. */
function servingMemory(c: Cell | undefined): number | undefined {
    return c?.memory ? c.memory.backendsPrivateBytes + c.memory.pgbouncerPrivateBytes : undefined;
}

interface RatioRow {
    readonly metric: string;
    readonly measured: string;
    readonly ratio: number | undefined;
    readonly reference: number;
}

function ratioRows(cells: Cells): RatioRow[] {
    const tps = (c: Cell | undefined) => c?.tps;
    const pair = (a: Cell | undefined, b: Cell | undefined) => `${integer(tps(a))} vs ${integer(tps(b))} TPS`;
    const best = cells.directBest("tpcb");
    const p1000 = cells.find("tpcb", "pgbouncer", 1000);
    const d1000 = cells.find("tpcb", "direct", 1000);
    const p2000 = cells.find("tpcb", "pgbouncer", 2000);
    const d2000 = cells.find("tpcb", "direct", 2000);
    const s1000p = cells.find("select", "pgbouncer", 1000);
    const s1000d = cells.find("select", "direct", 1000);
    const [cPooled] = cells.where((c) => c.route === "pgbouncer" && c.connectPerTransaction);
    const [cDirect] = cells.where((c) => c.route === "direct" && c.connectPerTransaction);
    return [
        {
            metric: "TPC-B, 1000 clients: PgBouncer / direct",
            measured: pair(p1000, d1000),
            ratio: ratio(tps(p1000), tps(d1000)),
            reference: REFERENCE.tpcb1000.ratio,
        },
        {
            metric: "TPC-B, 2000 clients: PgBouncer / direct",
            measured: pair(p2000, d2000),
            ratio: ratio(tps(p2000), tps(d2000)),
            reference: REFERENCE.tpcb2000.ratio,
        },
        {
            metric: `TPC-B: PgBouncer at 1000 / direct at its best (${best ? `${best.clients} clients` : NOT_MEASURED})`,
            measured: pair(p1000, best),
            ratio: ratio(tps(p1000), tps(best)),
            reference: REFERENCE.pooledVsDirectBest.ratio,
        },
        {
            metric: "select-only, 1000 clients: PgBouncer / direct",
            measured: pair(s1000p, s1000d),
            ratio: ratio(tps(s1000p), tps(s1000d)),
            reference: REFERENCE.select1000.ratio,
        },
        {
            metric: `new connection per transaction (-C, ${cPooled?.clients ?? NOT_MEASURED} clients): PgBouncer / direct`,
            measured: pair(cPooled, cDirect),
            ratio: ratio(tps(cPooled), tps(cDirect)),
            reference: REFERENCE.connectPerTransaction.ratio,
        },
        {
            metric: "backends' private memory at 1000 TPC-B clients: direct / PgBouncer",
            measured: `${mb(d1000?.memory?.backendsPrivateBytes)} vs ${mb(p1000?.memory?.backendsPrivateBytes)} (+ PgBouncer's own ${mb(p1000?.memory?.pgbouncerPrivateBytes)})`,
            ratio: ratio(d1000?.memory?.backendsPrivateBytes, p1000?.memory?.backendsPrivateBytes),
            reference: REFERENCE.memory1000.ratio,
        },
    ];
}

function verdict(r: RatioRow): string {
    if (r.ratio === undefined) {
        return NOT_MEASURED;
    }
    const off = r.ratio / r.reference - 1;
    return Math.abs(off) <= TOLERANCE ? "within 10%" : `${Math.abs(off * 100).toFixed(0)}% ${off < 0 ? "below" : "above"}`;
}

function summaryTable(cells: Cells): string {
    return table(
        ["ratio", "measured", "ratio here", "reference", "against the reference"],
        ratioRows(cells).map((r) => [r.metric, r.measured, times(r.ratio), times(r.reference), verdict(r)]),
    );
}

function lagOf(results: BenchResults, replicas: number): LagRun | undefined {
    return results.lag.find((l) => l.replicas === replicas);
}

/** The highest replay-lag p99 among a run's replicas, ms. */
function worstLagMs(run: LagRun | undefined): number | undefined {
    return run ? Math.max(...run.perReplica.map((r) => r.seconds.p99)) * 1000 : undefined;
}

function goalsTable(results: BenchResults, cells: Cells): string {
    const failed2000 = [cells.find("tpcb", "pgbouncer", 2000), cells.find("select", "pgbouncer", 2000)].filter(
        (c): c is Cell => c !== undefined,
    );
    const worstMs = worstLagMs(lagOf(results, 3));
    const production = results.bringUp.find((b) => b.stack === "production");
    const met = (ok: boolean | undefined) => (ok === undefined ? NOT_MEASURED : ok ? "met" : "missed");
    return table(
        ["goal", "measured", ""],
        [
            [
                "zero failed transactions at 2000 clients through PgBouncer",
                failed2000.length ? failed2000.map((c) => `${c.workload}: ${c.failed}`).join(", ") : NOT_MEASURED,
                met(failed2000.length ? failed2000.every((c) => c.failed === 0) : undefined),
            ],
            [
                "replay lag p99 under 50 ms with 3 replicas under write load",
                worstMs === undefined ? NOT_MEASURED : `${worstMs.toFixed(1)} ms (worst replica)`,
                met(worstMs === undefined ? undefined : worstMs < 50),
            ],
            [
                "production bring-up under 60 s",
                production ? `${production.seconds.toFixed(1)} s` : NOT_MEASURED,
                met(production ? production.seconds < 60 : undefined),
            ],
        ],
    );
}

function cellRows(cells: readonly Cell[]): string {
    return table(
        [
            "workload",
            "route",
            "clients",
            "replicas",
            "s measured",
            "TPS",
            "p50 ms",
            "p99 ms",
            "transactions",
            "failed",
            "connect s",
            "peak server conns",
            "PgBouncer CPU (cores)",
            "backends' private memory",
            "per client",
            "PgBouncer private memory",
        ],
        cells.map((c) => [
            c.workload === "tpcb" ? "TPC-B" : "select-only",
            c.route + (c.connectPerTransaction ? " -C" : ""),
            String(c.clients),
            String(c.replicas),
            fixed(c.seconds, 1),
            integer(c.tps),
            fixed(c.latency.p50Ms, 2),
            fixed(c.latency.p99Ms, 2),
            integer(c.transactions),
            String(c.failed),
            fixed(c.connectSeconds, 1),
            c.peakServerConnections === undefined ? NOT_MEASURED : String(c.peakServerConnections),
            fixed(c.pgbouncerCpuCores, 2),
            c.memory ? `${mb(c.memory.backendsPrivateBytes)} (${c.memory.backends})` : NOT_MEASURED,
            c.memory ? mb(servingMemory(c)! / c.clients) : NOT_MEASURED,
            c.memory && c.route !== "direct" ? mb(c.memory.pgbouncerPrivateBytes) : NOT_MEASURED,
        ]),
    );
}

function tpsChart(cells: Cells, workload: Workload): BarChart {
    const pooled = cells.pooled(workload);
    const direct = cells.direct(workload);
    const counts = [...new Set([...direct, ...pooled].map((c) => c.clients))].sort((a, b) => a - b);
    return {
        title: `${workload === "tpcb" ? "TPC-B" : "select-only"}: TPS by clients, PgBouncer vs direct`,
        unit: "TPS",
        categories: counts.map((n) => `${n} clients`),
        series: [
            { name: "PgBouncer (pool 50)", values: counts.map((n) => pooled.find((c) => c.clients === n)?.tps) },
            { name: "direct", values: counts.map((n) => direct.find((c) => c.clients === n)?.tps) },
        ],
    };
}

function lagChart(results: BenchResults): BarChart {
    const runs = [...results.lag].sort((a, b) => a.replicas - b.replicas);
    const names = [...new Set(runs.flatMap((r) => r.perReplica.map((p) => p.replica)))].sort();
    return {
        title: "Replay lag p99 under write load, ms",
        unit: "ms",
        categories: names,
        series: runs.map((run) => ({
            name: `${run.replicas} replica${run.replicas === 1 ? "" : "s"}`,
            values: names.map((n) => {
                const figures = run.perReplica.find((p) => p.replica === n);
                return figures ? figures.seconds.p99 * 1000 : undefined;
            }),
        })),
    };
}

function readChart(reads: readonly Cell[], primaryAlone: Cell | undefined): BarChart {
    const bars: Array<[string, number | undefined]> = [
        ["primary alone (obcms)", primaryAlone?.tps],
        ...reads.map((c): [string, number] => [`${c.replicas} replica${c.replicas === 1 ? "" : "s"} (obcms_readonly)`, c.tps]),
    ];
    return {
        title: `select-only TPS, ${primaryAlone?.clients ?? reads[0]?.clients} clients through PgBouncer`,
        unit: "TPS",
        categories: bars.map(([label]) => label),
        series: [{ name: "TPS", values: bars.map(([, tps]) => tps) }],
    };
}

function lagTable(results: BenchResults): string {
    return table(
        ["replicas", "write TPS on the primary", "replica", "samples", "bytes p50", "bytes p99", "bytes max", "ms p50", "ms p99", "ms max"],
        results.lag.flatMap((run) =>
            run.perReplica.map((r) => [
                String(run.replicas),
                integer(run.tps),
                r.replica,
                String(r.samples),
                integer(r.bytes.p50),
                integer(r.bytes.p99),
                integer(r.bytes.max),
                fixed(r.seconds.p50 * 1000, 1),
                fixed(r.seconds.p99 * 1000, 1),
                fixed(r.seconds.max * 1000, 1),
            ]),
        ),
    );
}

/** Where the ratios differ from the reference, with the figures of this run that bear on it. */
function gaps(results: BenchResults, cells: Cells): string {
    const rt = results.roundTrip;
    const p2000 = cells.find("tpcb", "pgbouncer", 2000);
    const cpu = Math.max(
        ...cells.where((c) => c.pgbouncerCpuCores !== undefined && !c.connectPerTransaction).map((c) => c.pgbouncerCpuCores!),
    );
    const [cPooled] = cells.where((c) => c.route === "pgbouncer" && c.connectPerTransaction);
    const [cDirect] = cells.where((c) => c.route === "direct" && c.connectPerTransaction);
    const plainPair = (auth: Cell["auth"]) =>
        (["pgbouncer", "direct"] as const).map((route) =>
            cells.plain.find((c) => c.route === route && c.connectPerTransaction && c.auth === auth),
        );
    const [plainPooled, plainDirect] = plainPair("scram-sha-256");
    const [md5Pooled, md5Direct] = plainPair("md5");
    const lines = [
        `- **TLS on every connection.** The stack under test is production's: clients must use TLS (\`clientTlsSslmode = require\`, \`hostssl\` for direct logins) and PgBouncer talks to PostgreSQL over TLS with \`verify-full\`; every login is also a SCRAM-SHA-256 exchange. The reference ran on loopback without either. Connection setup pays for it most: with \`-C\` pgbench's mean connection time was ${fixed(cPooled?.averageConnectionMs, 1)} ms to PgBouncer and ${fixed(cDirect?.averageConnectionMs, 1)} ms to PostgreSQL; the pooler saves the backend's fork and start, not the handshake, which the client and PgBouncer still do for every connection. The same pair on the staging stack without client TLS (\`sslmode=disable\`): ${integer(plainPooled?.tps)} vs ${integer(plainDirect?.tps)} TPS, ${times(ratio(plainPooled?.tps, plainDirect?.tps))}, mean connection ${fixed(plainPooled?.averageConnectionMs, 1)} ms vs ${fixed(plainDirect?.averageConnectionMs, 1)} ms. With md5 logins instead of SCRAM (\`authMethod = md5\`, no TLS), where the client hashes once instead of running 4096 PBKDF2 rounds: ${integer(md5Pooled?.tps)} vs ${integer(md5Direct?.tps)} TPS, ${times(ratio(md5Pooled?.tps, md5Direct?.tps))}, mean connection ${fixed(md5Pooled?.averageConnectionMs, 1)} ms vs ${fixed(md5Direct?.averageConnectionMs, 1)} ms. What closes this gap is fewer logins, not a faster pooler: an application keeps its connections to PgBouncer open (Django's \`CONN_MAX_AGE\` above 0 is safe in transaction mode), and PgBouncer keeps its own to PostgreSQL.`,
        `- **Everything shares the 2 cores.** pgbench (2 threads), PgBouncer, the primary, the streaming replica (replaying every write), the exporters and Prometheus all run on the same ${results.machine.cores} cores. PgBouncer is single-threaded: its busiest run used ${Number.isFinite(cpu) ? cpu.toFixed(2) : NOT_MEASURED} of a core${p2000?.pgbouncerCpuCores !== undefined ? ` (${p2000.pgbouncerCpuCores.toFixed(2)} at 2000 TPC-B clients)` : ""}.`,
        `- **Replay lag.** Each replica's startup process replays the primary's WAL on the same cores the writers use; the worst replica's p99 was ${fixed(worstLagMs(lagOf(results, 1)), 1)} ms with 1 replica and ${fixed(worstLagMs(lagOf(results, 3)), 1)} ms with 3, while write TPS on the primary went ${times(ratio(lagOf(results, 3)?.tps, lagOf(results, 1)?.tps))} from 1 to 3 replicas (each replica adds a WAL sender and its replay to the 2 cores).`,
        `- **A network hop through the Docker bridge.** Client → PgBouncer → PostgreSQL crosses the bridge twice, each round trip ${fixed(rt.clusterNetworkUs, 1)} µs against ${fixed(rt.loopbackUs, 1)} µs on loopback inside one container (medians).`,
    ];
    return lines.join("\n");
}

/** Each leader fault's runs, summarized, with its goal from issue 12. */
function failoverTable(results: BenchResults): string {
    const runs = results.failover?.runs ?? [];
    if (runs.length === 0 || !results.failover) {
        return "Failover: not measured in this run.";
    }
    const bound = results.failover.ttlSeconds + 5;
    const goals: Record<FailoverRun["fault"], { seconds: number; text: string }> = {
        switchover: { seconds: 2, text: "≤ 2 s, 0 client errors" },
        stop: { seconds: 5, text: "≤ 5 s" },
        kill: { seconds: bound, text: `≤ TTL + 5 s (${bound} s)` },
        isolate: { seconds: bound, text: `≤ TTL + 5 s (${bound} s)` },
    };
    const rows = (["switchover", "stop", "kill", "isolate"] as const).flatMap((fault) => {
        const of = runs.filter((r) => r.fault === fault);
        if (of.length === 0) {
            return [];
        }
        const gaps = distribution(of.map((r) => r.gapSeconds));
        const rejoins = of.flatMap((r) => (r.rejoinSeconds === undefined ? [] : [r.rejoinSeconds]));
        const errors = of.reduce((sum, r) => sum + r.clientErrors, 0);
        const goal = goals[fault];
        const met = gaps.max <= goal.seconds && (fault !== "switchover" || errors === 0);
        return [
            [
                fault,
                String(of.length),
                `${gaps.p50.toFixed(2)} (${Math.min(...of.map((r) => r.gapSeconds)).toFixed(2)}–${gaps.max.toFixed(2)})`,
                fixed(Math.max(...of.map((r) => r.longestWriteGapSeconds)), 2),
                String(errors),
                String(of.reduce((sum, r) => sum + r.rowsLost, 0)),
                rejoins.length ? `${Math.max(...rejoins).toFixed(1)} s (${of.filter((r) => r.rewound).length} rewound)` : NOT_MEASURED,
                `${goal.text}: ${met ? "met" : "missed"}`,
            ],
        ];
    });
    return table(
        [
            "fault",
            "runs",
            "gap s, median (min–max)",
            "longest write gap s",
            "client errors",
            "rows lost",
            "old leader streaming again, worst",
            "goal",
        ],
        rows,
    );
}

/** Renders the report for `results`; chart file names start with `base`. */
export function renderReport(results: BenchResults, base: string): Report {
    const cells = new Cells(results.cells);
    const chartName = (name: string) => `${base}-${name}.svg`;
    const charts: Record<string, string> = {};
    const chart = (name: string, spec: BarChart) => {
        charts[chartName(name)] = renderBarChart(spec);
        return `![${spec.title}](${chartName(name)})`;
    };
    const s = results.settings;
    const single = { pooled: cells.find("select", "pgbouncer", 1), direct: cells.find("select", "direct", 1) };
    const overheadMs = single.pooled && single.direct ? single.pooled.latency.p50Ms - single.direct.latency.p50Ms : undefined;
    const overheadUs = overheadMs === undefined ? undefined : overheadMs * 1000;
    const reads = cells.where((c) => c.route === "readonly").sort((a, b) => a.replicas - b.replicas);
    const primaryAlone = reads[0] ? cells.find("select", "pgbouncer", reads[0].clients, { replicas: reads[0].replicas }) : undefined;
    const lag1 = lagOf(results, 1);
    const lag3 = lagOf(results, 3);
    const bb = results.basebackup;
    const persistent = cells.where((c) => c.route !== "readonly" && !c.connectPerTransaction && c.clients > 1);

    const markdown = [
        `# Benchmark, ${results.started.slice(0, 10)}${results.mode === "quick" ? " (--quick: smoke run, short cells, not figures to quote)" : ""}`,
        "",
        `Run from ${results.started} to ${results.finished} by \`npm run bench${results.mode === "quick" ? " -- --quick" : ""}\`. Raw figures: [\`${base}.json\`](${base}.json).`,
        "",
        "## Machine, versions, settings",
        "",
        table(
            ["", ""],
            [
                [
                    "machine",
                    `${results.machine.cores} cores (${results.machine.cpu}), ${(results.machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Linux ${results.machine.kernel}`,
                ],
                [
                    "versions",
                    `${results.versions.postgresql}; ${results.versions.pgbouncer}; Docker ${results.versions.docker}; Node ${results.versions.node}`,
                ],
                ["stack", s.stack],
                [
                    "PgBouncer",
                    `pool_mode transaction, default_pool_size ${s.poolSize}, reserve_pool_size ${s.reservePoolSize}, max_client_conn ${s.maxClientConn}; client TLS ${s.clientTls}`,
                ],
                ["PostgreSQL", `max_connections ${s.maxConnections}; monitoring ${s.monitoring ? "on (exporters, Prometheus)" : "off"}`],
                [
                    "pgbench",
                    `scale ${s.scale}, ${s.threads} threads, \`-n\`, from a container on the cluster network; each run measured over its last ${s.cellSeconds} s (\`-T\` also covers the logins), TPS and latency percentiles from every transaction's log (\`-l\`)`,
                ],
            ],
        ),
        "",
        "## Against the reference",
        "",
        "Reference: Debian's PostgreSQL and PgBouncer straight on loopback, 2 cores, pool 50, scale 50, 20 s runs.",
        "",
        summaryTable(cells),
        "",
        goalsTable(results, cells),
        "",
        "### Where the gaps come from",
        "",
        gaps(results, cells),
        "",
        "## 1. Pooling gain",
        "",
        chart("tpcb", tpsChart(cells, "tpcb")),
        "",
        chart("select", tpsChart(cells, "select")),
        "",
        "TPS and latencies: the transactions that ended in the run's measured window (its last seconds, column *s measured*). Peak server connections: client backends of the application role on the primary serving the route (from PgBouncer's address, or from anywhere else when direct), in `pg_stat_activity` every 250 ms. Memory: the sum of `Private_Clean + Private_Dirty` in `/proc/<pid>/smaps_rollup` of those backends (found by process title; count in brackets) and of PgBouncer, read from the host halfway through the window; per client = (backends + PgBouncer) / clients. PgBouncer CPU: its `utime + stime` from `/proc/<pid>/stat` over the window / wall time.",
        "",
        cellRows(persistent),
        "",
        "## 2. Pooler overhead",
        "",
        table(
            ["select-only, 1 client", "p50 ms", "p99 ms", "TPS"],
            [single.pooled, single.direct]
                .filter((c): c is Cell => c !== undefined)
                .map((c) => [c.route, fixed(c.latency.p50Ms, 3), fixed(c.latency.p99Ms, 3), integer(c.tps)]),
        ),
        "",
        `Through PgBouncer minus direct at the median: **${fixed(overheadUs, 0)} µs**, that is ${fixed(ratio(overheadUs, results.roundTrip.loopbackUs), 1)} loopback round trips (${fixed(results.roundTrip.loopbackUs, 1)} µs, inside one container) or ${fixed(ratio(overheadUs, results.roundTrip.clusterNetworkUs), 1)} cluster-network round trips (${fixed(results.roundTrip.clusterNetworkUs, 1)} µs, container to container). Round trips: median of one-byte TCP ping-pongs with Nagle off, between processes from the stack's image.`,
        "",
        "## 3. Connection setup",
        "",
        "A new connection for every transaction (`pgbench -C`, select-only): the case connection pooling is for. With client TLS on the bench stack (production's settings); without, on the staging stack (`sslmode=disable`, pool 25, scale 1), to show what TLS adds to a login; and on a staging stack with md5 logins, to show what SCRAM adds.",
        "",
        table(
            ["route", "client TLS", "login", "clients", "TPS", "mean connection ms", "p50 ms", "p99 ms", "transactions", "failed"],
            [...cells.where((c) => c.connectPerTransaction), ...cells.plain.filter((c) => c.connectPerTransaction)].map((c) => [
                c.route,
                c.clientTls ? "yes" : "no",
                c.auth,
                String(c.clients),
                integer(c.tps),
                fixed(c.averageConnectionMs, 2),
                fixed(c.latency.p50Ms, 2),
                fixed(c.latency.p99Ms, 2),
                integer(c.transactions),
                String(c.failed),
            ]),
        ),
        "",
        "## 4. Replication lag under write load",
        "",
        `Replay lag of each replica sampled on the primary every ${results.lag[0]?.sampleIntervalMs ?? NOT_MEASURED} ms from \`pg_stat_replication\` (\`pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)\` and \`replay_lag\`, NULL — caught up, nothing new — counted as 0) while pgbench runs TPC-B through PgBouncer with ${results.lag[0]?.clients ?? NOT_MEASURED} clients for ${results.lag[0]?.seconds ?? NOT_MEASURED} s. Write TPS on the primary with 3 replicas against 1: ${times(ratio(lag3?.tps, lag1?.tps))}.`,
        "",
        results.lag.length ? chart("lag", lagChart(results)) : "",
        "",
        lagTable(results),
        "",
        "## 5. Bring-up and basebackup",
        "",
        table(
            ["stack", "replicas", "from nothing to every replica streaming"],
            results.bringUp.map((b) => [b.stack, String(b.replicas), `${b.seconds.toFixed(1)} s`]),
        ),
        "",
        bb
            ? `A replica joining a primary holding ${mb(bb.bytes)} (\`sum(pg_database_size)\`): ${bb.cloneSeconds.toFixed(1)} s from its container's start to streaming (clone and first start), **${(bb.bytes / 1e6 / bb.cloneSeconds).toFixed(0)} MB/s**; the whole update (\`replicaCount\` 1 → 2, which restarts the primary and replica 1 for the new WAL-sender limits) took ${bb.updateSeconds.toFixed(1)} s.`
            : "Basebackup: not measured in this mode.",
        "",
        "## 6. Read scaling",
        "",
        reads.length ? chart("reads", readChart(reads, primaryAlone)) : "",
        "",
        cellRows([...(primaryAlone ? [primaryAlone] : []), ...reads]),
        "",
        "## 7. Failover",
        "",
        `Each leader fault on the production stack (${results.failover?.runs.length ?? 0} faults), with ${results.failover?.writers ?? NOT_MEASURED} writers committing through PgBouncer on persistent connections throughout. Gap: from the last commit on the old timeline to the first on the new one, read from the rows (each carries its timeline and \`clock_timestamp()\`), as CloudNativePG measures a failover. Rows lost: acknowledged commits missing on the new leader. The old leader is started again (or reconnected) after each fault and must stream from the new one.`,
        "",
        failoverTable(results),
        "",
        results.routerHop
            ? `The router's hop, one client, select-only, ${results.routerHop.seconds} s each from inside PgBouncer's container: through HAProxy ${fixed(results.routerHop.routedLatencyMs, 3)} ms, straight to the leader ${fixed(results.routerHop.directLatencyMs, 3)} ms per transaction: **${fixed((results.routerHop.routedLatencyMs - results.routerHop.directLatencyMs) * 1000, 0)} µs** for the hop (loopback, in one container).`
            : "The router's hop: not measured in this run.",
        "",
    ].join("\n");

    const readmeBlock = [
        README_START,
        `Latest full run: ${results.started.slice(0, 10)}, ${results.machine.cores} cores, ${(results.machine.memoryBytes / 1024 ** 3).toFixed(0)} GiB, ${results.versions.postgresql.split(" (")[0]}, ${results.versions.pgbouncer}, Docker ${results.versions.docker}; stack ${s.stack}; pgbench scale ${s.scale}, ${s.cellSeconds} s runs. Full report, charts and raw numbers: [\`bench/results/${base}.md\`](bench/results/${base}.md).`,
        "",
        summaryTable(cells),
        "",
        goalsTable(results, cells),
        "",
        failoverTable(results),
        "",
        `Pooler overhead at 1 client: ${fixed(overheadUs, 0)} µs, of which the router's hop ${results.routerHop ? fixed((results.routerHop.routedLatencyMs - results.routerHop.directLatencyMs) * 1000, 0) : NOT_MEASURED} µs (${fixed(ratio(overheadUs, results.roundTrip.loopbackUs), 1)} loopback round trips). Replay lag p99 (worst replica) with 1 / 3 replicas: ${fixed(worstLagMs(lag1), 1)} / ${fixed(worstLagMs(lag3), 1)} ms. Basebackup: ${bb ? `${(bb.bytes / 1e6 / bb.cloneSeconds).toFixed(0)} MB/s` : NOT_MEASURED}. Reads through \`obcms_readonly\`, 1 / 3 replicas vs the primary alone: ${reads.map((c) => integer(c.tps)).join(" / ") || NOT_MEASURED} vs ${integer(primaryAlone?.tps)} TPS.`,
        README_END,
    ].join("\n");

    return { markdown, charts, readmeBlock };
}

/** The README with the text between the markers replaced by `block` (markers included in `block`). */
export function replaceReadmeBlock(readme: string, block: string): string {
    const start = readme.indexOf(README_START);
    const end = readme.indexOf(README_END);
    if (start === -1 || end === -1 || end < start) {
        throw new Error(`README.md has no ${README_START} … ${README_END} block`);
    }
    return readme.slice(0, start) + block + readme.slice(end + README_END.length);
}
