// The commands that act on whichever member leads, run by /bin/sh with
// `docker` replaced by a shell function that answers like a cluster: which
// member Patroni calls the leader, whether a step succeeds, which members
// have loaded the parameters or wait for a restart. Nothing reaches Docker but
// the last tests, which run the parameters check in the project image with
// psql and curl stubbed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
    APPLY_ATTEMPTS,
    CLUSTER_SCRIPT,
    dynamicConfigCommand,
    HANDOVER_ATTEMPTS,
    LEADER_ATTEMPTS,
    leaderSqlCommand,
    leadOnDeclaredCommand,
    memberHandoverCommand,
    memberParametersState,
    onlyLoweredMinimums,
    STALE_PARAMETERS_SCRIPT,
} from "../../components/render/patroni/leader-commands";
import type { RunningParameters } from "../../components/render/patroni/patroni-yml";
import { restApiGet } from "../../components/render/patroni/start-script";
import { clusterTopology, handoverCandidates, possibleMembers } from "../../components/topology";
import { onPostgres, psqlValue } from "../support/postgres";
import { PROJECT_IMAGE } from "../support/promtool";
import { production, shellSyntaxCheck, staging } from "./fixtures";

const members = clusterTopology(production).members;
const container = (k: number) => `obcms-database-production-pg-${k}`;

/**
 * `docker ps` lists $RUNNING; `docker inspect` of LABELLED_CONTAINER's digest label prints
 * LABELLED; `docker exec` as a cluster answers it. The /primary check (run in the
 * script's own shell, so a variable counts the searches, each of which starts
 * at the first member) succeeds for LEADER once NO_LEADER_ROUNDS found nobody; a step (psql or edit-config, with -i) fails STEP_FAILS times;
 * the parameters check (run in a command substitution's subshell, so a file
 * counts them) prints `stale` for its first STALE_ROUNDS calls, then
 * `pending` for a member listed in $DIR/pending, else `applied`; a restart
 * clears it, except on a replica while the leader is still pending (it keeps
 * the leader's higher value of a lowered setting) unless RAISED is set; the
 * leader reports its minimums only lowered while it is pending, unless RAISED
 * or MIXED (another minimum raised) is set. The leader's WAL position
 * is 0/3000060, which the replicas have not replayed for the first
 * BEHIND_ROUNDS replay checks, then have. Every call is logged to
 * $DIR/calls, each -i call's stdin to $DIR/stdin-<call number>. A leader
 * written to $DIR/leader replaces LEADER: FAKE_CLUSTER_SCRIPT's switchover
 * writes it.
 */
const FAKE_DOCKER = `
sleep() { :; }
rounds=0
docker() {
  if [ -f "$DIR/leader" ]; then LEADER="$(cat "$DIR/leader")"; fi
  if [ "$1" = ps ]; then printf '%s\\n' $RUNNING; return 0; fi
  if [ "$*" = "inspect --format {{index .Config.Labels \\"obcms.replacement-digest\\"}} $LABELLED_CONTAINER" ]; then
    printf '%s\\n' "$LABELLED"; return 0
  fi
  [ "$1" = exec ] || return 99
  shift
  interactive=""
  if [ "$1" = -i ]; then interactive=1; shift; fi
  container="$1"; shift
  { printf '%s\\0' "$container" "$@"; printf '\\n'; } >> "$DIR/calls"
  echo >> "$DIR/call-count"
  if [ -n "$interactive" ]; then cat > "$DIR/stdin-$(wc -l < "$DIR/call-count")"; fi
  case "$1 $2" in
    "curl -fsS")
      eval "url=\\\${$#}"
      if [ "\${url##*/}" = replica ]; then
        [ "$container" != "$LEADER" ] && case " $REPLICAS " in *" $container "*) true ;; *) false ;; esac
        return
      fi
      if [ "$container" = "$FIRST" ]; then rounds=$((rounds + 1)); fi
      [ "$container" = "$LEADER" ] && [ "$rounds" -gt "$NO_LEADER_ROUNDS" ]
      return ;;
  esac
  case " $* " in
    *" show-config "*) echo "$SHOWN_CONFIG"; return 0 ;;
    *" python3 -c "*) printf '%s' "$STALE_PARAMETERS"; return 0 ;;
    *" SELECT CASE WHEN current_setting('obcms.parameters_digest'"*)
      echo >> "$DIR/states"
      if [ "$(wc -l < "$DIR/states")" -le "$STALE_ROUNDS" ]; then echo stale
      elif grep -qx "$container" "$DIR/pending"; then echo pending; else echo applied; fi
      return 0 ;;
    *" pg_current_wal_lsn()"*) echo 0/3000060; return 0 ;;
    *" lowered_only "*)
      if [ -z "$RAISED" ] && [ -z "$MIXED" ] && grep -qx "$LEADER" "$DIR/pending"; then echo t; else echo f; fi
      return 0 ;;
    *" pg_last_wal_replay_lsn()"*)
      echo >> "$DIR/replays"
      if [ "$(wc -l < "$DIR/replays")" -le "$BEHIND_ROUNDS" ]; then echo f; else echo t; fi
      return 0 ;;
    *" switchover "*)
      eval "candidate=\\\${$#}"
      case " $REFUSED " in *" $candidate "*) return 1 ;; esac
      LEADER="\${container%pg-*}$candidate"
      return 0 ;;
    *" restart "*)
      if [ -n "$RAISED" ] || [ "$container" = "$LEADER" ] || ! grep -qx "$LEADER" "$DIR/pending"; then
        grep -vx "$container" "$DIR/pending" > "$DIR/pending.new" || true
        mv "$DIR/pending.new" "$DIR/pending"
      fi
      return 0 ;;
  esac
  echo >> "$DIR/steps"
  [ "$(wc -l < "$DIR/steps")" -gt "$STEP_FAILS" ]
}
`;

interface FakeCluster {
    readonly leader: string;
    readonly noLeaderRounds?: number;
    readonly stepFails?: number;
    readonly pending?: readonly string[];
    /** How many parameter checks, counted over all members, find the parameters not loaded yet. */
    readonly staleRounds?: number;
    /** How many replay checks, counted over all members, find the leader's WAL position not replayed yet. */
    readonly behindRounds?: number;
    /** Every running member container, declared or not, as `docker ps` lists them. */
    readonly running?: readonly string[];
    /** Containers whose Patroni answers `/replica` (never the leader's). */
    readonly replicas?: readonly string[];
    /** Member names a switchover to which Patroni refuses; any other candidate leads once asked. */
    readonly refused?: readonly string[];
    /** Whether the pending setting was raised, so a replica runs it once restarted; else lowered. */
    readonly raised?: boolean;
    /** Whether another hot-standby minimum was raised beside the lowered one. */
    readonly mixed?: boolean;
    /** Whether scripts/cluster.sh's switchover fails (PgBouncer not running, say). */
    readonly clusterScriptFails?: boolean;
    /** The container each search for the leader asks first, which counts the rounds; member 1 unless told. */
    readonly first?: string;
    /** What the leader's stale-parameters script prints: parameters in etcd no longer declared, set to null. */
    readonly staleParameters?: string;
    /** A container and the value of its replacement-digest label, for `docker inspect`. */
    readonly labelled?: { readonly container: string; readonly digest: string };
}

/**
 * scripts/cluster.sh as the command finds it in its working directory: logs
 * its call as `cluster.sh` with its arguments, then fails when told to. Its
 * in-place restart clears the member's pending restart; its switchover fails
 * when Patroni refuses the candidate (REFUSED), or makes its last argument,
 * a member's name, the leader.
 */
const FAKE_CLUSTER_SCRIPT = `#!/bin/sh
{ printf '%s\\0' cluster.sh "$@"; printf '\\n'; } >> "$DIR/calls"
echo >> "$DIR/call-count"
[ -z "$CLUSTER_SCRIPT_FAILS" ] || exit 1
eval "member=\\\${$#}"
if [ "$3" = restart ]; then
  grep -vx "obcms-database-production-$member" "$DIR/pending" > "$DIR/pending.new" || true
  mv "$DIR/pending.new" "$DIR/pending"
  exit 0
fi
case " $REFUSED " in *" $member "*) exit 1 ;; esac
echo "obcms-database-production-$member" > "$DIR/leader"
`;

interface Call {
    readonly container: string;
    readonly args: string[];
    /** What the command sent on its standard input (`docker exec -i`). */
    readonly stdin?: string;
}

function runWithFakeDocker(command: string, input: string, cluster: FakeCluster) {
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-leader-"));
    try {
        writeFileSync(path.join(dir, "pending"), (cluster.pending ?? []).map((c) => `${c}\n`).join(""));
        mkdirSync(path.join(dir, "scripts"));
        writeFileSync(path.join(dir, CLUSTER_SCRIPT), FAKE_CLUSTER_SCRIPT, { mode: 0o755 });
        const result = spawnSync("/bin/sh", ["-c", `${FAKE_DOCKER}\n${command}`], {
            input,
            encoding: "utf8",
            cwd: dir,
            env: {
                PATH: process.env.PATH,
                DIR: dir,
                FIRST: cluster.first ?? container(1),
                LEADER: cluster.leader,
                NO_LEADER_ROUNDS: String(cluster.noLeaderRounds ?? 0),
                STEP_FAILS: String(cluster.stepFails ?? 0),
                STALE_ROUNDS: String(cluster.staleRounds ?? 0),
                BEHIND_ROUNDS: String(cluster.behindRounds ?? 0),
                RUNNING: (cluster.running ?? []).join(" "),
                REPLICAS: (cluster.replicas ?? []).join(" "),
                REFUSED: (cluster.refused ?? []).join(" "),
                RAISED: cluster.raised ? "1" : "",
                MIXED: cluster.mixed ? "1" : "",
                CLUSTER_SCRIPT_FAILS: cluster.clusterScriptFails ? "1" : "",
                LABELLED_CONTAINER: cluster.labelled?.container ?? "",
                LABELLED: cluster.labelled?.digest ?? "",
                SHOWN_CONFIG: SHOWN_CONFIG,
                STALE_PARAMETERS: cluster.staleParameters ?? "",
                OBCMS_MEMBER_REPLACEMENT_DIGEST: DECLARED_DIGEST,
            },
        });
        const callsFile = path.join(dir, "calls");
        // A record ends with NUL and newline: an argument may hold newlines (a Python script), never a NUL.
        const records = existsSync(callsFile) ? readFileSync(callsFile, "utf8").split("\0\n").slice(0, -1) : [];
        const calls = records.map((record, i): Call => {
            const [name, ...args] = record.split("\0");
            const stdin = path.join(dir, `stdin-${i + 1}`);
            return existsSync(stdin)
                ? { container: name, args: ["-i", ...args], stdin: readFileSync(stdin, "utf8") }
                : { container: name, args };
        });
        return { status: result.status, stderr: result.stderr, calls };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/** The digest a member's handover finds declared in its environment. */
const DECLARED_DIGEST = "5f1e";

/** The leader check, as the exact script below spells it. */
const PRIMARY_CHECK = restApiGet("/primary");
/** A session that logs none of its statements and leaves pg_stat_statements no text of them: the SQL sets verifiers. */
const UNRECORDED = [
    "env",
    "PGOPTIONS=-c pg_stat_statements.track_utility=off -c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic",
];
const PSQL = [...UNRECORDED, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql", "-d", "postgres", "-f", "-"];
const EDIT_CONFIG = ["patronictl", "-c", "/etc/obcms/patroni.yml", "edit-config", "--apply", "-", "--force", "--quiet"];
const EXPECTED = {
    digest: "0123456789abcdef",
    standbyMinimums: { max_connections: "100", max_wal_senders: "22" },
    names: ["max_connections", "max_wal_senders", "obcms.parameters_digest"],
};
/** What the fake leader's `patronictl show-config` prints. */
const SHOWN_CONFIG = "postgresql:\n  parameters:\n    max_connections: 100\n";
/** The leader's dynamic configuration read back, then the parameters it holds that are not declared looked for. */
const pruneCalls = (k: number): Call[] => [
    { container: container(k), args: ["patronictl", "-c", "/etc/obcms/patroni.yml", "show-config"] },
    {
        container: container(k),
        args: ["-i", "python3", "-c", STALE_PARAMETERS_SCRIPT, ...EXPECTED.names],
        stdin: SHOWN_CONFIG,
    },
];
const PSQL_VALUE = ["psql", "-X", "-A", "-t", "-h", "/var/run/postgresql", "-d", "postgres", "-c"];
const PARAMETERS_CHECK = [
    ...PSQL_VALUE,
    "SELECT CASE WHEN current_setting('obcms.parameters_digest', true) IS DISTINCT FROM '0123456789abcdef' THEN 'stale' " +
        "WHEN bool_or(pending_restart) OR EXISTS (SELECT FROM (VALUES ('max_connections', '100'), ('max_wal_senders', '22')) AS declared (name, setting) " +
        "JOIN pg_catalog.pg_settings AS running USING (name) WHERE running.setting <> declared.setting) THEN 'pending' ELSE 'applied' END FROM pg_catalog.pg_settings",
];
const restart = (k: number) => ["patronictl", "-c", "/etc/obcms/patroni.yml", "restart", "obcms-database-production", `pg-${k}`, "--force"];

/** SQL with quotes, a backslash, unicode and blank lines: sent through as it is. */
const SQL = "-- roles\nALTER ROLE \"postgres\" WITH PASSWORD 'it''s \\ 東京';\n\n\\connect \"obcms\"\nSELECT 1;\n";
const DYNAMIC = "# dynamic\nttl: 20\nloop_wait: 5\n";

const checks = (...ks: number[]): Call[] => ks.map((k) => ({ container: container(k), args: PRIMARY_CHECK }));

describe("leaderSqlCommand", () => {
    const command = leaderSqlCommand(members);

    it("is this exact script for staging's two members", () => {
        expect(leaderSqlCommand(clusterTopology(staging).members)).toBe(
            [
                "set -eu",
                "declared='obcms-database-staging-pg-1 obcms-database-staging-pg-2'",
                "find_leader() {",
                '  leader=""',
                "  for member in $declared; do",
                `    if docker exec "$member" 'curl' '-fsS' '-o' '/dev/null' '--max-time' '2' '--cacert' '/etc/obcms/tls/ca.crt' 'https://localhost:8008/primary' 2>/dev/null; then leader="$member"; return 0; fi`,
                "  done",
                "  for member in $(docker ps --filter 'name=^/obcms-database-staging-pg-[0-9]+$' --format '{{.Names}}'); do",
                '    case " $declared " in *" $member "*) continue ;; esac',
                `    if docker exec "$member" 'curl' '-fsS' '-o' '/dev/null' '--max-time' '2' '--cacert' '/etc/obcms/tls/ca.crt' 'https://localhost:8008/primary' 2>/dev/null; then leader="$member"; return 0; fi`,
                "  done",
                "  return 1",
                "}",
                "on_leader() {",
                "  attempt=1",
                '  until find_leader && step "$leader"; do',
                `    if [ "$attempt" -ge 90 ]; then echo 'no leader took the SQL after 90 attempts' >&2; exit 1; fi`,
                "    attempt=$((attempt + 1))",
                "    sleep 2",
                "  done",
                "}",
                'sql="$(cat)"',
                `step() { leader="$1"; printf '%s\\n' "$sql" | docker exec -i "$leader" 'env' 'PGOPTIONS=-c pg_stat_statements.track_utility=off -c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic' 'psql' '-X' '-q' '-v' 'ON_ERROR_STOP=1' '-h' '/var/run/postgresql' '-d' 'postgres' '-f' '-'; }`,
                "on_leader",
                "",
            ].join("\n"),
        );
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("asks each member in turn whether it leads, and runs the SQL from its stdin on the first that does", () => {
        const run = runWithFakeDocker(command, SQL, { leader: container(3) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([...checks(1, 2, 3), { container: container(3), args: ["-i", ...PSQL], stdin: SQL }]);
    });

    // `pulumi up` removing members (replicaCount lowered) deletes them at its end: until then one may lead.
    it("finds a leader among running member containers no longer declared, after asking every declared one", () => {
        const running = [1, 2, 3, 4, 5].map(container);
        const run = runWithFakeDocker(command, SQL, { leader: container(5), running });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([...checks(1, 2, 3, 4, 5), { container: container(5), args: ["-i", ...PSQL], stdin: SQL }]);
    });

    it(`looks for a leader up to ${LEADER_ATTEMPTS} times while none leads`, () => {
        const run = runWithFakeDocker(command, SQL, { leader: container(2), noLeaderRounds: LEADER_ATTEMPTS - 1 });
        expect(run.status).toBe(0);
        const rounds = run.calls.filter((c) => c.container === container(1));
        expect(rounds).toHaveLength(LEADER_ATTEMPTS);
        expect(run.calls.at(-1)).toEqual({ container: container(2), args: ["-i", ...PSQL], stdin: SQL });
    });

    it(`gives up after ${LEADER_ATTEMPTS} searches without a leader, saying so, and runs nothing`, () => {
        const run = runWithFakeDocker(command, SQL, { leader: container(2), noLeaderRounds: LEADER_ATTEMPTS });
        expect(run.status).toBe(1);
        expect(run.stderr).toBe(`no leader took the SQL after ${LEADER_ATTEMPTS} attempts\n`);
        expect(run.calls).toEqual(Array.from({ length: LEADER_ATTEMPTS }, () => checks(1, 2, 3, 4)).flat());
    });

    // The leader changed between the search and the SQL (a failover): the next
    // leader gets every statement again, not what was left of the input.
    it("sends all of the SQL again when a step fails", () => {
        const run = runWithFakeDocker(command, SQL, { leader: container(1), stepFails: 2 });
        expect(run.status).toBe(0);
        const steps = run.calls.filter((c) => c.args[0] === "-i");
        expect(steps).toEqual([1, 2, 3].map(() => ({ container: container(1), args: ["-i", ...PSQL], stdin: SQL })));
    });
});

describe("leadOnDeclaredCommand", () => {
    const command = leadOnDeclaredCommand(members, "obcms-database-production", "no declared member took the lead from a removed one");
    // Production declares pg-1 to pg-4; pg-5 is a member the update is about to delete.
    const running = [1, 2, 3, 4, 5].map(container);
    const replicaCheck = (k: number): Call => ({ container: container(k), args: restApiGet("/replica") });
    /** The operator's switchover, which holds PgBouncer's clients. */
    const switchoverTo = (k: number): Call => ({
        container: "cluster.sh",
        args: ["-c", "obcms-database-production", "switchover", `pg-${k}`],
    });
    /** Patroni's own, asked of the leader when the operator's failed. */
    const patroniSwitchoverTo = (k: number): Call => ({
        container: container(5),
        args: ["patronictl", "-c", "/etc/obcms/patroni.yml", "switchover", "--force", "--candidate", `pg-${k}`],
    });
    /** The search that finds removed pg-5 leading, then both switchovers to pg-k, the operator's failing. */
    const bothSwitchoversTo = (k: number): Call[] => [
        ...checks(1, 2, 3, 4, 5),
        ...Array.from({ length: k }, (_, i) => replicaCheck(i + 1)),
        switchoverTo(k),
        patroniSwitchoverTo(k),
    ];

    it("parses as POSIX shell", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("does nothing while a declared member leads", () => {
        const run = runWithFakeDocker(command, "", { leader: container(2), running, replicas: [1, 3, 4, 5].map(container) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual(checks(1, 2));
    });

    it("hands the lead from a removed member to the first declared replica, then finds it leading", () => {
        const run = runWithFakeDocker(command, "", { leader: container(5), running, replicas: [2, 3, 4].map(container) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([...checks(1, 2, 3, 4, 5), replicaCheck(1), replicaCheck(2), switchoverTo(2), ...checks(1, 2)]);
    });

    it("asks the next declared replica when Patroni refuses one", () => {
        const run = runWithFakeDocker(command, "", { leader: container(5), running, replicas: [2, 3].map(container), refused: ["pg-2"] });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([...bothSwitchoversTo(2), replicaCheck(3), switchoverTo(3), ...checks(1, 2, 3)]);
    });

    it("asks Patroni itself when the operator's switchover fails (PgBouncer not running, say)", () => {
        const run = runWithFakeDocker(command, "", {
            leader: container(5),
            running,
            replicas: [2, 3].map(container),
            clusterScriptFails: true,
        });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([...bothSwitchoversTo(2), ...checks(1, 2)]);
    });

    it(`fails, saying so, when no declared replica took the lead after ${LEADER_ATTEMPTS} attempts`, () => {
        const run = runWithFakeDocker(command, "", { leader: container(5), running, replicas: [container(3)], refused: ["pg-3"] });
        expect(run.status).toBe(1);
        expect(run.stderr).toBe(`no declared member took the lead from a removed one after ${LEADER_ATTEMPTS} attempts\n`);
        expect(run.calls.filter((c) => c.container === "cluster.sh")).toHaveLength(LEADER_ATTEMPTS);
        expect(run.calls.filter((c) => c.args.includes("--candidate"))).toHaveLength(LEADER_ATTEMPTS);
    });
});

// The handover before `pulumi up` replaces pg-1, run as memberContainer declares it: every other member
// production may have is a candidate, pg-5 to pg-11 not running; pg-1's running container carries
// another digest than the declared one, unless a test says otherwise.
describe("a member's handover (memberHandoverCommand over handoverCandidates)", () => {
    const possible = possibleMembers(production);
    const command = memberHandoverCommand(possible[0], handoverCandidates(possible, possible[0]), "obcms-database-production", {
        container: container(1),
        label: "obcms.replacement-digest",
        variable: "OBCMS_MEMBER_REPLACEMENT_DIGEST",
    });
    const running = [1, 2, 3, 4].map(container);
    const cluster = { running, first: container(11), labelled: { container: container(1), digest: "0ld" } };
    const notRunning = [11, 10, 9, 8, 7, 6, 5];

    it("parses as POSIX shell", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("does nothing while another member leads", () => {
        const run = runWithFakeDocker(command, "", { ...cluster, leader: container(3), replicas: [1, 2, 4].map(container) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual(checks(...notRunning, 4, 3));
    });

    it("hands the lead to the last member first: it is replaced last, so the lead moves at most once more", () => {
        const run = runWithFakeDocker(command, "", { ...cluster, leader: container(1), replicas: [2, 3, 4].map(container) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([
            ...checks(...notRunning, 4, 3, 2, 1),
            ...[...notRunning, 4].map((k) => ({ container: container(k), args: restApiGet("/replica") })),
            { container: "cluster.sh", args: ["-c", "obcms-database-production", "switchover", "pg-4"] },
            ...checks(...notRunning, 4),
        ]);
    });

    it("hands the lead over when the container is not there to read (removed by hand, say)", () => {
        const run = runWithFakeDocker(command, "", {
            ...cluster,
            labelled: undefined,
            leader: container(1),
            replicas: [2, 3, 4].map(container),
        });
        expect(run.status).toBe(0);
        expect(run.calls.filter((c) => c.container === "cluster.sh")).toEqual([
            { container: "cluster.sh", args: ["-c", "obcms-database-production", "switchover", "pg-4"] },
        ]);
    });

    it("hands nothing over, not even from the leader, when the running container already carries the declared digest", () => {
        const run = runWithFakeDocker(command, "", {
            ...cluster,
            labelled: { container: container(1), digest: DECLARED_DIGEST },
            leader: container(1),
            replicas: [2, 3, 4].map(container),
        });
        expect(run.status).toBe(0);
        expect(run.stderr).toBe("pg-1 keeps its container: no handover\n");
        expect(run.calls).toEqual([]);
    });

    it(`gives up after ${HANDOVER_ATTEMPTS} attempts, saying so, and lets the update go on`, () => {
        const run = runWithFakeDocker(command, "", { ...cluster, leader: container(1), replicas: [container(2)], refused: ["pg-2"] });
        expect(run.status).toBe(0);
        expect(run.stderr).toBe(
            `no other member took the lead from pg-1; its container changes anyway, and Patroni's stop hands the lead over after ${HANDOVER_ATTEMPTS} attempts\n`,
        );
        expect(run.calls.filter((c) => c.container === "cluster.sh")).toHaveLength(HANDOVER_ATTEMPTS);
    });
});

describe("dynamicConfigCommand", () => {
    const command = dynamicConfigCommand(members, "obcms-database-production", EXPECTED);
    const parameterChecks = (...ks: number[]): Call[] => ks.map((k) => ({ container: container(k), args: PARAMETERS_CHECK }));
    const restarts = (...ks: number[]): Call[] => ks.map((k) => ({ container: container(k), args: restart(k) }));
    /** The leader asked whether the hot-standby minimums are only lowered, which puts it first. */
    const orderCheck = (leader: number): Call => ({
        container: container(leader),
        args: [...PSQL_VALUE, onlyLoweredMinimums(EXPECTED)],
    });
    /** A standby's turn: it first replays the leader's WAL, then its parameters are checked. */
    const replayedThenChecked = (leader: number, k: number): Call[] => [
        { container: container(leader), args: [...PSQL_VALUE, "SELECT pg_current_wal_lsn()"] },
        { container: container(k), args: [...PSQL_VALUE, "SELECT pg_last_wal_replay_lsn() >= '0/3000060'"] },
        ...parameterChecks(k),
    ];

    it("parses as POSIX shell", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("merges the configuration from its stdin on the leader, waits until every member loaded it, and restarts nothing that is not pending", () => {
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(2) });
        expect(run.status).toBe(0);
        expect(run.calls).toEqual([
            ...checks(1, 2),
            { container: container(2), args: ["-i", ...EDIT_CONFIG], stdin: DYNAMIC },
            ...pruneCalls(2),
            ...parameterChecks(1, 2, 3, 4),
            orderCheck(2),
            ...[1, 3, 4].flatMap((k) => replayedThenChecked(2, k)),
            ...parameterChecks(2),
            ...[1, 3, 4].flatMap((k) => replayedThenChecked(2, k)),
            ...parameterChecks(1, 2, 3, 4),
        ]);
    });

    // `edit-config --apply` merges: without the second edit, a parameter removed from postgresParameters would stay.
    it("deletes from etcd, in a second edit on the leader, the parameters it holds that are not declared", () => {
        const stale = "postgresql:\n  parameters:\n    log_min_duration_statement: null\n";
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(2), staleParameters: stale });
        expect(run.status).toBe(0);
        expect(run.calls.slice(2, 6)).toEqual([
            { container: container(2), args: ["-i", ...EDIT_CONFIG], stdin: DYNAMIC },
            ...pruneCalls(2),
            { container: container(2), args: ["-i", ...EDIT_CONFIG], stdin: stale },
        ]);
    });

    // Patroni loads a change at its next cycle: asked at once, a member still runs the old parameters.
    it("asks a member again, a second apart, until it has loaded the parameters", () => {
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(1), staleRounds: 3 });
        expect(run.status).toBe(0);
        expect(run.calls.slice(4, 10)).toEqual(parameterChecks(1, 1, 1, 1, 2, 3));
    });

    it(`fails, naming the member, when it has not loaded the parameters after ${APPLY_ATTEMPTS} checks`, () => {
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(1), staleRounds: APPLY_ATTEMPTS });
        expect(run.status).toBe(1);
        expect(run.stderr).toBe(`member pg-1 has not loaded the dynamic parameters after ${APPLY_ATTEMPTS} attempts (PostgreSQL: stale)\n`);
        expect(run.calls.some((c) => c.args.includes("restart"))).toBe(false);
    });

    // A standby restarted before it replays the leader's restart takes the leader's old value from its control file.
    it("waits until a standby has replayed the leader's WAL before checking and restarting it, and fails naming it when it never does", () => {
        const replayCheck = { container: container(1), args: [...PSQL_VALUE, "SELECT pg_last_wal_replay_lsn() >= '0/3000060'"] };
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(2), behindRounds: 2, pending: [container(1)] });
        expect(run.status).toBe(0);
        const firstReplay = run.calls.findIndex((c) => c.args.includes(replayCheck.args.at(-1) as string));
        expect(run.calls.slice(firstReplay, firstReplay + 5)).toEqual([
            replayCheck,
            replayCheck,
            replayCheck,
            ...parameterChecks(1),
            ...restarts(1),
        ]);

        const stuck = runWithFakeDocker(command, DYNAMIC, { leader: container(2), behindRounds: APPLY_ATTEMPTS });
        expect(stuck.status).toBe(1);
        expect(stuck.stderr).toBe(`member pg-1 has not replayed the leader's WAL up to 0/3000060 after ${APPLY_ATTEMPTS} attempts\n`);
        expect(stuck.calls.some((c) => c.args.includes("restart"))).toBe(false);
    });

    // A lowered setting: a replica restarted first would keep the leader's value, and restart again.
    it("restarts the leader first, in place with its clients held, when a hot-standby minimum is only lowered; then each other once", () => {
        const all = [1, 2, 3, 4].map(container);
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(3), pending: all });
        expect(run.status).toBe(0);
        expect(run.stderr).toBe("");
        expect(run.calls).toContainEqual(orderCheck(3));
        // No replica runs the lowered value while the leader does not: there is no one to switch over to.
        const inPlace = { container: "cluster.sh", args: ["-c", "obcms-database-production", "restart", "--in-place", "pg-3"] };
        expect(run.calls.filter((c) => c.args.includes("restart"))).toEqual([inPlace, ...restarts(1, 2, 4)]);
        // Each restarted member loads the parameters again before the next is restarted.
        const afterFirstReplicaRestart = run.calls.findIndex((c) => c.args.includes("patronictl") && c.args.includes("restart")) + 1;
        expect(run.calls[afterFirstReplicaRestart]).toEqual(parameterChecks(1)[0]);
        expect(run.calls.slice(-4)).toEqual(parameterChecks(1, 2, 3, 4));
    });

    // With another minimum raised, a standby must not run below the primary: the others still go first.
    it("keeps the others first, then the leader, then the others still pending, when a minimum is raised beside the lowered one", () => {
        const all = [1, 2, 3, 4].map(container);
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(3), pending: all, mixed: true });
        expect(run.status).toBe(0);
        expect(run.calls).toContainEqual(orderCheck(3));
        const inPlace = { container: "cluster.sh", args: ["-c", "obcms-database-production", "restart", "--in-place", "pg-3"] };
        expect(run.calls.filter((c) => c.args.includes("restart"))).toEqual([...restarts(1, 2, 4), inPlace, ...restarts(1, 2, 4)]);
    });

    // A raised setting: a restarted replica runs it, and takes the lead before the leader restarts.
    it("hands the lead to a member that runs the parameters before restarting the old leader, which restarts as a replica", () => {
        const all = [1, 2, 3, 4].map(container);
        const switchover = { container: "cluster.sh", args: ["-c", "obcms-database-production", "switchover", "pg-1"] };
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(3), pending: all, raised: true });
        expect(run.status).toBe(0);
        expect(run.stderr).toBe("");
        const steps = run.calls.filter((c) => c.args.includes("restart") || c.container === "cluster.sh");
        expect(steps).toEqual([...restarts(1, 2, 4), switchover, ...restarts(3)]);
        // Asked after the switchover, the new leader is pg-1: the old one replays its WAL like any other.
        const afterSwitchover = run.calls.findIndex((c) => c.container === "cluster.sh") + 1;
        expect(run.calls[afterSwitchover]).toEqual(parameterChecks(3)[0]);
        expect(run.calls).toContainEqual({ container: container(1), args: [...PSQL_VALUE, "SELECT pg_current_wal_lsn()"] });
        expect(run.calls.slice(-4)).toEqual(parameterChecks(1, 2, 3, 4));
    });

    it("restarts the leader in place, saying so, when the switchover fails", () => {
        const all = [1, 2, 3, 4].map(container);
        const run = runWithFakeDocker(command, DYNAMIC, {
            leader: container(3),
            pending: all,
            raised: true,
            clusterScriptFails: true,
        });
        expect(run.status).toBe(0);
        expect(run.stderr).toBe(
            "the switchover to pg-1 failed: restarting pg-3 in place\nholding the clients failed: restarting pg-3 in place without\n",
        );
        const steps = run.calls.filter((c) => c.args.includes("restart") || c.container === "cluster.sh");
        expect(steps).toEqual([
            ...restarts(1, 2, 4),
            { container: "cluster.sh", args: ["-c", "obcms-database-production", "switchover", "pg-1"] },
            { container: "cluster.sh", args: ["-c", "obcms-database-production", "restart", "--in-place", "pg-3"] },
            ...restarts(3),
        ]);
    });

    // Its replay is late by design, and its hot-standby minimums follow the leader's only after the delay.
    it("checks and restarts the delayed replica last, where it is, with no wait for its replay and no minimum compared", () => {
        const delayed = clusterTopology({ ...production, delayedReplicaMinutes: 60 }).delayedReplica!;
        const withDelayed = dynamicConfigCommand(members, "obcms-database-production", EXPECTED, delayed);
        expect(shellSyntaxCheck(withDelayed)).toEqual({ status: 0, stderr: "" });
        const loaded = { container: delayed.container, args: [...PSQL_VALUE, memberParametersState({ ...EXPECTED, standbyMinimums: {} })] };
        const restartDelayed = {
            container: delayed.container,
            args: ["patronictl", "-c", "/etc/obcms/patroni.yml", "restart", "obcms-database-production", "pg-delayed", "--force"],
        };

        const run = runWithFakeDocker(withDelayed, DYNAMIC, { leader: container(1), pending: [delayed.container] });
        expect(run.status).toBe(0);
        expect(run.calls.slice(-7)).toEqual([...parameterChecks(1, 2, 3, 4), loaded, restartDelayed, loaded]);
        expect(run.calls.filter((c) => c.container === delayed.container)).toEqual([loaded, restartDelayed, loaded]);

        const idle = runWithFakeDocker(withDelayed, DYNAMIC, { leader: container(1) });
        expect(idle.status).toBe(0);
        expect(idle.calls.slice(-5)).toEqual([...parameterChecks(1, 2, 3, 4), loaded]);
    });

    it("restarts only the member that reports a pending restart", () => {
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(1), pending: [container(4)] });
        expect(run.status).toBe(0);
        expect(run.calls.filter((c) => c.args.includes("restart"))).toEqual(restarts(4));
    });

    it("gives up after the search fails as often as the SQL's does, naming what it could not apply", () => {
        const run = runWithFakeDocker(command, DYNAMIC, { leader: container(1), noLeaderRounds: LEADER_ATTEMPTS });
        expect(run.status).toBe(1);
        expect(run.stderr).toBe(`no leader took the dynamic configuration after ${LEADER_ATTEMPTS} attempts\n`);
        expect(run.calls.some((c) => c.args.includes("edit-config") || c.args.includes("restart"))).toBe(false);
    });
});

describe("the stale-parameters script on the project image's Python", { timeout: 60_000 }, () => {
    const run = (shown: string, declared: readonly string[]) =>
        spawnSync(
            "docker",
            [
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                "--entrypoint",
                "python3",
                PROJECT_IMAGE,
                "-c",
                STALE_PARAMETERS_SCRIPT,
                ...declared,
            ],
            {
                input: shown,
                encoding: "utf8",
            },
        );
    const shown = [
        "loop_wait: 5",
        "postgresql:",
        "  parameters:",
        "    DateStyle: ISO, DMY",
        "    log_min_duration_statement: 250ms",
        "    obcms.parameters_digest: 0123456789abcdef",
        "    ssl_cert_file: /etc/obcms/tls/server.crt",
        "    work_mem: 5140kB",
        "  use_slots: true",
        "",
    ].join("\n");

    it("sets to null each parameter of the shown configuration that is not declared, whatever its case", () => {
        const result = run(shown, ["datestyle", "obcms.parameters_digest", "work_mem"]);
        expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: "" });
        expect(result.stdout).toBe("postgresql:\n  parameters:\n    log_min_duration_statement: null\n    ssl_cert_file: null\n");
    });

    it("prints nothing when every parameter is declared, or there are none", () => {
        expect(run(shown, ["DateStyle", "log_min_duration_statement", "obcms.parameters_digest", "ssl_cert_file", "work_mem"]).stdout).toBe(
            "",
        );
        expect(run("loop_wait: 5\n", ["work_mem"]).stdout).toBe("");
    });
});

describe("the parameters check on PostgreSQL 17 in the project image", { timeout: 60_000 }, () => {
    // A server started with max_connections 150 and the digest "abc"; then max_connections 100 is set and
    // reloaded, which PostgreSQL marks as waiting for a restart.
    it("answers stale for another digest, pending for another minimum or a pending restart, applied otherwise", () => {
        const check = (expected: RunningParameters) => psqlValue(memberParametersState(expected));
        const run = onPostgres("-c max_connections=150 -c obcms.parameters_digest=abc", [
            check({ digest: "abc", standbyMinimums: { max_connections: "150" }, names: [] }),
            check({ digest: "other", standbyMinimums: { max_connections: "150" }, names: [] }),
            check({ digest: "abc", standbyMinimums: { max_connections: "100" }, names: [] }),
            check({ digest: "abc", standbyMinimums: {}, names: [] }),
            `psql -X -q -h /tmp -d postgres -c "ALTER SYSTEM SET max_connections = 100" -c "SELECT pg_reload_conf()" >/dev/null`,
            "sleep 1",
            check({ digest: "abc", standbyMinimums: { max_connections: "150" }, names: [] }),
        ]);
        expect(run).toEqual([0, "applied\nstale\npending\napplied\npending\n", ""]);
    });

    // A server running max_connections 150 and max_worker_processes 8, asked before any restart.
    it("reports the hot-standby minimums only lowered when one declared value is below the running one and none above", () => {
        const declared: Array<Record<string, string>> = [
            { max_connections: "100" },
            { max_connections: "200" },
            { max_connections: "150" },
            { max_connections: "100", max_worker_processes: "16" },
            { max_connections: "100", max_worker_processes: "8" },
        ];
        const run = onPostgres(
            "-c max_connections=150 -c max_worker_processes=8",
            declared.map((standbyMinimums) => psqlValue(onlyLoweredMinimums({ digest: "abc", standbyMinimums, names: [] }))),
        );
        expect(run).toEqual([0, "t\nf\nf\nf\nt\n", ""]);
    });
});
