// The router's haproxy.cfg: the exact file, HAProxy's own check of it, the
// words it refuses, and HAProxy from the project image routing between fake
// members that answer as Patroni does, also while a promotion moves them.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { haproxyWord } from "../../components/render/escape";
import { type HaproxySpec, type RouterMember, renderHaproxyCfg } from "../../components/render/haproxy/haproxy-cfg";
import { pgbouncerConfig, routerConfig } from "../../components/render/pgbouncer/config";
import { renderPgbouncerStart } from "../../components/render/pgbouncer/start-script";
import { MAX_REPLICAS } from "../../components/settings";
import { waitFor } from "../../harness/sql";
import { PROJECT_IMAGE } from "../support/promtool";
import { exactly, production, staging } from "./fixtures";
import { routerCheckedFunction, serverStates } from "./router-metrics";

const STAGING_SERVERS = serverLines("staging");
const STAGING_CFG = [
    "# Rendered by obcms-database.",
    "global",
    "    maxconn 4096",
    "    log stderr format raw local0 notice",
    "    stats socket /var/run/postgresql/haproxy.sock mode 600 level admin",
    "",
    "defaults",
    "    mode tcp",
    "    log global",
    "    timeout connect 1s",
    "    timeout client 1h",
    "    timeout server 1h",
    "    timeout check 4s",
    "    retries 2",
    "    option redispatch 1",
    "",
    "resolvers docker",
    "    nameserver dns 127.0.0.11:53",
    "    resolve_retries 1",
    "    timeout resolve 1s",
    "    timeout retry 1s",
    "    hold valid 5s",
    "    hold other 1s",
    "    hold refused 1s",
    "    hold nx 1s",
    "    hold timeout 1s",
    "    hold obsolete 5s",
    "",
    "frontend metrics",
    "    mode http",
    "    bind :8404",
    "    http-request use-service prometheus-exporter if { path /metrics }",
    "    http-request return status 200 if { path /health }",
    "    http-request deny",
    "",
    "frontend read_write",
    "    bind 127.0.0.1:5432",
    "    default_backend postgres_rw",
    "",
    "frontend read_only",
    "    bind 127.0.0.1:5433",
    "    use_backend postgres_ro if { nbsrv(postgres_ro) gt 0 }",
    "    default_backend postgres_rw",
    "",
    "backend postgres_rw",
    "    option httpchk",
    "    http-check send meth GET uri /primary",
    "    http-check expect status 200",
    `    http-check expect string '"role": "primary"'`,
    "    default-server inter 1s fastinter 250ms downinter 500ms rise 1 fall 2 on-marked-down shutdown-sessions port 8008 check-ssl verify required ca-file /etc/obcms/tls/ca.crt resolvers docker init-addr last,libc,none",
    ...STAGING_SERVERS,
    "",
    "backend postgres_ro",
    "    balance roundrobin",
    "    option httpchk",
    "    http-check connect default",
    "    http-check send meth OPTIONS uri /read-only?lag=1MB",
    "    http-check expect status 200",
    "    http-check connect default",
    "    http-check send meth OPTIONS uri /replica?lag=1MB",
    "    http-check expect status 200 error-status L7OKC",
    "    default-server inter 1s fastinter 250ms downinter 500ms rise 1 fall 2 on-marked-down shutdown-sessions port 8008 check-ssl verify required ca-file /etc/obcms/tls/ca.crt resolvers docker init-addr last,libc,none",
    ...STAGING_SERVERS,
    "",
].join("\n");

/** Every member a stack may have: the primary and MAX_REPLICAS replicas, running or not. */
function serverLines(stack: string): string[] {
    return Array.from(
        { length: MAX_REPLICAS + 1 },
        (_, i) => `    server pg-${i + 1} obcms-database-${stack}-pg-${i + 1}:5432 check check-sni obcms-database-${stack}-pg-${i + 1}`,
    );
}

describe("renderHaproxyCfg", () => {
    it("renders the staging router as the exact file", () => {
        expect(renderHaproxyCfg(routerConfig(staging))).toBe(STAGING_CFG);
    });

    it("lists every member production may have in both backends, and admits both databases' connections of the largest pool allowed", () => {
        const text = renderHaproxyCfg(routerConfig(production));
        const servers = serverLines("production");
        expect(text.split("\n").filter((line) => line.startsWith("    server "))).toEqual([...servers, ...servers]);
        // Fixed: both databases' pools of up to 2016 server connections each, and 64 for operators' tools.
        expect(text).toContain("\n    maxconn 4096\n");
    });

    it("renders the same file whatever the pool's sizes and waits and the client limit: PgBouncer reloads those, its container stays", () => {
        const pool = { ...production.pool, defaultPoolSize: 40, reservePoolSize: 3, queryWaitTimeoutSeconds: 60, maxClientConn: 1500 };
        expect(renderHaproxyCfg(routerConfig({ ...production, pool }))).toBe(renderHaproxyCfg(routerConfig(production)));
    });

    it("renders the same file whatever the replica count: scaling leaves PgBouncer's container as it is", () => {
        const rendered = (replicaCount: number) => renderHaproxyCfg(routerConfig({ ...production, replicaCount }));
        expect(rendered(1)).toBe(rendered(3));
        expect(rendered(1)).toBe(rendered(MAX_REPLICAS));
    });

    it("reads replicas within maximumLagOnFailoverMb only", () => {
        const text = renderHaproxyCfg(routerConfig({ ...staging, maximumLagOnFailoverMb: 16 }));
        expect(text).toContain("\n    http-check send meth OPTIONS uri /read-only?lag=16MB\n");
        expect(text).toContain("\n    http-check send meth OPTIONS uri /replica?lag=16MB\n");
    });
});

describe("haproxyWord", () => {
    it.each(["pg-1", "/etc/obcms/tls/ca.crt", "/replica?lag=1MB", "obcms-database-staging-pg-1", "Ñoño"])("writes %s as it is", (word) => {
        expect(haproxyWord(word)).toBe(word);
    });

    const refusal = "whitespace, quotes, backslashes, # and $ are not allowed in a word";
    it.each([
        ["a space", "pg 1", `haproxy.cfg: cannot write "pg 1": ${refusal}`],
        ["a tab", "pg\t1", `haproxy.cfg: cannot write "pg\\t1": ${refusal}`],
        ["a line break", "pg-1\nserver evil 10.0.0.1:5432", `haproxy.cfg: cannot write "pg-1\\nserver evil 10.0.0.1:5432": ${refusal}`],
        ["a double quote", 'pg"1', `haproxy.cfg: cannot write "pg\\"1": ${refusal}`],
        ["a single quote", "pg'1", `haproxy.cfg: cannot write "pg'1": ${refusal}`],
        ["a backslash", "pg\\1", `haproxy.cfg: cannot write "pg\\\\1": ${refusal}`],
        ["a comment sign", "pg#1", `haproxy.cfg: cannot write "pg#1": ${refusal}`],
        ["an environment variable", "${HOME}", `haproxy.cfg: cannot write "\${HOME}": ${refusal}`],
        ["a control character", "pg\u00001", 'haproxy.cfg: cannot write "pg\\u00001": control characters are not allowed'],
        ["nothing", "", 'haproxy.cfg: cannot write "": a word cannot be empty'],
    ])("refuses %s", (_what, word, message) => {
        expect(() => haproxyWord(word)).toThrow(exactly(message));
    });

    it("keeps a hostile member name out of the rendered file", () => {
        const spec = { ...routerConfig(staging), members: [{ name: "pg-1 backup", host: "h" }] };
        expect(() => renderHaproxyCfg(spec)).toThrow(exactly(`haproxy.cfg: cannot write "pg-1 backup": ${refusal}`));
    });
});

/** Runs `command` in the project image with `dir` mounted at `at`, as root (the test's files are root's), without network. */
function inImage(dir: string, command: string, at = "/w"): { status: number | null; stdout: string; stderr: string } {
    return docker("run", "--rm", "--network", "none", "-u", "0", "-v", `${dir}:${at}`, "--entrypoint", "sh", PROJECT_IMAGE, "-c", command);
}

function docker(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const run = spawnSync("docker", args, { encoding: "utf8" });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const CA_SCRIPT =
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -subj /CN=ca -days 1 2>/dev/null";

/** PgBouncer's start script's check of the router's config, as rendered. */
const CONFIG_CHECK = renderPgbouncerStart()
    .split("\n")
    .filter((line) => line.includes("haproxy -c "));

describe("HAProxy from the project image, as PgBouncer's start script checks its config", { timeout: 120_000 }, () => {
    it.each([
        ["staging", staging],
        ["production", production],
    ])("accepts the rendered %s config", (_name, s) => {
        const dir = mkdtempSync(path.join(tmpdir(), "obcms-haproxy-"));
        try {
            mkdirSync(path.join(dir, "tls"));
            writeFileSync(path.join(dir, "haproxy.cfg"), renderHaproxyCfg(routerConfig(s)));
            const check = inImage(dir, `cd /etc/obcms/tls && ${CA_SCRIPT} && ${CONFIG_CHECK.join("\n")} && echo checked`, "/etc/obcms");
            expect(check).toEqual({ status: 0, stdout: "checked\n", stderr: "" });
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("refuses a config whose checks cannot verify the members, and says why", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "obcms-haproxy-"));
        try {
            writeFileSync(path.join(dir, "haproxy.cfg"), renderHaproxyCfg(routerConfig(staging)));
            const check = inImage(dir, `${CONFIG_CHECK.join("\n")}\necho not reached`, "/etc/obcms");
            expect([check.status, check.stdout]).toEqual([1, ""]);
            expect(check.stderr).toContain("Couldn't open the ca-file '/etc/obcms/tls/ca.crt' (No such file or directory).");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

/**
 * A member as Patroni and PostgreSQL answer a router: the REST API (json.dumps,
 * so `"role": "primary"` with a space) in the state its file names, read at
 * every request so a test can move the member; and on 5432 a server that
 * answers each message with the member's host name, standing for PostgreSQL.
 */
const FAKE_MEMBER = `
import json, socketserver, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
cert, key, state_file, host = sys.argv[1:5]
# Per state: /primary's status, PostgreSQL's role, /replica's status (Patroni's api.py);
# /read-only answers 200 when /primary or /replica does.
ANSWERS = {
    "leader": (200, "primary", 503),
    "promoting": (200, "replica", 200),  # holds the leader key, PostgreSQL still in recovery
    "demoting": (503, "primary", 503),  # lost the leader key, PostgreSQL not stopped yet
    "replica": (503, "replica", 200),
    "lagging": (503, "replica", 503),  # further behind than ?lag=
}
class Api(BaseHTTPRequestHandler):
    def answer(self):
        primary, role, replica = ANSWERS[open(state_file).read().strip()]
        read_only = 200 if 200 in (primary, replica) else 503
        status = {"/primary": primary, "/replica": replica, "/read-only": read_only}[self.path.split("?")[0]]
        body = json.dumps({"state": "running", "role": role}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = answer
    do_OPTIONS = answer
    def log_message(self, *args):
        pass
class Postgres(socketserver.BaseRequestHandler):
    def handle(self):
        while self.request.recv(64):
            self.request.sendall(host.encode() + b"\\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
threading.Thread(target=socketserver.ThreadingTCPServer(("0.0.0.0", 5432), Postgres).serve_forever, daemon=True).start()
api = HTTPServer(("0.0.0.0", 8008), Api)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
api.socket = context.wrap_socket(api.socket, server_side=True)
api.serve_forever()
`;

/**
 * A client in the router's container: opens `sessions` connections to the
 * router's port, and on start and on each line of its input asks each session
 * which member serves it, printing one line: the host names, or `closed`
 * (also for a session that does not answer within the timeout, in seconds).
 */
const ROUTER_CLIENT = `
import socket, sys
port, count, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sessions = [socket.create_connection(("127.0.0.1", port), timeout=timeout) for _ in range(count)]
def ask(session):
    try:
        session.sendall(b"?")
        return session.recv(64).decode().strip() or "closed"
    except OSError:
        return "closed"
print(" ".join(ask(s) for s in sessions), flush=True)
for _ in sys.stdin:
    print(" ".join(ask(s) for s in sessions), flush=True)
`;

type MemberState = "leader" | "promoting" | "demoting" | "replica" | "lagging";
/** A member the stack may have but does not run (yet): no container, so its name does not resolve. */
type Absent = "absent";

/** A CA, and for each host a certificate naming it, signed by the CA, in /w. */
function certificatesScript(hosts: readonly string[]): string {
    const ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    return [
        `openssl req -x509 ${ec} -keyout /w/ca.key -out /w/ca.crt -subj /CN=ca -days 1`,
        ...hosts.map(
            (host) =>
                `openssl req ${ec} -keyout /w/${host}.key -out /w/${host}.csr -subj /CN=${host} -addext subjectAltName=DNS:${host} && ` +
                `openssl x509 -req -in /w/${host}.csr -CA /w/ca.crt -CAkey /w/ca.key -CAcreateserial -copy_extensions copy -days 1 -out /w/${host}.crt`,
        ),
    ].join(" && ");
}

/**
 * The router as rendered, in the project image, before fake members named
 * pg-1, pg-2... in the states given, or absent; `run` gets the means to move
 * them, to start an absent one, and to read the router's view. Everything is
 * removed afterwards.
 */
async function withRouter(
    initial: ReadonlyArray<MemberState | Absent>,
    run: (router: {
        spec: HaproxySpec;
        container: string;
        host: (name: string) => string;
        move: (name: string, state: MemberState) => void;
        /** Starts an absent member's container, in `state`. */
        appear: (name: string, state: MemberState) => void;
        states: () => Record<string, string>;
        client: (port: number, sessions: number, timeoutSeconds?: number) => RouterClient;
    }) => Promise<void>,
): Promise<void> {
    const prefix = `obcms-routertest-${randomBytes(4).toString("hex")}`;
    const members = initial.map((_state, i) => ({ name: `pg-${i + 1}`, host: `${prefix}-pg-${i + 1}` }));
    const spec: HaproxySpec = { ...routerConfig(staging), members, caFile: "/w/ca.crt" };
    const host = (name: string) => members.find((m) => m.name === name)?.host as string;
    const network = `${prefix}-net`;
    const container = `${prefix}-router`;
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-router-"));
    const move = (name: string, state: MemberState) => writeFileSync(path.join(dir, `${host(name)}.state`), `${state}\n`);
    const mount = ["-u", "0", "-v", `${dir}:/w:ro`];
    const clients: RouterClient[] = [];
    try {
        chmodSync(dir, 0o755);
        writeFileSync(path.join(dir, "fake_member.py"), FAKE_MEMBER);
        writeFileSync(path.join(dir, "router_client.py"), ROUTER_CLIENT);
        writeFileSync(path.join(dir, "haproxy.cfg"), renderHaproxyCfg(spec));
        expect(inImage(dir, certificatesScript(members.map((m) => m.host))).status).toBe(0);
        expect(docker("network", "create", network).status).toBe(0);
        const appear = (name: string, state: MemberState) => {
            move(name, state);
            const m = members.find((member) => member.name === name) as RouterMember;
            const args = [`/w/${m.host}.crt`, `/w/${m.host}.key`, `/w/${m.host}.state`, m.host];
            const started = docker(
                "run",
                "-d",
                "--name",
                m.host,
                "--network",
                network,
                ...mount,
                "--entrypoint",
                "python3",
                PROJECT_IMAGE,
                "/w/fake_member.py",
                ...args,
            );
            expect(started.stderr).toBe("");
        };
        for (const [i, m] of members.entries()) {
            const state = initial[i];
            if (state !== "absent") {
                appear(m.name, state);
            }
        }
        const haproxy = docker(
            "run",
            "-d",
            "--name",
            container,
            "--network",
            network,
            ...mount,
            "--entrypoint",
            "haproxy",
            PROJECT_IMAGE,
            "-db",
            "-f",
            "/w/haproxy.cfg",
        );
        expect(haproxy.stderr).toBe("");

        // The same wait PgBouncer's start script does: until every resolved server has been checked.
        const checked = `${routerCheckedFunction()}; router_checked`;
        await waitFor("the router's first round of checks", 60_000, async () =>
            docker("exec", container, "sh", "-c", checked).status === 0 ? true : undefined,
        );
        const states = () => serverStates(docker("exec", container, "curl", "-fsS", `http://127.0.0.1:${spec.metricsPort}/metrics`).stdout);
        const client = (port: number, sessions: number, timeoutSeconds = 5) => {
            const started = new RouterClient(container, port, sessions, timeoutSeconds);
            clients.push(started);
            return started;
        };
        await run({ spec, container, host, move, appear, states, client });
    } finally {
        for (const c of clients) {
            c.close();
        }
        docker("rm", "-f", container, ...members.map((m) => m.host));
        docker("network", "rm", network);
        rmSync(dir, { recursive: true, force: true });
    }
}

/** ROUTER_CLIENT running in the router's container: each `ask` resolves to its next line of answers. */
class RouterClient {
    private readonly process: ChildProcessWithoutNullStreams;
    private readonly lines: string[] = [];
    private waiting: ((line: string) => void) | undefined;

    constructor(container: string, port: number, sessions: number, timeoutSeconds: number) {
        const args = ["/w/router_client.py", String(port), String(sessions), String(timeoutSeconds)];
        this.process = spawn("docker", ["exec", "-i", container, "python3", ...args]);
        // Without a listener, a docker that cannot start would throw outside every test; the answer's timeout reports it.
        this.process.on("error", () => undefined);
        let buffered = "";
        this.process.stdout.setEncoding("utf8").on("data", (chunk: string) => {
            buffered += chunk;
            for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
                this.lines.push(buffered.slice(0, end));
                buffered = buffered.slice(end + 1);
            }
            this.deliver();
        });
    }

    /** The answers of the first round, printed when the sessions opened. */
    first(): Promise<string[]> {
        return this.next();
    }

    /** Asks every session again. */
    ask(): Promise<string[]> {
        this.process.stdin.write("again\n");
        return this.next();
    }

    close(): void {
        this.process.stdin.end();
        this.process.kill();
    }

    private next(): Promise<string[]> {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("the router client did not answer within 20 s")), 20_000);
            this.waiting = (line) => {
                clearTimeout(timer);
                resolve(line.split(" "));
            };
            this.deliver();
        });
    }

    private deliver(): void {
        const waiting = this.waiting;
        if (waiting && this.lines.length > 0) {
            this.waiting = undefined;
            waiting(this.lines.shift() as string);
        }
    }
}

describe("the router against members answering as Patroni does", { timeout: 180_000 }, () => {
    // Patroni answers 200 on /primary as soon as a member holds the leader key,
    // seconds before PostgreSQL leaves recovery; writes sent then fail with
    // "cannot execute INSERT in a read-only transaction".
    it("sends writes only to the member whose /primary answers 200 with the primary role, reads only to the replica", async () => {
        await withRouter(["promoting", "leader", "demoting"], async (router) => {
            expect(router.states()).toEqual({
                "postgres_rw/pg-1": "DOWN",
                "postgres_rw/pg-2": "UP",
                "postgres_rw/pg-3": "DOWN",
                "postgres_ro/pg-1": "UP",
                "postgres_ro/pg-2": "NOLB",
                "postgres_ro/pg-3": "DOWN",
            });
            expect(docker("logs", router.container).stderr).toContain(
                'Server postgres_rw/pg-1 is DOWN, reason: Layer7 invalid response, info: "HTTP content check did not match"',
            );
        });
    });

    // The router lists every member the stack may have, so that scaling leaves PgBouncer's container as it is.
    it("keeps a member that does not run in maintenance, not down, and takes it in once it starts", async () => {
        await withRouter(["leader", "replica", "absent"], async (router) => {
            expect(router.states()).toEqual({
                "postgres_rw/pg-1": "UP",
                "postgres_rw/pg-2": "DOWN",
                "postgres_rw/pg-3": "MAINT",
                "postgres_ro/pg-1": "NOLB",
                "postgres_ro/pg-2": "UP",
                "postgres_ro/pg-3": "MAINT",
            });
            const reads = router.client(router.spec.readOnlyPort, 2);
            expect(await reads.first()).toEqual([router.host("pg-2"), router.host("pg-2")]);

            // HAProxy 3.0 counts a server that leaves maintenance as up until its checks say otherwise
            // (server.c: "start OK but check immediately"; init-state, which changes that, is 3.1's). A
            // new member's PostgreSQL does not listen that early, so a connect there is refused and
            // retried on another server; this fake one does, and the checks take it out within a second.
            router.appear("pg-3", "replica");
            await waitFor("pg-3 up in postgres_ro, down in postgres_rw", 30_000, async () => {
                const now = router.states();
                return now["postgres_ro/pg-3"] === "UP" && now["postgres_rw/pg-3"] === "DOWN" ? true : undefined;
            });
            // The sessions open on pg-2 stay; new ones are spread over both replicas.
            expect(await reads.ask()).toEqual([router.host("pg-2"), router.host("pg-2")]);
            expect([...(await router.client(router.spec.readOnlyPort, 2).first())].sort()).toEqual([
                router.host("pg-2"),
                router.host("pg-3"),
            ]);
        });
    });

    // A promotion takes its member out of the replicas; reads running on it
    // must not fail for that, but those on a replica past the lag bound must
    // stop, or they would go on reading stale data.
    it("keeps the reads on a replica promoted to leader, shuts those on a replica that lags, and sends new reads to the replicas left", async () => {
        await withRouter(["replica", "replica", "leader"], async (router) => {
            expect(router.states()).toMatchObject({ "postgres_ro/pg-1": "UP", "postgres_ro/pg-2": "UP", "postgres_ro/pg-3": "NOLB" });
            const reads = router.client(router.spec.readOnlyPort, 2);
            const before = await reads.first();
            expect([...before].sort()).toEqual([router.host("pg-1"), router.host("pg-2")]);

            router.move("pg-1", "leader");
            router.move("pg-2", "lagging");
            router.move("pg-3", "replica");
            await waitFor("pg-1 drained, pg-2 down, pg-3 up in postgres_ro", 20_000, async () => {
                const now = router.states();
                const moved = now["postgres_ro/pg-1"] === "NOLB" && now["postgres_ro/pg-2"] === "DOWN" && now["postgres_ro/pg-3"] === "UP";
                return moved ? true : undefined;
            });

            const after = await reads.ask();
            expect(after).toEqual(before.map((served) => (served === router.host("pg-1") ? served : "closed")));
            expect(await router.client(router.spec.readOnlyPort, 2).first()).toEqual([router.host("pg-3"), router.host("pg-3")]);
            expect(await router.client(router.spec.readWritePort, 1).first()).toEqual([router.host("pg-1")]);
        });
    });

    // A leader stopped with docker stop: the router counts it up until its
    // checks fail, 2-2.5 s, while its container and address are already gone
    // and connects to it go unanswered; those are retried on the new leader
    // after the connect timeout. But HAProxy 3.0 leaves a connection it was
    // making to a member marked down meanwhile unanswered and open, and
    // PgBouncer gives up on it only after its server_connect_timeout: that
    // bounds the write gap.
    it("serves writes opened while the old leader's container vanishes from the new leader, each within 5 s as PgBouncer retries", async () => {
        await withRouter(["leader", "replica"], async (router) => {
            router.move("pg-2", "leader");
            await waitFor("pg-2 up in postgres_rw beside pg-1", 20_000, async () =>
                router.states()["postgres_rw/pg-2"] === "UP" ? true : undefined,
            );
            expect(docker("rm", "-f", router.host("pg-1")).status).toBe(0);
            // Each write as PgBouncer makes it: a server connection, given up after its connect timeout and made again.
            const timeout = pgbouncerConfig(staging).settings.server_connect_timeout as number;
            const writes: { tries: string[]; seconds: number }[] = [];
            const started = Date.now();
            while (Date.now() - started < 6_000) {
                const opened = Date.now();
                const tries: string[] = [];
                while (tries.at(-1) !== router.host("pg-2") && tries.length < 3) {
                    const client = router.client(router.spec.readWritePort, 1, timeout);
                    tries.push((await client.first())[0]);
                    client.close();
                }
                writes.push({ tries, seconds: (Date.now() - opened) / 1000 });
            }
            // A leader stopped gracefully is to be replaced within 5 s, writes included.
            const late = writes.filter((w) => w.tries.at(-1) !== router.host("pg-2") || w.seconds > 5);
            expect(late, JSON.stringify(writes)).toEqual([]);
        });
    });
});
