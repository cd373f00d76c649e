// The restore drill: proof, on a schedule, that this cluster's backups
// restore. It runs in the backup container, with its files and nothing else
// (no Docker socket, no new privilege): pgbackrest verify, canary rows on the
// leader around a target time, the newest backup and its WAL restored to that
// time into scratch space, PostgreSQL started there on a private socket, then
// pg_amcheck, the canaries and the application's row counts.
import { type BackupSettings, type ClusterSettings, POSTGRES_PORT, ROLES } from "../../settings";
import { clusterTopology } from "../../topology";
import { libpqConnstringValue, shellWord } from "../escape";
import { FILES, PGBACKREST_FILES, RESTORE_DRILL_LOCK_FILE, RESTORE_DRILL_VOLUME_DIR } from "../paths";
import { HOT_STANDBY_MINIMUMS } from "../postgres/parameters";
import { ARCHIVE_CHECK_SECONDS, BACKUP_METRICS_DIR, BACKUP_RUN_LOCK_FILE, STANZA } from "./pgbackrest";

/** The schema of the canary rows, in the `postgres` database, owned by the drill's role. */
export const RESTORE_DRILL_SCHEMA = ROLES.restoreDrill;
/** Where a drill restores and runs PostgreSQL; emptied before and after each drill. */
export const RESTORE_DRILL_SCRATCH_DIR = `${RESTORE_DRILL_VOLUME_DIR}/restore-drill`;
/** The drills' record (the metrics file), on the volume so that it outlives the container. */
export const RESTORE_DRILL_STATE_FILE = `${RESTORE_DRILL_VOLUME_DIR}/restore-drill.prom`;
/**
 * Room for WAL on top of the backup's data: the restored server runs with
 * PostgreSQL's defaults, and max_wal_size (1 GB) bounds what recovery keeps.
 */
export const DRILL_WAL_ROOM_BYTES = 1024 ** 3;
/** How soon a failed drill runs again (or the schedule's interval, if shorter): a transient failure clears within the hour. */
export const DRILL_RETRY_SECONDS = 3_600;
/** How long the restored server may take to open for connections, and again to replay to its target. */
export const DRILL_RECOVERY_SECONDS = 3_600;
/** Canary rows older than this are deleted by the next drill, so the table stays small. */
export const CANARY_KEEP_DAYS = 30;

/**
 * pg_controldata's label for each setting a server in recovery may not run
 * below. scripts/backup.sh's restore-pitr reads the same labels
 * (STANDBY_MINIMUMS; test/unit/backup.test.ts keeps them equal).
 */
export const CONTROLDATA_LABELS: Readonly<Record<(typeof HOT_STANDBY_MINIMUMS)[number], string>> = {
    max_connections: "max_connections",
    max_prepared_transactions: "max_prepared_xacts",
    max_locks_per_transaction: "max_locks_per_xact",
    max_wal_senders: "max_wal_senders",
    max_worker_processes: "max_worker_processes",
};

/** The gauges of a drill, in the order they are written; HELP texts say what each means. */
export const RESTORE_DRILL_METRICS = {
    lastRunSuccess: ["obcms_restore_drill_last_run_success", "1 if the last restore drill passed, 0 if it failed."],
    lastRun: ["obcms_restore_drill_last_run_timestamp_seconds", "End of the last restore drill."],
    lastSuccess: [
        "obcms_restore_drill_last_success_timestamp_seconds",
        "End of the last restore drill that passed; before the first, when the drill schedule began.",
    ],
    duration: ["obcms_restore_drill_duration_seconds", "Duration of the last restore drill: verify, restore, recovery and checks."],
    restoredBytes: ["obcms_restore_drill_restored_bytes", "Size of the data directory the last restore drill restored."],
    restoreRate: ["obcms_restore_drill_restore_rate_bytes_per_second", "Bytes per second of the last drill's pgbackrest restore."],
} as const;

type MetricKey = keyof typeof RESTORE_DRILL_METRICS;

/** Shell lines that print one gauge in the text format, its value from the shell variable `variable`. */
function metricLines(key: MetricKey, variable: string): string[] {
    const [name, help] = RESTORE_DRILL_METRICS[key];
    return [`echo ${shellWord(`# HELP ${name} ${help}`)}`, `echo ${shellWord(`# TYPE ${name} gauge`)}`, `echo "${name} $${variable}"`];
}

/** libpq's connection string to whichever member leads, as the drill's role, TLS verified against the stack CA. */
function leaderConninfo(s: ClusterSettings): string {
    const hosts = clusterTopology(s).members.map((m) => m.container);
    return Object.entries({
        host: hosts.join(","),
        port: String(POSTGRES_PORT),
        dbname: "postgres",
        user: ROLES.restoreDrill,
        sslmode: "verify-full",
        sslrootcert: FILES.tlsCa,
        target_session_attrs: "read-write",
        connect_timeout: "10",
        application_name: "restore-drill",
    })
        .map(([key, value]) => `${key}=${libpqConnstringValue(value)}`)
        .join(" ");
}

/**
 * The drill script, `restore-drill.sh run [SCRATCH_DIR]`: one report on
 * standard output, one record in the metrics (RESTORE_DRILL_METRICS), exit
 * status 0 only if every check passed. `due` answers whether the schedule
 * owes a drill; `publish` hands the record to the textfile collector (and
 * starts it, at the first start, with the time the schedule began).
 */
export function renderRestoreDrill(s: ClusterSettings, b: BackupSettings): string {
    const retrySeconds = Math.min(b.restoreDrillEverySeconds, DRILL_RETRY_SECONDS);
    const name = (key: MetricKey) => RESTORE_DRILL_METRICS[key][0];
    const metricsFile = `${BACKUP_METRICS_DIR}/drill.prom`;
    const minimums = HOT_STANDBY_MINIMUMS.map((guc) => `${guc}:${CONTROLDATA_LABELS[guc]}`).join(" ");
    return [
        "#!/bin/sh",
        "# Rendered by obcms-database: the restore drill (usage: run [SCRATCH_DIR] | due | publish).",
        "set -eu",
        "export LC_ALL=C",
        `STATE=${shellWord(RESTORE_DRILL_STATE_FILE)}`,
        `METRICS=${shellWord(metricsFile)}`,
        `LOCK=${shellWord(RESTORE_DRILL_LOCK_FILE)}`,
        `DATABASE=${shellWord(s.database)}`,
        `LEADER=${shellWord(leaderConninfo(s))}`,
        'say() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) restore drill: $*"; }',
        // The reason goes to standard error with the drill's last line (finish).
        'fail() { reason="$*"; exit 1; }',
        `pgbr() { pgbackrest --config=${shellWord(PGBACKREST_FILES.conf)} --stanza=${STANZA} "$@"; }`,
        // A value of the record, empty when it has none.
        `recorded() { sed -n "s/^$1 //p" "$STATE" 2>/dev/null || true; }`,
        "",
        "publish() {",
        '  if [ ! -f "$STATE" ]; then',
        "    last_success=$(date +%s)",
        `    { ${metricLines("lastSuccess", "last_success").join("; ")}; } > "$STATE.tmp"`,
        '    mv "$STATE.tmp" "$STATE"',
        "  fi",
        '  mkdir -p "$(dirname "$METRICS")"',
        '  cp "$STATE" "$METRICS.tmp"',
        '  mv "$METRICS.tmp" "$METRICS"',
        "}",
        "",
        // After a passed drill the next is due an interval later; after a failed one, within the retry delay.
        // Not while a drill runs (the schedule's or an operator's): its record is about to change.
        "due() {",
        '  flock -n "$LOCK" true || return 1',
        '  [ -f "$STATE" ] || publish',
        "  now=$(date +%s)",
        `  last_run="$(recorded ${name("lastRun")})"`,
        '  if [ -z "$last_run" ]; then',
        `    [ $((now - $(recorded ${name("lastSuccess")}))) -ge ${b.restoreDrillEverySeconds} ]`,
        `  elif [ "$(recorded ${name("lastRunSuccess")})" = 1 ]; then`,
        `    [ $((now - last_run)) -ge ${b.restoreDrillEverySeconds} ]`,
        "  else",
        `    [ $((now - last_run)) -ge ${retrySeconds} ]`,
        "  fi",
        "}",
        "",
        'stop_server() { if [ -f "$data/postmaster.pid" ]; then pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true; fi; }',
        "",
        // Runs on every exit of `run`: the scratch data goes, the record is written.
        "finish() {",
        "  stop_server",
        '  rm -rf "$scratch"',
        "  ended=$(date +%s)",
        "  duration=$((ended - started))",
        // A record without its start (lost, or edited by hand) counts from 0: RestoreDrillTooOld then says so.
        `  if [ "$passed" = 1 ]; then last_success=$ended; else last_success="$(recorded ${name("lastSuccess")})"; fi`,
        '  last_success="${last_success:-0}"',
        "  {",
        ...[
            ...metricLines("lastRunSuccess", "passed"),
            ...metricLines("lastRun", "ended"),
            ...metricLines("lastSuccess", "last_success"),
            ...metricLines("duration", "duration"),
            ...metricLines("restoredBytes", "restored_bytes"),
            ...metricLines("restoreRate", "rate"),
        ].map((line) => `    ${line}`),
        '  } > "$STATE.tmp"',
        '  mv "$STATE.tmp" "$STATE"',
        "  publish",
        '  if [ "$passed" = 1 ]; then say "passed in ${duration}s"; else say "FAILED after ${duration}s: $reason" >&2; fi',
        "}",
        "",
        "run() {",
        `  scratch="\${1:-${RESTORE_DRILL_SCRATCH_DIR}}"`,
        '  data="$scratch/pgdata"',
        '  exec 9>"$LOCK"',
        // One drill at a time: a second one (the schedule's, an operator's) waits for the first.
        "  flock 9",
        // A scheduled backup that runs may end by expiring the backup this drill would restore: it finishes first.
        `  flock ${shellWord(BACKUP_RUN_LOCK_FILE)} true`,
        "  started=$(date +%s)",
        '  passed=0 restored_bytes=0 rate=0 reason="a command failed (above)"',
        // Left over by a drill that was cut off: its server first, then its files.
        "  stop_server",
        '  rm -rf "$scratch"',
        "  trap finish EXIT",
        '  mkdir -p "$scratch" && chmod 0700 "$scratch"',
        '  id="$(date -u +%Y%m%dT%H%M%SZ)-$$"',
        "",
        // Before anything is read or written: the space the restore needs.
        `  info="$(pgbr info --output=json)" || fail "the repository cannot be read"`,
        `  label="$(echo "$info" | jq -r '.[0].backup[-1].label // empty')"`,
        '  [ -n "$label" ] || fail "the repository holds no backup"',
        `  size="$(echo "$info" | jq '.[0].backup[-1].info.size')"`,
        `  needed=$((size + ${DRILL_WAL_ROOM_BYTES}))`,
        `  free="$(df -P -B1 "$scratch" | awk 'NR == 2 { print $4 }')"`,
        '  if [ "$free" -lt "$needed" ]; then',
        `    fail "scratch space $scratch has $free bytes free; the restore needs $needed (backup $label holds $size bytes, and recovery up to ${DRILL_WAL_ROOM_BYTES} of WAL)"`,
        "  fi",
        '  say "scratch space $scratch: $free bytes free, $needed needed"',
        "",
        '  say "pgbackrest verify: every backup file and WAL segment in the repository against its checksum"',
        // verify exits 0 whatever it finds: its summary says (on standard output; the log would repeat it). It counts a
        // backup or WAL file that fails its checksum, not a gap in the archive (pgBackRest 2.55): the restore finds that.
        '  verified="$(pgbr verify --output=text --verbose --log-level-console=warn)" || fail "pgbackrest verify could not run (above)"',
        '  echo "$verified"',
        `  if ! echo "$verified" | grep -q '^ *status: ok$' || echo "$verified" | grep -q '^ *status: error'; then`,
        '    fail "pgbackrest verify found the repository damaged (above)"',
        "  fi",
        "",
        // The target lies between two committed canary rows; the WAL switch and its archiving bring both into the repository.
        `  written="$(PGPASSFILE=${shellWord(PGBACKREST_FILES.restoreDrillPgpass)} psql -X -A -t -q -v ON_ERROR_STOP=1 -v id="$id" -d "$LEADER" <<'SQL'`,
        "SET client_min_messages = warning;",
        `CREATE TABLE IF NOT EXISTS ${RESTORE_DRILL_SCHEMA}.canary (drill text NOT NULL, phase text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (drill, phase));`,
        `DELETE FROM ${RESTORE_DRILL_SCHEMA}.canary WHERE written_at < now() - interval '${CANARY_KEEP_DAYS} days';`,
        `INSERT INTO ${RESTORE_DRILL_SCHEMA}.canary (drill, phase) VALUES (:'id', 'before');`,
        "SELECT clock_timestamp();",
        `INSERT INTO ${RESTORE_DRILL_SCHEMA}.canary (drill, phase) VALUES (:'id', 'after');`,
        "SELECT pg_walfile_name(pg_switch_wal());",
        "SQL",
        ')" || fail "the canary rows could not be written on the leader"',
        '  target="$(echo "$written" | sed -n 1p)"',
        '  segment="$(echo "$written" | sed -n 2p)"',
        '  say "canary $id: a row before $target, one after; waiting for WAL segment $segment in the repository"',
        "  archived=0",
        `  for _ in $(seq ${ARCHIVE_CHECK_SECONDS}); do`,
        `    newest="$(pgbr info --output=json | jq -r '[.[0].archive[].max // empty] | max // empty')"`,
        '    if [ -n "$newest" ] && printf \'%s\\n%s\\n\' "$segment" "$newest" | sort -C; then archived=1; break; fi',
        "    sleep 1",
        "  done",
        `  [ "$archived" = 1 ] || fail "WAL segment $segment did not reach the repository within ${ARCHIVE_CHECK_SECONDS}s"`,
        "",
        '  say "restoring to $target: the newest backup before it, and its WAL"',
        "  restore_started=$(date +%s%3N)",
        // Niced: the drill yields the CPU to the cluster's own work.
        `  nice -n 10 pgbackrest --config=${shellWord(PGBACKREST_FILES.restoreConf)} --stanza=${STANZA} --pg1-path="$data" restore \\`,
        '    --type=time --target="$target" --target-action=promote --archive-mode=off || fail "pgbackrest restore failed (above)"',
        "  restore_ms=$(($(date +%s%3N) - restore_started))",
        '  restored_bytes="$(du -sb "$data" | cut -f1)"',
        "  rate=$((restored_bytes * 1000 / (restore_ms > 0 ? restore_ms : 1)))",
        '  say "restored $restored_bytes bytes in ${restore_ms} ms ($rate bytes/s)"',
        "",
        // Recovery refuses to start below the settings the backed-up primary recorded; the config
        // file is none (Patroni's includes files only a member has), the socket private.
        `  options="-c config_file=/dev/null -c hba_file=$data/pg_hba.conf -c ident_file=$data/pg_ident.conf -c listen_addresses= -c unix_socket_directories=$scratch -c port=${POSTGRES_PORT}"`,
        '  controldata="$(pg_controldata "$data")"',
        `  for pair in ${minimums}; do`,
        '    recorded_value="$(echo "$controldata" | sed -n "s/^${pair#*:} setting: *//p")"',
        '    if [ -n "$recorded_value" ]; then options="$options -c ${pair%%:*}=$recorded_value"; fi',
        "  done",
        // pg_ctl waits until the server takes connections: consistency, after the backup's own WAL.
        `  if ! nice -n 10 pg_ctl -D "$data" -l "$scratch/postgresql.log" -o "$options" -w -t ${DRILL_RECOVERY_SECONDS} start >/dev/null; then`,
        '    tail -n 20 "$scratch/postgresql.log" >&2 || true',
        '    fail "PostgreSQL did not start on the restored data (its log above)"',
        "  fi",
        "  recovered=0",
        `  for _ in $(seq ${DRILL_RECOVERY_SECONDS}); do`,
        '    in_recovery="$(psql -X -A -t -h "$scratch" -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null || echo gone)"',
        '    if [ "$in_recovery" = f ]; then recovered=1; break; fi',
        '    if [ "$in_recovery" = gone ] && ! pg_ctl -D "$data" status >/dev/null 2>&1; then break; fi',
        "    sleep 1",
        "  done",
        '  if [ "$recovered" = 0 ]; then',
        '    tail -n 20 "$scratch/postgresql.log" >&2 || true',
        '    fail "recovery did not reach $target (the restored server\'s log above)"',
        "  fi",
        '  say "recovery reached $target and promoted"',
        "",
        `  canary="$(psql -X -A -t -h "$scratch" -d postgres -v id="$id" <<'SQL'`,
        `SELECT coalesce(string_agg(phase, ',' ORDER BY phase), 'none') FROM ${RESTORE_DRILL_SCHEMA}.canary WHERE drill = :'id';`,
        "SQL",
        ')"',
        '  [ "$canary" = before ] || fail "canary $id: expected the row before the target alone, found: $canary"',
        '  say "canary $id: the row before the target is there, the one after is not"',
        "",
        '  say "pg_amcheck $DATABASE: every table and B-tree index, and every heap tuple in its indexes"',
        '  nice -n 10 pg_amcheck -h "$scratch" --install-missing --heapallindexed "$DATABASE" || fail "pg_amcheck found corruption in $DATABASE (above)"',
        "",
        // Exact counts: the statistics do not survive a restore.
        `  counts="$(psql -X -A -t -F ' ' -v ON_ERROR_STOP=1 -h "$scratch" -d "$DATABASE" <<'SQL'`,
        // The count first: the rest of the line is the table's name, whatever it holds.
        "SELECT format('SELECT count(*), %L FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
            "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1",
        "\\gexec",
        "SQL",
        ')" || fail "the tables of $DATABASE could not be counted (above)"',
        '  echo "$counts" | while read -r rows table; do if [ -n "$table" ]; then say "rows $table $rows"; fi; done',
        "  passed=1",
        "}",
        "",
        'case "${1:-}" in',
        '  run) shift; run "$@" ;;',
        "  due) due ;;",
        "  publish) publish ;;",
        '  *) echo "usage: $0 run [SCRATCH_DIR] | due | publish" >&2; exit 2 ;;',
        "esac",
        "",
    ].join("\n");
}
