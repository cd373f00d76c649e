// scripts/cluster.sh against the program's own names, and its decisions
// against a stand-in `docker` that answers as a running cluster would: which
// member it picks, what it refuses, and the order of PAUSE, switchover and
// RESUME. The switchover on real containers is in test/integration/failover.test.ts.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROUTER_BACKENDS } from "../../components/render/haproxy/haproxy-cfg";
import { FILES, PGDATA, ROUTER_ADMIN_SOCKET, SOCKET_DIR, VOLUME_DIR } from "../../components/render/paths";
import { BIN_DIR } from "../../components/render/patroni/patroni-yml";
import { SWITCHOVER_HOLD_DIR } from "../../components/render/patroni/switchover-hold";
import { HAPROXY_METRICS_PORT, PATRONI_REST_PORT, PGBOUNCER_PORT } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { production } from "../render/fixtures";

const SCRIPT = path.join(PROJECT_ROOT, "scripts", "cluster.sh");
const CLUSTER = production.clusterName;

/**
 * A `docker` that logs each call to $CALLS and answers from files: members.tsv
 * for the jq'd `patronictl list`, whose plain form times out (124) in the
 * member containers listed in isolated, config.yml for `show-config`. What
 * the script runs in PgBouncer's container runs here, with CURL, PSQL and
 * SOCAT. The leader's Patroni is played as it runs a switchover: it stops
 * its PostgreSQL (the hold's watch sees \`stopping\`) only once asked, and
 * finishes only once the hold is released, as the before_stop hook makes it.
 */
const FAKE_DOCKER = `#!/bin/sh
dir="$(dirname "$0")"
printf '%s\\n' "$*" >> "$CALLS"
case "$*" in
  "ps --all"*) for k in 1 2 3 4; do echo "${CLUSTER}-pg-$k"; done ;;
  "inspect --format {{.State.Running}}"*) echo true ;;
  "exec "*" timeout 10 patronictl -c /etc/obcms/patroni.yml list")
    member="\${2}"
    if grep -qx "$member" "$dir/isolated" 2>/dev/null; then exit 124; fi ;;
  *"list --format json"*) cat "$dir/members.tsv" ;;
  *"show-config"*) cat "$dir/config.yml" ;;
  "exec ${CLUSTER}-pg-"*"/switchover")
    if [ -e "$dir/refused" ]; then cat "$dir/refused"; exit 22; fi
    touch "$dir/requested"
    tries=0
    until [ -e "$dir/released" ] || [ "$tries" -ge 3000 ]; do /bin/sleep 0.01; tries=$((tries + 1)); done
    touch "$dir/switched"; echo 'Successfully switched over to "pg-2"' ;;
  "exec ${CLUSTER}-pg-"*" sh -c grep -q '^  before_stop: ' ${FILES.patroniConf} || exit 3; rm -rf ${SWITCHOVER_HOLD_DIR} && mkdir "*)
    if [ -e "$dir/no-hold" ]; then exit 3; fi
    touch "$dir/armed" ;;
  "exec ${CLUSTER}-pg-"*" rm -rf ${SWITCHOVER_HOLD_DIR}") touch "$dir/disarmed" ;;
  "exec -i ${CLUSTER}-pg-"*" sh -c while [ ! -f ${SWITCHOVER_HOLD_DIR}/stopping ]"*)
    [ -e "$dir/armed" ] || exit 1
    tries=0
    until [ -e "$dir/requested" ] || [ -e "$dir/disarmed" ] || [ "$tries" -ge 3000 ]; do /bin/sleep 0.01; tries=$((tries + 1)); done
    [ -e "$dir/requested" ] && [ ! -e "$dir/no-stop" ] || exit 1
    echo "hold: stopping" >> "$CALLS"; echo stopping
    read -r line && [ "$line" = paused ] && echo "hold: released" >> "$CALLS" && touch "$dir/released" ;;
  "exec -i -e PGPASSFILE=${FILES.pgpass} ${CLUSTER}-pgbouncer sh -c"*) export "$4"; shift 7; exec sh -c "$@" ;;
  "exec ${CLUSTER}-pg-"*"/restart")
    if [ -e "$dir/restart-refused" ]; then cat "$dir/restart-refused"; exit 22; fi
    echo 'restarted successfully' ;;
  "exec "*" patronictl -c /etc/obcms/patroni.yml restart ${CLUSTER} "*" --force") ;;
  "exec -e PGPASSFILE=${FILES.pgpass} ${CLUSTER}-pgbouncer sh -c"*) export "$3"; shift 6; exec sh -c "$@" ;;
  *) echo "unexpected docker $*" >&2; exit 99 ;;
esac
`;

/**
 * In PgBouncer's container: the router's metrics, metrics.txt, or
 * metrics-after.txt once a switchover ran; Patroni's \`/primary\` on a member,
 * which says pg-2 is the primary once it switched over, pg-1 before.
 */
const CURL = `#!/bin/sh
dir="$(dirname "$0")"
case "$*" in
  "-fs --max-time 1 http://127.0.0.1:${HAPROXY_METRICS_PORT}/metrics")
    if [ -e "$dir/switched" ]; then cat "$dir/metrics-after.txt"; else cat "$dir/metrics.txt"; fi ;;
  "-fs --max-time 1 --cacert ${FILES.tlsCa} https://${CLUSTER}-pg-"*":${PATRONI_REST_PORT}/primary")
    if [ -e "$dir/switched" ]; then leader=pg-2; else leader=pg-1; fi
    case "$*" in
      *"-$leader:${PATRONI_REST_PORT}/primary") echo '{"state": "running", "role": "primary"}' ;;
      *) echo '{"state": "running", "role": "replica"}'; exit 22 ;;
    esac ;;
  *) echo "unexpected curl $*" >&2; exit 99 ;;
esac
`;

/** The router's runtime API: logs the command it gets. */
const SOCAT = `#!/bin/sh
[ "$*" = "stdio unix-connect:${ROUTER_ADMIN_SOCKET}" ] || { echo "unexpected socat $*" >&2; exit 99; }
printf 'router: %s\\n' "$(cat)" >> "$CALLS"
`;

/** PgBouncer's admin console: logs the command, and the password file it got from the environment. */
const PSQL = `#!/bin/sh
printf 'psql %s\\n' "$*" >> "$CALLS"
printf 'passfile=%s\\n' "$PGPASSFILE" >> "$CALLS"
`;

/** As member_lines prints them; the delayed replica first among the replicas, where a default would find it first. */
const MEMBERS = [
    "pg-1\tleader\trunning\t3\t\tfalse",
    "pg-delayed\treplica\tstreaming\t3\t0\ttrue",
    "pg-2\treplica\tstreaming\t3\t0\tfalse",
    "pg-3\treplica\tstopped\t\t\tfalse",
    "pg-4\treplica\tstreaming\t3\t5\tfalse",
];

function routerMetrics(up: string): string {
    return ["pg-1", "pg-2", "pg-3", "pg-4"]
        .map((m) => `haproxy_server_status{proxy="${ROUTER_BACKENDS.readWrite}",server="${m}",state="${m === up ? "UP" : "DOWN"}"} 1`)
        .join("\n");
}

describe("scripts/cluster.sh", () => {
    let dir: string;

    beforeEach(() => {
        dir = mkdtempSync(path.join(tmpdir(), "cluster-sh-"));
        for (const [name, script] of [
            ["docker", FAKE_DOCKER],
            ["curl", CURL],
            ["psql", PSQL],
            ["socat", SOCAT],
        ]) {
            writeFileSync(path.join(dir, name), script);
            chmodSync(path.join(dir, name), 0o755);
        }
        // The script polls the router every 0.1 s: no need to wait here.
        writeFileSync(path.join(dir, "sleep"), "#!/bin/sh\n");
        chmodSync(path.join(dir, "sleep"), 0o755);
        writeFileSync(path.join(dir, "members.tsv"), `${MEMBERS.join("\n")}\n`);
        writeFileSync(path.join(dir, "config.yml"), "loop_wait: 5\nmaximum_lag_on_failover: 1048576\nttl: 20\n");
        writeFileSync(path.join(dir, "metrics.txt"), routerMetrics("pg-1"));
        writeFileSync(path.join(dir, "metrics-after.txt"), routerMetrics("pg-2"));
    });

    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    function cluster(...args: string[]) {
        const result = spawnSync("bash", [SCRIPT, "-c", CLUSTER, ...args], {
            encoding: "utf8",
            env: {
                PATH: `${dir}:${process.env.PATH}`,
                CALLS: path.join(dir, "calls"),
            },
        });
        const calls = (() => {
            try {
                return readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
            } catch {
                return [];
            }
        })();
        return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
    }

    it("uses the program's paths, ports and router backend", () => {
        const script = readFileSync(SCRIPT, "utf8");
        const value = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(script)?.[1];
        expect({
            PATRONI_CONF: value("PATRONI_CONF"),
            PATRONI_REST_URL: value("PATRONI_REST_URL"),
            TLS_CA: value("TLS_CA"),
            SOCKET_DIR: value("SOCKET_DIR"),
            PGBOUNCER_PORT: value("PGBOUNCER_PORT"),
            PGPASS: value("PGPASS"),
            ROUTER_METRICS_URL: value("ROUTER_METRICS_URL"),
            ROUTER_READ_WRITE_BACKEND: value("ROUTER_READ_WRITE_BACKEND"),
            PGDATA: value("PGDATA"),
            PG_BIN: value("PG_BIN"),
            DELAYED_COPY: value("DELAYED_COPY"),
            ROUTER_ADMIN_SOCKET: value("ROUTER_ADMIN_SOCKET"),
            PATRONI_REST_PORT: value("PATRONI_REST_PORT"),
            SWITCHOVER_HOLD_DIR: value("SWITCHOVER_HOLD_DIR"),
        }).toEqual({
            PATRONI_CONF: FILES.patroniConf,
            PATRONI_REST_URL: `https://localhost:${PATRONI_REST_PORT}`,
            TLS_CA: FILES.tlsCa,
            SOCKET_DIR,
            PGBOUNCER_PORT: String(PGBOUNCER_PORT),
            PGPASS: FILES.pgpass,
            ROUTER_METRICS_URL: `http://127.0.0.1:${HAPROXY_METRICS_PORT}/metrics`,
            ROUTER_READ_WRITE_BACKEND: ROUTER_BACKENDS.readWrite,
            PGDATA,
            PG_BIN: BIN_DIR,
            // On the member's volume, beside its data directory.
            DELAYED_COPY: `${VOLUME_DIR}/delayed-copy`,
            ROUTER_ADMIN_SOCKET,
            PATRONI_REST_PORT: String(PATRONI_REST_PORT),
            SWITCHOVER_HOLD_DIR,
        });
        // Members and PgBouncer by the topology's names.
        const t = clusterTopology(production);
        expect(t.members.map((m) => m.container)).toEqual([1, 2, 3, 4].map((k) => `${CLUSTER}-pg-${k}`));
        expect(t.pgbouncer.container).toBe(`${CLUSTER}-pgbouncer`);
        expect(clusterTopology({ ...production, delayedReplicaMinutes: 60 }).delayedReplica?.container).toBe(`${CLUSTER}-pg-delayed`);
        expect(script).toContain('delayed="$cluster-pg-delayed"');
        expect(script).toContain('. "$(dirname "$0")/lib/stack.sh"');
        expect(readFileSync(path.join(PROJECT_ROOT, "scripts", "lib", "stack.sh"), "utf8")).toContain(
            `--filter "name=^/$cluster-pg-[0-9]+$"`,
        );
        expect(script).toContain('pgbouncer="$cluster-pgbouncer"');
    });

    it("status prints each member's name, role, state, timeline and lag", () => {
        const { status, stdout } = cluster("status");
        expect(status).toBe(0);
        expect(stdout.split("\n")).toEqual([
            "MEMBER     ROLE     STATE      TIMELINE  LAG_MB",
            "pg-1       leader   running    3         ",
            "pg-delayed replica  streaming  3         0",
            "pg-2       replica  streaming  3         0",
            "pg-3       replica  stopped              ",
            "pg-4       replica  streaming  3         5",
            "",
        ]);
    });

    // A member cut off from the network: its patronictl waits on etcd without end.
    it("runs patronictl in the first member whose patronictl answers, and says so when none does", () => {
        writeFileSync(path.join(dir, "isolated"), `${CLUSTER}-pg-1\n`);
        const { status, stdout, calls } = cluster("status");
        expect(status).toBe(0);
        expect(stdout.split("\n")[1]).toBe("pg-1       leader   running    3         ");
        expect(calls.filter((c) => c.includes("patronictl"))).toEqual([
            `exec ${CLUSTER}-pg-1 timeout 10 patronictl -c ${FILES.patroniConf} list`,
            `exec ${CLUSTER}-pg-2 timeout 10 patronictl -c ${FILES.patroniConf} list`,
            expect.stringMatching(new RegExp(`^exec ${CLUSTER}-pg-2 sh -c patronictl -c ${FILES.patroniConf} list --format json`)),
        ]);

        writeFileSync(path.join(dir, "isolated"), [1, 2, 3, 4].map((k) => `${CLUSTER}-pg-${k}\n`).join(""));
        const none = cluster("status");
        expect([none.status, none.stdout, none.stderr]).toEqual([
            1,
            "",
            `cluster.sh: no running member of ${CLUSTER} reaches etcd within 10 s\n`,
        ]);
    });

    it("refuses a switchover to a member that is not streaming, that lags past the failover bound, that leads, that never leads, or that does not exist", () => {
        const refused = (member: string) => {
            const { status, stderr, calls } = cluster("switchover", member);
            expect(status).toBe(1);
            // Nothing paused, nothing switched.
            expect(calls.filter((c) => /PAUSE|\/switchover/.test(c))).toEqual([]);
            return stderr.trim();
        };
        expect(refused("pg-3")).toBe("cluster.sh: refusing to switch over to pg-3: it is stopped, not streaming");
        expect(refused("pg-4")).toBe("cluster.sh: refusing to switch over to pg-4: it lags 5 MB behind the leader (bound: 1 MB)");
        expect(refused("pg-1")).toBe("cluster.sh: pg-1 already leads");
        expect(refused("pg-delayed")).toBe("cluster.sh: refusing to switch over to pg-delayed: it never leads (nofailover)");
        expect(refused("pg-9")).toBe("cluster.sh: no member pg-9 in the cluster (members: pg-1 pg-delayed pg-2 pg-3 pg-4 )");
    });

    /** The hold's arming, Patroni's REST calls and patronictl's restarts, the hold's watch, the admin console's commands and the router's, in order. */
    const steps = (calls: string[]) =>
        calls
            .map((c) =>
                c.startsWith("psql ")
                    ? c.slice(c.lastIndexOf(" ") + 1)
                    : c.startsWith("hold: ") || c.startsWith("router: ")
                      ? c
                      : /\/(restart|switchover)$/.test(c)
                        ? `${c.slice(0, c.indexOf(" sh -c "))} POST ${c.slice(c.lastIndexOf("{"))}`
                        : c.includes(`; rm -rf ${SWITCHOVER_HOLD_DIR} && mkdir `)
                          ? `arm ${c.split(" ")[1]}`
                          : c.endsWith(` rm -rf ${SWITCHOVER_HOLD_DIR}`)
                            ? `disarm ${c.split(" ")[1]}`
                            : c.includes(`patronictl -c ${FILES.patroniConf} restart`)
                              ? c
                              : undefined,
            )
            .filter((c) => c !== undefined);

    /** Patroni's REST API on the leader, with the credentials of its own patroni.yml. */
    const SWITCHOVER_REQUEST = `exec ${CLUSTER}-pg-1 POST {"leader": "pg-1", "candidate": "pg-2"} 60 https://localhost:${PATRONI_REST_PORT}/switchover`;
    /** pg-2's Patroni says it takes writes: the router takes it in, and pg-1 out, before their next checks. */
    const ROUTED_TO_PG_2 = `router: set server ${ROUTER_BACKENDS.readWrite}/pg-2 health up; set server ${ROUTER_BACKENDS.readWrite}/pg-1 health down`;

    /** A default switchover that succeeds: pg-1 hands the lead to pg-2. */
    function switchedOver(): string[] {
        const { status, stdout, stderr, calls } = cluster("switchover");
        expect(stderr).toBe("");
        expect(status).toBe(0);
        expect(stdout).toBe("pg-2 leads (was pg-1)\n");
        return calls;
    }

    it("switches over to the first streaming replica that may lead, pauses PgBouncer when the leader stops, and resumes once the router sends writes there", () => {
        const calls = switchedOver();
        expect(steps(calls)).toEqual([
            // The leader's before_stop hook will wait for the pools (switchover-hold.ts).
            `arm ${CLUSTER}-pg-1`,
            // Clients still commit meanwhile.
            SWITCHOVER_REQUEST,
            // Patroni is about to stop the leader's PostgreSQL: the pools pause, then the stop goes ahead.
            "hold: stopping",
            "PAUSE",
            "hold: released",
            ROUTED_TO_PG_2,
            "RESUME",
            // Nothing left armed, whether the hook ran or not.
            `disarm ${CLUSTER}-pg-1`,
        ]);
        // psql reads the admin password from the program's password file in PgBouncer's container.
        expect(calls.filter((c) => c.startsWith("passfile="))).toEqual([`passfile=${FILES.pgpass}`, `passfile=${FILES.pgpass}`]);
    });

    it("pauses PgBouncer first, for the whole switchover, when the leader's patroni.yml predates the hold", () => {
        // A member an update has not replaced yet: its Patroni runs no before_stop command.
        writeFileSync(path.join(dir, "no-hold"), "");
        // Its Patroni switches over without waiting for anything.
        writeFileSync(path.join(dir, "released"), "");
        expect(steps(switchedOver())).toEqual([`arm ${CLUSTER}-pg-1`, "PAUSE", SWITCHOVER_REQUEST, ROUTED_TO_PG_2, "RESUME"]);
    });

    it("ends its watch and says so when the leader's Patroni never ran the hold", () => {
        // Patroni switched over without stopping through its before_stop command: nothing paused.
        writeFileSync(path.join(dir, "no-stop"), "");
        writeFileSync(path.join(dir, "released"), "");
        const { status, stdout, stderr, calls } = cluster("switchover");
        expect(status).toBe(0);
        expect(stdout).toBe("pg-2 leads (was pg-1)\n");
        expect(stderr).toBe("cluster.sh: PgBouncer did not pause before pg-1 stopped: a transaction running then may have failed\n");
        expect(steps(calls)).toEqual([`arm ${CLUSTER}-pg-1`, SWITCHOVER_REQUEST, ROUTED_TO_PG_2, "RESUME", `disarm ${CLUSTER}-pg-1`]);
    });

    it("disarms the hold, pauses nothing and fails with Patroni's answer when Patroni refuses the switchover", () => {
        writeFileSync(path.join(dir, "refused"), "Switchover failed\n");
        const { status, stderr, calls } = cluster("switchover", "pg-2");
        expect(status).toBe(1);
        expect(stderr.trim()).toBe("cluster.sh: Patroni refused the switchover to pg-2: Switchover failed; resuming");
        // The RESUME is the trap's, for pools that may be paused; PgBouncer refuses it when they are not.
        expect(steps(calls).filter((c) => !c.includes("POST"))).toEqual([`arm ${CLUSTER}-pg-1`, `disarm ${CLUSTER}-pg-1`, "RESUME"]);
    });

    it("restarts the leader in place with the pools paused until the router sends writes to it again", () => {
        const { status, stdout, calls } = cluster("restart", "--in-place", "pg-1");
        expect(status).toBe(0);
        expect(stdout).toBe("pg-1 restarted in place\n");
        expect(steps(calls)).toEqual([
            "PAUSE",
            // Only while it is the primary: a member that lost the lead meanwhile is not restarted.
            `exec ${CLUSTER}-pg-1 POST {"role": "primary"} 60 https://localhost:${PATRONI_REST_PORT}/restart`,
            // Its Patroni says it takes writes again: the router takes it back in before its next check.
            `router: set server ${ROUTER_BACKENDS.readWrite}/pg-1 health up`,
            "RESUME",
        ]);
    });

    it("refuses an in-place restart that names no member, with the usage", () => {
        const { status, stderr, calls } = cluster("restart", "--in-place");
        expect(status).toBe(2);
        expect(stderr).toContain("restart --in-place MEMBER");
        expect(calls).toEqual([]);
    });

    it("restarts a replica in place through patronictl, pausing nothing", () => {
        const { status, calls } = cluster("restart", "--in-place", "pg-2");
        expect(status).toBe(0);
        expect(steps(calls)).toEqual([`exec ${CLUSTER}-pg-1 patronictl -c ${FILES.patroniConf} restart ${CLUSTER} pg-2 --force`]);
    });

    it("resumes the pools and fails with Patroni's answer when Patroni does not restart the leader", () => {
        writeFileSync(path.join(dir, "restart-refused"), "restart conditions are not satisfied\n");
        const { status, stderr, calls } = cluster("restart", "--in-place", "pg-1");
        expect(status).toBe(1);
        expect(stderr.trim()).toBe("cluster.sh: Patroni did not restart pg-1: restart conditions are not satisfied; resuming");
        expect(steps(calls).filter((c) => !c.includes("POST"))).toEqual(["PAUSE", "RESUME"]);
    });

    it("resumes the pools and fails when the router never sends writes to the new leader", () => {
        writeFileSync(path.join(dir, "metrics-after.txt"), routerMetrics("pg-1"));
        const { status, stderr, calls } = cluster("switchover", "pg-2");
        expect(status).toBe(1);
        expect(stderr.trim()).toBe("cluster.sh: the router did not send writes to pg-2 within 30 s; resuming");
        expect(calls.filter((c) => c.startsWith("psql ")).map((c) => c.slice(c.lastIndexOf(" ") + 1))).toEqual(["PAUSE", "RESUME"]);
        // 300 polls of the stand-in router, each a few processes.
    }, 180_000);
});
