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

/**
 * `curl` against the member's own REST API, checking its certificate against
 * the stack's CA; it prints the answer unless told to keep only the status.
 */
export function restApiCurl(path: string, { statusOnly = false, maxTimeSeconds = 2 } = {}): string[] {
    const output = statusOnly ? ["-o", "/dev/null"] : [];
    return [
        "curl",
        "-fsS",
        ...output,
        "--max-time",
        String(maxTimeSeconds),
        "--cacert",
        FILES.tlsCa,
        `https://localhost:${PATRONI_REST_PORT}${path}`,
    ];
}

/** Succeeds while the member's REST API answers `path` with 2xx. */
export function restApiGet(path: string): string[] {
    return restApiCurl(path, { statusOnly: true });
}

/**
 * Healthy once Patroni holds the leader key (after bootstrapping, or taking
 * over existing data) or runs PostgreSQL as a member of the cluster; a
 * replica still cloning is not.
 */
export function memberHealthCheck(): string[] {
    return restApiGet("/readiness");
}
