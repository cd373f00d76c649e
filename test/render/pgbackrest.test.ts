import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
    archiveParameters,
    postgresNodePgbackrestConf,
    renderBackupStart,
    renderPgbackrestConf,
    replicaRestoreCommand,
    repositoryHostPgbackrestConf,
    restoreCommand,
    restorePgbackrestConf,
    tlsServerLines,
} from "../../components/render/pgbackrest/pgbackrest";
import type { BackupSettings } from "../../components/settings";
import { defaultBackup } from "../support/monitoring-fixtures";
import { PROJECT_IMAGE } from "../support/promtool";
import { exactly, LONG, production, shellSyntaxCheck, staging } from "./fixtures";

const VOLUME: BackupSettings = defaultBackup;
const S3: BackupSettings = {
    ...VOLUME,
    repository: {
        type: "s3",
        bucket: "obcms-backups",
        endpoint: "s3.eu-west-1.amazonaws.com",
        region: "eu-west-1",
        uriStyle: "host",
        path: "/obcms-database",
    },
};

const HEADER = "# Rendered by obcms-database; changes here are overwritten.\n";
const LOGGING = "compress-type=zst\nlog-level-console=info\nlog-level-file=off\nlog-timestamp=y\n";
/** The TLS server's files: the CA uploaded; the certificate and key uploaded into a member, on the backup container's volume. */
const tlsServerFiles = (certificateDir: string) =>
    `tls-server-ca-file=/etc/obcms/tls/ca.crt\ntls-server-cert-file=${certificateDir}/server.crt\ntls-server-key-file=${certificateDir}/server.key\ntls-server-port=8432\n`;

function pgHost(k: number, host: string): string {
    return [
        `pg${k}-host=${host}`,
        `pg${k}-host-ca-file=/etc/obcms/tls/ca.crt`,
        `pg${k}-host-cert-file=/var/lib/obcms/backup/server.crt`,
        `pg${k}-host-key-file=/var/lib/obcms/backup/server.key`,
        `pg${k}-host-port=8432`,
        `pg${k}-host-type=tls`,
        `pg${k}-path=/var/lib/postgresql/data/pgdata`,
        `pg${k}-port=5432`,
        `pg${k}-socket-path=/var/run/postgresql`,
        "",
    ].join("\n");
}

describe("pgbackrest.conf", () => {
    it("on a member: async archiving to the backup container over TLS, synchronous archive-get, a TLS server only the backup container may use, the passphrase", () => {
        expect(renderPgbackrestConf(postgresNodePgbackrestConf(staging, "PASS"))).toBe(
            HEADER +
                "\n[global]\narchive-async=y\narchive-timeout=10\n" +
                LOGGING +
                "repo1-cipher-pass=PASS\nrepo1-cipher-type=aes-256-cbc\n" +
                "repo1-host=obcms-database-staging-backup\nrepo1-host-ca-file=/etc/obcms/tls/ca.crt\n" +
                "repo1-host-cert-file=/var/lib/postgresql/data/server.crt\nrepo1-host-key-file=/var/lib/postgresql/data/server.key\n" +
                "repo1-host-port=8432\nrepo1-host-type=tls\nspool-path=/var/lib/postgresql/data/pgbackrest-spool\n" +
                "tls-server-address=0.0.0.0\ntls-server-auth=obcms-database-staging-backup=main\n" +
                tlsServerFiles("/var/lib/postgresql/data") +
                "\n[global:archive-get]\narchive-async=n\nio-timeout=5\n" +
                "\n[main]\npg1-path=/var/lib/postgresql/data/pgdata\npg1-port=5432\npg1-socket-path=/var/run/postgresql\n",
        );
    });

    it("on the backup container: encrypted volume repository, retention, backups from a standby, every member as a TLS host, its certificate from its volume", () => {
        expect(renderPgbackrestConf(repositoryHostPgbackrestConf(staging, VOLUME, { passphrase: "PASS" }))).toBe(
            HEADER +
                "\n[global]\narchive-timeout=300\nbackup-standby=y\n" +
                LOGGING +
                "repo1-cipher-pass=PASS\nrepo1-cipher-type=aes-256-cbc\nrepo1-path=/var/lib/pgbackrest\n" +
                "repo1-retention-full=2\nrepo1-retention-full-type=count\nstart-fast=y\n" +
                "tls-server-address=0.0.0.0\ntls-server-auth=obcms-database-staging-pg-1=main\ntls-server-auth=obcms-database-staging-pg-2=main\n" +
                tlsServerFiles("/var/lib/obcms/backup") +
                "\n[main]\n" +
                pgHost(1, "obcms-database-staging-pg-1") +
                pgHost(2, "obcms-database-staging-pg-2"),
        );
    });

    it("lists every member of production, in order, whatever its role", () => {
        const stanza = repositoryHostPgbackrestConf(production, VOLUME, { passphrase: "PASS" }).main;
        expect(
            Object.keys(stanza)
                .filter((k) => k.endsWith("-host"))
                .sort(),
        ).toEqual(["pg1-host", "pg2-host", "pg3-host", "pg4-host"]);
        expect([1, 2, 3, 4].map((k) => stanza[`pg${k}-host`])).toEqual([1, 2, 3, 4].map((k) => `obcms-database-production-pg-${k}`));
    });

    it("points at S3 with the access keys, and restores with the repository read directly", () => {
        expect(renderPgbackrestConf(restorePgbackrestConf(S3, { passphrase: "PASS", s3: { key: "AKIA", keySecret: "s3cr=t#;" } }))).toBe(
            HEADER +
                "\n[global]\n" +
                LOGGING +
                "repo1-cipher-pass=PASS\nrepo1-cipher-type=aes-256-cbc\nrepo1-path=/obcms-database\n" +
                "repo1-s3-bucket=obcms-backups\nrepo1-s3-endpoint=s3.eu-west-1.amazonaws.com\nrepo1-s3-key=AKIA\n" +
                "repo1-s3-key-secret=s3cr=t#;\nrepo1-s3-region=eu-west-1\nrepo1-s3-uri-style=host\nrepo1-type=s3\n" +
                "\n[main]\npg1-path=/var/lib/postgresql/data/pgdata\n",
        );
        expect(restorePgbackrestConf(VOLUME, { passphrase: "PASS" }).global["repo1-path"]).toBe("/var/lib/pgbackrest");
    });

    it("refuses an S3 repository without its keys", () => {
        expect(() => restorePgbackrestConf(S3, { passphrase: "PASS" })).toThrow(
            exactly("pgbackrest.conf: an S3 repository needs its access keys"),
        );
    });

    it("writes hostile values verbatim on their own line, and refuses what would end the line or be trimmed", () => {
        const conf = renderPgbackrestConf(repositoryHostPgbackrestConf(staging, VOLUME, { passphrase: LONG }));
        expect(conf.split("\n")).toContain(`repo1-cipher-pass=${LONG}`);
        for (const [value, reason] of [
            ["pass\n[global]", "line breaks are not allowed"],
            ["pass\rword", "line breaks are not allowed"],
            ["pass\u2028word", "line breaks are not allowed"],
            ["pass\u0000word", "control characters are not allowed"],
            [" pass", "a value cannot be empty or start or end with whitespace"],
            ["pass\t", "a value cannot be empty or start or end with whitespace"],
            ["", "a value cannot be empty or start or end with whitespace"],
        ] as const) {
            expect(() => renderPgbackrestConf(repositoryHostPgbackrestConf(staging, VOLUME, { passphrase: value }))).toThrow(
                exactly(`pgbackrest.conf: cannot write ${JSON.stringify(value)}: ${reason}`),
            );
        }
    });

    it("refuses names pgBackRest would not read as one option or section", () => {
        expect(() => renderPgbackrestConf({ global: { "repo1 path": "x" } })).toThrow(
            exactly('pgbackrest.conf: "repo1 path" is not an option name'),
        );
        expect(() => renderPgbackrestConf({ "main]\n[global": {} })).toThrow(
            exactly('pgbackrest.conf: "main]\\n[global" is not a section name'),
        );
    });
});

describe("archiving and the start scripts", () => {
    it("archives every WAL segment through pgBackRest, at least once a minute under writes", () => {
        expect(archiveParameters()).toEqual({
            archive_mode: "on",
            archive_command: "pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main archive-push %p",
            archive_timeout: 60,
        });
    });

    it("runs pgBackRest's TLS server double-forked, so tini adopts it, and restarts it", () => {
        expect(tlsServerLines()).toEqual([
            "( (until false; do pgbackrest --config='/etc/obcms/pgbackrest.conf' server || true; echo 'pgbackrest server exited; restarting it' >&2; sleep 1; done) </dev/null & )",
        ]);
    });

    it("runs a due drill beside the schedule, its report in the log, and logs its outcome on the tick after it ends", () => {
        const script = renderBackupStart({ backup: VOLUME, tickSeconds: 10, metricsPort: 9100 });
        const block = script.slice(script.indexOf('  if [ -n "$drill_pid" ]'), script.indexOf("  if [ $((now - last_check))"));
        // A stub drill, due once, which reports and exits with `exitStatus`; the loop's drill lines, ticked three times.
        const ticks = (exitStatus: number) =>
            spawnSync(
                "docker",
                [
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--user",
                    "postgres",
                    "--entrypoint",
                    "sh",
                    PROJECT_IMAGE,
                    "-c",
                    [
                        "set -eu",
                        'log() { echo "LOG $*"; }',
                        `drill() { case "$1" in due) [ ! -f /tmp/ran ] ;; run) touch /tmp/ran; echo "the report"; sleep 1; return ${exitStatus} ;; esac; }`,
                        "drill_pid=",
                        `for tick in 1 2 3; do echo "tick $tick"\n${block}  sleep 1.5\ndone`,
                    ].join("\n"),
                ],
                { encoding: "utf8" },
            );
        const passed = ticks(0);
        expect(passed.stderr).toBe("");
        expect(passed.stdout).toBe("tick 1\nLOG drill start\nthe report\ntick 2\nLOG drill end outcome=success\ntick 3\n");
        expect(ticks(1).stdout).toBe("tick 1\nLOG drill start\nthe report\ntick 2\nLOG drill end outcome=failed\ntick 3\n");
    });

    it("the backup container's script parses, and carries the schedule, the retry and the metrics", () => {
        const script = renderBackupStart({
            backup: { ...VOLUME, fullEverySeconds: 3_600, diffEverySeconds: 600 },
            tickSeconds: 10,
            metricsPort: 9100,
        });
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
        // No full backup while a restore drill holds its lock: a diff meanwhile, when due.
        expect(script).toContain(
            "if [ $((now - last_full)) -ge 3600 ] && flock -n '/var/lib/postgresql/data/restore-drill.lock' true; then last_attempt=\"$now\"; run_backup full || true",
        );
        expect(script).toContain('elif [ $((now - last_any)) -ge 600 ]; then last_attempt="$now"; run_backup diff || true');
        expect(script).toContain("--collector.textfile.directory='/tmp/obcms-metrics' --web.listen-address=:9100");
        // Each backup holds the lock a drill waits on before it picks the backup to restore.
        expect(script).toContain(
            "  if flock '/tmp/obcms-backup-run.lock' pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main --type=\"$type\" backup; then last_outcome=1; else last_outcome=0; fi",
        );
        // The wait runs in the background, so a stop signal ends it at once; a running backup finishes first.
        expect(script).toContain("  stop_if_requested\n  sleep 10 & wait $! || true\n");
        expect(script).toContain("trap 'stopping=1' TERM INT\n");
        expect(script).toContain("while :; do\n  stop_if_requested\n");
        // The health check's file comes only after the stanza and a full backup, which a repository that has one skips.
        expect(script).toContain(
            [
                'if [ "$(full_backups)" = 0 ]; then',
                "  attempt=1",
                "  until pgbr stanza-create; do",
                "    stop_if_requested",
                '    if [ "$attempt" -ge 150 ]; then log "stanza-create failed 150 times"; exit 1; fi',
                "    attempt=$((attempt + 1)); sleep 2",
                "  done",
                '  if [ "$(full_backups)" = 0 ]; then',
                "    run_backup full",
                "  fi",
                "fi",
                "touch '/tmp/obcms-backup-ready'",
            ].join("\n"),
        );
    });

    it("the backup container's metrics are valid Prometheus text", () => {
        // The metrics block run with pgBackRest's answers stubbed: one full backup, one diff, one segment.
        const script = renderBackupStart({ backup: VOLUME, tickSeconds: 10, metricsPort: 9100 });
        const block = script.slice(script.indexOf("  {\n"), script.indexOf("  mv "));
        const info = JSON.stringify([
            {
                backup: [
                    { label: "20261129-010000F", type: "full", timestamp: { start: 100, stop: 200 } },
                    { label: "20261129-010000F_20261129-020000D", type: "diff", timestamp: { start: 300, stop: 400 } },
                ],
                archive: [{ id: "17-1", max: "000000010000000000000004" }],
            },
        ]);
        const output = execFileSync(
            "/bin/sh",
            ["-c", `info='${info}'; last_outcome=1; last_duration=7; wal_time=450; check_ok=1\n${block.replace(/> '[^']*'$/m, "")}`],
            { encoding: "utf8" },
        );
        expect(output).toBe(
            [
                "# HELP obcms_backup_last_success_timestamp_seconds End of the newest backup in the repository, by type (any: full, diff or incr).",
                "# TYPE obcms_backup_last_success_timestamp_seconds gauge",
                'obcms_backup_last_success_timestamp_seconds{type="full"} 200',
                'obcms_backup_last_success_timestamp_seconds{type="any"} 400',
                "# HELP obcms_backup_last_run_success 1 if the last backup run by the schedule succeeded.",
                "# TYPE obcms_backup_last_run_success gauge",
                "obcms_backup_last_run_success 1",
                "# HELP obcms_backup_last_run_duration_seconds Duration of the last backup run.",
                "# TYPE obcms_backup_last_run_duration_seconds gauge",
                "obcms_backup_last_run_duration_seconds 7",
                "# HELP obcms_backup_repository_backups Backups in the repository.",
                "# TYPE obcms_backup_repository_backups gauge",
                "obcms_backup_repository_backups 2",
                "# HELP obcms_backup_wal_archived_timestamp_seconds When the newest WAL segment reached the repository.",
                "# TYPE obcms_backup_wal_archived_timestamp_seconds gauge",
                "obcms_backup_wal_archived_timestamp_seconds 450",
                "# HELP obcms_backup_archive_check_success 1 if the last pgbackrest check (WAL switch archived) passed.",
                "# TYPE obcms_backup_archive_check_success gauge",
                "obcms_backup_archive_check_success 1",
                "",
            ].join("\n"),
        );
        // Prometheus's own linter, from the project image, reads it without a complaint.
        const lint = spawnSync("docker", ["run", "--rm", "-i", "--network", "none", PROJECT_IMAGE, "promtool", "check", "metrics"], {
            input: output,
            encoding: "utf8",
        });
        expect({ status: lint.status, output: lint.stdout + lint.stderr }).toEqual({ status: 0, output: "" });
    }, 60_000);
});

describe("members restored from the repository, and archived WAL fetched back", () => {
    const RESTORE_SCRIPT =
        "if ! getent hosts 'obcms-database-staging-backup' >/dev/null; then echo 'no repository host yet: the member is cloned instead' >&2; exit 1; fi; " +
        "if [ -f '/var/lib/postgresql/data/pgdata/PG_VERSION' ]; then delta=--delta; else delta=; fi; " +
        "exec pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main $delta --type=standby restore";

    /** Runs `python3 -c program` in the project image, without a network, with `input` on its standard input. */
    function inImage(program: string, input: string) {
        const result = spawnSync(
            "docker",
            ["run", "--rm", "-i", "--network", "none", "--entrypoint", "python3", PROJECT_IMAGE, "-c", program],
            {
                input,
                encoding: "utf8",
            },
        );
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    }

    it("Patroni's pgbackrest method: a delta restore as a standby, through sh, since Patroni runs it without a shell", () => {
        const command = replicaRestoreCommand(staging);
        expect(command).toBe(`sh -c '${RESTORE_SCRIPT.replace(/'/g, "'\\''")}'`);
        expect(shellSyntaxCheck(RESTORE_SCRIPT)).toEqual({ status: 0, stderr: "" });
        // Patroni splits the command with Python's shlex (patroni/postgresql/bootstrap.py).
        const split = inImage("import json, shlex, sys; print(json.dumps(shlex.split(sys.stdin.read())))", command);
        expect(JSON.parse(split.stdout)).toEqual(["sh", "-c", RESTORE_SCRIPT]);
    }, 60_000);

    it("without a repository host (the members' first start) the method fails at once, in one line, and Patroni clones instead", () => {
        // As Patroni calls it, in a container where the repository host's name does not resolve; the
        // call is timed inside the container (pgBackRest itself would retry the name for io-timeout, 60 s).
        const run = inImage(
            "import shlex, subprocess, sys, time; t = time.monotonic(); s = subprocess.call(shlex.split(sys.stdin.read())); print(time.monotonic() - t); sys.exit(s)",
            replicaRestoreCommand(staging),
        );
        expect({ status: run.status, stderr: run.stderr }).toEqual({
            status: 1,
            stderr: "no repository host yet: the member is cloned instead\n",
        });
        expect(Number(run.stdout)).toBeLessThan(2);
    }, 60_000);

    it("restore_command: archive-get through the member's config, a miss at once while the repository host does not resolve", () => {
        const command = restoreCommand(staging);
        expect(command).toBe(
            `getent hosts 'obcms-database-staging-backup' >/dev/null && pgbackrest --config=/etc/obcms/pgbackrest.conf --stanza=main archive-get %f "%p"`,
        );
        // PostgreSQL runs it through the shell with %f and %p replaced; an exit status below 126 means "not archived".
        const run = inImage(
            "import subprocess, sys; sys.exit(subprocess.call(['sh', '-c', sys.stdin.read().replace('%f', '000000010000000000000001').replace('%p', 'pg_wal/RECOVERYXLOG')]))",
            command,
        );
        expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ status: 2, stdout: "", stderr: "" });
    }, 60_000);
});
