// What Patroni says about a started stack's members: who leads, who streams,
// on which timeline. Tests find the leader here, never by a member's name.

import { FILES } from "../components/render/paths";
import { restApiCurl } from "../components/render/patroni/start-script";
import type { StartedStack } from "./cluster";
import { docker, waitFor } from "./sql";

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

/** What a member's Patroni reports of itself (`GET /patroni`), asked inside its container over TLS. */
export async function patroniStatus(container: string): Promise<Record<string, any>> {
    return JSON.parse(await docker("exec", container, ...restApiCurl("/patroni", { maxTimeSeconds: 5 })));
}

/** `patronictl list` as JSON, asked of the first member that answers. */
async function patronictlList(stack: StartedStack): Promise<PatronictlMember[]> {
    let lastError: unknown;
    for (const member of stack.topology.members) {
        try {
            return JSON.parse(
                await docker(
                    "exec",
                    member.container,
                    "timeout",
                    String(PATRONICTL_LIST_TIMEOUT_SECONDS),
                    "patronictl",
                    "-c",
                    FILES.patroniConf,
                    "list",
                    "-f",
                    "json",
                ),
            );
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
    return stack.topology.members.flatMap((member) => {
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
                members.length === stack.topology.members.length &&
                leaders.length === 1 &&
                members.every((m) => m.role === "leader" || (m.state === "streaming" && m.timeline === leaders[0].timeline));
            return healthy ? members : undefined;
        });
    } catch (error) {
        // What Patroni last reported says which member held the cluster back.
        throw new Error(`${error instanceof Error ? error.message : String(error)}; last seen: ${lastSeen}`);
    }
}
