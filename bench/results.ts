// The shape of bench/results/<date>.json: every raw figure the report and
// the README block are rendered from.
import type { AuthMethod } from "../components/settings";

export type Workload = "tpcb" | "select";
/** Through PgBouncer to the primary, straight to the primary, or through PgBouncer's read-only database to the replicas. */
export type Route = "pgbouncer" | "direct" | "readonly";

export interface LatencyFigures {
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly meanMs: number;
}

export interface MemoryFigures {
    /** Client backends of the application role on the primary, mid-run. */
    readonly backends: number;
    /** Their private memory together, bytes. */
    readonly backendsPrivateBytes: number;
    /** PgBouncer's private memory, bytes (0 for direct runs). */
    readonly pgbouncerPrivateBytes: number;
}

/** One pgbench run. */
export interface Cell {
    readonly workload: Workload;
    readonly route: Route;
    readonly clients: number;
    /** A new connection for every transaction (`pgbench -C`). */
    readonly connectPerTransaction: boolean;
    /** pgbench's connections use TLS (all but the staging stack's -C pair, which isolates TLS's cost). */
    readonly clientTls: boolean;
    /** The stack's login method (authMethod): SCRAM everywhere but the md5 pair, which isolates SCRAM's cost. */
    readonly auth: AuthMethod;
    readonly replicas: number;
    /** Seconds measured: the run's last `cellSeconds`, or less if the logins took longer than planned (see steadyWindow). */
    readonly seconds: number;
    /** Transactions that ended in the measured window, per second. */
    readonly tps: number;
    readonly transactions: number;
    /** Failed transactions over the whole run (pgbench's count). */
    readonly failed: number;
    /** Of the transactions in the measured window. */
    readonly latency: LatencyFigures;
    /** Seconds until every client was connected (absent with -C). */
    readonly connectSeconds?: number;
    /** Mean time to open one connection, ms (only with -C). */
    readonly averageConnectionMs?: number;
    /** Most client backends of the application role seen on the primary (sampled every 250 ms). */
    readonly peakServerConnections?: number;
    /** PgBouncer's CPU time over the run, as a fraction of one core. */
    readonly pgbouncerCpuCores?: number;
    readonly memory?: MemoryFigures;
}

export interface LagFigures {
    readonly replica: string;
    readonly samples: number;
    readonly bytes: { readonly p50: number; readonly p99: number; readonly max: number };
    readonly seconds: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** A write run on the primary with replay lag sampled on every replica. */
export interface LagRun {
    readonly replicas: number;
    readonly clients: number;
    readonly seconds: number;
    readonly sampleIntervalMs: number;
    readonly tps: number;
    readonly perReplica: readonly LagFigures[];
}

export interface BringUp {
    /** The stack file brought up (`staging`, `production`). */
    readonly stack: string;
    readonly replicas: number;
    /** From nothing to every replica streaming. */
    readonly seconds: number;
}

export interface Basebackup {
    /** Size of every database on the primary when the replica joined. */
    readonly bytes: number;
    /** From the new replica's container start to it streaming: the clone and its first start. */
    readonly cloneSeconds: number;
    /** The whole update (`replicaCount` + 1), primary and replica restarts included. */
    readonly updateSeconds: number;
}

export interface RoundTrip {
    /** Median TCP round trip over loopback inside one container, µs. */
    readonly loopbackUs: number;
    /** Median TCP round trip between two containers on the cluster network, µs. */
    readonly clusterNetworkUs: number;
}

/** One leader fault on the production stack, measured as the failover tests measure it (harness/faults.ts). */
export interface FailoverRun {
    readonly fault: "switchover" | "stop" | "kill" | "isolate";
    readonly run: number;
    /** Last commit on the old timeline to the first on the new one (CloudNativePG's failover time). */
    readonly gapSeconds: number;
    /** The longest any writer went without a commit, as its client saw it. */
    readonly longestWriteGapSeconds: number;
    readonly clientErrors: number;
    readonly rowsLost: number;
    /** From the old leader's start (or reconnection) to it streaming again; none after a switchover. */
    readonly rejoinSeconds?: number;
    readonly rewound?: boolean;
}

/** One client, select-only, from inside PgBouncer's container: through the router, and straight to the leader. */
export interface RouterHop {
    readonly seconds: number;
    readonly routedLatencyMs: number;
    readonly directLatencyMs: number;
    readonly routedTps: number;
    readonly directTps: number;
}

export interface BenchResults {
    readonly mode: "full" | "quick";
    /** ISO time the run started. */
    readonly started: string;
    readonly finished: string;
    readonly machine: { readonly cores: number; readonly memoryBytes: number; readonly kernel: string; readonly cpu: string };
    readonly versions: { readonly postgresql: string; readonly pgbouncer: string; readonly docker: string; readonly node: string };
    readonly settings: {
        readonly stack: string;
        readonly scale: number;
        readonly cellSeconds: number;
        readonly threads: number;
        readonly poolSize: number;
        readonly reservePoolSize: number;
        readonly maxConnections: number;
        readonly maxClientConn: number;
        readonly clientTls: string;
        readonly monitoring: boolean;
    };
    readonly bringUp: readonly BringUp[];
    readonly cells: readonly Cell[];
    readonly roundTrip: RoundTrip;
    readonly lag: readonly LagRun[];
    readonly basebackup?: Basebackup;
    readonly routerHop?: RouterHop;
    readonly failover?: {
        /** Patroni's ttl on the stack: a killed or isolated leader's goal is this + 5 s. */
        readonly ttlSeconds: number;
        /** Writers on persistent connections during each fault. */
        readonly writers: number;
        readonly runs: readonly FailoverRun[];
    };
}
