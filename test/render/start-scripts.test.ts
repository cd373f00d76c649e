// The start scripts and health checks of a PostgreSQL member (Patroni) and
// of PgBouncer's container (the router, then PgBouncer), exactly; and the
// PgBouncer script's wait for the router's first checks, run in the project
// image (its sh and mawk) against HAProxy metrics as HAProxy 3.0 writes them.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { memberHealthCheck, renderMemberStart } from "../../components/render/patroni/start-script";
import { pgbouncerHealthCheck, ROUTER_FIRST_CHECKS_TENTHS, renderPgbouncerStart } from "../../components/render/pgbouncer/start-script";
import { PROJECT_IMAGE } from "../support/promtool";
import { shellSyntaxCheck } from "./fixtures";
import { routerCheckedFunction } from "./router-metrics";

const HEADER = ["#!/bin/sh", "# Rendered by obcms-database.", "set -eu", 'export PATH="/usr/lib/postgresql/17/bin:$PATH"'];

describe("a member's start script and health check", () => {
    it("runs pgBackRest's TLS server double-forked, then execs Patroni, which gets the stop signal itself", () => {
        expect(renderMemberStart()).toBe(
            [
                ...HEADER,
                "( (until false; do pgbackrest --config='/etc/obcms/pgbackrest.conf' server || true; echo 'pgbackrest server exited; restarting it' >&2; sleep 1; done) </dev/null & )",
                "exec patroni '/etc/obcms/patroni.yml'",
                "",
            ].join("\n"),
        );
    });

    // /readiness: 200 once the member leads or runs PostgreSQL as a member of
    // the cluster; a replica still cloning is not healthy yet.
    it("is healthy once Patroni's REST API says ready, over TLS checked against the stack's CA", () => {
        expect(memberHealthCheck()).toEqual([
            "curl",
            "-fsS",
            "-o",
            "/dev/null",
            "--max-time",
            "2",
            "--cacert",
            "/etc/obcms/tls/ca.crt",
            "https://localhost:8008/readiness",
        ]);
    });
});

describe("PgBouncer's start script and health check", () => {
    it("checks the router's config, keeps the router running, waits for its first checks, then execs PgBouncer", () => {
        expect(renderPgbouncerStart()).toBe(
            [
                ...HEADER,
                `if ! check="$(haproxy -c -f '/etc/obcms/haproxy.cfg' 2>&1)"; then printf '%s\\n' "$check" >&2; exit 1; fi`,
                "( (until false; do haproxy -db -q -f '/etc/obcms/haproxy.cfg' || true; echo 'haproxy exited; restarting it' >&2; sleep 1; done) </dev/null & )",
                "router_checked() {",
                `  metrics="$(curl -fs --max-time 1 'http://127.0.0.1:8404/metrics')" || return 1`,
                `  printf '%s\\n' "$metrics" | awk 'match($0, /proxy="[^"]*",server="[^"]*"/) { key = substr($0, RSTART, RLENGTH) } /^haproxy_server_status[{]/ && $NF == 1 && !/state="MAINT"/ { wanted[key] = 1 } /^haproxy_server_check_status[{]/ && $NF == 1 { checked[key] = 1 } END { for (k in wanted) if (!(k in checked)) exit 1 }'`,
                "}",
                "tenths=0",
                `until router_checked || [ "$tenths" -ge ${ROUTER_FIRST_CHECKS_TENTHS} ]; do sleep 0.1; tenths=$((tenths + 1)); done`,
                "exec pgbouncer '/etc/obcms/pgbouncer.ini'",
                "",
            ].join("\n"),
        );
        expect(ROUTER_FIRST_CHECKS_TENTHS).toBe(50);
    });

    it("is healthy while PgBouncer's socket exists and the router answers", () => {
        expect(pgbouncerHealthCheck()).toEqual([
            "sh",
            "-c",
            "test -S '/var/run/postgresql/.s.PGSQL.6432' && curl -fsS -o /dev/null --max-time 2 'http://127.0.0.1:8404/health'",
        ]);
    });

    it.each([
        ["member", renderMemberStart()],
        ["pgbouncer", renderPgbouncerStart()],
    ])("the %s script parses as POSIX shell, carries no password and switches no user", (_name, script) => {
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
        expect(script).not.toMatch(/password\s*[=:]|password\s+'|PGPASSWORD/i);
        expect(script).not.toMatch(/\b(chown|chmod|setpriv|su|sudo|runuser)\b/);
    });
});

const SERVER_STATES = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];
const CHECK_STATES = [
    "HANA",
    "SOCKERR",
    "L4OK",
    "L4TOUT",
    "L4CON",
    "L6OK",
    "L6TOUT",
    "L6RSP",
    "L7TOUT",
    "L7RSP",
    "L7OK",
    "L7OKC",
    "L7STS",
    "PROCERR",
    "PROCTOUT",
    "PROCOK",
];

/**
 * A server's samples as HAProxy 3.0's exporter writes them: one line per
 * state, 1 for the current one; before its first check every check status
 * is 0 (HAProxy has no sample for "not checked yet").
 */
function server(proxy: string, name: string, state: string, check?: string): string[] {
    const labels = `proxy="${proxy}",server="${name}"`;
    return [
        ...SERVER_STATES.map((s) => `haproxy_server_status{${labels},state="${s}"} ${s === state ? 1 : 0}`),
        ...CHECK_STATES.map((s) => `haproxy_server_check_status{${labels},state="${s}"} ${s === check ? 1 : 0}`),
        `haproxy_server_check_duration_seconds{${labels}} 0.003`,
    ];
}

/** The metrics page: help lines, then each backend's own samples (no server label) before its servers'. */
function metrics(...servers: string[][]): string {
    return [
        "# HELP haproxy_server_status Current status of the service, per state label value.",
        "# TYPE haproxy_server_status gauge",
        'haproxy_backend_status{proxy="postgres_rw",state="UP"} 1',
        ...servers.flat(),
        'haproxy_backend_status{proxy="postgres_ro",state="UP"} 1',
        "",
    ].join("\n");
}

/** What PgBouncer waits for in each case: the function's exit status, run in the project image with curl answering the case's metrics. */
const CASES: Record<string, { metrics?: string; status: number }> = {
    "the router does not answer yet": { status: 1 },
    "a server not checked yet (it counts as up until then)": {
        metrics: metrics(server("postgres_rw", "pg-1", "UP", "L7OK"), server("postgres_rw", "pg-2", "UP")),
        status: 1,
    },
    "the same server checked in one backend but not in the other": {
        metrics: metrics(server("postgres_rw", "pg-1", "DOWN", "L7STS"), server("postgres_ro", "pg-1", "UP")),
        status: 1,
    },
    "every server checked, up or down": {
        metrics: metrics(
            server("postgres_rw", "pg-1", "UP", "L7OK"),
            server("postgres_rw", "pg-2", "DOWN", "L7RSP"),
            server("postgres_ro", "pg-1", "DOWN", "L7STS"),
            server("postgres_ro", "pg-2", "UP", "L7OK"),
        ),
        status: 0,
    },
    "a member whose name does not resolve (MAINT, never checked) beside checked ones": {
        metrics: metrics(
            server("postgres_rw", "pg-1", "UP", "L7OK"),
            server("postgres_rw", "pg-2", "MAINT"),
            server("postgres_ro", "pg-1", "DOWN", "L7STS"),
            server("postgres_ro", "pg-2", "MAINT"),
        ),
        status: 0,
    },
};

describe("router_checked, in the project image", { timeout: 60_000 }, () => {
    it("waits until every server the router resolved has been checked once, in every backend", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "obcms-router-checked-"));
        try {
            chmodSync(dir, 0o755);
            const names = Object.keys(CASES);
            names.forEach((name, i) => {
                const body = CASES[name].metrics;
                if (body !== undefined) {
                    writeFileSync(path.join(dir, `case-${i}`), body);
                }
            });
            // curl answers with the case's file; a missing file fails as an unreachable router does.
            const script = [
                `curl() { cat "/w/case-$i" 2>/dev/null; }`,
                routerCheckedFunction(),
                `for i in $(seq 0 ${names.length - 1}); do if router_checked; then echo 0; else echo 1; fi; done`,
            ].join("\n");
            const run = spawnSync(
                "docker",
                ["run", "--rm", "--network", "none", "-v", `${dir}:/w:ro`, "--entrypoint", "sh", PROJECT_IMAGE, "-c", script],
                { encoding: "utf8" },
            );
            expect(run.stderr).toBe("");
            const statuses = run.stdout.trim().split("\n").map(Number);
            expect(Object.fromEntries(names.map((name, i) => [name, statuses[i]]))).toEqual(
                Object.fromEntries(names.map((name) => [name, CASES[name].status])),
            );
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("runs under the image's awk, which is mawk as in the container", () => {
        const run = spawnSync(
            "docker",
            ["run", "--rm", "--network", "none", "--entrypoint", "readlink", PROJECT_IMAGE, "-f", "/usr/bin/awk"],
            {
                encoding: "utf8",
            },
        );
        expect(run.stdout).toBe("/usr/bin/mawk\n");
    });
});
