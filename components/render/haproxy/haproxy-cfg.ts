// The router: HAProxy in the PgBouncer container, on loopback. It passes
// PgBouncer's TLS sessions through as TCP to whichever member Patroni's REST
// API calls the leader (read-write) or a streaming replica within the lag
// bound (read-only; the leader when no replica qualifies), and serves its
// own metrics. The checks speak TLS to the REST API and verify its
// certificate against the stack's CA.
import { haproxyWord } from "../escape";

export interface RouterMember {
    /** Server name: the member's Patroni name, which its metrics carry too. */
    readonly name: string;
    /** Host name on the cluster network. */
    readonly host: string;
}

export interface HaproxySpec {
    readonly members: readonly RouterMember[];
    readonly postgresPort: number;
    readonly restPort: number;
    /** Loopback ports PgBouncer dials. */
    readonly readWritePort: number;
    readonly readOnlyPort: number;
    readonly metricsPort: number;
    readonly caFile: string;
    /**
     * HAProxy's runtime API, for whoever runs in the container (mode 600):
     * `scripts/cluster.sh switchover` marks the new leader up on it the moment
     * Patroni says it took writes, not at its next check.
     */
    readonly adminSocket: string;
    /** Replicas further behind than this get no reads, and lose those they have (Patroni's `?lag=`). */
    readonly maxReadLagMb: number;
    /** Connections at once, all routes together. */
    readonly maxConnections: number;
}

/** Answered 200 on the metrics port while HAProxy runs. */
export const ROUTER_HEALTH_PATH = "/health";

/** Proxy names, which HAProxy's metrics label as `proxy`. */
export const ROUTER_BACKENDS = { readWrite: "postgres_rw", readOnly: "postgres_ro" } as const;

/**
 * How fast the router follows a change: a server is checked every second,
 * every 250 ms once a check failed, every 500 ms while down; one passing
 * check brings it up, two failing ones take it down, and its sessions are
 * shut at once so PgBouncer reconnects to the new leader.
 */
const CHECK_TIMING = "inter 1s fastinter 250ms downinter 500ms rise 1 fall 2";

/**
 * The read-write check. Patroni's `/primary` answers 200 as soon as the
 * member holds the leader key, while PostgreSQL may still be finishing
 * recovery (seconds, during a promotion) and refuses writes; the body's
 * `role`, read from `pg_is_in_recovery()`, says when it accepts them.
 */
const READ_WRITE_CHECK = [
    "    http-check send meth GET uri /primary",
    "    http-check expect status 200",
    `    http-check expect string '"role": "primary"'`,
];

/**
 * The read-only check, two requests on fresh connections (Patroni closes each).
 * A member that serves no reads at all (down, or a replica past the lag bound:
 * `/read-only?lag=` answers 503) is marked down, and its sessions are shut.
 * The leader passes `/read-only` but not `/replica`: it is drained (L7OKC,
 * HAProxy's NOLB state), taking no new reads but keeping the ones it has, so
 * a replica being promoted keeps the reads already running on it.
 */
function readOnlyCheck(maxLagMb: number): string[] {
    const request = (endpoint: string) => [
        "    http-check connect default",
        `    http-check send meth OPTIONS uri ${haproxyWord(`/${endpoint}?lag=${maxLagMb}MB`)}`,
    ];
    return [
        ...request("read-only"),
        "    http-check expect status 200",
        ...request("replica"),
        "    http-check expect status 200 error-status L7OKC",
    ];
}

function backend(spec: HaproxySpec, name: string, check: readonly string[], extra: readonly string[]): string[] {
    const w = haproxyWord;
    return [
        `backend ${w(name)}`,
        ...extra,
        "    option httpchk",
        ...check,
        `    default-server ${CHECK_TIMING} on-marked-down shutdown-sessions port ${spec.restPort} check-ssl verify required ca-file ${w(spec.caFile)} resolvers docker init-addr last,libc,none`,
        ...spec.members.map((m) => `    server ${w(m.name)} ${w(m.host)}:${spec.postgresPort} check check-sni ${w(m.host)}`),
        "",
    ];
}

export function renderHaproxyCfg(spec: HaproxySpec): string {
    const ro = ROUTER_BACKENDS.readOnly;
    const rw = ROUTER_BACKENDS.readWrite;
    return [
        "# Rendered by obcms-database.",
        "global",
        `    maxconn ${spec.maxConnections}`,
        "    log stderr format raw local0 notice",
        `    stats socket ${haproxyWord(spec.adminSocket)} mode 600 level admin`,
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        // On the cluster network a live member answers a connect in microseconds; a stopped
        // one's address answers nothing, and each attempt on it costs this much.
        "    timeout connect 1s",
        // Longer than PgBouncer keeps an idle server connection (server_idle_timeout, 600 s).
        "    timeout client 1h",
        "    timeout server 1h",
        // A member's REST API answers in milliseconds, but seconds under a heavy load on its
        // cores: a slow answer must not take the leader out of the read-write route. A check
        // that cannot connect fails after min(timeout connect, inter), whatever this is.
        "    timeout check 4s",
        // A connection refused by a member that just lost its role, or unanswered by one that
        // stopped, is retried on another server at once.
        "    retries 2",
        "    option redispatch 1",
        "",
        // Docker's DNS, so HAProxy starts while a member's name does not resolve yet.
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",
        "    resolve_retries 1",
        "    timeout resolve 1s",
        "    timeout retry 1s",
        "    hold valid 5s",
        "    hold other 1s",
        "    hold refused 1s",
        "    hold nx 1s",
        "    hold timeout 1s",
        "    hold obsolete 5s",
        "",
        "frontend metrics",
        "    mode http",
        `    bind :${spec.metricsPort}`,
        "    http-request use-service prometheus-exporter if { path /metrics }",
        // The container's health check.
        `    http-request return status 200 if { path ${ROUTER_HEALTH_PATH} }`,
        "    http-request deny",
        "",
        "frontend read_write",
        `    bind 127.0.0.1:${spec.readWritePort}`,
        `    default_backend ${rw}`,
        "",
        "frontend read_only",
        `    bind 127.0.0.1:${spec.readOnlyPort}`,
        `    use_backend ${ro} if { nbsrv(${ro}) gt 0 }`,
        `    default_backend ${rw}`,
        "",
        ...backend(spec, rw, READ_WRITE_CHECK, []),
        ...backend(spec, ro, readOnlyCheck(spec.maxReadLagMb), ["    balance roundrobin"]),
    ].join("\n");
}
