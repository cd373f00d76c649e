// The command that writes PgBouncer's reloadable settings to its volume and
// has a running PgBouncer take them, run by /bin/sh with `docker` replaced by
// a shell function. The integration tests run it against real containers.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { pgbouncerReloadableSettings, pgbouncerVolumeTarget } from "../../components/render/pgbouncer/config";
import { renderPgbouncerIncluded } from "../../components/render/pgbouncer/pgbouncer-ini";
import { pgbouncerSettingsCommand } from "../../components/render/pgbouncer/settings-command";
import { IMAGE_VARIABLE } from "../../components/render/volume-command";
import { production, productionPgbouncerVolumeWrite, shellSyntaxCheck } from "./fixtures";

const settings = pgbouncerReloadableSettings(production);
const command = pgbouncerSettingsCommand(pgbouncerVolumeTarget(production), settings);
const file = renderPgbouncerIncluded(settings);

/**
 * Logs every call's arguments to $DIR/calls and `docker run`'s stdin to
 * $DIR/written; `container inspect` prints $RUNNING, the admin console's
 * SHOW CONFIG prints $DIR/config.
 */
const FAKE_DOCKER = `
docker() {
  { printf '%s\\0' "$@"; printf '\\n'; } >> "$DIR/calls"
  case "$1" in
    run) cat > "$DIR/written" ;;
    container) printf '%s\\n' "$RUNNING" ;;
    exec) eval "sql=\\\${$#}"; if [ "$sql" = "SHOW CONFIG" ]; then cat "$DIR/config"; fi ;;
    *) return 99 ;;
  esac
}
`;

/** SHOW CONFIG as psql -A -t prints it: key|value|default|changeable. */
function showConfig(values: Record<string, string | number>): string {
    return Object.entries({ ...values, listen_port: 6432 })
        .map(([key, value]) => `${key}|${value}|0|yes\n`)
        .join("");
}

function run(running: string, config: Record<string, string | number>) {
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-pgbouncer-settings-"));
    try {
        writeFileSync(path.join(dir, "config"), showConfig(config));
        const result = spawnSync("/bin/sh", ["-c", `${FAKE_DOCKER}\n${command}`], {
            input: file,
            encoding: "utf8",
            env: { PATH: process.env.PATH, DIR: dir, RUNNING: running, [IMAGE_VARIABLE]: "sha256:0123" },
        });
        const calls = readFileSync(path.join(dir, "calls"), "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => line.split("\0").slice(0, -1));
        return { status: result.status, stderr: result.stderr, calls, written: readFileSync(path.join(dir, "written"), "utf8") };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

const WRITE = productionPgbouncerVolumeWrite(
    "cat > /var/lib/obcms/pgbouncer/pool.ini.new && mv /var/lib/obcms/pgbouncer/pool.ini.new /var/lib/obcms/pgbouncer/pool.ini",
);
const INSPECT = ["container", "inspect", "--format", "{{.State.Running}}", "obcms-database-production-pgbouncer"];
const admin = (sql: string) => [
    "exec",
    "-e",
    "PGPASSFILE=/etc/obcms/pgpass",
    "obcms-database-production-pgbouncer",
    ...["psql", "-X", "-q", "-A", "-t", "-h", "/var/run/postgresql", "-p", "6432", "-U", "pgbouncer", "-d", "pgbouncer", "-c", sql],
];

describe("pgbouncerSettingsCommand", () => {
    it("is valid sh", () => {
        expect(shellSyntaxCheck(command)).toEqual({ status: 0, stderr: "" });
    });

    it("before PgBouncer's container runs, writes the file to the volume with the image, and no more", () => {
        const result = run("", settings);
        expect(result).toMatchObject({ status: 0, stderr: "" });
        expect(result.calls).toEqual([WRITE, INSPECT]);
        expect(result.written).toBe(file);
    });

    it("with PgBouncer running, writes the file, reloads, and succeeds once SHOW CONFIG reports every value", () => {
        const result = run("true", settings);
        expect(result).toMatchObject({ status: 0, stderr: "" });
        expect(result.calls).toEqual([WRITE, INSPECT, admin("RELOAD"), admin("SHOW CONFIG")]);
    });

    // A file PgBouncer refuses leaves it on the old values, and RELOAD still answers RELOAD.
    it("fails, naming the setting, when PgBouncer still reports another value after the RELOAD", () => {
        const result = run("true", { ...settings, max_db_connections: 30 });
        expect(result.status).toBe(1);
        expect(result.stderr).toBe("PgBouncer did not take max_db_connections = 55 on RELOAD; its log says why\n");
    });

    it("does not take a value that only starts like the declared one", () => {
        expect(run("true", { ...settings, default_pool_size: 500 }).stderr).toBe(
            "PgBouncer did not take default_pool_size = 50 on RELOAD; its log says why\n",
        );
    });
});
