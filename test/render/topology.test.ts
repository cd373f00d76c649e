// The cluster's one model: every name of every member and service, exactly.
import { describe, expect, it } from "vitest";
import { certificateNames, clusterTopology } from "../../components/topology";
import { production, staging } from "./fixtures";

describe("clusterTopology", () => {
    it("names each member and service of production once, every name it carries", () => {
        const member = (container: string) => ({ container, volume: `${container}-data`, exporter: `${container}-exporter` });
        const prefix = "obcms-database-production";
        const replicas = [1, 2, 3].map((k) => ({
            resourceName: `replica-${k}`,
            role: "replica",
            index: k,
            ...member(`${prefix}-replica-${k}`),
            node: `replica_${k}`,
            slot: `replica_${k}_slot`,
        }));
        const primary = { resourceName: "primary", role: "primary", ...member(`${prefix}-primary`), node: "primary" };
        expect(clusterTopology(production)).toEqual({
            network: `${prefix}-net`,
            primary,
            replicas,
            members: [primary, ...replicas],
            replicasAlias: `${prefix}-replicas`,
            etcd: [1, 2, 3].map((k) => ({
                resourceName: `etcd-${k}`,
                index: k,
                container: `${prefix}-etcd-${k}`,
                volume: `${prefix}-etcd-${k}-of-3-data`,
                name: `etcd-${k}`,
            })),
            pgbouncer: { resourceName: "pgbouncer", container: `${prefix}-pgbouncer`, exporter: `${prefix}-pgbouncer-exporter` },
            backup: { resourceName: "backup", container: `${prefix}-backup`, volume: `${prefix}-backup-data` },
            prometheus: { container: `${prefix}-prometheus`, volume: `${prefix}-prometheus-data` },
            grafana: { container: `${prefix}-grafana` },
        });
    });

    it("has as many replicas as the settings ask for, numbered from 1", () => {
        expect(clusterTopology(staging).replicas.map((r) => [r.index, r.resourceName])).toEqual([[1, "replica-1"]]);
        expect(clusterTopology({ ...staging, replicaCount: 10 }).members).toHaveLength(11);
    });

    it("names an etcd member's volume after the member count, so a new layout starts on fresh data", () => {
        expect(clusterTopology(staging).etcd.map((e) => e.volume)).toEqual(["obcms-database-staging-etcd-1-of-1-data"]);
        expect(clusterTopology({ ...staging, etcdMembers: 5 }).etcd.map((e) => e.volume)).toEqual(
            [1, 2, 3, 4, 5].map((k) => `obcms-database-staging-etcd-${k}-of-5-data`),
        );
    });
});

describe("certificateNames", () => {
    it("names every node as its peers and the host reach it", () => {
        expect(certificateNames({ ...production, publishAddress: "10.0.0.5" })).toEqual({
            primary: { dnsNames: ["obcms-database-production-primary", "localhost"], ipAddresses: ["127.0.0.1", "10.0.0.5"] },
            "replica-1": {
                dnsNames: ["obcms-database-production-replica-1", "obcms-database-production-replicas", "localhost"],
                ipAddresses: ["127.0.0.1", "10.0.0.5"],
            },
            "replica-2": {
                dnsNames: ["obcms-database-production-replica-2", "obcms-database-production-replicas", "localhost"],
                ipAddresses: ["127.0.0.1", "10.0.0.5"],
            },
            "replica-3": {
                dnsNames: ["obcms-database-production-replica-3", "obcms-database-production-replicas", "localhost"],
                ipAddresses: ["127.0.0.1", "10.0.0.5"],
            },
            pgbouncer: { dnsNames: ["obcms-database-production-pgbouncer", "localhost"], ipAddresses: ["127.0.0.1", "10.0.0.5"] },
            backup: { dnsNames: ["obcms-database-production-backup", "localhost"], ipAddresses: ["127.0.0.1", "10.0.0.5"] },
            ...Object.fromEntries(
                [1, 2, 3].map((k) => [
                    `etcd-${k}`,
                    { dnsNames: [`obcms-database-production-etcd-${k}`, "localhost"], ipAddresses: ["127.0.0.1", "10.0.0.5"] },
                ]),
            ),
        });
    });

    it("leaves out an all-interfaces publish address, which no certificate can name", () => {
        expect(certificateNames({ ...production, publishAddress: "0.0.0.0" }).primary.ipAddresses).toEqual(["127.0.0.1"]);
    });
});
