// The restore drill's script: its schedule (`due`, `publish`) run for real in
// the project image against records of past drills, and what it is given.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { RESTORE_DRILL_LOCK_FILE } from "../../components/render/paths";
import {
    DRILL_RETRY_SECONDS,
    RESTORE_DRILL_METRICS,
    RESTORE_DRILL_STATE_FILE,
    renderRestoreDrill,
} from "../../components/render/pgbackrest/restore-drill";
import type { BackupSettings } from "../../components/settings";
import { defaultBackup } from "../support/monitoring-fixtures";
import { PROJECT_IMAGE } from "../support/promtool";
import { shellSyntaxCheck, staging } from "./fixtures";

/** Staging's schedule: a drill a day. */
const DAILY: BackupSettings = { ...defaultBackup, restoreDrillEverySeconds: 86_400 };
const [LAST_RUN, LAST_SUCCESS, SUCCESS] = [
    RESTORE_DRILL_METRICS.lastRun[0],
    RESTORE_DRILL_METRICS.lastSuccess[0],
    RESTORE_DRILL_METRICS.lastRunSuccess[0],
];

/** Runs `lines` of shell in the project image as the service user, the drill script at /tmp/drill.sh. */
function inImage(b: BackupSettings, lines: readonly string[]): { status: number | null; stdout: string; stderr: string } {
    const script = ["set -eu", "cat > /tmp/drill.sh", "now=$(date +%s)", ...lines].join("\n");
    const run = spawnSync(
        "docker",
        ["run", "--rm", "-i", "--network", "none", "--user", "postgres", "--entrypoint", "sh", PROJECT_IMAGE, "-c", script],
        { encoding: "utf8", input: renderRestoreDrill(staging, b) },
    );
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** `inImage`, which must succeed quietly; its stdout. */
function withDrill(b: BackupSettings, lines: readonly string[]): string {
    const run = inImage(b, lines);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    return run.stdout;
}

/** Shell that writes a record of past drills, each value relative to the container's `now`. */
function record(values: Readonly<Record<string, string>>): string {
    const lines = Object.entries(values).map(([name, value]) => `${name} ${value}`);
    return `printf '%s\\n' ${lines.map((l) => `"${l}"`).join(" ")} > ${RESTORE_DRILL_STATE_FILE}`;
}

const due = (label: string) => `if sh /tmp/drill.sh due; then echo "${label} due"; else echo "${label} not due"; fi`;

describe("the restore drill script", () => {
    it("parses", () => {
        expect(shellSyntaxCheck(renderRestoreDrill(staging, DAILY))).toEqual({ status: 0, stderr: "" });
    });

    it("starts the record with the schedule's start, publishes it for the textfile collector, and owes no drill until an interval later", () => {
        const out = withDrill(DAILY, [
            due("fresh"),
            `began=$(sed -n 's/^${LAST_SUCCESS} //p' ${RESTORE_DRILL_STATE_FILE})`,
            // Within a second of the script's start: the clock may tick between the two reads.
            'if [ $((began - now)) -ge 0 ] && [ $((began - now)) -le 1 ]; then echo "began now"; else echo "began at $began, now $now"; fi',
            `cmp ${RESTORE_DRILL_STATE_FILE} /tmp/obcms-metrics/drill.prom && echo published`,
            `grep -c '^# TYPE ${LAST_SUCCESS} gauge$' /tmp/obcms-metrics/drill.prom`,
        ]);
        expect(out).toBe("fresh not due\nbegan now\npublished\n1\n");
    });

    it("owes a drill an interval after the schedule began, or after the last passed, and an hour after one failed", () => {
        const every = DAILY.restoreDrillEverySeconds;
        const cases: Array<[string, Record<string, string>]> = [
            ["began an interval ago", { [LAST_SUCCESS]: `$((now - ${every}))` }],
            ["began just under an interval ago", { [LAST_SUCCESS]: `$((now - ${every - 5}))` }],
            ["passed an interval ago", { [SUCCESS]: "1", [LAST_RUN]: `$((now - ${every}))`, [LAST_SUCCESS]: `$((now - ${every}))` }],
            ["passed just under an interval ago", { [SUCCESS]: "1", [LAST_RUN]: `$((now - ${every - 5}))`, [LAST_SUCCESS]: "0" }],
            ["failed an hour ago", { [SUCCESS]: "0", [LAST_RUN]: `$((now - ${DRILL_RETRY_SECONDS}))`, [LAST_SUCCESS]: "0" }],
            ["failed just under an hour ago", { [SUCCESS]: "0", [LAST_RUN]: `$((now - ${DRILL_RETRY_SECONDS - 5}))`, [LAST_SUCCESS]: "0" }],
        ];
        const out = withDrill(
            DAILY,
            cases.flatMap(([label, values]) => [record(values), due(label)]),
        );
        expect(out.trim().split("\n")).toEqual([
            "began an interval ago due",
            "began just under an interval ago not due",
            "passed an interval ago due",
            "passed just under an interval ago not due",
            "failed an hour ago due",
            "failed just under an hour ago not due",
        ]);
    });

    it("owes none while a drill runs, whatever the record says", () => {
        const out = withDrill(DAILY, [
            record({ [LAST_SUCCESS]: "$((now - 100000))" }),
            due("idle"),
            // A drill holding the lock, as `run` does for its whole length.
            `flock ${RESTORE_DRILL_LOCK_FILE} sleep 3 &`,
            "sleep 1",
            due("while one runs"),
            "wait",
        ]);
        expect(out).toBe("idle due\nwhile one runs not due\n");
    });

    it("runs a failed drill again after the schedule's interval when that is shorter than an hour", () => {
        const out = withDrill({ ...DAILY, restoreDrillEverySeconds: 600 }, [
            record({ [SUCCESS]: "0", [LAST_RUN]: "$((now - 600))", [LAST_SUCCESS]: "0" }),
            due("failed ten minutes ago"),
        ]);
        expect(out).toBe("failed ten minutes ago due\n");
    });

    it("records a drill that fails, keeping the last success, publishes the record, and leaves no scratch data", () => {
        // No repository here: the drill fails at its first read of it.
        const failed = (values: Record<string, string>) =>
            inImage(DAILY, [
                record(values),
                "if sh /tmp/drill.sh run /tmp/scratch; then echo passed; else echo failed; fi",
                // The run's end within 2 s of the start, and its duration under 2 s, named rather than compared.
                `awk -v now="$now" '/^#/ { next } $1 == "${LAST_RUN}" && $2 - now <= 2 { $2 = "NOW" } $1 == "${RESTORE_DRILL_METRICS.duration[0]}" && $2 < 2 { $2 = "SHORT" } { print }' ${RESTORE_DRILL_STATE_FILE}`,
                `cmp ${RESTORE_DRILL_STATE_FILE} /tmp/obcms-metrics/drill.prom && echo published`,
                "test -e /tmp/scratch || echo no scratch",
            ]);
        const recorded = (lastSuccess: string) => [
            "failed",
            `${SUCCESS} 0`,
            `${LAST_RUN} NOW`,
            `${LAST_SUCCESS} ${lastSuccess}`,
            `${RESTORE_DRILL_METRICS.duration[0]} SHORT`,
            `${RESTORE_DRILL_METRICS.restoredBytes[0]} 0`,
            `${RESTORE_DRILL_METRICS.restoreRate[0]} 0`,
            "published",
            "no scratch",
        ];
        const kept = failed({ [LAST_SUCCESS]: "12345" });
        expect(kept.stdout.trim().split("\n")).toEqual(recorded("12345"));
        expect(kept.stderr).toMatch(/^\S+Z restore drill: FAILED after [01]s: the repository cannot be read$/m);
        // A record without its start counts from 0, so that RestoreDrillTooOld says so.
        expect(
            failed({ [LAST_RUN]: "1" })
                .stdout.trim()
                .split("\n"),
        ).toEqual(recorded("0"));
    });

    it("reaches the leader through every member, as its own role, TLS verified, and checks the application's database", () => {
        const script = renderRestoreDrill(staging, DAILY);
        expect(script).toContain(
            "LEADER='host='\\''obcms-database-staging-pg-1,obcms-database-staging-pg-2'\\'' port='\\''5432'\\'' dbname='\\''postgres'\\'' " +
                "user='\\''restore_drill'\\'' sslmode='\\''verify-full'\\'' sslrootcert='\\''/etc/obcms/tls/ca.crt'\\'' " +
                "target_session_attrs='\\''read-write'\\'' connect_timeout='\\''10'\\'' application_name='\\''restore-drill'\\'''",
        );
        expect(script).toContain("DATABASE='obcms'\n");
        // The standby minimums the backed-up primary recorded, by pg_controldata's labels.
        expect(script).toContain(
            "for pair in max_connections:max_connections max_prepared_transactions:max_prepared_xacts " +
                "max_locks_per_transaction:max_locks_per_xact max_wal_senders:max_wal_senders max_worker_processes:max_worker_processes; do",
        );
    });
});
