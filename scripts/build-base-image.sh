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
# mktemp's 0700 would keep apt's download sandbox (user _apt) out of the chroot.
chmod 0755 "$rootfs"
debootstrap --variant=minbase "$suite" "$rootfs" >/dev/null
# debootstrap writes a one-line /etc/apt/sources.list with the release alone.
# Replace it with one deb822 file, as Debian's own images carry: the release,
# its updates suite and the security archive.
rm -f "$rootfs"/etc/apt/sources.list "$rootfs"/etc/apt/sources.list.d/*
cat > "$rootfs"/etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# debootstrap installs the release as published; bring in the fixes since.
chroot "$rootfs" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" \
  apt-get dist-upgrade -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 >/dev/null
# Same trim as the official slim images: no apt lists or package caches
# (debootstrap's downloaded .debs included) in the layer.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "built base image $tag from Debian $suite, $suite-updates and $suite-security"
