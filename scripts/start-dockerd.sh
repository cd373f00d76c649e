#!/usr/bin/env bash
# Starts a Docker engine in the background on hosts without an init system
# (CI machines, containers); does nothing when an engine already answers.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
log="${DOCKERD_LOG:-/var/log/dockerd.log}"
# Containers cannot raise their open-files limit above the engine's own:
# PgBouncer needs one descriptor per client and server connection.
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
