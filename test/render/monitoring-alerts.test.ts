// The alert rules as rendered for the stacks: every rule's exact expression,
// roles read from Patroni's series only, thresholds that move with the
// configured sizes and the failover settings, and the rules file as YAML.
// (promtool checks and unit-tests the same rules in monitoring-promtool.test.ts.)
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
    ALERT_GROUP,
    alertRules,
    FAILOVER_NOTICE_SECONDS,
    MAINTENANCE_ALERT_SECONDS,
    renderAlertRules,
    slotMemberPattern,
} from "../../components/render/monitoring/alert-rules";
import { clusterTopology } from "../../components/topology";
import { defaultMonitoring, withAlerts } from "../support/monitoring-fixtures";
import { production, staging } from "./fixtures";

const LEADER = 'patroni_primary{job="patroni"} == 1';
const REPLICA_OF = `label_replace(pg_stat_replication_pg_wal_lsn_diff{job="postgres"} and on (instance) ${LEADER}, "instance", "$1", "application_name", "(.+)")`;
const SLOT_OF = `label_replace(pg_replication_slots_pg_wal_lsn_diff{job="postgres"} and on (instance) ${LEADER}, "instance", "pg-$1", "slot_name", "pg_(.+)")`;

describe("alert rules", () => {
    it("are exactly these for the staging stack", () => {
        expect(alertRules(staging, defaultMonitoring).map((r) => [r.alert, r.severity, r.forSeconds, r.expr])).toEqual([
            ["ExporterDown", "warning", 60, 'up{job!="etcd"} == 0'],
            ["PostgreSQLDown", "critical", 60, 'pg_up{job="postgres"} == 0'],
            ["PgBouncerDown", "critical", 60, 'pgbouncer_up{job="pgbouncer"} == 0'],
            ["PatroniNoLeader", "critical", 60, `absent(${LEADER})`],
            ["PatroniMultipleLeaders", "critical", 60, `count(${LEADER}) > 1`],
            ["PatroniFailover", "warning", 60, 'changes(max(patroni_postgres_timeline{job="patroni"} > 0)[660s:]) > 0'],
            ["PatroniFailsafeActive", "critical", 60, 'max(patroni_failsafe_mode_is_active{job="patroni"}) == 1'],
            ["PatroniMaintenanceMode", "warning", 1800, 'max(patroni_is_paused{job="patroni"}) == 1'],
            [
                "PostgreSQLMemberNotStreaming",
                "critical",
                60,
                `up{job="patroni"} unless on (instance) (${LEADER} or patroni_postgres_streaming{job="patroni"} == 1)`,
            ],
            ["PostgreSQLMemberPastFailoverLag", "warning", 60, `max by (instance) (${SLOT_OF}) > 1048576`],
            ["PostgreSQLReplicationLagBytes", "warning", 60, `max by (instance) (${REPLICA_OF}) > 67108864`],
            [
                "PostgreSQLReplicationLagSeconds",
                "warning",
                60,
                'max by (instance) (pg_replication_lag_seconds{job="postgres"} and on (instance) patroni_replica{job="patroni"} == 1) > 30',
            ],
            [
                "PostgreSQLReplicationSlotInactive",
                "warning",
                60,
                `max by (instance, slot_name) (pg_replication_slot_slot_is_active{job="postgres"} and on (instance) ${LEADER}) == 0`,
            ],
            [
                "PostgreSQLReplicationSlotWalNearLimit",
                "critical",
                60,
                `max by (instance, slot_name) (pg_replication_slots_pg_wal_lsn_diff{job="postgres"} and on (instance) ${LEADER}) >= 1717986918`,
            ],
            ["PostgreSQLConnectionsNearLimit", "warning", 60, 'sum by (instance) (pg_stat_database_numbackends{job="postgres"}) >= 80'],
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
            ["RouterNoLeader", "critical", 60, 'haproxy_backend_active_servers{job="haproxy", proxy="postgres_rw"} == 0'],
            [
                "RouterServerDown",
                "warning",
                60,
                '(label_replace(haproxy_server_status{job="haproxy", proxy="postgres_rw", state="DOWN"} == 1, "instance", "$1", "server", "(.+)") ' +
                    `and on (instance) ${LEADER}) or ` +
                    '(label_replace(haproxy_server_status{job="haproxy", proxy="postgres_ro", state="DOWN"} == 1, "instance", "$1", "server", "(.+)") ' +
                    'and on (instance) patroni_replica{job="patroni"} == 1)',
            ],
            ["EtcdMemberDown", "warning", 60, 'up{job="etcd"} == 0'],
            ["EtcdNoLeader", "critical", 60, 'etcd_server_has_leader{job="etcd"} == 0'],
        ]);
    });

    it("take no member's role from a target label: only Patroni's series say who leads", () => {
        for (const rule of alertRules(production, defaultMonitoring)) {
            expect(rule.expr, rule.alert).not.toMatch(/role=|"primary"|"replica"|pg-\d|instance="/);
        }
    });

    it("map each member's slot on the leader back to the member's name, as label_replace does", () => {
        const { regex, replacement } = slotMemberPattern(production);
        expect({ regex, replacement }).toEqual({ regex: "pg_(.+)", replacement: "pg-$1" });
        const members = clusterTopology(production).members;
        expect(members).toHaveLength(4);
        for (const member of members) {
            // Prometheus anchors the regex at both ends.
            expect(member.slot.replace(new RegExp(`^${regex}$`), replacement), member.node).toBe(member.node);
        }
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
        // Every rule holds alertForSeconds but the maintenance-mode one, whose half hour is its point.
        expect(new Set(rules.filter((r) => r.alert !== "PatroniMaintenanceMode").map((r) => r.forSeconds))).toEqual(new Set([0]));
        expect(rules.find((r) => r.alert === "PatroniMaintenanceMode")?.forSeconds).toBe(MAINTENANCE_ALERT_SECONDS);
    });

    it("move with the failover settings: the lag Patroni still promotes, and a failover window longer than `for`", () => {
        const rules = alertRules({ ...staging, maximumLagOnFailoverMb: 16 }, withAlerts({ forSeconds: 300 }));
        const rule = (name: string) => rules.find((r) => r.alert === name)!;
        expect(rule("PostgreSQLMemberPastFailoverLag").expr).toMatch(/ > 16777216$/);
        expect(rule("PostgreSQLMemberPastFailoverLag").summary).toBe(
            "Member {{ $labels.instance }} has not received more than 16 MB of the leader's WAL",
        );
        // Firing needs the change inside the window for `for`; it then fires for FAILOVER_NOTICE_SECONDS.
        expect(rule("PatroniFailover").expr).toBe(
            `changes(max(patroni_postgres_timeline{job="patroni"} > 0)[${300 + FAILOVER_NOTICE_SECONDS}s:]) > 0`,
        );
        expect(rule("PatroniNoLeader").description).toContain("failoverTtl (20 s)");
    });

    it("describe the threshold in the configured units", () => {
        const rules = Object.fromEntries(alertRules(staging, defaultMonitoring).map((r) => [r.alert, r]));
        expect(rules.PostgreSQLReplicationSlotWalNearLimit.description).toBe(
            "{{ $labels.slot_name }} retains at least 80% of maxSlotWalKeepSizeMb (1638.4 MB of 2048 MB); " +
                "at the limit the slot is invalidated and its member must be cloned again.",
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
                for: r.alert === "PatroniMaintenanceMode" ? "1800s" : "60s",
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
