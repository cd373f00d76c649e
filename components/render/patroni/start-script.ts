// A PostgreSQL member's start script and health check: Patroni runs
// PostgreSQL, beside pgBackRest's TLS server.
import { PATRONI_REST_PORT } from "../../settings";
import { shellWord } from "../escape";
import { FILES } from "../paths";
import { tlsServerLines } from "../pgbackrest/pgbackrest";
import { scriptHeader } from "../shell-scripts";

export function renderMemberStart(): string {
    return [...scriptHeader(), ...tlsServerLines(), `exec patroni ${shellWord(FILES.patroniConf)}`, ""].join("\n");
}

/** `curl` against the member's own REST API, checking its certificate against the stack's CA. */
export function restApiGet(path: string): string[] {
    return ["curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "--cacert", FILES.tlsCa, `https://localhost:${PATRONI_REST_PORT}${path}`];
}

/**
 * Healthy once Patroni holds the leader key (after bootstrapping, or taking
 * over existing data) or runs PostgreSQL as a member of the cluster; a
 * replica still cloning is not.
 */
export function memberHealthCheck(): string[] {
    return restApiGet("/readiness");
}
