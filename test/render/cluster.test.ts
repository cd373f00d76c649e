import { describe, expect, it } from "vitest";
import {
    CLUSTER_WIDE_PARAMETERS,
    dynamicParameters,
    memberFileParameters,
    postgresParameters,
    postgresqlConfParameters,
    RESTART_PARAMETERS,
} from "../../components/render/postgres/parameters";
import { renderPostgresqlConf } from "../../components/render/postgres/postgresql-conf";
import { staging } from "./fixtures";

describe("cluster", () => {
    describe("postgresParameters", () => {
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
            expect(Object.keys(restart).filter((name) => !RESTART_PARAMETERS.has(name))).toEqual([]);
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
