// Reliability and security of the production stack on real containers:
// refused logins, the full client load, and faults survived with writes
// running throughout and every acknowledged row on every member afterwards.
// The leader's own faults (switchover, kill, stop, isolation, the DCS) and a
// replica's SIGKILL are failover.test.ts's; here the leader is only
// restarted, and replaced, restarted or switched over by `pulumi up`.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILES, MEMBER_TLS_FILES } from "../../components/render/paths";
import { restApiCurl } from "../../components/render/patroni/start-script";
import { PGBACKREST_TLS_PORT, pgbackrestCommand } from "../../components/render/pgbackrest/pgbackrest";
import { ETCD_CLIENT_PORT, HAPROXY_METRICS_PORT, PATRONI_REST_PORT, POSTGRES_PORT, ROLES } from "../../components/settings";
import { postgresSizing } from "../../components/sizing";
import { whileRunning } from "../../harness/background";
import { type StartedStack, startStack } from "../../harness/cluster";
import { clusterScript, rejoined, rewinds, underWrites, WRITES_AROUND_FAULT, type WritesOutcome } from "../../harness/faults";
import { clusterStatus, type MemberStatus, waitForHealthyCluster, waitForLeader } from "../../harness/patroni";
import { type PlannedStep, stepsOf } from "../../harness/preview";
import { clientConfig, containerLog, docker, query, waitFor, withClient } from "../../harness/sql";
import { ClusterTool, createWritesTable, digestsAfterCatchUp, runOnClusterNetwork, WRITES_TABLE } from "../../harness/workload";

/** A shell pipeline on the host; rejects unless it exits 0 (with `pipefail`, unless every command does). */
const runShell = (script: string) => promisify(execFile)("bash", ["-o", "pipefail", "-c", script]);

/**
 * `openssl s_client` with `args`, then the serial and subject of the
 * certificate the server showed; the pipeline fails unless the handshake
 * verified it (`-verify_return_error`).
 */
function servedCertificateScript(args: string): string {
    return `openssl s_client ${args} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial -subject`;
}

/** What servedCertificateScript printed. */
function servedCertificate(output: string): { serial: string; subject: string } {
    const [serial, subject] = output.trim().split("\n");
    return { serial, subject };
}

const POOL_LIMIT = 50 + 5;
const MAX_CONNECTIONS = 100;
const MAX_CLIENT_CONN = 2000;
const LOWER_CLIENT_CONN = 1500;
/** What the PgBouncer test changes, all of which PgBouncer reloads, and the later updates keep. */
const PGBOUNCER_CHANGES = { defaultPoolSize: 40, reservePoolSize: 3, queryWaitTimeout: 60, maxClientConn: LOWER_CLIENT_CONN };
/** What the parameter tests leave changed (max_connections back to its default), which the later updates keep. */
const PARAMETER_CHANGES = { ...PGBOUNCER_CHANGES, auditLog: "ddl, role, write", postgresMemoryMb: 3072, maxConnections: MAX_CONNECTIONS };
/** The application role's password the rotation test sets. */
const ROTATED_APP_PASSWORD = "Rotated-Application-Password-0001";
/** The monitoring role's password the second rotation test sets. */
const ROTATED_MONITORING_PASSWORD = "Rotated-Monitoring-Password-0001";
/** What the tests after the rotations keep. */
const LATER_CHANGES = { ...PARAMETER_CHANGES, appPassword: ROTATED_APP_PASSWORD, monitoringPassword: ROTATED_MONITORING_PASSWORD };
/** Small enough to invalidate a slot with a few seconds of writes. */
const MAX_SLOT_WAL_KEEP_MB = 64;

/** How often `needle` occurs in `text`. */
function occurrences(text: string, needle: string): number {
    return text.split(needle).length - 1;
}

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
    const pgbouncerHost = () => stack.topology.pgbouncer.container;
    /** The image the upgrade test builds: this stack's project image with one label more. */
    const upgradeImage = () => `obcms-database:17-upgrade-${stack.clusterName}`;
    /** A container's id and start time: both stay while it is neither replaced nor restarted. */
    const containerStart = async (container: string) =>
        (await docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", container)).trim();
    /** Each member's container start and PostgreSQL's: Patroni restarts PostgreSQL inside its container. */
    const memberStarts = async () =>
        Promise.all(
            stack.topology.members.map(async (m) => {
                const [row] = await query(stack.outputs.memberUrls[m.node], "SELECT pg_postmaster_start_time()::text AS started");
                return { container: await containerStart(m.container), postgres: row.started as string };
            }),
        );
    const leaderUrl = async () => (await waitForLeader(stack, 120_000)).url;
    /** How often each member's PostgreSQL has shut down, from its container's log. */
    const shutdowns = async () =>
        Promise.all(stack.topology.members.map(async (m) => occurrences(await containerLog(m.container), "database system is shut down")));
    /** How often PgBouncer's pools have been paused and resumed by signal (the credentials command's hold), from its log. */
    const pgbouncerSignals = async () => {
        const log = await containerLog(pgbouncerHost());
        return {
            pauses: occurrences(log, "got SIGUSR1, pausing all activity"),
            resumes: occurrences(log, "got SIGUSR2, continuing from PAUSE"),
        };
    };
    /**
     * The certificate PgBouncer shows a new client on its published port, as
     * `openssl s_client` sees it: verified against the stack's CA and for the
     * address the URLs name, or the promise rejects.
     */
    const pgbouncerCertificate = async () => {
        const { hostname, port } = new URL(stack.outputs.databaseUrl);
        const dir = mkdtempSync(path.join(tmpdir(), "obcms-ca-"));
        try {
            writeFileSync(path.join(dir, "ca.crt"), stack.outputs.caCertificate);
            const { stdout } = await runShell(
                servedCertificateScript(`-starttls postgres -connect ${hostname}:${port} -CAfile ${dir}/ca.crt -verify_ip ${hostname}`),
            );
            return servedCertificate(stdout);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    };
    /**
     * The certificate `container` shows on `port` to pg-1, as pg-1's Patroni
     * reaches etcd and its pgBackRest the backup container: verified against
     * the stack's CA and for the container's name, presenting pg-1's own
     * client certificate; `starttls` names the protocol that negotiates TLS first (PostgreSQL's).
     */
    const certificateSeenByFirstMember = async (container: string, port: number, starttls?: "postgres") => {
        const [first] = stack.topology.members;
        const handshake = servedCertificateScript(
            `${starttls ? `-starttls ${starttls} ` : ""}-connect ${container}:${port} -CAfile ${FILES.tlsCa} -verify_hostname ${container} -cert ${MEMBER_TLS_FILES.cert} -key ${MEMBER_TLS_FILES.key}`,
        );
        return servedCertificate(await docker("exec", first.container, "bash", "-o", "pipefail", "-c", handshake));
    };
    /** `url` logging in as `user` with `password`. */
    const withLogin = (url: string, user: string, password: string) => {
        const u = new URL(url);
        u.username = user;
        u.password = password;
        return u.toString();
    };
    /** `stack.update(overrides)`, and how many members were at most not up and healthy at once meanwhile. */
    const updateCountingMembersDown = async (overrides: Record<string, unknown>) => {
        const { result, background } = await whileRunning(mostMembersDown, () => stack.update(overrides));
        return { steps: result, downAtOnce: background };
    };
    /** How many members were at most not up and healthy at once while it ran, sampled from Docker every half second. */
    const mostMembersDown = async (running: () => boolean) => {
        let most = 0;
        while (running()) {
            // The members' containers only, not their exporters (`…-pg-1-exporter`).
            const listed = await docker("ps", "--filter", `name=^/${stack.clusterName}-pg-[0-9]+$`, "--format", "{{.Names}} {{.Status}}");
            const healthy = listed.split("\n").filter((line) => line.endsWith("(healthy)")).length;
            most = Math.max(most, stack.topology.members.length - healthy);
            await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return most;
    };
    /** How often PgBouncer's pools have been paused and resumed on its console, in its log (by default the running container's). */
    const pgbouncerHolds = async (log?: string) => {
        const text = log ?? (await containerLog(pgbouncerHost()));
        return { pauses: occurrences(text, "LOG PAUSE command issued"), resumes: occurrences(text, "LOG RESUME command issued") };
    };

    beforeAll(async () => {
        stack = await startStack("production", {
            overrides: {
                grafanaEnabled: false,
                maxSlotWalKeepSizeMb: MAX_SLOT_WAL_KEEP_MB,
                // The lag alert must stay below what a slot may hold.
                replicationLagAlertMb: MAX_SLOT_WAL_KEEP_MB / 2,
            },
        });
        await waitForHealthyCluster(stack, 180_000);
        await createWritesTable(stack);
    }, 600_000);

    afterAll(async () => {
        if (figures.length > 0) {
            console.table(figures);
        }
        await stack?.stop();
        // The tests after the image test declare it too.
        await docker("image", "rm", "--force", upgradeImage()).catch(() => undefined);
    }, 180_000);

    /**
     * Runs `fault` while a writer commits rows through PgBouncer, then checks
     * that nothing acknowledged was lost on the leader and that every replica
     * holds exactly the leader's rows.
     */
    async function survives(fault: string, act: () => Promise<void>): Promise<WritesOutcome> {
        const outcome = await underWrites(stack, 1, act);
        const { catchUpSeconds, digests } = await digestsAfterCatchUp(stack, 180_000);
        const [report] = outcome.reports;
        figures.push({
            fault,
            writeGapSeconds: Number(outcome.longestGapSeconds.toFixed(2)),
            rowsLost: outcome.lost.length,
            catchUpSeconds: Number(catchUpSeconds.toFixed(2)),
            failedWrites: outcome.clientErrors,
        });
        expect(report.committed.length, `commits during the fault; errors: ${outcome.errors.join(" | ")}`).toBeGreaterThanOrEqual(
            2 * WRITES_AROUND_FAULT,
        );
        expect(outcome.lost, "acknowledged rows missing on the leader").toEqual([]);
        expect(digests).toHaveLength(stack.topology.members.length);
        for (const [i, digest] of digests.slice(1).entries()) {
            expect(digest, `replica ${i + 1} against the leader`).toEqual(digests[0]);
        }
        return outcome;
    }

    /**
     * `pulumi up` with `overrides`, which replace every member, under a writer:
     * the members are replaced one at a time, each healthy again before the
     * next stops; the dynamic configuration and each member's handover run;
     * the leader hands the lead over behind PgBouncer's PAUSE before its
     * container stops, and so does the member it went to if that one comes
     * later in the chain (at most twice); no write fails.
     */
    async function rollsMembersOneAtATime(fault: string, overrides: Record<string, unknown>): Promise<void> {
        const members = stack.topology.members;
        const holdsBefore = await pgbouncerHolds();
        let steps: PlannedStep[] = [];
        let downAtOnce = 0;
        const outcome = await survives(fault, async () => {
            ({ steps, downAtOnce } = await updateCountingMembersDown(overrides));
            await waitForHealthyCluster(stack, 300_000);
        });
        console.log(`${fault}: at most ${downAtOnce} down at once; PgBouncer holds ${JSON.stringify(await pgbouncerHolds())}`);
        expect(stepsOf(steps, "replace")).toEqual(members.map((m) => `${m.resourceName}-container`));
        expect([...stepsOf(steps, "update")].sort()).toEqual(
            ["cluster-config-dynamic-config", "etcd-patroni-config-seed", ...members.map((m) => `${m.resourceName}-handover`)].sort(),
        );
        expect(downAtOnce).toBe(1);
        const holds = await pgbouncerHolds();
        expect(holds.pauses - holdsBefore.pauses).toBeGreaterThanOrEqual(1);
        expect(holds.pauses - holdsBefore.pauses).toBeLessThanOrEqual(2);
        expect(holds.resumes - holdsBefore.resumes).toBe(holds.pauses - holdsBefore.pauses);
        expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
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

            const [verifier] = await query(await leaderUrl(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", [app.user]);
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

            // Nothing moves the lead during the load: the leader's backends are PgBouncer's pool.
            const leader = await leaderUrl();
            let peakAppBackends = 0;
            let peakBackends = 0;
            const sampleBackends = (sampling: () => boolean) =>
                withClient(leader, async (c) => {
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
                result: { others, clients, admitted, beyond, result },
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
                    // Clients beyond the limit are turned away. Slots counted above may
                    // be free by now (the exporter's connection comes and goes with its
                    // scrapes, and pgbench's own may be closed once its clients run):
                    // up to that many extra clients get in before the next is refused.
                    while (!beyond && extras.length <= others + 1) {
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
                return { others, clients, admitted: extras.length, beyond, result };
            });

            const number = (pattern: RegExp) => Number(pattern.exec(result.output)?.[1]);
            const tps = number(/tps = ([\d.]+) \(without initial connection time\)/);
            const failed = number(/number of failed transactions: (\d+)/);
            const processed = number(/number of transactions actually processed: (\d+)/);
            const connectSeconds = number(/initial connection time = ([\d.]+) ms/) / 1000;
            console.log(
                `load: ${MAX_CLIENT_CONN} clients (${clients} pgbench clients + pgbench + ${others} others, connected in ${connectSeconds.toFixed(1)} s), ${processed} transactions in 60 s, ` +
                    `${tps.toFixed(0)} TPS, ${failed} failed; peak ${peakAppBackends} application backends on the leader (limit ${POOL_LIMIT}), ` +
                    `${peakBackends} client backends in all (max_connections ${MAX_CONNECTIONS}); ${admitted} extra clients admitted before one was refused`,
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
        it("a replica cut off from the network for 60 s catches up after reconnecting", async () => {
            const replica = (await waitForHealthyCluster(stack, 180_000)).filter((m) => m.role === "replica")[0];
            await survives("replica network cut 60 s", async () => {
                await docker("network", "disconnect", stack.topology.network, replica.container);
                await new Promise((resolve) => setTimeout(resolve, 60_000));
                await docker("network", "connect", stack.topology.network, replica.container);
            });
            const members = await clusterStatus(stack);
            expect(members.find((m) => m.name === replica.name)).toMatchObject({ role: "replica", state: "streaming" });
        }, 300_000);

        it("PgBouncer restarted under load: it finishes its server connections and exits by itself; errors only while it is down, no transaction half-applied", async () => {
            let restartSeconds = 0;
            const outcome = await survives("PgBouncer restart", async () => {
                const started = performance.now();
                await docker("restart", pgbouncerHost());
                restartSeconds = (performance.now() - started) / 1000;
            });
            // Every failure is a connection error while PgBouncer was away, never a constraint or data error.
            expect(outcome.errors.every((e) => !/duplicate key|violates/.test(e))).toBe(true);
            // Safe shutdown on SIGINT, the container's stop signal (also when `pulumi up` replaces it): PgBouncer
            // lets every server connection be released (a transaction under way finishes) and exits by itself,
            // well within the 30 s Docker gives it before SIGKILL.
            expect(restartSeconds).toBeLessThan(20);
            expect(await containerLog(pgbouncerHost())).toMatch(
                /got SIGINT, shutting down, waiting for all servers connections to be released[\s\S]*server connections dropped, exiting\n/,
            );
        }, 300_000);

        it("PAUSE and RESUME on the admin console hold traffic without a client error", async () => {
            const outcome = await survives("PAUSE / RESUME 3 s", async () => {
                await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
                    await admin.query("PAUSE obcms");
                    await new Promise((resolve) => setTimeout(resolve, 3_000));
                    await admin.query("RESUME obcms");
                });
            });
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            expect(outcome.longestGapSeconds).toBeGreaterThanOrEqual(2.5);
        }, 300_000);

        it("the leader restarted with docker restart hands the lead to a replica and rejoins; reads through obcms_readonly keep working", async () => {
            const oldLeader = (await waitForHealthyCluster(stack, 180_000)).find((m) => m.role === "leader") as MemberStatus;
            const rewindsBefore = rewinds(await containerLog(oldLeader.container));
            let reads = 0;
            const readErrors: string[] = [];
            const readReplicas = async (reading: () => boolean) => {
                while (reading()) {
                    try {
                        await query(stack.outputs.readonlyDatabaseUrl, `SELECT count(*) FROM ${WRITES_TABLE}`);
                        reads++;
                    } catch (error) {
                        readErrors.push((error as Error).message);
                    }
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
            };
            let readsBefore = 0;
            let readsAfter = 0;
            let newLeader: MemberStatus | undefined;
            let rejoinSeconds = 0;
            await whileRunning(readReplicas, async () => {
                await survives("leader restart (docker restart)", async () => {
                    readsBefore = reads;
                    const restarting = Date.now();
                    await docker("restart", oldLeader.container);
                    newLeader = await waitForLeader(stack, 120_000, oldLeader.name);
                    await rejoined(stack, oldLeader.name, 120_000);
                    rejoinSeconds = (Date.now() - restarting) / 1000;
                    readsAfter = reads;
                });
                // Reads go on past the restart, however long it took.
                await waitFor("reads through obcms_readonly after the restart", 60_000, async () =>
                    reads >= readsAfter + 20 ? true : undefined,
                );
            });
            console.log(
                `leader restart: ${oldLeader.name} → ${newLeader?.name}, ${oldLeader.name} streaming again ${rejoinSeconds.toFixed(1)} s after docker restart began; ` +
                    `${readsAfter - readsBefore} reads through obcms_readonly meanwhile, ${reads} in all, ${readErrors.length} failed: ${readErrors.join(" | ")}`,
            );
            expect(newLeader?.name).not.toBe(oldLeader.name);
            // A graceful handover: the old leader's timeline was the one the new leader branched from, no rewind needed.
            expect(rewinds(await containerLog(oldLeader.container))).toBe(rewindsBefore);
            expect(readErrors).toEqual([]);
        }, 400_000);

        it("a replica away longer than max_slot_wal_keep_size allows catches up from the archive by itself, with the leader's WAL bounded", async () => {
            const members = await waitForHealthyCluster(stack, 180_000);
            const leader = members.find((m) => m.role === "leader") as MemberStatus;
            const away = members.filter((m) => m.role === "replica").at(-1) as MemberStatus;
            const slot = stack.topology.members.find((m) => m.node === away.name)?.slot as string;
            const slotState = async (url = leader.url) =>
                (
                    await query(url, "SELECT active, wal_status, invalidation_reason FROM pg_replication_slots WHERE slot_name = $1", [
                        slot,
                    ])
                )[0];
            const streaming = (what: string) =>
                waitFor(`${away.name} ${what}`, 300_000, async () =>
                    (await clusterStatus(stack)).find((m) => m.name === away.name && m.state === "streaming") ? true : undefined,
                ).catch(async (error: Error) => {
                    // What the replica did instead, for whoever reads the failure.
                    const log = await containerLog(away.container);
                    throw new Error(`${error.message}; ${away.name}'s log ends:\n${log.split("\n").slice(-40).join("\n")}`);
                });
            let retained: { wal_bytes: number; max_slot_bytes: number; bound_bytes: number } | undefined;
            let catchUpSeconds = 0;
            await survives("replica away past max_slot_wal_keep_size", async () => {
                await docker("stop", away.container);
                // About 250 MB of WAL while it is away: more than its slot may hold, and than wal_keep_size keeps besides.
                await query(
                    leader.url,
                    "CREATE TABLE wal_filler AS SELECT g, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 250000) g",
                );
                await query(leader.url, "SELECT pg_switch_wal()");
                await waitFor(`${slot} invalidated on ${leader.name}`, 120_000, async () => {
                    await query(leader.url, "CHECKPOINT");
                    return (await slotState())?.wal_status === "lost" ? true : undefined;
                });
                [retained] = await query<NonNullable<typeof retained>>(
                    leader.url,
                    `SELECT (SELECT sum(size) FROM pg_ls_waldir())::float8 AS wal_bytes,
                            (SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0) FROM pg_replication_slots)::float8 AS max_slot_bytes,
                            (pg_size_bytes(current_setting('max_wal_size'))
                             + greatest(pg_size_bytes(current_setting('wal_keep_size')), pg_size_bytes(current_setting('max_slot_wal_keep_size'))))::float8 AS bound_bytes`,
                );
                await docker("start", away.container);
                const back = Date.now();
                await streaming("streaming again");
                catchUpSeconds = (Date.now() - back) / 1000;
            });
            await query(leader.url, "DROP TABLE wal_filler");
            const restored = (await containerLog(away.container)).match(/restored log file "[0-9A-F]{24}" from archive/g) ?? [];
            console.log(
                `slot invalidation: pg_wal ${(retained!.wal_bytes / 2 ** 20).toFixed(0)} MB on ${leader.name}, most WAL held by a slot ${(retained!.max_slot_bytes / 2 ** 20).toFixed(0)} MB; ` +
                    `${away.name} streaming ${catchUpSeconds.toFixed(1)} s after its start, ${restored.length} WAL segments restored from the archive`,
            );
            expect(retained!.max_slot_bytes).toBeLessThanOrEqual(MAX_SLOT_WAL_KEEP_MB * 2 ** 20);
            expect(retained!.wal_bytes).toBeLessThanOrEqual(retained!.bound_bytes);
            // What the leader had removed came from pgBackRest's archive (restore_command), the rest by streaming.
            expect(restored.length).toBeGreaterThan(0);

            // Patroni 4.0.7 neither drops nor re-creates a member's invalidated slot while the member is in the
            // cluster (4.0.10 drops it: patroni#3659); PostgreSQL lets the replica stream through it, but an
            // invalidated slot keeps no WAL: "unreserved" while in use, "lost" otherwise, for good.
            await query(leader.url, "CHECKPOINT");
            expect(await slotState()).toEqual({ active: true, wal_status: "unreserved", invalidation_reason: "wal_removed" });
            const copies = await Promise.all(
                (await clusterStatus(stack))
                    .filter((m) => m.role === "replica" && m.name !== away.name)
                    .map(async (m) => `${m.name}: ${JSON.stringify(await slotState(m.url))}`),
            );
            console.log(`${slot} on the other replicas: ${copies.join("; ")}`);

            // The operator's fix: with the replica stopped, drop its slot on the leader; Patroni
            // re-creates it at once, reserving WAL from there on.
            await survives("invalidated slot dropped, replica restarted", async () => {
                await docker("stop", away.container);
                await waitFor(`${slot} inactive`, 60_000, async () => ((await slotState())?.active === false ? true : undefined));
                await query(leader.url, "SELECT pg_drop_replication_slot($1)", [slot]);
                await waitFor(`${slot} re-created by Patroni`, 60_000, async () => {
                    const state = await slotState();
                    return state && state.invalidation_reason === null ? true : undefined;
                });
                await docker("start", away.container);
                await streaming("streaming through its new slot");
            });
            // A slot whose replica is still catching up holds WAL past max_wal_size
            // ("unreserved") until a checkpoint after the catch-up.
            const expected = stack.topology.members
                .filter((m) => m.node !== leader.name)
                .map((m) => ({ slot_name: m.slot, active: true, wal_status: "reserved", invalidation_reason: null }));
            const slots = await waitFor("every slot active and reserved", 60_000, async () => {
                await query(leader.url, "CHECKPOINT");
                const rows = await query(
                    leader.url,
                    "SELECT slot_name, active, wal_status, invalidation_reason FROM pg_replication_slots ORDER BY 1",
                );
                return JSON.stringify(rows) === JSON.stringify(expected) ? rows : undefined;
            });
            expect(slots).toEqual(expected);
        }, 900_000);

        it("scaling 3 → 1 → 3 replicas, the leader among the removed, restarts no remaining member nor PgBouncer, fails no write and keeps the data; an absent member's slot is kept meanwhile", async () => {
            const [kept, removed] = [stack.topology.members.slice(0, 2), stack.topology.members.slice(2)];
            const startedAll = async () => Promise.all(kept.map((m) => containerStart(m.container)));
            const slots = async () =>
                (await query(await leaderUrl(), "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1")).map(
                    (r) => `${r.slot_name}${r.active ? "" : " (inactive)"}`,
                );
            // The hardest case: the member that leads is among those removed. The update deletes both removed
            // members at once; before that, the program hands the lead to a member that stays.
            const last = removed.at(-1) as (typeof removed)[number];
            if ((await waitForLeader(stack, 60_000)).name !== last.node) {
                await clusterScript(stack, "switchover", last.node);
            }
            await waitForHealthyCluster(stack, 180_000);
            const before = await startedAll();
            const pgbouncerBefore = await containerStart(pgbouncerHost());
            const replaced: string[] = [];
            let leaderWhileOne: MemberStatus | undefined;
            let slotsWhileOne: string[] = [];
            let updatedDown: string[] = [];
            const outcome = await survives("scale 3 → 1 → 3", async () => {
                const down = await stack.update({ replicaCount: 1 });
                replaced.push(...stepsOf(down, "replace"));
                updatedDown = stepsOf(down, "update");
                const two = await waitForHealthyCluster(stack, 180_000);
                expect(two.map((m) => m.name)).toEqual(kept.map((m) => m.node));
                leaderWhileOne = two.find((m) => m.role === "leader");
                slotsWhileOne = await slots();
                const volumes = (await docker("volume", "ls", "--format", "{{.Name}}"))
                    .split("\n")
                    .filter((v) => v.startsWith(`${stack.clusterName}-pg-`))
                    .sort();
                expect(volumes).toEqual(kept.map((m) => m.volume));
                replaced.push(...stepsOf(await stack.update({ replicaCount: 3 }), "replace"));
                await waitForHealthyCluster(stack, 300_000);
            });
            console.log(
                `scaling: replaced ${replaced.join(", ")}; while one replica, ${leaderWhileOne?.name} led with slots ${slotsWhileOne.join(", ")}`,
            );
            expect(updatedDown).toContain("cluster-config-leader-placement");
            // The members that stay are neither replaced nor restarted: same container, same start.
            expect(replaced.filter((name) => /^(primary|replica-\d+)-/.test(name))).toEqual([]);
            expect(await startedAll()).toEqual(before);
            // Nor is PgBouncer, whose router lists every member the stack may have; and the lead moved
            // behind PgBouncer's PAUSE: no write failed.
            expect(replaced).not.toContain("pgbouncer-container");
            expect(await containerStart(pgbouncerHost())).toBe(pgbouncerBefore);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            // Patroni keeps an absent member's slot for member_slots_ttl (30 min), inactive.
            const other = kept.find((m) => m.node !== leaderWhileOne?.name) as (typeof kept)[number];
            expect(slotsWhileOne).toEqual([other.slot, ...removed.map((m) => `${m.slot} (inactive)`)].sort());
            const leader = await waitForLeader(stack, 60_000);
            expect(await slots()).toEqual(stack.topology.members.filter((m) => m.node !== leader.name).map((m) => m.slot));
            expect(Object.keys(stack.outputs.memberUrls)).toEqual(stack.topology.members.map((m) => m.node));
        }, 900_000);
    });

    describe("pulumi up changing the running cluster, with writes running: what it replaces, restarts or reloads", () => {
        it("a change to the pool's sizes and waits and the client limit is PgBouncer's RELOAD: its container and every client connection stay, no write fails", async () => {
            const before = await containerStart(pgbouncerHost());
            let steps: PlannedStep[] = [];
            const outcome = await survives(
                `PgBouncer reloaded (defaultPoolSize 50 → 40, reservePoolSize 5 → 3, queryWaitTimeout 120 → 60, maxClientConn ${MAX_CLIENT_CONN} → ${LOWER_CLIENT_CONN})`,
                async () => {
                    steps = await stack.update(PGBOUNCER_CHANGES);
                },
            );
            // Prometheus follows for the alerts' thresholds.
            expect(stepsOf(steps, "replace")).toEqual(["monitoring-prometheus"]);
            expect(stepsOf(steps, "update")).toEqual(["pgbouncer-settings-reload"]);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            expect(await containerStart(pgbouncerHost())).toBe(before);
            // `pulumi up` returned once PgBouncer ran them: no wait here.
            await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
                const config = new Map((await admin.query("SHOW CONFIG")).rows.map((row) => [row.key, row.value]));
                expect(
                    ["default_pool_size", "reserve_pool_size", "max_db_connections", "query_wait_timeout", "max_client_conn"].map((k) =>
                        config.get(k),
                    ),
                ).toEqual(["40", "3", "43", "60", String(LOWER_CLIENT_CONN)]);
                const obcms = (await admin.query("SHOW DATABASES")).rows.find((row) => row.name === "obcms");
                expect({ pool: obcms.pool_size, max: obcms.max_connections }).toEqual({ pool: 40, max: 43 });
            });
            expect(await containerLog(pgbouncerHost())).toMatch(/LOG RELOAD command issued/);
        }, 300_000);

        it("a parameter PostgreSQL reloads (auditLog) reaches every member through Patroni: nothing replaced or restarted, no write fails", async () => {
            const members = stack.topology.members;
            const before = await memberStarts();
            let steps: PlannedStep[] = [];
            const outcome = await survives("a reloadable parameter through Patroni (auditLog)", async () => {
                // Overrides do not accumulate: keep the previous tests' pool and client limit.
                steps = await stack.update({ ...PGBOUNCER_CHANGES, auditLog: "ddl, role, write" });
            });
            expect(steps).toEqual([
                { name: "cluster-config-dynamic-config", step: "update" },
                { name: "etcd-patroni-config-seed", step: "update" },
            ]);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            // `pulumi up` returned once every member had loaded it: no wait here.
            for (const member of members) {
                const [audit] = await query(stack.outputs.memberUrls[member.node], "SHOW pgaudit.log");
                expect(audit["pgaudit.log"], member.node).toBe("ddl, role, write");
            }
            expect(await memberStarts()).toEqual(before);
            // From then on the leader's log records the writers' INSERTs.
            const leader = await waitForLeader(stack, 60_000);
            const container = members.find((m) => m.node === leader.name)?.container as string;
            const inserts = (await containerLog(container))
                .split("\n")
                .filter((line) => line.includes("AUDIT: SESSION") && line.includes(`INSERT INTO ${WRITES_TABLE}`));
            expect(inserts.length).toBeGreaterThan(0);
            expect(inserts.every((line) => line.split(",").slice(3, 5).join(",") === "WRITE,INSERT")).toBe(true);
        }, 600_000);

        it("a parameter PostgreSQL reads only at start replaces the members one at a time, the leader's after a switchover; each shuts down by itself within its grace and starts with no crash recovery; no write fails", async () => {
            const memoryMb = 3072;
            // work_mem, effective_cache_size and maintenance_work_mem follow through Patroni, by reload.
            await rollsMembersOneAtATime("every PostgreSQL member replaced (postgresMemoryMb)", {
                ...PGBOUNCER_CHANGES,
                auditLog: "ddl, role, write",
                postgresMemoryMb: memoryMb,
            });
            const sizing = postgresSizing({ ...stack.settings.postgresResources, memoryMb }, stack.settings.maxConnections);
            const [row] = await query(
                await leaderUrl(),
                "SELECT pg_size_bytes(current_setting('shared_buffers')) AS shared_buffers, pg_size_bytes(current_setting('work_mem')) AS work_mem",
            );
            expect(row).toEqual({ shared_buffers: String(sizing.sharedBuffersKb * 1024), work_mem: String(sizing.workMemKb * 1024) });
            for (const member of stack.topology.members) {
                const stopped = stack.stopped(member.container);
                expect(stopped?.exitCode, member.node).toBe(0);
                expect(stopped!.graceSeconds, member.node).toBeGreaterThan(0);
                expect(stopped!.stopSeconds, member.node).toBeLessThan(stopped!.graceSeconds);
                expect(stopped!.log, member.node).toMatch(/database system is shut down/);
                const log = await containerLog(member.container);
                // PostgreSQL's own words on a start after a clean shutdown, and after a crash.
                expect(log, member.node).toMatch(/database system was shut down (in recovery )?at /);
                expect(log, member.node).not.toMatch(
                    /database system was interrupted|not properly shut down|automatic recovery in progress/,
                );
            }
        }, 900_000);

        it("a raised max_connections restarts every member's PostgreSQL, the leader last and only after it has handed the lead over: nothing replaced, no write fails", async () => {
            const raised = MAX_CONNECTIONS + 20;
            const before = await memberStarts();
            const leaderBefore = await waitForLeader(stack, 60_000);
            let steps: PlannedStep[] = [];
            const outcome = await survives(`max_connections raised through Patroni (${MAX_CONNECTIONS} → ${raised})`, async () => {
                steps = await stack.update({
                    ...PGBOUNCER_CHANGES,
                    auditLog: "ddl, role, write",
                    postgresMemoryMb: 3072,
                    maxConnections: raised,
                });
            });
            // Prometheus follows for the connections alert; no member is replaced.
            expect(stepsOf(steps, "replace")).toEqual(["monitoring-prometheus"]);
            expect(stepsOf(steps, "update")).toEqual(["cluster-config-dynamic-config", "etcd-patroni-config-seed"]);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            const after = await memberStarts();
            for (const [i, member] of stack.topology.members.entries()) {
                const [row] = await query(stack.outputs.memberUrls[member.node], "SHOW max_connections");
                expect(row.max_connections, member.node).toBe(String(raised));
                expect(after[i].container, member.node).toBe(before[i].container);
                expect(after[i].postgres, member.node).not.toBe(before[i].postgres);
            }
            // The old leader restarted as a replica, after a switchover.
            expect((await waitForLeader(stack, 60_000)).name).not.toBe(leaderBefore.name);
        }, 900_000);

        it("a lowered max_connections restarts the leader first, in place, with PgBouncer holding its clients: nothing replaced, no write fails", async () => {
            const raised = MAX_CONNECTIONS + 20;
            const before = await memberStarts();
            const leaderBefore = await waitForLeader(stack, 60_000);
            const holdsBefore = await pgbouncerHolds();
            const shutdownsBefore = await shutdowns();
            // A second client, always inside a transaction: a leader's fast shutdown would kill the one
            // under way; PgBouncer's PAUSE lets it finish first.
            const slow = { committed: 0, errors: [] as string[] };
            const slowTransactions = async (running: () => boolean) => {
                const client = new pg.Client(clientConfig(stack.outputs.databaseUrl));
                client.on("error", () => undefined);
                await client.connect();
                const deadline = Date.now() + 600_000;
                try {
                    while (running() && Date.now() < deadline && slow.errors.length === 0) {
                        try {
                            await client.query("BEGIN");
                            await client.query("SELECT pg_sleep(0.5)");
                            await client.query("COMMIT");
                            slow.committed++;
                        } catch (error) {
                            slow.errors.push((error as Error).message);
                        }
                    }
                } finally {
                    await client.end().catch(() => undefined);
                }
            };
            let steps: PlannedStep[] = [];
            const { result: outcome } = await whileRunning(slowTransactions, () =>
                survives(`max_connections lowered through Patroni (${raised} → ${MAX_CONNECTIONS})`, async () => {
                    steps = await stack.update(PARAMETER_CHANGES);
                }),
            );
            console.log(
                `lowered max_connections: ${slow.committed} half-second transactions committed meanwhile, ${slow.errors.length} failed`,
            );
            expect(slow.errors).toEqual([]);
            expect(slow.committed).toBeGreaterThan(0);
            expect(stepsOf(steps, "replace")).toEqual(["monitoring-prometheus"]);
            expect(stepsOf(steps, "update")).toEqual(["cluster-config-dynamic-config", "etcd-patroni-config-seed"]);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            const after = await memberStarts();
            const leaderIndex = stack.topology.members.findIndex((m) => m.node === leaderBefore.name);
            for (const [i, member] of stack.topology.members.entries()) {
                const [row] = await query(stack.outputs.memberUrls[member.node], "SHOW max_connections");
                expect(row.max_connections, member.node).toBe(String(MAX_CONNECTIONS));
                expect(after[i].container, member.node).toBe(before[i].container);
                expect(after[i].postgres, member.node).not.toBe(before[i].postgres);
                // A standby may not run below the primary: each last restarted after the leader did.
                if (i !== leaderIndex) {
                    expect(Date.parse(after[i].postgres), member.node).toBeGreaterThan(Date.parse(after[leaderIndex].postgres));
                }
            }
            // No member ran the lower value before the leader: it kept the lead, restarting where it was,
            // behind one PAUSE of PgBouncer's pools (a fast shutdown would kill a transaction under way).
            expect((await waitForLeader(stack, 60_000)).name).toBe(leaderBefore.name);
            expect(await pgbouncerHolds()).toEqual({ pauses: holdsBefore.pauses + 1, resumes: holdsBefore.resumes + 1 });
            // The leader went first, so each member restarted once: a replica restarted before it would keep its value.
            const shutdownsAfter = await shutdowns();
            expect(shutdownsAfter.map((n, i) => n - shutdownsBefore[i])).toEqual(stack.topology.members.map(() => 1));
        }, 900_000);

        it("a rotated application password reaches PostgreSQL and PgBouncer together: nothing replaced or restarted, open sessions stay, no write fails, the old password is refused", async () => {
            const before = await memberStarts();
            const pgbouncerBefore = await containerStart(pgbouncerHost());
            const oldUrl = stack.outputs.databaseUrl;
            const { user: appUser, password: oldPassword } = urlParts(oldUrl);
            const signalsBefore = await pgbouncerSignals();
            // A session opened with the old password, idle through the rotation.
            const session = new pg.Client(clientConfig(oldUrl));
            session.on("error", () => undefined);
            await session.connect();
            try {
                let steps: PlannedStep[] = [];
                const outcome = await survives("appPassword rotated (PgBouncer paused, verifier set, userlist reloaded)", async () => {
                    steps = await stack.update({ ...PARAMETER_CHANGES, appPassword: ROTATED_APP_PASSWORD });
                });
                expect(stepsOf(steps, "replace")).toEqual([]);
                expect(stepsOf(steps, "update")).toEqual(["cluster-config-roles", "pgbouncer-credentials-reload"]);
                expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
                expect(await memberStarts()).toEqual(before);
                expect(await containerStart(pgbouncerHost())).toBe(pgbouncerBefore);
                expect(await pgbouncerSignals()).toEqual({ pauses: signalsBefore.pauses + 1, resumes: signalsBefore.resumes + 1 });
                expect((await session.query("SELECT current_user AS user")).rows).toEqual([{ user: appUser }]);
            } finally {
                await session.end().catch(() => undefined);
            }
            // The pause closed every server connection: these log in to the leader and to a replica with the new keys.
            expect(urlParts(stack.outputs.databaseUrl).password).toBe(ROTATED_APP_PASSWORD);
            for (const url of [stack.outputs.databaseUrl, stack.outputs.readonlyDatabaseUrl]) {
                expect(await query(url, "SELECT current_user AS user")).toEqual([{ user: appUser }]);
            }
            const withPassword = (url: string, password: string) => withLogin(url, appUser, password);
            // PgBouncer's own refusal.
            await expect(query(withPassword(stack.outputs.databaseUrl, oldPassword), "SELECT 1")).rejects.toThrow(
                /^SASL authentication failed$/,
            );
            // Every member has the new verifier, and none takes the old password.
            for (const member of stack.topology.members) {
                const direct = stack.outputs.memberUrls[member.node];
                expect(await query(withPassword(direct, ROTATED_APP_PASSWORD), "SELECT current_user AS user"), member.node).toEqual([
                    { user: appUser },
                ]);
                await expect(query(withPassword(direct, oldPassword), "SELECT 1"), member.node).rejects.toThrow(
                    `password authentication failed for user "${appUser}"`,
                );
            }
        }, 600_000);

        it("a rotated monitoring password pauses nothing: the credentials command finds the application role's verifier in place, reloads the userlist and logs in", async () => {
            const pgbouncerBefore = await containerStart(pgbouncerHost());
            const signalsBefore = await pgbouncerSignals();
            let steps: PlannedStep[] = [];
            const outcome = await survives("monitoringPassword rotated (userlist reloaded, no pause)", async () => {
                steps = await stack.update(LATER_CHANGES);
            });
            expect(stepsOf(steps, "update")).toEqual(["cluster-config-roles", "pgbouncer-credentials-reload"]);
            expect(stepsOf(steps, "replace").every((name) => /^monitoring-.*-exporter$/.test(name))).toBe(true);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            expect(await pgbouncerSignals()).toEqual(signalsBefore);
            expect(await containerStart(pgbouncerHost())).toBe(pgbouncerBefore);
            // PgBouncer's stats user takes the new password at once; the old one is refused.
            const statsLogin = (password: string) => withLogin(stack.outputs.pgbouncerAdminUrl, ROLES.monitoring, password);
            expect((await query(statsLogin(ROTATED_MONITORING_PASSWORD), "SHOW STATS")).length).toBeGreaterThan(0);
            await expect(query(statsLogin("Not-The-Monitoring-Password-01"), "SHOW STATS")).rejects.toThrow(/^SASL authentication failed$/);
        }, 600_000);

        it("every server certificate renewed restarts nothing: PgBouncer RELOADs, pgBackRest's TLS servers reload on SIGHUP, etcd reads them at its next handshake, each member's Patroni reloads PostgreSQL and its REST API; the writers' TLS sessions and an idle one stay, the router takes no member down, new clients get the new certificates, no write fails", async () => {
            const { etcd: etcdMembers, backup, members } = stack.topology;
            const starts = async () => ({
                services: await Promise.all(
                    [pgbouncerHost(), backup.container, ...etcdMembers.map((e) => e.container)].map(containerStart),
                ),
                members: await memberStarts(),
            });
            const served = async () => [
                await pgbouncerCertificate(),
                await certificateSeenByFirstMember(backup.container, PGBACKREST_TLS_PORT),
                ...(await Promise.all(etcdMembers.map((e) => certificateSeenByFirstMember(e.container, ETCD_CLIENT_PORT)))),
                // Each member's PostgreSQL, REST API and pgBackRest TLS server.
                ...(await Promise.all(
                    members.flatMap((m) => [
                        certificateSeenByFirstMember(m.container, POSTGRES_PORT, "postgres"),
                        certificateSeenByFirstMember(m.container, PATRONI_REST_PORT),
                        certificateSeenByFirstMember(m.container, PGBACKREST_TLS_PORT),
                    ]),
                )),
            ];
            /** HAProxy's counts, over every server of both routes, of failed checks on a server that was up, and of servers taken down. */
            const routerChecks = async () => {
                const metrics = await docker("exec", pgbouncerHost(), "curl", "-fsS", `http://127.0.0.1:${HAPROXY_METRICS_PORT}/metrics`);
                const total = (metric: string) =>
                    metrics
                        .split("\n")
                        .filter((line) => line.startsWith(`${metric}{`))
                        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
                return { failed: total("haproxy_server_check_failures_total"), down: total("haproxy_server_check_up_down_total") };
            };
            // pgBackRest's TLS server: the listener, the oldest, and one process per connection it forked.
            const pgbackrestServers = async () =>
                (await docker("exec", backup.container, "pgrep", "-f", "^pgbackrest .* server$")).trim().split("\n").sort();
            const pgbackrestListener = async () =>
                (await docker("exec", backup.container, "pgrep", "-o", "-f", "^pgbackrest .* server$")).trim();
            const [first] = stack.topology.members;
            // A connection held open across the renewal from pg-1, as its archive-push's would be: its process must outlive the SIGHUP.
            const heldConnection = `-connect ${backup.container}:${PGBACKREST_TLS_PORT} -cert ${MEMBER_TLS_FILES.cert} -key ${MEMBER_TLS_FILES.key} -quiet`;
            await docker("exec", "-d", first.container, "sh", "-c", `sleep 240 | openssl s_client ${heldConnection} >/dev/null 2>&1`);
            const listenerBefore = await pgbackrestListener();
            // The held connection's process, and any archive-push's that happens to be connected too.
            const connectionProcesses = await waitFor("the held connection's process in the backup container", 30_000, async () => {
                const forked = (await pgbackrestServers()).filter((pid) => pid !== listenerBefore);
                return forked.length > 0 ? forked : undefined;
            });
            const before = await starts();
            const servedBefore = await served();
            let steps: PlannedStep[] = [];
            const idle = new pg.Client(clientConfig(stack.outputs.databaseUrl));
            let lost: Error | undefined;
            idle.on("error", (error) => (lost ??= error));
            await idle.connect();
            const checksBefore = await routerChecks();
            const renewed = [
                "tls-pgbouncer-cert",
                "tls-backup-cert",
                ...etcdMembers.map((e) => `tls-${e.resourceName}-cert`),
                ...members.map((m) => `tls-${m.resourceName}-cert`),
            ];
            try {
                const outcome = await survives(
                    "every server certificate renewed (PgBouncer: RELOAD; pgBackRest: SIGHUP; etcd: next handshake; members: Patroni's SIGHUP)",
                    async () => {
                        steps = await stack.update(LATER_CHANGES, { replace: renewed });
                    },
                );
                expect(stepsOf(steps, "replace")).toEqual([...renewed].sort());
                expect(stepsOf(steps, "update")).toEqual(
                    [
                        "backup-certificate",
                        ...etcdMembers.map((e) => `${e.resourceName}-certificate`),
                        ...members.map((m) => `${m.resourceName}-certificate`),
                        "pgbouncer-certificate-reload",
                    ].sort(),
                );
                expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
                expect(await starts()).toEqual(before);
                // The REST APIs reopened their listeners without the router's checks taking any member out of a route.
                const checksAfter = await routerChecks();
                console.info(`router checks failed during the renewal: ${checksAfter.failed - checksBefore.failed}`);
                expect(checksAfter.down).toBe(checksBefore.down);
                // pgBackRest's listener reloaded in place, and the held connection's process, forked before, still serves.
                expect(await pgbackrestListener()).toBe(listenerBefore);
                const serversAfter = await pgbackrestServers();
                expect(connectionProcesses.filter((pid) => serversAfter.includes(pid))).not.toEqual([]);
                // The session opened before the renewal, idle throughout, still runs queries.
                expect((await idle.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
                expect(lost).toBeUndefined();
            } finally {
                await idle.end();
                for (const held of ["sleep 240", `openssl s_client ${heldConnection}`]) {
                    await docker("exec", first.container, "pkill", "-f", held).catch(() => undefined);
                }
            }
            // `pulumi up` returned once each served its new certificate: new handshakes show them, signed by the stack's CA for the names clients use.
            const servedAfter = await served();
            for (const [i, after] of servedAfter.entries()) {
                expect(after.serial, after.subject).not.toBe(servedBefore[i].serial);
                expect(after.subject).toBe(servedBefore[i].subject);
            }
            expect(await containerLog(pgbouncerHost())).not.toMatch(/TLS configuration could not be reloaded/);
            // The leader's WAL reaches the repository through the renewed server, and the backup container, a client with
            // its renewed certificate, reaches every member: pgBackRest's check switches a segment and waits for it.
            await docker("exec", backup.container, "sh", "-c", `${pgbackrestCommand()} check`);
            // Patroni still reaches etcd through its client certificate: the cluster reports a leader and every member healthy.
            await waitForHealthyCluster(stack, 60_000);
        }, 300_000);

        it("synchronousReplicas 1 → 0 → 1 turns quorum commit off and on again through Patroni: nothing replaced or restarted, no write fails", async () => {
            const before = await memberStarts();
            /** The leader's synchronous_standby_names and the members Patroni counts toward the quorum, once they read `expected`. */
            const quorumReads = (expected: RegExp) =>
                waitFor(`synchronous_standby_names matching ${expected}`, 60_000, async () => {
                    const [row] = await query(await leaderUrl(), "SHOW synchronous_standby_names");
                    const names: string = row.synchronous_standby_names;
                    const voters = (await clusterStatus(stack)).filter((m) => m.quorumStandby).length;
                    return expected.test(names) ? { names, voters } : undefined;
                });
            for (const synchronousReplicas of [0, 1]) {
                let steps: PlannedStep[] = [];
                const outcome = await survives(
                    `synchronousReplicas → ${synchronousReplicas} (Patroni's dynamic configuration)`,
                    async () => {
                        steps = await stack.update({ ...LATER_CHANGES, synchronousReplicas });
                    },
                );
                expect(steps).toEqual([
                    { name: "cluster-config-dynamic-config", step: "update" },
                    { name: "etcd-patroni-config-seed", step: "update" },
                ]);
                expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
                if (synchronousReplicas === 0) {
                    expect(await quorumReads(/^$/)).toEqual({ names: "", voters: 0 });
                } else {
                    // Any one of the three replicas acknowledges a commit (Patroni quotes the names); it counts them all as voters.
                    const { names, voters } = await quorumReads(/^ANY 1 \(/);
                    expect(names.replaceAll('"', "")).toMatch(/^ANY 1 \(pg-\d+,pg-\d+,pg-\d+\)$/);
                    expect(voters).toBe(stack.topology.members.length - 1);
                }
            }
            expect(await memberStarts()).toEqual(before);
        }, 600_000);

        it("failoverTtl 20 → 30 reaches every member's Patroni through etcd: no member replaced or restarted, no write fails, the alert follows", async () => {
            const before = await memberStarts();
            let steps: PlannedStep[] = [];
            const outcome = await survives("failoverTtl 20 → 30 (Patroni's dynamic configuration)", async () => {
                steps = await stack.update({ ...LATER_CHANGES, failoverTtl: 30 });
            });
            expect(stepsOf(steps, "update")).toEqual(["cluster-config-dynamic-config", "etcd-patroni-config-seed"]);
            // The no-leader alert's text names the TTL.
            expect(stepsOf(steps, "replace")).toEqual(["monitoring-prometheus"]);
            expect(outcome.clientErrors, outcome.errors.join(" | ")).toBe(0);
            for (const member of stack.topology.members) {
                const config = JSON.parse(await docker("exec", member.container, ...restApiCurl("/config", { maxTimeSeconds: 5 })));
                expect(config.ttl, member.node).toBe(30);
            }
            expect(await memberStarts()).toEqual(before);
        }, 600_000);

        // The path a minor upgrade (17.x to 17.y) takes: the same image with one label more, so another ID.
        it("a new image replaces every container: the members one at a time, the leader's after a switchover; PgBouncer's clients reconnect, no row is lost", async () => {
            const image = upgradeImage();
            const context = mkdtempSync(path.join(tmpdir(), "obcms-upgrade-"));
            writeFileSync(path.join(context, "Dockerfile"), `FROM obcms-database:17\nLABEL obcms.test.upgrade=${stack.clusterName}\n`);
            try {
                await docker("build", "--quiet", "--tag", image, context);
                const holdsBefore = await pgbouncerHolds();
                let steps: PlannedStep[] = [];
                let downAtOnce = 0;
                const outcome = await survives("a new image (every container replaced)", async () => {
                    ({ steps, downAtOnce } = await updateCountingMembersDown({
                        ...LATER_CHANGES,
                        failoverTtl: 30,
                        image,
                    }));
                    await waitForHealthyCluster(stack, 300_000);
                });
                console.log(
                    `new image: at most ${downAtOnce} member(s) down at once; ${outcome.clientErrors} failed writes (${outcome.errors.slice(0, 3).join(" | ")}); ` +
                        `replaced ${stepsOf(steps, "replace").join(", ")}`,
                );
                expect(stepsOf(steps, "replace")).toEqual(
                    expect.arrayContaining(["pgbouncer-container", ...stack.topology.members.map((m) => `${m.resourceName}-container`)]),
                );
                expect(downAtOnce).toBe(1);
                for (const container of [pgbouncerHost(), ...stack.topology.members.map((m) => m.container)]) {
                    expect((await docker("inspect", "--format", "{{.Config.Image}}", container)).trim(), container).toBe(image);
                }
                // The members went before PgBouncer: the leader's handover held the old PgBouncer's clients.
                const { pauses: pausesThen } = await pgbouncerHolds(stack.stopped(pgbouncerHost())?.log ?? "");
                expect(pausesThen - holdsBefore.pauses).toBeGreaterThanOrEqual(1);
                expect(pausesThen - holdsBefore.pauses).toBeLessThanOrEqual(2);
                // PgBouncer itself is replaced: its clients reconnect, and every failure is a connection
                // error, never a constraint or data error.
                expect(outcome.errors.every((e) => !/duplicate key|violates/.test(e))).toBe(true);
            } finally {
                rmSync(context, { recursive: true, force: true });
            }
        }, 900_000);

        it("postgresCpus 2 → 1 replaces the members one at a time, the leader's after a switchover, and restarts none again: the parallel workers follow by reload, max_worker_processes stays", async () => {
            const members = stack.topology.members;
            // The parallel-worker settings follow through Patroni, by reload.
            await rollsMembersOneAtATime("every PostgreSQL member replaced (postgresCpus 2 → 1)", {
                ...LATER_CHANGES,
                failoverTtl: 30,
                image: upgradeImage(),
                postgresCpus: 1,
            });
            const sizing = postgresSizing({ ...stack.settings.postgresResources, cpus: 1 }, stack.settings.maxConnections);
            for (const member of members) {
                expect((await docker("inspect", "--format", "{{.HostConfig.NanoCpus}}", member.container)).trim(), member.node).toBe(
                    "1000000000",
                );
                const [row] = await query(
                    stack.outputs.memberUrls[member.node],
                    "SELECT current_setting('max_parallel_workers')::int AS workers, current_setting('max_parallel_workers_per_gather')::int AS per_gather, " +
                        "current_setting('max_worker_processes')::int AS worker_processes",
                );
                expect(row, member.node).toEqual({
                    workers: sizing.maxParallelWorkers,
                    per_gather: sizing.maxParallelWorkersPerGather,
                    worker_processes: sizing.maxWorkerProcesses,
                });
            }
            expect(sizing.maxParallelWorkers).toBe(1);
            // Each new container's PostgreSQL started once and never shut down: no second restart for a cluster-wide value.
            expect(await shutdowns()).toEqual(members.map(() => 0));
        }, 900_000);
    });
});
