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
/** The service user every process drops to. */
export const SERVICE_USER = "postgres";

export const FILES = {
    postgresqlConf: `${CONFIG_DIR}/postgresql.conf`,
    pgHba: `${CONFIG_DIR}/pg_hba.conf`,
    bootstrapSql: `${CONFIG_DIR}/bootstrap.sql`,
    pgpass: `${CONFIG_DIR}/pgpass`,
    pgbouncerIni: `${CONFIG_DIR}/pgbouncer.ini`,
    userlist: `${CONFIG_DIR}/userlist.txt`,
    start: `${CONFIG_DIR}/start.sh`,
} as const;
