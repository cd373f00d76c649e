// The benchmark's report, rendered from a results file alone: ratios against
// the reference, the goals, the README block, and the SVG charts.
import { describe, expect, it } from "vitest";
import { markdownCell, README_END, README_START, renderReport, replaceReadmeBlock } from "../../bench/report";
import type { BenchResults, Cell } from "../../bench/results";
import { niceCeiling, renderBarChart, shortNumber, xmlText } from "../../bench/svg";

function cell(partial: Partial<Cell> & Pick<Cell, "workload" | "route" | "clients" | "tps">): Cell {
    return {
        connectPerTransaction: false,
        clientTls: true,
        auth: "scram-sha-256",
        replicas: 1,
        seconds: 20,
        transactions: Math.round(partial.tps * 20),
        failed: 0,
        latency: { p50Ms: 1, p99Ms: 2, meanMs: 1.2 },
        ...partial,
    };
}

const MB = 1e6;

/** Figures chosen so each ratio is known: the reference's exactly, or off it by a known amount. */
const RESULTS: BenchResults = {
    mode: "full",
    started: "2026-11-29T17:00:00.000Z",
    finished: "2026-11-29T17:18:00.000Z",
    machine: { cores: 2, memoryBytes: 24 * 1024 ** 3, kernel: "6.18.44", cpu: "Test CPU" },
    versions: {
        postgresql: "PostgreSQL 17.12 (Debian 17.12-0+deb13u1)",
        pgbouncer: "PgBouncer 1.24.1",
        docker: "20.10.24",
        node: "v20.20.2",
    },
    settings: {
        stack: "production with replicaCount=1",
        scale: 50,
        cellSeconds: 20,
        threads: 2,
        poolSize: 50,
        reservePoolSize: 5,
        maxConnections: 2100,
        maxClientConn: 2100,
        clientTls: "require",
        monitoring: true,
    },
    bringUp: [
        { stack: "staging", replicas: 1, seconds: 12.4 },
        { stack: "production", replicas: 3, seconds: 61.2 },
    ],
    cells: [
        cell({ workload: "select", route: "pgbouncer", clients: 1, tps: 5000, latency: { p50Ms: 0.15, p99Ms: 0.4, meanMs: 0.2 } }),
        cell({ workload: "select", route: "direct", clients: 1, tps: 9000, latency: { p50Ms: 0.1, p99Ms: 0.3, meanMs: 0.11 } }),
        cell({
            workload: "tpcb",
            route: "pgbouncer",
            clients: 1000,
            tps: 2800,
            peakServerConnections: 55,
            pgbouncerCpuCores: 0.5,
            memory: { backends: 55, backendsPrivateBytes: 67 * MB, pgbouncerPrivateBytes: 7 * MB },
        }),
        cell({ workload: "tpcb", route: "pgbouncer", clients: 2000, tps: 2000, failed: 2, pgbouncerCpuCores: 0.9 }),
        cell({ workload: "tpcb", route: "direct", clients: 50, tps: 4000 }),
        cell({
            workload: "tpcb",
            route: "direct",
            clients: 1000,
            tps: 1400,
            memory: { backends: 1000, backendsPrivateBytes: 1340 * MB, pgbouncerPrivateBytes: 0 },
        }),
        cell({ workload: "tpcb", route: "direct", clients: 2000, tps: 800 }),
        cell({ workload: "select", route: "pgbouncer", clients: 100, tps: 9000 }),
        cell({ workload: "select", route: "pgbouncer", clients: 1000, tps: 8000 }),
        cell({ workload: "select", route: "pgbouncer", clients: 2000, tps: 7000, failed: 0 }),
        cell({ workload: "select", route: "direct", clients: 1000, tps: 4000 }),
        cell({ workload: "select", route: "pgbouncer", clients: 50, connectPerTransaction: true, tps: 300, averageConnectionMs: 6 }),
        cell({ workload: "select", route: "direct", clients: 50, connectPerTransaction: true, tps: 100, averageConnectionMs: 18 }),
        cell({
            workload: "select",
            route: "pgbouncer",
            clients: 50,
            connectPerTransaction: true,
            clientTls: false,
            tps: 1300,
            averageConnectionMs: 1.5,
        }),
        cell({
            workload: "select",
            route: "direct",
            clients: 50,
            connectPerTransaction: true,
            clientTls: false,
            tps: 260,
            averageConnectionMs: 7.5,
        }),
        cell({
            workload: "select",
            route: "pgbouncer",
            clients: 50,
            connectPerTransaction: true,
            clientTls: false,
            auth: "md5",
            tps: 5200,
            averageConnectionMs: 0.4,
        }),
        cell({
            workload: "select",
            route: "direct",
            clients: 50,
            connectPerTransaction: true,
            clientTls: false,
            auth: "md5",
            tps: 400,
            averageConnectionMs: 5,
        }),
        cell({ workload: "select", route: "readonly", clients: 100, tps: 8500 }),
        cell({ workload: "select", route: "readonly", clients: 100, tps: 8800, replicas: 3 }),
    ],
    roundTrip: { loopbackUs: 12.5, clusterNetworkUs: 20 },
    lag: [
        {
            replicas: 1,
            clients: 100,
            seconds: 60,
            sampleIntervalMs: 100,
            tps: 1000,
            perReplica: [
                {
                    replica: "replica_1",
                    samples: 590,
                    bytes: { p50: 1000, p99: 90000, max: 120000 },
                    seconds: { p50: 0.001, p99: 0.02, max: 0.05 },
                },
            ],
        },
        {
            replicas: 3,
            clients: 100,
            seconds: 60,
            sampleIntervalMs: 100,
            tps: 900,
            perReplica: ["replica_1", "replica_2", "replica_3"].map((replica, i) => ({
                replica,
                samples: 590,
                bytes: { p50: 2000, p99: 100000, max: 150000 },
                seconds: { p50: 0.002, p99: 0.03 + i * 0.01, max: 0.08 },
            })),
        },
    ],
    basebackup: { bytes: 1.1e9, cloneSeconds: 20, updateSeconds: 35 },
};

describe("benchmark report", () => {
    const report = renderReport(RESULTS, "2026-11-29");

    it("sets each ratio against the reference's, within 10% or by how much it misses", () => {
        const summary = report.markdown.split("\n").filter((l) => / \| [\d.—]+× \| /.test(l));
        expect(summary).toEqual([
            "| TPC-B, 1000 clients: PgBouncer / direct | 2,800 vs 1,400 TPS | 2.00× | 2.00× | within 10% |",
            "| TPC-B, 2000 clients: PgBouncer / direct | 2,000 vs 800 TPS | 2.50× | 3.10× | 19% below |",
            "| TPC-B: PgBouncer at 1000 / direct at its best (50 clients) | 2,800 vs 4,000 TPS | 0.70× | 0.65× | within 10% |",
            "| select-only, 1000 clients: PgBouncer / direct | 8,000 vs 4,000 TPS | 2.00× | 1.60× | 25% above |",
            "| new connection per transaction (-C, 50 clients): PgBouncer / direct | 300 vs 100 TPS | 3.00× | 13.00× | 77% below |",
            "| backends' private memory at 1000 TPC-B clients: direct / PgBouncer | 1340.0 MB vs 67.0 MB (+ PgBouncer's own 7.0 MB) | 20.00× | 20.15× | within 10% |",
        ]);
    });

    it("states each goal as met or missed from the figures", () => {
        expect(report.markdown).toContain("| zero failed transactions at 2000 clients through PgBouncer | tpcb: 2, select: 0 | missed |");
        expect(report.markdown).toContain(
            "| replay lag p99 under 50 ms with 3 replicas under write load | 50.0 ms (worst replica) | missed |",
        );
        expect(report.markdown).toContain("| production bring-up under 60 s | 61.2 s | missed |");
    });

    it("expresses the pooler's overhead in round trips and gives the raw numbers behind every chart", () => {
        expect(report.markdown).toContain(
            "Through PgBouncer minus direct at the median: **50 µs**, that is 4.0 loopback round trips (12.5 µs, inside one container) or 2.5 cluster-network round trips (20.0 µs, container to container).",
        );
        expect(report.markdown).toContain(
            "| TPC-B | pgbouncer | 1000 | 1 | 20.0 | 2,800 | 1.00 | 2.00 | 56,000 | 0 | — | 55 | 0.50 | 67.0 MB (55) | 0.1 MB | 7.0 MB |",
        );
        expect(report.markdown).toContain("| 3 | 900 | replica_3 | 590 | 2,000 | 100,000 | 150,000 | 2.0 | 50.0 | 80.0 |");
        expect(report.markdown).toContain("| pgbouncer | yes | scram-sha-256 | 50 | 300 | 6.00 | 1.00 | 2.00 | 6,000 | 0 |");
        expect(report.markdown).toContain("| direct | no | scram-sha-256 | 50 | 260 | 7.50 | 1.00 | 2.00 | 5,200 | 0 |");
        expect(report.markdown).toContain("| pgbouncer | no | md5 | 50 | 5,200 | 0.40 | 1.00 | 2.00 | 104,000 | 0 |");
        // The -C ratio against the reference is the TLS pair's; the pair without TLS explains the gap.
        expect(report.markdown).toContain(
            "without client TLS (`sslmode=disable`): 1,300 vs 260 TPS, 5.00×, mean connection 1.5 ms vs 7.5 ms.",
        );
        expect(report.markdown).toContain("4096 PBKDF2 rounds: 5,200 vs 400 TPS, 13.00×, mean connection 0.4 ms vs 5.0 ms.");
        expect(report.markdown).toContain("**55 MB/s**");
        expect(report.markdown).toContain("Write TPS on the primary with 3 replicas against 1: 0.90×.");
        expect(Object.keys(report.charts)).toEqual([
            "2026-11-29-tpcb.svg",
            "2026-11-29-select.svg",
            "2026-11-29-lag.svg",
            "2026-11-29-reads.svg",
        ]);
        for (const name of Object.keys(report.charts)) {
            expect(report.markdown).toContain(`](${name})`);
        }
    });

    it("renders the same bytes for the same results", () => {
        expect(renderReport(RESULTS, "2026-11-29")).toEqual(report);
    });

    it("puts the summary in the README block and replaces only what is between the markers", () => {
        expect(
            report.readmeBlock.startsWith(
                `${README_START}\nLatest full run: 2026-11-29, 2 cores, 24 GiB, PostgreSQL 17.12, PgBouncer 1.24.1, Docker 20.10.24;`,
            ),
        ).toBe(true);
        expect(report.readmeBlock).toContain(
            "Reads through `obcms_readonly`, 1 / 3 replicas vs the primary alone: 8,500 / 8,800 vs 9,000 TPS.",
        );
        expect(report.readmeBlock.endsWith(README_END)).toBe(true);
        const readme = `# x\n\n## Benchmark\n\n${README_START}\nold\n${README_END}\n\n## Notes for operators\n`;
        expect(replaceReadmeBlock(readme, `${README_START}\nnew\n${README_END}`)).toBe(
            `# x\n\n## Benchmark\n\n${README_START}\nnew\n${README_END}\n\n## Notes for operators\n`,
        );
        expect(() => replaceReadmeBlock("# x\n", "b")).toThrow(`README.md has no ${README_START} … ${README_END} block`);
    });

    it("leaves what a quick run did not measure as a dash", () => {
        const quick = renderReport(
            { ...RESULTS, mode: "quick", cells: RESULTS.cells.filter((c) => c.clients < 1000), lag: [], basebackup: undefined },
            "q",
        );
        expect(quick.markdown).toContain("| TPC-B, 1000 clients: PgBouncer / direct | — vs — TPS | — | 2.00× | — |");
        expect(quick.markdown).toContain("Basebackup: not measured in this mode.");
        expect(Object.keys(quick.charts)).toEqual(["q-tpcb.svg", "q-select.svg", "q-reads.svg"]);
    });

    it("keeps a value from breaking a Markdown table", () => {
        expect(markdownCell("a|b\\c\nd")).toBe("a\\|b\\\\c d");
    });
});

describe("SVG charts", () => {
    it("tops the axis at 1, 2 or 5 × 10^k", () => {
        expect([0, 0.3, 1, 1.01, 4270, 5000, 5001].map(niceCeiling)).toEqual([1, 0.5, 1, 2, 5000, 5000, 10000]);
    });

    it("labels bars with three significant figures", () => {
        expect([0, 0.0123, 1.5, 42.42, 2800.4].map(shortNumber)).toEqual(["0", "0.012", "1.50", "42.4", "2800"]);
    });

    it("escapes text, draws one bar per value and leaves a gap for a missing one", () => {
        expect(xmlText(`<a & "b" 'c'>`)).toBe("&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;");
        const svg = renderBarChart({
            title: "TPS <by> clients",
            unit: "TPS",
            categories: ["100", "1000"],
            series: [
                { name: "PgBouncer", values: [2000, 4000] },
                { name: "direct", values: [1000, undefined] },
            ],
        });
        expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="720" height="360"')).toBe(true);
        expect(svg).toContain(">TPS &lt;by&gt; clients</text>");
        // Plot 250 px high, axis top 5000: 4000 is 200 px tall, 2000 is 100, 1000 is 50 (legend swatches left out).
        const bars = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="\d+\.\d" height="([\d.]+)" fill="#(4477aa|ee6677)"\/>/g)].map(
            (m) => [m[3], Number(m[2])],
        );
        expect(bars).toEqual([
            ["4477aa", 100],
            ["ee6677", 50],
            ["4477aa", 200],
        ]);
        expect(svg.endsWith("</svg>\n")).toBe(true);
    });
});
