// Bad stack config fails before any resource exists, with a message that
// names the key and what is allowed.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { readSettings } from "../../components/config";
import type { ClusterSettings } from "../../components/settings";
import { RecordingMocks } from "../../harness/mocks";
import { runProgram } from "../../harness/program";
import { loadStackConfig, projectName, type StackName } from "../../harness/stack-config";
import { exactly, production, staging } from "../render/fixtures";

async function settingsFor(stack: StackName, overrides: Record<string, unknown>, secretKeys: string[] = []) {
    const project = projectName();
    pulumi.runtime.setAllConfig(
        loadStackConfig(stack, overrides),
        secretKeys.map((key) => `${project}:${key}`),
    );
    await pulumi.runtime.setMocks(new RecordingMocks(), project, stack, false);
    return readSettings();
}

describe("readSettings", () => {
    it("reads the staging and production stack files on top of Pulumi.yaml's defaults", async () => {
        expect(await settingsFor("staging", {})).toEqual(staging);
        expect(await settingsFor("production", {})).toEqual(production);
    });

    const rejected: Array<[string, StackName, Record<string, unknown>, string]> = [
        ["a replica count above 10", "staging", { replicaCount: 11 }, "replicaCount must be an integer from 1 to 10, got 11"],
        ["a replica count of 0", "staging", { replicaCount: 0 }, "replicaCount must be an integer from 1 to 10, got 0"],
        ["a fractional replica count", "staging", { replicaCount: 1.5 }, "replicaCount must be an integer from 1 to 10, got 1.5"],
        [
            "a non-numeric replica count",
            "staging",
            { replicaCount: "three" },
            "Configuration 'obcms-database:replicaCount' value 'three' is not a valid number",
        ],
        ...([4, 0, 9, 2.5] as const).map((n): [string, StackName, Record<string, unknown>, string] => [
            `${n} etcd members`,
            "production",
            { etcdMembers: n },
            `etcdMembers must be an odd number from 1 to 7 (n members stay available with (n - 1) / 2 of them down), got ${n}`,
        ]),
        [
            "more synchronous replicas than replicas",
            "staging",
            { synchronousReplicas: 2 },
            "synchronousReplicas (2) must not exceed replicaCount (1): a commit cannot wait for replicas the cluster does not have",
        ],
        [
            "production scaled below its synchronous replicas",
            "production",
            { replicaCount: 2, synchronousReplicas: 3 },
            "synchronousReplicas (3) must not exceed replicaCount (2): a commit cannot wait for replicas the cluster does not have",
        ],
        [
            "negative synchronous replicas",
            "production",
            { synchronousReplicas: -1 },
            "synchronousReplicas must be an integer from 0 to 10, got -1",
        ],
        [
            "fractional synchronous replicas",
            "production",
            { synchronousReplicas: 0.5 },
            "synchronousReplicas must be an integer from 0 to 10, got 0.5",
        ],
        [
            "a negative replica delay",
            "staging",
            { delayedReplicaMinutes: -5 },
            "delayedReplicaMinutes must be a number of minutes from 0 (no delayed replica) to 10080 (a week), got -5",
        ],
        [
            "a replica delay past a week",
            "production",
            { delayedReplicaMinutes: 10081 },
            "delayedReplicaMinutes must be a number of minutes from 0 (no delayed replica) to 10080 (a week), got 10081",
        ],
        [
            "a delayed replica beside the most replicas allowed",
            "production",
            { replicaCount: 10, delayedReplicaMinutes: 60 },
            "delayedReplicaMinutes adds a replica, and replicaCount (10) plus it exceeds 10, the replicas every member's WAL senders and slots are sized for; lower replicaCount or set delayedReplicaMinutes to 0",
        ],
        [
            "a delayed replica published on a port already taken",
            "production",
            { publishPostgresPorts: true, delayedReplicaMinutes: 60, pgbouncerPort: 5453 },
            "replicaBasePort (delayed replica, + 10) uses port 5453, which pgbouncerPort already uses; every published port must differ",
        ],
        [
            "a delay set for every replica",
            "staging",
            { postgresParameters: { recovery_min_apply_delay: "1h" } },
            "postgresParameters.recovery_min_apply_delay may not be set here: it follows delayedReplicaMinutes: set that key instead",
        ],
        [
            "a failover ttl below Patroni's minimum",
            "staging",
            { failoverTtl: 19 },
            "failoverTtl must be a number of seconds from 20 (Patroni's minimum) to 3600, got 19",
        ],
        [
            "a failover ttl above an hour",
            "staging",
            { failoverTtl: 3601 },
            "failoverTtl must be a number of seconds from 20 (Patroni's minimum) to 3600, got 3601",
        ],
        ["a loop wait of 0", "staging", { failoverLoopWait: 0 }, "failoverLoopWait must be a number of seconds from 1 to 3600, got 0"],
        // Patroni would raise it to 3 without a word, and perhaps shorten loop_wait to fit the ttl.
        [
            "a retry timeout below Patroni's minimum",
            "staging",
            { failoverRetryTimeout: 2 },
            "failoverRetryTimeout must be a number of seconds from 3 (Patroni's minimum) to 3600, got 2",
        ],
        [
            "a loop and two retries longer than the ttl",
            "production",
            { failoverLoopWait: 11 },
            "failoverLoopWait (11) + 2 × failoverRetryTimeout (5) must not exceed failoverTtl (20): a leader cut off from etcd must be able to step down before its key expires",
        ],
        [
            "a longer retry timeout without a longer ttl",
            "staging",
            { failoverTtl: 30, failoverRetryTimeout: 13 },
            "failoverLoopWait (5) + 2 × failoverRetryTimeout (13) must not exceed failoverTtl (30): a leader cut off from etcd must be able to step down before its key expires",
        ],
        [
            "a negative failover lag bound",
            "staging",
            { maximumLagOnFailoverMb: -1 },
            "maximumLagOnFailoverMb must be a size in MB from 0 to 1048576, got -1",
        ],
        [
            "a failover lag bound above 1 TB",
            "staging",
            { maximumLagOnFailoverMb: 1_048_577 },
            "maximumLagOnFailoverMb must be a size in MB from 0 to 1048576, got 1048577",
        ],
        ["a pool size of 0", "staging", { defaultPoolSize: 0 }, "defaultPoolSize must be an integer from 1 to 2016, got 0"],
        ["a negative pool size", "staging", { defaultPoolSize: -5 }, "defaultPoolSize must be an integer from 1 to 2016, got -5"],
        [
            "pool, reserve, replication and monitoring connections above max_connections",
            "production",
            { maxConnections: 70 },
            "maxConnections (70) is below the 71 connections the cluster needs: defaultPoolSize 50 + reservePoolSize 5 + replication 8 + monitoring 5 + superuser reserved 3; raise maxConnections or lower the pool",
        ],
        [
            "a member memory that cannot hold its connections' work_mem beside shared_buffers and maintenance",
            "staging",
            { postgresMemoryMb: 256, maxConnections: 10_000 },
            "postgresMemoryMb (256) cannot hold what maxConnections (10000) may use: 10002 backends × work_mem 64kB + " +
                "shared_buffers 64MB + 4 × maintenance_work_mem 16MB = 754MB; raise postgresMemoryMb or lower maxConnections",
        ],
        ["fractional CPUs", "staging", { postgresCpus: 1.5 }, "postgresCpus must be a whole number of CPUs from 1 to 256, got 1.5"],
        [
            "a pool and reserve above what the router admits for both databases",
            "production",
            { defaultPoolSize: 2000, reservePoolSize: 17, maxConnections: 10_000, maxClientConn: 5000 },
            "defaultPoolSize + reservePoolSize (2000 + 17 = 2017) must be at most 2016: the router beside PgBouncer admits 4096 connections, both databases' pools and 64 for operators' tools",
        ],
        [
            "a client limit above what PgBouncer's fixed open-files limit holds",
            "production",
            { maxClientConn: 12_097 },
            "maxClientConn must be an integer from 1 to 12096, got 12097",
        ],
        [
            "a client limit below the pool and its reserve",
            "staging",
            { maxClientConn: 28 },
            "maxClientConn (28) must be at least defaultPoolSize + reservePoolSize (25 + 5 = 30)",
        ],
        [
            "unknown auth method",
            "staging",
            { authMethod: "trust" },
            `Configuration 'obcms-database:authMethod' value 'trust' is not a legal enum value (["scram-sha-256","md5"])`,
        ],
        [
            "unknown pool mode",
            "staging",
            { poolMode: "bogus" },
            `Configuration 'obcms-database:poolMode' value 'bogus' is not a legal enum value (["session","transaction","statement"])`,
        ],
        ["port out of range", "staging", { pgbouncerPort: 70000 }, "pgbouncerPort must be a port from 1 to 65535, got 70000"],
        [
            "port used twice",
            "staging",
            { primaryPort: 6432 },
            "primaryPort uses port 6432, which pgbouncerPort already uses; every published port must differ",
        ],
        [
            "replica ports running into the primary's",
            "production",
            { publishPostgresPorts: true, replicaBasePort: 5441 },
            "replicaBasePort (replica 2) uses port 5442, which primaryPort already uses; every published port must differ",
        ],
        [
            "database name that is not an identifier",
            "staging",
            { database: "obcms'; DROP DATABASE x; --" },
            `database must be a lower-case identifier (letters, digits, _; at most 63 characters, not starting with a digit), got "obcms'; DROP DATABASE x; --"`,
        ],
        [
            "app role that is not an identifier",
            "staging",
            { appUser: "Obcms-App" },
            `appUser must be a lower-case identifier (letters, digits, _; at most 63 characters, not starting with a digit), got "Obcms-App"`,
        ],
        [
            "app role named like a program role",
            "staging",
            { appUser: "replicator" },
            `appUser must not be one of the program's roles (postgres, replicator, monitoring, pgbouncer, rewinder, restore_drill), got "replicator"`,
        ],
        [
            "database the program reserves",
            "staging",
            { database: "pgbouncer" },
            `database must not be postgres, template0, template1, pgbouncer and must leave room for the "_readonly" suffix, got "pgbouncer"`,
        ],
        [
            "an unknown time zone",
            "staging",
            { timezone: "Mars/Olympus" },
            `timezone must be an IANA time zone such as Asia/Manila, got "Mars/Olympus"`,
        ],
        [
            "a publish address that is not IPv4",
            "staging",
            { publishAddress: "localhost\nx" },
            `publishAddress must be an IPv4 address such as 127.0.0.1, got "localhost\\nx"`,
        ],
        [
            "an unknown client TLS mode",
            "production",
            { clientTlsSslmode: "verify-full" },
            `Configuration 'obcms-database:clientTlsSslmode' value 'verify-full' is not a legal enum value (["disable","allow","prefer","require"])`,
        ],
        [
            "an image platform Debian does not build for",
            "staging",
            { imagePlatform: "linux/s390" },
            `Configuration 'obcms-database:imagePlatform' value 'linux/s390' is not a legal enum value (["linux/amd64","linux/arm64"])`,
        ],
        [
            "a WAL retention too small",
            "staging",
            { maxSlotWalKeepSizeMb: 10 },
            "maxSlotWalKeepSizeMb must be a size in MB from 64 to 1048576, got 10",
        ],
        [
            "an unknown audit class",
            "staging",
            { auditLog: "ddl, role'\nlog_directory = '/tmp" },
            `auditLog must be a comma-separated list of pgaudit classes (all, ddl, function, misc, misc_set, none, read, role, write), each optionally prefixed with -, got "ddl, role'\\nlog_directory = '/tmp"`,
        ],
        ...(
            [
                [
                    "not an object",
                    ["random_page_cost", 1.1],
                    'postgresParameters must be an object of parameter names and values, got ["random_page_cost",1.1]',
                ],
                [
                    "a misspelt name",
                    { log_min_duration_statment: "1s" },
                    "postgresParameters.log_min_duration_statment: PostgreSQL 17 has no such parameter, nor has a library the members preload (components/postgres-catalog.generated.ts lists them)",
                ],
                [
                    "a library the members do not preload",
                    { "auto_explain.log_min_duration": "1s" },
                    "postgresParameters.auto_explain.log_min_duration: PostgreSQL 17 has no such parameter, nor has a library the members preload (components/postgres-catalog.generated.ts lists them)",
                ],
                ["a name no parameter can have", { "work mem": "4MB" }, "postgresParameters.work mem: not a PostgreSQL parameter name"],
                [
                    "a parameter a config key sets",
                    { max_connections: 500 },
                    "postgresParameters.max_connections may not be set here: it follows maxConnections: set that key instead",
                ],
                [
                    "a sized parameter, in another case",
                    { Shared_Buffers: "1GB" },
                    "postgresParameters.Shared_Buffers may not be set here: it follows postgresMemoryMb: set that key instead",
                ],
                [
                    "a parameter the program owns",
                    { archive_command: "/bin/true" },
                    "postgresParameters.archive_command may not be set here: the program sets it: durability, replication, failover, backups, TLS or auditing depend on its value",
                ],
                [
                    "a name every object inherits",
                    { constructor: 1 },
                    "postgresParameters.constructor: PostgreSQL 17 has no such parameter, nor has a library the members preload (components/postgres-catalog.generated.ts lists them)",
                ],
                [
                    "one parameter named twice",
                    { statement_timeout: "30s", Statement_Timeout: "1min" },
                    "postgresParameters.Statement_Timeout and postgresParameters.statement_timeout name one parameter (PostgreSQL ignores case): keep one",
                ],
                [
                    "durability traded away",
                    { synchronous_commit: "off" },
                    "postgresParameters.synchronous_commit may not be set here: the program sets it: durability, replication, failover, backups, TLS or auditing depend on its value",
                ],
                [
                    "a parameter Patroni sets",
                    { primary_conninfo: "host=elsewhere" },
                    "postgresParameters.primary_conninfo may not be set here: Patroni sets it from its own configuration and ignores it here",
                ],
                [
                    "a read-only parameter",
                    { block_size: 8192 },
                    "postgresParameters.block_size is read-only: PostgreSQL fixes it when the cluster is created or built",
                ],
                [
                    "a boolean as a word PostgreSQL does not read",
                    { jit: "enabled" },
                    'postgresParameters.jit must be a boolean (true, false, or one of on, off, true, false, yes, no, 1, 0), got "enabled"',
                ],
                [
                    "an enum value the parameter lacks",
                    { wal_compression: "gzip" },
                    'postgresParameters.wal_compression must be one of pglz, lz4, zstd, on, off, got "gzip"',
                ],
                [
                    "an integer out of range",
                    { log_min_duration_statement: -2 },
                    "postgresParameters.log_min_duration_statement must be an integer from -1 to 2147483647 (in ms), or a string with one of the units us, ms, s, min, h, d, got -2",
                ],
                [
                    "a fractional integer",
                    { deadlock_timeout: 1.5 },
                    "postgresParameters.deadlock_timeout must be an integer from 1 to 2147483647 (in ms), or a string with one of the units us, ms, s, min, h, d, got 1.5",
                ],
                [
                    "a memory size for a time",
                    { statement_timeout: "30MB" },
                    'postgresParameters.statement_timeout must be an integer from 0 to 2147483647 (in ms), or a string with one of the units us, ms, s, min, h, d, got "30MB"',
                ],
                [
                    "a real out of range",
                    { random_page_cost: -1 },
                    "postgresParameters.random_page_cost must be a number from 0 to 1.79769e+308, got -1",
                ],
                ["a number for a string", { search_path: 5 }, "postgresParameters.search_path must be a string, got 5"],
                [
                    "a string that would end its line",
                    { application_name: "x'\nssl = off" },
                    `postgresParameters.application_name must be a string without control characters (newlines, tabs), got "x'\\nssl = off"`,
                ],
                [
                    "an object as a value",
                    { statement_timeout: { value: 1 } },
                    'postgresParameters.statement_timeout must be a string, a number or a boolean, got {"value":1}',
                ],
            ] as const
        ).map(([what, postgresParameters, message]): [string, StackName, Record<string, unknown>, string] => [
            `postgresParameters with ${what}`,
            "staging",
            { postgresParameters },
            message,
        ]),
    ];

    it.each(rejected)("rejects %s", async (_, stack, overrides, message) => {
        await expect(settingsFor(stack, overrides)).rejects.toThrow(exactly(message));
    });

    /** Values in each of PostgreSQL's spellings: units with and without a space, bare numbers, words for booleans, mixed case. */
    const OPERATOR_PARAMETERS = {
        log_min_duration_statement: "250ms",
        statement_timeout: "30 s",
        idle_in_transaction_session_timeout: 60000,
        random_page_cost: 1.5,
        jit: "off",
        log_lock_waits: true,
        wal_compression: "zstd",
        DateStyle: "ISO, DMY",
        "pg_stat_statements.max": 10000,
        temp_file_limit: "10GB",
    };
    const failover = (ttlSeconds: number, loopWaitSeconds: number, retryTimeoutSeconds: number) => ({
        ttlSeconds,
        loopWaitSeconds,
        retryTimeoutSeconds,
    });
    it.each([
        ["every replica synchronous", "production", { synchronousReplicas: 3 }, { ...production, synchronousReplicas: 3 }],
        ["no lag allowed on failover", "production", { maximumLagOnFailoverMb: 0 }, { ...production, maximumLagOnFailoverMb: 0 }],
        ["a replica a day behind", "production", { delayedReplicaMinutes: 1440 }, { ...production, delayedReplicaMinutes: 1440 }],
        [
            "Patroni's defaults (30/10/10)",
            "staging",
            { failoverTtl: 30, failoverLoopWait: 10, failoverRetryTimeout: 10 },
            { ...staging, failover: failover(30, 10, 10) },
        ],
        [
            "the operator's own PostgreSQL parameters, in PostgreSQL's spellings",
            "staging",
            { postgresParameters: OPERATOR_PARAMETERS },
            { ...staging, postgresParameters: OPERATOR_PARAMETERS },
        ],
        [
            "a loop and two retries exactly the ttl",
            "staging",
            { failoverLoopWait: 14, failoverRetryTimeout: 3 },
            { ...staging, failover: failover(20, 14, 3) },
        ],
    ] satisfies Array<[string, StackName, Record<string, unknown>, ClusterSettings]>)(
        "accepts %s",
        async (_, stack, overrides, settings) => {
            expect(await settingsFor(stack, overrides)).toEqual(settings);
        },
    );
});

describe("a bad value stops the program before it declares anything", () => {
    it("declares no resource when replicaCount is out of range", async () => {
        const mocks = new RecordingMocks();
        await expect(runProgram({ stack: "production", overrides: { replicaCount: 11 }, mocks })).rejects.toThrow(
            exactly("replicaCount must be an integer from 1 to 10, got 11"),
        );
        expect(mocks.resources).toEqual([]);
    });

    it("refuses a password override that is too short, without echoing it", async () => {
        const mocks = new RecordingMocks();
        const run = runProgram({
            stack: "staging",
            overrides: { appPassword: "short secret" },
            secretKeys: ["appPassword"],
            mocks,
        });
        await expect(run).rejects.toThrow(
            exactly("appPassword must be at least 16 printable ASCII characters without spaces (the value is not shown)"),
        );
        expect(mocks.resources).toEqual([]);
    });
});
