// The commands that write a service's certificate and key to its volume and
// have the running service take them (PgBouncer by RELOAD, the backup
// container's pgBackRest by SIGHUP, etcd at its next handshake, a member's
// Patroni and pgBackRest by SIGHUP), run by
// /bin/sh with `docker` replaced by a shell function: `docker run` runs its
// script here, on a directory standing in for the volume. The integration
// tests run them against real containers.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { shellWord } from "../../components/render/escape";
import { etcdCertificateCommand } from "../../components/render/etcd/certificate-command";
import {
    BACKUP_TLS_DIR,
    BACKUP_TLS_FILES,
    ETCD_TLS_FILES,
    ETCD_VOLUME_DIR,
    MEMBER_TLS_FILES,
    PGBOUNCER_RELOADABLE_DIR,
    PGBOUNCER_TLS_FILES,
    VOLUME_DIR,
} from "../../components/render/paths";
import { memberCertificateCommand } from "../../components/render/patroni/certificate-command";
import { backupCertificateCommand, backupVolumeTarget } from "../../components/render/pgbackrest/certificate-command";
import { pgbouncerCertificateCommand } from "../../components/render/pgbouncer/certificate-command";
import { renderCertificateInput } from "../../components/render/tls/certificate-command";
import { IMAGE_VARIABLE } from "../../components/render/volume-command";
import { clusterTopology } from "../../components/topology";
import { production, shellSyntaxCheck } from "./fixtures";

const { pgbouncer, etcd, backup, members } = clusterTopology(production);
const pgbouncerCommand = (servesTls: boolean) =>
    pgbouncerCertificateCommand(
        { container: pgbouncer.container, volume: pgbouncer.volume, mountPath: PGBOUNCER_RELOADABLE_DIR },
        servesTls,
    );

const CERT = "-----BEGIN CERTIFICATE-----\nQ0VSVElGSUNBVEU=\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN EC PRIVATE KEY-----\nS0VZ\n-----END EC PRIVATE KEY-----\n";

/**
 * Logs every call's arguments to $DIR/calls. `docker run` runs its script
 * (the last argument) with the volume's path ($MOUNT) turned into
 * $DIR/volume, and `openssl` there prints $WRITTEN as the fingerprint of the
 * file it is given, once written; `container inspect` prints $RUNNING;
 * `docker exec` finds the file in the service's config when
 * $NAMES_VOLUME_FILES, and prints, for the handshakes, the successive
 * entries of $SERVED. `sleep` returns at once.
 */
const FAKE_DOCKER = `
docker() {
  { printf '%s\\0' "$@"; printf '\\n'; } >> "$DIR/calls"
  case "$1" in
    run)
      eval "script=\\\${$#}"
      { echo 'openssl() { eval "file=\\\${$#}"; if [ -s "$file" ]; then printf "%s\\n" "$WRITTEN"; else return 1; fi; }'
        printf '%s' "$script" | sed "s#$MOUNT#$DIR/volume#g"; } > "$DIR/script"
      sh "$DIR/script" ;;
    container) printf '%s\\n' "$RUNNING" ;;
    exec)
      case "$*" in
        *"grep -qF"*) [ "$NAMES_VOLUME_FILES" = true ] ;;
        *s_client*)
          # $SERVED lists what successive handshakes show, separated by "|"; the last one repeats.
          n=$(( $(cat "$DIR/handshakes" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$DIR/handshakes"
          printf '%s\\n' "$SERVED" | awk -F'|' -v n="$n" '{ print (n <= NF ? $n : $NF) }' ;;
      esac ;;
    *) return 99 ;;
  esac
}
sleep() { :; }
`;

let dir: string;
beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "obcms-certificate-command-"));
    mkdirSync(path.join(dir, "volume"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(command: string, mount: string, options: { running: boolean; served?: string; input?: string; namesVolumeFiles?: boolean }) {
    const result = spawnSync("/bin/sh", ["-c", `${FAKE_DOCKER}\n${command}`], {
        input: options.input ?? renderCertificateInput(CERT, KEY),
        encoding: "utf8",
        env: {
            PATH: process.env.PATH,
            DIR: dir,
            MOUNT: mount,
            RUNNING: String(options.running),
            NAMES_VOLUME_FILES: String(options.namesVolumeFiles ?? true),
            WRITTEN: "SHA256 Fingerprint=AA",
            SERVED: options.served ?? "SHA256 Fingerprint=AA",
            [IMAGE_VARIABLE]: "sha256:0123",
        },
    });
    // Each call's arguments end in NUL, the call in a newline: the script argument spans lines.
    const calls = readFileSync(path.join(dir, "calls"), "utf8")
        .split("\0\n")
        .filter((call) => call !== "")
        .map((call) => call.split("\0").join(" "));
    return { status: result.status, stderr: result.stderr, calls };
}

/**
 * Runs `command` with its service running and the files named in its config:
 * it must succeed, writing through the volume `volume` mounted at `mount`.
 * Returns its `docker exec` calls.
 */
function execsWhileRunning(command: string, mount: string, volume: string): string[] {
    const { status, calls } = run(command, mount, { running: true });
    expect(status).toBe(0);
    expect(calls[0]).toContain(`--volume ${volume}:${mount} `);
    return calls.filter((call) => call.startsWith("exec "));
}

/** Arguments as the command's handshake line quotes them. */
const quoted = (...words: string[]) => words.map(shellWord).join(" ");

/** A file on the stand-in volume, by its path in the container. */
const onVolume = (mount: string, file: string) => path.join(dir, "volume", path.relative(mount, file));

describe("pgbouncerCertificateCommand", () => {
    const pgbouncerRun = (options: Parameters<typeof run>[2], servesTls = true) =>
        run(pgbouncerCommand(servesTls), PGBOUNCER_RELOADABLE_DIR, options);

    it("is valid sh", () => {
        expect(shellSyntaxCheck(pgbouncerCommand(true))).toEqual({ status: 0, stderr: "" });
    });

    it("before PgBouncer runs, writes the certificate and the key, each 0600, and stops there", () => {
        const { status, calls } = pgbouncerRun({ running: false });
        expect(status).toBe(0);
        expect(readFileSync(onVolume(PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_TLS_FILES.cert), "utf8")).toBe(CERT);
        expect(readFileSync(onVolume(PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_TLS_FILES.key), "utf8")).toBe(KEY);
        for (const file of [PGBOUNCER_TLS_FILES.cert, PGBOUNCER_TLS_FILES.key]) {
            expect(statSync(onVolume(PGBOUNCER_RELOADABLE_DIR, file)).mode & 0o777).toBe(0o600);
        }
        expect(calls.map((call) => call.split(" ")[0])).toEqual(["run", "container"]);
    });

    it("with PgBouncer running, reloads it and checks that a handshake shows the certificate written", () => {
        const { status, calls } = pgbouncerRun({ running: true });
        expect(status).toBe(0);
        const execs = calls.filter((call) => call.startsWith("exec "));
        expect(execs).toHaveLength(3);
        expect(execs[0]).toBe(`exec ${pgbouncer.container} grep -qF ${PGBOUNCER_TLS_FILES.cert} /etc/obcms/pgbouncer.ini`);
        expect(execs[1]).toMatch(/ -c RELOAD$/);
        expect(execs[2]).toContain(`openssl s_client ${quoted("-starttls", "postgres", "-connect", "127.0.0.1:6432")} </dev/null`);
    });

    it("leaves a PgBouncer whose config names other certificate files alone: deployed before they moved to the volume, the update replaces it", () => {
        const { status, calls } = pgbouncerRun({ running: true, served: "SHA256 Fingerprint=BB", namesVolumeFiles: false });
        expect(status).toBe(0);
        expect(readFileSync(onVolume(PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_TLS_FILES.cert), "utf8")).toBe(CERT);
        expect(calls.filter((call) => call.startsWith("exec "))).toEqual([
            `exec ${pgbouncer.container} grep -qF ${PGBOUNCER_TLS_FILES.cert} /etc/obcms/pgbouncer.ini`,
        ]);
    });

    it("fails, naming the cause, when PgBouncer still serves another certificate five handshakes after its RELOAD", () => {
        const { status, stderr, calls } = pgbouncerRun({ running: true, served: "SHA256 Fingerprint=BB" });
        expect(status).toBe(1);
        expect(stderr).toMatch(/^PgBouncer did not take the new certificate/);
        expect(calls.filter((call) => call.includes("s_client"))).toHaveLength(5);
    });

    it("passes once a later handshake shows the certificate written", () => {
        const { status, calls } = pgbouncerRun({ running: true, served: "SHA256 Fingerprint=BB|SHA256 Fingerprint=AA" });
        expect(status).toBe(0);
        expect(calls.filter((call) => call.includes("s_client"))).toHaveLength(2);
    });

    it("fails when the handshake shows no certificate at all", () => {
        expect(pgbouncerRun({ running: true, served: "" }).status).toBe(1);
    });

    it("reloads without a handshake when PgBouncer serves no TLS to clients", () => {
        const { status, calls } = pgbouncerRun({ running: true }, false);
        expect(status).toBe(0);
        expect(calls.filter((call) => call.startsWith("exec "))).toHaveLength(2);
    });

    it("renames nothing into place when the input lacks the key", () => {
        const { status, stderr } = pgbouncerRun({ running: true, input: CERT });
        expect(status).not.toBe(0);
        expect(stderr).toMatch(/no certificate or no private key/);
        expect(existsSync(onVolume(PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_TLS_FILES.cert))).toBe(false);
        expect(existsSync(onVolume(PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_TLS_FILES.key))).toBe(false);
    });
});

describe("etcdCertificateCommand", () => {
    const [member] = etcd;

    it("is valid sh", () => {
        expect(shellSyntaxCheck(etcdCertificateCommand(member))).toEqual({ status: 0, stderr: "" });
    });

    it("writes to the member's data volume and, with the member running, signals nothing: a handshake presenting its own certificate must show the new one", () => {
        const execs = execsWhileRunning(etcdCertificateCommand(member), ETCD_VOLUME_DIR, member.volume);
        expect(readFileSync(onVolume(ETCD_VOLUME_DIR, ETCD_TLS_FILES.cert), "utf8")).toBe(CERT);
        expect(execs).toHaveLength(2);
        expect(execs[0]).toBe(`exec ${member.container} grep -qF ${ETCD_TLS_FILES.cert} /etc/obcms/etcd.yml`);
        expect(execs[1]).toContain(
            `openssl s_client ${quoted("-connect", "127.0.0.1:2379", "-cert", ETCD_TLS_FILES.cert, "-key", ETCD_TLS_FILES.key)} </dev/null`,
        );
        expect(execs.some((call) => call.includes("kill ") || call.includes("RELOAD"))).toBe(false);
    });

    it("fails, naming the member, when the handshake shows the old certificate", () => {
        const { status, stderr } = run(etcdCertificateCommand(member), ETCD_VOLUME_DIR, { running: true, served: "SHA256 Fingerprint=BB" });
        expect(status).toBe(1);
        expect(stderr).toMatch(new RegExp(`^etcd member ${member.name} did not take the new certificate`));
    });
});

describe("backupCertificateCommand", () => {
    const command = backupCertificateCommand(backupVolumeTarget(production));

    it("is valid sh", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("writes to the backup container's certificate volume, signals pgBackRest's listener alone, then a handshake must show the new one", () => {
        const execs = execsWhileRunning(command, BACKUP_TLS_DIR, backup.tlsVolume);
        expect(readFileSync(onVolume(BACKUP_TLS_DIR, BACKUP_TLS_FILES.key), "utf8")).toBe(KEY);
        expect(execs).toHaveLength(3);
        expect(execs[0]).toBe(`exec ${backup.container} grep -qF ${BACKUP_TLS_FILES.cert} /etc/obcms/pgbackrest.conf`);
        expect(execs[1]).toMatch(new RegExp(`^exec ${backup.container} sh -c .*pgrep -d ' ' -f '\\^pgbackrest \\.\\* server\\$'`, "s"));
        expect(execs[1]).toContain('kill -HUP "$pid"');
        expect(execs[2]).toContain(`openssl s_client ${quoted("-connect", "127.0.0.1:8432")} </dev/null`);
    });

    it("fails, naming the TLS server, when the handshake keeps showing the old certificate", () => {
        const { status, stderr } = run(command, BACKUP_TLS_DIR, { running: true, served: "SHA256 Fingerprint=BB" });
        expect(status).toBe(1);
        expect(stderr).toMatch(/^pgBackRest's TLS server in the backup container did not take the new certificate/);
    });
});

describe("memberCertificateCommand", () => {
    const member = members[2];
    const command = memberCertificateCommand(production, member);
    const handshakes = (calls: string[]) => calls.filter((call) => call.includes("s_client"));

    it("is valid sh", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("writes to the member's data volume, signals Patroni and pgBackRest's listener, then PostgreSQL, the REST API and pgBackRest must each show the new certificate", () => {
        const execs = execsWhileRunning(command, VOLUME_DIR, member.volume);
        expect(readFileSync(onVolume(VOLUME_DIR, MEMBER_TLS_FILES.cert), "utf8")).toBe(CERT);
        expect(readFileSync(onVolume(VOLUME_DIR, MEMBER_TLS_FILES.key), "utf8")).toBe(KEY);
        expect(execs).toHaveLength(6);
        expect(execs[0]).toBe(`exec ${member.container} grep -qF ${MEMBER_TLS_FILES.cert} /etc/obcms/patroni.yml`);
        expect(execs[1]).toBe(`exec ${member.container} pkill -HUP -x patroni`);
        expect(execs[2]).toContain('kill -HUP "$pid"');
        expect(execs[3]).toContain(`openssl s_client ${quoted("-starttls", "postgres", "-connect", "127.0.0.1:5432")} </dev/null`);
        expect(execs[4]).toContain(`openssl s_client ${quoted("-connect", "127.0.0.1:8008")} </dev/null`);
        expect(execs[5]).toContain(`openssl s_client ${quoted("-connect", "127.0.0.1:8432")} </dev/null`);
    });

    it("waits out a Patroni cycle, loop_wait and retry_timeout beyond the usual five handshakes, for PostgreSQL to reload", () => {
        const late = [...Array(14).fill("SHA256 Fingerprint=BB"), "SHA256 Fingerprint=AA"].join("|");
        const { status, calls } = run(command, VOLUME_DIR, { running: true, served: late });
        expect(status).toBe(0);
        // The fifteenth on PostgreSQL's port shows it, then the REST API's and pgBackRest's at once.
        expect(handshakes(calls)).toHaveLength(17);
    });

    it("fails, naming the member and the port, when PostgreSQL still shows the old certificate after that", () => {
        const { status, stderr, calls } = run(command, VOLUME_DIR, { running: true, served: "SHA256 Fingerprint=BB" });
        expect(status).toBe(1);
        expect(stderr).toMatch(
            new RegExp(`^member ${member.node} did not take the new certificate on -starttls postgres -connect 127.0.0.1:5432 `),
        );
        expect(handshakes(calls)).toHaveLength(15);
    });

    it("leaves a member whose Patroni config names other certificate files alone: deployed before they moved to the volume, the update replaces it", () => {
        const { status, calls } = run(command, VOLUME_DIR, { running: true, served: "SHA256 Fingerprint=BB", namesVolumeFiles: false });
        expect(status).toBe(0);
        expect(calls.filter((call) => call.startsWith("exec "))).toEqual([
            `exec ${member.container} grep -qF ${MEMBER_TLS_FILES.cert} /etc/obcms/patroni.yml`,
        ]);
    });
});
