// The router's view of its servers, read from HAProxy's Prometheus metrics,
// and the PgBouncer start script's own wait for the router's first checks,
// cut out of the rendered script so tests run exactly what the container runs.
import { renderPgbouncerStart } from "../../components/render/pgbouncer/start-script";

/** The `router_checked` shell function of PgBouncer's start script, as rendered. */
export function routerCheckedFunction(): string {
    const found = /^router_checked\(\) \{\n(?: .*\n)+\}$/m.exec(renderPgbouncerStart());
    if (!found) {
        throw new Error("PgBouncer's start script has no router_checked function");
    }
    return found[0];
}

/** Each server's state (`UP`, `DOWN`, `MAINT`...), keyed `proxy/server`, from `haproxy_server_status` samples of 1. */
export function serverStates(metrics: string): Record<string, string> {
    const states: Record<string, string> = {};
    for (const [, proxy, server, state] of metrics.matchAll(
        /^haproxy_server_status\{proxy="([^"]*)",server="([^"]*)",state="([^"]*)"\} 1$/gm,
    )) {
        states[`${proxy}/${server}`] = state;
    }
    return states;
}
