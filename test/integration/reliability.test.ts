// Reliability and security of the production stack on real containers:
// refused logins, the full client load, and faults survived with writes
// running throughout and every acknowledged row on every node afterwards.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { whileRunning } from "../../harness/background";
import { type StartedStack, startStack } from "../../harness/cluster";
import { type PlannedStep, stepsOf } from "../../harness/preview";
import { clientConfig, containerLog, docker, query, waitFor, withClient } from "../../harness/sql";
import {
    ClusterTool,
    createWritesTable,
    digestsAfterCatchUp,
    primaryIds,
    runOnClusterNetwork,
    WRITES_TABLE,
    Writer,
    type WriterReport,
} from "../../harness/workload";

const run = promisify(execFile);
const POOL_LIMIT = 50 + 5;
const MAX_CONNECTIONS = 100;
const MAX_CLIENT_CONN = 2000;
/** Small enough to invalidate a slot with a few seconds of writes. */
const MAX_SLOT_WAL_KEEP_MB = 64;
/** Commits the writer must have acknowledged before a fault, and again after it. */
const WRITES_AROUND_FAULT = 30;

/** One row of the closing figures: what a fault cost. */
interface FaultFigures {
    readonly fault: string;
    readonly writeGapSeconds: number;
    readonly rowsLost: number;
    readonly catchUpSeconds: number;
    readonly failedWrites: number;
}
const figures: FaultFigures[] = [];

function urlParts(url: string) {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

describe("production stack: refused logins, full load, faults", () => {
    let stack: StartedStack;
    const pgbouncerHost = () => `${stack.clusterName}-pgbouncer`;

    beforeAll(async () => {
        stack = await startStack("production", {
            overrides: {
                grafanaEnabled: false,
                maxSlotWalKeepSizeMb: MAX_SLOT_WAL_KEEP_MB,
                // The lag alert must stay below what a slot may hold.
                replicationLagAlertMb: MAX_SLOT_WAL_KEEP_MB / 2,
            },
        });
        await waitFor("every replica streaming", 120_000, async () => {
            const rows = await query(
                stack.outputs.primaryUrl,
                "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
            );
            return rows[0].n === 3 ? true : undefined;
        });
        await createWritesTable(stack);
    }, 600_000);

    afterAll(async () => {
        if (figures.length > 0) {
            console.table(figures);
        }
        await stack?.stop();
    }, 120_000);

    /** Runs `fault` while a writer commits rows, then checks that nothing acknowledged was lost anywhere. */
    async function underWrites(fault: string, act: () => Promise<void>): Promise<WriterReport> {
        const [{ next }] = await query(stack.outputs.primaryUrl, `SELECT coalesce(max(id), 0) + 1 AS next FROM ${WRITES_TABLE}`);
        const writer = new Writer(stack.outputs.databaseUrl, next, 240);
        let report: WriterReport;
        try {
            // Writes under way before the fault, and going again after it: waited for, not slept on.
            await writer.waitForCommits(WRITES_AROUND_FAULT, 60_000);
            await act();
            await writer.waitForCommits(writer.commits + WRITES_AROUND_FAULT, 120_000);
        } finally {
            // Also when the fault fails: a writer left running would collide with the next test's ids.
            report = await writer.stop();
        }
        const { catchUpSeconds, digests } = await digestsAfterCatchUp(stack, 120_000);
        const onPrimary = await primaryIds(stack);
        const lost = report.committed.filter((id) => !onPrimary.has(id));
        figures.push({
            fault,
            writeGapSeconds: Number(report.longestGapSeconds.toFixed(2)),
            rowsLost: lost.length,
            catchUpSeconds: Number(catchUpSeconds.toFixed(2)),
            failedWrites: report.failures,
        });
        expect(report.committed.length, `commits during the fault; errors: ${report.errors.join(" | ")}`).toBeGreaterThanOrEqual(
            2 * WRITES_AROUND_FAULT,
        );
        expect(lost, "acknowledged rows missing on the primary").toEqual([]);
        for (const [i, digest] of digests.slice(1).entries()) {
            expect(digest, `replica ${i + 1} against the primary`).toEqual(digests[0]);
        }
        return report;
    }

    describe("refused logins leave everything else working", () => {
        it("refuses a wrong password, an unknown user and an unknown database with PgBouncer's errors", async () => {
            const app = urlParts(stack.outputs.databaseUrl);
            const attempt = (user: string, password: string, database: string) =>
                withClient(
                    `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${app.host}:${app.port}/${database}?sslmode=require`,
                    async () => undefined,
                );
            // PgBouncer answers a failed SCRAM exchange alike for a wrong password and an unknown user.
            await expect(attempt(app.user, "wrong-password", "obcms")).rejects.toMatchObject({
                code: "08P01",
                message: "SASL authentication failed",
            });
            await expect(attempt("nobody", "whatever-password", "obcms")).rejects.toMatchObject({
                code: "08P01",
                message: "SASL authentication failed",
            });
            await expect(attempt(app.user, app.password, "nodb")).rejects.toMatchObject({
                code: "08P01",
                message: "no such database: nodb",
            });
            const [row] = await query(stack.outputs.databaseUrl, "SELECT 1 AS ok");
            expect(row.ok).toBe(1);
        });

        it("never asks for a plaintext password, and a stored verifier is no password", async () => {
            const app = urlParts(stack.outputs.databaseUrl);
            const plaintext = await runOnClusterNetwork(
                stack,
                [
                    "psql",
                    `host=${pgbouncerHost()} port=6432 dbname=obcms user=${app.user} sslmode=require require_auth=password`,
                    "-c",
                    "SELECT 1",
                ],
                { env: { PGPASSWORD: app.password }, timeoutMs: 30_000 },
            );
            expect(plaintext.exitCode).toBe(2);
            expect(plaintext.output).toContain('authentication method requirement "password" failed: server requested SASL authentication');

            const [verifier] = await query(stack.outputs.primaryUrl, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", [app.user]);
            const passTheHash = withClient(
                `postgresql://${app.user}:${encodeURIComponent(verifier.rolpassword)}@${app.host}:${app.port}/obcms?sslmode=require`,
                async () => undefined,
            );
            await expect(passTheHash).rejects.toMatchObject({ code: "08P01", message: "SASL authentication failed" });
            const [row] = await query(stack.outputs.databaseUrl, "SELECT 1 AS ok");
            expect(row.ok).toBe(1);
        });
    });

    describe("the full client load", () => {
        it(`holds ${MAX_CLIENT_CONN} clients for 60 s with no failed transaction and the pool within its bounds`, async () => {
            const app = urlParts(stack.outputs.databaseUrl);
            const pgbench = (args: string[]) =>
                ClusterTool.start(stack, ["pgbench", "-h", pgbouncerHost(), "-p", "6432", "-U", app.user, ...args, "obcms"], {
                    env: { PGPASSWORD: app.password, PGSSLMODE: "require" },
                });
            const init = await (await pgbench(["-i", "-s", "10", "-q"])).finish(180_000);
            expect(init.exitCode, init.output).toBe(0);

            let peakAppBackends = 0;
            let peakBackends = 0;
            const sampleBackends = (sampling: () => boolean) =>
                withClient(stack.outputs.primaryUrl, async (c) => {
                    while (sampling()) {
                        const [row] = (
                            await c.query(
                                "SELECT count(*) FILTER (WHERE usename = $1)::int AS app, count(*) FILTER (WHERE backend_type = 'client backend')::int AS total FROM pg_stat_activity",
                                [app.user],
                            )
                        ).rows;
                        peakAppBackends = Math.max(peakAppBackends, row.app);
                        peakBackends = Math.max(peakBackends, row.total);
                        await new Promise((resolve) => setTimeout(resolve, 250));
                    }
                });

            // The sampler stops also when the load fails: left running, it would poll through the faults below.
            const {
                result: { others, clients, beyond, result },
            } = await whileRunning(sampleBackends, async () => {
                // Fill max_client_conn exactly: the clients already there (the
                // PgBouncer exporter's), pgbench's own connection, and its clients.
                const others = await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
                    const lists = (await admin.query("SHOW LISTS")).rows;
                    return Number(lists.find((row) => row.list === "used_clients")?.items) - 1;
                });
                const clients = MAX_CLIENT_CONN - others - 1;
                const load = await pgbench(["-c", String(clients), "-j", "2", "-T", "60", "-n", "-P", "10"]);
                const extras: pg.Client[] = [];
                let beyond = "";
                let result: { exitCode: number; output: string };
                try {
                    // pgbench reports progress only once every client is connected and running.
                    await waitFor("every pgbench client connected", 240_000, async () =>
                        (await load.output()).includes("progress:") ? true : undefined,
                    );
                    // Clients beyond the limit are turned away. The exporter's connection
                    // comes and goes with its scrapes, so its slot may be free: up to
                    // that many extra clients get in before the next is refused.
                    while (!beyond && extras.length <= others) {
                        const client = new pg.Client(clientConfig(stack.outputs.databaseUrl));
                        client.on("error", () => undefined);
                        try {
                            await client.connect();
                            extras.push(client);
                        } catch (error) {
                            beyond = (error as Error).message;
                        }
                    }
                } finally {
                    await Promise.all(extras.map((c) => c.end()));
                    // Collected whatever happened, so the container never outlives the test.
                    result = await load.finish(240_000);
                }
                return { others, clients, beyond, result };
            });

            const number = (pattern: RegExp) => Number(pattern.exec(result.output)?.[1]);
            const tps = number(/tps = ([\d.]+) \(without initial connection time\)/);
            const failed = number(/number of failed transactions: (\d+)/);
            const processed = number(/number of transactions actually processed: (\d+)/);
            const connectSeconds = number(/initial connection time = ([\d.]+) ms/) / 1000;
            console.log(
                `load: ${MAX_CLIENT_CONN} clients (${clients} pgbench clients + pgbench + ${others} others, connected in ${connectSeconds.toFixed(1)} s), ${processed} transactions in 60 s, ` +
                    `${tps.toFixed(0)} TPS, ${failed} failed; peak ${peakAppBackends} application backends (limit ${POOL_LIMIT}), ` +
                    `${peakBackends} client backends in all (max_connections ${MAX_CONNECTIONS})`,
            );
            expect(result.exitCode, result.output.slice(-2000)).toBe(0);
            expect(beyond).toBe("no more connections allowed (max_client_conn)");
            expect(failed).toBe(0);
            expect(processed).toBeGreaterThan(0);
            expect(peakAppBackends).toBeLessThanOrEqual(POOL_LIMIT);
            expect(peakBackends).toBeLessThanOrEqual(MAX_CONNECTIONS);
            const [row] = await query(stack.outputs.databaseUrl, "SELECT 1 AS ok");
            expect(row.ok).toBe(1);
        }, 900_000);
    });

    describe("faults, with writes running throughout", () => {
        it("a replica killed with SIGKILL restarts and catches up through its slot", async () => {
            const replica = `${stack.clusterName}-replica-2`;
            await underWrites("replica SIGKILL", async () => {
                const pid = (await docker("inspect", "--format", "{{.State.Pid}}", replica)).trim();
                await run("kill", ["-KILL", pid]);
                await waitFor("replica 2 restarted by Docker and streaming", 60_000, async () => {
                    const rows = await query(
                        stack.outputs.primaryUrl,
                        "SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica_2' AND state = 'streaming'",
                    );
                    return rows.length === 1 ? true : undefined;
                });
                await stack.refreshAddresses();
            });
            expect((await docker("inspect", "--format", "{{.RestartCount}}", replica)).trim()).toBe("1");
        }, 300_000);

        it("a replica cut off from the network for 60 s catches up after reconnecting", async () => {
            const replica = `${stack.clusterName}-replica-1`;
            const network = `${stack.clusterName}-net`;
            await underWrites("replica network cut 60 s", async () => {
                await docker("network", "disconnect", network, replica);
                await new Promise((resolve) => setTimeout(resolve, 60_000));
                await docker("network", "connect", "--alias", `${stack.clusterName}-replicas`, network, replica);
                await stack.refreshAddresses();
            });
        }, 300_000);

        it("PgBouncer restarted under load: errors only while it is down, no transaction half-applied", async () => {
            const report = await underWrites("PgBouncer restart", async () => {
                await docker("restart", pgbouncerHost());
            });
            // Every failure is a connection error while PgBouncer was away, never a constraint or data error.
            expect(report.errors.every((e) => !/duplicate key|violates/.test(e))).toBe(true);
        }, 300_000);

        it("PAUSE and RESUME on the admin console hold traffic without a client error", async () => {
            const report = await underWrites("PAUSE / RESUME 3 s", async () => {
                await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
                    await admin.query("PAUSE obcms");
                    await new Promise((resolve) => setTimeout(resolve, 3_000));
                    await admin.query("RESUME obcms");
                });
            });
            expect(report.failures).toBe(0);
            expect(report.longestGapSeconds).toBeGreaterThanOrEqual(2.5);
        }, 300_000);

        it("the primary restarted: replicas reconnect by themselves, reads through obcms_readonly keep working", async () => {
            let reads = 0;
            const readErrors: string[] = [];
            const readReplicas = async (reading: () => boolean) => {
                while (reading()) {
                    try {
                        await query(stack.outputs.readonlyDatabaseUrl, "SELECT count(*) FROM reliability_writes");
                        reads++;
                    } catch (error) {
                        readErrors.push((error as Error).message);
                    }
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
            };
            let readsBefore = 0;
            let readsAfter = 0;
            await whileRunning(readReplicas, async () => {
                await underWrites("primary restart", async () => {
                    readsBefore = reads;
                    await docker("restart", `${stack.clusterName}-primary`);
                    await waitFor("all replicas streaming again", 60_000, async () => {
                        await stack.refreshAddresses();
                        const [row] = await query(
                            stack.outputs.primaryUrl,
                            "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
                        );
                        return row.n === 3 ? true : undefined;
                    });
                    readsAfter = reads;
                });
                // Reads go on past the restart, however long it took.
                await waitFor("reads through obcms_readonly after the restart", 60_000, async () =>
                    reads >= readsAfter + 20 ? true : undefined,
                );
            });
            console.log(`primary restart: ${readsAfter - readsBefore} reads through obcms_readonly while it ran, ${reads} in all`);
            expect(readErrors).toEqual([]);
        }, 300_000);

        it("a replica away longer than max_slot_wal_keep_size allows re-clones itself, and the primary's WAL stays bounded", async () => {
            const replica = `${stack.clusterName}-replica-3`;
            const primary = stack.outputs.primaryUrl;
            let retained: { wal_bytes: number; max_slot_bytes: number; max_wal_size_bytes: number } | undefined;
            await underWrites("replica away past max_slot_wal_keep_size", async () => {
                await docker("stop", replica);
                // About 100 MB of WAL while it is away: more than its slot may hold.
                await query(
                    primary,
                    "CREATE TABLE wal_filler AS SELECT g, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 100000) g",
                );
                await query(primary, "SELECT pg_switch_wal()");
                await query(primary, "CHECKPOINT");
                await waitFor("the away replica's slot to be invalidated", 60_000, async () => {
                    const [slot] = await query(primary, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'replica_3_slot'");
                    return slot.wal_status === "lost" ? true : await query(primary, "CHECKPOINT").then(() => undefined);
                });
                [retained] = await query<NonNullable<typeof retained>>(
                    primary,
                    `SELECT (SELECT sum(size) FROM pg_ls_waldir())::float8 AS wal_bytes,
                            (SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0) FROM pg_replication_slots)::float8 AS max_slot_bytes,
                            pg_size_bytes(current_setting('max_wal_size'))::float8 AS max_wal_size_bytes`,
                );
                await docker("start", replica);
                await waitFor("replica 3 cloned afresh and streaming", 180_000, async () => {
                    const rows = await query(
                        primary,
                        "SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica_3' AND state = 'streaming'",
                    );
                    return rows.length === 1 ? true : undefined;
                }).catch(async (error: Error) => {
                    // What the replica did instead, for whoever reads the failure.
                    const log = await containerLog(replica);
                    throw new Error(`${error.message}; replica 3's log ends:\n${log.split("\n").slice(-40).join("\n")}`);
                });
                await stack.refreshAddresses();
            });
            await query(primary, "DROP TABLE wal_filler");
            console.log(
                `slot invalidation: pg_wal ${(retained!.wal_bytes / 2 ** 20).toFixed(0)} MB, most WAL held by a slot ${(retained!.max_slot_bytes / 2 ** 20).toFixed(0)} MB`,
            );
            const logs = (await run("docker", ["logs", replica])).stderr;
            expect(logs).toContain("slot replica_3_slot was invalidated on the primary while this replica was away: cloning afresh");
            expect(retained!.max_slot_bytes).toBeLessThanOrEqual(MAX_SLOT_WAL_KEEP_MB * 2 ** 20);
            expect(retained!.wal_bytes).toBeLessThanOrEqual(retained!.max_wal_size_bytes + MAX_SLOT_WAL_KEEP_MB * 2 ** 20);
            // A slot whose replica is still catching up on the filler holds WAL past
            // max_wal_size ("unreserved") until a checkpoint after the catch-up.
            const expected = [1, 2, 3].map((k) => [`replica_${k}_slot`, true, "reserved"]);
            const slots = await waitFor("every slot active and reserved", 60_000, async () => {
                await query(primary, "CHECKPOINT");
                const rows = await query(primary, "SELECT slot_name, active, wal_status FROM pg_replication_slots ORDER BY 1");
                const states = rows.map((slot) => [slot.slot_name, slot.active, slot.wal_status]);
                return JSON.stringify(states) === JSON.stringify(expected) ? states : undefined;
            });
            expect(slots).toEqual(expected);
        }, 400_000);

        it("scaling 3 → 1 → 3 replicas restarts no remaining member, keeps the data and leaves no orphan slot", async () => {
            const slotNames = async () =>
                (await query(stack.outputs.primaryUrl, "SELECT slot_name FROM pg_replication_slots ORDER BY 1")).map((r) => r.slot_name);
            const streaming = async (count: number) =>
                waitFor(`${count} replicas streaming`, 180_000, async () => {
                    await stack.refreshAddresses();
                    const rows = await query(
                        stack.outputs.primaryUrl,
                        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
                    );
                    return rows.length === count ? rows.map((r) => r.application_name) : undefined;
                });
            const started = async (node: string) =>
                (await docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", `${stack.clusterName}-${node}`)).trim();
            const before = { primary: await started("primary"), replica: await started("replica-1") };
            const replaced: string[] = [];
            await underWrites("scale 3 → 1 → 3", async () => {
                replaced.push(...stepsOf(await stack.update({ replicaCount: 1 }), "replace"));
                expect(await streaming(1)).toEqual(["replica_1"]);
                expect(await slotNames()).toEqual(["replica_1_slot"]);
                const volumes = (await docker("volume", "ls", "--format", "{{.Name}}"))
                    .split("\n")
                    .filter((v) => v.startsWith(`${stack.clusterName}-replica`));
                expect(volumes).toEqual([`${stack.clusterName}-replica-1-data`]);
                replaced.push(...stepsOf(await stack.update({ replicaCount: 3 }), "replace"));
                expect(await streaming(3)).toEqual(["replica_1", "replica_2", "replica_3"]);
            });
            // The members that stay are neither replaced nor restarted: same container, same start.
            expect(replaced.filter((name) => /^(primary|replica-\d+)-/.test(name))).toEqual([]);
            expect({ primary: await started("primary"), replica: await started("replica-1") }).toEqual(before);
            expect(await slotNames()).toEqual(["replica_1_slot", "replica_2_slot", "replica_3_slot"]);
            expect(stack.outputs.replicaUrls).toHaveLength(3);
        }, 600_000);
    });

    describe("pulumi up replacing containers, with writes running: the provider stops each one with its grace", () => {
        it("a pool-size change replaces PgBouncer, which finishes its server connections and exits by itself; writers reconnect", async () => {
            let steps: PlannedStep[] = [];
            const report = await underWrites("PgBouncer replaced (defaultPoolSize 50 → 40)", async () => {
                steps = await stack.update({ defaultPoolSize: 40 });
            });
            expect(stepsOf(steps, "replace")).toEqual(["monitoring-prometheus", "pgbouncer-container"]);
            expect(steps.filter((step) => step.step !== "replace")).toEqual([]);
            expect(report.errors.every((e) => !/duplicate key|violates/.test(e))).toBe(true);
            const config = await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => (await admin.query("SHOW CONFIG")).rows);
            expect(config.find((row) => row.key === "default_pool_size")?.value).toBe("40");
            // Safe shutdown on SIGINT: PgBouncer lets every server connection be
            // released (a transaction under way finishes) and exits by itself,
            // well within its grace, rather than being killed by Docker.
            const stopped = stack.stopped(`${stack.clusterName}-pgbouncer`);
            expect(stopped?.exitCode).toBe(0);
            expect(stopped!.graceSeconds).toBeGreaterThan(0);
            expect(stopped!.stopSeconds).toBeLessThan(stopped!.graceSeconds);
            expect(stopped!.log).toMatch(
                /got SIGINT, shutting down, waiting for all servers connections to be released[\s\S]*server connections dropped, exiting\s*$/,
            );
        }, 300_000);

        it("a PostgreSQL setting replaces every node; each one shuts down by itself within its grace, and starts with no crash recovery", async () => {
            let steps: PlannedStep[] = [];
            await underWrites("every PostgreSQL node replaced (auditLog)", async () => {
                // Overrides do not accumulate: keep the previous test's pool size.
                steps = await stack.update({ defaultPoolSize: 40, auditLog: "ddl, role, write" });
                await waitFor("all replicas streaming again", 120_000, async () => {
                    await stack.refreshAddresses();
                    const [row] = await query(
                        stack.outputs.primaryUrl,
                        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
                    );
                    return row.n === 3 ? true : undefined;
                });
            });
            expect(stepsOf(steps, "replace")).toEqual([
                "primary-container",
                "replica-1-container",
                "replica-2-container",
                "replica-3-container",
            ]);
            expect(steps.filter((step) => step.step !== "replace")).toEqual([]);
            const [audit] = await query(stack.outputs.primaryUrl, "SHOW pgaudit.log");
            expect(audit["pgaudit.log"]).toBe("ddl, role, write");
            for (const node of ["primary", "replica-1", "replica-2", "replica-3"]) {
                const stopped = stack.stopped(`${stack.clusterName}-${node}`);
                expect(stopped?.exitCode, node).toBe(0);
                expect(stopped!.graceSeconds, node).toBeGreaterThan(0);
                expect(stopped!.stopSeconds, node).toBeLessThan(stopped!.graceSeconds);
                expect(stopped!.log, node).toMatch(/database system is shut down\s*$/);
                const log = await containerLog(`${stack.clusterName}-${node}`);
                // PostgreSQL's own words on a start after a clean shutdown, and after a crash.
                expect(log, node).toMatch(/database system was shut down (in recovery )?at /);
                expect(log, node).not.toMatch(/database system was interrupted|not properly shut down|automatic recovery in progress/);
            }
        }, 600_000);
    });
});
