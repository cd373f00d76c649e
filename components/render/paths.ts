// Where the rendered files and the data live inside every container. The
// image only has to provide the binaries and a `postgres` user.

/** Rendered config files, start scripts and credentials. */
export const CONFIG_DIR = "/etc/obcms";
/** Mount point of the node's named volume. */
export const VOLUME_DIR = "/var/lib/postgresql/data";
/** The data directory: a subdirectory, so the volume root can stay owned by root. */
export const PGDATA = `${VOLUME_DIR}/pgdata`;
/** PostgreSQL's and PgBouncer's Unix sockets. */
export const SOCKET_DIR = "/var/run/postgresql";
/** The router's runtime API (HAProxy's admin socket), in PgBouncer's container beside its socket. */
export const ROUTER_ADMIN_SOCKET = `${SOCKET_DIR}/haproxy.sock`;
/**
 * The service user every container runs as, by number: the `postgres` user
 * of the official PostgreSQL images and of ours. Uploaded files are owned by
 * it, and a new named volume takes its ownership from the image's directory.
 */
export const SERVICE_UID = 999;

/** A certificate and its key, as every service keeps them on its volume: `server.crt` and `server.key` in `dir`. */
function certificateFilesIn(dir: string): { readonly cert: string; readonly key: string } {
    return { cert: `${dir}/server.crt`, key: `${dir}/server.key` };
}

export const FILES = {
    postgresqlConf: `${CONFIG_DIR}/postgresql.conf`,
    pgHba: `${CONFIG_DIR}/pg_hba.conf`,
    bootstrapSql: `${CONFIG_DIR}/bootstrap.sql`,
    pgpass: `${CONFIG_DIR}/pgpass`,
    pgbouncerIni: `${CONFIG_DIR}/pgbouncer.ini`,
    patroniConf: `${CONFIG_DIR}/patroni.yml`,
    haproxyCfg: `${CONFIG_DIR}/haproxy.cfg`,
    start: `${CONFIG_DIR}/start.sh`,
    tlsCa: `${CONFIG_DIR}/tls/ca.crt`,
} as const;

/**
 * A member's certificate and key, at the root of its data volume beside the
 * data directory: Patroni's REST API and etcd client, PostgreSQL and
 * pgBackRest's TLS server and client all read them, and a renewed pair
 * reaches them without a restart.
 */
export const MEMBER_TLS_FILES = certificateFilesIn(VOLUME_DIR);

/** pgBackRest's files: its config on every PostgreSQL node and the backup container, and the restore config for scratch restores. */
export const PGBACKREST_FILES = {
    conf: `${CONFIG_DIR}/pgbackrest.conf`,
    restoreConf: `${CONFIG_DIR}/pgbackrest-restore.conf`,
    /** The backup container's restore drill (restore-drill.ts), run by its schedule and by `scripts/backup.sh drill`. */
    restoreDrill: `${CONFIG_DIR}/restore-drill.sh`,
    /** The drill role's password (0600), for its canary rows on the leader. */
    restoreDrillPgpass: `${CONFIG_DIR}/restore-drill.pgpass`,
} as const;
/**
 * The restore drill's volume in the backup container (the image creates the
 * directory, owned by the service user): its scratch space, where a drill
 * restores and runs PostgreSQL, and the record of past drills, kept across
 * container replacements.
 */
export const RESTORE_DRILL_VOLUME_DIR = VOLUME_DIR;
/** Held by the drill that runs (one at a time): the schedule starts no full backup meanwhile. */
export const RESTORE_DRILL_LOCK_FILE = `${RESTORE_DRILL_VOLUME_DIR}/restore-drill.lock`;
/** The backup repository in the backup container: its named volume. */
export const PGBACKREST_REPO_DIR = "/var/lib/pgbackrest";
/**
 * The backup container's certificate and key, on a volume of their own (the
 * repository may be S3): its TLS server takes a renewed pair on SIGHUP, and
 * its backups, each a new process, read it when they start.
 */
export const BACKUP_TLS_DIR = "/var/lib/obcms/backup";
export const BACKUP_TLS_FILES = certificateFilesIn(BACKUP_TLS_DIR);
/** pgBackRest's spool for asynchronous archiving, on the node's volume next to the data directory. */
export const PGBACKREST_SPOOL_DIR = `${VOLUME_DIR}/pgbackrest-spool`;

/** An etcd member's files: its config, and its named volume (0700 in the image, as etcd wants its data directory). */
export const ETCD_FILES = { conf: `${CONFIG_DIR}/etcd.yml` } as const;
export const ETCD_VOLUME_DIR = "/var/lib/obcms/etcd";
/** A subdirectory of the volume, created by etcd itself. */
export const ETCD_DATA_DIR = `${ETCD_VOLUME_DIR}/data`;
/** The member's certificate and key, beside the data: etcd reads them at every handshake, so a renewal needs no restart. */
export const ETCD_TLS_FILES = certificateFilesIn(ETCD_VOLUME_DIR);

/**
 * PgBouncer's settings it takes by RELOAD (pool sizes, waits): a file on a
 * named volume, written by a command rather than uploaded, so that changing
 * them leaves the container, and its clients, in place.
 */
export const PGBOUNCER_RELOADABLE_DIR = "/var/lib/obcms/pgbouncer";
export const PGBOUNCER_RELOADABLE_FILE = `${PGBOUNCER_RELOADABLE_DIR}/pool.ini`;
/** PgBouncer's auth_file, on the same volume: a rotated password reaches it by RELOAD too. */
export const PGBOUNCER_USERLIST_FILE = `${PGBOUNCER_RELOADABLE_DIR}/userlist.txt`;
/** PgBouncer's certificate for clients and its key, on the same volume: a renewed certificate reaches it by RELOAD too. */
export const PGBOUNCER_TLS_FILES = certificateFilesIn(PGBOUNCER_RELOADABLE_DIR);

/** Prometheus's data directory: its named volume. */
export const PROMETHEUS_DATA_DIR = "/var/lib/obcms/prometheus";
/** Where Grafana looks for provisioning files (the official image's GF_PATHS_PROVISIONING). */
export const GRAFANA_PROVISIONING_DIR = "/etc/grafana/provisioning";
/** The dashboards Grafana's file provider loads. */
export const GRAFANA_DASHBOARDS_DIR = `${CONFIG_DIR}/grafana/dashboards`;

/** Files of the monitoring containers (the exporters also use FILES.pgpass, FILES.tlsCa and FILES.start). */
export const MONITORING_FILES = {
    postgresExporterConfig: `${CONFIG_DIR}/postgres_exporter.yml`,
    prometheusConfig: `${CONFIG_DIR}/prometheus.yml`,
    alertRules: `${CONFIG_DIR}/alert-rules.yml`,
    grafanaDatasources: `${GRAFANA_PROVISIONING_DIR}/datasources/obcms.yaml`,
    grafanaDashboardProviders: `${GRAFANA_PROVISIONING_DIR}/dashboards/obcms.yaml`,
    grafanaAdminPassword: `${CONFIG_DIR}/grafana/admin-password`,
} as const;
