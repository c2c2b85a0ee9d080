#!/usr/bin/env bash
# e2e: --container-disk where the storage driver can enforce it. A private
# dockerd runs with the btrfs driver on a btrfs loop file made here (the
# kernels here lack XFS quota, so overlay2 on xfs+pquota cannot be built),
# with the session image copied into it; `sandman serve` on that dockerd says
# the limit is on, the session's writable layer carries it (docker inspect),
# and inside the session a write past it fails while the session keeps
# running. (On this machine's own dockerd, overlay2 on ext4, the warning path
# is covered by session_hardening_test.sh.)
# Usage: writable_layer_limit_test.sh <path-to-sandman>
set -u
HERE=$(dirname "${BASH_SOURCE[0]}")
# btrfs counts the image's files against the limit too (about 280 MB here).
LIMIT_MB=512

[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (loop mount, dockerd)"; exit 1; }
for t in mkfs.btrfs dockerd losetup; do
  command -v "$t" >/dev/null || { echo "FAIL: '$t' is not installed (apt-get install btrfs-progs docker.io)"; exit 1; }
done
XFS=$(mktemp -d "${TMPDIR:-/tmp}/sandman-btrfs.XXXXXX")
XDPID=
xfs_down() {
  if [ -n "$XDPID" ] && kill -0 "$XDPID" 2>/dev/null; then
    # Everything on this private dockerd is this run's.
    DOCKER_HOST=unix://$XFS/docker.sock docker ps -aq | xargs -r env DOCKER_HOST="unix://$XFS/docker.sock" docker rm -f >/dev/null 2>&1
    DOCKER_HOST=unix://$XFS/docker.sock docker network ls -q --filter type=custom |
      xargs -r env DOCKER_HOST="unix://$XFS/docker.sock" docker network rm >/dev/null 2>&1
    kill -TERM "$XDPID"
    for _ in $(seq 100); do kill -0 "$XDPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$XDPID" 2>/dev/null
  fi
  XDPID=
  [ -n "${XBR:-}" ] && ip link del "$XBR" 2>/dev/null
  umount "$XFS/mnt" 2>/dev/null
  rm -rf "$XFS"
}
trap xfs_down EXIT

truncate -s 3G "$XFS/disk.img"
mkfs.btrfs -q "$XFS/disk.img" >/dev/null || { echo "FAIL: mkfs.btrfs"; exit 1; }
mkdir -p "$XFS/mnt" "$XFS/exec"
mount -o loop "$XFS/disk.img" "$XFS/mnt" || { echo "FAIL: mounting the btrfs loop file"; exit 1; }
# Its own default bridge: with --bridge none, dockerd deletes the host's docker0
# (the host dockerd's default bridge) at start-up.
HAD_DOCKER0=$(ip link show docker0 2>/dev/null)
XBR=sbx$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ip link add "$XBR" type bridge && ip addr add 10.213.91.1/24 dev "$XBR" && ip link set "$XBR" up ||
  { echo "FAIL: creating bridge $XBR"; exit 1; }
# A second containerd namespace keeps this dockerd's objects apart from the host's.
dockerd --data-root "$XFS/mnt/docker" --exec-root "$XFS/exec" --pidfile "$XFS/docker.pid" \
  -H "unix://$XFS/docker.sock" --bridge "$XBR" --iptables=false --storage-driver btrfs \
  --containerd-namespace "sandman-xfs" --containerd-plugins-namespace "sandman-xfs-plugins" \
  >"$XFS/dockerd.log" 2>&1 </dev/null &
XDPID=$!
for _ in $(seq 100); do DOCKER_HOST=unix://$XFS/docker.sock docker info >/dev/null 2>&1 && break; sleep 0.2; done
DOCKER_HOST=unix://$XFS/docker.sock docker info >/dev/null 2>&1 || { echo "FAIL: private dockerd did not start"; tail "$XFS/dockerd.log"; exit 1; }
if [ -n "$HAD_DOCKER0" ] && ! ip link show docker0 >/dev/null 2>&1; then
  echo "FAIL: the private dockerd removed the host's docker0"; exit 1
fi
IMAGE=${SANDMAN_E2E_IMAGE:-sandman-workspace:latest}
docker save "$IMAGE" | DOCKER_HOST=unix://$XFS/docker.sock docker load -q >/dev/null || { echo "FAIL: copying $IMAGE"; exit 1; }

export DOCKER_HOST=unix://$XFS/docker.sock SANDMAN_DOCKER_HOST=unix://$XFS/docker.sock
source "$HERE/lib.sh"
e2e_init "$@"
E2E_EXTRA_CLEANUP+=(xfs_down)
assert_eq "$(docker info -f '{{.Driver}}')" btrfs "the private dockerd's storage driver"

start_daemon --container-disk "${LIMIT_MB}m"
grep -q "session writable layers limited" "$DAEMON_LOG" || fail "start-up says the writable layer limit is on"
grep -q "NOT size-limited" "$DAEMON_LOG" && fail "start-up warned although the driver can limit"
mkuser U d
create_session "$U" '"ttl_minutes":10'
assert_eq "$(docker inspect -f '{{json .HostConfig.StorageOpt}}' "$CONTAINER")" "{\"size\":\"$((LIMIT_MB << 20))\"}" "StorageOpt"

note "writing past ${LIMIT_MB} MB inside the session"
out=$(sshc "$SSH_PORT" "$U" "$KEY" "dd if=/dev/zero of=/tmp/fill bs=1M count=$LIMIT_MB 2>&1; echo rc=\$?; echo used=\$(du -sm /tmp/fill | cut -f1)")
assert_contains "$out" "rc=1" "dd stops with an error"
assert_match "$out" "(No space left on device|Disk quota exceeded)" "the error says the layer is full"
used=$(sed -n 's/^used=//p' <<<"$out")
[ -n "$used" ] && [ "$used" -le "$LIMIT_MB" ] || fail "wrote $used MB into a ${LIMIT_MB} MB layer"
assert_eq "$(sshc "$SSH_PORT" "$U" "$KEY" 'rm /tmp/fill && echo alive')" alive "the session still works"
api DELETE "/api/v1/sessions/$SID"
assert_code 200 "delete"
stop_daemon
exit 0
