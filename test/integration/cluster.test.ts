// The runbook's verification, automated, against each stack brought up for
// real on the local Docker engine from the program itself (startStack).

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresSizing } from "../../components/sizing";
import { whileRunning } from "../../harness/background";
import { type StartedStack, startStack } from "../../harness/cluster";
import { clientConfig, containerLog, docker, query, waitFor, withClient } from "../../harness/sql";
import { production, staging } from "../render/fixtures";

const SETTINGS = { staging, production } as const;
const EXPECTED = {
    staging: { replicas: 1, poolSize: 25, maxClientConn: 1000, clientTls: "prefer", postgresPublished: true },
    production: { replicas: 3, poolSize: 50, maxClientConn: 2000, clientTls: "require", postgresPublished: false },
} as const;
const ETCD_MEMBERS = { staging: 1, production: 3 } as const;
/** The stack's TLS files inside every container: etcdctl presents the member's own certificate. */
const ETCD_TLS = ["--cacert=/etc/obcms/tls/ca.crt", "--cert=/etc/obcms/tls/server.crt", "--key=/etc/obcms/tls/server.key"];
/** No Grafana image can be pulled here; its provisioning is tested without it. */
const NO_GRAFANA = { grafanaEnabled: false };
const RESERVE_POOL_SIZE = 5;
const APP_USER = "obcms_app";
/** Advisory lock key the pool test holds its clients' transactions on. */
const POOL_GATE_LOCK = 741_776;

/** Passwords in the stack outputs, which must never show up outside files meant for them. */
function passwordsOf(stack: StartedStack): string[] {
    const o = stack.outputs;
    const urls = [o.databaseUrl, o.pgbouncerAdminUrl, o.primaryUrl, ...o.replicaUrls];
    return [...new Set(urls.map((u) => decodeURIComponent(new URL(u).password)))];
}

function replicaNames(count: number): string[] {
    return Array.from({ length: count }, (_, i) => `replica_${i + 1}`);
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

async function streamingReplicas(primaryUrl: string): Promise<string[]> {
    const rows = await query(
        primaryUrl,
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY application_name",
    );
    return rows.map((r) => r.application_name);
}

describe.each(["staging", "production"] as const)("%s stack on a real Docker engine", (stackName) => {
    const expected = EXPECTED[stackName];
    let stack: StartedStack;

    beforeAll(async () => {
        const started = Date.now();
        stack = await startStack(stackName, { overrides: NO_GRAFANA });
        const created = Date.now();
        await waitFor("every replica streaming", 120_000, async () => {
            const streaming = await streamingReplicas(stack.outputs.primaryUrl);
            return streaming.length === expected.replicas ? streaming : undefined;
        });
        console.log(
            `${stackName}: resources created in ${((created - started) / 1000).toFixed(1)} s, ` +
                `all ${expected.replicas} replicas streaming after ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
    }, 600_000);

    afterAll(async () => {
        await stack?.stop();
    }, 120_000);

    it("exposes the configured topology in its outputs", () => {
        expect(stack.outputs.replicaCount).toBe(expected.replicas);
        expect(stack.outputs.poolSize).toBe(expected.poolSize);
        expect(stack.outputs.replicaUrls).toHaveLength(expected.replicas);
    });

    it("does nothing when the unchanged program runs again: what the engine reports back matches what it declares", async () => {
        const ids = await docker("ps", "-q", "--no-trunc", "--filter", `name=^${stack.clusterName}-`);
        expect(await stack.update({})).toEqual([]);
        expect(await docker("ps", "-q", "--no-trunc", "--filter", `name=^${stack.clusterName}-`)).toBe(ids);
    });

    it("answers a SELECT through PgBouncer as the application role", async () => {
        const rows = await query(stack.outputs.databaseUrl, "SELECT 'PgBouncer working!' AS status, current_user, current_database()");
        expect(rows).toEqual([{ status: "PgBouncer working!", current_user: APP_USER, current_database: "obcms" }]);
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

    it("runs every replica as a hot standby streaming through its own active slot", async () => {
        const names = replicaNames(expected.replicas);
        expect(await streamingReplicas(stack.outputs.primaryUrl)).toEqual(names);
        const slots = await query(
            stack.outputs.primaryUrl,
            "SELECT slot_name, slot_type, active FROM pg_replication_slots ORDER BY slot_name",
        );
        expect(slots).toEqual(names.map((n) => ({ slot_name: `${n}_slot`, slot_type: "physical", active: true })));
        for (const [i, url] of stack.outputs.replicaUrls.entries()) {
            const [row] = await query(
                url,
                "SELECT pg_is_in_recovery() AS in_recovery, current_setting('cluster_name') AS node, " +
                    "(SELECT status FROM pg_stat_wal_receiver) AS receiver, " +
                    "(SELECT slot_name FROM pg_stat_wal_receiver) AS slot",
            );
            expect(row).toEqual({ in_recovery: true, node: names[i], receiver: "streaming", slot: `${names[i]}_slot` });
        }
    });

    it("runs every member with the parameters sized from its limits, and Docker enforces those limits", async () => {
        const s = SETTINGS[stackName];
        const z = postgresSizing(s.postgresResources, s.maxConnections);
        const mib = 1024 * 1024;
        const members = [
            [`${stack.clusterName}-primary`, stack.outputs.primaryUrl],
            ...stack.outputs.replicaUrls.map((url, i) => [`${stack.clusterName}-replica-${i + 1}`, url]),
        ];
        for (const [container, url] of members) {
            const [row] = await query(
                url,
                "SELECT pg_size_bytes(current_setting('shared_buffers')) AS shared_buffers, " +
                    "pg_size_bytes(current_setting('work_mem')) AS work_mem, " +
                    "pg_size_bytes(current_setting('effective_cache_size')) AS effective_cache_size, " +
                    "pg_size_bytes(current_setting('maintenance_work_mem')) AS maintenance_work_mem, " +
                    "current_setting('max_worker_processes')::int AS max_worker_processes",
            );
            expect(row, container).toEqual({
                shared_buffers: String(z.sharedBuffersKb * 1024),
                work_mem: String(z.workMemKb * 1024),
                effective_cache_size: String(z.effectiveCacheSizeKb * 1024),
                maintenance_work_mem: String(z.maintenanceWorkMemKb * 1024),
                max_worker_processes: z.maxWorkerProcesses,
            });
            const [inspect] = JSON.parse(await docker("inspect", container));
            const { Memory, MemorySwap, NanoCpus, ShmSize } = inspect.HostConfig;
            expect({ Memory, MemorySwap, NanoCpus, ShmSize }, container).toEqual({
                Memory: s.postgresResources.memoryMb * mib,
                MemorySwap: s.postgresResources.memoryMb * mib,
                NanoCpus: s.postgresResources.cpus * 1e9,
                ShmSize: s.postgresResources.memoryMb * mib,
            });
        }
    });

    it("shows a row written on the primary on every replica within 2 s", async () => {
        await query(
            stack.outputs.databaseUrl,
            "CREATE TABLE IF NOT EXISTS replication_test (id serial PRIMARY KEY, message text, created_at timestamptz DEFAULT now())",
        );
        const message = `from primary ${Date.now()}`;
        await query(stack.outputs.primaryUrl, "INSERT INTO replication_test (message) VALUES ($1)", [message]);
        const written = Date.now();
        const delays = await Promise.all(
            stack.outputs.replicaUrls.map((url) =>
                waitFor("the row on a replica", 2_000, async () => {
                    const rows = await query(url, "SELECT message FROM replication_test WHERE message = $1", [message]);
                    return rows.length === 1 ? Date.now() - written : undefined;
                }),
            ),
        );
        console.log(`${stackName}: row visible on replicas after ${delays.join(", ")} ms`);
        expect(delays.every((ms) => ms < 2_000)).toBe(true);
    });

    it("serves 100 concurrent clients through PgBouncer within pool size + reserve server connections", async () => {
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS load_test (client int, n int)");
        const limit = expected.poolSize + RESERVE_POOL_SIZE;
        const clients = 100;
        const transactionsEach = 5;
        const reserveTimeout = await withClient(stack.outputs.pgbouncerAdminUrl, async (admin) =>
            Number((await admin.query("SHOW CONFIG")).rows.find((r) => r.key === "reserve_pool_timeout")?.value),
        );
        expect(reserveTimeout, "reserve_pool_timeout").toBeGreaterThan(0);

        /** Server connections PgBouncer has for the read-write database, and the application role's backends on the primary. */
        const serverCounts = async (admin: pg.Client, primary: pg.Client) => {
            const servers = (await admin.query("SHOW SERVERS")).rows.filter((s) => s.database === "obcms").length;
            const [pool] = (await admin.query("SHOW POOLS")).rows.filter((p) => p.database === "obcms" && p.user === APP_USER);
            const [{ backends }] = (
                await primary.query(
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
                withClient(stack.outputs.primaryUrl, async (primary) => {
                    while (sampling()) {
                        const { servers, backends } = await serverCounts(admin, primary);
                        peakServers = Math.max(peakServers, servers);
                        peakBackends = Math.max(peakBackends, backends);
                        await new Promise((resolve) => setTimeout(resolve, 50));
                    }
                }),
            );

        // Each client's first transaction waits on a lock this test holds, so
        // it keeps its server connection for as long as the test needs: every
        // client wants one at once, however slowly the clients connect.
        const gate = new pg.Client(clientConfig(stack.outputs.primaryUrl));
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
                        withClient(stack.outputs.primaryUrl, (primary) =>
                            waitFor(
                                `${limit} server connections, steady, with ${clients - limit} clients waiting`,
                                60_000 + reserveTimeout * 1000,
                                async () => {
                                    const counts = await serverCounts(admin, primary);
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

    it("spreads obcms_readonly over the replicas and refuses writes there", async () => {
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS readonly_test (id int)");
        await waitFor("the table on every replica", 5_000, async () => {
            const present = await Promise.all(
                stack.outputs.replicaUrls.map(async (url) => (await query(url, "SELECT to_regclass('readonly_test') AS t"))[0].t),
            );
            return present.every((t) => t !== null) ? true : undefined;
        });
        // Every client keeps its transaction, and so its server connection, open
        // until all are in one: PgBouncer opens one per client, round-robin over
        // the replicas' addresses, whatever the timing of the logins.
        const clients = 4 * expected.replicas;
        const allInTransaction = meetingPoint(clients, 30_000);
        const nodes = await Promise.all(
            Array.from({ length: clients }, () =>
                withClient(stack.outputs.readonlyDatabaseUrl, async (c) => {
                    await c.query("BEGIN");
                    const [row] = (await c.query("SELECT current_setting('cluster_name') AS node, pg_is_in_recovery() AS ro")).rows;
                    await allInTransaction();
                    await c.query("COMMIT");
                    return row;
                }),
            ),
        );
        expect(nodes.every((n) => n.ro === true)).toBe(true);
        expect([...new Set(nodes.map((n) => n.node))].sort()).toEqual(replicaNames(expected.replicas));

        await expect(query(stack.outputs.readonlyDatabaseUrl, "INSERT INTO readonly_test VALUES (1)")).rejects.toMatchObject({
            code: "25006",
            message: "cannot execute INSERT in a read-only transaction",
        });
    });

    it("creates the roles, database, time zone and extension the stack declares, with least privilege", async () => {
        const url = stack.outputs.primaryUrl;
        const roles = await query(
            url,
            `SELECT rolname, rolsuper, rolreplication, rolcreatedb, rolcreaterole, rolcanlogin,
                    left(rolpassword, 14) AS verifier,
                    ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = a.oid ORDER BY 1) AS member_of
             FROM pg_authid a WHERE rolname IN ('obcms_app', 'replicator', 'monitoring', 'postgres') ORDER BY rolname`,
        );
        const role = (rolname: string, extra: Partial<Record<string, unknown>>) => ({
            rolname,
            rolsuper: false,
            rolreplication: false,
            rolcreatedb: false,
            rolcreaterole: false,
            rolcanlogin: true,
            verifier: "SCRAM-SHA-256$",
            member_of: [],
            ...extra,
        });
        expect(roles).toEqual([
            role("monitoring", { member_of: ["pg_monitor"] }),
            role("obcms_app", {}),
            role("postgres", { rolsuper: true, rolreplication: true, rolcreatedb: true, rolcreaterole: true }),
            role("replicator", { rolreplication: true }),
        ]);
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

    it("writes pgaudit's record of DDL and role changes to the primary's log, passwords redacted", async () => {
        const marker = `audit_probe_${Date.now()}`;
        await query(stack.outputs.primaryUrl, `CREATE TABLE ${marker} (id int)`);
        await query(stack.outputs.primaryUrl, `ALTER ROLE monitoring SET application_name = '${marker}'`);
        await query(stack.outputs.primaryUrl, `ALTER ROLE monitoring RESET application_name`);
        await query(stack.outputs.primaryUrl, `SELECT count(*) FROM ${marker}`);
        await query(stack.outputs.primaryUrl, `DROP TABLE ${marker}`);
        const audit = await waitFor("the audit records", 10_000, async () => {
            const log = await containerLog(`${stack.clusterName}-primary`);
            const lines = log.split("\n").filter((line) => line.includes("AUDIT: SESSION") && line.includes(marker));
            return lines.length === 3 ? lines : undefined;
        });
        // Fields: class, command, object type, object name, statement; the SELECT (class READ) is not logged.
        expect(audit.map((line) => line.split(",").slice(3, 5).join(","))).toEqual([
            "DDL,CREATE TABLE",
            "ROLE,ALTER ROLE",
            "DDL,DROP TABLE",
        ]);
        // The bootstrap SQL sets every role's password at start: audited, each password redacted.
        const passwordChanges = (await containerLog(`${stack.clusterName}-primary`))
            .split("\n")
            .filter((line) => line.includes("AUDIT: SESSION") && line.includes(" PASSWORD "));
        // The statement is a CSV field: quoted, with its own quotes doubled, when it has any.
        const rolesChanged = passwordChanges.map(
            (line) => line.match(/,ROLE,ALTER ROLE,,,"?ALTER ROLE (?:"")?([a-z_]+)(?:"")? WITH .*PASSWORD <REDACTED>"?,<not logged>$/)?.[1],
        );
        expect(rolesChanged.sort()).toEqual(["monitoring", APP_USER, "postgres", "replicator"].sort());
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

    it("keeps the monitoring role read-only and pg_hba.conf free of trust", async () => {
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS monitoring_probe (id int)");
        await withClient(stack.outputs.primaryUrl, async (c) => {
            await c.query("SET ROLE monitoring");
            const stats = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity");
            expect(stats.rows[0].n).toBeGreaterThan(0);
            await expect(c.query("INSERT INTO monitoring_probe VALUES (1)")).rejects.toMatchObject({ code: "42501" });
            await expect(c.query("CREATE TABLE monitoring_owned (id int)")).rejects.toMatchObject({ code: "42501" });
        });
        for (const node of ["primary", ...Array.from({ length: expected.replicas }, (_, i) => `replica-${i + 1}`)]) {
            const hba = await docker("exec", `${stack.clusterName}-${node}`, "cat", "/etc/obcms/pg_hba.conf");
            expect(hba, node).not.toMatch(/\btrust\b/);
            expect(
                hba.split("\n").filter((line) => line.startsWith("local")),
                node,
            ).toEqual(["local all all peer"]);
        }
    });

    it("refuses a replication connection from any role but the replication role", async () => {
        const primary = new URL(stack.outputs.primaryUrl);
        const client = new pg.Client({
            host: primary.hostname,
            port: Number(primary.port),
            user: "postgres",
            password: decodeURIComponent(primary.password),
            database: "postgres",
            replication: "true",
        } as pg.ClientConfig);
        await expect(client.connect()).rejects.toMatchObject({
            code: "28000",
            message: expect.stringMatching(/^pg_hba.conf rejects replication connection for host ".*", user "postgres"/),
        });
        await client.end().catch(() => undefined);
    });

    it("keeps passwords and keys out of Docker's view: no container's environment, command or log holds one; userlist and keys 0600", async () => {
        const containers = (await docker("ps", "-a", "--filter", `name=^${stack.clusterName}-`, "--format", "{{.Names}}"))
            .trim()
            .split("\n")
            .sort();
        const databaseContainers = [
            "backup",
            "pgbouncer",
            "primary",
            ...Array.from({ length: expected.replicas }, (_, i) => `replica-${i + 1}`),
        ];
        expect(containers).toEqual(expect.arrayContaining(databaseContainers.map((n) => `${stack.clusterName}-${n}`)));
        const passwords = passwordsOf(stack);
        expect(passwords).toHaveLength(3);
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
            const logs = await containerLog(name);
            for (const secret of [...passwords, stack.outputs.backupPassphrase, "PRIVATE KEY"]) {
                expect(visible, name).not.toContain(secret);
                expect(logs, name).not.toContain(secret);
            }
            // The audit log records every ALTER ROLE, the bootstrap's included, with the verifier redacted.
            expect(logs, name).not.toContain("SCRAM-SHA-256$");
        }
        const pgbouncer = `${stack.clusterName}-pgbouncer`;
        expect((await docker("exec", pgbouncer, "stat", "-c", "%a %U", "/etc/obcms/userlist.txt")).trim()).toBe("600 postgres");
        for (const name of databaseContainers.map((n) => `${stack.clusterName}-${n}`)) {
            expect((await docker("exec", name, "stat", "-c", "%a %U", "/etc/obcms/tls/server.key")).trim(), name).toBe("600 postgres");
        }
        const userlist = await docker("exec", pgbouncer, "cat", "/etc/obcms/userlist.txt");
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
        const replica = `${stack.clusterName}-replica-1`;
        await docker("restart", replica);
        await query(stack.outputs.databaseUrl, "CREATE TABLE IF NOT EXISTS rejoin_test (id int)");
        await query(stack.outputs.databaseUrl, "INSERT INTO rejoin_test SELECT generate_series(1, 1000)");
        const rows = await waitFor("replica 1 to catch up after its restart", 60_000, async () => {
            const [row] = await query(stack.outputs.replicaUrls[0], "SELECT count(*)::int AS n FROM rejoin_test");
            return row.n === 1000 ? row.n : undefined;
        });
        expect(rows).toBe(1000);
        await waitFor("replica 1 streaming again", 30_000, async () =>
            (await streamingReplicas(stack.outputs.primaryUrl)).includes("replica_1") ? true : undefined,
        );
    }, 120_000);

    it("encrypts every connection between nodes and verifies the servers against the stack's CA", async () => {
        const replication = await query(
            stack.outputs.primaryUrl,
            "SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) ORDER BY 1",
        );
        expect(replication).toEqual(replicaNames(expected.replicas).map((application_name) => ({ application_name, ssl: true })));
        // The client checks PgBouncer's certificate (issued for 127.0.0.1) against the CA from the outputs.
        const url = new URL(stack.outputs.databaseUrl);
        url.search = "";
        const client = new pg.Client({
            connectionString: url.toString(),
            ssl: { ca: stack.outputs.caCertificate, rejectUnauthorized: true },
        });
        await client.connect();
        try {
            // In transaction mode this is the server connection PgBouncer opened, with verify-full.
            const [row] = (await client.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows;
            expect(row).toEqual({ ssl: true, version: "TLSv1.3" });
        } finally {
            await client.end();
        }
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

    it(`${expected.clientTls === "require" ? "refuses" : "accepts"} clients without TLS`, async () => {
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
        // Both attempts at once, settled together: neither can reject while nothing awaits it.
        const [throughPgbouncer, direct] = await Promise.allSettled([
            connectWithoutTls(stack.outputs.databaseUrl),
            connectWithoutTls(stack.outputs.primaryUrl),
        ]);
        if (expected.clientTls === "require") {
            expect(throughPgbouncer).toMatchObject({ status: "rejected", reason: { message: "SSL required" } });
            expect(direct).toMatchObject({
                status: "rejected",
                reason: {
                    code: "28000",
                    message: expect.stringMatching(
                        /^no pg_hba.conf entry for host ".*", user "postgres", database "obcms", no encryption$/,
                    ),
                },
            });
        } else {
            expect([throughPgbouncer, direct]).toEqual([
                { status: "fulfilled", value: undefined },
                { status: "fulfilled", value: undefined },
            ]);
        }
    });

    it(`${expected.postgresPublished ? "publishes" : "does not publish"} PostgreSQL's ports on the host`, async () => {
        const published = JSON.parse(
            await docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", `${stack.clusterName}-primary`),
        );
        expect(Object.keys(published ?? {})).toEqual(expected.postgresPublished ? ["5432/tcp"] : []);
        const pgbouncer = JSON.parse(
            await docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", `${stack.clusterName}-pgbouncer`),
        );
        expect(Object.keys(pgbouncer)).toEqual(["6432/tcp"]);
    });

    it.runIf(stackName === "production")(
        "drops the slots of removed replicas when scaling 3 → 1",
        async () => {
            const removed = [3, 2].flatMap((k) => [`replica-${k}-container`, `replica-${k}-slot`, `replica-${k}-data`]);
            await stack.destroy(removed);
            const slots = await query(stack.outputs.primaryUrl, "SELECT slot_name FROM pg_replication_slots ORDER BY slot_name");
            expect(slots).toEqual([{ slot_name: "replica_1_slot" }]);
            await query(stack.outputs.databaseUrl, "INSERT INTO replication_test (message) VALUES ('after scale-down')");
            await waitFor("replica 1 to stream on", 5_000, async () => {
                const rows = await query(stack.outputs.replicaUrls[0], "SELECT 1 FROM replication_test WHERE message = 'after scale-down'");
                return rows.length === 1 ? true : undefined;
            });
            expect(await streamingReplicas(stack.outputs.primaryUrl)).toEqual(["replica_1"]);
        },
        180_000,
    );
});
