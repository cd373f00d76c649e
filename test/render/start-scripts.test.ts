import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { FILES, PGDATA, SOCKET_DIR, VOLUME_DIR } from "../../components/render/paths";
import { tlsServerLines } from "../../components/render/pgbackrest/pgbackrest";
import { renderPgbouncerStart } from "../../components/render/pgbouncer/start-script";
import {
    BOOTSTRAP_SOCKET_DIR,
    type ReplicaStartSpec,
    renderPrimaryStart,
    renderReplicaStart,
} from "../../components/render/postgres/start-scripts";
import { POSTGRES_PORT, ROLES } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { shellSyntaxCheck, staging } from "./fixtures";

const REPLICA: ReplicaStartSpec = {
    primaryHost: clusterTopology(staging).primary.container,
    primaryPort: POSTGRES_PORT,
    replicationUser: ROLES.replication,
    slotName: clusterTopology(staging).replicas[0]!.slot,
    cloneAttempts: 30,
};

const SCRIPTS: Array<[string, string]> = [
    ["primary", renderPrimaryStart()],
    ["replica", renderReplicaStart(REPLICA)],
    ["pgbouncer", renderPgbouncerStart()],
];

/** The primary's `pg_ctl -o` options: one quoted word, which pg_ctl hands to a shell of its own. */
const BOOTSTRAP_START =
    "pg_ctl -D \"$PGDATA\" -w -t 120 -o '-c config_file=/etc/obcms/postgresql.conf -c listen_addresses= -c unix_socket_directories=/var/lib/postgresql/data/bootstrap-socket -c archive_command=' start";

function count(text: string, part: string): number {
    return text.split(part).length - 1;
}

/**
 * The arguments /bin/sh passes to pg_basebackup in the replica script: the
 * command is cut out of the script and run with pg_basebackup replaced by a
 * function that prints its arguments, so nothing else is executed.
 */
function basebackupArguments(script: string): string[] {
    const command = /&& (pg_basebackup .*); do$/m.exec(script);
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
            "until [ \"$(psql -X -A -t -h '/var/lib/postgresql/data/bootstrap-socket' -U postgres -d postgres -c 'SELECT pg_is_in_recovery()')\" = f ]; do sleep 1; done",
            "psql -X -q -h '/var/lib/postgresql/data/bootstrap-socket' -U postgres -d postgres -f '/etc/obcms/bootstrap.sql'",
            'pg_ctl -D "$PGDATA" -w -t 120 -m fast stop',
            ...tlsServerLines(),
            "exec postgres -D \"$PGDATA\" -c config_file='/etc/obcms/postgresql.conf'",
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
                "exec pgbouncer '/etc/obcms/pgbouncer.ini'",
                "",
            ].join("\n"),
        );
    });

    // The containers run as the service user and the files arrive owned by it
    // with their final modes: a script has nothing to hand over or drop.
    it.each(SCRIPTS)("the %s script neither changes ownership nor switches user", (_name, script) => {
        expect(script).not.toMatch(/\b(chown|chmod|setpriv|su|sudo|runuser)\b/);
    });
});
