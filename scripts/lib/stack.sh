# Sourced by scripts/backup.sh and scripts/cluster.sh: which stack the
# operator means, and its members. Each script defines usage() and die().

# Sets `cluster`, the stack's Docker name prefix <project>-<stack>, from
# -c CLUSTER or else from the Pulumi CLI's selected stack; the caller then
# shifts its arguments by $((OPTIND - 1)).
stack_from_options() {
  cluster=""
  while getopts "c:h" opt; do
    case "$opt" in
      c) cluster="$OPTARG" ;;
      *) usage ;;
    esac
  done
  if [ -z "$cluster" ]; then
    command -v pulumi >/dev/null || die "no -c CLUSTER and no Pulumi CLI to find the stack"
    cluster="$(cd "$(dirname "$0")/.." && echo "obcms-database-$(pulumi stack --show-name)")"
  fi
}

# The PostgreSQL members' containers, in member order, running or not. Their
# names (<cluster>-pg-N) say which member, never which role.
members() { docker ps --all --format '{{.Names}}' --filter "name=^/$cluster-pg-[0-9]+$" | sort -V; }
