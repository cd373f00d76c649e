// The runbook's verification, automated, against each stack brought up for
// real on the local Docker engine from the program itself (startStack).
// Who leads is asked of Patroni (harness/patroni.ts), never read from a
// member's name: every test holds whichever member leads.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { postgresSetting } from "../../components/postgres-catalog";
import { POSTGRES_CATALOG } from "../../components/postgres-catalog.generated";
import { handoverScript, REPLACEMENT_DIGEST_VARIABLE } from "../../components/postgres-node";
import { sqlLiteral } from "../../components/render/escape";
import {
    BACKUP_TLS_FILES,
    ETCD_TLS_FILES,
    FILES,
    MEMBER_TLS_FILES,
    PGBOUNCER_TLS_FILES,
    PGBOUNCER_USERLIST_FILE,
    SOCKET_DIR,
} from "../../components/render/paths";
import { postgresParameters, postgresqlConfParameters } from "../../components/render/postgres/parameters";
import { REPLACEMENT_DIGEST_LABEL } from "../../components/service-container";
import { ROLES } from "../../components/settings";
import { postgresSizing } from "../../components/sizing";
import type { PostgresMember } from "../../components/topology";
import { whileRunning } from "../../harness/background";
import { type StartedStack, startStack } from "../../harness/cluster";
import { clusterScript } from "../../harness/faults";
import { type MemberStatus, patronictl, patroniStatus, waitForHealthyCluster, waitForLeader } from "../../harness/patroni";
import { stepsOf } from "../../harness/preview";
import { clientConfig, containerLog, docker, processesText, query, waitFor, withClient } from "../../harness/sql";
import { PROJECT_ROOT } from "../../harness/stack-config";

const run = promisify(execFile);

const EXPECTED = {
    staging: { replicas: 1, poolSize: 25, maxClientConn: 1000, clientTls: "prefer", postgresPublished: true },
    production: { replicas: 3, poolSize: 50, maxClientConn: 2000, clientTls: "require", postgresPublished: false },
} as const;
const ETCD_MEMBERS = { staging: 1, production: 3 } as const;
/** The stack's CA and an etcd member's own certificate, inside its container: etcdctl presents it. */
const ETCD_TLS = [`--cacert=${FILES.tlsCa}`, `--cert=${ETCD_TLS_FILES.cert}`, `--key=${ETCD_TLS_FILES.key}`];
/** No Grafana image can be pulled here; its provisioning is tested without it. */
const NO_GRAFANA = { grafanaEnabled: false };
const RESERVE_POOL_SIZE = 5;
const APP_USER = "obcms_app";
/** Advisory lock key the pool test holds its clients' transactions on. */
const POOL_GATE_LOCK = 741_776;
/** What pg_rewind reads the source's files with: all its role may execute beyond what PUBLIC may. */
const REWIND_FUNCTIONS = [
    "pg_ls_dir(text,boolean,boolean)",
    "pg_read_binary_file(text)",
    "pg_read_binary_file(text,bigint,bigint,boolean)",
    "pg_stat_file(text,boolean)",
];

interface Roles {
    readonly leader: MemberStatus;
    /** The other members, each streaming from the leader, in member order. */
    readonly replicas: MemberStatus[];
}

/** Who leads and who streams from it, once every member is in the cluster. */
async function rolesOf(stack: StartedStack): Promise<Roles> {
    const members = await waitForHealthyCluster(stack, 120_000);
    return {
        leader: members.find((m) => m.role === "leader") as MemberStatus,
        replicas: members.filter((m) => m.role === "replica"),
    };
}

/** A container's address on the cluster network. */
async function addressOf(container: string): Promise<string> {
    return (await docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)).trim();
}

/** How long a patronictl call here may take: a healthy member answers within seconds. */
const PATRONICTL_SECONDS = 30;

/** libpq's `key=value` connection string as a map (the values the WAL receiver reports have no spaces). */
function conninfoParameters(conninfo: string): Record<string, string> {
    return Object.fromEntries(conninfo.split(" ").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

/**
 * Every password the stack holds, which must never show up outside the files
 * meant for them: the ones in its outputs (application, PgBouncer admin,
 * superuser), the ones only Patroni's config holds (replication, rewind, its
 * REST API) and the monitoring role's, from an exporter's password file.
 */
async function passwordsOf(stack: StartedStack): Promise<string[]> {
    const o = stack.outputs;
    const fromUrls = [o.databaseUrl, o.pgbouncerAdminUrl, ...Object.values(o.memberUrls)].map((u) =>
        decodeURIComponent(new URL(u).password),
    );
    const patroni = parse(await docker("exec", stack.topology.primary.container, "cat", FILES.patroniConf));
    const { superuser, replication, rewind } = patroni.postgresql.authentication;
    const monitoring = (await docker("exec", stack.topology.primary.exporter, "cat", FILES.pgpass)).trim().split(":").at(-1) as string;
    const passwords = [
        ...fromUrls,
        superuser.password,
        replication.password,
        rewind.password,
        patroni.restapi.authentication.password,
        monitoring,
    ];
    expect(passwords.every((p) => typeof p === "string" && p.length >= 16)).toBe(true);
    return [...new Set<string>(passwords)];
}

/**
 * A meeting point for `parties` concurrent callers: each waits until all have
 * arrived, at most `timeoutMs`.
 */
function meetingPoint(parties: number, timeoutMs: number): () => Promise<void> {
    let arrived = 0;
    return async () => {
        arrived++;
        await waitFor(`${parties} callers at the meeting point`, timeoutMs, async () => (arrived >= parties ? true : undefined));
    };
}

/** The members streaming from the server at `leaderUrl`, by the application name Patroni gives each (its member name). */
async function streamingMembers(leaderUrl: string): Promise<string[]> {
    const rows = await query(
        leaderUrl,
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY application_name",
    );
    return rows.map((r) => r.application_name);
}

/** When a member's container and its PostgreSQL last started: both stay the same while nothing restarts it. */
async function startedAt(stack: StartedStack, member: PostgresMember): Promise<Record<string, string>> {
    const container = (await docker("inspect", "--format", "{{.State.StartedAt}} restarts={{.RestartCount}}", member.container)).trim();
    const [{ postmaster }] = await query(stack.outputs.memberUrls[member.node], "SELECT pg_postmaster_start_time()::text AS postmaster");
    return { container, postmaster };
}

// Each test asks Patroni who leads and runs docker exec in several containers: seconds each on a loaded machine.
describe.each(["staging", "production"] as const)("%s stack on a real Docker engine", { timeout: 120_000 }, (stackName) => {
    const expected = EXPECTED[stackName];
    let stack: StartedStack;

    beforeAll(async () => {
        const started = Date.now();
        stack = await startStack(stackName, { overrides: NO_GRAFANA });
        const created = Date.now();
        const { leader } = await rolesOf(stack);
        await waitFor("every replica streaming from the leader", 120_000, async () => {
            const streaming = await streamingMembers(leader.url);
            return streaming.length === expected.replicas ? streaming : undefined;
        });
        console.log(
            `${stackName}: resources created in ${((created - started) / 1000).toFixed(1)} s, ` +
                `all ${expected.replicas} replicas streaming from ${leader.name} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
    }, 600_000);

    afterAll(async () => {
        await stack?.stop();
    }, 120_000);

    it("exposes the configured topology in its outputs", () => {
        expect(stack.outputs.replicaCount).toBe(expected.replicas);
        expect(stack.outputs.poolSize).toBe(expected.poolSize);
        expect(Object.keys(stack.outputs.memberUrls).sort()).toEqual(
            Array.from({ length: expected.replicas + 1 }, (_, i) => `pg-${i + 1}`),
        );
    });

    it("does nothing when the unchanged program runs again: what the engine reports back matches what it declares", async () => {
        const ids = await docker("ps", "-q", "--no-trunc", "--filter", `name=^${stack.clusterName}-`);
        expect(await stack.update({})).toEqual([]);
        expect(await docker("ps", "-q", "--no-trunc", "--filter", `name=^${stack.clusterName}-`)).toBe(ids);
    });

    it("hands nothing over from the leader when its running container carries the declared digest (an update in place, a new handover script)", async () => {
        const { leader } = await rolesOf(stack);
        const member = stack.topology.members.find((m) => m.node === leader.name) as PostgresMember;
        const labelled = (
            await docker("inspect", "--format", `{{index .Config.Labels "${REPLACEMENT_DIGEST_LABEL}"}}`, member.container)
        ).trim();
        expect(labelled).toMatch(/^[0-9a-f]{64}$/);
        const { stderr } = await run("/bin/sh", ["-c", handoverScript(stack.settings, member)], {
            cwd: PROJECT_ROOT,
            env: { ...process.env, [REPLACEMENT_DIGEST_VARIABLE]: labelled },
        });
        expect(stderr).toBe(`${member.node} keeps its container: no handover\n`);
        expect((await rolesOf(stack)).leader.name).toBe(leader.name);
    });

    it("answers a SELECT through PgBouncer as the application role, on the leader", async () => {
        const { leader } = await rolesOf(stack);
        const rows = await query(
            stack.outputs.databaseUrl,
            "SELECT 'PgBouncer working!' AS status, current_user, current_database(), pg_is_in_recovery() AS in_recovery, " +
                "host(inet_server_addr()) AS server",
        );
        expect(rows).toEqual([
            {
                status: "PgBouncer working!",
                current_user: APP_USER,
                current_database: "obcms",
                in_recovery: false,
                server: await addressOf(leader.container),
            },
        ]);
    });

    it("reports the configured pool on the admin console (SHOW POOLS, CLIENTS, SERVERS, STATS, CONFIG)", async () => {
        await query(stack.outputs.databaseUrl, "SELECT 1");
        await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
            const config = new Map((await admin.query("SHOW CONFIG")).rows.map((r) => [r.key, r.value]));
            expect(config.get("pool_mode")).toBe("transaction");
            expect(config.get("default_pool_size")).toBe(String(expected.poolSize));
            expect(config.get("reserve_pool_size")).toBe(String(RESERVE_POOL_SIZE));
            expect(config.get("max_client_conn")).toBe(String(expected.maxClientConn));
            expect(config.get("query_wait_timeout")).toBe("120");
            expect(config.get("auth_type")).toBe("scram-sha-256");
            expect(config.get("admin_users")).toBe("pgbouncer");
            expect(config.get("stats_users")).toBe("monitoring");

            const pools = (await admin.query("SHOW POOLS")).rows;
            expect(pools.filter((p) => p.database === "obcms" && p.user === APP_USER)).toHaveLength(1);
            const clients = (await admin.query("SHOW CLIENTS")).rows;
            expect(clients.some((c) => c.database === "pgbouncer" && c.user === "pgbouncer")).toBe(true);
            const servers = (await admin.query("SHOW SERVERS")).rows;
            expect(servers.every((s) => s.database === "obcms" || s.database === "obcms_readonly")).toBe(true);
            const stats = (await admin.query("SHOW STATS")).rows;
            expect(Number(stats.find((s) => s.database === "obcms")?.total_xact_count)).toBeGreaterThan(0);
        });
    });

    it("runs every other member as a hot standby streaming from the leader through its own active slot", async () => {
        const { leader, replicas } = await rolesOf(stack);
        expect(replicas).toHaveLength(expected.replicas);
        const names = replicas.map((r) => r.name);
        expect(await streamingMembers(leader.url)).toEqual(names);
        // Patroni keeps one slot per other member on the leader, named after the member.
        const slots = await query(leader.url, "SELECT slot_name, slot_type, active FROM pg_replication_slots ORDER BY slot_name");
        const slotOf = (name: string) => stack.topology.members.find((m) => m.node === name)?.slot;
        expect(slots).toEqual(names.map((n) => ({ slot_name: slotOf(n), slot_type: "physical", active: true })));
        for (const replica of replicas) {
            const [row] = await query(
                replica.url,
                "SELECT pg_is_in_recovery() AS in_recovery, current_setting('cluster_name') AS cluster, " +
                    "(SELECT status FROM pg_stat_wal_receiver) AS receiver, " +
                    "(SELECT slot_name FROM pg_stat_wal_receiver) AS slot",
            );
            // Patroni names the PostgreSQL cluster after its scope, the same on every member.
            expect(row, replica.name).toEqual({
                in_recovery: true,
                cluster: stack.topology.scope,
                receiver: "streaming",
                slot: slotOf(replica.name),
            });
        }
    });

    it("runs every member with the parameters sized from its limits, and Docker enforces those limits", async () => {
        const s = stack.settings;
        const z = postgresSizing(s.postgresResources, s.maxConnections);
        const mib = 1024 * 1024;
        for (const member of stack.topology.members) {
            const [row] = await query(
                stack.outputs.memberUrls[member.node],
                "SELECT pg_size_bytes(current_setting('shared_buffers')) AS shared_buffers, " +
                    "pg_size_bytes(current_setting('work_mem')) AS work_mem, " +
                    "pg_size_bytes(current_setting('effective_cache_size')) AS effective_cache_size, " +
                    "pg_size_bytes(current_setting('maintenance_work_mem')) AS maintenance_work_mem, " +
                    "current_setting('max_worker_processes')::int AS max_worker_processes",
            );
            expect(row, member.node).toEqual({
                shared_buffers: String(z.sharedBuffersKb * 1024),
                work_mem: String(z.workMemKb * 1024),
                effective_cache_size: String(z.effectiveCacheSizeKb * 1024),
                maintenance_work_mem: String(z.maintenanceWorkMemKb * 1024),
                max_worker_processes: z.maxWorkerProcesses,
            });
            const [inspect] = JSON.parse(await docker("inspect", member.container));
            const { Memory, MemorySwap, NanoCpus, ShmSize } = inspect.HostConfig;
            expect({ Memory, MemorySwap, NanoCpus, ShmSize }, member.container).toEqual({
                Memory: s.postgresResources.memoryMb * mib,
                MemorySwap: s.postgresResources.memoryMb * mib,
                NanoCpus: s.postgresResources.cpus * 1e9,
                ShmSize: s.postgresResources.memoryMb * mib,
            });
        }
    });

    it("runs the parameters read only at start from its postgresql.conf, and every other from Patroni's dynamic configuration", async () => {
        const declared = Object.keys(postgresParameters(stack.settings)).sort();
        const inFile = new Set(Object.keys(postgresqlConfParameters(stack.settings)));
        // Patroni sets these two itself as well (patroni.yml), and its value wins.
        const alsoPatroni = new Set(["hba_file", "unix_socket_directories"]);
        const expectedOrigin = (name: string) => (inFile.has(name) && !alsoPatroni.has(name) ? "postgresql.conf" : "Patroni");
        // Patroni's parameters reach PostgreSQL in its own postgresql.conf, on the command line, or as an override.
        const sql =
            "SELECT lower(name), context = 'postmaster', " +
            `CASE WHEN sourcefile = ${sqlLiteral(FILES.postgresqlConf)} THEN 'postgresql.conf' ELSE 'Patroni' END ` +
            `FROM pg_catalog.pg_settings WHERE lower(name) IN (${declared.map(sqlLiteral).join(", ")}) ORDER BY 1`;
        for (const member of stack.topology.members) {
            const psql = ["psql", "-X", "-A", "-t", "-F", "|", "-h", SOCKET_DIR, "-d", "postgres", "-c", sql];
            const rows = (await docker("exec", member.container, ...psql)).trim().split("\n");
            expect(rows, member.node).toEqual(
                declared.map((name) => `${name}|${postgresSetting(name)?.context === "postmaster" ? "t" : "f"}|${expectedOrigin(name)}`),
            );
        }
    });

    it("shows a row written through PgBouncer on every replica within 2 s", async () => {
        const { replicas } = await rolesOf(stack);
        await query(
            stack.outputs.databaseUrl,
            "CREATE TABLE IF NOT EXISTS replication_test (id serial PRIMARY KEY, message text, created_at timestamptz DEFAULT now())",
        );
        const message = `from the leader ${Date.now()}`;
        await query(stack.outputs.databaseUrl, "INSERT INTO replication_test (message) VALUES ($1)", [message]);
        const written = Date.now();
        const delays = await Promise.all(
            replicas.map((replica) =>
                waitFor(`the row on ${replica.name}`, 2_000, async () => {
                    const rows = await query(replica.url, "SELECT message FROM replication_test WHERE message = $1", [message]);
                    return rows.length === 1 ? Date.now() - written : undefined;
                }),
            ),
        );
        console.log(`${stackName}: row visible on replicas after ${delays.join(", ")} ms`);
        expect(delays.every((ms) => ms < 2_000)).toBe(true);
    });

    it("serves 100 concurrent clients through PgBouncer within pool size + reserve server connections", async () => {
        const { leader } = await rolesOf(stack);
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS load_test (client int, n int)");
        const limit = expected.poolSize + RESERVE_POOL_SIZE;
        const clients = 100;
        const transactionsEach = 5;
        const reserveTimeout = await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) =>
            Number((await admin.query("SHOW CONFIG")).rows.find((r) => r.key === "reserve_pool_timeout")?.value),
        );
        expect(reserveTimeout, "reserve_pool_timeout").toBeGreaterThan(0);

        /** Server connections PgBouncer has for the read-write database, and the application role's backends on the leader. */
        const serverCounts = async (admin: pg.Client, leaderClient: pg.Client) => {
            const servers = (await admin.query("SHOW SERVERS")).rows.filter((s) => s.database === "obcms").length;
            const [pool] = (await admin.query("SHOW POOLS")).rows.filter((p) => p.database === "obcms" && p.user === APP_USER);
            const [{ backends }] = (
                await leaderClient.query(
                    "SELECT count(*)::int AS backends FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'",
                    [APP_USER],
                )
            ).rows;
            return {
                servers,
                backends,
                waiting: Number(pool?.cl_waiting ?? 0),
                loggingIn: Number(pool?.sv_login ?? 0),
                /** How long the oldest waiting client has waited, in seconds. */
                longestWait: Number(pool?.maxwait ?? 0) + Number(pool?.maxwait_us ?? 0) / 1e6,
            };
        };
        let peakServers = 0;
        let peakBackends = 0;
        const samplePeaks = (sampling: () => boolean) =>
            withClient(stack.outputs.pgbouncerAdminUrl, (admin) =>
                withClient(leader.url, async (leaderClient) => {
                    while (sampling()) {
                        const { servers, backends } = await serverCounts(admin, leaderClient);
                        peakServers = Math.max(peakServers, servers);
                        peakBackends = Math.max(peakBackends, backends);
                        await new Promise((resolve) => setTimeout(resolve, 50));
                    }
                }),
            );

        // Each client's first transaction waits on a lock this test holds, so
        // it keeps its server connection for as long as the test needs: every
        // client wants one at once, however slowly the clients connect.
        const gate = new pg.Client(clientConfig(leader.url));
        gate.on("error", () => undefined);
        await gate.connect();
        const { result } = await whileRunning(samplePeaks, async () => {
            let full: Awaited<ReturnType<typeof serverCounts>> & { seconds: number };
            let results: PromiseSettledResult<void>[];
            try {
                await gate.query("SELECT pg_advisory_lock($1)", [POOL_GATE_LOCK]);
                const started = Date.now();
                // allSettled: one promise for them all, observed from the start; never rejects.
                const running = Promise.allSettled(
                    Array.from({ length: clients }, (_, client) =>
                        withClient(stack.outputs.databaseUrl, async (c) => {
                            for (let n = 0; n < transactionsEach; n++) {
                                await c.query("BEGIN");
                                if (n === 0) {
                                    await c.query("SELECT pg_advisory_xact_lock_shared($1)", [POOL_GATE_LOCK]);
                                }
                                await c.query("INSERT INTO load_test (client, n) VALUES ($1, $2)", [client, n]);
                                await c.query("COMMIT");
                            }
                        }),
                    ),
                );
                try {
                    // The pool fills, then, once a client has waited reserve_pool_timeout,
                    // the reserve, and no further: every other client waits, longer than
                    // the reserve timeout, with no server login under way, for a second.
                    // A pool below its bound would be opening more; a smaller one never gets there.
                    let steadySince: number | undefined;
                    full = await withClient(stack.outputs.pgbouncerAdminUrl, (admin) =>
                        withClient(leader.url, (leaderClient) =>
                            waitFor(
                                `${limit} server connections, steady, with ${clients - limit} clients waiting`,
                                60_000 + reserveTimeout * 1000,
                                async () => {
                                    const counts = await serverCounts(admin, leaderClient);
                                    const steady =
                                        counts.servers === limit &&
                                        counts.backends === limit &&
                                        counts.waiting === clients - limit &&
                                        counts.loggingIn === 0 &&
                                        counts.longestWait >= reserveTimeout;
                                    steadySince = steady ? (steadySince ?? Date.now()) : undefined;
                                    return steadySince !== undefined && Date.now() - steadySince >= 1_000
                                        ? { ...counts, seconds: (Date.now() - started) / 1000 }
                                        : undefined;
                                },
                            ).catch((error: Error) => {
                                throw new Error(`${error.message}; peaks so far: ${peakServers} servers, ${peakBackends} backends`);
                            }),
                        ),
                    );
                } finally {
                    // Lets the transactions through, also when the wait failed.
                    await gate.query("SELECT pg_advisory_unlock($1)", [POOL_GATE_LOCK]);
                    results = await running;
                }
            } finally {
                await gate.end();
            }
            return { full, results };
        });

        const failures = result.results.filter((r) => r.status === "rejected");
        expect(failures).toEqual([]);
        const [{ count }] = await query(stack.outputs.databaseUrl, "SELECT count(*)::int AS count FROM load_test");
        expect(count).toBe(clients * transactionsEach);
        console.log(
            `${stackName}: ${clients} clients, ${result.full.servers} server connections (PgBouncer), ${result.full.backends} backends (PostgreSQL) ` +
                `with ${result.full.waiting} clients waiting (the oldest ${result.full.longestWait.toFixed(1)} s) after ${result.full.seconds.toFixed(1)} s; ` +
                `peaks ${peakServers} and ${peakBackends}, limit ${limit}`,
        );
        // Never more than the pool and its reserve, on either side, while 100 clients wanted a server.
        expect(peakServers, "peak PgBouncer server connections").toBeLessThanOrEqual(limit);
        expect(peakBackends, "peak PostgreSQL backends").toBeLessThanOrEqual(limit);
    }, 180_000);

    it("spreads obcms_readonly over the streaming replicas and refuses writes there", async () => {
        const { replicas } = await rolesOf(stack);
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS readonly_test (id int)");
        await waitFor("the table on every replica", 5_000, async () => {
            const present = await Promise.all(
                replicas.map(async (r) => (await query(r.url, "SELECT to_regclass('readonly_test') AS t"))[0].t),
            );
            return present.every((t) => t !== null) ? true : undefined;
        });
        // Every client keeps its transaction, and so its server connection, open
        // until all are in one: PgBouncer opens one per client, and the router
        // deals them round-robin over the replicas, whatever the timing of the logins.
        const clients = 4 * expected.replicas;
        const allInTransaction = meetingPoint(clients, 30_000);
        const served = await Promise.all(
            Array.from({ length: clients }, () =>
                withClient(stack.outputs.readonlyDatabaseUrl, async (c) => {
                    await c.query("BEGIN");
                    // A standby streams through its member's slot: which member answered.
                    const [row] = (
                        await c.query(
                            "SELECT current_setting('primary_slot_name') AS slot, pg_is_in_recovery() AS ro, " +
                                "host(inet_client_addr()) AS client, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        )
                    ).rows;
                    await allInTransaction();
                    await c.query("COMMIT");
                    return row;
                }),
            ),
        );
        expect(served.every((n) => n.ro === true)).toBe(true);
        const slotOf = (name: string) => stack.topology.members.find((m) => m.node === name)?.slot;
        expect([...new Set(served.map((n) => n.slot))].sort()).toEqual(replicas.map((r) => slotOf(r.name)).sort());
        // Routed by the router beside PgBouncer, over TLS.
        const pgbouncer = await addressOf(stack.topology.pgbouncer.container);
        expect(new Set(served.map((n) => `${n.client} ssl=${n.ssl}`))).toEqual(new Set([`${pgbouncer} ssl=true`]));

        await expect(query(stack.outputs.readonlyDatabaseUrl, "INSERT INTO readonly_test VALUES (1)")).rejects.toMatchObject({
            code: "25006",
            message: "cannot execute INSERT in a read-only transaction",
        });
    });

    it("creates the roles, database, time zone and extension the stack declares on the leader, with least privilege", async () => {
        const { leader } = await rolesOf(stack);
        const url = leader.url;
        // Every role that may log in: the stack's, and Patroni's replication and rewind roles.
        const roles = await query(
            url,
            `SELECT rolname, rolsuper, rolreplication, rolcreatedb, rolcreaterole, rolbypassrls, rolcanlogin,
                    left(rolpassword, 14) AS verifier,
                    ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = a.oid ORDER BY 1) AS member_of
             FROM pg_authid a WHERE rolcanlogin ORDER BY rolname`,
        );
        const role = (rolname: string, extra: Partial<Record<string, unknown>>) => ({
            rolname,
            rolsuper: false,
            rolreplication: false,
            rolcreatedb: false,
            rolcreaterole: false,
            rolbypassrls: false,
            rolcanlogin: true,
            verifier: "SCRAM-SHA-256$",
            member_of: [],
            ...extra,
        });
        expect(roles).toEqual([
            role("monitoring", { member_of: ["pg_monitor"] }),
            role("obcms_app", {}),
            role("postgres", { rolsuper: true, rolreplication: true, rolcreatedb: true, rolcreaterole: true, rolbypassrls: true }),
            role(ROLES.replication, { rolreplication: true }),
            role(ROLES.restoreDrill, {}),
            role(ROLES.rewind, {}),
        ]);
        // What the program's roles without a predefined role were granted by name, per database
        // (functions, relations and schemas are per database): the replication role nothing
        // anywhere; the rewind role pg_rewind's functions in `postgres`, where pg_rewind connects;
        // the restore drill's role pg_switch_wal() and its own schema there (its canary table comes
        // with its first drill); nothing else.
        const privileges = async (database: string) => {
            const databaseUrl = new URL(url);
            databaseUrl.pathname = `/${database}`;
            const grants = await query(
                databaseUrl.toString(),
                `SELECT r.rolname, p.oid::regprocedure::text AS function, acl.privilege_type
                 FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) acl JOIN pg_roles r ON r.oid = acl.grantee
                 WHERE r.rolname IN ($1, $2, $3) ORDER BY 1, 2`,
                [ROLES.replication, ROLES.rewind, ROLES.restoreDrill],
            );
            const [{ relations }] = await query(
                databaseUrl.toString(),
                `WITH them AS (SELECT oid FROM pg_roles WHERE rolname IN ($1, $2, $3))
                 SELECT count(*)::int AS relations FROM pg_class c
                 WHERE c.relowner IN (SELECT oid FROM them)
                    OR EXISTS (SELECT FROM aclexplode(c.relacl) acl WHERE acl.grantee IN (SELECT oid FROM them))`,
                [ROLES.replication, ROLES.rewind, ROLES.restoreDrill],
            );
            const schemas = await query(
                databaseUrl.toString(),
                `SELECT n.nspname, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
                 WHERE r.rolname IN ($1, $2, $3) ORDER BY 1`,
                [ROLES.replication, ROLES.rewind, ROLES.restoreDrill],
            );
            return { grants, relations, schemas };
        };
        expect(await privileges("postgres")).toEqual({
            grants: [
                { rolname: ROLES.restoreDrill, function: "pg_switch_wal()", privilege_type: "EXECUTE" },
                ...REWIND_FUNCTIONS.map((f) => ({ rolname: ROLES.rewind, function: f, privilege_type: "EXECUTE" })),
            ],
            relations: 0,
            schemas: [{ nspname: ROLES.restoreDrill, rolname: ROLES.restoreDrill }],
        });
        expect(await privileges("obcms")).toEqual({ grants: [], relations: 0, schemas: [] });
        const [shared] = await query(
            url,
            `SELECT (SELECT count(*)::int FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname IN ($1, $2, $3)) AS databases,
                    (SELECT count(*)::int FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname IN ($1, $2, $3)) AS settings`,
            [ROLES.replication, ROLES.rewind, ROLES.restoreDrill],
        );
        expect(shared).toEqual({ databases: 0, settings: 0 });

        const [db] = await query(
            url,
            "SELECT pg_get_userbyid(datdba) AS owner, (SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements FROM pg_database WHERE datname = 'obcms'",
        );
        expect(db).toEqual({ owner: APP_USER, statements: true });
        const [session] = await query(
            stack.outputs.databaseUrl,
            "SELECT current_setting('TimeZone') AS tz, current_setting('server_version_num')::int / 10000 AS major",
        );
        expect(session).toEqual({ tz: "Asia/Manila", major: 17 });
        const [server] = await query(
            url,
            "SELECT current_setting('shared_preload_libraries') AS preload, current_setting('wal_level') AS wal_level, " +
                "current_setting('max_wal_senders')::int AS senders, current_setting('max_replication_slots')::int AS slots, " +
                "current_setting('max_slot_wal_keep_size') AS keep, current_setting('hot_standby_feedback') AS feedback",
        );
        expect(server).toEqual({
            preload: "pg_stat_statements,pgaudit",
            wal_level: "replica",
            // Sized for the largest cluster allowed (10 replicas), so scaling changes no member.
            senders: 22,
            slots: 12,
            keep: "2GB",
            feedback: "on",
        });
        const [statements] = await query(stack.outputs.databaseUrl, "SELECT count(*) >= 0 AS readable FROM pg_stat_statements");
        expect(statements.readable).toBe(true);
    });

    it("writes pgaudit's record of DDL and role changes to the leader's log, passwords redacted", async () => {
        const { leader } = await rolesOf(stack);
        const marker = `audit_probe_${Date.now()}`;
        await query(leader.url, `CREATE TABLE ${marker} (id int)`);
        await query(leader.url, `ALTER ROLE monitoring SET application_name = '${marker}'`);
        await query(leader.url, `ALTER ROLE monitoring RESET application_name`);
        await query(leader.url, `SELECT count(*) FROM ${marker}`);
        await query(leader.url, `DROP TABLE ${marker}`);
        const audit = await waitFor("the audit records", 10_000, async () => {
            const log = await containerLog(leader.container);
            const lines = log.split("\n").filter((line) => line.includes("AUDIT: SESSION") && line.includes(marker));
            return lines.length === 3 ? lines : undefined;
        });
        // Fields: class, command, object type, object name, statement; the SELECT (class READ) is not logged.
        expect(audit.map((line) => line.split(",").slice(3, 5).join(","))).toEqual([
            "DDL,CREATE TABLE",
            "ROLE,ALTER ROLE",
            "DDL,DROP TABLE",
        ]);
        // The cluster config sets every role's password on whichever member led then (the application's: it
        // creates the role with it, and PgBouncer's credentials command then finds it in place and sets
        // nothing): audited there, each password redacted. Patroni's own role changes turn auditing off.
        const logs = await Promise.all(stack.topology.members.map((m) => containerLog(m.container)));
        const passwordChanges = logs
            .join("\n")
            .split("\n")
            .filter((line) => line.includes("AUDIT: SESSION") && line.includes(" PASSWORD "));
        // The statement is a CSV field: quoted, with its own quotes doubled, when it has any.
        const rolesChanged = passwordChanges.map((line) => {
            const match = line.match(
                /,ROLE,(CREATE|ALTER) ROLE,,,"?\1 ROLE (?:"")?([a-z_]+)(?:"")? (?:WITH )?.*PASSWORD <REDACTED>"?,<not logged>$/,
            );
            return match ? `${match[1]} ${match[2]}` : line;
        });
        expect(rolesChanged.sort()).toEqual(
            [
                `CREATE ${APP_USER}`,
                ...["monitoring", "postgres", ROLES.replication, ROLES.restoreDrill, ROLES.rewind].map((r) => `ALTER ${r}`),
            ].sort(),
        );
    });

    it("runs every container as the non-root service user, from its first process on", async () => {
        const containers = (await docker("ps", "--filter", `name=^${stack.clusterName}-`, "--format", "{{.Names}}")).trim().split("\n");
        expect(containers.length).toBeGreaterThanOrEqual(expected.replicas + 2);
        for (const name of containers) {
            expect((await docker("inspect", "--format", "{{.Config.User}}", name)).trim(), name).toBe("999:999");
            // No process in the container, the first included, runs as root.
            const uids = (await docker("top", name, "-eo", "pid,uid"))
                .trim()
                .split("\n")
                .slice(1)
                .map((line) => line.trim().split(/\s+/)[1]);
            expect(new Set(uids), name).toEqual(new Set(["999"]));
        }
    });

    it("keeps the monitoring role read-only and every member's pg_hba.conf, the one it runs with, free of trust", async () => {
        const { leader } = await rolesOf(stack);
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS monitoring_probe (id int)");
        await withClient(leader.url, async (c) => {
            await c.query("SET ROLE monitoring");
            const stats = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity");
            expect(stats.rows[0].n).toBeGreaterThan(0);
            await expect(c.query("INSERT INTO monitoring_probe VALUES (1)")).rejects.toMatchObject({ code: "42501" });
            await expect(c.query("CREATE TABLE monitoring_owned (id int)")).rejects.toMatchObject({ code: "42501" });
        });
        for (const member of stack.topology.members) {
            const hba = await docker("exec", member.container, "cat", FILES.pgHba);
            expect(hba, member.node).not.toMatch(/\btrust\b/);
            expect(
                hba.split("\n").filter((line) => line.startsWith("local")),
                member.node,
            ).toEqual(["local all all peer"]);
            // Patroni writes no pg_hba.conf of its own: PostgreSQL reads the program's.
            const [{ hba_file }] = await query(stack.outputs.memberUrls[member.node], "SELECT current_setting('hba_file') AS hba_file");
            expect(hba_file, member.node).toBe(FILES.pgHba);
        }
    });

    it("refuses a replication connection from any role but the replication role", async () => {
        const { leader } = await rolesOf(stack);
        const url = new URL(leader.url);
        const client = new pg.Client({
            host: url.hostname,
            port: Number(url.port),
            user: "postgres",
            password: decodeURIComponent(url.password),
            database: "postgres",
            replication: "true",
        } as pg.ClientConfig);
        await expect(client.connect()).rejects.toMatchObject({
            code: "28000",
            message: expect.stringMatching(/^pg_hba.conf rejects replication connection for host ".*", user "postgres"/),
        });
        await client.end().catch(() => undefined);
    });

    it("keeps passwords and keys out of Docker's view: no container's environment, command, processes or log holds one; secrets 0600", async () => {
        const containers = (await docker("ps", "-a", "--filter", `name=^${stack.clusterName}-`, "--format", "{{.Names}}"))
            .trim()
            .split("\n")
            .sort();
        const t = stack.topology;
        const members = t.members.map((m) => m.container);
        const withKeys = [t.backup.container, t.pgbouncer.container, ...members, ...t.etcd.map((e) => e.container)];
        expect(containers).toEqual(expect.arrayContaining(withKeys));
        const passwords = await passwordsOf(stack);
        // The application's, PgBouncer's admin, the superuser's, replication, rewind, Patroni's REST API, monitoring.
        expect(passwords).toHaveLength(7);
        for (const name of containers) {
            const [inspect] = JSON.parse(await docker("inspect", name));
            const visible = JSON.stringify([
                inspect.Config.Env,
                inspect.Config.Cmd,
                inspect.Config.Entrypoint,
                inspect.Config.Labels,
                inspect.Path,
                inspect.Args,
            ]);
            const processes = await processesText(name);
            const logs = await containerLog(name);
            for (const secret of [...passwords, stack.outputs.backupPassphrase, "PRIVATE KEY"]) {
                expect(visible, name).not.toContain(secret);
                expect(processes, name).not.toContain(secret);
                expect(logs, name).not.toContain(secret);
            }
            // The audit log records every ALTER ROLE, the cluster config's included, with the verifier redacted.
            expect(logs, name).not.toContain("SCRAM-SHA-256$");
        }
        const mode = async (container: string, file: string) => (await docker("exec", container, "stat", "-c", "%a %U", file)).trim();
        // Every key is on its service's volume, where its certificate command writes it.
        const keysOnVolumes = new Map([
            [t.pgbouncer.container, PGBOUNCER_TLS_FILES.key],
            [t.backup.container, BACKUP_TLS_FILES.key],
            ...members.map((name) => [name, MEMBER_TLS_FILES.key] as const),
            ...t.etcd.map((e) => [e.container, ETCD_TLS_FILES.key] as const),
        ]);
        expect([...keysOnVolumes.keys()].sort()).toEqual([...withKeys].sort());
        for (const [name, key] of keysOnVolumes) {
            expect(await mode(name, key), name).toBe("600 postgres");
        }
        for (const name of members) {
            expect(await mode(name, FILES.patroniConf), name).toBe("600 postgres");
        }
        // The router's config, beside PgBouncer's, holds no credential: its checks need none.
        const haproxyCfg = await docker("exec", t.pgbouncer.container, "cat", FILES.haproxyCfg);
        for (const secret of passwords) {
            expect(haproxyCfg).not.toContain(secret);
        }
        expect(await mode(t.pgbouncer.container, PGBOUNCER_USERLIST_FILE)).toBe("600 postgres");
        const userlist = await docker("exec", t.pgbouncer.container, "cat", PGBOUNCER_USERLIST_FILE);
        expect(
            userlist
                .trim()
                .split("\n")
                .map((line) => line.split(" ")[0]),
        ).toEqual(['"monitoring"', '"obcms_app"', '"pgbouncer"']);
        expect(
            userlist
                .trim()
                .split("\n")
                .every((line) => / "SCRAM-SHA-256\$4096:/.test(line)),
        ).toBe(true);
        for (const password of passwords) {
            expect(userlist).not.toContain(password);
        }
    });

    it("restarts a replica that rejoins through its slot and catches up by itself", async () => {
        const { leader, replicas } = await rolesOf(stack);
        const [replica] = replicas;
        await docker("restart", replica.container);
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS rejoin_test (id int)");
        await query(stack.outputs.databaseUrl, "INSERT INTO rejoin_test SELECT generate_series(1, 1000)");
        const rows = await waitFor(`${replica.name} to catch up after its restart`, 60_000, async () => {
            await stack.refreshAddresses();
            const [row] = await query(stack.outputs.memberUrls[replica.name], "SELECT count(*)::int AS n FROM rejoin_test");
            return row.n === 1000 ? row.n : undefined;
        });
        expect(rows).toBe(1000);
        await waitFor(`${replica.name} streaming again`, 30_000, async () =>
            (await streamingMembers(leader.url)).includes(replica.name) ? true : undefined,
        );
        // Through the slot Patroni keeps for it, and from the same leader: a replica's restart moves no role.
        const [slot] = await query(leader.url, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", [
            stack.topology.members.find((m) => m.node === replica.name)?.slot,
        ]);
        expect(slot).toEqual({ active: true });
        expect((await waitForLeader(stack, 30_000)).name).toBe(leader.name);
    }, 120_000);

    it("encrypts every connection between members and from PgBouncer, and verifies the servers against the stack's CA", async () => {
        const { leader, replicas } = await rolesOf(stack);
        // Replication: each replica streams over TLS from the leader, dialled by its container name with verify-full.
        const replication = await query(
            leader.url,
            "SELECT r.application_name, host(r.client_addr) AS client, s.ssl, s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) ORDER BY 1",
        );
        expect(replication).toEqual(
            await Promise.all(
                replicas.map(async (r) => ({
                    application_name: r.name,
                    client: await addressOf(r.container),
                    ssl: true,
                    version: "TLSv1.3",
                })),
            ),
        );
        for (const replica of replicas) {
            const [{ conninfo }] = await query(replica.url, "SELECT conninfo FROM pg_stat_wal_receiver");
            expect(conninfoParameters(conninfo), replica.name).toMatchObject({
                host: leader.container,
                user: ROLES.replication,
                sslmode: "verify-full",
                sslrootcert: FILES.tlsCa,
            });
        }
        // PgBouncer checks each server's certificate and name against the CA, through the router beside it.
        const serverTls = await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) => {
            const config = new Map((await admin.query("SHOW CONFIG")).rows.map((r) => [r.key, r.value]));
            return { sslmode: config.get("server_tls_sslmode"), ca: config.get("server_tls_ca_file") };
        });
        expect(serverTls).toEqual({ sslmode: "verify-full", ca: FILES.tlsCa });
        // The client checks PgBouncer's certificate (issued for 127.0.0.1) against the CA from the outputs.
        const url = new URL(stack.outputs.databaseUrl);
        url.search = "";
        const client = new pg.Client({
            connectionString: url.toString(),
            ssl: { ca: stack.outputs.caCertificate, rejectUnauthorized: true },
        });
        await client.connect();
        try {
            // In transaction mode this is the server connection PgBouncer opened, with verify-full,
            // seen on the leader as coming from PgBouncer's container, where the router runs.
            const [row] = (
                await client.query(
                    "SELECT ssl, version, host(inet_client_addr()) AS client, host(inet_server_addr()) AS server FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                )
            ).rows;
            expect(row).toEqual({
                ssl: true,
                version: "TLSv1.3",
                client: await addressOf(stack.topology.pgbouncer.container),
                server: await addressOf(leader.container),
            });
        } finally {
            await client.end();
        }
        // Every server connection of the application role on the leader: PgBouncer's, all over TLS.
        const backends = await query(
            leader.url,
            "SELECT DISTINCT host(a.client_addr) AS client, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) " +
                "WHERE a.usename = $1 AND a.backend_type = 'client backend'",
            [APP_USER],
        );
        expect(backends).toEqual([{ client: await addressOf(stack.topology.pgbouncer.container), ssl: true }]);
        const sslmode = (u: string) => new URL(u).searchParams.get("sslmode");
        expect([stack.outputs.databaseUrl, stack.outputs.readonlyDatabaseUrl, stack.outputs.pgbouncerAdminUrl].map(sslmode)).toEqual([
            expected.clientTls,
            expected.clientTls,
            expected.clientTls,
        ]);
    });

    describe("the etcd cluster", () => {
        const members = Array.from({ length: ETCD_MEMBERS[stackName] }, (_, i) => i + 1);
        const container = (k: number) => `${stack.clusterName}-etcd-${k}`;
        const endpoints = () => members.map((k) => `https://${container(k)}:2379`).join(",");
        /** etcdctl in member `k`'s container, against `endpoint` (all members by default), with the member's certificate. */
        const etcdctl = (k: number, args: string[], endpoint = endpoints(), tls = ETCD_TLS) =>
            docker(
                "exec",
                container(k),
                "etcdctl",
                `--endpoints=${endpoint}`,
                "--dial-timeout=3s",
                "--command-timeout=5s",
                ...tls,
                ...args,
            );

        it(`forms one cluster of ${ETCD_MEMBERS[stackName]} member(s) with one leader, and a write through one member reads back on every other`, async () => {
            const status = JSON.parse(await etcdctl(1, ["endpoint", "status", "--write-out=json"]));
            expect(status.map((s: { Endpoint: string }) => s.Endpoint)).toEqual(members.map((k) => `https://${container(k)}:2379`));
            const leaders = new Set(status.map((s: { Status: { leader: string } }) => s.Status.leader));
            expect(leaders.size).toBe(1);
            const memberIds = status.map((s: { Status: { header: { member_id: string } } }) => s.Status.header.member_id);
            expect(memberIds).toContain([...leaders][0]);
            const names = JSON.parse(await etcdctl(1, ["member", "list", "--write-out=json"])).members.map((m: { name: string }) => m.name);
            expect(names.sort()).toEqual(members.map((k) => `etcd-${k}`));

            await etcdctl(1, ["put", "/obcms-test/written-through", "etcd-1"], `https://${container(1)}:2379`);
            for (const k of members) {
                // A linearizable read through member k: it goes through the leader and sees every committed write.
                const value = await etcdctl(
                    k,
                    ["get", "/obcms-test/written-through", "--print-value-only"],
                    `https://${container(k)}:2379`,
                );
                expect(value.trim(), `member ${k}`).toBe("etcd-1");
            }
        });

        it("refuses a client without a certificate, with a certificate from another CA, and in clear text", async () => {
            // The client only sees its deadline pass; the member's log says why it refused.
            const refusedFor = async (tls: string[], url: string, reason: string) => {
                const rejections = async () =>
                    (await containerLog(container(1)))
                        .split("\n")
                        .filter((line) => line.includes("rejected connection on client endpoint") && line.includes(reason)).length;
                const before = await rejections();
                await expect(etcdctl(1, ["get", "/obcms-test/written-through"], url, tls)).rejects.toThrow(/context deadline exceeded/);
                expect(await rejections(), reason).toBeGreaterThan(before);
            };
            const endpoint = `https://${container(1)}:2379`;
            await refusedFor(["--cacert=/etc/obcms/tls/ca.crt"], endpoint, "tls: client didn't provide a certificate");
            // A key and a self-signed certificate the stack's CA never saw, for the member's own name.
            await docker(
                "exec",
                container(1),
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                `/CN=${container(1)}`,
                "-keyout",
                "/tmp/foreign.key",
                "-out",
                "/tmp/foreign.crt",
            );
            await refusedFor(
                ["--cacert=/etc/obcms/tls/ca.crt", "--cert=/tmp/foreign.crt", "--key=/tmp/foreign.key"],
                endpoint,
                "x509: certificate signed by unknown authority",
            );
            await refusedFor([], `http://${container(1)}:2379`, "tls: first record does not look like a TLS handshake");
        }, 60_000);

        it.runIf(stackName === "production")(
            "keeps taking writes with one of three members stopped; the member catches up when it starts again",
            async () => {
                await docker("stop", container(3));
                try {
                    await etcdctl(1, ["put", "/obcms-test/while-3-was-down", "written"], `https://${container(1)}:2379`);
                    expect(
                        (
                            await etcdctl(2, ["get", "/obcms-test/while-3-was-down", "--print-value-only"], `https://${container(2)}:2379`)
                        ).trim(),
                    ).toBe("written");
                } finally {
                    await docker("start", container(3));
                }
                await waitFor("etcd-3 healthy again", 60_000, async () =>
                    (await docker("inspect", "--format", "{{.State.Health.Status}}", container(3))).trim() === "healthy" ? true : undefined,
                );
                // Serializable: member 3 answers from its own copy, so the value is there only if it replicated.
                const local = await etcdctl(
                    3,
                    ["get", "/obcms-test/while-3-was-down", "--print-value-only", "--consistency=s"],
                    `https://${container(3)}:2379`,
                );
                expect(local.trim()).toBe("written");
            },
            120_000,
        );
    });

    it(`${expected.clientTls === "require" ? "refuses" : "accepts"} clients without TLS, through PgBouncer and on every member`, async () => {
        const connectWithoutTls = async (u: string) => {
            const url = new URL(u);
            url.search = "";
            const client = new pg.Client({ connectionString: url.toString(), ssl: false });
            try {
                await client.connect();
            } finally {
                await client.end();
            }
        };
        const members = stack.topology.members.map((m) => stack.outputs.memberUrls[m.node]);
        // All attempts at once, settled together: none can reject while nothing awaits it.
        const [throughPgbouncer, ...direct] = await Promise.allSettled([
            connectWithoutTls(stack.outputs.databaseUrl),
            ...members.map(connectWithoutTls),
        ]);
        if (expected.clientTls === "require") {
            expect(throughPgbouncer).toMatchObject({ status: "rejected", reason: { message: "SSL required" } });
            expect(direct).toEqual(
                members.map(() =>
                    expect.objectContaining({
                        status: "rejected",
                        reason: expect.objectContaining({
                            code: "28000",
                            message: expect.stringMatching(
                                /^no pg_hba.conf entry for host ".*", user "postgres", database "obcms", no encryption$/,
                            ),
                        }),
                    }),
                ),
            );
        } else {
            expect([throughPgbouncer, ...direct]).toEqual([undefined, ...members].map(() => ({ status: "fulfilled", value: undefined })));
        }
    });

    it(`${expected.postgresPublished ? "publishes" : "does not publish"} the members' PostgreSQL ports on the host`, async () => {
        for (const member of stack.topology.members) {
            const published = JSON.parse(await docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", member.container));
            expect(Object.keys(published ?? {}), member.node).toEqual(expected.postgresPublished ? ["5432/tcp"] : []);
        }
        const pgbouncer = JSON.parse(
            await docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", stack.topology.pgbouncer.container),
        );
        expect(Object.keys(pgbouncer)).toEqual(["6432/tcp"]);
    });

    it.runIf(stackName === "production")(
        "scaling 3 → 1 replicas deletes the removed members' containers and volumes and restarts no remaining member; " +
            "the leader keeps their slots for member_slots_ttl, then drops them",
        async () => {
            const [kept, otherKept, ...removed] = stack.topology.members;
            const remaining = [kept, otherKept];
            const slotsOf = (members: readonly PostgresMember[]) => members.map((m) => m.slot);
            // A leader among the removed members would hand over as it stops: lead from a remaining one first.
            const current = await waitForLeader(stack, 60_000);
            if (!remaining.some((m) => m.node === current.name)) {
                await clusterScript(stack, "switchover", kept.node);
            }
            let leader = await waitForLeader(stack, 60_000);
            expect(remaining.map((m) => m.node)).toContain(leader.name);
            const before = await Promise.all(remaining.map((m) => startedAt(stack, m)));

            const steps = await stack.update({ replicaCount: 1 });
            const deleted = stepsOf(steps, "delete");
            for (const m of removed) {
                expect(deleted).toEqual(expect.arrayContaining([`${m.resourceName}-container`, `${m.resourceName}-data`]));
                await expect(docker("container", "inspect", m.container)).rejects.toThrow(/No such container/);
                await expect(docker("volume", "inspect", m.volume)).rejects.toThrow(/no such volume/);
            }
            // The members that stay are neither replaced nor restarted: same container, same postmaster.
            expect(steps.filter((s) => remaining.some((m) => s.name.startsWith(`${m.resourceName}-`)))).toEqual([]);
            expect(await Promise.all(remaining.map((m) => startedAt(stack, m)))).toEqual(before);
            // Their member keys leave etcd with them (at the latest when their TTL runs out).
            await waitFor("the removed members gone from the cluster", 60_000, async () => {
                const listed: Array<{ Member: string }> = JSON.parse(
                    await patronictl(kept.container, PATRONICTL_SECONDS, "list", "--format", "json"),
                );
                const names = listed.map((m) => m.Member).sort();
                return names.join() === remaining.map((m) => m.node).join() ? names : undefined;
            });
            leader = await waitForLeader(stack, 60_000);
            const follower = remaining.find((m) => m.node !== leader.name) as PostgresMember;

            // Patroni keeps an absent member's slot for member_slots_ttl (30 min unless set), so that a
            // member back within that time finds its WAL: inactive, their WAL bounded by max_slot_wal_keep_size.
            const slots = () =>
                query(
                    leader.url,
                    "SELECT slot_name, active, safe_wal_size IS NOT NULL AS bounded FROM pg_replication_slots ORDER BY slot_name",
                );
            expect(await slots()).toEqual([
                { slot_name: follower.slot, active: true, bounded: true },
                ...slotsOf(removed).map((slot_name) => ({ slot_name, active: false, bounded: true })),
            ]);
            const status = JSON.parse(
                await docker(
                    "exec",
                    stack.topology.etcd[0].container,
                    "etcdctl",
                    `--endpoints=https://${stack.topology.etcd[0].container}:2379`,
                    ...ETCD_TLS,
                    "get",
                    `/service/${stack.topology.scope}/status`,
                    "--print-value-only",
                ),
            );
            expect(status.retain_slots).toEqual(expect.arrayContaining(slotsOf(removed)));
            // Patroni's dynamic configuration, as the program applied it, leaves member_slots_ttl at its default.
            const config = parse(await patronictl(leader.container, PATRONICTL_SECONDS, "show-config"));
            expect(config.member_slots_ttl).toBeUndefined();

            // Writes go on to the remaining replica.
            await query(stack.outputs.databaseUrl, "INSERT INTO replication_test (message) VALUES ('after scale-down')");
            await waitFor(`${follower.node} to stream on`, 5_000, async () => {
                const rows = await query(
                    stack.outputs.memberUrls[follower.node],
                    "SELECT 1 FROM replication_test WHERE message = 'after scale-down'",
                );
                return rows.length === 1 ? true : undefined;
            });
            expect(await streamingMembers(leader.url)).toEqual([follower.node]);

            // With a short member_slots_ttl (30 min cannot be waited for here) Patroni drops them, on the
            // leader and on the replica that keeps copies: nothing else holds a removed member's slot.
            await patronictl(leader.container, PATRONICTL_SECONDS, "edit-config", "--set", "member_slots_ttl=5", "--force");
            await waitFor("the removed members' slots dropped on every remaining member", 60_000, async () => {
                const left = await Promise.all(
                    remaining.map((m) =>
                        query(stack.outputs.memberUrls[m.node], "SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY($1)", [
                            slotsOf(removed),
                        ]),
                    ),
                );
                return left.flat().length === 0 ? true : undefined;
            });
            expect(await slots()).toEqual([{ slot_name: follower.slot, active: true, bounded: true }]);
        },
        300_000,
    );

    // The catalog validates postgresParameters and places each by its context: a new image must not drift from it.
    it.runIf(stackName === "staging")("runs PostgreSQL with exactly the parameter catalog the program validates against", async () => {
        const sql =
            "SELECT json_object_agg(name, json_strip_nulls(json_build_object('context', context, 'type', vartype, 'unit', unit, " +
            "'min', min_val::float8, 'max', max_val::float8, 'values', enumvals)) ORDER BY name) AS catalog FROM pg_catalog.pg_settings";
        const [{ catalog }] = await query(stack.outputs.memberUrls[stack.topology.primary.node], sql);
        expect(catalog).toEqual(POSTGRES_CATALOG);
    });

    it.runIf(stackName === "staging")(
        "an operator's own parameters (postgresParameters): every member runs them with nothing restarted; removed, PostgreSQL's defaults again",
        async () => {
            const before = await Promise.all(stack.topology.members.map((m) => startedAt(stack, m)));
            const shown = async () =>
                Promise.all(
                    stack.topology.members.map(async (m) => {
                        const [row] = await query(
                            stack.outputs.memberUrls[m.node],
                            "SELECT current_setting('log_min_duration_statement') AS slow, current_setting('idle_in_transaction_session_timeout') AS idle",
                        );
                        return row;
                    }),
                );
            const inEtcd = async () => {
                const config = parse(await patronictl(stack.topology.primary.container, PATRONICTL_SECONDS, "show-config"));
                return Object.keys(config.postgresql.parameters).filter((name) => /^(log_min_duration|idle_in_transaction)/.test(name));
            };

            const steps = await stack.update({
                postgresParameters: { log_min_duration_statement: "250ms", idle_in_transaction_session_timeout: "1min" },
            });
            expect(stepsOf(steps, "replace")).toEqual([]);
            expect(stepsOf(steps, "update")).toContain("cluster-config-dynamic-config");
            expect(await shown()).toEqual(stack.topology.members.map(() => ({ slow: "250ms", idle: "1min" })));
            expect(await inEtcd()).toEqual(["idle_in_transaction_session_timeout", "log_min_duration_statement"]);

            // A merge alone would keep them in etcd: the dynamic-configuration command deletes what it no longer declares.
            const removed = await stack.update({});
            expect(stepsOf(removed, "replace")).toEqual([]);
            expect(await shown()).toEqual(stack.topology.members.map(() => ({ slow: "-1", idle: "0" })));
            expect(await inEtcd()).toEqual([]);
            expect(await Promise.all(stack.topology.members.map((m) => startedAt(stack, m)))).toEqual(before);
        },
        300_000,
    );

    // Patroni loads a change of its dynamic configuration at its next cycle, seconds
    // later, and marks a pending restart only then: the update must wait for both.
    it.runIf(stackName === "staging")(
        "a cluster-wide parameter raised, then lowered: when `pulumi up` returns, every member runs it, and none waits for a restart",
        async () => {
            const running = async (member: PostgresMember) => {
                const [row] = await query(
                    stack.outputs.memberUrls[member.node],
                    "SELECT current_setting('max_connections') AS max_connections, bool_or(pending_restart) AS pending FROM pg_settings",
                );
                const patroni = await patroniStatus(member.container);
                return { ...row, patroniPending: patroni.pending_restart ?? false };
            };
            for (const maxConnections of [150, 100]) {
                const started = Date.now();
                const steps = await stack.update(maxConnections === 100 ? {} : { maxConnections });
                const seconds = (Date.now() - started) / 1000;
                expect(stepsOf(steps, "update")).toContain("cluster-config-dynamic-config");
                const states = await Promise.all(stack.topology.members.map(running));
                console.log(
                    `max_connections → ${maxConnections}: pulumi up returned after ${seconds.toFixed(1)} s; members: ${JSON.stringify(states)}`,
                );
                expect(states).toEqual(
                    stack.topology.members.map(() => ({ max_connections: String(maxConnections), pending: false, patroniPending: false })),
                );
            }
            await waitForHealthyCluster(stack, 120_000);
        },
        600_000,
    );
});
