// The config changes a reviewer meets in pull requests, each with what its
// preview plans for the production stack and what that does to the running
// cluster. test/unit/change-impact.test.ts proves every plan against the
// program; README.md's table is rendered from this list (npm run docs).
import { HANDOVER_ATTEMPTS } from "../../components/render/patroni/leader-commands";
import { MAX_POSTGRES_CPUS } from "../../components/sizing";
import type { PlannedStep, Step } from "../../harness/preview";

export interface ChangeImpact {
    /** The change as a reviewer sees it in the stack file's diff. */
    readonly change: string;
    /** Config on both sides of the change, as `pulumi config set` would leave it. */
    readonly before: Record<string, unknown>;
    readonly after: Record<string, unknown>;
    /** Config keys set with `--secret`. */
    readonly secretKeys?: readonly string[];
    /**
     * Resources replaced though no input changed: certificates the tls
     * provider renews within their early-renewal window, as
     * `pulumi up --replace` would.
     */
    readonly renewed?: readonly string[];
    /** Resource names per planned step, sorted; steps left out plan nothing. */
    readonly plan: Partial<Record<Step, readonly string[]>>;
    /** What the running cluster goes through while `pulumi up` applies the plan. */
    readonly effect: string;
}

const MEMBERS = ["primary-container", "replica-1-container", "replica-2-container", "replica-3-container"];
/** Each member's handover command, which reruns before its container changes. */
const HANDOVERS = ["primary-handover", "replica-1-handover", "replica-2-handover", "replica-3-handover"];
const EXPORTERS = [
    "monitoring-pgbouncer-exporter",
    "monitoring-primary-exporter",
    ...[1, 2, 3].map((k) => `monitoring-replica-${k}-exporter`),
];
const ETCD_CONTAINERS = [1, 2, 3].map((k) => `etcd-${k}-container`);
/** Each etcd member's command that writes its certificate and key to its volume. */
const ETCD_CERTIFICATES = [1, 2, 3].map((k) => `etcd-${k}-certificate`);
const ETCD_MEMBER = (k: number) => [`etcd-${k}-container`, `etcd-${k}-data`];
/** Each member's command that writes its certificate and key to its data volume and has Patroni and pgBackRest reload. */
const MEMBER_CERTIFICATES = ["primary-certificate", "replica-1-certificate", "replica-2-certificate", "replica-3-certificate"];
/** Member k + 1 (`replica-k`): its container, handover and certificate commands, volume, exporter and certificate. */
const MEMBER_RESOURCES = (k: number) =>
    [
        `monitoring-replica-${k}-exporter`,
        `replica-${k}-certificate`,
        `replica-${k}-container`,
        `replica-${k}-data`,
        `replica-${k}-handover`,
    ].concat(["cert", "csr", "key"].map((part) => `tls-replica-${k}-${part}`));
/** The commands of ClusterConfig, which act on the leader. */
const DYNAMIC_CONFIG = "cluster-config-dynamic-config";
const ROLES_SQL = "cluster-config-roles";
const LEADER_PLACEMENT = "cluster-config-leader-placement";

/** PgBouncer's command that writes the pool's sizes, waits and client limit to its volume and RELOADs it. */
const PGBOUNCER_SETTINGS = "pgbouncer-settings-reload";
const PGBOUNCER_CREDENTIALS = "pgbouncer-credentials-reload";
/** PgBouncer's command that writes its certificate and key to its volume and RELOADs it. */
const PGBOUNCER_CERTIFICATE = "pgbouncer-certificate-reload";
/** The backup container's command that writes its certificate and key to their volume and signals its TLS server. */
const BACKUP_CERTIFICATE = "backup-certificate";
/** The server certificates, issued together at the stack's first `pulumi up`: a year on, they come due together. */
const SERVER_CERTIFICATES = ["backup", "etcd-1", "etcd-2", "etcd-3", "pgbouncer", "primary", "replica-1", "replica-2", "replica-3"].map(
    (node) => `tls-${node}-cert`,
);
const POOL_RELOADED =
    "PgBouncer's settings command writes the new value to the file on PgBouncer's volume and PgBouncer takes it by RELOAD: " +
    "its container and every client connection stay";
/** What replacing the members does, whatever changed in them (memberContainer's chain and handover). */
const MEMBERS_REPLACED =
    "they are replaced one at a time in member order (pg-1 first), each healthy again (Patroni's readiness) before the next stops, " +
    "so no two are down together; before one that leads stops, its handover command hands the lead to the member replaced just " +
    "before it (pg-1's to the last member) with `cluster.sh switchover`, PgBouncer holding its clients (writes pause for seconds, none fails); " +
    "each stops with SIGTERM, then starts on its volume and rejoins";
/** Seeds Patroni's dynamic configuration into etcd: it writes only where no configuration is stored yet. */
const SEED = "etcd-patroni-config-seed";
const SEED_RERUNS = "the seed command runs again and leaves the configuration in etcd as it is";
/** What the dynamic-configuration command does after a cluster-wide parameter changed. */
const PENDING_RESTARTS =
    "then the dynamic-configuration command writes it to etcd on the leader, waits until every member has loaded it, " +
    "and restarts the members on which it waits for a restart, one at a time, each running it before the next";
/** What the dynamic-configuration command does with changed parameters PostgreSQL reloads. */
const reloaded = (parameters: string) =>
    `the dynamic-configuration command writes ${parameters} to etcd on the leader, Patroni reloads every member's PostgreSQL, ` +
    "and `pulumi up` returns once every member has loaded them";
const SCALING =
    "no running member restarts (max_wal_senders and max_replication_slots are sized for 10 replicas); " +
    "PgBouncer and its clients are untouched: the router lists every member the stack may have, and takes one in or out as its name resolves; " +
    "the ClusterConfig commands run again, as the member list they search for the leader changed: the leader placement hands the lead " +
    "to a declared member first if a removed one holds it (`cluster.sh switchover`: PgBouncer holds its clients, writes pause for seconds), " +
    "before the update deletes any, " +
    "and the others change nothing; " +
    "the backup container is replaced with the new node list once a running backup has finished (600 s grace)";

export const CHANGE_IMPACTS: readonly ChangeImpact[] = [
    {
        change: "`defaultPoolSize` 50 → 40",
        before: {},
        after: { defaultPoolSize: 40 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus"], update: [PGBOUNCER_SETTINGS] },
        effect: `${POOL_RELOADED}; alert thresholds and dashboards follow the new size; PostgreSQL untouched`,
    },
    {
        change: "`maxClientConn` 2000 → 1500",
        before: {},
        after: { maxClientConn: 1500 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus"], update: [PGBOUNCER_SETTINGS] },
        effect:
            `${POOL_RELOADED} (a lowered limit closes none: PgBouncer refuses new clients until fewer are connected); ` +
            "the container's open-files limit and the router's connection limit are sized for the largest limit allowed and stay; " +
            "alert thresholds and dashboards follow the new limit; PostgreSQL untouched",
    },
    {
        change: "`reservePoolSize` 5 → 3",
        before: {},
        after: { reservePoolSize: 3 },
        plan: { update: [PGBOUNCER_SETTINGS] },
        effect: `${POOL_RELOADED}; PostgreSQL untouched`,
    },
    {
        change: "`queryWaitTimeout` 120 → 60",
        before: {},
        after: { queryWaitTimeout: 60 },
        plan: { update: [PGBOUNCER_SETTINGS] },
        effect: `${POOL_RELOADED}; PostgreSQL untouched`,
    },
    {
        change: "`replicaCount` 3 → 4",
        before: {},
        after: { replicaCount: 4 },
        plan: {
            replace: ["backup-container", "backup-last-label", "monitoring-prometheus"],
            update: [DYNAMIC_CONFIG, LEADER_PLACEMENT, ROLES_SQL],
            create: MEMBER_RESOURCES(4),
        },
        effect: `member pg-5 starts on its new volume, clones the leader and streams through the slot Patroni creates for it; ${SCALING}`,
    },
    {
        change: "`replicaCount` 3 → 2",
        before: {},
        after: { replicaCount: 2 },
        plan: {
            replace: ["backup-container", "backup-last-label", "monitoring-prometheus"],
            update: [DYNAMIC_CONFIG, LEADER_PLACEMENT, ROLES_SQL],
            delete: MEMBER_RESOURCES(3),
        },
        effect:
            "member pg-4 stops and its volume is deleted; Patroni drops its slot " +
            `on the leader once it has been gone for member_slots_ttl (30 min); ${SCALING}`,
    },
    {
        change: "`maxConnections` 100 → 150 (a cluster-wide parameter)",
        before: {},
        after: { maxConnections: 150 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus"], update: [DYNAMIC_CONFIG, SEED] },
        effect:
            "no member is replaced: max_connections and work_mem (sized from it) are in Patroni's dynamic configuration, in no file; " +
            `${PENDING_RESTARTS}: the others first; then the leader hands the lead to one of them (\`cluster.sh switchover\`: PgBouncer holds its clients, ` +
            "writes pause for seconds and none fails) and restarts as a replica: Patroni's demotion usually is that restart; " +
            "`pulumi up` returns once every member runs it; " +
            `${SEED_RERUNS}; the connections alert and dashboard follow; PgBouncer untouched`,
    },
    {
        change: "`postgresMemoryMb` 2048 → 4096 (PostgreSQL's memory)",
        before: {},
        after: { postgresMemoryMb: 4096 },
        plan: { replace: MEMBERS, update: [DYNAMIC_CONFIG, SEED, ...HANDOVERS] },
        effect:
            `every member is replaced with the new memory limit and shared_buffers (postgresql.conf, read only at start): ${MEMBERS_REPLACED}; ` +
            `${reloaded("the memory parameters PostgreSQL reloads (work_mem, effective_cache_size, maintenance_work_mem)")}; ${SEED_RERUNS}; PgBouncer untouched`,
    },
    {
        change: "`postgresCpus` 2 → 1",
        before: {},
        after: { postgresCpus: 1 },
        plan: { replace: MEMBERS, update: [DYNAMIC_CONFIG, SEED, ...HANDOVERS] },
        effect:
            `every member is replaced with the new CPU limit (Docker cannot change \`cpus\` in place): ${MEMBERS_REPLACED}; ` +
            `${reloaded("the parallel-worker settings sized from the CPUs (max_parallel_workers, max_parallel_workers_per_gather, max_parallel_maintenance_workers)")}; ` +
            `max_worker_processes, a hot-standby minimum, is sized for the most CPUs allowed (${MAX_POSTGRES_CPUS}) and does not change, so no member restarts again; ` +
            `${SEED_RERUNS}; PgBouncer untouched`,
    },
    {
        change: "`auditLog` `ddl, role` → `ddl, role, write`",
        before: {},
        after: { auditLog: "ddl, role, write" },
        plan: { update: [DYNAMIC_CONFIG, SEED] },
        effect: `no container is replaced and no member restarts: ${reloaded("pgaudit.log")}; ${SEED_RERUNS}`,
    },
    {
        change: "`postgresParameters` gains `log_min_duration_statement: 250ms` (PostgreSQL reloads it)",
        before: {},
        after: { postgresParameters: { log_min_duration_statement: "250ms" } },
        plan: { update: [DYNAMIC_CONFIG, SEED] },
        effect:
            `no container is replaced and no member restarts: ${reloaded("it")}; removed again, the command deletes it from etcd ` +
            `(a merge would keep it) and every member is back on PostgreSQL's default; ${SEED_RERUNS}`,
    },
    {
        change: "`postgresParameters` gains `max_files_per_process: 2000` (PostgreSQL reads it only at start)",
        before: {},
        after: { postgresParameters: { max_files_per_process: 2000 } },
        plan: { replace: MEMBERS, update: [...HANDOVERS] },
        effect: `every member is replaced with it in its postgresql.conf: ${MEMBERS_REPLACED}; Patroni's dynamic configuration and PgBouncer untouched`,
    },
    {
        change: "`appPassword` rotated (`pulumi config set --secret`)",
        before: { appPassword: "First-Application-Password-0001" },
        after: { appPassword: "Second-Application-Password-002" },
        secretKeys: ["appPassword"],
        plan: { update: [ROLES_SQL, PGBOUNCER_CREDENTIALS] },
        effect:
            "no container is replaced and nothing restarts: PgBouncer's credentials command pauses its pools, sets the new verifier on the leader, " +
            "waits for the streaming replicas to replay it, reloads PgBouncer's userlist, logs in once with the new password (PgBouncer logs in to " +
            "PostgreSQL with the keys of the last such login), and resumes: open sessions stay, writes wait for that moment, none fails; " +
            "the old password is refused from then on; the roles SQL runs again and changes nothing (it gives this role a verifier only when creating it)",
    },
    {
        change: "`monitoringPassword` rotated (`pulumi config set --secret`)",
        before: { monitoringPassword: "First-Monitoring-Password-00001" },
        after: { monitoringPassword: "Second-Monitoring-Password-0002" },
        secretKeys: ["monitoringPassword"],
        plan: {
            replace: [
                "monitoring-pgbouncer-exporter",
                "monitoring-primary-exporter",
                "monitoring-replica-1-exporter",
                "monitoring-replica-2-exporter",
                "monitoring-replica-3-exporter",
            ],
            update: [ROLES_SQL, PGBOUNCER_CREDENTIALS],
        },
        effect:
            "the roles SQL sets the new verifier on the leader; PgBouncer's credentials command finds the application role's verifier " +
            "in place: it reloads the userlist (the stats user's entry) and logs in once, and nothing pauses, no client waits; the exporters, whose files " +
            "hold the password, are replaced (a scrape or two missed); PostgreSQL and PgBouncer restart nothing",
    },
    {
        change: "`synchronousReplicas` 1 → 0 (asynchronous)",
        before: {},
        after: { synchronousReplicas: 0 },
        plan: { update: [DYNAMIC_CONFIG, SEED] },
        effect:
            "no container is replaced: the dynamic-configuration command turns quorum commit off through Patroni on the leader, without a restart; " +
            `${SEED_RERUNS}; from then on a failover may lose the commits no replica had received`,
    },
    {
        change: "`delayedReplicaMinutes` 0 → 60 (a delayed replica added)",
        before: {},
        after: { delayedReplicaMinutes: 60 },
        plan: {
            replace: ["monitoring-prometheus"],
            update: [DYNAMIC_CONFIG],
            create: [
                "delayed-replica-certificate",
                "delayed-replica-container",
                "delayed-replica-data",
                "delayed-replica-handover",
                "tls-delayed-replica-cert",
                "tls-delayed-replica-csr",
                "tls-delayed-replica-key",
            ],
        },
        effect:
            "member pg-delayed starts on its new volume, restores the newest backup from the repository (or clones the leader) and streams " +
            "through the slot Patroni creates for it, replaying each commit 60 minutes late; no running member restarts (max_wal_senders and " +
            "max_replication_slots are sized for 10 replicas, and it counts among them); PgBouncer and its clients are untouched: the router " +
            "never lists it; Prometheus scrapes its Patroni, and the replay-lag alerts leave it out; the dynamic-configuration command runs " +
            "again, and now also waits for pg-delayed to load the parameters",
    },
    {
        change: "`restoreDrillEvery` 1w → 1d",
        before: {},
        after: { restoreDrillEvery: "1d" },
        plan: { replace: ["backup-container", "backup-last-label", "monitoring-grafana", "monitoring-prometheus"] },
        effect:
            "the backup container is replaced with the new drill schedule (a running backup finishes first, within its stop grace; a running drill is cut off); " +
            "the drill record on its volume stays, so the next drill is due a day after the last one; Prometheus is replaced with " +
            "RestoreDrillTooOld's new bound (its data volume stays) and Grafana with the dashboard's; PostgreSQL and PgBouncer untouched",
    },
    {
        change: "`failoverTtl` 20 → 30",
        before: {},
        after: { failoverTtl: 30 },
        plan: { replace: ["monitoring-prometheus"], update: [DYNAMIC_CONFIG, SEED] },
        effect:
            "no member is replaced: the dynamic-configuration command writes the new ttl to etcd through Patroni, which every member applies without a restart; " +
            `${SEED_RERUNS}; a killed leader is then replaced after up to 30 s, as the no-leader alert's text says`,
    },
    {
        change: "the server certificates renewed (a `pulumi up` within 30 days of their expiry, a year after they were issued)",
        before: {},
        after: {},
        renewed: SERVER_CERTIFICATES,
        plan: {
            replace: SERVER_CERTIFICATES,
            update: [BACKUP_CERTIFICATE, ...ETCD_CERTIFICATES, ...MEMBER_CERTIFICATES, PGBOUNCER_CERTIFICATE],
        },
        effect:
            "the tls provider issues each a new certificate, same key and names; each service's certificate command writes the pair to " +
            "the service's volume, has the running service take it, and fails unless new handshakes show the new certificate; no container " +
            "is replaced or restarted, every client connection stays and open sessions keep the TLS they negotiated. PgBouncer takes it by " +
            "RELOAD; the backup container's pgBackRest TLS server by SIGHUP, opening a new listener while connections already open keep " +
            "their processes (a running backup stays); etcd reads it at every handshake; on each PostgreSQL member (on its data volume) " +
            "Patroni takes SIGHUP at its next cycle (within `failoverLoopWait`): PostgreSQL reloads, and the REST API reopens its " +
            "listener, where a health check arriving in that instant fails once (HAProxy marks a server down after two); the member's " +
            "pgBackRest TLS server takes SIGHUP; handshakes on PostgreSQL's, the REST API's and pgBackRest's ports must show the new one",
    },
    {
        change: "`image` `obcms-database:17.1` → `obcms-database:17.2`",
        before: { image: "obcms-database:17.1" },
        after: { image: "obcms-database:17.2" },
        plan: {
            replace: [
                "backup-container",
                "backup-last-label",
                ...ETCD_CONTAINERS,
                ...EXPORTERS,
                "monitoring-prometheus",
                "pgbouncer-container",
                ...MEMBERS,
            ],
            update: [
                BACKUP_CERTIFICATE,
                ...ETCD_CERTIFICATES,
                ...MEMBER_CERTIFICATES,
                PGBOUNCER_CERTIFICATE,
                PGBOUNCER_CREDENTIALS,
                PGBOUNCER_SETTINGS,
                ...HANDOVERS,
            ],
        },
        effect:
            "every container restarts on the new image; data stays on the volumes; " +
            "PgBouncer's settings, credentials and certificate commands and the backup container's, etcd's and the members' certificate commands, which write their files with the image, run again and change nothing (the credentials command finds the application role's verifier in place and pauses nothing); " +
            `the members: ${MEMBERS_REPLACED}; ` +
            "no etcd member depends on another, so they restart side by side and the store is unavailable for those seconds",
    },
    {
        change: "`etcdMembers` 3 → 5",
        before: {},
        after: { etcdMembers: 5 },
        plan: {
            replace: [...[1, 2, 3].flatMap(ETCD_MEMBER), "monitoring-prometheus", ...MEMBERS],
            update: [...ETCD_CERTIFICATES, SEED, ...HANDOVERS],
            create: [
                ...ETCD_MEMBER(4),
                ...ETCD_MEMBER(5),
                "etcd-4-certificate",
                "etcd-5-certificate",
                ...[4, 5].flatMap((k) => ["cert", "csr", "key"].map((part) => `tls-etcd-${k}-${part}`)),
            ],
        },
        effect:
            "a new, empty etcd cluster of five members starts on fresh volumes (etcd keeps its membership in its data), each member's " +
            "certificate command writing its certificate there first; the seed command " +
            "writes the dynamic configuration into it, but the leader key and the member list start empty, and Patroni registers the running " +
            "cluster in it again (failover.test.ts, under writes); every member is replaced, since its patroni.yml lists the etcd members: " +
            `${MEMBERS_REPLACED} (with the store new and empty no switchover can happen: each handover gives up after ${HANDOVER_ATTEMPTS} ` +
            "tries, 2 s apart, and Patroni's own graceful stop hands the lead over)",
    },
];

const STEP_ORDER: readonly Step[] = ["replace", "update", "create", "delete"];
const STEP_HEADINGS: Record<Step, string> = { replace: "replaced", update: "updated in place", create: "created", delete: "deleted" };

/** The planned steps of a case, in the shape `plan()` returns. */
export function expectedSteps(impact: ChangeImpact): PlannedStep[] {
    return STEP_ORDER.flatMap((step) => (impact.plan[step] ?? []).map((name) => ({ name, step }))).sort((a, b) =>
        a.name.localeCompare(b.name),
    );
}

function cell(names: readonly string[] | undefined): string {
    return names && names.length > 0 ? names.map((n) => `\`${n}\``).join(", ") : "—";
}

/** README's table "What a change does to a running cluster"; a step no change plans gets no column. */
export function renderChangeImpactTable(impacts: readonly ChangeImpact[]): string {
    const columns = STEP_ORDER.filter((step) => impacts.some((i) => (i.plan[step] ?? []).length > 0));
    return [
        `| change | ${columns.map((step) => STEP_HEADINGS[step]).join(" | ")} | what the running cluster goes through |`,
        `|---|${columns.map(() => "---|").join("")}---|`,
        ...impacts.map((i) => `| ${i.change} | ${columns.map((step) => cell(i.plan[step])).join(" | ")} | ${i.effect} |`),
        "",
    ].join("\n");
}
