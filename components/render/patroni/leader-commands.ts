// Shell commands, run where Pulumi runs, that act on whichever member leads:
// the SQL that reconciles roles and the database, and the dynamic
// configuration Patroni keeps in etcd. Each finds the leader by asking every
// member's REST API, and retries while a failover or switchover moves it.
import type { PostgresMember } from "../../topology";
import { shellWord, sqlLiteral } from "../escape";
import { FILES, SOCKET_DIR } from "../paths";
import { PARAMETERS_DIGEST, type RunningParameters } from "./patroni-yml";
import { restApiGet } from "./start-script";

/** The operator's script, run from the project's directory as Pulumi runs commands: its switchover holds PgBouncer's clients. */
export const CLUSTER_SCRIPT = "scripts/cluster.sh";

/** CLUSTER_SCRIPT's switchover to `candidate` (a shell word), its report on stderr. */
function operatorSwitchover(scope: string, candidate: string): string {
    return `${CLUSTER_SCRIPT} -c ${shellWord(scope)} switchover ${candidate} >&2`;
}

/** CLUSTER_SCRIPT's restart of `member` (a shell word) where it is, holding PgBouncer's clients while it leads. */
function operatorRestartInPlace(scope: string, member: string): string {
    return `${CLUSTER_SCRIPT} -c ${shellWord(scope)} restart --in-place ${member} >&2`;
}

/** How many times, 2 s apart, a member's handover tries to hand the lead over before the update goes on. */
export const HANDOVER_ATTEMPTS = 15;

/** How many times a command looks for the leader, 2 s apart. */
export const LEADER_ATTEMPTS = 90;

/** `docker exec` into the container named by the shell variable `variable`, running `args` (each quoted). */
export function execIn(variable: string, args: readonly string[], interactive = false): string {
    return ["docker", "exec", ...(interactive ? ["-i"] : []), `"$${variable}"`, ...args.map(shellWord)].join(" ");
}

/** `container:node` words, one per member, for the scripts' loops. */
function memberWords(members: readonly PostgresMember[]): string {
    return members.map((m) => shellWord(`${m.container}:${m.node}`)).join(" ");
}

/** How long a leader command keeps trying, and how it ends when it gives up. */
export interface GiveUp {
    /** Rounds, 2 s apart (default LEADER_ATTEMPTS). */
    readonly attempts?: number;
    /** Exit status after the last round (default 1: the command fails). */
    readonly exitStatus?: number;
}

/**
 * The script's preamble: `find_leader` sets `leader` to the container whose
 * member holds the leader key, and `on_leader` retries the shell function
 * `step` on the current leader until it succeeds. The declared members are
 * asked first, then any other running member container of the cluster: a
 * `pulumi up` that removes members deletes them only at its end, so while it
 * runs the leader may be one of them. After the last of `attempts`, the
 * script prints `failure` and exits with `exitStatus` (1: the command fails).
 */
export function leaderFunctions(
    members: readonly PostgresMember[],
    failure: string,
    { attempts = LEADER_ATTEMPTS, exitStatus = 1 }: GiveUp = {},
): string[] {
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
        `    if [ "$attempt" -ge ${attempts} ]; then echo ${shellWord(`${failure} after ${attempts} attempts`)} >&2; exit ${exitStatus}; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 2",
        "  done",
        "}",
    ];
}

/**
 * Startup options of a session that sends verifiers: PostgreSQL logs none of
 * its statements, whatever log_statement, log_min_duration_statement or
 * log_min_error_statement say for the cluster (postgresParameters may set
 * them), and pg_stat_statements keeps no text of its utility statements,
 * which it would show verbatim, verifier included, to pg_monitor's members
 * such as the monitoring role. pgaudit redacts the password itself.
 */
export const UNRECORDED_SESSION_OPTIONS = [
    "pg_stat_statements.track_utility=off",
    "log_statement=none",
    "log_min_duration_statement=-1",
    "log_min_error_statement=panic",
]
    .map((setting) => `-c ${setting}`)
    .join(" ");

/** psql over a member's socket, printing the bare value of the query that follows. */
export const PSQL_VALUE = ["psql", "-X", "-A", "-t", "-h", SOCKET_DIR, "-d", "postgres", "-c"];

/** Starts the command that follows in a session that records none of its statements (UNRECORDED_SESSION_OPTIONS). */
const UNRECORDED = ["env", `PGOPTIONS=${UNRECORDED_SESSION_OPTIONS}`];

/** PSQL_VALUE in a session that records none of its statements, for a query that carries a verifier. */
export const PSQL_UNRECORDED_VALUE = [...UNRECORDED, ...PSQL_VALUE];

/**
 * psql as the superuser over a member's socket, running the SQL on its
 * standard input and stopping at the first error, in a session that records
 * none of its statements: the SQL sets verifiers.
 */
export const PSQL_SCRIPT = [...UNRECORDED, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCKET_DIR, "-d", "postgres", "-f", "-"];

/**
 * Runs the SQL on its standard input as the superuser, over the leader's
 * socket; read once, so that a retry on a new leader runs all of it again.
 */
export function leaderSqlCommand(members: readonly PostgresMember[]): string {
    return [
        ...leaderFunctions(members, "no leader took the SQL"),
        'sql="$(cat)"',
        `step() { leader="$1"; printf '%s\\n' "$sql" | ${execIn("leader", PSQL_SCRIPT, true)}; }`,
        "on_leader",
        "",
    ].join("\n");
}

/**
 * Hands the lead to one of `members` when none of them holds it: the first, in
 * their order, that Patroni serves as a replica (`/replica`) and that takes a
 * switchover, which holds PgBouncer's clients (CLUSTER_SCRIPT). The leader
 * placement passes the declared members: the update deletes removed members
 * only at its end, and all at once. Under quorum commit, a leader and a voter
 * going together leave the others short of the votes the `/sync` key asks for
 * (`quorum`: voters minus synchronous count, quorum.py), so none may promote,
 * ever; with a declared member leading, the leader stays and drops the
 * departed voters itself. A member's handover passes the others, before the
 * update replaces it (handoverCandidates).
 */
export function leadOnDeclaredCommand(members: readonly PostgresMember[], scope: string, failure: string, giveUp: GiveUp = {}): string {
    const isReplica = `${execIn("member", restApiGet("/replica"))} 2>/dev/null`;
    // The operator's switchover holds PgBouncer's clients; Patroni's own, when that one fails (PgBouncer down, say).
    const switchover = (candidate: string) =>
        `{ ${operatorSwitchover(scope, candidate)} || ` +
        `${execIn("leader", ["patronictl", "-c", FILES.patroniConf, "switchover", "--force", "--candidate"])} ${candidate} >/dev/null; }`;
    return [
        ...leaderFunctions(members, failure, giveUp),
        "step() {",
        '  leader="$1"',
        '  case " $declared " in *" $leader "*) return 0 ;; esac',
        `  for pair in ${memberWords(members)}; do`,
        '    member="${pair%%:*}"',
        // Patroni answers once the candidate leads; the next round checks that a declared member does.
        `    if ${isReplica} && ${switchover('"${pair#*:}"')}; then return 1; fi`,
        "  done",
        "  return 1",
        "}",
        "on_leader",
        "",
    ].join("\n");
}

/** Where a member's handover finds whether the update replaces the member's container. */
export interface ReplacementCheck {
    /** The member's container. */
    readonly container: string;
    /** The container label holding the digest of the inputs that replace it. */
    readonly label: string;
    /** The environment variable holding the declared digest. */
    readonly variable: string;
}

/**
 * A member's handover, run before `pulumi up` replaces or updates its
 * container: leadOnDeclaredCommand over `candidates`, but only when the
 * running container's digest label differs from the declared digest, i.e.
 * the container is about to be replaced. An update in place, or a new
 * version of this script, hands nothing over.
 */
export function memberHandoverCommand(
    member: PostgresMember,
    candidates: readonly PostgresMember[],
    scope: string,
    replacement: ReplacementCheck,
): string {
    const running = `docker inspect --format ${shellWord(`{{index .Config.Labels ${JSON.stringify(replacement.label)}}}`)} ${shellWord(replacement.container)}`;
    return [
        `if [ "$(${running} 2>/dev/null)" = "$${replacement.variable}" ]; then`,
        `  echo ${shellWord(`${member.node} keeps its container: no handover`)} >&2`,
        "  exit 0",
        "fi",
        // Best effort, and bounded: if no member takes the lead (etcd itself replaced, say), the
        // container changes anyway, and Patroni's own graceful stop hands the lead over.
        leadOnDeclaredCommand(
            candidates,
            scope,
            `no other member took the lead from ${member.node}; its container changes anyway, and Patroni's stop hands the lead over`,
            { attempts: HANDOVER_ATTEMPTS, exitStatus: 0 },
        ),
    ].join("\n");
}

/** How many times, 1 s apart, a command asks a member whether it has loaded the dynamic parameters. */
export const APPLY_ATTEMPTS = 120;

/** The declared hot-standby minimums (at least one), each beside the value the member runs: `declared` and `running`. */
function declaredBesideRunning(expected: RunningParameters): string {
    const declared = Object.entries(expected.standbyMinimums)
        .map(([name, value]) => `(${sqlLiteral(name)}, ${sqlLiteral(value)})`)
        .join(", ");
    return `(VALUES ${declared}) AS declared (name, setting) JOIN pg_catalog.pg_settings AS running USING (name)`;
}

/**
 * SQL run on a member that answers `stale` until PostgreSQL has loaded the
 * parameters whose digest is `expected.digest` (PARAMETERS_DIGEST), then
 * `pending` while one of them waits for a restart or a hot-standby minimum
 * runs another value than declared, else `applied`. Patroni's own flag is not
 * asked: a standby was seen running the leader's old, higher value with no
 * restart pending by Patroni's account or PostgreSQL's.
 */
export function memberParametersState(expected: RunningParameters): string {
    const otherValue =
        Object.keys(expected.standbyMinimums).length === 0
            ? ""
            : ` OR EXISTS (SELECT FROM ${declaredBesideRunning(expected)} WHERE running.setting <> declared.setting)`;
    return (
        `SELECT CASE WHEN current_setting(${sqlLiteral(PARAMETERS_DIGEST)}, true) IS DISTINCT FROM ${sqlLiteral(expected.digest)} THEN 'stale' ` +
        `WHEN bool_or(pending_restart)${otherValue} THEN 'pending' ELSE 'applied' END FROM pg_catalog.pg_settings`
    );
}

/**
 * SQL run on the leader before its restart, while it still runs the old
 * values: `t` when some hot-standby minimum is lowered and none raised.
 * PostgreSQL's order is then the primary first: a standby restarted before it
 * keeps the primary's higher value, so it would have to restart again. With
 * one raised, the standbys go first, or they would run below the primary and
 * stop replaying.
 */
export function onlyLoweredMinimums(expected: RunningParameters): string {
    return (
        "SELECT coalesce(bool_or(running.setting::numeric > declared.setting::numeric) AND NOT bool_or(running.setting::numeric < declared.setting::numeric), false) AS lowered_only " +
        `FROM ${declaredBesideRunning(expected)}`
    );
}

/**
 * Python, run on the leader: reads the dynamic configuration (`patronictl
 * show-config`) on its standard input, and prints, as YAML for `edit-config
 * --apply`, each parameter there that is not among its arguments (the
 * declared ones) set to null, which deletes it; or nothing. A merge alone
 * would keep a parameter removed from `postgresParameters` for good.
 */
export const STALE_PARAMETERS_SCRIPT = [
    "import sys, yaml",
    "current = ((yaml.safe_load(sys.stdin) or {}).get('postgresql') or {}).get('parameters') or {}",
    "declared = {name.lower() for name in sys.argv[1:]}",
    "stale = {name: None for name in current if name.lower() not in declared}",
    "if stale:",
    "    print(yaml.safe_dump({'postgresql': {'parameters': stale}}), end='')",
].join("\n");

/**
 * Merges the dynamic configuration on its standard input into etcd
 * (`patronictl edit-config --apply`, idempotent), then deletes the
 * parameters there that it does not declare (STALE_PARAMETERS_SCRIPT); waits until every member's
 * PostgreSQL has loaded its parameters, which Patroni does at its next cycle;
 * then restarts the members on which one waits for a restart: the others
 * first, one at a time, then the leader, then any other still pending (a
 * standby keeps the leader's higher value of a lowered setting until the
 * leader runs it), each loading the parameters again before the next; when
 * hot-standby minimums are only lowered, the leader first and then the
 * others (onlyLoweredMinimums). The
 * leader first hands the lead to a member that runs them, when one does,
 * through the operator's switchover, which holds PgBouncer's clients: writes
 * wait for seconds, and no client sees an error. When none does (a lowered
 * hot-standby minimum, which the primary must run first), the leader
 * restarts where it is, through the operator's in-place restart, which holds
 * the clients the same way for as long as it takes. The delayed replica, if
 * any, comes last, restarted where it is when it needs to be.
 */
export function dynamicConfigCommand(
    members: readonly PostgresMember[],
    scope: string,
    expected: RunningParameters,
    delayedReplica?: PostgresMember,
): string {
    const patronictl = ["patronictl", "-c", FILES.patroniConf];
    // `down` when PostgreSQL does not answer.
    const stateOf = (variable: string, running: RunningParameters = expected) =>
        `${execIn(variable, [...PSQL_VALUE, memberParametersState(running)])} 2>/dev/null || echo down`;
    const state = stateOf("member");
    // A hot-standby minimum the delayed replica runs above the declared value, until it replays
    // the leader's restart an applyDelayMinutes later, costs memory and nothing else.
    const delayedState = stateOf("member", { ...expected, standbyMinimums: {} });
    const editConfig = execIn("leader", [...patronictl, "edit-config", "--apply", "-", "--force", "--quiet"], true);
    // Patroni restarts the PostgreSQL of `$member` (`$node`) where it is.
    const restartMember = `${execIn("member", [...patronictl, "restart", scope])} "$node" --force >/dev/null`;
    const requireApplied = `if [ "$state" != applied ]; then echo "member $node still waits for a restart to run the dynamic parameters" >&2; exit 1; fi`;
    return [
        ...leaderFunctions(members, "no leader took the dynamic configuration"),
        'config="$(cat)"',
        "step() {",
        '  leader="$1"',
        `  printf '%s\\n' "$config" | ${editConfig} >/dev/null || return 1`,
        `  shown="$(${execIn("leader", [...patronictl, "show-config"])})" || return 1`,
        `  stale="$(printf '%s\\n' "$shown" | ${execIn("leader", ["python3", "-c", STALE_PARAMETERS_SCRIPT, ...expected.names], true)})" || return 1`,
        `  [ -z "$stale" ] || printf '%s\\n' "$stale" | ${editConfig} >/dev/null`,
        "}",
        "on_leader",
        ...awaitLoaded("await_loaded", state),
        `for pair in ${memberWords(members)}; do await_loaded "$pair"; done`,
        // A standby starts with the leader's value of a cluster-wide setting as its
        // control file records it: once it has replayed the leader's restart, the new one.
        "replayed() {",
        '  member="${1%%:*}" node="${1#*:}" attempt=1',
        `  target="$(${execIn("leader", [...PSQL_VALUE, "SELECT pg_current_wal_lsn()"])})"`,
        '  case "$target" in */*) ;; *) echo "the leader reports no WAL position" >&2; exit 1 ;; esac',
        `  until [ "$(${execIn("member", PSQL_VALUE)} "SELECT pg_last_wal_replay_lsn() >= '$target'" 2>/dev/null)" = t ]; do`,
        `    if [ "$attempt" -ge ${APPLY_ATTEMPTS} ]; then echo "member $node has not replayed the leader's WAL up to $target after ${APPLY_ATTEMPTS} attempts" >&2; exit 1; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 1",
        "  done",
        "}",
        // The first other member that runs the parameters: the leader's successor.
        "successor() {",
        `  for successor in ${memberWords(members)}; do`,
        '    candidate="${successor%%:*}"',
        `    if [ "$candidate" != "$leader" ] && [ "$(${stateOf("candidate")})" = applied ]; then return 0; fi`,
        "  done",
        "  return 1",
        "}",
        "restart_pending() {",
        '  if [ "$2" = others ]; then replayed "$1"; fi',
        '  await_loaded "$1"',
        '  [ "$state" = pending ] || return 0',
        // The leader hands the lead to a member that already runs the parameters, holding
        // PgBouncer's clients meanwhile (cluster.sh), and restarts as a replica, if at all.
        // None does when a hot-standby minimum was lowered: the leader must run it first.
        '  if [ "$2" = leader ] && successor; then',
        `    if ${operatorSwitchover(scope, '"${successor#*:}"')}; then`,
        '      leader="${successor%%:*}"',
        '      await_loaded "$1"',
        '      [ "$state" = pending ] || return 0',
        "    else",
        '      echo "the switchover to ${successor#*:} failed: restarting $node in place" >&2',
        "    fi",
        "  fi",
        // A leader that still leads restarts where it is, its clients held by PgBouncer meanwhile.
        '  if [ "$member" = "$leader" ]; then',
        `    if ${operatorRestartInPlace(scope, '"$node"')}; then await_loaded "$1"; return 0; fi`,
        '    await_loaded "$1"',
        '    [ "$state" = pending ] || return 0',
        '    echo "holding the clients failed: restarting $node in place without" >&2',
        "  fi",
        `  ${restartMember}`,
        '  await_loaded "$1"',
        "}",
        ...(Object.keys(expected.standbyMinimums).length === 0
            ? ['passes="others leader others"']
            : [
                  `if [ "$(${execIn("leader", [...PSQL_VALUE, onlyLoweredMinimums(expected)])} 2>/dev/null)" = t ]; then passes="leader others"; else passes="others leader others"; fi`,
              ]),
        "for pass in $passes; do",
        `  for pair in ${memberWords(members)}; do`,
        '    if [ "${pair%%:*}" = "$leader" ]; then role=leader; else role=others; fi',
        '    if [ "$role" = "$pass" ]; then restart_pending "$pair" "$role"; fi',
        "  done",
        "done",
        // `pulumi up` returns once every member runs the parameters, or fails saying which does not.
        `for pair in ${memberWords(members)}; do`,
        '  await_loaded "$pair"',
        `  ${requireApplied}`,
        "done",
        // The delayed replica last, restarted where it is if it must: it leads nothing and serves no reads.
        // No wait for its replay, which is late by design.
        ...(delayedReplica
            ? [
                  ...awaitLoaded("await_delayed", delayedState),
                  `pair=${memberWords([delayedReplica])}`,
                  'await_delayed "$pair"',
                  'if [ "$state" = pending ]; then',
                  `  ${restartMember}`,
                  '  await_delayed "$pair"',
                  "fi",
                  requireApplied,
              ]
            : []),
        "",
    ].join("\n");
}

/**
 * A shell function `name` that waits until the member of its argument
 * (`container:node`) has loaded the dynamic parameters (`state`, the command
 * printing the member's memberParametersState, is neither stale nor down),
 * leaving the state in `state`.
 */
function awaitLoaded(name: string, state: string): string[] {
    return [
        `${name}() {`,
        '  member="${1%%:*}" node="${1#*:}" attempt=1',
        `  until state="$(${state})" && [ "$state" != stale ] && [ "$state" != down ]; do`,
        `    if [ "$attempt" -ge ${APPLY_ATTEMPTS} ]; then echo "member $node has not loaded the dynamic parameters after ${APPLY_ATTEMPTS} attempts (PostgreSQL: $state)" >&2; exit 1; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 1",
        "  done",
        "}",
    ];
}
