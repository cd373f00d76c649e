#!/usr/bin/env bash
# Cluster operations on a running stack, through the Docker engine that runs it:
# Patroni decides who leads; this script asks it, and holds PgBouncer's clients
# while the leader changes on purpose.
#
# Usage: scripts/cluster.sh [-c CLUSTER] COMMAND [ARGS]
#   status                 each member: name, role, state, timeline, lag (MB)
#   switchover [MEMBER]    hand the lead to MEMBER (default: the first streaming replica) with no
#                          client error: PgBouncer's pools are paused (running transactions
#                          finish, new ones wait), Patroni switches over, the script waits until
#                          the router sends writes to the new leader, and the pools resume.
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
# How long a member's patronictl may take to answer before the next member is tried.
PATRONICTL_SECONDS=10
# How long a switchover may hold the pools before the script gives up and resumes them (tenths of a second).
SWITCHOVER_TENTHS=300

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

# One line per member, tab-separated: name, role (leader/replica), state, timeline, lag in MB.
# jq runs in the member's container: the operator's machine needs only docker, bash and awk.
member_lines() {
  docker exec "$in_reach" sh -c "patronictl -c $PATRONI_CONF list --format json | jq -r '.[] | [.Member,
    (if .Role == \"Leader\" then \"leader\" else \"replica\" end), .State, (.TL // \"\" | tostring),
    (.[\"Lag in MB\"] // \"\" | tostring)] | @tsv'"
}

leader_name() { member_lines | awk -F '\t' '$2 == "leader" && $3 == "running" { print $1 }'; }

# Exits non-zero unless MEMBER is a replica that streams within Patroni's lag bound for a failover.
check_candidate() {
  local member="$1" line state lag bound
  line="$(member_lines | awk -F '\t' -v m="$member" '$1 == m')"
  [ -n "$line" ] || die "no member $member in the cluster (members: $(member_lines | cut -f1 | tr '\n' ' '))"
  [ "$(cut -f2 <<<"$line")" = replica ] || die "$member already leads"
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

# Inside PgBouncer's container, so no look costs a docker exec: reads the router's metrics every
# 50 ms until its read-write route sends writes to MEMBER alone, then RESUMEs the pools at once.
# Gives up after SWITCHOVER_TENTHS without resuming (the caller's trap does). Run it in the
# background: the subshell becomes the docker exec, which the caller can then stop.
resume_when_routed() {
  # shellcheck disable=SC2016 # expanded by the container's sh
  exec docker exec -e "PGPASSFILE=$PGPASS" "$pgbouncer" sh -c '
    checks=$(($2 * 2))
    while [ "$checks" -gt 0 ]; do
      if curl -fs --max-time 1 "$3" | awk -v backend="$4" -v m="$1" "$5"; then exec $6 -c RESUME; fi
      sleep 0.05
      checks=$((checks - 1))
    done
    exit 1' sh "$1" "$SWITCHOVER_TENTHS" "$ROUTER_METRICS_URL" "$ROUTER_READ_WRITE_BACKEND" "$ROUTED_TO_MEMBER" "$ADMIN_PSQL"
}

# POSTs JSON to PATH on MEMBER's Patroni REST API, which answers once it is
# done; prints the answer. Only curl runs while the pools are paused (patronictl
# took over a second to start on 2 busy cores); the REST credentials are read
# from the member's patroni.yml inside its container and reach curl on a pipe.
patroni_post() {
  # shellcheck disable=SC2016 # expanded by the container's sh
  docker exec "$cluster-$1" sh -c 'python3 -c "$0" "$1" | curl -sS --fail-with-body --max-time 60 --cacert "$2" --config - --json "$3" "$4"' \
    'import json, sys, yaml; a = yaml.safe_load(open(sys.argv[1]))["restapi"]["authentication"]; print("user = " + json.dumps(a["username"] + ":" + a["password"], ensure_ascii=False))' \
    "$PATRONI_CONF" "$TLS_CA" "$3" "$PATRONI_REST_URL$2"
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
    candidate="$(member_lines | awk -F '\t' '$2 == "replica" && $3 == "streaming" { print $1; exit }')"
    [ -n "$candidate" ] || die "no streaming replica to switch over to"
    check_candidate "$candidate"
  fi
  reply="$(mktemp)"
  admin PAUSE
  # Whatever happens next, the clients must not stay paused.
  trap "admin RESUME || true; rm -f '$reply'" EXIT
  # Patroni answers once the candidate leads, up to a second late (it polls its
  # own result): the router is watched meanwhile, and the pools resume as soon
  # as it sends writes to the candidate.
  request_switchover "$leader" "$candidate" >"$reply" 2>&1 &
  request=$!
  resume_when_routed "$candidate" &
  resumer=$!
  # On a failure the watch stops here; in the container it runs out on its own, and
  # a RESUME of pools that are no longer paused is refused and changes nothing.
  trap "kill $resumer 2>/dev/null || true; admin RESUME || true; rm -f '$reply'" EXIT
  while kill -0 "$resumer" 2>/dev/null; do
    if [ -n "$request" ] && ! kill -0 "$request" 2>/dev/null; then
      wait "$request" || die "Patroni refused the switchover to $candidate: $(cat "$reply"); resuming"
      request=
    fi
    sleep 0.1
  done
  wait "$resumer" || die "the router did not send writes to $candidate within $((SWITCHOVER_TENTHS / 10)) s; resuming"
  trap "rm -f '$reply'" EXIT
  [ -z "$request" ] || wait "$request" || die "the router sends writes to $candidate, but Patroni answered: $(cat "$reply")"
  echo "$candidate leads (was $leader)"
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
  *) usage ;;
esac
