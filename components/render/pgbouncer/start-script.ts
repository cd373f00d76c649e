import { HAPROXY_METRICS_PORT, PGBOUNCER_PORT } from "../../settings";
import { shellWord } from "../escape";
import { ROUTER_HEALTH_PATH } from "../haproxy/haproxy-cfg";
import { FILES, SOCKET_DIR } from "../paths";
import { scriptHeader, supervisedLine } from "../shell-scripts";

/** How long PgBouncer waits, at most, for the router's first round of checks (tenths of a second). */
export const ROUTER_FIRST_CHECKS_TENTHS = 50;

const METRICS_URL = `http://127.0.0.1:${HAPROXY_METRICS_PORT}/metrics`;

/**
 * Shell lines that wait until the router has checked every server it can
 * resolve. HAProxy 3.0 counts a server as up until its first check (3.1 has
 * `init-state`), so a client let in earlier could reach a replica through
 * the read-write route. Bounded: after ROUTER_FIRST_CHECKS_TENTHS PgBouncer
 * starts all the same, and the checks catch up within a second.
 */
function awaitFirstChecks(): string[] {
    // Servers that are up or down (not in maintenance, i.e. resolved) each need a check status.
    const unchecked = [
        'match($0, /proxy="[^"]*",server="[^"]*"/) { key = substr($0, RSTART, RLENGTH) }',
        '/^haproxy_server_status[{]/ && $NF == 1 && !/state="MAINT"/ { wanted[key] = 1 }',
        "/^haproxy_server_check_status[{]/ && $NF == 1 { checked[key] = 1 }",
        "END { for (k in wanted) if (!(k in checked)) exit 1 }",
    ].join(" ");
    return [
        "router_checked() {",
        `  metrics="$(curl -fs --max-time 1 ${shellWord(METRICS_URL)})" || return 1`,
        `  printf '%s\\n' "$metrics" | awk ${shellWord(unchecked)}`,
        "}",
        "tenths=0",
        `until router_checked || [ "$tenths" -ge ${ROUTER_FIRST_CHECKS_TENTHS} ]; do sleep 0.1; tenths=$((tenths + 1)); done`,
    ];
}

/**
 * The router first, kept running beside PgBouncer, then PgBouncer itself once
 * the router knows which member leads; the config is checked before either
 * starts, so a bad one stops the container.
 */
export function renderPgbouncerStart(): string {
    const cfg = shellWord(FILES.haproxyCfg);
    return [
        ...scriptHeader(),
        // Quiet (-q) would hide why a config is refused: its messages show only then.
        `if ! check="$(haproxy -c -f ${cfg} 2>&1)"; then printf '%s\\n' "$check" >&2; exit 1; fi`,
        // -q: its log lines go to stderr once, not twice (the log section and the console).
        supervisedLine("haproxy", `haproxy -db -q -f ${cfg}`),
        ...awaitFirstChecks(),
        `exec pgbouncer ${shellWord(FILES.pgbouncerIni)}`,
        "",
    ].join("\n");
}

/** Healthy while PgBouncer's socket exists and the router answers; a login every 2 s would fill the log. */
export function pgbouncerHealthCheck(): string[] {
    return [
        "sh",
        "-c",
        `test -S ${shellWord(`${SOCKET_DIR}/.s.PGSQL.${PGBOUNCER_PORT}`)} && curl -fsS -o /dev/null --max-time 2 ${shellWord(`http://127.0.0.1:${HAPROXY_METRICS_PORT}${ROUTER_HEALTH_PATH}`)}`,
    ];
}
