// The delayed replica on real containers (staging with delayedReplicaMinutes
// 1): it holds a row the leader has deleted for its delay, scripts/cluster.sh
// holds its replay and starts a writable copy of it, and it is never promoted
// nor read from by the application.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restApiGet } from "../../components/render/patroni/start-script";
import { type StartedStack, startStack } from "../../harness/cluster";
import { clusterScript } from "../../harness/faults";
import { clusterStatus, type MemberStatus, patroniStatus, waitForHealthyCluster, waitForLeader } from "../../harness/patroni";
import { docker, query, waitFor, withClient } from "../../harness/sql";
import { Prometheus } from "../support/prometheus";

const DELAY_MINUTES = 1;
/** Where cluster.sh puts the copy, on the delayed replica's volume (its DELAYED_COPY). */
const COPY_SOCKET = "/var/lib/postgresql/data/delayed-copy";
const TABLE = "delayed_check";

const figures: Record<string, number> = {};

afterAll(() => {
    console.table(figures);
});

describe(`staging with a replica ${DELAY_MINUTES} minute behind`, () => {
    let stack: StartedStack;
    let delayed: MemberStatus;

    const prometheus = () => new Prometheus(stack.outputs.prometheusUrl as string);

    /** The replica that is not the delayed one (staging has one). */
    async function otherReplica(): Promise<MemberStatus> {
        return (await clusterStatus(stack)).find((m) => m.role === "replica" && m.name !== delayed.name) as MemberStatus;
    }

    /** Rows of TABLE with `id` on a member; undefined while the member has not replayed the table's creation. */
    async function rowsOn(url: string, id: number): Promise<number | undefined> {
        const [{ present }] = await query(url, `SELECT to_regclass('public.${TABLE}') IS NOT NULL AS present`);
        if (!present) {
            return undefined;
        }
        const [{ rows }] = await query(url, `SELECT count(*)::int AS rows FROM ${TABLE} WHERE id = $1`, [id]);
        return rows;
    }

    /** psql in the delayed replica's container on the copy cluster.sh started, printing the bare value. */
    function onCopy(sql: string): Promise<string> {
        return docker(
            "exec",
            "-u",
            "postgres",
            delayed.container,
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            COPY_SOCKET,
            "-d",
            "obcms",
            "-c",
            sql,
        );
    }

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { grafanaEnabled: false, delayedReplicaMinutes: DELAY_MINUTES } });
        const members = await waitForHealthyCluster(stack, 300_000);
        delayed = members.find((m) => m.name === "pg-delayed") as MemberStatus;
        // Its catalog is the delay behind: the database the program created is there a minute later.
        await waitFor("the database on the delayed replica", (DELAY_MINUTES * 60 + 60) * 1000, async () =>
            (await query(delayed.url, "SELECT 1 AS one").catch(() => undefined)) ? true : undefined,
        );
    }, 900_000);

    afterAll(async () => {
        await stack?.stop();
    }, 180_000);

    it("streams as pg-delayed, tagged never to lead, to serve reads or to acknowledge commits, and replays late", async () => {
        expect(delayed).toMatchObject({ role: "replica", state: "streaming" });
        expect((await patroniStatus(delayed.container)).tags).toEqual({ nofailover: true, noloadbalance: true, nosync: true });
        // Patroni's read check, which the router would ask, refuses it.
        await expect(docker("exec", delayed.container, ...restApiGet("/replica"))).rejects.toThrow(/503/);
        const settings = "SELECT current_setting('recovery_min_apply_delay') AS delay, current_setting('hot_standby_feedback') AS feedback";
        expect(await query(delayed.url, settings)).toEqual([{ delay: "1min", feedback: "off" }]);
        const other = await otherReplica();
        expect(await query(other.url, settings)).toEqual([{ delay: "0", feedback: "on" }]);
        // Prometheus watches it through Patroni alone: the monitoring role cannot log in there until the delay has passed.
        await waitFor("pg-delayed's Patroni scraped", 60_000, async () =>
            (await prometheus().query(`up{job="patroni", instance="${delayed.name}"} == 1`)).length === 1 ? true : undefined,
        );
        const jobs = (await prometheus().targets()).filter((t) => t.labels.instance === delayed.name).map((t) => t.labels.job);
        expect(jobs).toEqual(["patroni"]);
    });

    it("holds a row the leader deleted, while cluster.sh holds its replay, and a copy of it serves the row", async () => {
        const leader = await waitForLeader(stack, 30_000);
        const other = await otherReplica();
        const id = 7;
        // The table and its row in one commit: the delayed replica replays both at once.
        await withClient(stack.outputs.databaseUrl, async (c) => {
            await c.query("BEGIN");
            await c.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text)`);
            await c.query(`INSERT INTO ${TABLE} VALUES ($1, 'written by mistake, deleted, wanted back')`, [id]);
            await c.query("COMMIT");
        });
        const written = Date.now();
        await waitFor("the row on the other replica", 10_000, async () => ((await rowsOn(other.url, id)) === 1 ? true : undefined));
        expect(await rowsOn(delayed.url, id)).toBeUndefined();
        await waitFor("the row on the delayed replica", (DELAY_MINUTES * 60 + 60) * 1000, async () =>
            (await rowsOn(delayed.url, id)) === 1 ? true : undefined,
        );
        figures.rowReachedDelayedReplicaSeconds = (Date.now() - written) / 1000;
        // Replay waits for the commit's own timestamp plus the delay; the look itself is 1 s apart at most.
        expect(figures.rowReachedDelayedReplicaSeconds).toBeGreaterThanOrEqual(DELAY_MINUTES * 60 - 2);
        expect(figures.rowReachedDelayedReplicaSeconds).toBeLessThan(DELAY_MINUTES * 60 + 30);

        await query(stack.outputs.databaseUrl, `DELETE FROM ${TABLE} WHERE id = $1`, [id]);
        const deleted = Date.now();
        await waitFor("the delete on the other replica", 10_000, async () => ((await rowsOn(other.url, id)) === 0 ? true : undefined));
        try {
            expect(await clusterScript(stack, "pause-delayed")).toMatch(
                new RegExp(`^${delayed.container} replays nothing more, as of .+; automatic failover is off until resume-delayed\\n$`),
            );
            expect(await rowsOn(delayed.url, id)).toBe(1);
            // What PatroniMaintenanceMode watches: failover is off while the replay is held.
            await waitFor("Patroni's pause scraped", 60_000, async () =>
                (await prometheus().query('max(patroni_is_paused{job="patroni"}) == 1')).length === 1 ? true : undefined,
            );
            const copyStarted = Date.now();
            const copied = await clusterScript(stack, "copy-delayed");
            figures.copySeconds = (Date.now() - copyStarted) / 1000;
            expect(copied).toMatch(
                new RegExp(
                    `^a writable copy of ${delayed.container}, as it had replayed up to WAL [0-9A-F]+/[0-9A-F]+, runs; reach it with:\\n` +
                        `  docker exec -it -u postgres ${delayed.container} psql -h ${COPY_SOCKET} -d DATABASE\\n$`,
                ),
            );
            try {
                expect(await onCopy(`SELECT note FROM ${TABLE} WHERE id = ${id}`)).toBe("written by mistake, deleted, wanted back\n");
                // Promoted, on a timeline of its own: writable, and nothing it does reaches the cluster.
                expect(await onCopy(`INSERT INTO ${TABLE} VALUES (8, 'on the copy'); SELECT pg_is_in_recovery()`)).toBe("f\n");
                await expect(clusterScript(stack, "copy-delayed")).rejects.toThrow(/a copy exists already/);
            } finally {
                expect(await clusterScript(stack, "drop-delayed-copy")).toBe(`the copy of ${delayed.container} is gone\n`);
            }
            // Past the delay since the delete, the held replay has still not applied it.
            const heldUntil = deleted + (DELAY_MINUTES * 60 + 5) * 1000;
            await new Promise((resolve) => setTimeout(resolve, Math.max(0, heldUntil - Date.now())));
            expect(await rowsOn(delayed.url, id)).toBe(1);
            expect(await rowsOn(leader.url, 8)).toBe(0);
        } finally {
            expect(await clusterScript(stack, "resume-delayed")).toBe(`${delayed.container} replays again; automatic failover is on\n`);
        }
        await waitFor("the delete on the delayed replica once resumed", 30_000, async () =>
            (await rowsOn(delayed.url, id)) === 0 ? true : undefined,
        );
        expect((await patroniStatus(leader.container)).pause).toBeUndefined();
    }, 600_000);

    it("is never promoted nor read from: the router passes it over, switchover refuses it, and a killed leader's lead goes elsewhere", async () => {
        // Every read-only session lands on the other replica, whose slot names it.
        const slots = await Promise.all(
            Array.from({ length: 6 }, () =>
                query(stack.outputs.readonlyDatabaseUrl, "SELECT current_setting('primary_slot_name') AS slot").then(([r]) => r.slot),
            ),
        );
        const other = await otherReplica();
        expect(new Set(slots)).toEqual(new Set([other.name.replace(/-/g, "_")]));
        await expect(clusterScript(stack, "switchover", delayed.name)).rejects.toThrow(
            /refusing to switch over to pg-delayed: it never leads \(nofailover\)/,
        );

        const leader = await waitForLeader(stack, 30_000);
        await docker("kill", leader.container);
        const killed = Date.now();
        try {
            const successor = await waitForLeader(stack, 120_000, leader.name);
            figures.killedLeaderReplacedSeconds = (Date.now() - killed) / 1000;
            expect(successor.name).toBe(other.name);
        } finally {
            await docker("start", leader.container);
        }
        const members = await waitForHealthyCluster(stack, 300_000);
        expect(members.find((m) => m.name === delayed.name)).toMatchObject({ role: "replica", state: "streaming" });
    }, 600_000);
});
