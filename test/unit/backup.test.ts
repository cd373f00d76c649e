// The backup settings, the Backup component under mocks, and scripts/backup.sh
// against the program's own paths.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readBackupSettings } from "../../components/config";
import {
    BACKUP_TLS_DIR,
    ETCD_TLS_FILES,
    FILES,
    PGBACKREST_FILES,
    PGBACKREST_REPO_DIR,
    PGDATA,
    RESTORE_DRILL_VOLUME_DIR,
    SERVICE_UID,
    VOLUME_DIR,
} from "../../components/render/paths";
import { dynamicConfigKey, PATRONI_NAMESPACE } from "../../components/render/patroni/dcs-seed";
import { replicaRestoreCommand, restoreCommand, STANZA } from "../../components/render/pgbackrest/pgbackrest";
import { CONTROLDATA_LABELS } from "../../components/render/pgbackrest/restore-drill";
import { HOT_STANDBY_MINIMUMS } from "../../components/render/postgres/parameters";
import { durationSeconds, ETCD_CLIENT_PORT, PATRONI_REST_PORT } from "../../components/settings";
import { clusterTopology } from "../../components/topology";
import { isSecretInput, type RecordedResource, RecordingMocks } from "../../harness/mocks";
import { promiseOf } from "../../harness/outputs";
import { runProgram } from "../../harness/program";
import { loadStackConfig, PROJECT_ROOT, projectName, type StackName } from "../../harness/stack-config";
import { exactly, production } from "../render/fixtures";

async function backupSettingsFor(stack: StackName, overrides: Record<string, unknown>) {
    const project = projectName();
    pulumi.runtime.setAllConfig(loadStackConfig(stack, overrides), []);
    await pulumi.runtime.setMocks(new RecordingMocks(), project, stack, false);
    return readBackupSettings();
}

async function declare(stack: StackName, overrides: Record<string, unknown> = {}, secretKeys: string[] = []) {
    const mocks = new RecordingMocks();
    const { exports } = await runProgram({ stack, overrides, secretKeys, mocks });
    await Promise.all(
        Object.values(exports)
            .filter(pulumi.Output.isInstance)
            .map((o) => promiseOf(o as pulumi.Output<unknown>)),
    );
    return { mocks, exports };
}

function upload(resource: RecordedResource, file: string): { content: string; permissions: string } {
    const found = resource.inputs.uploads.filter((u: { file: string }) => u.file === file);
    expect(found, `${resource.name} ${file}`).toHaveLength(1);
    return found[0];
}

const S3 = {
    backupRepository: "s3",
    backupS3Bucket: "obcms-backups",
    backupS3Endpoint: "s3.eu-west-1.amazonaws.com",
    backupS3Region: "eu-west-1",
    backupS3UriStyle: "path",
    backupS3Key: "AKIAEXAMPLEKEY000001",
    backupS3KeySecret: "example-s3-secret-key-0000000001",
};

describe("readBackupSettings", () => {
    it("reads the defaults, and staging's single full backup", async () => {
        expect(await backupSettingsFor("production", {})).toEqual({
            fullEverySeconds: 604_800,
            diffEverySeconds: 86_400,
            retentionFull: 2,
            restoreDrillEverySeconds: 604_800,
            repository: { type: "volume" },
        });
        expect((await backupSettingsFor("staging", {})).retentionFull).toBe(1);
        expect((await backupSettingsFor("staging", S3)).repository).toEqual({
            type: "s3",
            bucket: "obcms-backups",
            endpoint: "s3.eu-west-1.amazonaws.com",
            region: "eu-west-1",
            uriStyle: "path",
            path: "/obcms-database",
        });
    });

    it("reads durations with one unit", () => {
        expect(
            [
                ["90s", 90],
                ["15m", 900],
                ["12h", 43_200],
                ["1d", 86_400],
                ["2w", 1_209_600],
            ].map(([t]) => durationSeconds(t as string)),
        ).toEqual([90, 900, 43_200, 86_400, 1_209_600]);
        expect(["1h30m", "0d", "1.5d", "d", "1y", " 1d", "01d"].map(durationSeconds)).toEqual(Array(7).fill(undefined));
    });

    it.each([
        [
            { backupFullEvery: "1y" },
            'backupFullEvery must be a duration from 10s to 366d with one unit (s, m, h, d, w), such as 1d or 12h, got "1y"',
        ],
        [
            { backupDiffEvery: "5s" },
            'backupDiffEvery must be a duration from 10s to 366d with one unit (s, m, h, d, w), such as 1d or 12h, got "5s"',
        ],
        [{ backupDiffEvery: "2w" }, "backupDiffEvery (1209600s) must not be longer than backupFullEvery (604800s)"],
        [{ backupRetentionFull: 0 }, "backupRetentionFull must be an integer from 1 to 100, got 0"],
        [{ ...S3, backupS3Bucket: "" }, 'backupS3Bucket must be set, without spaces, when backupRepository is s3, got ""'],
        [
            { ...S3, backupS3Endpoint: "s3 example" },
            'backupS3Endpoint must be set, without spaces, when backupRepository is s3, got "s3 example"',
        ],
        [{ ...S3, backupS3Path: "backups" }, 'backupS3Path must be an absolute path without spaces, got "backups"'],
        [
            { backupRepository: "nfs" },
            `Configuration 'obcms-database:backupRepository' value 'nfs' is not a legal enum value (["volume","s3"])`,
        ],
    ])("refuses %j", async (overrides, message) => {
        await expect(backupSettingsFor("staging", overrides)).rejects.toThrow(exactly(message));
    });
});

describe("the Backup component", () => {
    it("declares the backup container on its repository volume, its certificate's volume read-only, every PostgreSQL node under tini", async () => {
        const { mocks, exports } = await declare("production");
        expect(mocks.ofType("obcms:database:Backup").map((r) => r.name)).toEqual(["backup"]);
        const volume = mocks.named("backup-repo");
        expect(volume.inputs.name).toBe("obcms-database-production-backup-data");
        const container = mocks.named("backup-container");
        expect(container.inputs.volumes).toEqual([
            { volumeName: "obcms-database-production-backup-data", containerPath: PGBACKREST_REPO_DIR },
            { volumeName: "obcms-database-production-backup-tls", containerPath: BACKUP_TLS_DIR, readOnly: true },
            { volumeName: "obcms-database-production-backup-drill", containerPath: RESTORE_DRILL_VOLUME_DIR },
        ]);
        expect(container.inputs.user).toBe(`${SERVICE_UID}:${SERVICE_UID}`);
        expect(container.inputs.ports).toEqual([]);
        expect(container.inputs.entrypoints).toEqual(["/usr/bin/tini", "--", "/bin/sh", "/etc/obcms/preflight.sh"]);
        expect(container.inputs.healthcheck.tests).toEqual(["CMD", "test", "-f", "/tmp/obcms-backup-ready"]);
        expect(await promiseOf(exports.backupRepository as pulumi.Output<string>)).toBe("volume:obcms-database-production-backup-data");
        for (const node of ["primary", "replica-1", "replica-2", "replica-3"]) {
            expect(mocks.named(`${node}-container`).inputs.entrypoints[0], node).toBe("/usr/bin/tini");
        }
    });

    it("keeps the passphrase secret: in the outputs, in every pgbackrest.conf (0600), nowhere visible", async () => {
        const { mocks, exports } = await declare("staging");
        expect(await pulumi.isSecret(exports.backupPassphrase as pulumi.Output<string>)).toBe(true);
        expect(await pulumi.isSecret(exports.lastBackupLabel as pulumi.Output<string>)).toBe(false);
        expect(await pulumi.isSecret(exports.backupRepository as pulumi.Output<string>)).toBe(false);
        const passphrase = await promiseOf(exports.backupPassphrase as pulumi.Output<string>);
        expect(passphrase).toHaveLength(64);
        const containers = mocks.ofType("docker:index/container:Container");
        const withConf = containers.filter((c) => c.inputs.uploads.some((u: { file: string }) => u.file === PGBACKREST_FILES.conf));
        expect(withConf.map((c) => c.name).sort()).toEqual(["backup-container", "primary-container", "replica-1-container"]);
        for (const c of withConf) {
            const conf = upload(c, PGBACKREST_FILES.conf);
            expect(conf.content.split("\n"), c.name).toContain(`repo1-cipher-pass=${passphrase}`);
            expect(conf.permissions, c.name).toBe("0600");
            expect(isSecretInput(c.rawInputs.uploads), c.name).toBe(true);
        }
        expect(upload(mocks.named("backup-container"), PGBACKREST_FILES.restoreConf).permissions).toBe("0600");
        for (const c of containers) {
            const visible = JSON.stringify([c.inputs.entrypoints, c.inputs.command, c.inputs.envs, c.inputs.labels, c.inputs.healthcheck]);
            expect(visible, c.name).not.toContain(passphrase);
        }
        for (const command of mocks.ofType("command:local:Command")) {
            expect(JSON.stringify(command.inputs), command.name).not.toContain(passphrase);
        }
    });

    it("with an S3 repository: no repository volume, the keys only in the secret config", async () => {
        const { mocks, exports } = await declare("staging", S3, ["backupS3Key", "backupS3KeySecret"]);
        expect(mocks.ofType("docker:index/volume:Volume").map((v) => v.name)).not.toContain("backup-repo");
        const container = mocks.named("backup-container");
        expect(container.inputs.volumes).toEqual([
            { volumeName: "obcms-database-staging-backup-tls", containerPath: BACKUP_TLS_DIR, readOnly: true },
            { volumeName: "obcms-database-staging-backup-drill", containerPath: RESTORE_DRILL_VOLUME_DIR },
        ]);
        const conf = upload(container, PGBACKREST_FILES.conf).content.split("\n");
        expect(conf).toEqual(
            expect.arrayContaining([
                "repo1-type=s3",
                "repo1-s3-key=AKIAEXAMPLEKEY000001",
                "repo1-s3-key-secret=example-s3-secret-key-0000000001",
            ]),
        );
        expect(isSecretInput(container.rawInputs.uploads)).toBe(true);
        expect(await promiseOf(exports.backupRepository as pulumi.Output<string>)).toBe(
            "s3://obcms-backups/obcms-database at s3.eu-west-1.amazonaws.com",
        );
    });
});

describe("members and the repository", () => {
    it("every member creates a replica from the repository first, pg_basebackup after, and fetches archived WAL", async () => {
        const { mocks } = await declare("production");
        const t = clusterTopology(production);
        for (const member of t.members) {
            const conf = parse(upload(mocks.named(`${member.resourceName}-container`), FILES.patroniConf).content).postgresql;
            expect(conf.create_replica_methods, member.node).toEqual(["pgbackrest", "basebackup"]);
            expect(conf.pgbackrest, member.node).toEqual({
                command: replicaRestoreCommand(production),
                keep_data: true,
                no_params: true,
                no_leader: true,
            });
            expect(conf.recovery_conf, member.node).toEqual({ restore_command: restoreCommand(production) });
        }
    });
});

describe("scripts/backup.sh", () => {
    it("uses the program's paths and stanza", () => {
        const script = readFileSync(path.join(PROJECT_ROOT, "scripts", "backup.sh"), "utf8");
        const value = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(script)?.[1];
        expect({
            CONF: value("CONF"),
            RESTORE_CONF: value("RESTORE_CONF"),
            RESTORE_DRILL: value("RESTORE_DRILL"),
            STANZA: value("STANZA"),
            VOLUME_DIR: value("VOLUME_DIR"),
            PGDATA: value("PGDATA")?.replace("$VOLUME_DIR", value("VOLUME_DIR") ?? ""),
            REPO_DIR: value("REPO_DIR"),
            SERVICE_USER: value("SERVICE_USER"),
            TLS_DIR: value("TLS_DIR"),
            ETCD_CERT: value("ETCD_CERT"),
            ETCD_KEY: value("ETCD_KEY"),
            PATRONI_REST_PORT: value("PATRONI_REST_PORT"),
            ETCD_CLIENT_PORT: value("ETCD_CLIENT_PORT"),
            PATRONI_NAMESPACE: value("PATRONI_NAMESPACE"),
        }).toEqual({
            CONF: PGBACKREST_FILES.conf,
            RESTORE_CONF: PGBACKREST_FILES.restoreConf,
            RESTORE_DRILL: PGBACKREST_FILES.restoreDrill,
            STANZA,
            VOLUME_DIR,
            PGDATA,
            REPO_DIR: PGBACKREST_REPO_DIR,
            SERVICE_USER: `${SERVICE_UID}:${SERVICE_UID}`,
            TLS_DIR: path.dirname(FILES.tlsCa),
            ETCD_CERT: ETCD_TLS_FILES.cert,
            ETCD_KEY: ETCD_TLS_FILES.key,
            PATRONI_REST_PORT: String(PATRONI_REST_PORT),
            ETCD_CLIENT_PORT: String(ETCD_CLIENT_PORT),
            PATRONI_NAMESPACE,
        });
    });

    it("starts a restored server with the hot-standby minimums pg_controldata records, by the labels the restore drill reads too", () => {
        const script = readFileSync(path.join(PROJECT_ROOT, "scripts", "backup.sh"), "utf8");
        const pairs = /^STANDBY_MINIMUMS="(.*)"$/m.exec(script)?.[1].split(" ") ?? [];
        expect(Object.fromEntries(pairs.map((pair) => pair.split(":")))).toEqual(CONTROLDATA_LABELS);
        expect(Object.keys(CONTROLDATA_LABELS).sort()).toEqual([...HOT_STANDBY_MINIMUMS].sort());
    });

    it("finds the members and the etcd cluster by the topology's names, the leader through Patroni, and the cluster in etcd by its scope", () => {
        const script = readFileSync(path.join(PROJECT_ROOT, "scripts", "backup.sh"), "utf8");
        const t = clusterTopology(production);
        // The members, as both operations scripts find them.
        const shared = readFileSync(path.join(PROJECT_ROOT, "scripts", "lib", "stack.sh"), "utf8");
        expect(script).toContain('. "$(dirname "$0")/lib/stack.sh"');
        expect(shared).toContain(`--filter "name=^/$cluster-pg-[0-9]+$"`);
        expect(t.members.map((m) => m.container)).toEqual([1, 2, 3, 4].map((k) => `${production.clusterName}-pg-${k}`));
        expect(t.members.map((m) => m.volume)).toEqual(t.members.map((m) => `${m.container}-data`));
        expect(script).toContain('"https://localhost:$PATRONI_REST_PORT/primary"');
        expect(script).toContain(`--filter "name=^/$cluster-etcd-[0-9]+$"`);
        expect(t.etcd.map((e) => e.container)).toEqual([1, 2, 3].map((k) => `${production.clusterName}-etcd-${k}`));
        expect(script).toContain('etcdctl_ del --prefix "$PATRONI_NAMESPACE/$cluster/"');
        expect(t.scope).toBe(production.clusterName);
        // The dynamic configuration is kept across the restore, under the key Patroni reads it from.
        expect(script).toContain('etcdctl_ put "$PATRONI_NAMESPACE/$cluster/config"');
        expect(dynamicConfigKey(t.scope)).toBe(`${PATRONI_NAMESPACE}/${production.clusterName}/config`);
        // No name in the script claims a role.
        expect(script).not.toMatch(/-primary\b|-replica-\d/);
    });
});
