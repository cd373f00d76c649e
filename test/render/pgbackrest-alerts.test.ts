// The backup alerts under promtool, in the project image: each fires after
// `for` on a series past its threshold and stays quiet on one short of it.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
    type AlertRule,
    BACKUP_LATE_SECONDS,
    backupAlertRules,
    DRILL_LATE_SECONDS,
    renderAlertRules,
    restoreDrillOldestSeconds,
} from "../../components/render/monitoring/alert-rules";
import { backupScrapeJob } from "../../components/render/monitoring/prometheus-targets";
import { ARCHIVE_CHECK_SECONDS } from "../../components/render/pgbackrest/pgbackrest";
import type { BackupSettings } from "../../components/settings";
import { defaultBackup, defaultMonitoring } from "../support/monitoring-fixtures";
import { promtool } from "../support/promtool";
import { staging } from "./fixtures";

const INTERVAL = 15;
// Drills every day (staging's schedule): the longest case then spans about two days of samples.
const BACKUP: BackupSettings = { ...defaultBackup, fullEverySeconds: 3_600, diffEverySeconds: 600, restoreDrillEverySeconds: 86_400 };
const TARGET = { job: "backup", instance: "backup", role: "backup" };
const FOR = defaultMonitoring.alerts.forSeconds;

const oldest = BACKUP.diffEverySeconds + BACKUP_LATE_SECONDS;
const walStalled = 3 * ARCHIVE_CHECK_SECONDS;
const drillOldest = restoreDrillOldestSeconds(BACKUP);
/** Samples that outlast the latest evaluation: RestoreDrillTooOld's threshold, `for` and a few intervals. */
const SAMPLES = Math.ceil((drillOldest + FOR) / INTERVAL) + 10;

function series(name: string, labels: Record<string, string>, value: number): { series: string; values: string } {
    const selector = Object.entries(labels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ");
    return { series: `${name}{${selector}}`, values: `${value}x${SAMPLES}` };
}

interface Case {
    readonly alert: string;
    /** When the condition has held for longer than `for`. */
    readonly evalSeconds: number;
    readonly fires: ReturnType<typeof series>;
    readonly quiet: ReturnType<typeof series>;
    /** The fired alert's labels besides severity: a `max()` keeps none. */
    readonly labels: Record<string, string>;
}

const CASES: Case[] = [
    {
        alert: "BackupTooOld",
        evalSeconds: oldest + FOR + 2 * INTERVAL,
        // time() - 0 is past the limit at that time; time() - 1000 is not.
        fires: series("obcms_backup_last_success_timestamp_seconds", { ...TARGET, type: "any" }, 0),
        quiet: series("obcms_backup_last_success_timestamp_seconds", { ...TARGET, type: "any" }, 1_000),
        labels: {},
    },
    {
        alert: "BackupFailed",
        evalSeconds: FOR + 2 * INTERVAL,
        fires: series("obcms_backup_last_run_success", TARGET, 0),
        quiet: series("obcms_backup_last_run_success", TARGET, 1),
        labels: TARGET,
    },
    {
        alert: "WalArchivingStalled",
        evalSeconds: walStalled + FOR + 2 * INTERVAL,
        fires: series("obcms_backup_wal_archived_timestamp_seconds", TARGET, 0),
        quiet: series("obcms_backup_wal_archived_timestamp_seconds", TARGET, 500),
        labels: TARGET,
    },
    {
        alert: "WalArchiveCheckFailed",
        evalSeconds: FOR + 2 * INTERVAL,
        fires: series("obcms_backup_archive_check_success", TARGET, 0),
        quiet: series("obcms_backup_archive_check_success", TARGET, 1),
        labels: TARGET,
    },
    {
        alert: "RestoreDrillFailed",
        evalSeconds: FOR + 2 * INTERVAL,
        fires: series("obcms_restore_drill_last_run_success", TARGET, 0),
        quiet: series("obcms_restore_drill_last_run_success", TARGET, 1),
        labels: TARGET,
    },
    {
        alert: "RestoreDrillTooOld",
        evalSeconds: drillOldest + FOR + 2 * INTERVAL,
        // None passed since the schedule began at 0; one passed a day in, so a day and 90 s old at evaluation, short of two.
        fires: series("obcms_restore_drill_last_success_timestamp_seconds", TARGET, 0),
        quiet: series("obcms_restore_drill_last_success_timestamp_seconds", TARGET, DRILL_LATE_SECONDS),
        labels: {},
    },
];

describe("backup alerts", () => {
    const rules = backupAlertRules(BACKUP, defaultMonitoring);

    it("are the six expected rules, thresholds from the schedules and the archive check", () => {
        expect(rules.map((r) => [r.alert, r.severity, r.expr])).toEqual([
            [
                "BackupTooOld",
                "critical",
                `time() - max(obcms_backup_last_success_timestamp_seconds{job="backup", type="any"}) > ${600 + 3_600}`,
            ],
            ["BackupFailed", "warning", 'obcms_backup_last_run_success{job="backup"} == 0'],
            ["WalArchivingStalled", "critical", `time() - obcms_backup_wal_archived_timestamp_seconds{job="backup"} > ${3 * 300}`],
            ["WalArchiveCheckFailed", "critical", 'obcms_backup_archive_check_success{job="backup"} == 0'],
            ["RestoreDrillFailed", "critical", 'obcms_restore_drill_last_run_success{job="backup"} == 0'],
            [
                "RestoreDrillTooOld",
                "warning",
                `time() - max(obcms_restore_drill_last_success_timestamp_seconds{job="backup"}) > ${86_400 + 86_400}`,
            ],
        ]);
        // One convention for every rule: the alerts' own `for`.
        expect(rules.map((r) => r.forSeconds)).toEqual(rules.map(() => FOR));
        expect(DRILL_LATE_SECONDS).toBe(86_400);
        expect(backupScrapeJob(staging)).toEqual({
            name: "backup",
            targets: [{ address: "obcms-database-staging-backup:9100", labels: { instance: "backup", role: "backup" } }],
        });
    });

    it("fire after `for` past their thresholds and stay quiet short of them (promtool test rules)", async () => {
        const byName: Record<string, AlertRule> = Object.fromEntries(rules.map((r) => [r.alert, r]));
        const tests = CASES.flatMap((c) => {
            const rule = byName[c.alert];
            return [
                {
                    name: `${c.alert} fires`,
                    interval: `${INTERVAL}s`,
                    input_series: [c.fires],
                    alert_rule_test: [
                        {
                            eval_time: `${c.evalSeconds}s`,
                            alertname: c.alert,
                            exp_alerts: [
                                {
                                    exp_labels: { ...c.labels, severity: rule.severity },
                                    exp_annotations: { summary: rule.summary, description: rule.description },
                                },
                            ],
                        },
                    ],
                },
                {
                    name: `${c.alert} stays quiet`,
                    interval: `${INTERVAL}s`,
                    input_series: [c.quiet],
                    alert_rule_test: [{ eval_time: `${c.evalSeconds}s`, alertname: c.alert, exp_alerts: [] }],
                },
            ];
        });
        const result = await promtool(
            {
                "rules.yml": renderAlertRules(rules),
                "tests.yml": stringify({ rule_files: ["rules.yml"], evaluation_interval: `${INTERVAL}s`, tests }),
            },
            "test",
            "rules",
            "/etc/obcms/tests.yml",
        );
        expect(result.output).toContain("SUCCESS");
        expect(result.code).toBe(0);
    }, 60_000);
});
