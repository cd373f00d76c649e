// The command, run where Pulumi runs, that rotates the application role's
// password: PostgreSQL and PgBouncer take the new one together, with PgBouncer
// holding its clients for the moment it takes. Nothing restarts.
import { PGBOUNCER_PORT } from "../../settings";
import type { PostgresMember } from "../../topology";
import { shellWord, singleLine } from "../escape";
import { PGBOUNCER_USERLIST_FILE, SOCKET_DIR } from "../paths";
import { execIn, leaderFunctions, PSQL_SCRIPT, PSQL_UNRECORDED_VALUE, PSQL_VALUE } from "../patroni/leader-commands";
import { containerRunning, type VolumeTarget, writeToVolume } from "../volume-command";
import { adminFunction } from "./admin-console";

/** How many tenths of a second the command waits for the pools to pause, and for the replicas to replay the new verifier. */
export const CREDENTIALS_WAIT_TENTHS = 50;

/** How long the priming login may wait for its pool's first server connection, which a pause holds back (seconds). */
export const PRIMING_LOGIN_SECONDS = 3;

/** What the command reads on its standard input. */
export interface CredentialsInput {
    /** The application role's new password, for the login that gives PgBouncer its SCRAM keys. */
    readonly password: string;
    /** The statement that gives the role its new verifier (rolePasswordSql), run on the leader. */
    readonly sql: string;
    /** The query that answers `t` when the role has that verifier already (roleHasVerifierSql). */
    readonly current: string;
    /** PgBouncer's auth_file (renderUserlist). */
    readonly userlist: string;
}

/** The standard input: the password and the two statements one line each, then the userlist. */
export function renderCredentialsInput(input: CredentialsInput): string {
    const lines = [singleLine("password", input.password), singleLine("SQL", input.sql), singleLine("SQL", input.current)];
    return `${lines.join("\n")}\n${input.userlist}`;
}

/** The userlist in a standard input that renderCredentialsInput wrote. */
export function credentialsInputUserlist(stdin: string): string {
    return stdin.split("\n").slice(3).join("\n");
}

/**
 * Writes the userlist to PGBOUNCER_USERLIST_FILE (0600) on PgBouncer's volume,
 * then, on whichever member leads: pauses PgBouncer's pools, gives the role
 * its new verifier, waits until every streaming replica has replayed it,
 * reloads PgBouncer, logs in once through PgBouncer with the new password, and
 * resumes the pools. PgBouncer logs in to PostgreSQL with the SCRAM keys of
 * the last client that logged in to it as that role (client.c), never with
 * the verifier: a server login after PostgreSQL has the new verifier but
 * before a client has logged in with the new password would fail, and with no
 * server connection left in the pool PgBouncer fails the clients waiting for
 * one. The pause (SIGUSR1, like PAUSE) opens no server connection until the
 * priming login has given PgBouncer the new keys; the transactions under way
 * finish meanwhile on the connections they hold, and sessions stay open.
 * When the role has that verifier already (the command runs again for a
 * rotated admin or monitoring password, or a new image), nothing pauses:
 * PgBouncer reloads the userlist and takes the login, which gives it the
 * role's keys again should an earlier run have stopped before its own.
 * Killed by a signal it can trap, the command resumes the pools first.
 * Before PgBouncer's container runs (the stack's first `pulumi up`) only the
 * verifier is applied: PgBouncer reads the file when it starts.
 */
export function pgbouncerCredentialsCommand(
    target: VolumeTarget,
    members: readonly PostgresMember[],
    login: { readonly user: string; readonly database: string },
): string {
    const container = shellWord(target.container);
    // Inside PgBouncer's container: the password from standard input, never on a command line.
    const priming = `IFS= read -r PGPASSWORD && export PGPASSWORD && exec timeout ${PRIMING_LOGIN_SECONDS} psql -X -q -h ${SOCKET_DIR} -p ${PGBOUNCER_PORT} -U "$1" -d "$2" -c '\\q'`;
    return [
        ...leaderFunctions(members, "no leader took the new password"),
        "IFS= read -r password",
        "IFS= read -r sql",
        "IFS= read -r current",
        'userlist="$(cat)"',
        writeToVolume(target, PGBOUNCER_USERLIST_FILE, "userlist", { private: true }),
        `if ${containerRunning(target)}; then running=true; else running=false; fi`,
        adminFunction(target),
        "paused=false",
        `resume() { if [ "$paused" = true ]; then docker kill --signal SIGUSR2 ${container} >/dev/null; paused=false; fi; }`,
        "trap resume EXIT",
        // A signal would otherwise end the shell without its EXIT trap, leaving the pools paused.
        "trap 'exit 1' HUP INT TERM",
        // Exits 124 when its pool has never had a server connection: PgBouncer checked the password before waiting.
        "prime() {",
        `  status=0; printf '%s\\n' "$password" | docker exec -i ${container} sh -c ${shellWord(priming)} priming ${shellWord(login.user)} ${shellWord(login.database)} || status=$?`,
        '  if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then echo "PgBouncer refused the password after its RELOAD; its log says why" >&2; return 1; fi',
        "}",
        `pools_paused() { [ "$(admin "SHOW STATE" | grep '^active|')" = 'active|no' ]; }`,
        `replayed() { [ "$(${execIn("leader", PSQL_VALUE)} "SELECT coalesce(bool_and(replay_lsn >= '$target'), true) FROM pg_stat_replication")" = t ]; }`,
        // `within WHAT CONDITION`: waits for the shell function CONDITION, a tenth of a second apart, boundedly.
        "within() {",
        "  tenths=0",
        '  until "$2"; do',
        `    if [ "$tenths" -ge ${CREDENTIALS_WAIT_TENTHS} ]; then echo "$1 within ${CREDENTIALS_WAIT_TENTHS / 10} s" >&2; return 1; fi`,
        "    tenths=$((tenths + 1))",
        "    sleep 0.1",
        "  done",
        "}",
        // Run as the condition of on_leader's loop, where `set -e` does not apply: each failure is handled.
        "step() {",
        '  leader="$1"',
        // A role with the verifier already needs no pause: PgBouncer's keys for it still match.
        `  if [ "$(${execIn("leader", PSQL_UNRECORDED_VALUE)} "$current")" != t ]; then`,
        '    if [ "$running" = true ]; then',
        `      docker kill --signal SIGUSR1 ${container} >/dev/null || return 1`,
        "      paused=true",
        // Not a leader's move, which another round would outlast: the EXIT trap resumes the pools.
        '      within "PgBouncer did not pause its pools" pools_paused || exit 1',
        "    fi",
        `    printf '%s\\n' "$sql" | ${execIn("leader", PSQL_SCRIPT, true)} >/dev/null || { resume; return 1; }`,
        `    target="$(${execIn("leader", [...PSQL_VALUE, "SELECT pg_current_wal_lsn()"])})" || { resume; return 1; }`,
        // A replica that has not replayed it yet would refuse the read-only pool's next server login.
        '    within "the streaming replicas did not replay the new password" replayed || true',
        "  fi",
        '  if [ "$running" = true ]; then',
        "    admin RELOAD >/dev/null || { resume; return 1; }",
        "    prime || exit 1",
        "    resume",
        "  fi",
        "}",
        "on_leader",
        "",
    ].join("\n");
}
