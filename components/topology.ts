// The cluster's one model: which members and services it has, and every name
// each one carries (Pulumi resource name, Docker container and volume, the
// name PostgreSQL and Prometheus know it by). Computed once from the
// settings; the renderers and components read names from here and never
// spell them themselves.
import type { ClusterSettings } from "./settings";

export type MemberRole = "primary" | "replica";

export interface PostgresMember {
    /** Name of its component, prefix of its children's names, and the key of its TLS certificate. */
    readonly resourceName: string;
    readonly role: MemberRole;
    /** Docker container name, and its host name on the cluster network. */
    readonly container: string;
    /** Named volume with its data directory. */
    readonly volume: string;
    /** PostgreSQL's cluster_name, the application name a replica streams under, and the `instance` label of its series. */
    readonly node: string;
    /** Container of its postgres_exporter. */
    readonly exporter: string;
}

export interface ReplicaMember extends PostgresMember {
    readonly role: "replica";
    /** 1-based position among the replicas. */
    readonly index: number;
    /** Its physical replication slot on the primary. */
    readonly slot: string;
}

export interface EtcdMember {
    /** Name of its child resources' prefix and the key of its TLS certificate. */
    readonly resourceName: string;
    /** 1-based position in the etcd cluster. */
    readonly index: number;
    /** Docker container name: its host name on the cluster network, in its URLs and its certificate. */
    readonly container: string;
    /** Named volume with its data directory. */
    readonly volume: string;
    /** The member's name inside etcd (`--name`, `--initial-cluster`) and the `instance` label of its series. */
    readonly name: string;
}

export interface Topology {
    readonly network: string;
    readonly primary: PostgresMember;
    /** Replicas 1..replicaCount. */
    readonly replicas: readonly ReplicaMember[];
    /** The primary, then the replicas in order. */
    readonly members: readonly PostgresMember[];
    /**
     * A network alias every replica answers to: Docker's DNS returns all of
     * them, and PgBouncer spreads connections over the addresses.
     */
    readonly replicasAlias: string;
    /** The etcd cluster (the DCS), members 1..etcdMembers. */
    readonly etcd: readonly EtcdMember[];
    readonly pgbouncer: { readonly resourceName: string; readonly container: string; readonly exporter: string };
    /** pgBackRest's repository host: runs the backups, receives the WAL. */
    readonly backup: { readonly resourceName: string; readonly container: string; readonly volume: string };
    readonly prometheus: { readonly container: string; readonly volume: string };
    readonly grafana: { readonly container: string };
}

const volumeOf = (container: string) => `${container}-data`;
const exporterOf = (container: string) => `${container}-exporter`;

/**
 * An etcd member's data belongs to one cluster layout: etcd keeps its
 * membership in its data, so a member of a 1-member cluster cannot join a
 * 3-member one. The volume is named after the member count, so a change of
 * etcdMembers starts a new cluster on fresh volumes rather than members that
 * refuse to start.
 */
function etcdMember(s: ClusterSettings, index: number): EtcdMember {
    const container = `${s.clusterName}-etcd-${index}`;
    return {
        resourceName: `etcd-${index}`,
        index,
        container,
        volume: `${container}-of-${s.etcdMembers}-data`,
        name: `etcd-${index}`,
    };
}

function replicaMember(s: ClusterSettings, index: number): ReplicaMember {
    const container = `${s.clusterName}-replica-${index}`;
    const node = `replica_${index}`;
    return {
        resourceName: `replica-${index}`,
        role: "replica",
        index,
        container,
        volume: volumeOf(container),
        node,
        exporter: exporterOf(container),
        slot: `${node}_slot`,
    };
}

export function clusterTopology(s: ClusterSettings): Topology {
    const primaryContainer = `${s.clusterName}-primary`;
    const primary: PostgresMember = {
        resourceName: "primary",
        role: "primary",
        container: primaryContainer,
        volume: volumeOf(primaryContainer),
        node: "primary",
        exporter: exporterOf(primaryContainer),
    };
    const replicas = Array.from({ length: s.replicaCount }, (_, i) => replicaMember(s, i + 1));
    const pgbouncer = `${s.clusterName}-pgbouncer`;
    const backup = `${s.clusterName}-backup`;
    return {
        network: `${s.clusterName}-net`,
        primary,
        replicas,
        members: [primary, ...replicas],
        replicasAlias: `${s.clusterName}-replicas`,
        etcd: Array.from({ length: s.etcdMembers }, (_, i) => etcdMember(s, i + 1)),
        pgbouncer: { resourceName: "pgbouncer", container: pgbouncer, exporter: exporterOf(pgbouncer) },
        backup: { resourceName: "backup", container: backup, volume: volumeOf(backup) },
        prometheus: { container: `${s.clusterName}-prometheus`, volume: `${s.clusterName}-prometheus-data` },
        grafana: { container: `${s.clusterName}-grafana` },
    };
}

export interface CertificateNames {
    readonly dnsNames: string[];
    readonly ipAddresses: string[];
}

/**
 * The names each server's certificate covers, keyed by its resource name:
 * how its peers reach it (its container name, and the replicas' shared
 * alias) and how operators reach it from the host. Every certificate is
 * also a client certificate: etcd members present theirs to each other.
 */
export function certificateNames(s: ClusterSettings): Record<string, CertificateNames> {
    const t = clusterTopology(s);
    const ipAddresses = [...new Set(["127.0.0.1", s.publishAddress])].filter((ip) => ip !== "0.0.0.0");
    const servers: Array<[string, string[]]> = [
        [t.primary.resourceName, [t.primary.container]],
        ...t.replicas.map((r): [string, string[]] => [r.resourceName, [r.container, t.replicasAlias]]),
        [t.pgbouncer.resourceName, [t.pgbouncer.container]],
        [t.backup.resourceName, [t.backup.container]],
        ...t.etcd.map((e): [string, string[]] => [e.resourceName, [e.container]]),
    ];
    return Object.fromEntries(servers.map(([key, dnsNames]) => [key, { dnsNames: [...dnsNames, "localhost"], ipAddresses }]));
}
