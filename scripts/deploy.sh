#!/usr/bin/env bash
# Deploys one stack to the local Docker engine, with Pulumi state kept in
# ./.pulumi-state (no Pulumi Cloud account needed).
# Usage: scripts/deploy.sh staging|production [extra `pulumi up` flags]
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${1:?usage: scripts/deploy.sh staging|production [pulumi up flags]}"
shift

command -v pulumi >/dev/null || { echo "the Pulumi CLI is needed: https://www.pulumi.com/docs/install/" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "a running Docker engine is needed (scripts/start-dockerd.sh starts one)" >&2; exit 1; }

# The project image builds FROM debian:trixie-slim: pull it, or build it from
# Debian's packages where no registry can be reached.
docker image inspect debian:trixie-slim >/dev/null 2>&1 \
  || docker pull debian:trixie-slim \
  || scripts/build-base-image.sh debian:trixie-slim

npm install --no-audit --no-fund  # not `npm ci`: see .ci/run
mkdir -p .pulumi-state
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
pulumi stack select --create "$stack"
pulumi up "$@"
