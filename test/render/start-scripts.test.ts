import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { nodeNames, slotName } from "../../components/render/cluster";
import { FILES, PGDATA, SOCKET_DIR, VOLUME_DIR } from "../../components/render/paths";
import {
    BOOTSTRAP_SOCKET_DIR,
    renderPgbouncerStart,
    renderPrimaryStart,
    renderReplicaStart,
    ReplicaStartSpec,
} from "../../components/render/start-scripts";
import { POSTGRES_PORT, ROLES } from "../../components/settings";
import { shellSyntaxCheck, staging } from "./fixtures";

const REPLICA: ReplicaStartSpec = {
    primaryHost: nodeNames(staging).primary,
    primaryPort: POSTGRES_PORT,
    replicationUser: ROLES.replication,
    slotName: slotName(1),
    cloneAttempts: 30,
};

const SCRIPTS: Array<[string, string]> = [
    ["primary", renderPrimaryStart()],
    ["replica", renderReplicaStart(REPLICA)],
    ["pgbouncer", renderPgbouncerStart()],
];

/** The primary's `pg_ctl -o` options: one quoted word, which pg_ctl hands to a shell of its own. */
const BOOTSTRAP_START =
    "as_service_user pg_ctl -D \"$PGDATA\" -w -t 120 -o '-c config_file=/etc/obcms/postgresql.conf -c listen_addresses= -c unix_socket_directories=/run/obcms-bootstrap' start";

function count(text: string, part: string): number {
    return text.split(part).length - 1;
}

/**
 * The arguments /bin/sh passes to pg_basebackup in the replica script: the
 * command is cut out of the script and run with pg_basebackup replaced by a
 * function that prints its arguments, so nothing else is executed.
 */
function basebackupArguments(script: string): string[] {
    const command = /as_service_user (pg_basebackup .*); do$/m.exec(script);
    expect(command).not.toBeNull();
    const output = execFileSync(
        "/bin/sh",
        ["-c", `PGDATA=/nonexistent; pg_basebackup() { for a in "$@"; do printf '%s\\0' "$a"; done; }; ${command![1]}`],
        { encoding: "utf8" },
    );
    return output.split("\0").slice(0, -1);
}

describe("start scripts", () => {
    it("sh -n tells a broken script apart, so the checks below can fail", () => {
        expect(shellSyntaxCheck("if then\n").status).not.toBe(0);
    });

    it.each(SCRIPTS)("the %s script parses as POSIX shell (sh -n)", (_name, script) => {
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
    });

    it.each(SCRIPTS)("the %s script starts with a shebang and stops at the first failing command", (_name, script) => {
        expect(script.split("\n").slice(0, 3)).toEqual(["#!/bin/sh", "# Rendered by obcms-database.", "set -eu"]);
    });

    it.each(SCRIPTS)("the %s script carries no password", (_name, script) => {
        expect(script).not.toMatch(/password\s*[=:]|password\s+'|PGPASSWORD/i);
    });

    it.each(SCRIPTS)("the %s script single-quotes every path it names", (_name, script) => {
        const outsideBootstrapOptions = script.replace(BOOTSTRAP_START, "");
        for (const path of [...Object.values(FILES), PGDATA, SOCKET_DIR, VOLUME_DIR, BOOTSTRAP_SOCKET_DIR]) {
            expect(count(outsideBootstrapOptions, path), path).toBe(count(outsideBootstrapOptions, `'${path}`));
        }
    });

    it("the replica script clones through its own slot with a fast checkpoint, reading the password from the pgpass file", () => {
        const script = renderReplicaStart(REPLICA);
        expect(script).toContain("--slot='replica_1_slot'");
        expect(script).toContain("--checkpoint=fast");
        expect(script).toContain("export PGPASSFILE='/etc/obcms/pgpass'\n");
        expect(basebackupArguments(script)).toEqual([
            "--host=obcms-database-staging-primary",
            "--port=5432",
            "--username=replicator",
            "--slot=replica_1_slot",
            "--pgdata=/nonexistent.clone",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-password",
        ]);
    });

    it("the replica script single-quotes host, user and slot, so hostile values stay one argument each", () => {
        const spec = { ...REPLICA, primaryHost: "evil'; echo pwned #", replicationUser: "a b $(id)", slotName: 'it"s `x`' };
        const script = renderReplicaStart(spec);
        expect(script).toContain(`--host='evil'\\''; echo pwned #' --port=5432 --username='a b $(id)' --slot='it"s \`x\`'`);
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
        expect(basebackupArguments(script).slice(0, 4)).toEqual([
            "--host=evil'; echo pwned #",
            "--port=5432",
            "--username=a b $(id)",
            '--slot=it"s `x`',
        ]);
    });

    it("the replica script gives up after cloneAttempts failed clones", () => {
        expect(renderReplicaStart({ ...REPLICA, cloneAttempts: 7 })).toContain(
            '    if [ "$attempt" -ge 7 ]; then echo "clone from the primary failed 7 times" >&2; exit 1; fi\n',
        );
    });

    it("the primary script runs the bootstrap SQL through a private socket before the real server starts", () => {
        const lines = renderPrimaryStart().split("\n");
        const bootstrap = lines.indexOf(BOOTSTRAP_START);
        expect(bootstrap).toBeGreaterThan(0);
        expect(lines.slice(bootstrap + 1)).toEqual([
            "as_service_user psql -X -q -h '/run/obcms-bootstrap' -U postgres -d postgres -f '/etc/obcms/bootstrap.sql'",
            'as_service_user pg_ctl -D "$PGDATA" -w -t 120 -m fast stop',
            "exec setpriv --reuid='postgres' --regid='postgres' --init-groups -- postgres -D \"$PGDATA\" -c config_file='/etc/obcms/postgresql.conf'",
            "",
        ]);
    });

    it("the pgbouncer script is exactly what is expected", () => {
        expect(renderPgbouncerStart()).toBe(
            [
                "#!/bin/sh",
                "# Rendered by obcms-database.",
                "set -eu",
                'export PATH="/usr/lib/postgresql/17/bin:$PATH"',
                "as_service_user() { setpriv --reuid='postgres' --regid='postgres' --init-groups -- \"$@\"; }",
                `export HOME="$(getent passwd 'postgres' | cut -d: -f6)"`,
                "mkdir -p '/var/run/postgresql'",
                "chown 'postgres': '/var/run/postgresql'",
                "chown 'postgres': '/etc/obcms/userlist.txt'",
                "chmod 0600 '/etc/obcms/userlist.txt'",
                "chown 'postgres': '/etc/obcms/tls/server.key'",
                "chmod 0600 '/etc/obcms/tls/server.key'",
                "exec setpriv --reuid='postgres' --regid='postgres' --init-groups -- pgbouncer '/etc/obcms/pgbouncer.ini'",
                "",
            ].join("\n"),
        );
    });

    it.each([
        ["primary", renderPrimaryStart(), [FILES.bootstrapSql, FILES.tlsKey]],
        ["replica", renderReplicaStart(REPLICA), [FILES.pgpass, FILES.tlsKey]],
        ["pgbouncer", renderPgbouncerStart(), [FILES.userlist, FILES.tlsKey]],
    ])("the %s script makes its secret files readable by the service user only", (_name, script, secrets) => {
        const lines = script.split("\n");
        for (const file of secrets) {
            expect(lines).toContain(`chown 'postgres': '${file}'`);
            expect(lines).toContain(`chmod 0600 '${file}'`);
        }
        expect(lines.filter((line) => line.startsWith("chmod "))).toHaveLength(secrets.length);
    });
});
