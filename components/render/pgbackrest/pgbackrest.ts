// pgBackRest: its config files, the PostgreSQL parameters that archive WAL
// through it, the commands Patroni runs to create a member from a backup and
// to fetch archived WAL, and the backup container's entry point (first full
// backup, then the schedule, the metrics). The backup container is the
// repository host: it runs every backup, copying from a replica
// (backup-standby) and talking to every member over pgBackRest's TLS
// protocol, and receives the leader's WAL the same way.
import { type BackupSettings, type ClusterSettings, POSTGRES_PORT } from "../../settings";
import { clusterTopology } from "../../topology";
import { commentText, pgbackrestConfValue, shellWord } from "../escape";
import {
    BACKUP_TLS_FILES,
    FILES,
    MEMBER_TLS_FILES,
    PGBACKREST_FILES,
    PGBACKREST_REPO_DIR,
    PGBACKREST_SPOOL_DIR,
    PGDATA,
    RESTORE_DRILL_LOCK_FILE,
    SOCKET_DIR,
} from "../paths";
import { supervisedLine } from "../shell-scripts";
import type { CertificateFiles } from "../tls/certificate-command";

/** The one stanza of the repository: this cluster. */
export const STANZA = "main";
/** Port of `pgbackrest server` on every PostgreSQL node and on the backup container. */
export const PGBACKREST_TLS_PORT = 8432;
/** Seconds between `pgbackrest check` runs in the backup container: each one proves the archiving path end to end. */
export const ARCHIVE_CHECK_SECONDS = 300;
/** A failed scheduled backup is retried after this many seconds, not on every tick. */
export const BACKUP_RETRY_SECONDS = 300;
/** Written by the backup container once the stanza exists and a full backup is in the repository; its health check. */
export const BACKUP_READY_FILE = "/tmp/obcms-backup-ready";
/** The textfile collector's directory in the backup container. */
export const BACKUP_METRICS_DIR = "/tmp/obcms-metrics";
/** Held by the schedule's backup while it runs: a restore drill waits for it before choosing the backup it restores. */
export const BACKUP_RUN_LOCK_FILE = "/tmp/obcms-backup-run.lock";
/** Where a drill the schedule runs in the background leaves its exit status. */
const DRILL_EXIT_FILE = "/tmp/obcms-drill.exit";

/** An option's value; a list is written as the option repeated, one line per element (e.g. `tls-server-auth`). */
export type PgbackrestValue = string | number | boolean | readonly string[];
/** A pgbackrest.conf: `[global]`, then the stanza's section. */
export type PgbackrestConf = Readonly<Record<string, Readonly<Record<string, PgbackrestValue>>>>;

const OPTION_NAME = /^[a-z][a-z0-9-]*$/;
const SECTION_NAME = /^[a-z][a-z0-9_:-]*$/;

function confValue(value: string | number | boolean): string {
    if (typeof value === "boolean") {
        return value ? "y" : "n";
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
        throw new Error(`pgbackrest.conf: ${value} is not a finite number`);
    }
    return pgbackrestConfValue(String(value));
}

/** INI as pgBackRest reads it: sections in the given order, options sorted by name, every value escaped. */
export function renderPgbackrestConf(conf: PgbackrestConf, comment = "Rendered by obcms-database; changes here are overwritten."): string {
    const lines = [`# ${commentText(comment)}`];
    for (const [section, options] of Object.entries(conf)) {
        if (!SECTION_NAME.test(section)) {
            throw new Error(`pgbackrest.conf: ${JSON.stringify(section)} is not a section name`);
        }
        lines.push("", `[${section}]`);
        for (const name of Object.keys(options).sort()) {
            if (!OPTION_NAME.test(name)) {
                throw new Error(`pgbackrest.conf: ${JSON.stringify(name)} is not an option name`);
            }
            const value = options[name];
            for (const element of Array.isArray(value) ? value : [value]) {
                lines.push(`${name}=${confValue(element)}`);
            }
        }
    }
    return [...lines, ""].join("\n");
}

/** The PostgreSQL members the backup container reaches, in order. */
function postgresHosts(s: ClusterSettings): string[] {
    return clusterTopology(s).members.map((m) => m.container);
}

/** Options every pgBackRest process of the cluster shares: quiet files, output to the container log. */
const COMMON: Record<string, PgbackrestValue> = {
    // The service user cannot write /var/log/pgbackrest; the console is the container's log.
    "log-level-file": "off",
    "log-level-console": "info",
    "log-timestamp": true,
    "compress-type": "zst",
};

/**
 * The TLS server every node runs, with its certificate (`own`), accepting
 * only the named clients' certificates for the stanza.
 */
function tlsServer(clients: readonly string[], own: CertificateFiles): Record<string, PgbackrestValue> {
    return {
        "tls-server-address": "0.0.0.0",
        "tls-server-port": PGBACKREST_TLS_PORT,
        "tls-server-ca-file": FILES.tlsCa,
        "tls-server-cert-file": own.cert,
        "tls-server-key-file": own.key,
        // One line per client certificate's common name; the list after `=` would be stanzas.
        "tls-server-auth": clients.map((client) => `${client}=${STANZA}`),
    };
}

/**
 * pgbackrest.conf of every member (secret): the leader's WAL goes to the
 * backup container (asynchronously, so a slow repository does not hold the
 * archiver per segment), archived WAL comes back from it (archive-get, below),
 * and the TLS server lets the backup container, and only it, copy this
 * member's files. The member's certificate is also its client certificate.
 * The passphrase is here too: a member encrypts the WAL it pushes and reads
 * the repository's encrypted files itself.
 */
export function postgresNodePgbackrestConf(s: ClusterSettings, passphrase: string): PgbackrestConf {
    const backup = clusterTopology(s).backup.container;
    return {
        global: {
            ...COMMON,
            ...tlsServer([backup], MEMBER_TLS_FILES),
            "archive-async": true,
            // PostgreSQL's archiver waits this long for a segment to reach the repository before it
            // retries; short, so a repository host that is not up yet (at creation, or restarting)
            // neither holds a shutdown past Docker's grace time nor delays the first backup by minutes.
            "archive-timeout": 10,
            "spool-path": PGBACKREST_SPOOL_DIR,
            "repo1-host": backup,
            "repo1-host-type": "tls",
            "repo1-host-port": PGBACKREST_TLS_PORT,
            ...encryption(passphrase),
            "repo1-host-ca-file": FILES.tlsCa,
            "repo1-host-cert-file": MEMBER_TLS_FILES.cert,
            "repo1-host-key-file": MEMBER_TLS_FILES.key,
        },
        "global:archive-get": ARCHIVE_GET,
        [STANZA]: {
            "pg1-path": PGDATA,
            "pg1-socket-path": SOCKET_DIR,
            "pg1-port": POSTGRES_PORT,
        },
    };
}

/**
 * archive-get, PostgreSQL's restore_command on every member. A standby runs it
 * whenever streaming stops, so also while its leader is dead, and a promotion
 * waits for the call in progress, then calls it again for the last segment and
 * the next timeline's history file. Measured on a killed leader, in the
 * promoted standby's log from "received promote request" to "selected new
 * timeline ID" (2 cores): without a restore_command 0.002-0.008 s; with a
 * synchronous get 0.7 s on an idle machine, 1.2-4.9 s while other suites load
 * it; with the asynchronous get that the push's `archive-async` would also
 * give it 1.3 s and 5.8 s, since each call forks a process that prefetches
 * `archive-get-queue-max` of segments that do not exist yet. So: synchronous,
 * one connection per file, and `io-timeout` bounds what a repository host that
 * stopped answering can add (pgBackRest retries a connection that long, 60 s
 * by default). The restore_command stays in the standby config, as Crunchy's
 * PGO keeps it, though leaving it out would keep promotions at milliseconds:
 * the history-file lookup is what keeps a new timeline's ID unused in the
 * repository (one reused would stop archiving: the repository refuses a
 * different file under an archived name), a member restored from a backup
 * replays the WAL since the backup from it, and pg_rewind fetches what it misses.
 */
const ARCHIVE_GET: Record<string, PgbackrestValue> = { "archive-async": false, "io-timeout": 5 };

/** Secrets a repository needs: the encryption passphrase, and S3's access keys when it is there. */
export interface RepositorySecrets {
    readonly passphrase: string;
    readonly s3?: { readonly key: string; readonly keySecret: string };
}

function encryption(passphrase: string): Record<string, PgbackrestValue> {
    return { "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": passphrase };
}

/** Where the repository is and how it is encrypted. */
function repositoryOptions(b: BackupSettings, secrets: RepositorySecrets): Record<string, PgbackrestValue> {
    const r = b.repository;
    if (r.type === "volume") {
        return { ...encryption(secrets.passphrase), "repo1-path": PGBACKREST_REPO_DIR };
    }
    if (secrets.s3 === undefined) {
        throw new Error("pgbackrest.conf: an S3 repository needs its access keys");
    }
    return {
        ...encryption(secrets.passphrase),
        "repo1-type": "s3",
        "repo1-path": r.path,
        "repo1-s3-bucket": r.bucket,
        "repo1-s3-endpoint": r.endpoint,
        "repo1-s3-region": r.region,
        "repo1-s3-uri-style": r.uriStyle,
        "repo1-s3-key": secrets.s3.key,
        "repo1-s3-key-secret": secrets.s3.keySecret,
    };
}

/**
 * pgbackrest.conf of the backup container (secret: it holds the passphrase).
 * pg1.. are the members in order, whatever their roles: pgBackRest asks each
 * which one leads. With backup-standby it copies the files from a replica and
 * asks the leader only to start and stop the backup, so the leader's disks
 * are not loaded.
 */
export function repositoryHostPgbackrestConf(s: ClusterSettings, b: BackupSettings, secrets: RepositorySecrets): PgbackrestConf {
    const hosts = postgresHosts(s);
    const stanza: Record<string, PgbackrestValue> = {};
    hosts.forEach((host, i) => {
        const pg = `pg${i + 1}`;
        Object.assign(stanza, {
            [`${pg}-host`]: host,
            [`${pg}-host-type`]: "tls",
            [`${pg}-host-port`]: PGBACKREST_TLS_PORT,
            [`${pg}-host-ca-file`]: FILES.tlsCa,
            [`${pg}-host-cert-file`]: BACKUP_TLS_FILES.cert,
            [`${pg}-host-key-file`]: BACKUP_TLS_FILES.key,
            [`${pg}-path`]: PGDATA,
            [`${pg}-socket-path`]: SOCKET_DIR,
            [`${pg}-port`]: POSTGRES_PORT,
        });
    });
    return {
        global: {
            ...COMMON,
            ...tlsServer(hosts, BACKUP_TLS_FILES),
            ...repositoryOptions(b, secrets),
            "repo1-retention-full-type": "count",
            "repo1-retention-full": b.retentionFull,
            "backup-standby": true,
            // How long a backup or check waits for its WAL to be archived: at creation the leader's
            // archiver may still be working off the segments it could not push before this host was up.
            "archive-timeout": 300,
            // An immediate checkpoint: a backup starts now, not at the next scheduled checkpoint.
            "start-fast": true,
        },
        [STANZA]: stanza,
    };
}

/**
 * The config a scratch container restores with (secret): the repository read
 * directly, and the data directory local. It lives in the backup container
 * and reaches a scratch container through a pipe, never a command line.
 */
export function restorePgbackrestConf(b: BackupSettings, secrets: RepositorySecrets): PgbackrestConf {
    return {
        global: { ...COMMON, ...repositoryOptions(b, secrets) },
        [STANZA]: { "pg1-path": PGDATA },
    };
}

/** `pgbackrest` with the cluster's config file and stanza, as every script and command runs it. */
export function pgbackrestCommand(): string {
    return `pgbackrest --config=${PGBACKREST_FILES.conf} --stanza=${STANZA}`;
}

/**
 * A shell test that the repository host's name resolves. It does not before
 * the backup container is first created (it comes after the members) or while
 * it is replaced, and pgBackRest would retry the lookup for io-timeout before
 * failing: the members' first bring-up took two minutes longer without it.
 */
function repositoryHostResolves(s: ClusterSettings): string {
    return `getent hosts ${shellWord(clusterTopology(s).backup.container)} >/dev/null`;
}

/**
 * Patroni's `pgbackrest` replica-creation method (Patroni splits it into words
 * and runs it without a shell, hence `sh -c`): the newest backup restored from
 * the repository as a standby, over what the member's data directory holds
 * (`--delta` where there is one: only files that differ are fetched). No
 * member serves anything; the new member replays the archive, then streams.
 * Patroni writes its own recovery settings after it and removes pgBackRest's
 * from postgresql.auto.conf. Without a repository host (the members' first
 * start) it fails at once with one line, and Patroni falls back to
 * `pg_basebackup`, as it does when the repository holds no backup.
 */
export function replicaRestoreCommand(s: ClusterSettings): string {
    const script = [
        `if ! ${repositoryHostResolves(s)}; then echo 'no repository host yet: the member is cloned instead' >&2; exit 1; fi`,
        `if [ -f ${shellWord(`${PGDATA}/PG_VERSION`)} ]; then delta=--delta; else delta=; fi`,
        `exec ${pgbackrestCommand()} $delta --type=standby restore`,
    ].join("; ");
    return `sh -c ${shellWord(script)}`;
}

/** Every member's restore_command (see ARCHIVE_GET): a WAL segment or a timeline history file from the repository. */
export function restoreCommand(s: ClusterSettings): string {
    return `${repositoryHostResolves(s)} && ${pgbackrestCommand()} archive-get %f "%p"`;
}

/**
 * WAL archiving on every member: whichever leads archives, a replica nothing
 * (`archive_mode = on`) until it is promoted, when it archives its new
 * timeline's history file first. A segment is switched after at most a
 * minute of writes, which bounds what the repository can miss if the
 * leader's volume is lost.
 */
export function archiveParameters(): Record<string, string | number> {
    return {
        archive_mode: "on",
        archive_command: `${pgbackrestCommand()} archive-push %p`,
        archive_timeout: 60,
    };
}

/** Start-script lines that run `pgbackrest server` for the node's lifetime (the postmaster would take a killed child for a crashed backend). */
export function tlsServerLines(): string[] {
    return [supervisedLine("pgbackrest server", `pgbackrest --config=${shellWord(PGBACKREST_FILES.conf)} server`)];
}

export interface BackupStartSpec {
    readonly backup: BackupSettings;
    /** Seconds between two looks at the schedule. */
    readonly tickSeconds: number;
    readonly metricsPort: number;
}

/**
 * The backup container: the TLS server that receives WAL, the stanza (created
 * once the leader answers), a full backup when the repository holds none,
 * and only then the health check's file, so `pulumi up` returns with a full
 * backup in the repository. Then the schedule: a full backup when the last
 * full is older than `fullEverySeconds`, a differential when the last backup
 * of any kind is older than `diffEverySeconds` (expiry by retention follows
 * each backup), a restore drill in the background when one is due
 * (restore-drill.ts; no full backup starts while a drill runs), a
 * `pgbackrest check` every ARCHIVE_CHECK_SECONDS, one log line per run, and
 * the metrics file after every tick. A stop lets the running backup finish;
 * a drill is cut off, and the next cleans up after it.
 */
export function renderBackupStart(spec: BackupStartSpec): string {
    const b = spec.backup;
    const metricsFile = `${BACKUP_METRICS_DIR}/backup.prom`;
    const metric = (name: string, help: string, value: string, labels = "") => [
        `echo ${shellWord(`# HELP ${name} ${help}`)}`,
        `echo ${shellWord(`# TYPE ${name} gauge`)}`,
        `echo "${name}${labels} ${value}"`,
    ];
    return [
        "#!/bin/sh",
        "# Rendered by obcms-database.",
        "set -eu",
        `pgbr() { ${pgbackrestCommand()} "$@"; }`,
        // repo-ls takes no stanza.
        `pgbr_repo() { pgbackrest --config=${shellWord(PGBACKREST_FILES.conf)} "$@"; }`,
        'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) obcms-backup: $*"; }',
        // jq reads pgBackRest's JSON; `[]?` and `// 0` cover an empty repository.
        `info_json() { pgbr info --output=json; }`,
        // On the stop signal a backup that is running finishes, and is logged,
        // before the scheduler exits: the trap only marks the request. The grace
        // Docker gives the container bounds that wait; pgBackRest resumes a
        // backup cut off by it.
        "stopping=0",
        "trap 'stopping=1' TERM INT",
        'stop_if_requested() { if [ "$stopping" = 1 ]; then log "stop requested: no further backups"; exit 0; fi; }',
        `rm -f ${shellWord(BACKUP_READY_FILE)}`,
        `mkdir -p ${shellWord(BACKUP_METRICS_DIR)}`,
        `drill() { sh ${shellWord(PGBACKREST_FILES.restoreDrill)} "$@"; }`,
        "drill publish",
        ...tlsServerLines(),
        `( (until false; do prometheus-node-exporter --collector.disable-defaults --collector.textfile --collector.textfile.directory=${shellWord(BACKUP_METRICS_DIR)} --web.listen-address=:${spec.metricsPort} || true; sleep 1; done) </dev/null >/dev/null 2>&1 & )`,
        "",
        "last_outcome=1",
        "last_duration=0",
        "run_backup() {",
        '  type="$1"; started="$(date +%s)"',
        '  log "start type=$type"',
        `  if flock ${shellWord(BACKUP_RUN_LOCK_FILE)} ${pgbackrestCommand()} --type="$type" backup; then last_outcome=1; else last_outcome=0; fi`,
        "  last_duration=$(( $(date +%s) - started ))",
        `  label="$(info_json | jq -r '.[0].backup[-1].label // "none"')"`,
        '  if [ "$last_outcome" = 1 ]; then outcome=success; else outcome=failed; fi',
        '  log "end type=$type label=$label duration=${last_duration}s outcome=$outcome"',
        '  [ "$last_outcome" = 1 ]',
        "}",
        "",
        // 0 also when the repository cannot be read: then the stanza is created (or that fails, logged).
        `full_backups() { n="$(info_json | jq '[.[0].backup[]? | select(.type == "full")] | length')"; echo "\${n:-0}"; }`,
        // stanza-create needs a declared member that leads. A container replaced by the
        // `pulumi up` that removes the leading member has none until that member is deleted,
        // at the end of the update: with a full backup in the repository, the stanza exists,
        // and the container is ready from the repository alone.
        'if [ "$(full_backups)" = 0 ]; then',
        "  attempt=1",
        "  until pgbr stanza-create; do",
        "    stop_if_requested",
        '    if [ "$attempt" -ge 150 ]; then log "stanza-create failed 150 times"; exit 1; fi',
        "    attempt=$((attempt + 1)); sleep 2",
        "  done",
        '  if [ "$(full_backups)" = 0 ]; then',
        "    run_backup full",
        "  fi",
        "fi",
        `touch ${shellWord(BACKUP_READY_FILE)}`,
        "",
        "last_attempt=0",
        "last_check=0",
        "drill_pid=",
        `rm -f ${shellWord(DRILL_EXIT_FILE)}`,
        "check_ok=1",
        "while :; do",
        "  stop_if_requested",
        '  now="$(date +%s)"',
        '  info="$(info_json)"',
        `  last_full="$(echo "$info" | jq '[.[0].backup[]? | select(.type == "full") | .timestamp.stop] | max // 0')"`,
        `  last_any="$(echo "$info" | jq '[.[0].backup[]? | .timestamp.stop] | max // 0')"`,
        `  if [ $((now - last_attempt)) -ge ${BACKUP_RETRY_SECONDS} ] || [ "$last_outcome" = 1 ]; then`,
        // No full backup while a drill runs: the expiry after it could remove the backup being restored. A diff is taken meanwhile, when due.
        `    if [ $((now - last_full)) -ge ${b.fullEverySeconds} ] && flock -n ${shellWord(RESTORE_DRILL_LOCK_FILE)} true; then last_attempt="$now"; run_backup full || true`,
        `    elif [ $((now - last_any)) -ge ${b.diffEverySeconds} ]; then last_attempt="$now"; run_backup diff || true`,
        "    fi",
        "  fi",
        // A restore drill runs beside the schedule, which goes on backing up; it writes its own record and report.
        `  if [ -n "$drill_pid" ] && [ -f ${shellWord(DRILL_EXIT_FILE)} ]; then`,
        '    wait "$drill_pid" || true',
        `    if [ "$(cat ${shellWord(DRILL_EXIT_FILE)})" = 0 ]; then log "drill end outcome=success"; else log "drill end outcome=failed"; fi`,
        `    rm -f ${shellWord(DRILL_EXIT_FILE)}`,
        "    drill_pid=",
        "  fi",
        '  if [ -z "$drill_pid" ] && drill due; then',
        '    log "drill start"',
        // The report goes to the container's log; only the exit status to the file.
        `    (if drill run; then status=0; else status=1; fi; echo "$status" > ${shellWord(`${DRILL_EXIT_FILE}.tmp`)}; mv ${shellWord(`${DRILL_EXIT_FILE}.tmp`)} ${shellWord(DRILL_EXIT_FILE)}) &`,
        "    drill_pid=$!",
        "  fi",
        `  if [ $((now - last_check)) -ge ${ARCHIVE_CHECK_SECONDS} ]; then`,
        '    last_check="$now"',
        '    if pgbr check; then check_ok=1; else check_ok=0; log "check failed: WAL archiving or the repository is broken"; fi',
        "  fi",
        '  info="$(info_json)"',
        `  archive_id="$(echo "$info" | jq -r '.[0].archive[-1].id // empty')"`,
        `  wal_max="$(echo "$info" | jq -r '.[0].archive[-1].max // empty')"`,
        "  wal_time=0",
        '  if [ -n "$wal_max" ]; then',
        `    wal_dir="archive/${STANZA}/$archive_id/$(echo "$wal_max" | cut -c1-16)"`,
        `    wal_time="$(pgbr_repo repo-ls --output=json "$wal_dir" | jq --arg wal "$wal_max" '[to_entries[] | select(.key | startswith($wal)) | .value.time] | max // 0')"`,
        "  fi",
        "  {",
        ...metric(
            "obcms_backup_last_success_timestamp_seconds",
            "End of the newest backup in the repository, by type (any: full, diff or incr).",
            `$(echo "$info" | jq '[.[0].backup[]? | select(.type == "full") | .timestamp.stop] | max // 0')`,
            '{type=\\"full\\"}',
        ).map((line) => `    ${line}`),
        `    echo "obcms_backup_last_success_timestamp_seconds{type=\\"any\\"} $(echo "$info" | jq '[.[0].backup[]? | .timestamp.stop] | max // 0')"`,
        ...metric("obcms_backup_last_run_success", "1 if the last backup run by the schedule succeeded.", "$last_outcome").map(
            (line) => `    ${line}`,
        ),
        ...metric("obcms_backup_last_run_duration_seconds", "Duration of the last backup run.", "$last_duration").map(
            (line) => `    ${line}`,
        ),
        ...metric("obcms_backup_repository_backups", "Backups in the repository.", `$(echo "$info" | jq '[.[0].backup[]?] | length')`).map(
            (line) => `    ${line}`,
        ),
        ...metric("obcms_backup_wal_archived_timestamp_seconds", "When the newest WAL segment reached the repository.", "$wal_time").map(
            (line) => `    ${line}`,
        ),
        ...metric("obcms_backup_archive_check_success", "1 if the last pgbackrest check (WAL switch archived) passed.", "$check_ok").map(
            (line) => `    ${line}`,
        ),
        `  } > ${shellWord(`${metricsFile}.tmp`)}`,
        `  mv ${shellWord(`${metricsFile}.tmp`)} ${shellWord(metricsFile)}`,
        // In the background, so that a stop signal ends the wait at once.
        "  stop_if_requested",
        `  sleep ${spec.tickSeconds} & wait $! || true`,
        "done",
        "",
    ].join("\n");
}
