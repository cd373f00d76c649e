// Faults of the leader, with writers committing through PgBouncer
// throughout, measured as CloudNativePG measures a failover: the write gap
// is read from the rows themselves, from the last commit on the old timeline
// to the first on the next. The failover tests assert on these figures, and
// the benchmark repeats them.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import type { StartedStack } from "./cluster";
import { clusterStatus, type MemberStatus, waitForHealthyCluster, waitForLeader } from "./patroni";
import { containerLog, docker, query, waitFor } from "./sql";
import { PROJECT_ROOT } from "./stack-config";
import {
    type FailoverSpans,
    failoverGapSeconds,
    failoverSpans,
    leaderIds,
    timelineSpans,
    WRITES_TABLE,
    Writer,
    type WriterReport,
} from "./workload";

const run = promisify(execFile);

/** Commits each writer must have acknowledged before a fault, and again after it. */
export const WRITES_AROUND_FAULT = 20;
/** The writers' ids are spaced this far apart, so concurrent writers never collide. */
const IDS_PER_WRITER = 1_000_000;

export interface WritesOutcome {
    readonly reports: readonly WriterReport[];
    /** Acknowledged ids missing on the leader afterwards. */
    readonly lost: readonly number[];
    /** The longest any writer went without a commit, in seconds. */
    readonly longestGapSeconds: number;
    /** Failed statements over all writers. */
    readonly clientErrors: number;
    readonly errors: readonly string[];
}

/**
 * Runs `act` while `writers` clients each commit one row at a time through
 * `url` on a connection of their own, kept open for as long as it works.
 * Every writer has committed before `act` and commits again after it; then
 * the acknowledged rows are looked up on whichever member leads.
 */
export async function underWrites(
    stack: StartedStack,
    writers: number,
    act: () => Promise<void>,
    url = stack.outputs.databaseUrl,
): Promise<WritesOutcome> {
    const [{ next }] = await query(stack.outputs.databaseUrl, `SELECT coalesce(max(id), 0) + 1 AS next FROM ${WRITES_TABLE}`);
    const running = Array.from({ length: writers }, (_, k) => new Writer(url, next + k * IDS_PER_WRITER, 600));
    let reports: WriterReport[];
    try {
        await Promise.all(running.map((w) => w.waitForCommits(WRITES_AROUND_FAULT, 60_000)));
        await act();
        await Promise.all(running.map((w) => w.waitForCommits(w.commits + WRITES_AROUND_FAULT, 180_000)));
    } finally {
        // Also when the fault fails: a writer left running would go on into the next test.
        reports = await Promise.all(running.map((w) => w.stop()));
    }
    const present = await leaderIds(stack);
    return {
        reports,
        lost: reports.flatMap((r) => r.committed.filter((id) => !present.has(id))),
        longestGapSeconds: Math.max(...reports.map((r) => r.longestGapSeconds)),
        clientErrors: reports.reduce((sum, r) => sum + r.failures, 0),
        errors: reports.flatMap((r) => r.errors),
    };
}

export type LeaderFault = "switchover" | "stop" | "kill" | "isolate";

export interface FaultFigures {
    readonly fault: LeaderFault;
    readonly oldLeader: string;
    readonly newLeader: string;
    /** Last commit on the old timeline to the first on the new one (CloudNativePG's failover time). */
    readonly gapSeconds: number;
    /** The commits on the old leader's timeline and on the next, as the new leader has them. */
    readonly timelines: FailoverSpans;
    /** The longest any writer went without a commit, as its client saw it. */
    readonly longestWriteGapSeconds: number;
    readonly clientErrors: number;
    readonly rowsLost: number;
    /** Each writer's acknowledged ids, in commit order, and which of them are missing on the new leader. */
    readonly committed: readonly (readonly number[])[];
    readonly lostIds: readonly number[];
    /** From the old leader's start (or reconnection) until it streams from the new one; none after a switchover. */
    readonly rejoinSeconds?: number;
    /** Whether Patroni ran pg_rewind on the old leader before it rejoined. */
    readonly rewound?: boolean;
    /** Isolation only: when the old leader stopped taking writes and when the new one took its first, in PostgreSQL's log clock. */
    readonly fencing?: { readonly oldLeaderStopped: string; readonly newLeaderPromoted: string };
    readonly errors: readonly string[];
}

/** `scripts/cluster.sh` against the stack, as an operator runs it. */
export async function clusterScript(stack: StartedStack, ...args: string[]): Promise<string> {
    const { stdout } = await run(path.join(PROJECT_ROOT, "scripts", "cluster.sh"), ["-c", stack.clusterName, ...args], {
        timeout: 120_000,
    });
    return stdout;
}

/** PostgreSQL's own log timestamp ("2026-12-05 14:40:41.173"): every member logs in the stack's time zone, so these compare as text. */
function logTime(log: string, pattern: RegExp, after = ""): string | undefined {
    for (const line of log.split("\n")) {
        const stamp = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) /.exec(line)?.[1];
        if (stamp && stamp > after && pattern.test(line)) {
            return stamp;
        }
    }
    return undefined;
}

/** How many times Patroni ran pg_rewind on a member, by its log. */
export function rewinds(log: string): number {
    return log.match(/running pg_rewind from/g)?.length ?? 0;
}

/** A member's status once it streams again, on the timeline of the member that leads. */
export function rejoined(stack: StartedStack, name: string, timeoutMs: number): Promise<MemberStatus> {
    return waitFor(`${name} streaming from the new leader`, timeoutMs, async () => {
        const members = await clusterStatus(stack);
        const leader = members.find((m) => m.role === "leader" && m.state === "running");
        const member = members.find((m) => m.name === name);
        return leader && member?.state === "streaming" && member.timeline === leader.timeline ? member : undefined;
    });
}

/**
 * One leader fault under `writers` writers: the leader is switched over,
 * stopped, killed or cut off the network; a new leader takes the writes; the
 * old one is brought back and must stream from the new one again.
 */
export async function leaderFault(stack: StartedStack, fault: LeaderFault, writers: number): Promise<FaultFigures> {
    const before = await waitForHealthyCluster(stack, 180_000);
    const oldLeader = before.find((m) => m.role === "leader") as MemberStatus;
    const network = stack.topology.network;
    // The fault's moment in the clock PostgreSQL writes its log with, and the rewinds so far.
    const [{ cut }] = await query(
        oldLeader.url,
        "SELECT to_char(clock_timestamp() AT TIME ZONE current_setting('log_timezone'), 'YYYY-MM-DD HH24:MI:SS.MS') AS cut",
    );
    const rewindsBefore = rewinds(await containerLog(oldLeader.container));
    let newLeader: MemberStatus | undefined;
    let restored = fault === "switchover";
    /** Brings the old leader back: started again, or reconnected. */
    const restore = async () => {
        restored = true;
        if (fault === "isolate") {
            await docker("network", "connect", network, oldLeader.container);
        } else {
            await docker("start", oldLeader.container);
        }
    };
    let outcome: WritesOutcome;
    let timelines: FailoverSpans;
    let fencing: FaultFigures["fencing"];
    try {
        outcome = await underWrites(stack, writers, async () => {
            switch (fault) {
                case "switchover":
                    await clusterScript(stack, "switchover");
                    break;
                case "stop":
                    await docker("stop", oldLeader.container);
                    break;
                case "kill":
                    await docker("kill", oldLeader.container);
                    break;
                case "isolate":
                    await docker("network", "disconnect", network, oldLeader.container);
                    break;
                default: {
                    const never: never = fault;
                    throw new Error(`unknown fault ${never}`);
                }
            }
            newLeader = await waitForLeader(stack, 120_000, oldLeader.name);
        });
        timelines = failoverSpans(await timelineSpans(newLeader!.url), oldLeader.timeline as number);
        if (fault === "isolate") {
            // The old leader's PostgreSQL stops taking writes when Patroni demotes it: a shutdown request, in its own log.
            fencing = {
                oldLeaderStopped:
                    logTime(await containerLog(oldLeader.container), /received (fast|immediate|smart) shutdown request/, cut) ?? "never",
                newLeaderPromoted: logTime(await containerLog(newLeader!.container), /selected new timeline ID/, cut) ?? "never",
            };
        }
    } catch (error) {
        // The next fault starts from a whole cluster, whatever this one did.
        if (!restored) {
            await restore().catch(() => undefined);
        }
        throw error;
    }

    let rejoinSeconds: number | undefined;
    if (!restored) {
        const back = Date.now();
        await restore();
        await rejoined(stack, oldLeader.name, 180_000);
        rejoinSeconds = (Date.now() - back) / 1000;
    }
    await waitForHealthyCluster(stack, 180_000);
    const rewound = rewinds(await containerLog(oldLeader.container)) > rewindsBefore;
    return {
        fault,
        oldLeader: oldLeader.name,
        newLeader: newLeader!.name,
        gapSeconds: failoverGapSeconds(timelines),
        timelines,
        longestWriteGapSeconds: outcome.longestGapSeconds,
        clientErrors: outcome.clientErrors,
        rowsLost: outcome.lost.length,
        committed: outcome.reports.map((r) => r.committed),
        lostIds: outcome.lost,
        rejoinSeconds,
        rewound,
        fencing,
        errors: outcome.errors,
    };
}
