#!/usr/bin/env bash
# Backup operations on a running stack, through the Docker engine that runs it.
#
# Usage: scripts/backup.sh [-c CLUSTER] COMMAND [ARGS]
#   now [full|diff|incr]         back up now (default full), from a replica
#   list                         the backups in the repository, and the WAL archive's range
#   check                        archive a WAL switch and check the repository and both ends of the path
#   restore-scratch NAME [TIME|LABEL]
#                                restore into a new container CLUSTER-scratch-NAME (volume
#                                CLUSTER-scratch-NAME-data) and start PostgreSQL there, for
#                                inspection: to TIME (e.g. '2026-11-29 17:03:12.5+08'), to the
#                                end of backup LABEL (as `list` shows it), or to the end of the
#                                archived WAL; then `docker exec -it CLUSTER-scratch-NAME psql -d obcms`
#   drop-scratch NAME            remove that container and its volume
#   restore-pitr TIME            restore the cluster itself to TIME: the primary is restored
#                                in place (delta restore) and promoted on a new timeline, and
#                                every replica is cloned afresh from it. Writes after TIME are gone.
#
# CLUSTER is the stack's Docker name prefix, <project>-<stack>; by default the
# Pulumi CLI's selected stack, e.g. obcms-database-staging.
# The paths and the stanza below are the program's (components/render/paths.ts,
# components/render/pgbackrest/pgbackrest.ts); test/unit/backup.test.ts keeps them equal.
set -euo pipefail

CONF=/etc/obcms/pgbackrest.conf
RESTORE_CONF=/etc/obcms/pgbackrest-restore.conf
STANZA=main
VOLUME_DIR=/var/lib/postgresql/data
PGDATA=$VOLUME_DIR/pgdata
REPO_DIR=/var/lib/pgbackrest
RESTORE_TARGET_FILE=$VOLUME_DIR/restore-target
SERVICE_USER=999:999
# Settings a server in recovery may not run below the primary's (guc:pg_controldata label),
# as in components/render/postgres/start-scripts.ts.
STANDBY_MINIMUMS="max_connections:max_connections max_worker_processes:max_worker_processes max_wal_senders:max_wal_senders max_prepared_transactions:max_prepared_xacts max_locks_per_transaction:max_locks_per_xact"

usage() { sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "backup.sh: $*" >&2; exit 1; }

cluster=""
while getopts "c:h" opt; do
  case "$opt" in
    c) cluster="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
if [ -z "$cluster" ]; then
  command -v pulumi >/dev/null || die "no -c CLUSTER and no Pulumi CLI to find the stack"
  cluster="$(cd "$(dirname "$0")/.." && echo "obcms-database-$(pulumi stack --show-name)")"
fi

backup="$cluster-backup"
primary="$cluster-primary"
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

restore_scratch() {
  local name="$1" target="${2:-}"
  local scratch="$cluster-scratch-$name"
  local volume="$scratch-data" repo_volume="$cluster-backup-data"
  local image network=(--network none) repo=() target_options=()
  image="$(docker inspect --format '{{.Config.Image}}' "$backup")"
  if docker volume inspect "$repo_volume" >/dev/null 2>&1; then
    repo=(-v "$repo_volume:$REPO_DIR:ro")
  else
    network=()  # an S3 repository: the scratch container needs the network
  fi
  if [[ "$target" =~ ^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$ ]]; then
    target_options=("--set=$target" --type=immediate --target-action=promote)
  elif [ -n "$target" ]; then
    target_options=(--type=time "--target=$target" --target-action=promote)
  fi
  docker volume create "$volume" >/dev/null
  docker run --detach --name "$scratch" --user "$SERVICE_USER" "${network[@]}" \
    -v "$volume:$VOLUME_DIR" "${repo[@]}" --entrypoint /usr/bin/tini "$image" -- sleep infinity >/dev/null
  # The restore config holds the passphrase: it goes through a pipe into a 0600 file, never onto a command line.
  docker exec "$backup" cat "$RESTORE_CONF" \
    | docker exec -i "$scratch" sh -c "umask 077 && cat > $VOLUME_DIR/pgbackrest.conf"
  # archive-mode=off: the scratch server must never archive into the cluster's repository.
  docker exec "$scratch" pgbackrest "--config=$VOLUME_DIR/pgbackrest.conf" "--stanza=$STANZA" \
    restore --archive-mode=off "${target_options[@]}"
  # The scratch server runs initdb's defaults; recovery refuses to start below the settings the
  # backed-up primary recorded in its control file, so it starts with those.
  local controldata options="" pair guc label recorded
  controldata="$(docker exec "$scratch" pg_controldata "$PGDATA")"
  for pair in $STANDBY_MINIMUMS; do
    guc="${pair%%:*}" label="${pair#*:}"
    recorded="$(sed -n "s/^$label setting: *//p" <<<"$controldata")"
    [ -n "$recorded" ] && options="$options -c $guc=$recorded"
  done
  docker exec "$scratch" pg_ctl -D "$PGDATA" -l "$VOLUME_DIR/postgresql.log" -o "$options" -w -t 3600 start >/dev/null
  for _ in $(seq 3600); do
    if [ "$(docker exec "$scratch" psql -X -A -t -d postgres -c 'SELECT pg_is_in_recovery()')" = f ]; then
      echo "restored into $scratch; inspect with: docker exec -it $scratch psql -d <database>"
      return 0
    fi
    sleep 1
  done
  die "$scratch did not finish recovery; see docker exec $scratch cat $VOLUME_DIR/postgresql.log"
}

restore_pitr() {
  local target="$1" replica volume image
  image="$(docker inspect --format '{{.Config.Image}}' "$backup")"
  # Archive what the primary has, so the restore can replay up to TIME.
  pgbr check
  printf '%s\n' "$target" | docker exec -i "$primary" sh -c "cat > $RESTORE_TARGET_FILE"
  docker restart "$primary" >/dev/null
  wait_healthy "$primary" 3600
  # The replicas are ahead of the restored primary, on a timeline it left: clone them afresh.
  for replica in $(docker ps --all --format '{{.Names}}' --filter "name=^/$cluster-replica-[0-9]+$" | sort); do
    volume="$replica-data"
    docker stop "$replica" >/dev/null
    docker run --rm --user "$SERVICE_USER" -v "$volume:$VOLUME_DIR" --entrypoint rm "$image" -rf "$PGDATA"
    docker start "$replica" >/dev/null
    wait_healthy "$replica" 3600
  done
  echo "cluster restored to $target"
}

case "$1" in
  now)
    type="${2:-full}"
    case "$type" in full | diff | incr) ;; *) die "backup type must be full, diff or incr" ;; esac
    pgbr --type="$type" backup
    ;;
  list) pgbr info ;;
  check) pgbr check ;;
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
