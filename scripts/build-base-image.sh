#!/usr/bin/env bash
# Builds the debian:trixie-slim base image from Debian's own packages, for Docker
# engines that cannot pull from a registry (air-gapped hosts, our CI machines).
# Usage: scripts/build-base-image.sh [image-tag]   (default debian:trixie-slim)
set -euo pipefail

tag="${1:-debian:trixie-slim}"
suite="${tag##*:}"
suite="${suite%-slim}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$suite" "$rootfs" >/dev/null
# Same trim as the official slim images: no apt lists or package caches in the layer.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "built base image $tag from Debian $suite"
