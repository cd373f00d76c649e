// Shell commands, run where Pulumi runs, that act on whichever member leads:
// the SQL that reconciles roles and the database, and the dynamic
// configuration Patroni keeps in etcd. Each finds the leader by asking every
// member's REST API, and retries while a failover or switchover moves it.
import { PATRONI_REST_PORT } from "../../settings";
import type { PostgresMember } from "../../topology";
import { shellWord } from "../escape";
import { FILES, SOCKET_DIR } from "../paths";
import { restApiGet } from "./start-script";

/** How many times a command looks for the leader, 2 s apart. */
export const LEADER_ATTEMPTS = 90;

/** `docker exec` into the container named by the shell variable `variable`, running `args` (each quoted). */
function execIn(variable: string, args: readonly string[], interactive = false): string {
    return ["docker", "exec", ...(interactive ? ["-i"] : []), `"$${variable}"`, ...args.map(shellWord)].join(" ");
}

/** `container:node` words, one per member, for the scripts' loops. */
function memberWords(members: readonly PostgresMember[]): string {
    return members.map((m) => shellWord(`${m.container}:${m.node}`)).join(" ");
}

/**
 * The script's preamble: `find_leader` sets `leader` to the container whose
 * member holds the leader key, and `on_leader` retries the shell function
 * `step` on the current leader until it succeeds. The declared members are
 * asked first, then any other running member container of the cluster: a
 * `pulumi up` that removes members deletes them only at its end, so while it
 * runs the leader may be one of them.
 */
function leaderFunctions(members: readonly PostgresMember[], what: string): string[] {
    // Member containers are named <cluster>-pg-<index> (topology.ts).
    const others = `^/${members[0].container.replace(/\d+$/, "")}[0-9]+$`;
    const isLeader = `${execIn("member", restApiGet("/primary"))} 2>/dev/null`;
    return [
        "set -eu",
        `declared=${shellWord(members.map((m) => m.container).join(" "))}`,
        "find_leader() {",
        '  leader=""',
        "  for member in $declared; do",
        `    if ${isLeader}; then leader="$member"; return 0; fi`,
        "  done",
        `  for member in $(docker ps --filter ${shellWord(`name=${others}`)} --format '{{.Names}}'); do`,
        '    case " $declared " in *" $member "*) continue ;; esac',
        `    if ${isLeader}; then leader="$member"; return 0; fi`,
        "  done",
        "  return 1",
        "}",
        "on_leader() {",
        "  attempt=1",
        '  until find_leader && step "$leader"; do',
        `    if [ "$attempt" -ge ${LEADER_ATTEMPTS} ]; then echo ${shellWord(`no leader took ${what} after ${LEADER_ATTEMPTS} attempts`)} >&2; exit 1; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 2",
        "  done",
        "}",
    ];
}

/**
 * Runs the SQL on its standard input as the superuser, over the leader's
 * socket; read once, so that a retry on a new leader runs all of it again.
 */
export function leaderSqlCommand(members: readonly PostgresMember[]): string {
    const psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCKET_DIR, "-d", "postgres", "-f", "-"];
    return [
        ...leaderFunctions(members, "the SQL"),
        'sql="$(cat)"',
        `step() { leader="$1"; printf '%s\\n' "$sql" | ${execIn("leader", psql, true)}; }`,
        "on_leader",
        "",
    ].join("\n");
}

/**
 * Merges the dynamic configuration on its standard input into etcd
 * (`patronictl edit-config --apply`, idempotent), then restarts the members
 * whose PostgreSQL reports a pending restart: the others first, one at a
 * time, then the leader, then any other still pending (a standby keeps the
 * leader's higher value of a lowered setting until the leader runs it).
 */
export function dynamicConfigCommand(members: readonly PostgresMember[], scope: string): string {
    const patronictl = ["patronictl", "-c", FILES.patroniConf];
    const status = ["curl", "-fsS", "--max-time", "2", "--cacert", FILES.tlsCa, `https://localhost:${PATRONI_REST_PORT}/patroni`];
    // jq runs in the member's container, like curl: where Pulumi runs, only docker and sh are needed.
    const pendingRestart = ["sh", "-c", `${status.map(shellWord).join(" ")} | jq -r '.pending_restart // false'`];
    return [
        ...leaderFunctions(members, "the dynamic configuration"),
        'config="$(cat)"',
        `step() { leader="$1"; printf '%s\\n' "$config" | ${execIn("leader", [...patronictl, "edit-config", "--apply", "-", "--force", "--quiet"], true)} >/dev/null; }`,
        "on_leader",
        "restart_pending() {",
        '  member="${1%%:*}" node="${1#*:}"',
        `  if [ "$(${execIn("member", pendingRestart)})" = true ]; then`,
        `    ${execIn("member", [...patronictl, "restart", scope])} "$node" --pending --force >/dev/null`,
        "  fi",
        "}",
        "for pass in others leader others; do",
        `  for pair in ${memberWords(members)}; do`,
        '    if [ "${pair%%:*}" = "$leader" ]; then role=leader; else role=others; fi',
        '    if [ "$role" = "$pass" ]; then restart_pending "$pair"; fi',
        "  done",
        "done",
        "",
    ].join("\n");
}
