// A member's patroni.yml, as plain data from the settings and the topology:
// the REST API over TLS with credentials, etcd with the member's own client
// certificate, how a new cluster is initialised, and
// PostgreSQL's side (initdb, authentication, replica creation, rewind).
import { createHash } from "node:crypto";
import { type ClusterSettings, PATRONI_REST_PORT, POSTGRES_PORT, ROLES } from "../../settings";
import type { EtcdMember, PostgresMember } from "../../topology";
import { etcdClientUrl } from "../etcd/etcd-conf";
import { FILES, MEMBER_TLS_FILES, PGDATA, SOCKET_DIR } from "../paths";
import { replicaRestoreCommand, restoreCommand } from "../pgbackrest/pgbackrest";
import { dynamicParameters, HOT_STANDBY_MINIMUMS, memberFileParameters, postgresqlConfParameters } from "../postgres/parameters";
import type { ConfValue } from "../postgres/postgresql-conf";
import { renderYaml, type YamlValue } from "../yaml";
import { PATRONI_NAMESPACE } from "./dcs-seed";
import { renderStopHold } from "./switchover-hold";

/** The REST API's user: the same on every member, which call each other's `POST /failsafe` with it. */
export const PATRONI_REST_USER = "patroni";

/** Debian's layout for PostgreSQL 17. */
export const BIN_DIR = "/usr/lib/postgresql/17/bin";

export interface PatroniPasswords {
    readonly superuser: string;
    readonly replication: string;
    readonly rewind: string;
    readonly rest: string;
}

export interface PatroniSpec {
    readonly settings: ClusterSettings;
    readonly scope: string;
    readonly member: PostgresMember;
    readonly etcd: readonly EtcdMember[];
    readonly passwords: PatroniPasswords;
}

/** PostgreSQL reads "on"/"off"; Patroni would write Python's True/False. */
function parameterValues(parameters: Record<string, ConfValue>): Record<string, string | number> {
    return Object.fromEntries(
        Object.entries(parameters).map(([name, value]) => [name, typeof value === "boolean" ? (value ? "on" : "off") : value]),
    );
}

/**
 * A custom parameter (PostgreSQL accepts any dotted name no extension claims,
 * and Patroni passes such names through) carrying a digest of the dynamic
 * parameters: a member whose `current_setting` shows it has loaded them.
 */
export const PARAMETERS_DIGEST = "obcms.parameters_digest";

function dynamicParameterValues(s: ClusterSettings): Record<string, string | number> {
    return parameterValues(dynamicParameters(s));
}

/** A digest of parameters' sorted names and values: equal parameters give equal digests. */
function digestOf(parameters: Record<string, string | number>): string {
    const canonical = JSON.stringify(
        Object.keys(parameters)
            .sort()
            .map((name) => [name, parameters[name]]),
    );
    return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** What a member shows once it runs the stack's dynamic parameters. */
export interface RunningParameters {
    /** The digest PARAMETERS_DIGEST carries once the member has loaded them. */
    readonly digest: string;
    /**
     * The declared values of the hot-standby minimums, as `pg_settings` spells
     * them: a standby runs the primary's higher value of a lowered one until
     * it restarts after replaying the primary's restart.
     */
    readonly standbyMinimums: Readonly<Record<string, string>>;
    /** Every parameter of the dynamic configuration, the digest's included: etcd keeps no other. */
    readonly names: readonly string[];
}

export function runningParameters(s: ClusterSettings): RunningParameters {
    const parameters = dynamicParameterValues(s);
    return {
        digest: digestOf(parameters),
        standbyMinimums: Object.fromEntries(
            HOT_STANDBY_MINIMUMS.filter((name) => name in parameters).map((name) => [name, String(parameters[name])]),
        ),
        names: [...Object.keys(parameters), PARAMETERS_DIGEST],
    };
}

/**
 * Patroni's dynamic configuration, which lives in etcd: timings, durability,
 * the cluster-wide parameters and every one PostgreSQL reloads. Seeded into
 * etcd before any member starts (dcs-seed.ts), so patroni.yml does not carry
 * it; later changes are applied by `patronictl edit-config` (see
 * leader-commands.ts).
 */
export function dynamicConfiguration(s: ClusterSettings): Record<string, YamlValue> {
    const parameters = dynamicParameterValues(s);
    const synchronous: Record<string, YamlValue> =
        s.synchronousReplicas > 0
            ? {
                  // Any N of the replicas acknowledge each commit; strict: with fewer streaming,
                  // commits wait instead of being acknowledged by the leader alone.
                  synchronous_mode: "quorum",
                  synchronous_node_count: s.synchronousReplicas,
                  synchronous_mode_strict: true,
              }
            : { synchronous_mode: false };
    return {
        ttl: s.failover.ttlSeconds,
        loop_wait: s.failover.loopWaitSeconds,
        retry_timeout: s.failover.retryTimeoutSeconds,
        maximum_lag_on_failover: s.maximumLagOnFailoverMb * 1024 * 1024,
        // With etcd unreachable the leader keeps leading while every member confirms it.
        failsafe_mode: true,
        ...synchronous,
        postgresql: {
            use_pg_rewind: true,
            use_slots: true,
            parameters: { ...parameters, [PARAMETERS_DIGEST]: digestOf(parameters) },
        },
    };
}

/**
 * The delayed replica's own parameters, over the dynamic ones: it replays
 * each commit `applyDelayMinutes` late, and sends the leader no feedback,
 * which would hold the leader's vacuum back by the same delay. Empty for the
 * other members.
 */
export function delayParameters(member: PostgresMember): Record<string, ConfValue> {
    return member.applyDelayMinutes > 0 ? { recovery_min_apply_delay: `${member.applyDelayMinutes}min`, hot_standby_feedback: false } : {};
}

/**
 * Patroni's member tags: the delayed replica is never promoted (nofailover),
 * answers no read check (noloadbalance: `GET /replica` is 503) and is never a
 * synchronous standby (nosync), whose late replay would gain nothing and
 * whose failover would lose the delay. The others carry none.
 */
export function memberTags(member: PostgresMember): Record<string, YamlValue> | undefined {
    return member.applyDelayMinutes > 0 ? { nofailover: true, noloadbalance: true, nosync: true } : undefined;
}

/** Replication and rewind connect over TLS, checking the leader's certificate and name. */
function networkLogin(user: string, password: string): Record<string, YamlValue> {
    return { username: user, password, sslmode: "verify-full", sslrootcert: FILES.tlsCa };
}

export function patroniConf(spec: PatroniSpec): Record<string, YamlValue> {
    const { member, passwords } = spec;
    const s = spec.settings;
    const local = postgresqlConfParameters(s);
    const tls = { certfile: MEMBER_TLS_FILES.cert, keyfile: MEMBER_TLS_FILES.key };
    const tags = memberTags(member);
    return {
        scope: spec.scope,
        namespace: PATRONI_NAMESPACE,
        name: member.node,
        log: { level: "INFO" },
        restapi: {
            listen: `0.0.0.0:${PATRONI_REST_PORT}`,
            connect_address: `${member.container}:${PATRONI_REST_PORT}`,
            ...tls,
            cafile: FILES.tlsCa,
            authentication: { username: PATRONI_REST_USER, password: passwords.rest },
        },
        // patronictl, inside the container, calls the REST API with the same CA.
        ctl: { cacert: FILES.tlsCa, ...tls },
        etcd3: {
            hosts: spec.etcd.map((e) => etcdClientUrl(e).replace(/^https:\/\//, "")),
            protocol: "https",
            cacert: FILES.tlsCa,
            cert: MEMBER_TLS_FILES.cert,
            key: MEMBER_TLS_FILES.key,
        },
        // The dynamic configuration is not here but in etcd, seeded before any member starts (dcs-seed.ts):
        // a change to it then replaces no member.
        bootstrap: {
            initdb: ["data-checksums", { encoding: "UTF8" }, { locale: "C.UTF-8" }],
        },
        postgresql: {
            listen: `0.0.0.0:${POSTGRES_PORT}`,
            connect_address: `${member.container}:${POSTGRES_PORT}`,
            data_dir: PGDATA,
            bin_dir: BIN_DIR,
            // Patroni writes it from the credentials below; /run is not on the volume.
            pgpass: `${SOCKET_DIR}/patroni.pgpass`,
            // postgresql.conf, rendered by the program, under Patroni's own settings.
            custom_conf: FILES.postgresqlConf,
            // A planned switchover's hold on the leader's stop, until PgBouncer has paused (switchover-hold.ts).
            before_stop: renderStopHold(),
            // Patroni itself needs to know the first two; the TLS files are the member's own (memberFileParameters).
            parameters: parameterValues({
                hba_file: local.hba_file,
                unix_socket_directories: local.unix_socket_directories,
                ...memberFileParameters(spec.settings),
                ...delayParameters(member),
            }),
            // Patroni's own sessions use the socket and peer authentication.
            use_unix_socket: true,
            use_unix_socket_repl: false,
            authentication: {
                superuser: { username: ROLES.superuser, password: passwords.superuser },
                replication: networkLogin(ROLES.replication, passwords.replication),
                rewind: networkLogin(ROLES.rewind, passwords.rewind),
            },
            // A new or re-created member restores the newest backup from the repository, loading no
            // member, and falls back to pg_basebackup from the leader while there is none (first
            // bring-up: the backup container comes after the members). no_leader: the repository
            // can rebuild a member while no member leads.
            create_replica_methods: ["pgbackrest", "basebackup"],
            pgbackrest: { command: replicaRestoreCommand(s), keep_data: true, no_params: true, no_leader: true },
            basebackup: { checkpoint: "fast" },
            // A restored member replays what the repository archived since its backup, beyond what
            // the leader still keeps; pg_rewind fetches missing WAL the same way. What it costs a
            // promotion, and why it stays: ARCHIVE_GET in pgbackrest.ts.
            recovery_conf: { restore_command: restoreCommand(s) },
            // A member whose rewind fails, or whose timeline diverged, is cloned again
            // instead of waiting for an operator: the leader has the data.
            remove_data_directory_on_rewind_failure: true,
            remove_data_directory_on_diverged_timelines: true,
        },
        // Containers have no /dev/watchdog; fencing rests on the TTL and failsafe mode.
        watchdog: { mode: "off" },
        ...(tags ? { tags } : {}),
    };
}

export function renderPatroniConf(spec: PatroniSpec): string {
    return renderYaml(`Patroni member ${spec.member.node}, rendered by obcms-database`, patroniConf(spec));
}
