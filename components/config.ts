// The one module that reads stack config. Every key is declared, with its
// default, in Pulumi.yaml; the stack files hold only what differs. A bad value
// throws here, before the program declares any resource.
import * as pulumi from "@pulumi/pulumi";
import {
    AUTH_METHODS,
    type AuthMethod,
    BACKUP_REPOSITORY_TYPES,
    type BackupRepositoryType,
    type BackupSettings,
    CLIENT_TLS_MODES,
    type ClientTlsMode,
    type ClusterSettings,
    IMAGE_PLATFORMS,
    type ImagePlatform,
    type MonitoringSettings,
    POOL_MODES,
    type PoolMode,
    type ROLES,
    requireDuration,
    S3_URI_STYLES,
    type S3UriStyle,
    SettingsError,
    validateBackupSettings,
    validateMonitoringSettings,
    validateSettings,
} from "./settings";

/** Reads and validates the stack's cluster settings. */
export function readSettings(): ClusterSettings {
    const config = new pulumi.Config();
    const settings: ClusterSettings = {
        clusterName: `${pulumi.getProject()}-${pulumi.getStack()}`,
        image: config.get("image") || undefined,
        imagePlatform: config.require<ImagePlatform>("imagePlatform", { allowedValues: [...IMAGE_PLATFORMS] }),
        replicaCount: config.requireNumber("replicaCount"),
        etcdMembers: config.requireNumber("etcdMembers"),
        synchronousReplicas: config.requireNumber("synchronousReplicas"),
        delayedReplicaMinutes: config.requireNumber("delayedReplicaMinutes"),
        maximumLagOnFailoverMb: config.requireNumber("maximumLagOnFailoverMb"),
        failover: {
            ttlSeconds: config.requireNumber("failoverTtl"),
            loopWaitSeconds: config.requireNumber("failoverLoopWait"),
            retryTimeoutSeconds: config.requireNumber("failoverRetryTimeout"),
        },
        database: config.require("database"),
        appUser: config.require("appUser"),
        timezone: config.require("timezone"),
        authMethod: config.require<AuthMethod>("authMethod", { allowedValues: [...AUTH_METHODS] }),
        maxConnections: config.requireNumber("maxConnections"),
        postgresResources: { memoryMb: config.requireNumber("postgresMemoryMb"), cpus: config.requireNumber("postgresCpus") },
        maxSlotWalKeepSizeMb: config.requireNumber("maxSlotWalKeepSizeMb"),
        auditLog: config.require("auditLog"),
        postgresParameters: config.requireObject("postgresParameters"),
        publishAddress: config.require("publishAddress"),
        publishPostgresPorts: config.requireBoolean("publishPostgresPorts"),
        clientTlsSslmode: config.require<ClientTlsMode>("clientTlsSslmode", { allowedValues: [...CLIENT_TLS_MODES] }),
        pgbouncerPort: config.requireNumber("pgbouncerPort"),
        primaryPort: config.requireNumber("primaryPort"),
        replicaBasePort: config.requireNumber("replicaBasePort"),
        pool: {
            mode: config.require<PoolMode>("poolMode", { allowedValues: [...POOL_MODES] }),
            defaultPoolSize: config.requireNumber("defaultPoolSize"),
            reservePoolSize: config.requireNumber("reservePoolSize"),
            maxClientConn: config.requireNumber("maxClientConn"),
            queryWaitTimeoutSeconds: config.requireNumber("queryWaitTimeout"),
        },
    };
    validateSettings(settings);
    return settings;
}

/** The login roles whose passwords the stack manages, keyed by role name. */
export type PasswordRole = (typeof ROLES)[keyof typeof ROLES] | "app" | "patroniRest";

/** Config key of the optional password override for a role. */
export function passwordConfigKey(role: PasswordRole): string {
    return `${role}Password`;
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
export const MIN_PASSWORD_LENGTH = 16;

/**
 * A password set with `pulumi config set --secret <role>Password`, or undefined
 * to let the stack generate one. The value is checked here, unwrapped only for
 * the check, and handed on as a secret Output.
 */
export function readPasswordOverride(role: PasswordRole): pulumi.Output<string> | undefined {
    const key = passwordConfigKey(role);
    const raw = pulumi.runtime.getConfig(`${pulumi.getProject()}:${key}`);
    if (raw === undefined || raw === "") {
        return undefined;
    }
    if (!PRINTABLE_ASCII.test(raw) || raw.length < MIN_PASSWORD_LENGTH) {
        throw new SettingsError(
            `${key} must be at least ${MIN_PASSWORD_LENGTH} printable ASCII characters without spaces (the value is not shown)`,
        );
    }
    return pulumi.secret(raw);
}

/**
 * Reads the monitoring keys and, when monitoring is enabled, validates them
 * against the cluster's settings (ports, sizes the thresholds are shares of).
 */
export function readMonitoringSettings(cluster: ClusterSettings): MonitoringSettings {
    const config = new pulumi.Config();
    const settings: MonitoringSettings = {
        enabled: config.requireBoolean("monitoringEnabled"),
        grafanaEnabled: config.requireBoolean("grafanaEnabled"),
        grafanaImage: config.require("grafanaImage"),
        prometheusPort: config.requireNumber("prometheusPort"),
        grafanaPort: config.requireNumber("grafanaPort"),
        prometheusRetention: config.require("prometheusRetention"),
        scrapeIntervalSeconds: config.requireNumber("scrapeIntervalSeconds"),
        alerts: {
            forSeconds: config.requireNumber("alertForSeconds"),
            replicationLagMb: config.requireNumber("replicationLagAlertMb"),
            replicationLagSeconds: config.requireNumber("replicationLagAlertSeconds"),
            slotWalPercent: config.requireNumber("slotWalAlertPercent"),
            clientWaitSeconds: config.requireNumber("clientWaitAlertSeconds"),
            poolSaturationPercent: config.requireNumber("poolSaturationAlertPercent"),
            connectionsPercent: config.requireNumber("connectionsAlertPercent"),
            clientConnectionsPercent: config.requireNumber("clientConnectionsAlertPercent"),
        },
    };
    validateMonitoringSettings(settings, cluster);
    return settings;
}

/** Reads and validates the backup schedule, retention and repository. */
export function readBackupSettings(): BackupSettings {
    const config = new pulumi.Config();
    const type = config.require<BackupRepositoryType>("backupRepository", { allowedValues: [...BACKUP_REPOSITORY_TYPES] });
    const settings: BackupSettings = {
        fullEverySeconds: requireDuration("backupFullEvery", config.require("backupFullEvery")),
        diffEverySeconds: requireDuration("backupDiffEvery", config.require("backupDiffEvery")),
        retentionFull: config.requireNumber("backupRetentionFull"),
        restoreDrillEverySeconds: requireDuration("restoreDrillEvery", config.require("restoreDrillEvery")),
        repository:
            type === "volume"
                ? { type }
                : {
                      type,
                      bucket: config.require("backupS3Bucket"),
                      endpoint: config.require("backupS3Endpoint"),
                      region: config.require("backupS3Region"),
                      uriStyle: config.require<S3UriStyle>("backupS3UriStyle", { allowedValues: [...S3_URI_STYLES] }),
                      path: config.require("backupS3Path"),
                  },
    };
    validateBackupSettings(settings);
    return settings;
}

/** The S3 access key pair, set with `pulumi config set --secret`; required when the repository is S3. */
export function readS3Credentials(): { key: pulumi.Output<string>; keySecret: pulumi.Output<string> } {
    const config = new pulumi.Config();
    return { key: config.requireSecret("backupS3Key"), keySecret: config.requireSecret("backupS3KeySecret") };
}
