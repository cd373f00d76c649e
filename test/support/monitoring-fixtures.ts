// Monitoring settings shared by the monitoring tests, and the backup schedule
// the backup alerts and dashboard follow.
import type { BackupSettings, MonitoringSettings } from "../../components/settings";

/** What `readMonitoringSettings()` returns with Pulumi.yaml's defaults (both stack files keep them). */
export const defaultMonitoring: MonitoringSettings = {
    enabled: true,
    grafanaEnabled: true,
    grafanaImage: "grafana/grafana-oss:12.0.0",
    prometheusPort: 9090,
    grafanaPort: 3000,
    prometheusRetention: "15d",
    scrapeIntervalSeconds: 15,
    alerts: {
        forSeconds: 60,
        replicationLagMb: 64,
        replicationLagSeconds: 30,
        slotWalPercent: 80,
        clientWaitSeconds: 5,
        poolSaturationPercent: 90,
        connectionsPercent: 80,
        clientConnectionsPercent: 80,
    },
};

/** What `readBackupSettings()` returns with Pulumi.yaml's defaults (production's). */
export const defaultBackup: BackupSettings = {
    fullEverySeconds: 604_800,
    diffEverySeconds: 86_400,
    retentionFull: 2,
    restoreDrillEverySeconds: 604_800,
    repository: { type: "volume" },
};

/** `defaultMonitoring` with some alert thresholds replaced. */
export function withAlerts(
    alerts: Partial<MonitoringSettings["alerts"]>,
    base: MonitoringSettings = defaultMonitoring,
): MonitoringSettings {
    return { ...base, alerts: { ...base.alerts, ...alerts } };
}
