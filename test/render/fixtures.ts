// Settings and hostile values shared by the renderer tests.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterSettings } from "../../components/settings";

/**
 * What `readSettings()` returns for the staging stack (Pulumi.yaml's
 * defaults): TLS offered to clients (`prefer`), PostgreSQL ports published.
 */
export const staging: ClusterSettings = {
    clusterName: "obcms-database-staging",
    image: undefined,
    imagePlatform: "linux/amd64",
    replicaCount: 1,
    etcdMembers: 1,
    synchronousReplicas: 0,
    delayedReplicaMinutes: 0,
    maximumLagOnFailoverMb: 1,
    failover: { ttlSeconds: 20, loopWaitSeconds: 5, retryTimeoutSeconds: 5 },
    database: "obcms",
    appUser: "obcms_app",
    timezone: "Asia/Manila",
    authMethod: "scram-sha-256",
    maxConnections: 100,
    postgresResources: { memoryMb: 2048, cpus: 2 },
    maxSlotWalKeepSizeMb: 2048,
    auditLog: "ddl, role",
    postgresParameters: {},
    publishAddress: "127.0.0.1",
    publishPostgresPorts: true,
    clientTlsSslmode: "prefer",
    pgbouncerPort: 6432,
    primaryPort: 5432,
    replicaBasePort: 5433,
    pool: { mode: "transaction", defaultPoolSize: 25, reservePoolSize: 5, maxClientConn: 1000, queryWaitTimeoutSeconds: 120 },
};

/** The production stack: Pulumi.production.yaml on top of the defaults (TLS required, PostgreSQL ports private). */
export const production: ClusterSettings = {
    ...staging,
    clusterName: "obcms-database-production",
    replicaCount: 3,
    etcdMembers: 3,
    synchronousReplicas: 1,
    publishPostgresPorts: false,
    clientTlsSslmode: "require",
    pgbouncerPort: 6442,
    primaryPort: 5442,
    replicaBasePort: 5443,
    pool: { ...staging.pool, defaultPoolSize: 50, maxClientConn: 2000 },
};

/** 10,000 characters mixing quotes, a backslash, `#`, `;`, a space and a CJK character, no line break. */
export const LONG = "a'\"\\#; 東".repeat(1250);
/** 10,000 characters with a quote, a backslash and a newline in every group of four. */
export const LONG_MULTILINE = "a'\\\n".repeat(2500);

/** Matches an error message equal to `message`, not merely containing it. */
export function exactly(message: string): RegExp {
    return new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

/** Result of `sh -n` (parse only, run nothing) on `script`, written to a temporary file. */
export function shellSyntaxCheck(script: string): { status: number | null; stderr: string } {
    const dir = mkdtempSync(join(tmpdir(), "obcms-render-"));
    try {
        const file = join(dir, "script.sh");
        writeFileSync(file, script);
        const result = spawnSync("/bin/sh", ["-n", file], { encoding: "utf8" });
        return { status: result.status, stderr: result.stderr };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * `docker run` as the production stack's PgBouncer commands call it to write
 * a file onto PgBouncer's volume with the image sha256:0123, running `script`.
 */
export function productionPgbouncerVolumeWrite(script: string): string[] {
    return [
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "--user",
        "999:999",
        "--volume",
        "obcms-database-production-pgbouncer-settings:/var/lib/obcms/pgbouncer",
        "--entrypoint",
        "sh",
        "sha256:0123",
        "-c",
        script,
    ];
}
