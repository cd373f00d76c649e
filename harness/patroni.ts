// What Patroni says about a started stack's members: who leads, who streams,
// on which timeline. Tests find the leader here, never by a member's name.

import { FILES } from "../components/render/paths";
import { restApiCurl } from "../components/render/patroni/start-script";
import type { StartedStack } from "./cluster";
import { docker, query, waitFor } from "./sql";

export interface MemberStatus {
    /** Patroni's member name, e.g. `pg-2`. */
    readonly name: string;
    readonly container: string;
    /** Superuser URL, direct to the member, reachable from the host. */
    readonly url: string;
    readonly role: "leader" | "replica";
    /** Patroni's state: `running` (the leader), `streaming`, `starting`, `stopped`, ... */
    readonly state: string;
    readonly timeline?: number;
    /** Counts toward the synchronous quorum (production). */
    readonly quorumStandby: boolean;
}

interface PatronictlMember {
    Member: string;
    Role: string;
    State: string;
    TL?: number;
}

/**
 * How long one member may take to answer `patronictl list`. A member cut off
 * the network never answers (patronictl retries etcd without end: a bench
 * run hung on the isolated leader for minutes); a busy one answers in 0.5-2 s.
 */
const PATRONICTL_LIST_TIMEOUT_SECONDS = 10;

/** `patronictl pause|resume --wait` returns once every member has seen the change: within a cycle (`loop_wait`). */
const PATRONICTL_WAIT_TIMEOUT_SECONDS = 60;

/** What a member's Patroni reports of itself (`GET /patroni`), asked inside its container over TLS. */
export async function patroniStatus(container: string): Promise<Record<string, any>> {
    return JSON.parse(await docker("exec", container, ...restApiCurl("/patroni", { maxTimeSeconds: 5 })));
}

/** Runs `patronictl` in a member's container, with its config, killed after `timeoutSeconds`. */
export function patronictl(container: string, timeoutSeconds: number, ...args: string[]): Promise<string> {
    return docker("exec", container, "timeout", String(timeoutSeconds), "patronictl", "-c", FILES.patroniConf, ...args);
}

/** `patronictl list` as JSON, asked of the first member that answers. */
async function patronictlList(stack: StartedStack): Promise<PatronictlMember[]> {
    let lastError: unknown;
    for (const member of stack.topology.members) {
        try {
            return JSON.parse(await patronictl(member.container, PATRONICTL_LIST_TIMEOUT_SECONDS, "list", "-f", "json"));
        } catch (error) {
            lastError = error;
        }
    }
    throw new Error(`no member answered patronictl list: ${String(lastError)}`);
}

/** Every member the DCS knows of, in member order, with its role and state. */
export async function clusterStatus(stack: StartedStack): Promise<MemberStatus[]> {
    const listed = await patronictlList(stack);
    await stack.refreshAddresses();
    return stack.topology.allMembers.flatMap((member) => {
        const entry = listed.find((m) => m.Member === member.node);
        if (!entry) {
            return [];
        }
        return [
            {
                name: member.node,
                container: member.container,
                url: stack.outputs.memberUrls[member.node],
                role: entry.Role === "Leader" ? "leader" : "replica",
                state: entry.State,
                timeline: entry.TL,
                quorumStandby: entry.Role === "Quorum Standby",
            },
        ];
    });
}

/** The member that leads and runs, once there is one (and it is not `except`). */
export function waitForLeader(stack: StartedStack, timeoutMs: number, except?: string): Promise<MemberStatus> {
    return waitFor(`a leader${except ? ` other than ${except}` : ""}`, timeoutMs, async () =>
        (await clusterStatus(stack)).find((m) => m.role === "leader" && m.state === "running" && m.name !== except),
    );
}

/**
 * Waits until every declared member is in the cluster: one leader running,
 * every other member streaming on the leader's timeline. Returns them.
 */
export async function waitForHealthyCluster(stack: StartedStack, timeoutMs: number): Promise<MemberStatus[]> {
    let lastSeen = "nothing";
    try {
        return await waitFor("every member streaming from one leader", timeoutMs, async () => {
            const members = await clusterStatus(stack);
            lastSeen = members.map((m) => `${m.name} ${m.role} ${m.state} TL ${m.timeline ?? "-"}`).join(", ") || "no member";
            const leaders = members.filter((m) => m.role === "leader" && m.state === "running");
            const healthy =
                members.length === stack.topology.allMembers.length &&
                leaders.length === 1 &&
                members.every((m) => m.role === "leader" || (m.state === "streaming" && m.timeline === leaders[0].timeline));
            return healthy ? members : undefined;
        });
    } catch (error) {
        // What Patroni last reported says which member held the cluster back.
        throw new Error(`${error instanceof Error ? error.message : String(error)}; last seen: ${lastSeen}`);
    }
}

/**
 * Runs `fn` while WAL replay is paused on `replica`, then resumes it. Patroni resumes a
 * paused replay at a replica's next cycle (`handle_parameter_change`, for the pause that
 * PostgreSQL 14+ makes on a parameter change), so the cluster is in maintenance mode
 * (`patronictl pause`) meanwhile. A segment switch on the leader first: `archive_timeout`
 * then forces none for a minute, and a forced one while replay is paused would put the
 * replica up to 16 MB behind, past the read-only route's lag bound.
 */
export async function withReplayPaused<T>(leader: MemberStatus, replica: MemberStatus, fn: () => Promise<T>): Promise<T> {
    const [{ lsn }] = await query(leader.url, "SELECT pg_switch_wal()::text AS lsn");
    await waitFor("the segment switch replayed", 10_000, async () => {
        const [{ replayed }] = await query(replica.url, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS replayed", [lsn]);
        return replayed ? true : undefined;
    });
    await patronictl(leader.container, PATRONICTL_WAIT_TIMEOUT_SECONDS, "pause", "--wait");
    try {
        await query(replica.url, "SELECT pg_wal_replay_pause()");
        try {
            // The startup process pauses only at the next WAL record it replays, and an idle
            // leader may write none for minutes: each look commits a transaction with an xid.
            await waitFor("replay paused", 10_000, async () => {
                await query(leader.url, "SELECT txid_current()");
                const [{ state }] = await query(replica.url, "SELECT pg_get_wal_replay_pause_state() AS state");
                return state === "paused" ? true : undefined;
            });
            return await fn();
        } finally {
            await query(replica.url, "SELECT pg_wal_replay_resume()");
        }
    } finally {
        await patronictl(leader.container, PATRONICTL_WAIT_TIMEOUT_SECONDS, "resume", "--wait");
    }
}
