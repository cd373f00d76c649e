#!/usr/bin/env bash
# Cluster operations on a running stack, through the Docker engine that runs it:
# Patroni decides who leads; this script asks it, and holds PgBouncer's clients
# while the leader changes on purpose.
#
# Usage: scripts/cluster.sh [-c CLUSTER] COMMAND [ARGS]
#   status                 each member: name, role, state, timeline, lag (MB)
#   switchover [MEMBER]    hand the lead to MEMBER (default: the first streaming replica) with no
#                          client error: Patroni switches over, and PgBouncer's pools are paused
#                          (running transactions finish, new ones wait) just before the leader's
#                          PostgreSQL stops, which waits for that; the script waits until the
#                          router sends writes to the new leader, and the pools resume.
#                          Refused for a member that is not streaming or lags.
#   failover MEMBER        promote MEMBER now, whatever the leader's state (when no leader is
#                          healthy); clients see the outage until MEMBER leads
#   restart MEMBER         restart MEMBER's PostgreSQL through Patroni; a leader first hands its
#                          role to a replica (switchover, as above), so no write waits on a restart
#   restart --in-place MEMBER
#                          restart MEMBER's PostgreSQL where it is, even if it leads: for a setting
#                          the primary must run first (a lowered hot-standby minimum such as
#                          max_connections). While the leader restarts, PgBouncer's pools are
#                          paused as for a switchover: writes wait for the restart, none fails.
#   reinit MEMBER          wipe a replica's data and clone it again from the leader or the backups
#   pause | resume         stop or restart Patroni's automatic failover (maintenance mode)
#   pause-delayed          hold the delayed replica's replay where it is (delayedReplicaMinutes), so
#                          that a mistake still ahead of it never reaches it. Automatic failover is
#                          off until resume-delayed: Patroni resumes a paused replay otherwise
#   resume-delayed         resume the delayed replica's replay, and automatic failover
#   copy-delayed           start a writable copy of the delayed replica's data as far as it has
#                          replayed, beside it in its container, on a socket of its own, and print
#                          how to reach it (pg_dump a table from it, say). It needs the data's size
#                          free on the replica's volume. The replica replays on meanwhile, unless held
#   drop-delayed-copy      stop that copy and delete its files
#
# CLUSTER is the stack's Docker name prefix, <project>-<stack>; by default the
# Pulumi CLI's selected stack, e.g. obcms-database-staging. switchover uses
# PgBouncer's admin console over its socket, inside its container, with the
# password file the program put there. The paths below are the program's
# (components/render/paths.ts); test/unit/cluster-script.test.ts keeps them equal.
set -euo pipefail

PATRONI_CONF=/etc/obcms/patroni.yml
PATRONI_REST_URL=https://localhost:8008
TLS_CA=/etc/obcms/tls/ca.crt
SOCKET_DIR=/var/run/postgresql
PGBOUNCER_PORT=6432
PGPASS=/etc/obcms/pgpass
ROUTER_METRICS_URL=http://127.0.0.1:8404/metrics
ROUTER_READ_WRITE_BACKEND=postgres_rw
ROUTER_ADMIN_SOCKET=/var/run/postgresql/haproxy.sock
PATRONI_REST_PORT=8008
# The leader's hold on its stop during a switchover (components/render/patroni/switchover-hold.ts).
SWITCHOVER_HOLD_DIR=/tmp/obcms-switchover
# How long Patroni may take to answer a request; an armed hold lapses with it.
PATRONI_REQUEST_SECONDS=60
# How long a member's patronictl may take to answer before the next member is tried.
PATRONICTL_SECONDS=10
# How long a switchover may hold the pools before the script gives up and resumes them (tenths of a second).
SWITCHOVER_TENTHS=300
PGDATA=/var/lib/postgresql/data/pgdata
PG_BIN=/usr/lib/postgresql/17/bin
# The delayed replica's copy, on its volume beside its data: the copy's data directory, its log, and its socket.
DELAYED_COPY=/var/lib/postgresql/data/delayed-copy

usage() { sed -n '6,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

# shellcheck source=lib/stack.sh
. "$(dirname "$0")/lib/stack.sh"
stack_from_options "$@"
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
pgbouncer="$cluster-pgbouncer"


# The first running member whose patronictl answers within PATRONICTL_SECONDS,
# to run patronictl in (it asks etcd and every member's REST API): in a member
# cut off from the network it waits on etcd without end.
member_in_reach() {
  local member
  for member in $(members); do
    [ "$(docker inspect --format '{{.State.Running}}' "$member")" = true ] || continue
    docker exec "$member" timeout "$PATRONICTL_SECONDS" patronictl -c "$PATRONI_CONF" list >/dev/null 2>&1 && { echo "$member"; return 0; }
  done
  die "no running member of $cluster reaches etcd within ${PATRONICTL_SECONDS} s"
}
# Chosen once per run, in the main shell: every patronictl call below runs there.
in_reach=""
reach() { in_reach="$(member_in_reach)"; }

patronictl_() { docker exec "$in_reach" patronictl -c "$PATRONI_CONF" "$@"; }

# One line per member, tab-separated: name, role (leader/replica), state, timeline, lag in MB, and
# whether it never leads (its nofailover tag: the delayed replica).
# jq runs in the member's container: the operator's machine needs only docker, bash and awk.
member_lines() {
  docker exec "$in_reach" sh -c "patronictl -c $PATRONI_CONF list --format json | jq -r '.[] | [.Member,
    (if .Role == \"Leader\" then \"leader\" else \"replica\" end), .State, (.TL // \"\" | tostring),
    (.[\"Lag in MB\"] // \"\" | tostring), ((.Tags | objects | .nofailover) // false | tostring)] | @tsv'"
}

leader_name() { member_lines | awk -F '\t' '$2 == "leader" && $3 == "running" { print $1 }'; }

# Exits non-zero unless MEMBER is a replica that streams within Patroni's lag bound for a failover.
check_candidate() {
  local member="$1" line state lag bound
  line="$(member_lines | awk -F '\t' -v m="$member" '$1 == m')"
  [ -n "$line" ] || die "no member $member in the cluster (members: $(member_lines | cut -f1 | tr '\n' ' '))"
  [ "$(cut -f2 <<<"$line")" = replica ] || die "$member already leads"
  [ "$(cut -f6 <<<"$line")" != true ] || die "refusing to switch over to $member: it never leads (nofailover)"
  state="$(cut -f3 <<<"$line")"
  [ "$state" = streaming ] || die "refusing to switch over to $member: it is $state, not streaming"
  lag="$(cut -f5 <<<"$line")"
  bound="$(patronictl_ show-config | awk '$1 == "maximum_lag_on_failover:" { print $2 }')"
  if [ -n "$bound" ] && [ $((${lag:-0} * 1048576)) -gt "$bound" ]; then
    die "refusing to switch over to $member: it lags ${lag} MB behind the leader (bound: $((bound / 1048576)) MB)"
  fi
}

ADMIN_PSQL="psql -X -q -h $SOCKET_DIR -p $PGBOUNCER_PORT -U pgbouncer -d pgbouncer"

# PgBouncer's admin console, over its socket inside its container; psql finds the password in the container's PGPASS.
admin() {
  docker exec -e "PGPASSFILE=$PGPASS" "$pgbouncer" sh -c "$ADMIN_PSQL -c \"$1\""
}

# awk over the router's metrics: true once its read-write route has member m up and no other server up.
# shellcheck disable=SC2016 # awk's own variables
ROUTED_TO_MEMBER='
  index($0, "haproxy_server_status{proxy=\"" backend "\",") == 1 && / 1$/ && /state="UP"/ {
    if (index($0, "server=\"" m "\"")) target = 1; else other = 1
  }
  END { exit !(target && !other) }'

# Inside PgBouncer's container, so no look costs a docker exec: asks MEMBER's Patroni, 20 ms after
# each answer, whether its PostgreSQL takes writes (what the router's read-write check asks) and, once it does,
# tells the router's runtime API rather than wait for the router's checks: MEMBER is up (its next
# check came up to 0.5 s later), and the OLD leader, if one is named, down (its checks failed up to
# 0.75 s later: its Patroni answered as the leader until it released the key, which MEMBER now
# holds). Then reads the router's metrics until its read-write route sends writes to MEMBER alone,
# and RESUMEs the pools at once. Gives up after SWITCHOVER_TENTHS without resuming (the caller's
# trap does). Run it in the background: the subshell becomes the docker exec, which the caller can
# stop. Usage: resume_when_routed MEMBER [OLD]
resume_when_routed() {
  # shellcheck disable=SC2016 # expanded by the container's sh
  exec docker exec -e "PGPASSFILE=$PGPASS" "$pgbouncer" sh -c '
    end=$(($(date +%s) + $2 / 10))
    marked=
    while [ "$(date +%s)" -lt "$end" ]; do
      if [ -z "$marked" ] && curl -fs --max-time 1 --cacert "$7" "https://$8/primary" | grep -qF "\"role\": \"primary\""; then
        marked=1
        # One line: the runtime API runs the commands of one line, separated by semicolons.
        echo "set server $4/$1 health up${10:+; set server $4/${10} health down}" | socat stdio "unix-connect:$9" >/dev/null
      fi
      if [ -n "$marked" ] && curl -fs --max-time 1 "$3" | awk -v backend="$4" -v m="$1" "$5"; then exec $6 -c RESUME; fi
      sleep 0.02
    done
    exit 1' sh "$1" "$SWITCHOVER_TENTHS" "$ROUTER_METRICS_URL" "$ROUTER_READ_WRITE_BACKEND" "$ROUTED_TO_MEMBER" "$ADMIN_PSQL" \
    "$TLS_CA" "$cluster-$1:$PATRONI_REST_PORT" "$ROUTER_ADMIN_SOCKET" "${2:-}"
}

# Arms LEADER's hold on its stop (switchover-hold.ts) for as long as the switchover request may
# take: Patroni's before_stop command then waits for the pools to be paused. Exits 3 if LEADER's
# patroni.yml has no such command: a member deployed before it, which an update replaces.
arm_hold() {
  local d="$SWITCHOVER_HOLD_DIR"
  docker exec "$cluster-$1" sh -c "grep -q '^  before_stop: ' $PATRONI_CONF || exit 3; rm -rf $d && mkdir $d && echo \$((\$(date +%s) + $PATRONI_REQUEST_SECONDS)) > $d/armed.new && mv $d/armed.new $d/armed"
}

disarm_hold() { docker exec "$cluster-$1" rm -rf "$SWITCHOVER_HOLD_DIR"; }

# PAUSEs PgBouncer's pools when LEADER's Patroni is about to stop its PostgreSQL, and releases the
# stop once they are paused: in the leader's container, a watch for the hook's `stopping`, which
# tells PgBouncer's container over a pipe; PAUSE there, whose `paused` comes back over the FIFO
# LINK and is left where the hook looks. Ends with the arming if no stop comes. Exits non-zero
# unless PgBouncer paused.
pause_when_stopping() {
  local d="$SWITCHOVER_HOLD_DIR"
  # shellcheck disable=SC2094 # the FIFO carries `paused` back to the start of the pipeline, by design
  docker exec -i "$cluster-$1" sh -c "while [ ! -f $d/stopping ] && [ -f $d/armed ]; do sleep 0.01; done
    [ -f $d/stopping ] || exit 1
    echo stopping; read -r _ && touch $d/paused" <"$2" |
    docker exec -i -e "PGPASSFILE=$PGPASS" "$pgbouncer" sh -c "read -r _ && $ADMIN_PSQL -c PAUSE && echo paused" >"$2"
}

# POSTs JSON to PATH on MEMBER's Patroni REST API, which answers once it is
# done (within PATRONI_REQUEST_SECONDS); prints the answer. curl, not patronictl,
# which took over a second to start on 2 busy cores; the REST credentials are
# read from the member's patroni.yml inside its container and reach curl on a pipe.
patroni_post() {
  # shellcheck disable=SC2016 # expanded by the container's sh
  docker exec "$cluster-$1" sh -c 'python3 -c "$0" "$1" | curl -sS --fail-with-body --max-time "$4" --cacert "$2" --config - --json "$3" "$5"' \
    'import json, sys, yaml; a = yaml.safe_load(open(sys.argv[1]))["restapi"]["authentication"]; print("user = " + json.dumps(a["username"] + ":" + a["password"], ensure_ascii=False))' \
    "$PATRONI_CONF" "$TLS_CA" "$3" "$PATRONI_REQUEST_SECONDS" "$PATRONI_REST_URL$2"
}

# Asks LEADER's Patroni to hand the lead to CANDIDATE.
request_switchover() { patroni_post "$1" /switchover "{\"leader\": \"$1\", \"candidate\": \"$2\"}"; }

# Restarts the leader's PostgreSQL where it is, its lead kept, with the pools
# paused from before its shutdown until the router sends writes to it again.
restart_leader_in_place() {
  local leader="$1" answer
  admin PAUSE
  # Whatever happens next, the clients must not stay paused.
  trap "admin RESUME || true" EXIT
  answer="$(patroni_post "$leader" /restart '{"role": "primary"}' 2>&1)" || die "Patroni did not restart $leader: $answer; resuming"
  # A subshell: resume_when_routed replaces its shell with the docker exec.
  (resume_when_routed "$leader") || die "the router did not send writes to $leader within $((SWITCHOVER_TENTHS / 10)) s; resuming"
  trap - EXIT
  echo "$leader restarted in place"
}

switchover() {
  local candidate="${1:-}" leader reply request resumer
  leader="$(leader_name)"
  [ -n "$leader" ] || die "no member leads: use failover MEMBER"
  if [ -n "$candidate" ]; then
    check_candidate "$candidate"
  else
    candidate="$(member_lines | awk -F '\t' '$2 == "replica" && $3 == "streaming" && $6 != "true" { print $1; exit }')"
    [ -n "$candidate" ] || die "no streaming replica to switch over to"
    check_candidate "$candidate"
  fi
  reply="$(mktemp)"
  link="$(mktemp -u)"
  mkfifo "$link"
  # Whatever happens next, the clients must not stay paused, nor the leader's stop held.
  trap "disarm_hold '$leader' || true; admin RESUME || true; rm -f '$reply' '$link'" EXIT
  # Clients keep committing while Patroni checks the candidate and checkpoints:
  # the pools are paused only when the leader's PostgreSQL is about to stop.
  pauser=
  if arm_hold "$leader"; then
    pause_when_stopping "$leader" "$link" &
    pauser=$!
  elif [ $? -eq 3 ]; then
    # A leader that cannot hold its stop: the pools are paused first, for the whole switchover.
    admin PAUSE
  else
    die "could not arm $leader's hold on its stop"
  fi
  # Patroni answers once the candidate leads, up to a second late (it polls its
  # own result): the router is watched meanwhile, and the pools resume as soon
  # as it sends writes to the candidate.
  request_switchover "$leader" "$candidate" >"$reply" 2>&1 &
  request=$!
  resume_when_routed "$candidate" "$leader" &
  resumer=$!
  # On a failure the watches stop here; in the containers they run out on their own, and
  # a RESUME of pools that are no longer paused is refused and changes nothing.
  trap "kill $resumer $pauser 2>/dev/null || true; disarm_hold '$leader' || true; admin RESUME || true; rm -f '$reply' '$link'" EXIT
  while kill -0 "$resumer" 2>/dev/null; do
    if [ -n "$request" ] && ! kill -0 "$request" 2>/dev/null; then
      wait "$request" || die "Patroni refused the switchover to $candidate: $(cat "$reply"); resuming"
      request=
    fi
    sleep 0.1
  done
  wait "$resumer" || die "the router did not send writes to $candidate within $((SWITCHOVER_TENTHS / 10)) s; resuming"
  trap "rm -f '$reply' '$link'" EXIT
  if [ -n "$pauser" ]; then
    # The hook cleared the arming when it ran; if it did not, this ends the watch for it.
    disarm_hold "$leader" || true
    wait "$pauser" ||
      echo "cluster.sh: PgBouncer did not pause before $leader stopped: a transaction running then may have failed" >&2
  fi
  [ -z "$request" ] || wait "$request" || die "the router sends writes to $candidate, but Patroni answered: $(cat "$reply")"
  echo "$candidate leads (was $leader)"
}

delayed="$cluster-pg-delayed"

require_delayed() {
  docker inspect --format '{{.State.Running}}' "$delayed" 2>/dev/null | grep -qx true ||
    die "$cluster has no running delayed replica ($delayed): set delayedReplicaMinutes"
}

# SQL on the delayed replica, over its socket, as the superuser; prints the bare value.
delayed_sql() { docker exec -u postgres "$delayed" psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -d postgres -c "$1"; }

# Python, run as postgres in the delayed replica's container: copies its data directory inside a
# base backup (pg_backup_start/stop, which a standby takes at its last restartpoint), then the
# WAL up to the backup's end, which the replica received before replaying it. What the running
# server alone uses is left out, as the manual's low-level backup says. pg_control goes last:
# a standby's backup ends at the minimum recovery point that pg_control records, which covers
# every page flushed before it. The backup's end (pg_backup_stop's LSN, that point when the
# backup stopped) is the end of the copy's WAL: what the replica received beyond it, not
# replayed yet, is zeroed, which PostgreSQL reads as the end of WAL. Prints that LSN.
# shellcheck disable=SC2016 # Python
COPY_DATA='
import os, shutil, sys, psycopg2
pgdata, data, socket = sys.argv[1:4]
control = os.path.join(pgdata, "global", "pg_control")
SKIPPED = {"postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal", "backup_label", "pg_wal"}
EMPTIED = {"pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans"}
def copy_tree(source, target, top):
    os.mkdir(target, 0o700)
    for entry in os.scandir(source):
        if (top and entry.name in SKIPPED) or entry.name.startswith("pgsql_tmp") or entry.path == control:
            continue
        into = os.path.join(target, entry.name)
        try:
            if top and entry.name in EMPTIED:
                os.mkdir(into, 0o700)
            elif entry.is_dir(follow_symlinks=False):
                copy_tree(entry.path, into, False)
            else:
                shutil.copy2(entry.path, into)
        except FileNotFoundError:
            pass  # dropped during the copy: replay from the backup start redoes it
db = psycopg2.connect(host=socket, dbname="postgres")
db.autocommit = True
cursor = db.cursor()
cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = %s", ("wal_segment_size",))
segment_size = cursor.fetchone()[0]
cursor.execute("SELECT pg_backup_start(%s, true)", ("obcms-database delayed copy",))
copy_tree(pgdata, data, True)
shutil.copy2(control, os.path.join(data, "global", "pg_control"))
cursor.execute("SELECT lsn::text, labelfile FROM pg_backup_stop(false)")
lsn, label = cursor.fetchone()
with open(os.path.join(data, "backup_label"), "w") as f:
    f.write(label)
high, low = (int(part, 16) for part in lsn.split("/"))
segment, end = divmod((high << 32) | low, segment_size)
last = "%08X%08X" % divmod(segment, 0x100000000 // segment_size)
os.mkdir(os.path.join(data, "pg_wal"), 0o700)
os.mkdir(os.path.join(data, "pg_wal", "archive_status"), 0o700)
for name in os.listdir(os.path.join(pgdata, "pg_wal")):
    if name.endswith(".history") or (len(name) == 24 and name[8:] <= last):
        copied = shutil.copy2(os.path.join(pgdata, "pg_wal", name), os.path.join(data, "pg_wal", name))
        if name[8:] == last:
            with open(copied, "r+b") as f:
                f.seek(end)
                f.write(bytes(segment_size - end))
open(os.path.join(data, "recovery.signal"), "w").close()
print(lsn)
'

# The copy runs on the replica's binaries and configuration, with what makes it a copy: no TCP,
# its own socket, no archiving, no delay, recovery to the end of its own WAL and nothing from the
# repository, which holds what came after, then promotion (a new timeline, its own), and small
# shared buffers beside the replica's.
COPY_OPTIONS="-c listen_addresses='' -c unix_socket_directories=$DELAYED_COPY -c archive_mode=off \
-c restore_command=false -c recovery_min_apply_delay=0 -c shared_buffers=128MB -c cluster_name=pg-delayed-copy"

copy_delayed() {
  local needed free lsn
  require_delayed
  docker exec "$delayed" test ! -e "$DELAYED_COPY" || die "a copy exists already in $delayed:$DELAYED_COPY: drop-delayed-copy first"
  needed="$(docker exec "$delayed" du -sk "$PGDATA" | cut -f1)"
  free="$(docker exec "$delayed" df -Pk "$(dirname "$DELAYED_COPY")" | awk 'NR == 2 { print $4 }')"
  [ "$free" -gt "$needed" ] || die "the copy needs $((needed / 1024)) MB on $delayed's volume, which has $((free / 1024)) MB free"
  docker exec -u postgres "$delayed" mkdir -m 700 "$DELAYED_COPY"
  lsn="$(docker exec -u postgres "$delayed" python3 -c "$COPY_DATA" "$PGDATA" "$DELAYED_COPY/data" "$SOCKET_DIR")" ||
    die "copying $delayed's data failed; drop-delayed-copy removes what was copied"
  docker exec -u postgres "$delayed" "$PG_BIN/pg_ctl" -D "$DELAYED_COPY/data" -l "$DELAYED_COPY/postgresql.log" -w -t 600 \
    -o "$COPY_OPTIONS" start >/dev/null || {
    docker exec "$delayed" tail -n 5 "$DELAYED_COPY/postgresql.log" >&2
    die "the copy did not start: see $delayed:$DELAYED_COPY/postgresql.log"
  }
  local waited=0
  until [ "$(docker exec -u postgres "$delayed" psql -X -A -t -h "$DELAYED_COPY" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    [ "$waited" -lt 600 ] || die "the copy did not finish its recovery within 600 s: see $delayed:$DELAYED_COPY/postgresql.log"
    sleep 1
    waited=$((waited + 1))
  done
  echo "a writable copy of $delayed, as it had replayed up to WAL $lsn, runs; reach it with:"
  echo "  docker exec -it -u postgres $delayed psql -h $DELAYED_COPY -d DATABASE"
}

drop_delayed_copy() {
  require_delayed
  docker exec "$delayed" test -e "$DELAYED_COPY" || die "no copy in $delayed:$DELAYED_COPY"
  if docker exec -u postgres "$delayed" test -e "$DELAYED_COPY/data/postmaster.pid"; then
    docker exec -u postgres "$delayed" "$PG_BIN/pg_ctl" -D "$DELAYED_COPY/data" -m fast -w stop >/dev/null
  fi
  docker exec -u postgres "$delayed" rm -rf "$DELAYED_COPY"
  echo "the copy of $delayed is gone"
}

case "$1" in
  status)
    [ $# -eq 1 ] || usage
    reach
    { printf 'MEMBER\tROLE\tSTATE\tTIMELINE\tLAG_MB\n'; member_lines; } | awk -F '\t' '{ printf "%-10s %-8s %-10s %-9s %s\n", $1, $2, $3, $4, $5 }'
    ;;
  switchover)
    [ $# -le 2 ] || usage
    reach
    switchover "${2:-}"
    ;;
  failover)
    [ $# -eq 2 ] || usage
    reach
    patronictl_ failover --candidate "$2" --force
    ;;
  restart)
    if [ "${2:-}" = --in-place ]; then
      [ $# -eq 3 ] || usage
      reach
      if [ "$(leader_name)" = "$3" ]; then
        restart_leader_in_place "$3"
      else
        patronictl_ restart "$cluster" "$3" --force
      fi
      exit 0
    fi
    [ $# -eq 2 ] || usage
    reach
    if [ "$(leader_name)" = "$2" ]; then
      switchover ""
    fi
    patronictl_ restart "$cluster" "$2" --force
    ;;
  reinit)
    [ $# -eq 2 ] || usage
    reach
    patronictl_ reinit "$cluster" "$2" --force --wait
    ;;
  pause | resume)
    [ $# -eq 1 ] || usage
    reach
    patronictl_ "$1" --wait
    ;;
  pause-delayed)
    [ $# -eq 1 ] || usage
    require_delayed
    reach
    patronictl_ pause --wait >/dev/null
    delayed_sql "SELECT pg_wal_replay_pause()" >/dev/null
    echo "$delayed replays nothing more, as of $(delayed_sql "SELECT coalesce(pg_last_xact_replay_timestamp()::text, 'no commit yet')"); automatic failover is off until resume-delayed"
    ;;
  resume-delayed)
    [ $# -eq 1 ] || usage
    require_delayed
    reach
    delayed_sql "SELECT pg_wal_replay_resume()" >/dev/null
    patronictl_ resume --wait >/dev/null
    echo "$delayed replays again; automatic failover is on"
    ;;
  copy-delayed)
    [ $# -eq 1 ] || usage
    copy_delayed
    ;;
  drop-delayed-copy)
    [ $# -eq 1 ] || usage
    drop_delayed_copy
    ;;
  *) usage ;;
esac
