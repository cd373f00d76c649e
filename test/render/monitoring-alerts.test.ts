// The alert rules as rendered for the stacks: every rule's exact expression,
// thresholds that move with the configured sizes, and the rules file as YAML.
// (promtool checks and unit-tests the same rules in monitoring-promtool.test.ts.)
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ALERT_GROUP, alertRules, renderAlertRules } from "../../components/render/monitoring/alert-rules";
import { defaultMonitoring, withAlerts } from "../support/monitoring-fixtures";
import { production, staging } from "./fixtures";

const REPLICA_OF =
    'label_replace(pg_stat_replication_pg_wal_lsn_diff{job="postgres", role="primary"}, "instance", "$1", "application_name", "(.+)")';

describe("alert rules", () => {
    it("are exactly these for the staging stack", () => {
        expect(alertRules(staging, defaultMonitoring).map((r) => [r.alert, r.severity, r.forSeconds, r.expr])).toEqual([
            ["ExporterDown", "warning", 60, 'up{job!="etcd"} == 0'],
            ["PostgreSQLDown", "critical", 60, 'pg_up{job="postgres"} == 0'],
            ["PgBouncerDown", "critical", 60, 'pgbouncer_up{job="pgbouncer"} == 0'],
            [
                "PostgreSQLReplicaNotStreaming",
                "critical",
                60,
                'up{job="postgres", role="replica"} unless on (instance) ' +
                    'label_replace(pg_stat_replication_pg_wal_lsn_diff{job="postgres", role="primary", state="streaming"}, "instance", "$1", "application_name", "(.+)")',
            ],
            ["PostgreSQLReplicationLagBytes", "warning", 60, `max by (instance) (${REPLICA_OF}) > 67108864`],
            [
                "PostgreSQLReplicationLagSeconds",
                "warning",
                60,
                'max by (instance) (pg_replication_lag_seconds{job="postgres", role="replica"}) > 30',
            ],
            [
                "PostgreSQLReplicationSlotInactive",
                "warning",
                60,
                'max by (instance, slot_name) (pg_replication_slot_slot_is_active{job="postgres", role="primary"}) == 0',
            ],
            [
                "PostgreSQLReplicationSlotWalNearLimit",
                "critical",
                60,
                'max by (instance, slot_name) (pg_replication_slots_pg_wal_lsn_diff{job="postgres", role="primary"}) >= 1717986918',
            ],
            [
                "PostgreSQLConnectionsNearLimit",
                "warning",
                60,
                'sum by (instance, role) (pg_stat_database_numbackends{job="postgres"}) >= 80',
            ],
            [
                "PgBouncerClientsWaiting",
                "warning",
                60,
                'max by (instance, database, user) (pgbouncer_pools_client_maxwait_seconds{job="pgbouncer", database!="pgbouncer"}) > 5',
            ],
            [
                "PgBouncerPoolSaturated",
                "warning",
                60,
                'max by (instance, database, user) (pgbouncer_pools_server_active_connections{job="pgbouncer", database!="pgbouncer"}) >= 22.5',
            ],
            ["PgBouncerClientConnectionsNearLimit", "warning", 60, 'max by (instance) (pgbouncer_used_clients{job="pgbouncer"}) >= 800'],
            ["EtcdMemberDown", "warning", 60, 'up{job="etcd"} == 0'],
            ["EtcdNoLeader", "critical", 60, 'etcd_server_has_leader{job="etcd"} == 0'],
        ]);
    });

    it("move with the cluster's sizes: production's larger pool and client limit", () => {
        const threshold = (name: string) =>
            alertRules(production, defaultMonitoring)
                .find((r) => r.alert === name)!
                .expr.split(" ")
                .at(-1);
        expect(threshold("PgBouncerPoolSaturated")).toBe("45");
        expect(threshold("PgBouncerClientConnectionsNearLimit")).toBe("1600");
    });

    it("move with max_connections and max_slot_wal_keep_size, and with the configured shares", () => {
        const resized = { ...staging, maxConnections: 300, maxSlotWalKeepSizeMb: 4096 };
        const rules = alertRules(resized, withAlerts({ connectionsPercent: 90, slotWalPercent: 50, replicationLagMb: 128, forSeconds: 0 }));
        const threshold = (name: string) =>
            rules
                .find((r) => r.alert === name)!
                .expr.split(" ")
                .at(-1);
        expect(threshold("PostgreSQLConnectionsNearLimit")).toBe("270");
        expect(threshold("PostgreSQLReplicationSlotWalNearLimit")).toBe(String(2048 * 1024 * 1024));
        expect(threshold("PostgreSQLReplicationLagBytes")).toBe(String(128 * 1024 * 1024));
        expect(new Set(rules.map((r) => r.forSeconds))).toEqual(new Set([0]));
    });

    it("describe the threshold in the configured units", () => {
        const rules = Object.fromEntries(alertRules(staging, defaultMonitoring).map((r) => [r.alert, r]));
        expect(rules.PostgreSQLReplicationSlotWalNearLimit.description).toBe(
            "{{ $labels.slot_name }} retains at least 80% of maxSlotWalKeepSizeMb (1638.4 MB of 2048 MB); " +
                "at the limit the slot is invalidated and its replica must be cloned again.",
        );
        expect(rules.PgBouncerPoolSaturated.description).toBe(
            "At least 90% of defaultPoolSize (22.5 of 25) server connections of {{ $labels.database }}/{{ $labels.user }} are busy.",
        );
        expect(rules.PostgreSQLReplicationLagBytes.summary).toBe("Replica {{ $labels.instance }} is more than 64 MB of WAL behind");
    });

    it("use no template but {{ $labels.<name> }} in annotations", () => {
        for (const rule of alertRules(production, defaultMonitoring)) {
            const templates = `${rule.summary} ${rule.description}`.match(/\{\{[^}]*\}\}/g) ?? [];
            expect(
                templates.filter((t) => !/^\{\{ \$labels\.[a-z_]+ \}\}$/.test(t)),
                rule.alert,
            ).toEqual([]);
        }
    });
});

describe("the rules file", () => {
    it("holds one group with every rule, its `for`, severity and annotations", () => {
        const rules = alertRules(staging, defaultMonitoring);
        const file = parse(renderAlertRules(rules));
        expect(file.groups.map((g: { name: string }) => g.name)).toEqual([ALERT_GROUP]);
        expect(file.groups[0].rules).toEqual(
            rules.map((r) => ({
                alert: r.alert,
                expr: r.expr,
                for: "60s",
                labels: { severity: r.severity },
                annotations: { summary: r.summary, description: r.description },
            })),
        );
    });

    it("renders equal settings to equal bytes", () => {
        expect(renderAlertRules(alertRules({ ...production }, withAlerts({})))).toBe(
            renderAlertRules(alertRules(production, defaultMonitoring)),
        );
    });
});
