// The command that rotates the application role's password in PostgreSQL and
// PgBouncer together, run by /bin/sh with `docker` replaced by a shell
// function that answers like the cluster. The reliability tests run it
// against real containers, with writers running.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { UnsafeValueError } from "../../components/render/escape";
import { UNRECORDED_SESSION_OPTIONS } from "../../components/render/patroni/leader-commands";
import { pgbouncerVolumeTarget } from "../../components/render/pgbouncer/config";
import {
    CREDENTIALS_WAIT_TENTHS,
    credentialsInputUserlist,
    pgbouncerCredentialsCommand,
    renderCredentialsInput,
} from "../../components/render/pgbouncer/credentials-command";
import { IMAGE_VARIABLE } from "../../components/render/volume-command";
import { clusterTopology, possibleMembers } from "../../components/topology";
import { production, productionPgbouncerVolumeWrite, shellSyntaxCheck } from "./fixtures";

const { pgbouncer } = clusterTopology(production);
const PGBOUNCER = pgbouncer.container;
const LEADER = "obcms-database-production-pg-2";
const command = pgbouncerCredentialsCommand(pgbouncerVolumeTarget(production), possibleMembers(production), {
    user: "obcms_app",
    database: "obcms",
});
const USERLIST = '"monitoring" "SCRAM-SHA-256$4096:c2FsdA==$a:b"\n"obcms_app" "SCRAM-SHA-256$4096:c2FsdA==$c:d"\n';
const SQL = `ALTER ROLE "obcms_app" WITH PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c:d';`;
const CURRENT = `SELECT EXISTS (SELECT FROM pg_authid WHERE rolname = 'obcms_app' AND rolpassword = 'SCRAM-SHA-256$4096:c2FsdA==$c:d')`;
const PASSWORD = "New-Application-Password-0001";
const input = renderCredentialsInput({ password: PASSWORD, sql: SQL, current: CURRENT, userlist: USERLIST });

/**
 * Logs each call's arguments (NUL-separated) to $DIR/calls and an `-i`
 * call's stdin to $DIR/stdin-<n>. `container inspect` prints $RUNNING;
 * Patroni's /primary answers for $LEADER; SHOW STATE reports the pools
 * paused once a SIGUSR1 was sent unless $NEVER_PAUSES; the replicas have
 * replayed after $BEHIND_ROUNDS checks; the priming login exits $PRIMING;
 * the role has the verifier already if $HAS_VERIFIER; the command gets
 * SIGTERM during the priming login if $PRIMING_TERM.
 */
const FAKE_DOCKER = `
sleep() { :; }
docker() {
  calls=0; if [ -f "$DIR/calls" ]; then calls="$(wc -l < "$DIR/calls")"; fi
  { printf '%s\\0' "$@"; printf '\\n'; } >> "$DIR/calls"
  case "$1" in
    run) cat > "$DIR/stdin-$((calls + 1))"; return 0 ;;
    container) printf '%s\\n' "$RUNNING"; return 0 ;;
    kill) [ "$3" = SIGUSR1 ] && [ -z "$NEVER_PAUSES" ] && touch "$DIR/paused"; return 0 ;;
    ps) return 0 ;;
    exec) ;;
    *) return 99 ;;
  esac
  shift
  if [ "$1" = -i ]; then shift; cat > "$DIR/stdin-$((calls + 1))"; fi
  container="$1"
  case " $* " in
    *" curl "*) eval "url=\\\${$#}"; [ "\${url##*/}" = primary ] && [ "$container" = "$LEADER" ]; return ;;
    *" SHOW STATE "*) if [ -f "$DIR/paused" ]; then echo 'active|no'; else echo 'active|yes'; fi; echo 'paused|no'; return 0 ;;
    *" pg_current_wal_lsn() "*) echo 0/3000060; return 0 ;;
    *" FROM pg_authid "*) if [ -n "$HAS_VERIFIER" ]; then echo t; else echo f; fi; return 0 ;;
    *"replay_lsn >= '0/3000060'"*)
      echo >> "$DIR/replays"
      if [ "$(wc -l < "$DIR/replays")" -le "$BEHIND_ROUNDS" ]; then echo f; else echo t; fi; return 0 ;;
    *" priming "*) if [ -n "$PRIMING_TERM" ]; then kill -TERM $$; fi; return "$PRIMING" ;;
  esac
  return 0
}
`;

interface Fake {
    readonly running: boolean;
    readonly priming?: number;
    readonly behindRounds?: number;
    readonly neverPauses?: boolean;
    readonly hasVerifier?: boolean;
    readonly primingTerm?: boolean;
}

function run(fake: Fake) {
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-pgbouncer-credentials-"));
    try {
        const result = spawnSync("/bin/sh", ["-c", `${FAKE_DOCKER}\n${command}`], {
            input,
            encoding: "utf8",
            env: {
                PATH: process.env.PATH,
                DIR: dir,
                RUNNING: fake.running ? "true" : "",
                LEADER,
                PRIMING: String(fake.priming ?? 0),
                BEHIND_ROUNDS: String(fake.behindRounds ?? 0),
                NEVER_PAUSES: fake.neverPauses ? "1" : "",
                HAS_VERIFIER: fake.hasVerifier ? "1" : "",
                PRIMING_TERM: fake.primingTerm ? "1" : "",
                [IMAGE_VARIABLE]: "sha256:0123",
            },
        });
        const calls = readFileSync(path.join(dir, "calls"), "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line, i) => {
                const args = line.split("\0").slice(0, -1);
                let stdin: string | undefined;
                try {
                    stdin = readFileSync(path.join(dir, `stdin-${i + 1}`), "utf8");
                } catch {
                    stdin = undefined;
                }
                return { args, stdin };
            });
        return { status: result.status, stderr: result.stderr, calls };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/** A call as one readable line: what it does, and where. */
function step({ args }: { args: string[] }): string {
    const text = args.join(" ");
    if (args[0] === "run") return "write the userlist";
    if (args[0] === "container") return "is PgBouncer running?";
    if (args[0] === "kill") return `${args[2]} to ${args[3]}`;
    const container = args[1] === "-i" ? args[2] : args[1] === "-e" ? args[3] : args[1];
    if (text.includes(" curl ")) return `leads? ${container}`;
    if (text.includes(" -d pgbouncer -c ")) return `admin ${args[args.length - 1]}`;
    if (text.includes(" priming ")) return `priming login on ${container}`;
    if (text.includes(" -f -")) return `the verifier's SQL on ${container}`;
    if (text.includes("pg_current_wal_lsn()")) return `WAL position of ${container}`;
    if (text.includes(" FROM pg_authid ")) return `has the verifier? (${container})`;
    if (text.includes("replay_lsn")) return `replayed? (${container})`;
    return text;
}

const FIND_LEADER = ["leads? obcms-database-production-pg-1", `leads? ${LEADER}`, `has the verifier? (${LEADER})`];
const ON_LEADER = [`the verifier's SQL on ${LEADER}`, `WAL position of ${LEADER}`, `replayed? (${LEADER})`];

describe("pgbouncerCredentialsCommand", () => {
    it("is valid sh", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("before PgBouncer's container runs, writes the userlist and gives the leader the verifier, and no more", () => {
        const result = run({ running: false });
        expect(result).toMatchObject({ status: 0, stderr: "" });
        expect(result.calls.map(step)).toEqual(["write the userlist", "is PgBouncer running?", ...FIND_LEADER, ...ON_LEADER]);
    });

    it("writes the userlist private, by rename, from the image, with no network", () => {
        const [write] = run({ running: false }).calls;
        expect(write.args).toEqual(
            productionPgbouncerVolumeWrite(
                "umask 077 && cat > /var/lib/obcms/pgbouncer/userlist.txt.new && mv /var/lib/obcms/pgbouncer/userlist.txt.new /var/lib/obcms/pgbouncer/userlist.txt",
            ),
        );
        expect(write.stdin).toBe(USERLIST);
    });

    it("with PgBouncer running, applies the verifier and the userlist while the pools are paused, primed by a login with the new password", () => {
        const result = run({ running: true });
        expect(result).toMatchObject({ status: 0, stderr: "" });
        expect(result.calls.map(step)).toEqual([
            "write the userlist",
            "is PgBouncer running?",
            ...FIND_LEADER,
            `SIGUSR1 to ${PGBOUNCER}`,
            "admin SHOW STATE",
            ...ON_LEADER,
            "admin RELOAD",
            `priming login on ${PGBOUNCER}`,
            `SIGUSR2 to ${PGBOUNCER}`,
        ]);
        const sql = result.calls.find((c) => step(c).startsWith("the verifier's SQL"));
        expect(sql?.stdin).toBe(`${SQL}\n`);
        // Both sessions that carry the verifier record no statement: no log line, no pg_stat_statements text.
        const check = result.calls.find((c) => step(c).startsWith("has the verifier?"));
        for (const call of [sql, check]) {
            expect(call?.args.join(" ")).toContain(` env PGOPTIONS=${UNRECORDED_SESSION_OPTIONS} psql `);
        }
        // The password only on the login's standard input, read inside PgBouncer's container.
        const priming = result.calls.find((c) => step(c).startsWith("priming"));
        expect(priming?.stdin).toBe(`${PASSWORD}\n`);
        expect(result.calls.flatMap((c) => c.args).some((arg) => arg.includes(PASSWORD))).toBe(false);
        expect(priming?.args.slice(-3)).toEqual(["priming", "obcms_app", "obcms"]);
        expect(priming?.args).toContain(
            'IFS= read -r PGPASSWORD && export PGPASSWORD && exec timeout 3 psql -X -q -h /var/run/postgresql -p 6432 -U "$1" -d "$2" -c \'\\q\'',
        );
    });

    // Run again for a rotated admin or monitoring password, or a new image: PgBouncer's keys for the role still match.
    // The login gives PgBouncer the role's keys again, should an earlier run have stopped between its ALTER ROLE and its own login.
    it("when the role has the verifier already, reloads the userlist and logs in, without pausing the pools or touching the role", () => {
        const result = run({ running: true, hasVerifier: true });
        expect(result).toMatchObject({ status: 0, stderr: "" });
        expect(result.calls.map(step)).toEqual([
            "write the userlist",
            "is PgBouncer running?",
            ...FIND_LEADER,
            "admin RELOAD",
            `priming login on ${PGBOUNCER}`,
        ]);
        expect(result.calls.at(-1)?.stdin).toBe(`${PASSWORD}\n`);
        expect(run({ running: true, hasVerifier: true, priming: 2 })).toMatchObject({
            status: 1,
            stderr: "PgBouncer refused the password after its RELOAD; its log says why\n",
        });
        const before = run({ running: false, hasVerifier: true });
        expect(before).toMatchObject({ status: 0, stderr: "" });
        expect(before.calls.map(step)).toEqual(["write the userlist", "is PgBouncer running?", ...FIND_LEADER]);
    });

    it("waits, boundedly, for the streaming replicas to replay the verifier before PgBouncer takes the new password", () => {
        const result = run({ running: true, behindRounds: 3 });
        expect(result).toMatchObject({ status: 0, stderr: "" });
        const steps = result.calls.map(step);
        expect(steps.filter((s) => s.startsWith("replayed?"))).toHaveLength(4);
        expect(steps.indexOf("admin RELOAD")).toBeGreaterThan(steps.lastIndexOf(`replayed? (${LEADER})`));

        const lagging = run({ running: true, behindRounds: 1000 });
        expect(lagging.status).toBe(0);
        expect(lagging.stderr).toBe(`the streaming replicas did not replay the new password within ${CREDENTIALS_WAIT_TENTHS / 10} s\n`);
        expect(lagging.calls.map(step).slice(-2)).toEqual([`priming login on ${PGBOUNCER}`, `SIGUSR2 to ${PGBOUNCER}`]);
    });

    // The priming login waits for the pool's first server connection, which the pause holds back.
    it("takes a priming login that timed out (124) as done: PgBouncer checked the password before waiting", () => {
        expect(run({ running: true, priming: 124 })).toMatchObject({ status: 0, stderr: "" });
    });

    it("fails when PgBouncer refuses the new password, with its pools resumed", () => {
        const result = run({ running: true, priming: 2 });
        expect(result.status).toBe(1);
        expect(result.stderr).toBe("PgBouncer refused the password after its RELOAD; its log says why\n");
        expect(result.calls.map(step).slice(-1)).toEqual([`SIGUSR2 to ${PGBOUNCER}`]);
    });

    it("killed while the pools are paused, resumes them before it exits", () => {
        const result = run({ running: true, primingTerm: true });
        expect(result.status).toBe(1);
        expect(result.calls.map(step).slice(-2)).toEqual([`priming login on ${PGBOUNCER}`, `SIGUSR2 to ${PGBOUNCER}`]);
    });

    it("touches neither PostgreSQL nor the userlist's RELOAD until PgBouncer reports its pools paused, and resumes them meanwhile", () => {
        const result = run({ running: true, neverPauses: true });
        const steps = result.calls.map(step);
        expect(steps).not.toContain(`the verifier's SQL on ${LEADER}`);
        expect(steps).not.toContain("admin RELOAD");
        expect(steps.filter((s) => s === `SIGUSR1 to ${PGBOUNCER}`).length).toBe(
            steps.filter((s) => s === `SIGUSR2 to ${PGBOUNCER}`).length,
        );
        expect(result.stderr).toContain(`PgBouncer did not pause its pools within ${CREDENTIALS_WAIT_TENTHS / 10} s\n`);
        expect(result.status).toBe(1);
    }, 60_000);
});

describe("the credentials command's standard input", () => {
    it("is the password and the two statements on a line each, then the userlist, which the policies read back", () => {
        expect(input).toBe(`${PASSWORD}\n${SQL}\n${CURRENT}\n${USERLIST}`);
        expect(credentialsInputUserlist(input)).toBe(USERLIST);
    });

    it("refuses a password or statement that would end its line early", () => {
        expect(() => renderCredentialsInput({ password: "a\nb", sql: SQL, current: CURRENT, userlist: USERLIST })).toThrow(
            UnsafeValueError,
        );
        expect(() =>
            renderCredentialsInput({ password: PASSWORD, sql: "SELECT 1;\nDROP ROLE x;", current: CURRENT, userlist: USERLIST }),
        ).toThrow(UnsafeValueError);
        expect(() =>
            renderCredentialsInput({ password: PASSWORD, sql: SQL, current: "SELECT true\nDROP ROLE x;", userlist: USERLIST }),
        ).toThrow(UnsafeValueError);
    });
});
