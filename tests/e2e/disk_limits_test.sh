#!/usr/bin/env bash
# Disk limits against the real daemon, with its state (--db) and workspace root
# each on a small tmpfs this test mounts (16 MiB), filled with dd and freed:
#   - --workspace-quota on a file system without project quotas: one start-up
#     warning, a login banner (seen by the real ssh client), the usage in
#     GET /workspaces and /metrics, the WorkspaceOverQuota alert, over_quota in the API;
#   - below --min-free-disk a create is a 507 naming the file system, and the
#     DiskAlmostFull alert fires; freed, both recover;
#   - a completely full state disk: store writes answer 507, reads still work,
#     writes work again once freed, and the database passes integrity_check.
# Usage: disk_limits_test.sh path/to/sandman   (root: it mounts file systems)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
[ "$(id -u)" = 0 ] || fail "this suite mounts tmpfs file systems and must run as root"
for t in sqlite3 dd mount umount; do command -v "$t" >/dev/null || fail "required tool '$t' is not installed"; done

MOUNTS=()
# The daemon goes first (it holds the store open), then the mounts, then the usual cleanup.
disk_cleanup() {
  local rc=$?
  set +e
  stop_daemon >/dev/null 2>&1
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  (exit "$rc")
  e2e_cleanup
}
trap disk_cleanup EXIT
for d in "$E2E_TMP/state" "$WS"; do
  mount -t tmpfs -o size=16m,mode=0755 tmpfs "$d" || fail "cannot mount a tmpfs on $d"
  MOUNTS+=("$d")
done

# Disk rules with their waits cut to 0s: the built-in thresholds, testable in seconds.
RULES=$E2E_TMP/rules.json
jq '.rules |= map(select(.name == "DiskAlmostFull" or .name == "WorkspaceOverQuota") | .for = "0s")' \
  "$(dirname "${BASH_SOURCE[0]}")/../../deploy/alert-rules.json" >"$RULES" || fail "cannot write $RULES"

start_daemon --gpu-backend none --workspace-quota 2m --min-free-disk 4m --workspace-usage-interval 1s \
  --telemetry-interval 1s --alert-rules "$RULES"
grep -q -- "--workspace-quota 2m is NOT enforced.*tmpfs, which has no project quotas" "$DAEMON_LOG" ||
  fail "no start-up warning that the quota is not enforced on tmpfs"
assert_eq "$(grep -c 'is NOT enforced' "$DAEMON_LOG")" 1 "one start-up warning line"

mkuser A dska
mkuser B dskb
create_session "$A"
SID_A=$SID
PORT_A=$SSH_PORT
KEY_A=$KEY
wait_ssh "$PORT_A" "$A" "$KEY_A" || fail "session of $A never answered ssh"
out=$(ssh "${SSH_OPTS[@]/LogLevel=ERROR/LogLevel=INFO}" -i "$KEY_A" -p "$PORT_A" "$A@127.0.0.1" true 2>&1 </dev/null)
assert_contains "$out" "has a 2 MiB quota that this host cannot enforce" "login banner before the workspace is full"

note "the user writes 3 MiB into /workspace (quota 2 MiB)"
sshc "$PORT_A" "$A" "$KEY_A" "dd if=/dev/zero of=/workspace/data/blob bs=1M count=3 status=none && sync" ||
  fail "writing into /workspace failed"
over=
for i in $(seq 60); do
  api GET "/api/v1/users/$A/workspace"
  [ "$CODE" = 200 ] && [ "$(jb .over_quota)" = true ] && { over=1; break; }
  sleep 0.5
done
[ -n "$over" ] || fail "workspace of $A never shown over quota: $CODE $BODY"
used=$(jb .used_bytes)
[ "$used" -ge $((3 << 20)) ] || fail "used_bytes $used is less than the 3 MiB written"
assert_eq "$(jb .quota_bytes)" $((2 << 20)) "quota_bytes"
assert_eq "$(jb .quota_enforced)" false "quota_enforced on tmpfs"
assert_eq "$(jb .method)" walk "usage method without project quotas"
note "measured $used bytes for 3 MiB written ($(jb .measured_at))"
api GET /api/v1/workspaces
assert_code 200 "GET /workspaces"
assert_eq "$(jb .over_quota)" 1 "workspaces over quota"
assert_contains "$(jb .quota.note)" "not enforced" "quota note"
assert_eq "$(jb '.filesystems | length')" 2 "state and workspace file systems listed apart"

# /metrics reads the sampler's snapshot, up to one --telemetry-interval behind the API.
for i in $(seq 20); do
  metrics=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$API/metrics") || fail "GET /metrics failed"
  [[ "$metrics" == *"sandman_workspaces_over_quota 1"* ]] && break
  sleep 0.5
done
assert_contains "$metrics" "sandman_workspace_bytes{user_id=\"$A\"} $used" "per-user workspace series"
assert_contains "$metrics" "sandman_workspaces_over_quota 1" "over-quota count"
assert_contains "$metrics" "sandman_filesystem_avail_bytes{filesystem=\"workspace\",path=\"$WS\"}" "workspace fs series"

for i in $(seq 40); do
  api GET "/api/v1/alerts"
  [ "$(jb "[.alerts[] | select(.rule == \"WorkspaceOverQuota\" and .state == \"firing\")] | length")" = 1 ] && break
  sleep 0.5
done
assert_eq "$(jb "[.alerts[] | select(.rule == \"WorkspaceOverQuota\" and .state == \"firing\")][0].labels.user_id")" "$A" \
  "WorkspaceOverQuota firing for $A"
for i in $(seq 20); do
  out=$(ssh "${SSH_OPTS[@]/LogLevel=ERROR/LogLevel=INFO}" -i "$KEY_A" -p "$PORT_A" "$A@127.0.0.1" true 2>&1 </dev/null)
  [[ "$out" == *"over its 2 MiB quota"* ]] && break
  sleep 0.5
done
assert_contains "$out" "over its 2 MiB quota (not enforced on this host)" "login banner of a running session once over quota"

note "the state file system drops below --min-free-disk 4m and below 10% free"
dd if=/dev/zero of="$E2E_TMP/state/filler" bs=1M count=15 status=none 2>/dev/null
df -B1 --output=avail "$E2E_TMP/state" | tail -1 | xargs -I{} echo "-- state fs available: {} bytes"
api POST /api/v1/sessions "{\"user_id\":\"$B\"}"
assert_code 507 "create below --min-free-disk"
assert_eq "$(jb .code)" insufficient_storage "error code"
assert_contains "$(jb .error)" "the state file system ($E2E_TMP/state)" "507 names the file system"
assert_contains "$(jb .error)" "below --min-free-disk 4 MiB" "507 names the floor"
for i in $(seq 40); do
  api GET "/api/v1/alerts"
  [ "$(jb "[.alerts[] | select(.rule == \"DiskAlmostFull\" and .state == \"firing\")] | length")" = 1 ] && break
  sleep 0.5
done
assert_eq "$(jb "[.alerts[] | select(.rule == \"DiskAlmostFull\" and .state == \"firing\")][0].labels.filesystem")" state \
  "DiskAlmostFull firing for the state file system"

note "the state file system fills up completely"
dd if=/dev/zero of="$E2E_TMP/state/filler2" bs=64k status=none 2>/dev/null  # until ENOSPC
refused=
for i in $(seq 200); do
  api PUT "/api/v1/users/$B/keys" "{\"public_key\":\"$(ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/k$i" >/dev/null && cat "$E2E_TMP/k$i.pub")\"}"
  if [ "$CODE" = 507 ] || [ "$CODE" = 503 ]; then refused=$CODE; break; fi
  [ "$CODE" = 201 ] || [ "$CODE" = 200 ] || fail "PUT key on a full disk: unexpected $CODE $BODY"
done
[ -n "$refused" ] || fail "200 store writes fitted on a full disk"
assert_eq "$refused" 507 "a store write on a full disk"
assert_contains "$(jb .error)" "file system is full" "the full-disk error says so"
note "store write refused after $((i - 1)) accepted ones: $CODE $(jb .error)"
api GET "/api/v1/sessions/$SID_A"
assert_code 200 "reads work on a full disk"
keys_before=$(api GET "/api/v1/users/$B/keys"; jb 'length')

note "space is freed"
rm -f "$E2E_TMP/state/filler" "$E2E_TMP/state/filler2"
ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/kfinal" >/dev/null
api PUT "/api/v1/users/$B/keys" "{\"public_key\":\"$(cat "$E2E_TMP/kfinal.pub")\"}"
[ "$CODE" = 201 ] || [ "$CODE" = 200 ] || fail "store write after freeing space: $CODE $BODY"
api GET "/api/v1/users/$B/keys"
assert_eq "$(jb 'length')" $((keys_before + 1)) "every accepted key kept, the refused one absent, the new one there"
create_session "$B"
for i in $(seq 40); do
  api GET "/api/v1/alerts"
  [ "$(jb "[.alerts[] | select(.rule == \"DiskAlmostFull\")] | length")" = 0 ] && break
  sleep 0.5
done
assert_eq "$(jb "[.alerts[] | select(.rule == \"DiskAlmostFull\")] | length")" 0 "DiskAlmostFull resolved once freed"

stop_daemon
assert_eq "$(sqlite3 "$DB" 'PRAGMA integrity_check')" ok "store integrity after the full disk"
