// The failover section of the benchmark: each leader fault repeated on the
// production stack, measured by harness/faults.ts exactly as the failover
// tests measure it, and the router's hop, timed from inside the pooler's
// container with and without it.
import { POSTGRES_PORT, ROUTER_PORTS } from "../components/settings";
import type { StartedStack } from "../harness/cluster";
import { type LeaderFault, leaderFault } from "../harness/faults";
import { docker } from "../harness/sql";
import { createWritesTable } from "../harness/workload";
import { parseSummary } from "./pgbench";
import type { FailoverRun, RouterHop } from "./results";

export const LEADER_FAULTS: readonly LeaderFault[] = ["switchover", "stop", "kill", "isolate"];

/** Persistent connections writing during each fault; the switchover's goal is 0 errors on all of them. */
export const FAILOVER_WRITERS = 10;

/** `runs` of each leader fault in turn (switchover, stop, kill, isolate, then again), each measured alone. */
export async function runFailovers(stack: StartedStack, runs: number, progress: (line: string) => void): Promise<FailoverRun[]> {
    await createWritesTable(stack);
    const results: FailoverRun[] = [];
    for (let run = 1; run <= runs; run++) {
        for (const fault of LEADER_FAULTS) {
            const f = await leaderFault(stack, fault, FAILOVER_WRITERS);
            results.push({
                fault,
                run,
                gapSeconds: f.gapSeconds,
                longestWriteGapSeconds: f.longestWriteGapSeconds,
                clientErrors: f.clientErrors,
                rowsLost: f.rowsLost,
                rejoinSeconds: f.rejoinSeconds,
                rewound: f.rewound,
            });
            progress(`${fault} #${run}: gap ${f.gapSeconds.toFixed(2)} s, ${f.clientErrors} errors, ${f.rowsLost} lost`);
        }
    }
    return results;
}

/**
 * One pgbench client, select-only, run inside PgBouncer's container against
 * the leader twice: through the router on loopback, and straight to the
 * leader's container. The difference is what the router's hop costs a query.
 */
export async function measureRouterHop(stack: StartedStack, leaderContainer: string, seconds: number): Promise<RouterHop> {
    const app = new URL(stack.outputs.databaseUrl);
    const database = decodeURIComponent(app.pathname.slice(1));
    const pgbench = async (host: string, port: number) => {
        const output = await docker(
            "exec",
            "-e",
            `PGPASSWORD=${decodeURIComponent(app.password)}`,
            "-e",
            // The server's certificate carries the route names and the container's name alike.
            "PGSSLMODE=require",
            stack.topology.pgbouncer.container,
            "pgbench",
            "-h",
            host,
            "-p",
            String(port),
            "-U",
            decodeURIComponent(app.username),
            "-S",
            "-n",
            "-c",
            "1",
            "-T",
            String(seconds),
            database,
        );
        return parseSummary(output);
    };
    const routed = await pgbench(stack.topology.routes.readWrite, ROUTER_PORTS.readWrite);
    const direct = await pgbench(leaderContainer, POSTGRES_PORT);
    return {
        seconds,
        routedLatencyMs: routed.latencyAverageMs,
        directLatencyMs: direct.latencyAverageMs,
        routedTps: routed.tps,
        directTps: direct.tps,
    };
}
