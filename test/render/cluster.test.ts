import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { postgresParameters, standbyParameters } from "../../components/render/postgres/parameters";
import { renderPostgresqlConf } from "../../components/render/postgres/postgresql-conf";
import { createSlotCommand, dropSlotCommand } from "../../components/render/postgres/slots";
import type { ClusterSettings } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { production, shellSyntaxCheck, staging } from "./fixtures";
import { readLibpqConninfo, readPostgresqlConf } from "./formats";

const primaryOf = (s: ClusterSettings) => clusterTopology(s).primary;
const replicaOf = (s: ClusterSettings, index: number) => clusterTopology(s).replicas[index - 1]!;
const stagingWithTwo = { ...staging, replicaCount: 2 };

const CREATE_SLOT_2 =
    "docker exec -u postgres 'obcms-database-staging-primary' psql -X -q -v ON_ERROR_STOP=1 -d postgres -c " +
    "'SELECT pg_create_physical_replication_slot('\\''replica_2_slot'\\'') WHERE NOT EXISTS " +
    "(SELECT FROM pg_replication_slots WHERE slot_name = '\\''replica_2_slot'\\'')'";

const DROP_SLOT_2 = [
    "docker container inspect 'obcms-database-staging-primary' >/dev/null 2>&1 || exit 0",
    "for attempt in $(seq 1 30); do docker exec -u postgres 'obcms-database-staging-primary' psql -X -q -v ON_ERROR_STOP=1 -d postgres -c " +
        "'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '\\''replica_2_slot'\\''' && exit 0; sleep 1; done",
    "exit 1",
].join("\n");

/**
 * Runs a rendered command with /bin/sh, `docker` and `sleep` replaced by
 * functions: `docker container inspect` exits with INSPECT, and `docker exec`
 * records its arguments and fails until its SUCCEED_AT-th call.
 */
function runWithFakeDocker(command: string, env: { INSPECT: string; SUCCEED_AT: string }) {
    const stubs = [
        "calls=0",
        "sleep() { :; }",
        "docker() {",
        '  if [ "$1" = container ]; then return "$INSPECT"; fi',
        "  calls=$((calls + 1))",
        '  for a in "$@"; do printf \'%s\\0\' "$a"; done; printf "\\n"',
        '  [ "$calls" -ge "$SUCCEED_AT" ]',
        "}",
    ].join("\n");
    const result = spawnSync("/bin/sh", ["-c", `${stubs}\n${command}`], { encoding: "utf8", env: { ...process.env, ...env } });
    const calls =
        result.stdout === ""
            ? []
            : result.stdout
                  .slice(0, -1)
                  .split("\n")
                  .map((line) => line.split("\0").slice(0, -1));
    return { status: result.status, calls };
}

const PSQL_ARGS = [
    "exec",
    "-u",
    "postgres",
    "obcms-database-staging-primary",
    "psql",
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-d",
    "postgres",
    "-c",
];

describe("cluster", () => {
    describe("postgresParameters", () => {
        it("allows 22 WAL senders and 12 slots, enough for the largest cluster (10 replicas: 2N+2 and N+2)", () => {
            const parameters = postgresParameters(staging, primaryOf(staging));
            expect(parameters.max_wal_senders).toBe(22);
            expect(parameters.max_replication_slots).toBe(12);
        });

        it("renders the same postgresql.conf for each member whatever the replica count: scaling restarts no member", () => {
            const conf = (replicaCount: number, member: "primary" | 1) => {
                const s = { ...staging, replicaCount };
                return renderPostgresqlConf(
                    member === "primary"
                        ? postgresParameters(s, primaryOf(s))
                        : { ...postgresParameters(s, replicaOf(s, 1)), ...standbyParameters(primaryOf(s), replicaOf(s, 1)) },
                );
            };
            for (const member of ["primary", 1] as const) {
                expect(conf(1, member)).toBe(conf(3, member));
                expect(conf(1, member)).toBe(conf(10, member));
            }
        });

        it("renders the staging primary's postgresql.conf as the exact file", () => {
            expect(renderPostgresqlConf(postgresParameters(staging, primaryOf(staging)))).toBe(
                [
                    "# Rendered by obcms-database; changes here are overwritten.",
                    "archive_command = 'pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main archive-push %p'",
                    "archive_mode = 'on'",
                    "archive_timeout = 60",
                    "autovacuum_max_workers = 3",
                    "checkpoint_completion_target = 0.9",
                    "cluster_name = 'primary'",
                    "effective_cache_size = '1536MB'",
                    "effective_io_concurrency = 200",
                    "hba_file = '/etc/obcms/pg_hba.conf'",
                    "hot_standby = on",
                    "hot_standby_feedback = on",
                    "listen_addresses = '*'",
                    "log_destination = 'stderr'",
                    "log_line_prefix = '%m [%p] %q%u@%d '",
                    "log_timezone = 'Asia/Manila'",
                    "logging_collector = off",
                    "maintenance_work_mem = '128MB'",
                    "max_connections = 100",
                    "max_parallel_maintenance_workers = 1",
                    "max_parallel_workers = 2",
                    "max_parallel_workers_per_gather = 1",
                    "max_replication_slots = 12",
                    "max_slot_wal_keep_size = '2048MB'",
                    "max_wal_senders = 22",
                    "max_wal_size = '4GB'",
                    "max_worker_processes = 10",
                    "min_wal_size = '1GB'",
                    "password_encryption = 'scram-sha-256'",
                    "pg_stat_statements.track = 'top'",
                    "pgaudit.log = 'ddl, role'",
                    "pgaudit.log_parameter = off",
                    "port = 5432",
                    "random_page_cost = 1.1",
                    "shared_buffers = '512MB'",
                    "shared_preload_libraries = 'pg_stat_statements,pgaudit'",
                    "ssl = on",
                    "ssl_ca_file = '/etc/obcms/tls/ca.crt'",
                    "ssl_cert_file = '/etc/obcms/tls/server.crt'",
                    "ssl_key_file = '/etc/obcms/tls/server.key'",
                    "ssl_min_protocol_version = 'TLSv1.2'",
                    "superuser_reserved_connections = 3",
                    "timezone = 'Asia/Manila'",
                    "unix_socket_directories = '/var/run/postgresql'",
                    "wal_buffers = '16MB'",
                    "wal_compression = 'lz4'",
                    "wal_level = 'replica'",
                    "wal_log_hints = on",
                    "work_mem = '5140kB'",
                    "",
                ].join("\n"),
            );
        });

        it("gives the primary and every replica the same settings apart from cluster_name", () => {
            const { cluster_name: primaryName, ...primary } = postgresParameters(production, primaryOf(production));
            const { cluster_name: replicaName, ...replica } = postgresParameters(production, replicaOf(production, 3));
            expect([primaryName, replicaName]).toEqual(["primary", "replica_3"]);
            expect(replica).toEqual(primary);
        });
    });

    describe("standbyParameters", () => {
        it("renders primary_conninfo on one line with the exact text", () => {
            expect(renderPostgresqlConf(standbyParameters(primaryOf(staging), replicaOf(staging, 1)))).toBe(
                [
                    "# Rendered by obcms-database; changes here are overwritten.",
                    "primary_conninfo = 'application_name=''replica_1'' host=''obcms-database-staging-primary'' passfile=''/etc/obcms/pgpass'' " +
                        "port=''5432'' sslmode=''verify-full'' sslrootcert=''/etc/obcms/tls/ca.crt'' user=''replicator'''",
                    "primary_slot_name = 'replica_1_slot'",
                    "",
                ].join("\n"),
            );
        });

        it("reads back, through postgresql.conf and libpq, as the intended connection of replica 3", () => {
            const conf = readPostgresqlConf(renderPostgresqlConf(standbyParameters(primaryOf(production), replicaOf(production, 3))));
            expect(conf.primary_slot_name).toBe("replica_3_slot");
            expect(readLibpqConninfo(conf.primary_conninfo)).toEqual({
                application_name: "replica_3",
                host: "obcms-database-production-primary",
                passfile: "/etc/obcms/pgpass",
                port: "5432",
                sslmode: "verify-full",
                sslrootcert: "/etc/obcms/tls/ca.crt",
                user: "replicator",
            });
        });

        it("keeps a hostile cluster name inside its conninfo value", () => {
            const hostile = { ...staging, clusterName: "it's \\ x" };
            const conf = readPostgresqlConf(renderPostgresqlConf(standbyParameters(primaryOf(hostile), replicaOf(hostile, 1))));
            expect(readLibpqConninfo(conf.primary_conninfo).host).toBe("it's \\ x-primary");
        });
    });

    describe("replication slot commands", () => {
        it("createSlotCommand for replica 2 is the exact command, and sh accepts it", () => {
            expect(createSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2))).toBe(CREATE_SLOT_2);
            expect(shellSyntaxCheck(CREATE_SLOT_2)).toEqual({ status: 0, stderr: "" });
        });

        it("createSlotCommand hands psql the SQL as one argument", () => {
            expect(
                runWithFakeDocker(createSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2)), {
                    INSPECT: "0",
                    SUCCEED_AT: "1",
                }),
            ).toEqual({
                status: 0,
                calls: [
                    [
                        ...PSQL_ARGS,
                        "SELECT pg_create_physical_replication_slot('replica_2_slot') WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'replica_2_slot')",
                    ],
                ],
            });
        });

        it("dropSlotCommand for replica 2 is the exact script, and sh accepts it", () => {
            expect(dropSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2))).toBe(DROP_SLOT_2);
            expect(shellSyntaxCheck(DROP_SLOT_2)).toEqual({ status: 0, stderr: "" });
        });

        it("dropSlotCommand retries while the slot is still active and succeeds once the drop does", () => {
            const drop = [
                ...PSQL_ARGS,
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'replica_2_slot'",
            ];
            expect(
                runWithFakeDocker(dropSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2)), {
                    INSPECT: "0",
                    SUCCEED_AT: "3",
                }),
            ).toEqual({
                status: 0,
                calls: [drop, drop, drop],
            });
        });

        it("dropSlotCommand succeeds without running psql when the primary container is gone", () => {
            expect(
                runWithFakeDocker(dropSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2)), {
                    INSPECT: "1",
                    SUCCEED_AT: "1",
                }),
            ).toEqual({
                status: 0,
                calls: [],
            });
        });

        it("dropSlotCommand fails after 30 failed attempts", () => {
            const result = runWithFakeDocker(dropSlotCommand(primaryOf(stagingWithTwo), replicaOf(stagingWithTwo, 2)), {
                INSPECT: "0",
                SUCCEED_AT: "99",
            });
            expect(result.status).toBe(1);
            expect(result.calls).toHaveLength(30);
        });
    });
});
