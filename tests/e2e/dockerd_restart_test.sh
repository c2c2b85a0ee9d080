#!/usr/bin/env bash
# e2e: dockerd restarted under live sessions. A private dockerd (its own data root, exec root,
# socket, default bridge and containerd namespace; the machine's own dockerd is never touched)
# serves `sandman serve`. While that dockerd is down the daemon keeps serving, says Docker is
# down (/readyz 503), ends no session for it, and refuses new ones without leaking a port or a
# GPU slice. With --live-restore the sessions are found again (same container, same GPU slice,
# SSH direct and through the gateway); without it their containers stop with dockerd, and the
# sessions are ended with a reason that says so, their ports and slices handed out again.
# Usage: dockerd_restart_test.sh <path-to-sandman>
set -u
HERE=$(dirname "${BASH_SOURCE[0]}")

[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (a private dockerd)"; exit 1; }
command -v dockerd >/dev/null || { echo "FAIL: 'dockerd' is not installed (apt-get install docker.io)"; exit 1; }
PD=$(mktemp -d "${TMPDIR:-/tmp}/sandman-pd.XXXXXX")
PD_SOCK=$PD/docker.sock
PDPID=
PBR=
HAD_DOCKER0=$(ip link show docker0 2>/dev/null)
pdocker() { DOCKER_HOST=unix://$PD_SOCK docker "$@"; }

# pd_start [dockerd flags...]: the private dockerd, on the same state every time.
pd_start() {
  dockerd --data-root "$PD/data" --exec-root "$PD/exec" --pidfile "$PD/docker.pid" \
    -H "unix://$PD_SOCK" --bridge "$PBR" --iptables=false \
    --containerd-namespace "sandman-pd-${PBR}" --containerd-plugins-namespace "sandman-pd-${PBR}-plugins" \
    "$@" >>"$PD/dockerd.log" 2>&1 </dev/null &
  PDPID=$!
  local i
  for i in $(seq 150); do pdocker info >/dev/null 2>&1 && break; sleep 0.2; done
  pdocker info >/dev/null 2>&1 || { echo "FAIL: private dockerd did not start"; tail "$PD/dockerd.log"; exit 1; }
  if [ -n "$HAD_DOCKER0" ] && ! ip link show docker0 >/dev/null 2>&1; then
    echo "FAIL: the private dockerd removed the host's docker0"; exit 1
  fi
}

# pd_stop: SIGTERM to our dockerd by pid, as an operator's restart would; waits for it to exit.
pd_stop() {
  [ -n "$PDPID" ] || return 0
  kill -TERM "$PDPID" 2>/dev/null
  local i
  for i in $(seq 300); do kill -0 "$PDPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PDPID" 2>/dev/null; then kill -9 "$PDPID" 2>/dev/null; fi
  wait "$PDPID" 2>/dev/null
  PDPID=
}

# drop_firewall IFACE: the daemon's iptables chains for a session bridge, and the jumps to them.
drop_firewall() {
  local iface=$1 ipt chain rule
  for ipt in iptables ip6tables; do
    for chain in INPUT FORWARD DOCKER-USER; do
      while read -r rule; do
        [ -n "$rule" ] && eval "$ipt -w ${rule/-A /-D }" 2>/dev/null
      done < <($ipt -S "$chain" 2>/dev/null | grep -- "-i $iface " | grep -e "-j SANDMAN-")
    done
    for chain in "SANDMAN-IN-$iface" "SANDMAN-EG-$iface"; do
      $ipt -w -F "$chain" 2>/dev/null && $ipt -w -X "$chain" 2>/dev/null
    done
  done
}

# pd_down: everything this run made on and around the private dockerd. The sandman daemon goes
# first (it talks to that dockerd), then what lives on the dockerd, then the dockerd itself.
pd_down() {
  if [ -n "${DPID:-}" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID"
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DPID" 2>/dev/null
  fi
  if [ -z "$PDPID" ] || ! kill -0 "$PDPID" 2>/dev/null; then
    # A dockerd is needed to find the network's bridge and remove the containers.
    [ -d "$PD/data" ] && [ -n "$PBR" ] && ip link show "$PBR" >/dev/null 2>&1 && (pd_start) >/dev/null 2>&1 &&
      PDPID=$(cat "$PD/docker.pid" 2>/dev/null)
  fi
  if [ -n "$PDPID" ] && kill -0 "$PDPID" 2>/dev/null; then
    local net iface
    # Everything on this private dockerd is this run's.
    pdocker ps -aq | xargs -r env DOCKER_HOST="unix://$PD_SOCK" docker rm -f >/dev/null 2>&1
    for net in $(pdocker network ls -q --filter type=custom); do
      iface=$(pdocker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$net" 2>/dev/null)
      [ -n "$iface" ] && [ "$iface" != "<no value>" ] || iface=br-$(pdocker network inspect -f '{{.Id}}' "$net" | cut -c1-12)
      drop_firewall "$iface"
      pdocker network rm "$net" >/dev/null 2>&1
    done
    kill -TERM "$PDPID"
    for _ in $(seq 150); do kill -0 "$PDPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PDPID" 2>/dev/null
  fi
  PDPID=
  # The containerd this dockerd started for itself (its own, under our exec root).
  local cpid; cpid=$(cat "$PD/exec/containerd/containerd.pid" 2>/dev/null)
  if [ -n "$cpid" ] && [ "$(readlink "/proc/$cpid/exe" 2>/dev/null)" = "$(command -v containerd)" ] &&
    grep -qF "$PD/exec" "/proc/$cpid/cmdline" 2>/dev/null; then
    kill -TERM "$cpid"
    for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$cpid" 2>/dev/null
  fi
  [ -n "$PBR" ] && ip link del "$PBR" 2>/dev/null
  # Mounts dockerd left under its roots (netns files, shm of a killed dockerd).
  grep -o " $PD/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$PD"
  # Nothing of this run lives on any other dockerd: the lib's own sweep has nothing left to do.
  SIDS=() USERS=() INSTANCES=() NET=
}
trap pd_down EXIT

# Its own default bridge: with --bridge none, dockerd deletes the host's docker0 at start-up.
PBR=sbr$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ip link add "$PBR" type bridge && ip addr add "10.214.$((RANDOM % 200 + 20)).1/24" dev "$PBR" && ip link set "$PBR" up ||
  { echo "FAIL: creating bridge $PBR"; exit 1; }
mkdir -p "$PD/data" "$PD/exec"
pd_start --live-restore
IMAGE=${SANDMAN_E2E_IMAGE:-sandman-workspace:latest}
docker save "$IMAGE" | pdocker load -q >/dev/null || { echo "FAIL: copying $IMAGE into the private dockerd"; exit 1; }

export DOCKER_HOST=unix://$PD_SOCK SANDMAN_DOCKER_HOST=unix://$PD_SOCK
source "$HERE/lib.sh"
e2e_init "$@"
E2E_EXTRA_CLEANUP+=(pd_down)

# readyz_code: HTTP status of /readyz (it asks Docker).
readyz_code() { curl -s -o "$E2E_TMP/ready" -w '%{http_code}' --max-time 10 "$API/readyz"; }
# mig_count: MIG instances the simulator shows now.
mig_count() { api GET /api/v1/gpus; jq '[.gpus[].mig_instances[]] | length' <<<"$BODY"; }
# session_field SID FILTER
session_field() { api GET "/api/v1/sessions/$1"; [ "$CODE" = 200 ] || fail "GET session $1: $CODE $BODY"; jb "$2"; }
REFUSED=() # users whose create was refused while dockerd was down
# all_sessions: every session the daemon lists but the refused ones, one "id status" a line, sorted.
all_sessions() {
  api GET /api/v1/sessions
  [ "$CODE" = 200 ] || fail "list sessions: $CODE $BODY"
  jq -r --arg refused " ${REFUSED[*]} " '(if type == "array" then . else .sessions end)[]
    | . as $s | select(($refused | contains(" " + $s.user_id + " ")) | not) | "\(.session_id) \(.status)"' <<<"$BODY" | sort
}

# Four ports only: handing out all four again after the outage proves they were released.
SSH_END=$((SSH_START + 3))
use_sim_fixture a100-40gb-mig-empty.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic
assert_eq "$(readyz_code)" 200 "/readyz with the private dockerd up"
NET_IFACE=br-$(pdocker network inspect -f '{{.Id}}' "$NET" | cut -c1-12)

# check_outage LABEL SID...: with the private dockerd down the daemon serves, says Docker is down,
# refuses a new session cleanly and ends none of SID....
check_outage() {
  local label=$1 sid
  shift
  assert_eq "$(readyz_code)" 503 "/readyz while dockerd is down ($label)"
  assert_contains "$(jq -r .checks.docker <"$E2E_TMP/ready")" "cannot reach Docker" "/readyz's Docker check ($label)"
  assert_eq "$(jq -r .checks.store <"$E2E_TMP/ready")" ok "/readyz store check ($label)"
  curl -fsS -o /dev/null --max-time 5 "$API/healthz" || fail "/healthz while dockerd is down ($label)"
  local before_mig; before_mig=$(mig_count)
  mkuser UX x
  api POST /api/v1/sessions "{\"user_id\":\"$UX\",\"mig_profile\":\"1g.5gb\",\"ttl_minutes\":10}"
  local xsid; xsid=$(jq -r '.session_id // empty' <<<"$BODY" 2>/dev/null)
  REFUSED+=("$UX")
  [ -n "$xsid" ] && SIDS+=("$xsid")
  [ "$CODE" = 503 ] || fail "create while dockerd is down ($label): expected 503, got $CODE: $BODY"
  assert_contains "$BODY" "Docker" "the refusal says Docker is the problem ($label)"
  assert_eq "$(mig_count)" "$before_mig" "MIG instances after the refused create ($label)"
  api GET /api/v1/sessions
  assert_eq "$(jq -r --arg u "$UX" '[(if type == "array" then . else .sessions end)[] | select(.user_id == $u) | .status] | unique | join(",")' <<<"$BODY")" failed \
    "the refused create's session record ($label)"
  # Longer than the daemon's periodic reconcile (30 s): an unreachable Docker must end nothing.
  note "waiting 35 s with dockerd down ($label)"
  local i
  for i in $(seq 7); do
    sleep 5
    curl -fsS -o /dev/null --max-time 5 "$API/healthz" || fail "/healthz during the outage ($label)"
  done
  for sid in "$@"; do
    assert_eq "$(session_field "$sid" .status)" running "status of $sid while dockerd is down ($label)"
  done
  grep -q "periodic reconcile failed" "$DAEMON_LOG" || fail "no periodic reconcile ran during the outage ($label)"
}

# ------------------------------------------------------------------ live-restore on
note "live-restore: two sessions, then dockerd stops (containers keep running)"
mkuser UA a
mkuser UB b
create_session "$UA" '"mig_profile":"1g.5gb","ttl_minutes":20'
SID_A=$SID PORT_A=$SSH_PORT KEY_A=$KEY CONT_A=$CONTAINER MIG_A=$(jb .gpu_uuid)
create_session "$UB" '"mig_profile":"1g.5gb","ttl_minutes":20'
SID_B=$SID PORT_B=$SSH_PORT KEY_B=$KEY CONT_B=$CONTAINER MIG_B=$(jb .gpu_uuid)
wait_ssh "$PORT_A" "$UA" "$KEY_A" 20 || fail "cannot ssh into $SID_A"
wait_ssh "$PORT_B" "$UB" "$KEY_B" 20 || fail "cannot ssh into $SID_B"
wait_gw "$UA" "$KEY_A" 20 || fail "cannot reach $SID_A through the gateway"
sshc "$PORT_A" "$UA" "$KEY_A" 'echo kept >/tmp/marker' || fail "writing a marker in $SID_A"
BEFORE=$(all_sessions)
assert_eq "$(mig_count)" 2 "MIG instances with two sessions"

pd_stop
pdocker info >/dev/null 2>&1 && fail "the private dockerd still answers after SIGTERM"
check_outage live-restore "$SID_A" "$SID_B"

note "live-restore: dockerd back; the sessions are found again"
pd_start --live-restore
assert_eq "$(readyz_code)" 200 "/readyz after dockerd came back (live-restore)"
assert_eq "$(pdocker inspect -f '{{.State.Running}}' "$CONT_A")" true "container of $SID_A after the restart"
assert_eq "$(pdocker inspect -f '{{.State.Running}}' "$CONT_B")" true "container of $SID_B after the restart"
# A full periodic reconcile after the restart must still keep both.
note "waiting 35 s for a periodic reconcile with dockerd back"
sleep 35
for s in "$SID_A:$CONT_A:$MIG_A:$PORT_A" "$SID_B:$CONT_B:$MIG_B:$PORT_B"; do
  IFS=: read -r sid cont mig port <<<"$s"
  api GET "/api/v1/sessions/$sid"
  assert_json ".status == \"running\" and .container_id == \"$cont\" and .gpu_uuid == \"$mig\" and .ssh_port == $port" \
    "$sid after the restart (same container, slice, port)"
  assert_eq "$(pdocker ps -aq --no-trunc --filter "label=sandman.session=$sid" | wc -l)" 1 "containers of $sid (none doubled)"
done
assert_eq "$(all_sessions)" "$BEFORE" "sessions after the restart (none lost, none added)"
assert_eq "$(mig_count)" 2 "MIG instances after the restart"
wait_ssh "$PORT_A" "$UA" "$KEY_A" 20 || fail "direct ssh into $SID_A after the restart"
wait_ssh "$PORT_B" "$UB" "$KEY_B" 20 || fail "direct ssh into $SID_B after the restart"
assert_eq "$(sshc "$PORT_A" "$UA" "$KEY_A" 'cat /tmp/marker')" kept "the session's own state survived"
assert_eq "$(sshg "$UA" "$KEY_A" 'cat /tmp/marker' </dev/null)" kept "gateway ssh into $SID_A after the restart"
assert_eq "$(sshg "$UB" "$KEY_B" 'echo gw-b' </dev/null)" gw-b "gateway ssh into $SID_B after the restart"
grep -qE "session container (gone|stopped)" "$DAEMON_LOG" && fail "the daemon thought a live container was gone"

note "the sessions end normally afterwards"
for sid in "$SID_A" "$SID_B"; do
  api DELETE "/api/v1/sessions/$sid"
  assert_code 200 "DELETE $sid after the restart"
done
assert_eq "$(mig_count)" 0 "MIG instances after deleting the live-restore sessions"
assert_eq "$(pdocker ps -aq --filter "label=sandman.instance" | wc -l)" 0 "containers left on the private dockerd"

# ------------------------------------------------------------------ live-restore off
note "no live-restore: dockerd restarted without it, three sessions, then dockerd stops (and so do they)"
pd_stop
pd_start
assert_eq "$(pdocker info -f '{{.LiveRestoreEnabled}}')" false "live-restore is off"
mkuser UC c
mkuser UD d
mkuser UE e
create_session "$UC" '"mig_profile":"1g.5gb","ttl_minutes":20'
SID_C=$SID PORT_C=$SSH_PORT CONT_C=$CONTAINER
create_session "$UD" '"mig_profile":"1g.5gb","ttl_minutes":20'
SID_D=$SID PORT_D=$SSH_PORT KEY_D=$KEY CONT_D=$CONTAINER
create_session "$UE" '"mig_profile":"1g.5gb","ttl_minutes":20'
SID_E=$SID CONT_E=$CONTAINER
wait_ssh "$PORT_D" "$UD" "$KEY_D" 20 || fail "cannot ssh into $SID_D"
wait_gw "$UD" "$KEY_D" 20 || fail "cannot reach $SID_D through the gateway"
assert_eq "$(mig_count)" 3 "MIG instances with three sessions"
BEFORE=$(all_sessions)

pd_stop
check_outage no-live-restore "$SID_C" "$SID_D" "$SID_E"
note "DELETE of $SID_E while dockerd is down: refused for now, finished once Docker is back"
api DELETE "/api/v1/sessions/$SID_E"
[ "$CODE" != 200 ] || fail "DELETE with dockerd down claimed success: $BODY"
assert_eq "$(session_field "$SID_E" .status)" stopping "$SID_E after the refused DELETE"

note "no live-restore: dockerd back; stopped sessions are ended with a reason"
pd_start
assert_eq "$(readyz_code)" 200 "/readyz after dockerd came back"
ended_all() {
  local sid
  for sid in "$SID_C" "$SID_D" "$SID_E"; do
    [ "$(session_field "$sid" .status)" = ended ] || return 1
  done
}
for _ in $(seq 45); do ended_all && break; sleep 1; done
ended_all || fail "sessions not ended within 45 s of dockerd's return: $(all_sessions)"
for sid in "$SID_C" "$SID_D"; do
  reason=$(session_field "$sid" .end_reason)
  assert_match "$reason" "container (stopped|exited)" "end_reason of $sid"
  assert_contains "$reason" "Docker" "end_reason of $sid says what happened"
done
assert_eq "$(session_field "$SID_E" .end_reason)" deleted "end_reason of $SID_E (deleted during the outage)"
for c in "$CONT_C" "$CONT_D" "$CONT_E"; do
  pdocker container inspect "$c" >/dev/null 2>&1 && fail "container $c left behind"
done
assert_eq "$(mig_count)" 0 "MIG instances after the sessions ended"
# None lost, none doubled: the same ids, now ended (the refused creates stay failed).
assert_eq "$(all_sessions | grep -E "^($SID_C|$SID_D|$SID_E) " | awk '{print $1}')" "$(awk '{print $1}' <<<"$BEFORE" | grep -E "^($SID_C|$SID_D|$SID_E)$")" \
  "sessions after the restart"
api GET /api/v1/sessions
assert_eq "$(jq '[(if type == "array" then . else .sessions end)[] | select(.status == "running" or .status == "starting" or .status == "stopping")] | length' <<<"$BODY")" 0 \
  "active sessions left"

note "their ports and slices are handed out again"
PORTS=()
for p in f g h i; do
  mkuser U "$p"
  create_session "$U" '"mig_profile":"1g.5gb","ttl_minutes":5'
  PORTS+=("$SSH_PORT")
  wait_ssh "$SSH_PORT" "$U" "$KEY" 20 || fail "cannot ssh into the new session $SID"
done
assert_eq "$(printf '%s\n' "${PORTS[@]}" | sort -n | tr '\n' ' ')" "$SSH_START $((SSH_START + 1)) $((SSH_START + 2)) $((SSH_END)) " \
  "ports of the four new sessions (all of the range)"
assert_eq "$(mig_count)" 4 "MIG instances of the new sessions"
assert_eq "$(readyz_code)" 200 "/readyz at the end"
stop_daemon
assert_eq "$DAEMON_RC" 0 "daemon exit status"
pd_down
E2E_EXTRA_CLEANUP=()
if [ -n "$HAD_DOCKER0" ]; then ip link show docker0 >/dev/null 2>&1 || fail "the host's docker0 is gone"; fi
ip link show "$PBR" >/dev/null 2>&1 && fail "bridge $PBR left behind"
iptables -S 2>/dev/null | grep -q -- "$NET_IFACE" && fail "iptables rules for $NET_IFACE left behind"
exit 0
