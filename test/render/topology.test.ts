// The cluster's one model: every name of every member and service, exactly.
import { describe, expect, it } from "vitest";
import { certificateNames, clusterTopology, possibleMembers } from "../../components/topology";
import { production, staging } from "./fixtures";

describe("clusterTopology", () => {
    it("names each member and service of production once, every name it carries, none claiming a role", () => {
        const prefix = "obcms-database-production";
        const member = (index: number, resourceName: string, hostPort: number) => ({
            resourceName,
            index,
            container: `${prefix}-pg-${index}`,
            volume: `${prefix}-pg-${index}-data`,
            node: `pg-${index}`,
            slot: `pg_${index}`,
            exporter: `${prefix}-pg-${index}-exporter`,
            hostPort,
            applyDelayMinutes: 0,
        });
        const primary = member(1, "primary", 5442);
        const replicas = [member(2, "replica-1", 5443), member(3, "replica-2", 5444), member(4, "replica-3", 5445)];
        expect(clusterTopology(production)).toEqual({
            network: `${prefix}-net`,
            primary,
            replicas,
            members: [primary, ...replicas],
            delayedReplica: undefined,
            allMembers: [primary, ...replicas],
            scope: prefix,
            routes: { readWrite: `${prefix}-rw`, readOnly: `${prefix}-ro` },
            etcd: [1, 2, 3].map((k) => ({
                resourceName: `etcd-${k}`,
                index: k,
                container: `${prefix}-etcd-${k}`,
                volume: `${prefix}-etcd-${k}-of-3-data`,
                name: `etcd-${k}`,
            })),
            pgbouncer: {
                resourceName: "pgbouncer",
                container: `${prefix}-pgbouncer`,
                exporter: `${prefix}-pgbouncer-exporter`,
                volume: `${prefix}-pgbouncer-settings`,
            },
            backup: {
                resourceName: "backup",
                container: `${prefix}-backup`,
                volume: `${prefix}-backup-data`,
                tlsVolume: `${prefix}-backup-tls`,
                drillVolume: `${prefix}-backup-drill`,
            },
            prometheus: { container: `${prefix}-prometheus`, volume: `${prefix}-prometheus-data` },
            grafana: { container: `${prefix}-grafana` },
        });
    });

    it("adds the delayed replica after every member that may lead, named for what it is, its port past every replica's", () => {
        const t = clusterTopology({ ...production, delayedReplicaMinutes: 60 });
        const delayed = {
            resourceName: "delayed-replica",
            index: 12,
            container: "obcms-database-production-pg-delayed",
            volume: "obcms-database-production-pg-delayed-data",
            node: "pg-delayed",
            slot: "pg_delayed",
            // replicaBasePort 5443 + MAX_REPLICAS: scaling the replicas moves it not.
            hostPort: 5453,
            applyDelayMinutes: 60,
        };
        expect(t.delayedReplica).toEqual(delayed);
        expect(t.members.map((m) => m.node)).toEqual(["pg-1", "pg-2", "pg-3", "pg-4"]);
        expect(t.allMembers).toEqual([...t.members, delayed]);
        expect(clusterTopology({ ...production, replicaCount: 1, delayedReplicaMinutes: 60 }).delayedReplica).toEqual(delayed);
        // The router and the handovers list every member that may lead: never the delayed replica.
        expect(possibleMembers({ ...production, delayedReplicaMinutes: 60 }).map((m) => m.node)).not.toContain("pg-delayed");
        // Its certificate names no route: it is never behind one.
        expect(certificateNames({ ...production, delayedReplicaMinutes: 60 })["delayed-replica"].dnsNames).toEqual([
            "obcms-database-production-pg-delayed",
            "localhost",
        ]);
    });

    it("has replicaCount + 1 members numbered from 1, the first bootstrapping the cluster", () => {
        expect(clusterTopology(staging).members.map((m) => [m.index, m.resourceName, m.node])).toEqual([
            [1, "primary", "pg-1"],
            [2, "replica-1", "pg-2"],
        ]);
        const ten = clusterTopology({ ...staging, replicaCount: 10 });
        expect(ten.members).toHaveLength(11);
        expect(ten.members[10]).toMatchObject({ resourceName: "replica-10", node: "pg-11", slot: "pg_11", hostPort: 5442 });
    });

    // Patroni names a member's slot after its name, lower-cased, with `-` and `.` turned into `_`.
    it("gives each member the slot Patroni keeps for it, and no two members the same name", () => {
        const members = clusterTopology({ ...staging, replicaCount: 10 }).members;
        for (const m of members) {
            expect(m.slot).toBe(m.node.toLowerCase().replace(/[-.]/g, "_"));
        }
        for (const key of ["resourceName", "container", "volume", "node", "slot", "exporter", "hostPort"] as const) {
            expect(new Set(members.map((m) => m[key])).size, key).toBe(members.length);
        }
    });

    it("names an etcd member's volume after the member count, so a new layout starts on fresh data", () => {
        expect(clusterTopology(staging).etcd.map((e) => e.volume)).toEqual(["obcms-database-staging-etcd-1-of-1-data"]);
        expect(clusterTopology({ ...staging, etcdMembers: 5 }).etcd.map((e) => e.volume)).toEqual(
            [1, 2, 3, 4, 5].map((k) => `obcms-database-staging-etcd-${k}-of-5-data`),
        );
    });
});

describe("certificateNames", () => {
    it("names every node as its peers and the host reach it; every member also carries both routes PgBouncer dials", () => {
        const prefix = "obcms-database-production";
        const ipAddresses = ["127.0.0.1", "10.0.0.5"];
        const member = (index: number) => ({
            dnsNames: [`${prefix}-pg-${index}`, `${prefix}-rw`, `${prefix}-ro`, "localhost"],
            ipAddresses,
        });
        expect(certificateNames({ ...production, publishAddress: "10.0.0.5" })).toEqual({
            primary: member(1),
            "replica-1": member(2),
            "replica-2": member(3),
            "replica-3": member(4),
            pgbouncer: { dnsNames: [`${prefix}-pgbouncer`, "localhost"], ipAddresses },
            backup: { dnsNames: [`${prefix}-backup`, "localhost"], ipAddresses },
            ...Object.fromEntries([1, 2, 3].map((k) => [`etcd-${k}`, { dnsNames: [`${prefix}-etcd-${k}`, "localhost"], ipAddresses }])),
        });
    });

    it("leaves out an all-interfaces publish address, which no certificate can name", () => {
        expect(certificateNames({ ...production, publishAddress: "0.0.0.0" }).primary.ipAddresses).toEqual(["127.0.0.1"]);
    });
});
