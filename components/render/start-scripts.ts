// Entry points of the containers. Each starts as root only to give the
// rendered files and the volume to the service user, then drops to it with
// setpriv, which (unlike su) keeps the container's open-files limit.
import { shellWord } from "./escape";
import { FILES, PGDATA, SERVICE_USER, SOCKET_DIR, VOLUME_DIR } from "./paths";

/** Socket directory of the primary's bootstrap server, which nothing else connects to. */
export const BOOTSTRAP_SOCKET_DIR = "/run/obcms-bootstrap";

const user = shellWord(SERVICE_USER);
/** Runs the rest of the command line as the service user, keeping rlimits and environment. */
const DROP_PRIVILEGES = `setpriv --reuid=${user} --regid=${user} --init-groups --`;

function header(secretFiles: readonly string[]): string[] {
    return [
        "#!/bin/sh",
        "# Rendered by obcms-database.",
        "set -eu",
        "export PATH=\"$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1):$PATH\"",
        `as_service_user() { ${DROP_PRIVILEGES} "$@"; }`,
        `mkdir -p ${shellWord(SOCKET_DIR)}`,
        `chown ${user}: ${shellWord(SOCKET_DIR)}`,
        ...secretFiles.flatMap((file) => [`chown ${user}: ${shellWord(file)}`, `chmod 0600 ${shellWord(file)}`]),
    ];
}

function dataDirectory(): string[] {
    return [
        `chown ${user}: ${shellWord(VOLUME_DIR)}`,
        `PGDATA=${shellWord(PGDATA)}`,
    ];
}

function execPostgres(): string {
    return `exec ${DROP_PRIVILEGES} postgres -D "$PGDATA" -c config_file=${shellWord(FILES.postgresqlConf)}`;
}

/**
 * The primary: initdb on an empty volume, then on every start the bootstrap
 * SQL through a server that listens only on a private socket (so health
 * checks and clients see nothing until roles and passwords are in place),
 * then the server itself.
 */
export function renderPrimaryStart(): string {
    const bootstrapOptions = `-c config_file=${FILES.postgresqlConf} -c listen_addresses= -c unix_socket_directories=${BOOTSTRAP_SOCKET_DIR}`;
    return [
        ...header([FILES.bootstrapSql]),
        ...dataDirectory(),
        `mkdir -p ${shellWord(BOOTSTRAP_SOCKET_DIR)}`,
        `chown ${user}: ${shellWord(BOOTSTRAP_SOCKET_DIR)}`,
        'if [ ! -s "$PGDATA/PG_VERSION" ]; then',
        '  as_service_user initdb -D "$PGDATA" --username=postgres --auth-local=peer --auth-host=reject --encoding=UTF8 --locale=C.UTF-8 --data-checksums',
        "fi",
        `as_service_user pg_ctl -D "$PGDATA" -w -t 120 -o ${shellWord(bootstrapOptions)} start`,
        `as_service_user psql -X -q -h ${shellWord(BOOTSTRAP_SOCKET_DIR)} -U postgres -d postgres -f ${shellWord(FILES.bootstrapSql)}`,
        'as_service_user pg_ctl -D "$PGDATA" -w -t 120 -m fast stop',
        execPostgres(),
        "",
    ].join("\n");
}

export interface ReplicaStartSpec {
    readonly primaryHost: string;
    readonly primaryPort: number;
    readonly replicationUser: string;
    readonly slotName: string;
    /** How long a fresh replica keeps trying to reach the primary before the container fails. */
    readonly cloneAttempts: number;
}

/**
 * A replica: on an empty volume, clone the primary through the replica's slot
 * (into a scratch directory, moved into place only when complete, so an
 * interrupted clone is retried from scratch), then run as a hot standby.
 */
export function renderReplicaStart(spec: ReplicaStartSpec): string {
    const basebackup = [
        "pg_basebackup",
        `--host=${shellWord(spec.primaryHost)}`,
        `--port=${spec.primaryPort}`,
        `--username=${shellWord(spec.replicationUser)}`,
        `--slot=${shellWord(spec.slotName)}`,
        '--pgdata="$PGDATA.clone"',
        "--wal-method=stream",
        "--checkpoint=fast",
        "--no-password",
    ].join(" ");
    return [
        ...header([FILES.pgpass]),
        ...dataDirectory(),
        `export PGPASSFILE=${shellWord(FILES.pgpass)}`,
        'if [ ! -s "$PGDATA/PG_VERSION" ]; then',
        `  attempt=1`,
        `  until rm -rf "$PGDATA.clone" && as_service_user ${basebackup}; do`,
        `    if [ "$attempt" -ge ${spec.cloneAttempts} ]; then echo "clone from the primary failed ${spec.cloneAttempts} times" >&2; exit 1; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 2",
        "  done",
        '  rm -rf "$PGDATA"',
        '  mv "$PGDATA.clone" "$PGDATA"',
        "fi",
        'as_service_user touch "$PGDATA/standby.signal"',
        execPostgres(),
        "",
    ].join("\n");
}

/** PgBouncer, with the userlist readable by its service user only. */
export function renderPgbouncerStart(): string {
    return [
        ...header([FILES.userlist]),
        `exec ${DROP_PRIVILEGES} pgbouncer ${shellWord(FILES.pgbouncerIni)}`,
        "",
    ].join("\n");
}
