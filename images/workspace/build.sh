#!/usr/bin/env bash
# Builds the Sandman session image from Debian packages (no image registry):
# debootstrap a minimal bookworm rootfs, then `docker import` it. Cached by name.
#
#   images/workspace/build.sh [--force] [IMAGE]     (default sandman-workspace:latest)
#
# The package mirror is read from this machine's own apt sources, so no
# registry host name is written into the project.
set -euo pipefail

SUITE=bookworm
PACKAGES=openssh-server,bash,coreutils,procps,less,nano,python3,git,curl,rsync,ca-certificates

die() { echo "build.sh: $*" >&2; exit 1; }

force=0
image=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) die "unknown option: $arg" ;;
    *) image="$arg" ;;
  esac
done
image="${image:-${SANDMAN_IMAGE:-sandman-workspace:latest}}"

# The first non-security Debian mirror from the apt sources, one-line
# (sources.list, *.list) or deb822 (*.sources) format.
find_mirror() {
  local f uris=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    # deb [options] URI suite components
    while read -r uri; do uris+=("$uri"); done < <(
      sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f")
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    while read -r uri; do uris+=("$uri"); done < <(
      sed -E -n 's/^URIs:[[:space:]]*//p' "$f" | tr -s ' \t' '\n')
  done
  local uri
  for uri in "${uris[@]}"; do
    [[ "$uri" == *security* ]] && continue
    [[ "$uri" == *debian* ]] || continue
    echo "${uri%/}"
    return 0
  done
  return 1
}

command -v docker >/dev/null || die "docker not found; install it: apt-get install docker.io"
docker info >/dev/null 2>&1 || die "cannot reach Docker: is dockerd running (and may you use it)?"

if [[ "$force" -eq 0 ]] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "image $image already exists (cached; use --force to rebuild)"
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap needs it); try: sudo $0${*:+ $*}"
command -v debootstrap >/dev/null || die "debootstrap not found; install it: apt-get install debootstrap"

mirror="$(find_mirror)" || die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/"

workdir="$(mktemp -d /var/tmp/sandman-image.XXXXXX)"
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

echo "building $image from $SUITE via $mirror"
start=$SECONDS
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror"

# Sandman bind-mounts its own host key; a baked-in one would be shared by
# every container built from this image.
rm -f "$rootfs"/etc/ssh/ssh_host_*
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --message "sandman workspace ($SUITE, debootstrap minbase)" - "$image"
echo "built $image in $((SECONDS - start)) s"
