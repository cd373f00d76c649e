import { describe, expect, it } from "vitest";
import { PARAMETER_OWNERS } from "../../components/parameter-settings";
import { readOnlyAtStart } from "../../components/postgres-catalog";
import {
    CLUSTER_WIDE_PARAMETERS,
    dynamicParameters,
    memberFileParameters,
    postgresParameters,
    postgresqlConfParameters,
} from "../../components/render/postgres/parameters";
import { renderPostgresqlConf } from "../../components/render/postgres/postgresql-conf";
import { staging } from "./fixtures";

describe("cluster", () => {
    describe("postgresParameters", () => {
        it("sets exactly the parameters PARAMETER_OWNERS gives the program or a config key, besides the defaults an operator may override", () => {
            const declared = Object.keys(postgresParameters(staging));
            // recovery_min_apply_delay is the delayed replica's own, in its patroni.yml (delayParameters).
            const owned = Object.entries(PARAMETER_OWNERS)
                .filter(([name, owner]) => owner !== "patroni" && name !== "recovery_min_apply_delay")
                .map(([name]) => name);
            expect(owned.filter((name) => !declared.includes(name))).toEqual([]);
            expect(declared.filter((name) => !(name in PARAMETER_OWNERS)).sort()).toEqual([
                "checkpoint_completion_target",
                "effective_io_concurrency",
                "max_wal_size",
                "min_wal_size",
                "random_page_cost",
                "wal_compression",
            ]);
        });

        it("layers the operator's parameters over the defaults, and places each where PostgreSQL takes it", () => {
            const s = {
                ...staging,
                postgresParameters: {
                    random_page_cost: 1.5,
                    log_min_duration_statement: "250ms",
                    max_locks_per_transaction: 128,
                    max_files_per_process: 2000,
                    // In PostgreSQL's own spelling (pg_settings): it replaces the default all the same.
                    Effective_IO_Concurrency: 300,
                },
            };
            const parameters = postgresParameters(s);
            expect(parameters).toMatchObject({ random_page_cost: 1.5, log_min_duration_statement: "250ms", effective_io_concurrency: 300 });
            expect(Object.keys(parameters)).not.toContain("Effective_IO_Concurrency");
            // Reloadable, and cluster-wide (a hot-standby minimum, restarted in PostgreSQL's order): Patroni's dynamic configuration.
            expect(dynamicParameters(s)).toMatchObject({
                random_page_cost: 1.5,
                log_min_duration_statement: "250ms",
                max_locks_per_transaction: 128,
            });
            // Read only at start and not cluster-wide: the members' postgresql.conf.
            expect(postgresqlConfParameters(s)).toMatchObject({ max_files_per_process: 2000 });
            expect(Object.keys(dynamicParameters(s))).not.toContain("max_files_per_process");
            expect(Object.keys(postgresqlConfParameters(s))).not.toContain("log_min_duration_statement");
        });

        it("allows 22 WAL senders and 12 slots, enough for the largest cluster (10 replicas: 2N+2 and N+2)", () => {
            const parameters = postgresParameters(staging);
            expect(parameters.max_wal_senders).toBe(22);
            expect(parameters.max_replication_slots).toBe(12);
        });

        it("renders the same postgresql.conf and dynamic parameters whatever the replica count: scaling restarts no member", () => {
            const files = (replicaCount: number) => {
                const s = { ...staging, replicaCount };
                return [renderPostgresqlConf(postgresqlConfParameters(s)), JSON.stringify(dynamicParameters(s))];
            };
            expect(files(1)).toEqual(files(3));
            expect(files(1)).toEqual(files(10));
        });

        it("leaves the cluster-wide and the reloadable parameters to Patroni's dynamic configuration, with their exact values", () => {
            expect(dynamicParameters(staging)).toEqual({
                archive_command: "pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main archive-push %p",
                archive_timeout: 60,
                checkpoint_completion_target: 0.9,
                effective_cache_size: "1536MB",
                effective_io_concurrency: 200,
                fsync: true,
                full_page_writes: true,
                hot_standby: true,
                hot_standby_feedback: true,
                log_destination: "stderr",
                log_line_prefix: "%m [%p] %q%u@%d ",
                log_timezone: "Asia/Manila",
                maintenance_work_mem: "128MB",
                max_connections: 100,
                max_parallel_maintenance_workers: 1,
                max_parallel_workers: 2,
                max_parallel_workers_per_gather: 1,
                max_replication_slots: 12,
                max_slot_wal_keep_size: "2048MB",
                max_wal_senders: 22,
                max_wal_size: "4GB",
                max_worker_processes: 264,
                min_wal_size: "1GB",
                password_encryption: "scram-sha-256",
                "pg_stat_statements.track": "top",
                "pgaudit.log": "ddl, role",
                "pgaudit.log_parameter": false,
                random_page_cost: 1.1,
                ssl: true,
                ssl_min_protocol_version: "TLSv1.2",
                synchronous_commit: "on",
                timezone: "Asia/Manila",
                wal_compression: "lz4",
                wal_keep_size: "128MB",
                wal_level: "replica",
                wal_log_hints: true,
                wal_retrieve_retry_interval: "1s",
                work_mem: "5140kB",
            });
            const restart = postgresqlConfParameters(staging);
            expect(Object.keys(restart).filter((name) => CLUSTER_WIDE_PARAMETERS.has(name))).toEqual([]);
            expect(Object.keys(restart).filter((name) => !readOnlyAtStart(name))).toEqual([]);
            // The TLS files' paths are each member's own, in its patroni.yml.
            expect(memberFileParameters(staging)).toEqual({
                ssl_ca_file: "/etc/obcms/tls/ca.crt",
                ssl_cert_file: "/var/lib/postgresql/data/server.crt",
                ssl_key_file: "/var/lib/postgresql/data/server.key",
            });
            expect({ ...restart, ...dynamicParameters(staging), ...memberFileParameters(staging) }).toEqual(postgresParameters(staging));
        });

        it("renders the staging members' postgresql.conf as the exact file: the parameters read only at start", () => {
            expect(renderPostgresqlConf(postgresqlConfParameters(staging))).toBe(
                [
                    "# Rendered by obcms-database; changes here are overwritten.",
                    "archive_mode = 'on'",
                    "autovacuum_max_workers = 3",
                    "hba_file = '/etc/obcms/pg_hba.conf'",
                    "logging_collector = off",
                    "shared_buffers = '512MB'",
                    "shared_preload_libraries = 'pg_stat_statements,pgaudit'",
                    "superuser_reserved_connections = 3",
                    "unix_socket_directories = '/var/run/postgresql'",
                    "wal_buffers = '16MB'",
                    "",
                ].join("\n"),
            );
        });
    });
});
