import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderPgpass } from "./render/credentials/credential-files";
import { shellWord } from "./render/escape";
import { PGBACKREST_FILES, PGBACKREST_REPO_DIR, RESTORE_DRILL_VOLUME_DIR } from "./render/paths";
import { backupCertificateCommand, backupVolumeTarget } from "./render/pgbackrest/certificate-command";
import {
    BACKUP_READY_FILE,
    pgbackrestCommand,
    renderBackupStart,
    renderPgbackrestConf,
    repositoryHostPgbackrestConf,
    restorePgbackrestConf,
} from "./render/pgbackrest/pgbackrest";
import { renderRestoreDrill } from "./render/pgbackrest/restore-drill";
import { serviceContainer } from "./service-container";
import { BACKUP_METRICS_PORT, type BackupSettings, type ClusterSettings, POSTGRES_PORT, ROLES } from "./settings";
import { caFile, certificateOnVolume, type NodeTls } from "./tls";
import { clusterTopology } from "./topology";

/**
 * How long a stop waits for the scheduler, which lets a running backup finish
 * first. The backup may itself wait up to archive-timeout (300 s) for its WAL
 * to reach the repository.
 */
export const BACKUP_STOP_GRACE_SECONDS = 600;

export interface BackupArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Validated schedule, retention and repository. */
    readonly backup: BackupSettings;
    /** Image with pgBackRest, PostgreSQL (the restore drill's server, psql and pg_amcheck), jq, flock, tini, prometheus-node-exporter and a `postgres` user (the project's image). */
    readonly image: pulumi.Input<string>;
    /** Docker network on which the PostgreSQL members are reachable by name. */
    readonly network: pulumi.Input<string>;
    /** The backup container's certificate (server for archive-push and archive-get, client towards the members) and the cluster CA. */
    readonly tls: NodeTls;
    /** Secret: the repository's passphrase (`repositoryPassphrase`), shared with the PostgreSQL members. */
    readonly passphrase: pulumi.Output<string>;
    /** Secret: the password of the restore drill's role, which writes the drill's canary rows on the leader. */
    readonly restoreDrillPassword: pulumi.Output<string>;
    /** Secret S3 access keys; required when the repository is S3, ignored otherwise. */
    readonly s3Credentials?: { readonly key: pulumi.Input<string>; readonly keySecret: pulumi.Input<string> };
    /** Every PostgreSQL member: the stanza needs the leader up, the first backup a replica. */
    readonly postgresNodes: readonly pulumi.Resource[];
}

/** Length of the generated repository passphrase (letters and digits). */
const PASSPHRASE_LENGTH = 64;

/**
 * The repository's encryption passphrase (secret), generated once and kept in
 * state: every PostgreSQL member encrypts the WAL it archives with it, and no
 * backup can be restored without it.
 */
export function repositoryPassphrase(name: string): pulumi.Output<string> {
    return pulumi.secret(new random.RandomPassword(name, { length: PASSPHRASE_LENGTH, special: false }).result);
}
/** Seconds between two looks at the schedule. */
const SCHEDULE_TICK_SECONDS = 10;

/**
 * pgBackRest's repository host: an encrypted repository (a named volume kept
 * on destroy, or S3), the WAL archive of whichever member leads, the WAL and
 * backups members restore from, and the scheduled backups, taken from a
 * replica, and the restore drills that prove them (restore-drill.ts), in
 * scratch space on a volume of their own. Created after the members (they
 * clone each other until it exists), and healthy only once a full backup is
 * in the repository.
 */
export class Backup extends pulumi.ComponentResource {
    public readonly containerName: pulumi.Output<string>;
    /** Where the repository is: `volume:<name>`, or `s3://<bucket><path> at <endpoint>`. */
    public readonly repository: pulumi.Output<string>;
    /** Label of the newest backup when the backup container was created. */
    public readonly lastBackupLabel: pulumi.Output<string>;

    constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Backup", name, args, opts);
        const s = args.settings;
        const b = args.backup;
        const { backup } = clusterTopology(s);

        const r = b.repository;
        const s3 = r.type === "s3" ? args.s3Credentials : undefined;
        if (r.type === "s3" && s3 === undefined) {
            throw new pulumi.ResourceError("an S3 repository needs backupS3Key and backupS3KeySecret", this);
        }
        const secrets = pulumi.all([args.passphrase, s3?.key, s3?.keySecret]).apply(([p, key, keySecret]) => ({
            passphrase: p,
            s3: key !== undefined && keySecret !== undefined ? { key, keySecret } : undefined,
        }));
        const conf = pulumi.secret(secrets.apply((x) => renderPgbackrestConf(repositoryHostPgbackrestConf(s, b, x))));
        const restoreConf = pulumi.secret(secrets.apply((x) => renderPgbackrestConf(restorePgbackrestConf(b, x))));
        const drillPgpass = pulumi.secret(
            args.restoreDrillPassword.apply((password) =>
                renderPgpass([{ host: "*", port: POSTGRES_PORT, database: "postgres", user: ROLES.restoreDrill, password }]),
            ),
        );
        // The drill's scratch space and its record, which outlives the container.
        const drillVolume = new docker.Volume(`${name}-drill`, { name: backup.drillVolume }, { parent: this });

        const volume =
            r.type === "volume"
                ? new docker.Volume(
                      `${name}-repo`,
                      { name: backup.volume },
                      // The backups outlive `pulumi destroy`, like member 1's data.
                      { parent: this, retainOnDelete: true },
                  )
                : undefined;

        // The certificate and key, on a volume of their own: a renewed certificate is a SIGHUP to the TLS
        // server, and the container, with any backup it is running, stays.
        const target = backupVolumeTarget(s);
        const tlsVolume = new docker.Volume(`${name}-tls`, { name: target.volume }, { parent: this });
        const certificateCommand = certificateOnVolume(
            `${name}-certificate`,
            { script: backupCertificateCommand(target), certificate: args.tls.certificate, image: args.image },
            { parent: this, dependsOn: [tlsVolume] },
        );

        const container = serviceContainer(
            `${name}-container`,
            {
                containerName: backup.container,
                image: args.image,
                network: args.network,
                startScript: renderBackupStart({ backup: b, tickSeconds: SCHEDULE_TICK_SECONDS, metricsPort: BACKUP_METRICS_PORT }),
                files: [
                    { path: PGBACKREST_FILES.conf, content: conf, secret: true },
                    { path: PGBACKREST_FILES.restoreConf, content: restoreConf, secret: true },
                    { path: PGBACKREST_FILES.restoreDrill, content: renderRestoreDrill(s, b) },
                    { path: PGBACKREST_FILES.restoreDrillPgpass, content: drillPgpass, secret: true },
                    caFile(args.tls.caCertPem),
                ],
                volumes: [
                    ...(volume ? [{ name: volume.name, mountPath: PGBACKREST_REPO_DIR }] : []),
                    { name: tlsVolume.name, mountPath: target.mountPath, readOnly: true },
                    { name: drillVolume.name, mountPath: RESTORE_DRILL_VOLUME_DIR },
                ],
                healthcheck: ["test", "-f", BACKUP_READY_FILE],
                // The first full backup of a large existing database takes a while.
                healthyWithinSeconds: 3600,
                stopSignal: "SIGTERM",
                stopGraceSeconds: BACKUP_STOP_GRACE_SECONDS,
                init: true,
            },
            { parent: this, dependsOn: [...args.postgresNodes, certificateCommand] },
        );

        const label = new command.local.Command(
            `${name}-last-label`,
            {
                create: pulumi.interpolate`docker exec ${container.name} sh -c ${shellWord(`${pgbackrestCommand()} info --output=json | jq -j '.[0].backup[-1].label'`)}`,
                triggers: [container.id],
            },
            { parent: this },
        );

        this.containerName = container.name;
        this.repository = pulumi.output(r.type === "s3" ? `s3://${r.bucket}${r.path} at ${r.endpoint}` : `volume:${backup.volume}`);
        // jq -j: the label alone, without a line break.
        this.lastBackupLabel = label.stdout;
        this.registerOutputs({
            containerName: this.containerName,
            repository: this.repository,
            lastBackupLabel: this.lastBackupLabel,
        });
    }
}
