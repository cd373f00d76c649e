// The cluster's one model: which members and services it has, and every name
// each one carries (Pulumi resource name, Docker container and volume, the
// name PostgreSQL and Prometheus know it by). Computed once from the
// settings; the renderers and components read names from here and never
// spell them themselves.
import { type ClusterSettings, delayedReplicaHostPort, MAX_REPLICAS, replicaHostPort } from "./settings";

/**
 * A PostgreSQL member, run by Patroni. Its names say which member it is,
 * never which role it has: whoever holds the leader key in etcd leads.
 */
export interface PostgresMember {
    /** Name of its component ("primary" bootstraps the cluster, "replica-k" join it), prefix of its children's names, and the key of its TLS certificate. */
    readonly resourceName: string;
    /** 1-based position among the members; member 1 bootstraps the cluster. */
    readonly index: number;
    /** Docker container name, and its host name on the cluster network. */
    readonly container: string;
    /** Named volume with its data directory. */
    readonly volume: string;
    /** Patroni's member name: the application name it streams under, and the `instance` label of its series. */
    readonly node: string;
    /** The physical slot Patroni keeps for it on whoever leads (the member name, `-` turned into `_`). */
    readonly slot: string;
    /** Host port its PostgreSQL is published on when the stack publishes the members' ports. */
    readonly hostPort: number;
    /**
     * Minutes by which it replays the leader's commits: 0, except for the
     * delayed replica, which never leads, serves no reads and is no
     * synchronous standby.
     */
    readonly applyDelayMinutes: number;
}

/**
 * A member that may lead and serves reads (all but the delayed replica), and
 * the container of its postgres_exporter. The delayed replica has none: its
 * catalog is the delay behind, so the monitoring role cannot log in there in
 * time (prometheus-targets.ts).
 */
export interface ServingMember extends PostgresMember {
    readonly exporter: string;
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
    /** Member 1, which bootstraps the cluster: the design card's `Primary`, whatever role it has later. */
    readonly primary: ServingMember;
    /** Members 2..replicaCount + 1, which join it: the design card's `Replica`s. */
    readonly replicas: readonly ServingMember[];
    /** Every member that may lead and serves reads, in order: the primary and the replicas. */
    readonly members: readonly ServingMember[];
    /** The delayed replica (`delayedReplicaMinutes`), if the stack has one. */
    readonly delayedReplica: PostgresMember | undefined;
    /** Every member Patroni runs: `members`, then the delayed replica. */
    readonly allMembers: readonly PostgresMember[];
    /** Patroni's scope: the cluster's name in etcd. */
    readonly scope: string;
    /**
     * The names PgBouncer dials for the read-write and read-only routes. In
     * the PgBouncer container they resolve to loopback, where HAProxy forwards
     * to the leader or to the replicas; every member's certificate carries
     * them, so PgBouncer's verify-full holds whichever member answers.
     */
    readonly routes: { readonly readWrite: string; readonly readOnly: string };
    /** The etcd cluster (the DCS), members 1..etcdMembers. */
    readonly etcd: readonly EtcdMember[];
    /** PgBouncer and its router; `volume` holds the settings PgBouncer takes by RELOAD. */
    readonly pgbouncer: { readonly resourceName: string; readonly container: string; readonly exporter: string; readonly volume: string };
    /** pgBackRest's repository host: runs the backups, receives the WAL; its repository volume, and the volume of its certificate. */
    readonly backup: {
        readonly resourceName: string;
        readonly container: string;
        readonly volume: string;
        readonly tlsVolume: string;
        /** The restore drill's scratch space and record. */
        readonly drillVolume: string;
    };
    readonly prometheus: { readonly container: string; readonly volume: string };
    readonly grafana: { readonly container: string };
}

const volumeOf = (container: string) => `${container}-data`;

/** A member's container and node names, and the volume and slot named after them. */
function memberNames(container: string, node: string) {
    return { container, volume: volumeOf(container), node, slot: node.replace(/-/g, "_") };
}
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

/** Member `index`: published on primaryPort (member 1) or replicaBasePort + index - 2. */
function postgresMember(s: ClusterSettings, index: number): ServingMember {
    const container = `${s.clusterName}-pg-${index}`;
    const node = `pg-${index}`;
    return {
        resourceName: index === 1 ? "primary" : `replica-${index - 1}`,
        index,
        ...memberNames(container, node),
        exporter: exporterOf(container),
        hostPort: index === 1 ? s.primaryPort : replicaHostPort(s, index - 1),
        applyDelayMinutes: 0,
    };
}

/**
 * The delayed replica: named for what it is, not by position, so that
 * scaling the replicas renames nothing of it; its index follows every
 * member the stack may have.
 */
function delayedReplica(s: ClusterSettings): PostgresMember {
    return {
        resourceName: "delayed-replica",
        index: MAX_REPLICAS + 2,
        ...memberNames(`${s.clusterName}-pg-delayed`, "pg-delayed"),
        hostPort: delayedReplicaHostPort(s),
        applyDelayMinutes: s.delayedReplicaMinutes,
    };
}

/**
 * Every member that may lead the stack may have (MAX_REPLICAS replicas; the
 * delayed replica never does), for what must not change when it scales: the
 * router's backends, PgBouncer's commands, the handovers.
 */
export function possibleMembers(s: ClusterSettings): ServingMember[] {
    return Array.from({ length: MAX_REPLICAS + 1 }, (_, i) => postgresMember(s, i + 1));
}

/**
 * Where a member hands the lead before `pulumi up` replaces it: the members
 * replace one at a time in member order, so first the members before it,
 * nearest first (replaced already, on the new image), then the others, last
 * member first (replaced last): the lead moves at most twice per update.
 * A member that does not run is passed over.
 */
export function handoverCandidates(members: readonly PostgresMember[], member: PostgresMember): PostgresMember[] {
    const position = members.findIndex((m) => m.index === member.index);
    if (position < 0) {
        throw new Error(`${member.node} is not a member of this cluster`);
    }
    return [...members.slice(0, position).reverse(), ...members.slice(position + 1).reverse()];
}

export function clusterTopology(s: ClusterSettings): Topology {
    const members = Array.from({ length: s.replicaCount + 1 }, (_, i) => postgresMember(s, i + 1));
    const delayed = s.delayedReplicaMinutes > 0 ? delayedReplica(s) : undefined;
    const pgbouncer = `${s.clusterName}-pgbouncer`;
    const backup = `${s.clusterName}-backup`;
    return {
        network: `${s.clusterName}-net`,
        primary: members[0],
        replicas: members.slice(1),
        members,
        delayedReplica: delayed,
        allMembers: delayed ? [...members, delayed] : members,
        scope: s.clusterName,
        routes: { readWrite: `${s.clusterName}-rw`, readOnly: `${s.clusterName}-ro` },
        etcd: Array.from({ length: s.etcdMembers }, (_, i) => etcdMember(s, i + 1)),
        pgbouncer: { resourceName: "pgbouncer", container: pgbouncer, exporter: exporterOf(pgbouncer), volume: `${pgbouncer}-settings` },
        backup: {
            resourceName: "backup",
            container: backup,
            volume: volumeOf(backup),
            tlsVolume: `${backup}-tls`,
            drillVolume: `${backup}-drill`,
        },
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
 * how its peers reach it (its container name, and for a PostgreSQL member
 * the routes PgBouncer dials) and how operators reach it from the host. Every certificate is
 * also a client certificate: etcd members present theirs to each other.
 */
export function certificateNames(s: ClusterSettings): Record<string, CertificateNames> {
    const t = clusterTopology(s);
    const ipAddresses = [...new Set(["127.0.0.1", s.publishAddress])].filter((ip) => ip !== "0.0.0.0");
    const servers: Array<[string, string[]]> = [
        ...t.members.map((m): [string, string[]] => [m.resourceName, [m.container, t.routes.readWrite, t.routes.readOnly]]),
        // The delayed replica is never behind a route.
        ...(t.delayedReplica ? [[t.delayedReplica.resourceName, [t.delayedReplica.container]] as [string, string[]]] : []),
        [t.pgbouncer.resourceName, [t.pgbouncer.container]],
        [t.backup.resourceName, [t.backup.container]],
        ...t.etcd.map((e): [string, string[]] => [e.resourceName, [e.container]]),
    ];
    return Object.fromEntries(servers.map(([key, dnsNames]) => [key, { dnsNames: [...dnsNames, "localhost"], ipAddresses }]));
}
