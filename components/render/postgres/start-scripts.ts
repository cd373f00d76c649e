// PostgreSQL's start scripts: the primary (initdb, restore, bootstrap SQL)
// and a replica (clone through its slot, then a hot standby). Every container
// runs as the service user from its first process on: the rendered files
// arrive owned by it with their final modes, and a new named volume takes its
// ownership from the image.
import { shellWord } from "../escape";
import { FILES, PGDATA, VOLUME_DIR } from "../paths";
import { pitrRestoreLines, tlsServerLines } from "../pgbackrest/pgbackrest";
import { scriptHeader } from "../shell-scripts";

/** Socket directory of the primary's bootstrap server, which nothing else connects to. */
export const BOOTSTRAP_SOCKET_DIR = `${VOLUME_DIR}/bootstrap-socket`;

const SET_PGDATA = `PGDATA=${shellWord(PGDATA)}`;

function execPostgres(extraOptions = ""): string {
    return `exec postgres -D "$PGDATA" -c config_file=${shellWord(FILES.postgresqlConf)}${extraOptions}`;
}

/**
 * Settings a hot standby may not run below the values the primary last
 * recorded (PostgreSQL aborts recovery otherwise), each with its label in
 * pg_controldata's output.
 */
export const STANDBY_MINIMUMS: ReadonlyArray<[guc: string, controlLabel: string]> = [
    ["max_connections", "max_connections"],
    ["max_worker_processes", "max_worker_processes"],
    ["max_wal_senders", "max_wal_senders"],
    ["max_prepared_transactions", "max_prepared_xacts"],
    ["max_locks_per_transaction", "max_locks_per_xact"],
];

/**
 * When the stack lowers one of those settings, a replica can restart before it
 * has replayed the primary's change; it then starts with the primary's last
 * recorded value, and with its own once it has caught up and restarts.
 */
function standbyMinimums(): string[] {
    return [
        'standby_options=""',
        `for pair in ${STANDBY_MINIMUMS.map(([guc, label]) => `${guc}:${label}`).join(" ")}; do`,
        '  guc="${pair%%:*}"; label="${pair#*:}"',
        '  recorded="$(pg_controldata "$PGDATA" | sed -n "s/^${label} setting: *//p")"',
        `  configured="$(postgres -D "$PGDATA" -c config_file=${shellWord(FILES.postgresqlConf)} -C "$guc")"`,
        '  if [ -n "$recorded" ] && [ "$recorded" -gt "$configured" ]; then',
        '    echo "the primary last ran with $guc = $recorded, above the $configured configured here: using $recorded until the change is replayed" >&2',
        '    standby_options="$standby_options -c $guc=$recorded"',
        "  fi",
        "done",
    ];
}

/**
 * The primary: initdb on an empty volume, a point-in-time restore when
 * `scripts/backup.sh restore-pitr` asked for one, then on every start the bootstrap
 * SQL through a server that listens only on a private socket (so health
 * checks and clients see nothing until roles and passwords are in place),
 * then the server itself.
 */
export function renderPrimaryStart(): string {
    // archive_command empty: the bootstrap server keeps its WAL for the real server to archive, and
    // its shutdown does not wait on a repository host that may not be up yet.
    const bootstrapOptions = `-c config_file=${FILES.postgresqlConf} -c listen_addresses= -c unix_socket_directories=${BOOTSTRAP_SOCKET_DIR} -c archive_command=`;
    return [
        ...scriptHeader(),
        SET_PGDATA,
        `mkdir -p ${shellWord(BOOTSTRAP_SOCKET_DIR)}`,
        'if [ ! -s "$PGDATA/PG_VERSION" ]; then',
        '  initdb -D "$PGDATA" --username=postgres --auth-local=peer --auth-host=reject --encoding=UTF8 --locale=C.UTF-8 --data-checksums',
        "fi",
        ...pitrRestoreLines(),
        `pg_ctl -D "$PGDATA" -w -t 120 -o ${shellWord(bootstrapOptions)} start`,
        // After a point-in-time restore the server replays WAL and then promotes; roles can change only after that.
        `until [ "$(psql -X -A -t -h ${shellWord(BOOTSTRAP_SOCKET_DIR)} -U postgres -d postgres -c 'SELECT pg_is_in_recovery()')" = f ]; do sleep 1; done`,
        `psql -X -q -h ${shellWord(BOOTSTRAP_SOCKET_DIR)} -U postgres -d postgres -f ${shellWord(FILES.bootstrapSql)}`,
        'pg_ctl -D "$PGDATA" -w -t 120 -m fast stop',
        ...tlsServerLines(),
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
 * A replica that was away so long that the primary invalidated its slot
 * (max_slot_wal_keep_size) can never catch up from it: it recreates the slot
 * and clones afresh, which the runbook did by hand.
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
    const replication = `host=${spec.primaryHost} port=${spec.primaryPort} user=${spec.replicationUser} dbname=replication replication=true`;
    const onPrimary = (command: string) => `psql -X -A -t -q ${shellWord(replication)} -c ${shellWord(command)}`;
    const slot = spec.slotName;
    return [
        ...scriptHeader(),
        SET_PGDATA,
        `export PGPASSFILE=${shellWord(FILES.pgpass)}`,
        // The clone, like streaming, checks the primary's certificate and host name.
        "export PGSSLMODE=verify-full",
        `export PGSSLROOTCERT=${shellWord(FILES.tlsCa)}`,
        // READ_REPLICATION_SLOT answers "physical||" for a slot whose WAL was removed.
        `if [ -s "$PGDATA/PG_VERSION" ] && [ "$(${onPrimary(`READ_REPLICATION_SLOT ${slot}`)} 2>/dev/null)" = "physical||" ]; then`,
        `  echo ${shellWord(`slot ${slot} was invalidated on the primary while this replica was away: cloning afresh`)} >&2`,
        `  ${onPrimary(`DROP_REPLICATION_SLOT ${slot}`)}`,
        `  ${onPrimary(`CREATE_REPLICATION_SLOT ${slot} PHYSICAL RESERVE_WAL`)} >/dev/null`,
        '  rm -rf "$PGDATA"',
        "fi",
        'if [ ! -s "$PGDATA/PG_VERSION" ]; then',
        // A restored primary has no slots (a backup leaves them out): the replica makes its own.
        `  if [ "$(${onPrimary(`READ_REPLICATION_SLOT ${slot}`)} 2>/dev/null)" = "||" ]; then`,
        `    ${onPrimary(`CREATE_REPLICATION_SLOT ${slot} PHYSICAL RESERVE_WAL`)} >/dev/null`,
        "  fi",
        `  attempt=1`,
        `  until rm -rf "$PGDATA.clone" && ${basebackup}; do`,
        `    if [ "$attempt" -ge ${spec.cloneAttempts} ]; then echo "clone from the primary failed ${spec.cloneAttempts} times" >&2; exit 1; fi`,
        "    attempt=$((attempt + 1))",
        "    sleep 2",
        "  done",
        '  rm -rf "$PGDATA"',
        '  mv "$PGDATA.clone" "$PGDATA"',
        "fi",
        'touch "$PGDATA/standby.signal"',
        ...standbyMinimums(),
        ...tlsServerLines(),
        execPostgres(" $standby_options"),
        "",
    ].join("\n");
}
