// A member's patroni.yml, read back with a YAML parser: every setting that
// decides how the cluster fails over, exactly, for a staging and a
// production member; and passwords that stay inside their scalars.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
    dynamicConfiguration,
    type PatroniPasswords,
    renderPatroniConf,
    runningParameters,
} from "../../components/render/patroni/patroni-yml";
import { renderStopHold } from "../../components/render/patroni/switchover-hold";
import { replicaRestoreCommand, restoreCommand } from "../../components/render/pgbackrest/pgbackrest";
import type { ClusterSettings } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { LONG_MULTILINE, production, staging } from "./fixtures";

const PASSWORDS: PatroniPasswords = { superuser: "su-pw", replication: "repl-pw", rewind: "rewind-pw", rest: "rest-pw" };

function rendered(s: ClusterSettings, index: number, passwords: PatroniPasswords = PASSWORDS): string {
    const t = clusterTopology(s);
    return renderPatroniConf({ settings: s, scope: t.scope, member: t.members[index - 1], etcd: t.etcd, passwords });
}

const TLS = { certfile: "/var/lib/postgresql/data/server.crt", keyfile: "/var/lib/postgresql/data/server.key" };
const CA = "/etc/obcms/tls/ca.crt";

/**
 * The parameters in the dynamic configuration: the cluster-wide ones and every
 * one PostgreSQL reloads; the same in both stacks (sized for 10 replicas, and
 * for the same memory and CPUs).
 */
const DYNAMIC_PARAMETERS = {
    archive_command: "pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main archive-push %p",
    archive_timeout: 60,
    checkpoint_completion_target: 0.9,
    effective_cache_size: "1536MB",
    effective_io_concurrency: 200,
    fsync: "on",
    full_page_writes: "on",
    hot_standby: "on",
    hot_standby_feedback: "on",
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
    "pgaudit.log_parameter": "off",
    random_page_cost: 1.1,
    ssl: "on",
    ssl_min_protocol_version: "TLSv1.2",
    synchronous_commit: "on",
    timezone: "Asia/Manila",
    wal_compression: "lz4",
    wal_keep_size: "128MB",
    wal_level: "replica",
    wal_log_hints: "on",
    wal_retrieve_retry_interval: "1s",
    work_mem: "5140kB",
};

/**
 * How a member without data gets it: pgBackRest's restore from the
 * repository first, then a base backup of the leader; and where recovery
 * finds archived WAL. The two commands are pgBackRest's, whose tests pin them.
 */
function replicaCreation(s: ClusterSettings) {
    return {
        create_replica_methods: ["pgbackrest", "basebackup"],
        pgbackrest: { command: replicaRestoreCommand(s), keep_data: true, no_leader: true, no_params: true },
        basebackup: { checkpoint: "fast" },
        recovery_conf: { restore_command: restoreCommand(s) },
    };
}

/** A member's patroni.yml, from its stack's name, its own and the etcd members'. */
function expected(s: ClusterSettings, node: string, etcd: string[]) {
    const prefix = s.clusterName;
    return {
        scope: prefix,
        namespace: "/service",
        name: node,
        log: { level: "INFO" },
        restapi: {
            listen: "0.0.0.0:8008",
            connect_address: `${prefix}-${node}:8008`,
            ...TLS,
            cafile: CA,
            authentication: { username: "patroni", password: "rest-pw" },
        },
        ctl: { cacert: CA, ...TLS },
        etcd3: {
            hosts: etcd,
            protocol: "https",
            cacert: CA,
            cert: "/var/lib/postgresql/data/server.crt",
            key: "/var/lib/postgresql/data/server.key",
        },
        // No `dcs`: the dynamic configuration is seeded into etcd before any member starts.
        bootstrap: { initdb: ["data-checksums", { encoding: "UTF8" }, { locale: "C.UTF-8" }] },
        postgresql: {
            listen: "0.0.0.0:5432",
            connect_address: `${prefix}-${node}:5432`,
            data_dir: "/var/lib/postgresql/data/pgdata",
            bin_dir: "/usr/lib/postgresql/17/bin",
            pgpass: "/var/run/postgresql/patroni.pgpass",
            custom_conf: "/etc/obcms/postgresql.conf",
            // The switchover's hold (switchover-hold.test.ts runs it).
            before_stop: renderStopHold(),
            parameters: {
                hba_file: "/etc/obcms/pg_hba.conf",
                unix_socket_directories: "/var/run/postgresql",
                ssl_ca_file: CA,
                ssl_cert_file: TLS.certfile,
                ssl_key_file: TLS.keyfile,
            },
            use_unix_socket: true,
            use_unix_socket_repl: false,
            authentication: {
                superuser: { username: "postgres", password: "su-pw" },
                replication: { username: "replicator", password: "repl-pw", sslmode: "verify-full", sslrootcert: CA },
                rewind: { username: "rewinder", password: "rewind-pw", sslmode: "verify-full", sslrootcert: CA },
            },
            ...replicaCreation(s),
            remove_data_directory_on_rewind_failure: true,
            remove_data_directory_on_diverged_timelines: true,
        },
        watchdog: { mode: "off" },
    };
}

describe("renderPatroniConf", () => {
    it("renders staging's first member: its REST API and etcd over TLS, initdb with data checksums, no watchdog", () => {
        const text = rendered(staging, 1);
        expect(text.split("\n")[0]).toBe("# Patroni member pg-1, rendered by obcms-database");
        expect(parse(text)).toEqual(expected(staging, "pg-1", ["obcms-database-staging-etcd-1:2379"]));
    });

    it("renders production's third member, with every etcd member", () => {
        const prefix = "obcms-database-production";
        expect(parse(rendered(production, 3))).toEqual(
            expected(
                production,
                "pg-3",
                [1, 2, 3].map((k) => `${prefix}-etcd-${k}:2379`),
            ),
        );
    });

    it("differs between two members of a stack only in the member's own names", () => {
        const lines = (index: number) => rendered(production, index).split("\n");
        const differing = lines(1)
            .map((line, i) => [line, lines(2)[i]])
            .filter(([a, b]) => a !== b);
        expect(differing).toEqual([
            ["# Patroni member pg-1, rendered by obcms-database", "# Patroni member pg-2, rendered by obcms-database"],
            ['name: "pg-1"', 'name: "pg-2"'],
            ['  connect_address: "obcms-database-production-pg-1:5432"', '  connect_address: "obcms-database-production-pg-2:5432"'],
            ['  connect_address: "obcms-database-production-pg-1:8008"', '  connect_address: "obcms-database-production-pg-2:8008"'],
        ]);
    });

    it("makes the delayed replica replay late, send no feedback, and never lead, serve reads or acknowledge commits", () => {
        const s = { ...production, delayedReplicaMinutes: 90 };
        const t = clusterTopology(s);
        const delayed = parse(
            renderPatroniConf({ settings: s, scope: t.scope, member: t.delayedReplica!, etcd: t.etcd, passwords: PASSWORDS }),
        );
        const ordinary = parse(rendered(s, 2));
        expect(delayed.tags).toEqual({ nofailover: true, noloadbalance: true, nosync: true });
        expect(ordinary.tags).toBeUndefined();
        expect(delayed.postgresql.parameters).toEqual({
            ...ordinary.postgresql.parameters,
            recovery_min_apply_delay: "90min",
            hot_standby_feedback: "off",
        });
        expect(delayed.name).toBe("pg-delayed");
        expect(delayed.postgresql.connect_address).toBe("obcms-database-production-pg-delayed:5432");
        // The other members' files do not change when the stack adds a delayed replica.
        expect(rendered(s, 2)).toBe(rendered(production, 2));
    });

    // Anything in patroni.yml replaces every member when it changes.
    it("does not change with the dynamic configuration, which lives in etcd", () => {
        const changed: ClusterSettings = {
            ...production,
            synchronousReplicas: 0,
            maximumLagOnFailoverMb: 16,
            maxConnections: 150,
            failover: { ttlSeconds: 30, loopWaitSeconds: 10, retryTimeoutSeconds: 10 },
        };
        expect(rendered(changed, 2)).toBe(rendered(production, 2));
    });

    it("renders byte-identical files for equal input, so an unchanged member is never replaced", () => {
        expect(rendered(production, 2)).toBe(rendered({ ...production, pool: { ...production.pool } }, 2));
    });
});

describe("dynamicConfiguration", () => {
    const common = {
        ttl: 20,
        loop_wait: 5,
        retry_timeout: 5,
        maximum_lag_on_failover: 1048576,
        failsafe_mode: true,
        postgresql: {
            use_pg_rewind: true,
            use_slots: true,
            parameters: { ...DYNAMIC_PARAMETERS, "obcms.parameters_digest": "63cd98cae56b9b7c" },
        },
    };

    it("is asynchronous in staging", () => {
        expect(dynamicConfiguration(staging)).toEqual({ ...common, synchronous_mode: false });
    });

    // Quorum commit: any one replica acknowledges each commit; strict, so with
    // no replica streaming commits wait instead of being acknowledged by the
    // leader alone, and no acknowledged commit is lost by a failover.
    it("is strict quorum commit on one replica in production", () => {
        expect(dynamicConfiguration(production)).toEqual({
            ...common,
            synchronous_mode: "quorum",
            synchronous_node_count: 1,
            synchronous_mode_strict: true,
        });
    });

    it("takes the failover timings, the lag bound, max_connections and the work_mem sized for it from the settings", () => {
        const s = {
            ...staging,
            maximumLagOnFailoverMb: 16,
            maxConnections: 150,
            failover: { ttlSeconds: 30, loopWaitSeconds: 10, retryTimeoutSeconds: 10 },
        };
        expect(dynamicConfiguration(s)).toEqual({
            ...common,
            ttl: 30,
            loop_wait: 10,
            retry_timeout: 10,
            maximum_lag_on_failover: 16 * 1024 * 1024,
            synchronous_mode: false,
            postgresql: {
                ...common.postgresql,
                parameters: {
                    ...DYNAMIC_PARAMETERS,
                    max_connections: 150,
                    work_mem: "3449kB",
                    "obcms.parameters_digest": "a1f866dd3ff7ef10",
                },
            },
        });
    });

    // The dynamic-configuration command waits until every member shows the digest of what it applies,
    // and runs the declared value of each hot-standby minimum.
    it("carries a digest of the parameters, which changes with them and only with them, and the standby minimums as declared", () => {
        const digest = (s: typeof staging) => runningParameters(s).digest;
        expect(digest({ ...staging, failover: { ttlSeconds: 30, loopWaitSeconds: 10, retryTimeoutSeconds: 10 } })).toBe(digest(staging));
        expect(digest({ ...staging, maxConnections: 150 })).not.toBe(digest(staging));
        expect(digest(staging)).toMatch(/^[0-9a-f]{16}$/);
        expect(runningParameters({ ...staging, maxConnections: 150 }).standbyMinimums).toEqual({
            max_connections: "150",
            max_wal_senders: "22",
            max_worker_processes: "264",
        });
    });
});

describe("passwords in patroni.yml", () => {
    const hostile: PatroniPasswords = {
        superuser: `it's "quoted" \\ and # not a comment: yes`,
        replication: "line one\nrest: injected\r\n- list",
        rewind: "Ñoño 東京 \u2028 \u0085 end",
        rest: LONG_MULTILINE,
    };

    it("stay inside their scalars and read back unchanged, with no key or line of their own", () => {
        const text = rendered(production, 2, hostile);
        const conf = parse(text);
        expect(conf.postgresql.authentication).toEqual({
            superuser: { username: "postgres", password: hostile.superuser },
            replication: { username: "replicator", password: hostile.replication, sslmode: "verify-full", sslrootcert: CA },
            rewind: { username: "rewinder", password: hostile.rewind, sslmode: "verify-full", sslrootcert: CA },
        });
        expect(conf.restapi.authentication).toEqual({ username: "patroni", password: hostile.rest });
        // Same shape as with plain passwords: no value grew a line or a key.
        expect(text.split("\n")).toHaveLength(rendered(production, 2).split("\n").length);
        const plain = parse(rendered(production, 2));
        expect(conf).toEqual({
            ...plain,
            postgresql: { ...plain.postgresql, authentication: conf.postgresql.authentication },
            restapi: { ...plain.restapi, authentication: conf.restapi.authentication },
        });
    });
});
