// The config changes a reviewer meets in pull requests, each with what its
// preview plans for the production stack and what that does to the running
// cluster. test/unit/change-impact.test.ts proves every plan against the
// program; README.md's table is rendered from this list (npm run docs).
import type { PlannedStep, Step } from "../../harness/preview";

export interface ChangeImpact {
    /** The change as a reviewer sees it in the stack file's diff. */
    readonly change: string;
    /** Config on both sides of the change, as `pulumi config set` would leave it. */
    readonly before: Record<string, unknown>;
    readonly after: Record<string, unknown>;
    /** Config keys set with `--secret`. */
    readonly secretKeys?: readonly string[];
    /** Resource names per planned step, sorted; steps left out plan nothing. */
    readonly plan: Partial<Record<Step, readonly string[]>>;
    /** What the running cluster goes through while `pulumi up` applies the plan. */
    readonly effect: string;
}

const PG_NODES = ["primary-container", "replica-1-container", "replica-2-container", "replica-3-container"];
const EXPORTERS = [
    "monitoring-pgbouncer-exporter",
    "monitoring-primary-exporter",
    ...[1, 2, 3].map((k) => `monitoring-replica-${k}-exporter`),
];
const ETCD_CONTAINERS = [1, 2, 3].map((k) => `etcd-${k}-container`);
const ETCD_MEMBER = (k: number) => [`etcd-${k}-container`, `etcd-${k}-data`];
const REPLICA_RESOURCES = (k: number) =>
    [`monitoring-replica-${k}-exporter`, `replica-${k}-container`, `replica-${k}-data`, `replica-${k}-slot`].concat(
        ["cert", "csr", "key"].map((part) => `tls-replica-${k}-${part}`),
    );
const POOL_RESIZE =
    "PgBouncer is replaced: it lets its server connections finish, then clients reconnect (writes paused 1.5–2.2 s, 2–5 failed, when `pulumi up` replaced it under load); " +
    "alert thresholds and dashboards follow the new size; PostgreSQL untouched";
/** Measured by the reliability suite: `pulumi up` replacing all four nodes of production under writes. */
const NODES_REPLACED =
    "each stops cleanly and starts with no crash recovery (writes paused 1.3–3.7 s, 0–1 failed, when all four were replaced under load)";
const SCALING =
    "no other PostgreSQL server restarts (max_wal_senders and max_replication_slots are sized for 10 replicas), PgBouncer untouched " +
    "(longest write gap 0.5–1.2 s, 0 failed, in the 3 → 1 → 3 test); " +
    "the backup container is replaced with the new node list once a running backup has finished (600 s grace)";

export const CHANGE_IMPACTS: readonly ChangeImpact[] = [
    {
        change: "`defaultPoolSize` 50 → 40",
        before: {},
        after: { defaultPoolSize: 40 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus", "pgbouncer-container"] },
        effect: POOL_RESIZE,
    },
    {
        change: "`maxClientConn` 2000 → 1500",
        before: {},
        after: { maxClientConn: 1500 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus", "pgbouncer-container"] },
        effect: POOL_RESIZE,
    },
    {
        change: "`reservePoolSize` 5 → 3",
        before: {},
        after: { reservePoolSize: 3 },
        plan: { replace: ["pgbouncer-container"] },
        effect: "PgBouncer restarts: clients reconnect; PostgreSQL untouched",
    },
    {
        change: "`queryWaitTimeout` 120 → 60",
        before: {},
        after: { queryWaitTimeout: 60 },
        plan: { replace: ["pgbouncer-container"] },
        effect: "PgBouncer restarts: clients reconnect; PostgreSQL untouched",
    },
    {
        change: "`replicaCount` 3 → 4",
        before: {},
        after: { replicaCount: 4 },
        plan: {
            replace: ["backup-container", "backup-last-label", "monitoring-prometheus"],
            create: REPLICA_RESOURCES(4),
        },
        effect: `replica 4's slot is created first, then it clones the primary onto its new volume; ${SCALING}`,
    },
    {
        change: "`replicaCount` 3 → 2",
        before: {},
        after: { replicaCount: 2 },
        plan: {
            replace: ["backup-container", "backup-last-label", "monitoring-prometheus"],
            delete: REPLICA_RESOURCES(3),
        },
        effect: `replica 3 stops, its volume is deleted and its slot dropped on the primary; ${SCALING}`,
    },
    {
        change: "`maxConnections` 100 → 150 (a PostgreSQL setting)",
        before: {},
        after: { maxConnections: 150 },
        plan: { replace: ["monitoring-grafana", "monitoring-prometheus", ...PG_NODES] },
        effect: `every PostgreSQL node restarts once with the new postgresql.conf: ${NODES_REPLACED}; the connections alert and dashboard follow; PgBouncer untouched`,
    },
    {
        change: "`postgresMemoryMb` 2048 → 4096 (PostgreSQL's memory)",
        before: {},
        after: { postgresMemoryMb: 4096 },
        plan: { replace: PG_NODES },
        effect: `every PostgreSQL node restarts once with the new memory limit and the parameters sized for it: ${NODES_REPLACED}; PgBouncer untouched`,
    },
    {
        change: "`postgresCpus` 2 → 1",
        before: {},
        after: { postgresCpus: 1 },
        plan: { replace: PG_NODES },
        effect: `every PostgreSQL node restarts once with the new CPU limit and worker settings (Docker cannot change \`cpus\` in place): ${NODES_REPLACED}; PgBouncer untouched`,
    },
    {
        change: "`auditLog` `ddl, role` → `ddl, role, write`",
        before: {},
        after: { auditLog: "ddl, role, write" },
        plan: { replace: PG_NODES },
        effect: `every PostgreSQL node restarts once, because config files reach a container as uploads, which Docker cannot change in place, even for a setting PostgreSQL could reload: ${NODES_REPLACED}`,
    },
    {
        change: "`appPassword` rotated (`pulumi config set --secret`)",
        before: { appPassword: "First-Application-Password-0001" },
        after: { appPassword: "Second-Application-Password-002" },
        secretKeys: ["appPassword"],
        plan: { replace: ["pgbouncer-container", "primary-container"] },
        effect:
            "the primary restarts and applies the new verifier on start, PgBouncer restarts with the new userlist; " +
            "not measured as one fault (PgBouncer replaced alone: 1.5–2.2 s; the primary restarted alone: 2.1–3.1 s); replicas untouched",
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
                ...PG_NODES,
            ],
        },
        effect:
            "every container restarts on the new image, one at a time in dependency order; data stays on the volumes; " +
            "no etcd member depends on another, so they restart side by side and the store is unavailable for those seconds",
    },
    {
        change: "`etcdMembers` 3 → 5",
        before: {},
        after: { etcdMembers: 5 },
        plan: {
            replace: [...[1, 2, 3].flatMap(ETCD_MEMBER), "monitoring-prometheus"],
            create: [
                ...ETCD_MEMBER(4),
                ...ETCD_MEMBER(5),
                ...[4, 5].flatMap((k) => ["cert", "csr", "key"].map((part) => `tls-etcd-${k}-${part}`)),
            ],
        },
        effect: "a new, empty etcd cluster of five members starts on fresh volumes (etcd keeps its membership in its data); nothing reads the store yet",
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
