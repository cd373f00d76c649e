#!/usr/bin/env bash
# Backup operations on a running stack, through the Docker engine that runs it.
#
# Usage: scripts/backup.sh [-c CLUSTER] COMMAND [ARGS]
#   now [full|diff|incr]         back up now (default full), from a replica, whichever member leads
#   list                         the backups in the repository, and the WAL archive's range
#   check                        archive a WAL switch, check the repository and every member (all up)
#   drill                        a restore drill now, as the schedule runs it (restoreDrillEvery):
#                                verify the repository, restore the newest backup and its WAL to a
#                                moment ago in the backup container's scratch space, check it
#                                (canary rows, pg_amcheck, row counts), print the report; waits
#                                for a drill already running
#   restore-scratch NAME [TIME|LABEL]
#                                restore into a new container CLUSTER-scratch-NAME (volume
#                                CLUSTER-scratch-NAME-data) and start PostgreSQL there, for
#                                inspection: to TIME (e.g. '2026-11-29 17:03:12.5+08'), to the
#                                end of backup LABEL (as `list` shows it), or to the end of the
#                                archived WAL; then `docker exec -it CLUSTER-scratch-NAME psql -d obcms`
#   drop-scratch NAME            remove that container and its volume
#   restore-pitr TIME            restore the cluster itself to TIME: every member stops, the
#                                cluster's state in etcd is removed (its dynamic configuration
#                                kept), the member that led is restored in place (delta restore)
#                                and promoted on a new timeline, its Patroni registers it as the
#                                new cluster's leader, and every other member is created afresh
#                                (from the repository, or cloned from it). Writes after TIME are gone.
#
# CLUSTER is the stack's Docker name prefix, <project>-<stack>; by default the
# Pulumi CLI's selected stack, e.g. obcms-database-staging.
# Patroni says which member leads; no name says it. The paths and the stanza
# below are the program's (components/render/paths.ts,
# components/render/pgbackrest/pgbackrest.ts); test/unit/backup.test.ts keeps them equal.
set -euo pipefail

CONF=/etc/obcms/pgbackrest.conf
RESTORE_CONF=/etc/obcms/pgbackrest-restore.conf
RESTORE_DRILL=/etc/obcms/restore-drill.sh
STANZA=main
VOLUME_DIR=/var/lib/postgresql/data
PGDATA=$VOLUME_DIR/pgdata
REPO_DIR=/var/lib/pgbackrest
SERVICE_USER=999:999
TLS_DIR=/etc/obcms/tls
# An etcd member's own certificate and key, on its volume.
ETCD_CERT=/var/lib/obcms/etcd/server.crt
ETCD_KEY=/var/lib/obcms/etcd/server.key
PATRONI_REST_PORT=8008
ETCD_CLIENT_PORT=2379
# Where Patroni keeps a cluster's state in etcd: its default namespace, then the scope (the cluster's name).
PATRONI_NAMESPACE=/service
# Settings a server in recovery may not run below the values its primary recorded (guc:pg_controldata label);
# the restore drill reads the same (restore-drill.ts CONTROLDATA_LABELS; test/unit/backup.test.ts keeps them equal).
STANDBY_MINIMUMS="max_connections:max_connections max_worker_processes:max_worker_processes max_wal_senders:max_wal_senders max_prepared_transactions:max_prepared_xacts max_locks_per_transaction:max_locks_per_xact"

usage() { sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "backup.sh: $*" >&2; exit 1; }

# shellcheck source=lib/stack.sh
. "$(dirname "$0")/lib/stack.sh"
stack_from_options "$@"
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage

backup="$cluster-backup"
docker container inspect "$backup" >/dev/null 2>&1 || die "no backup container $backup"

pgbr() { docker exec "$backup" pgbackrest "--config=$CONF" "--stanza=$STANZA" "$@"; }

wait_healthy() {
  local container="$1" seconds="$2"
  for _ in $(seq "$seconds"); do
    [ "$(docker inspect --format '{{.State.Health.Status}}' "$container")" = healthy ] && return 0
    sleep 1
  done
  die "$container not healthy after ${seconds}s"
}

# The member that holds the leader key and runs as primary, asked of each member's Patroni REST API.
find_leader() {
  local member
  for member in $(members); do
    # /primary answers 200 from the moment the key is held; the role says when PostgreSQL left recovery.
    if docker exec "$member" curl -fsS --max-time 2 --cacert "$TLS_DIR/ca.crt" \
      "https://localhost:$PATRONI_REST_PORT/primary" 2>/dev/null | grep -q '"role": "primary"'; then
      echo "$member"
      return 0
    fi
  done
  return 1
}

# The timeline MEMBER writes on, as its Patroni reports it.
leader_timeline() {
  docker exec "$1" curl -fsS --max-time 2 --cacert "$TLS_DIR/ca.crt" "https://localhost:$PATRONI_REST_PORT/primary" \
    | sed -n 's/.*"timeline": \([0-9]*\).*/\1/p'
}

# True once TIMELINE's history file is in the repository's WAL archive (the newest archive of the stanza).
history_archived() {
  docker exec "$backup" sh -c "pgbackrest --config=$CONF repo-ls archive/$STANZA/\$(pgbackrest --config=$CONF --stanza=$STANZA info --output=json | jq -r '.[0].archive[-1].id')" \
    | grep -qx "$(printf '%08X' "$1").history"
}

# Switches the leader's WAL segment and waits until it is in the repository, so everything written
# before is. (pgbackrest check does as much, but fails while any member is down: it lists every
# member's data directory.)
archive_current_wal() {
  local segment newest
  segment="$(docker exec "$1" psql -X -A -t -d postgres -c 'SELECT pg_walfile_name(pg_switch_wal())')"
  for _ in $(seq 300); do
    newest="$(docker exec "$backup" sh -c "pgbackrest --config=$CONF --stanza=$STANZA info --output=json | jq -r '[.[0].archive[].max // empty] | max // empty'")"
    [ -n "$newest" ] && ! [[ "$newest" < "$segment" ]] && return 0
    sleep 1
  done
  die "WAL segment $segment did not reach the repository"
}

# Options for pgbackrest restore: to a backup label's end, to a time, or (none) to the end of the archive.
target_options() {
  local target="$1"
  if [[ "$target" =~ ^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$ ]]; then
    printf '%s\n' "--set=$target" "--type=immediate" "--target-action=promote"
  elif [ -n "$target" ]; then
    printf '%s\n' "--type=time" "--target=$target" "--target-action=promote"
  fi
}

# Restores from the repository into VOLUME, through a helper container NAME that keeps running
# (network only for an S3 repository), and starts PostgreSQL there on a private socket until it
# has promoted at the target. Extra pgbackrest restore options follow.
restore_into() {
  local name="$1" volume="$2"
  shift 2
  local image network=(--network none) repo=() repo_volume="$cluster-backup-data"
  image="$(docker inspect --format '{{.Config.Image}}' "$backup")"
  if docker volume inspect "$repo_volume" >/dev/null 2>&1; then
    repo=(-v "$repo_volume:$REPO_DIR:ro")
  else
    network=()  # an S3 repository: the helper container needs the network
  fi
  docker run --detach --name "$name" --user "$SERVICE_USER" "${network[@]}" \
    -v "$volume:$VOLUME_DIR" "${repo[@]}" --entrypoint /usr/bin/tini "$image" -- sleep infinity >/dev/null
  # The restore config holds the passphrase: it goes through a pipe into a 0600 file, never onto a command line.
  docker exec "$backup" cat "$RESTORE_CONF" \
    | docker exec -i "$name" sh -c "umask 077 && cat > $VOLUME_DIR/pgbackrest.conf"
  # archive-mode=off: the restored server must never archive into the cluster's repository by itself.
  docker exec "$name" pgbackrest "--config=$VOLUME_DIR/pgbackrest.conf" "--stanza=$STANZA" \
    restore --archive-mode=off "$@"
  # Recovery refuses to start below the settings the backed-up primary recorded in its
  # control file, so the server starts with those. The data directory's postgresql.conf is
  # Patroni's, which includes files only a member has: the server takes no config file, only
  # the socket, and the data directory's own pg_hba.conf.
  local controldata options="-c config_file=/dev/null -c hba_file=$PGDATA/pg_hba.conf -c ident_file=$PGDATA/pg_ident.conf -c listen_addresses=" pair guc label recorded
  controldata="$(docker exec "$name" pg_controldata "$PGDATA")"
  for pair in $STANDBY_MINIMUMS; do
    guc="${pair%%:*}" label="${pair#*:}"
    recorded="$(sed -n "s/^$label setting: *//p" <<<"$controldata")"
    [ -n "$recorded" ] && options="$options -c $guc=$recorded"
  done
  docker exec "$name" pg_ctl -D "$PGDATA" -l "$VOLUME_DIR/postgresql.log" -o "$options" -w -t 3600 start >/dev/null
  for _ in $(seq 3600); do
    if [ "$(docker exec "$name" psql -X -A -t -d postgres -c 'SELECT pg_is_in_recovery()')" = f ]; then
      return 0
    fi
    sleep 1
  done
  die "$name did not finish recovery; see docker exec $name cat $VOLUME_DIR/postgresql.log"
}

restore_scratch() {
  local name="$1" target="${2:-}"
  local scratch="$cluster-scratch-$name"
  local options=()
  mapfile -t options < <(target_options "$target")
  docker volume create "$scratch-data" >/dev/null
  restore_into "$scratch" "$scratch-data" "${options[@]}"
  echo "restored into $scratch; inspect with: docker exec -it $scratch psql -d <database>"
}

# etcdctl in the first running etcd member, with its own certificate.
etcdctl_() {
  local member
  member="$(docker ps --format '{{.Names}}' --filter "name=^/$cluster-etcd-[0-9]+$" | sort -V | head -n 1)"
  [ -n "$member" ] || die "no etcd member of $cluster is running"
  docker exec -i "$member" etcdctl "--endpoints=https://localhost:$ETCD_CLIENT_PORT" \
    "--cacert=$TLS_DIR/ca.crt" "--cert=$ETCD_CERT" "--key=$ETCD_KEY" "$@"
}

restore_pitr() {
  local target="$1" image leader restored member config timeline helper="$cluster-restore-pitr"
  local all=() options=()
  mapfile -t all < <(members)
  [ "${#all[@]}" -gt 0 ] || die "no members named $cluster-pg-N"
  image="$(docker inspect --format '{{.Config.Image}}' "$backup")"
  leader="$(find_leader)" || die "no member leads; restore-pitr archives the leader's last WAL first"
  # Archive what the leader has, so the restore can replay up to TIME.
  archive_current_wal "$leader"
  # The leader's data is the newest: restored in place, it has the least to fetch.
  restored="$leader"
  # The others stop first, so that none is promoted when the leader stops.
  for member in "${all[@]}"; do [ "$member" = "$leader" ] || docker stop "$member" >/dev/null; done
  docker stop "$leader" >/dev/null
  # The restored data starts a new history: the old cluster's state in etcd goes, and the restored
  # member registers anew. Patroni's dynamic configuration (as the stack last applied it) stays.
  config="$(etcdctl_ get --print-value-only "$PATRONI_NAMESPACE/$cluster/config")"
  etcdctl_ del --prefix "$PATRONI_NAMESPACE/$cluster/" >/dev/null
  if [ -n "$config" ]; then printf '%s' "$config" | etcdctl_ put "$PATRONI_NAMESPACE/$cluster/config" >/dev/null; fi
  mapfile -t options < <(target_options "$target")
  restore_into "$helper" "$restored-data" --delta "${options[@]}"
  # pgBackRest wrote restore_command and the target into postgresql.auto.conf; the cluster runs without them.
  docker exec "$helper" psql -X -q -d postgres -c 'ALTER SYSTEM RESET ALL'
  docker exec "$helper" pg_ctl -D "$PGDATA" -w -t 3600 -m fast stop >/dev/null
  # The promotion ran without archiving: the new timeline's history file is queued for the
  # archiver, so that the repository knows the timeline. (Patroni, finding no leader, starts the
  # member as a standby and promotes it once more: the cluster goes on from the timeline after.)
  timeline="$(docker exec "$helper" pg_controldata "$PGDATA" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")"
  docker exec "$helper" touch "$PGDATA/pg_wal/archive_status/$(printf '%08X' "$timeline").history.ready"
  docker exec "$helper" rm -f "$VOLUME_DIR/pgbackrest.conf" "$VOLUME_DIR/postgresql.log"
  docker rm --force "$helper" >/dev/null
  # The other members are ahead of the restored data, on a timeline it left: they are created afresh.
  for member in "${all[@]}"; do
    [ "$member" = "$restored" ] || docker run --rm --user "$SERVICE_USER" -v "$member-data:$VOLUME_DIR" --entrypoint rm "$image" -rf "$PGDATA"
  done
  docker start "$restored" >/dev/null
  for _ in $(seq 600); do
    [ "$(find_leader || true)" = "$restored" ] && break
    sleep 1
  done
  [ "$(find_leader || true)" = "$restored" ] || die "$restored did not take the lead of the restored cluster"
  # The other members restore a backup from the repository only if it lies on the leader's
  # timeline's history (else they are cloned), and replay from it the segment where the timelines
  # fork: the helper's promotion archived nothing, and the leader's first segment holds that WAL.
  # So the leader's history file and its current segment are archived first.
  timeline="$(leader_timeline "$restored")"
  archive_current_wal "$restored"
  history_archived "$timeline" || die "timeline $timeline's history file did not reach the repository"
  for member in "${all[@]}"; do [ "$member" = "$restored" ] || docker start "$member" >/dev/null; done
  for member in "${all[@]}"; do [ "$member" = "$restored" ] || wait_healthy "$member" 3600; done
  # The restored cluster archives on its new timeline.
  pgbr check
  echo "cluster restored to $target; $restored leads on timeline $timeline"
}

case "$1" in
  now)
    type="${2:-full}"
    case "$type" in full | diff | incr) ;; *) die "backup type must be full, diff or incr" ;; esac
    pgbr --type="$type" backup
    ;;
  list) pgbr info ;;
  check) pgbr check ;;
  drill) docker exec "$backup" sh "$RESTORE_DRILL" run ;;
  restore-scratch)
    [ $# -ge 2 ] || usage
    restore_scratch "$2" "${3:-}"
    ;;
  drop-scratch)
    [ $# -ge 2 ] || usage
    docker rm --force "$cluster-scratch-$2" >/dev/null
    docker volume rm "$cluster-scratch-$2-data" >/dev/null
    ;;
  restore-pitr)
    [ $# -ge 2 ] || usage
    restore_pitr "$2"
    ;;
  *) usage ;;
esac
