// obcms-database: one `pulumi up` per stack turns stack config into a
// PostgreSQL 17 cluster run by Patroni over an etcd cluster, with automatic
// failover, and PgBouncer routed to the leader by HAProxy, on Docker.
// Flow: config (components/config.ts) → the topology model
// (components/topology.ts) → renderers (components/render/<service>) →
// components → outputs.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Backup, repositoryPassphrase } from "./components/backup";
import { ClusterConfig } from "./components/cluster-config";
import { readBackupSettings, readMonitoringSettings, readPasswordOverride, readS3Credentials, readSettings } from "./components/config";
import { Credentials } from "./components/credentials";
import { Etcd } from "./components/etcd";
import { Monitoring } from "./components/monitoring";
import { PgBouncer } from "./components/pgbouncer";
import { Primary } from "./components/primary";
import { Replica } from "./components/replica";
import { ROLES } from "./components/settings";
import { ClusterTls } from "./components/tls";
import { certificateNames, clusterTopology } from "./components/topology";

const settings = readSettings();
const monitoringSettings = readMonitoringSettings(settings);
const backupSettings = readBackupSettings();
const topology = clusterTopology(settings);

const credentials = new Credentials("credentials", {
    authMethod: settings.authMethod,
    appUser: settings.appUser,
    overrides: {
        [ROLES.superuser]: readPasswordOverride(ROLES.superuser),
        app: readPasswordOverride("app"),
        [ROLES.replication]: readPasswordOverride(ROLES.replication),
        [ROLES.monitoring]: readPasswordOverride(ROLES.monitoring),
        [ROLES.pgbouncerAdmin]: readPasswordOverride(ROLES.pgbouncerAdmin),
    },
});

// The project's own image unless config names another; its digest, not its
// tag, goes to the containers, so a rebuilt image rolls them. Paths are
// relative to the project directory, where Pulumi runs the program and the
// provider, so that the stored inputs are the same from every checkout; the
// platform is the Docker engine's, not that of the machine running Pulumi.
const image: pulumi.Input<string> =
    settings.image ??
    new docker.Image("image", {
        imageName: "obcms-database:17",
        build: { context: "image", dockerfile: "image/Dockerfile", platform: settings.imagePlatform },
        skipPush: true,
    }).repoDigest;

const network = new docker.Network("network", { name: topology.network, driver: "bridge" });

const tls = new ClusterTls("tls", { caName: `${settings.clusterName} CA`, servers: certificateNames(settings) });
const nodeTls = (node: string) => ({ caCertPem: tls.caCertPem, certificate: tls.servers[node] });
const passphrase = repositoryPassphrase("backup-passphrase");

const etcd = new Etcd("etcd", {
    settings,
    image,
    network: network.name,
    caCertPem: tls.caCertPem,
    certificates: tls.servers,
});

// Every member runs Patroni, which finds the others and the leader through etcd.
const memberArgs = (resourceName: string) => ({
    settings,
    image,
    network: network.name,
    credentials,
    tls: nodeTls(resourceName),
    backupPassphrase: passphrase,
});
const primary = new Primary(topology.primary.resourceName, memberArgs(topology.primary.resourceName), { dependsOn: [etcd] });
// Each member follows the one before it, so that `pulumi up` replaces them one at a time; the
// delayed replica, if any, joins last.
const joined: Replica[] = [];
for (const member of topology.allMembers.slice(1)) {
    const previous = joined.at(-1) ?? primary;
    joined.push(new Replica(member.resourceName, { ...memberArgs(member.resourceName), member, previous }, { dependsOn: [etcd] }));
}
const replicas = joined.slice(0, topology.replicas.length);
const members = [primary, ...joined];

const clusterConfig = new ClusterConfig("cluster-config", { settings, credentials, members });

const pgbouncer = new PgBouncer(topology.pgbouncer.resourceName, {
    settings,
    image,
    network: network.name,
    app: credentials.app,
    admin: credentials.pgbouncerAdmin,
    stats: credentials.monitoring,
    tls: nodeTls(topology.pgbouncer.resourceName),
    clusterConfig,
});

const backup = new Backup(topology.backup.resourceName, {
    settings,
    backup: backupSettings,
    image,
    network: network.name,
    tls: nodeTls(topology.backup.resourceName),
    passphrase,
    restoreDrillPassword: credentials.restoreDrill.password,
    s3Credentials: backupSettings.repository.type === "s3" ? readS3Credentials() : undefined,
    postgresNodes: members,
});

const monitoring = monitoringSettings.enabled
    ? new Monitoring("monitoring", {
          settings,
          monitoring: monitoringSettings,
          backupSettings,
          image,
          network: network.name,
          credential: credentials.monitoring,
          caCertPem: tls.caCertPem,
          primary,
          replicas,
          pgbouncer,
          backup,
          etcd,
      })
    : undefined;

export const databaseUrl = pgbouncer.databaseUrl;
export const readonlyDatabaseUrl = pgbouncer.readonlyDatabaseUrl;
// For app containers that join the cluster network (examples/app).
export const networkName = network.name;
export const networkDatabaseUrl = pgbouncer.networkDatabaseUrl;
export const networkReadonlyDatabaseUrl = pgbouncer.networkReadonlyDatabaseUrl;
export const pgbouncerAdminUrl = pgbouncer.adminUrl;
// Keyed by member name (`pg-1`, ...): which member leads changes, so no URL is named for a role.
export const memberUrls = pulumi.secret(pulumi.all(Object.fromEntries(topology.allMembers.map((m, i) => [m.node, members[i].url]))));
export const caCertificate = tls.caCertPem;
export const replicaCount = settings.replicaCount;
export const poolSize = settings.pool.defaultPoolSize;
export const backupRepository = backup.repository;
export const lastBackupLabel = backup.lastBackupLabel;
export const backupPassphrase = passphrase;
// Undefined when monitoring (or Grafana) is disabled: Pulumi then leaves the output out of the stack.
export const prometheusUrl = monitoring?.prometheusUrl;
export const grafanaUrl = monitoring?.grafanaUrl;
export const grafanaAdminPassword = monitoring?.grafanaAdminPassword;
