// The router's haproxy.cfg: the exact file, HAProxy's own check of it, the
// words it refuses, and HAProxy from the project image routing by fake
// Patroni REST APIs that answer as Patroni does during a promotion.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { haproxyWord } from "../../components/render/escape";
import { type HaproxySpec, renderHaproxyCfg } from "../../components/render/haproxy/haproxy-cfg";
import { routerConfig } from "../../components/render/pgbouncer/config";
import { renderPgbouncerStart } from "../../components/render/pgbouncer/start-script";
import { PROJECT_IMAGE } from "../support/promtool";
import { exactly, production, staging } from "./fixtures";
import { routerCheckedFunction, serverStates } from "./router-metrics";

const STAGING_CFG = [
    "# Rendered by obcms-database.",
    "global",
    "    maxconn 124",
    "    log stderr format raw local0 notice",
    "",
    "defaults",
    "    mode tcp",
    "    log global",
    "    timeout connect 2s",
    "    timeout client 1h",
    "    timeout server 1h",
    "    timeout check 4s",
    "    retries 2",
    "    option redispatch",
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
    "    server pg-1 obcms-database-staging-pg-1:5432 check check-sni obcms-database-staging-pg-1",
    "    server pg-2 obcms-database-staging-pg-2:5432 check check-sni obcms-database-staging-pg-2",
    "",
    "backend postgres_ro",
    "    balance roundrobin",
    "    option httpchk",
    "    http-check send meth OPTIONS uri /replica?lag=1MB",
    "    http-check expect status 200",
    "    default-server inter 1s fastinter 250ms downinter 500ms rise 1 fall 2 on-marked-down shutdown-sessions port 8008 check-ssl verify required ca-file /etc/obcms/tls/ca.crt resolvers docker init-addr last,libc,none",
    "    server pg-1 obcms-database-staging-pg-1:5432 check check-sni obcms-database-staging-pg-1",
    "    server pg-2 obcms-database-staging-pg-2:5432 check check-sni obcms-database-staging-pg-2",
    "",
].join("\n");

describe("renderHaproxyCfg", () => {
    it("renders the staging router as the exact file", () => {
        expect(renderHaproxyCfg(routerConfig(staging))).toBe(STAGING_CFG);
    });

    it("lists every production member in both backends, and sizes maxconn for both pools and operators", () => {
        const text = renderHaproxyCfg(routerConfig(production));
        const servers = [1, 2, 3, 4].map(
            (k) => `    server pg-${k} obcms-database-production-pg-${k}:5432 check check-sni obcms-database-production-pg-${k}`,
        );
        expect(text.split("\n").filter((line) => line.startsWith("    server "))).toEqual([...servers, ...servers]);
        expect(text).toContain("\n    maxconn 174\n");
    });

    it("reads replicas within maximumLagOnFailoverMb only", () => {
        expect(renderHaproxyCfg(routerConfig({ ...staging, maximumLagOnFailoverMb: 16 }))).toContain(
            "\n    http-check send meth OPTIONS uri /replica?lag=16MB\n",
        );
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
 * A member's REST API as Patroni answers it (json.dumps, so `"role": "primary"`
 * with a space): /primary with the status given, whatever the role, as while a
 * promotion is under way; /replica 200 for a replica, 503 otherwise.
 */
const FAKE_PATRONI = `
import json, ssl, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
cert, key, primary_status, role = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class Handler(BaseHTTPRequestHandler):
    def answer(self):
        status = primary_status if self.path == "/primary" else (200 if role == "replica" else 503)
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
server = HTTPServer(("0.0.0.0", 8008), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
`;

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

describe("the router against members answering as Patroni does", { timeout: 180_000 }, () => {
    // Patroni answers 200 on /primary as soon as a member holds the leader key,
    // seconds before PostgreSQL leaves recovery; writes sent then fail with
    // "cannot execute INSERT in a read-only transaction".
    it("sends writes only to the member whose /primary answers 200 with the primary role, reads only to the replica", async () => {
        const prefix = `obcms-routertest-${randomBytes(4).toString("hex")}`;
        const members = [
            { name: "pg-1", host: `${prefix}-pg-1`, status: 200, role: "replica" },
            { name: "pg-2", host: `${prefix}-pg-2`, status: 200, role: "primary" },
            { name: "pg-3", host: `${prefix}-pg-3`, status: 503, role: "primary" },
        ];
        const spec: HaproxySpec = { ...routerConfig(staging), members, caFile: "/w/ca.crt" };
        const network = `${prefix}-net`;
        const router = `${prefix}-router`;
        const dir = mkdtempSync(path.join(tmpdir(), "obcms-router-"));
        const mount = ["-u", "0", "-v", `${dir}:/w:ro`];
        try {
            chmodSync(dir, 0o755);
            writeFileSync(path.join(dir, "fake_patroni.py"), FAKE_PATRONI);
            writeFileSync(path.join(dir, "haproxy.cfg"), renderHaproxyCfg(spec));
            expect(inImage(dir, certificatesScript(members.map((m) => m.host))).status).toBe(0);
            expect(docker("network", "create", network).status).toBe(0);
            for (const m of members) {
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
                    "/w/fake_patroni.py",
                    `/w/${m.host}.crt`,
                    `/w/${m.host}.key`,
                    String(m.status),
                    m.role,
                );
                expect(started.stderr).toBe("");
            }
            const haproxy = docker(
                "run",
                "-d",
                "--name",
                router,
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
            const deadline = Date.now() + 60_000;
            while (docker("exec", router, "sh", "-c", checked).status !== 0 && Date.now() < deadline) {
                await new Promise((resolve) => setTimeout(resolve, 250));
            }
            const metrics = docker("exec", router, "curl", "-fsS", `http://127.0.0.1:${spec.metricsPort}/metrics`);
            expect(serverStates(metrics.stdout)).toEqual({
                "postgres_rw/pg-1": "DOWN",
                "postgres_rw/pg-2": "UP",
                "postgres_rw/pg-3": "DOWN",
                "postgres_ro/pg-1": "UP",
                "postgres_ro/pg-2": "DOWN",
                "postgres_ro/pg-3": "DOWN",
            });
            expect(docker("logs", router).stderr).toContain(
                'Server postgres_rw/pg-1 is DOWN, reason: Layer7 invalid response, info: "HTTP content check did not match"',
            );
        } finally {
            docker("rm", "-f", router, ...members.map((m) => m.host));
            docker("network", "rm", network);
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
