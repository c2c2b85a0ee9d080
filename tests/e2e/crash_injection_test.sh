#!/usr/bin/env bash
# Crash injection: the test daemon sandman-faults (built beside sandman by
# -DSANDMAN_FAULT_INJECTION=ON) kills itself with SIGKILL at a named step of
# create, stop, start-up reconcile, or MIG create/destroy ($SANDMAN_FAULT_POINT).
# After a restart nothing may leak (container, published port, MIG instance,
# gateway key / sshd files, firewall rule) and no session may be lost: every
# session is running (with its container, port and instance) or ended/failed
# with a reason; a bystander session survives every crash.
# Prints the matrix: point x outcome.
# Usage: crash_injection_test.sh path/to/sandman   (sandman-faults must sit beside it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

FAULTS=$(dirname "$SANDMAN")/sandman-faults
[ -x "$FAULTS" ] || fail "sandman-faults not built next to $SANDMAN (configure with -DSANDMAN_FAULT_INJECTION=ON)"
# The release daemon must carry no hook at all.
if grep -qa "SANDMAN_FAULT_POINT" "$SANDMAN"; then fail "the release binary $SANDMAN contains the fault hook"; fi
grep -qa "SANDMAN_FAULT_POINT" "$FAULTS" || fail "$FAULTS has no fault hook compiled in"
SANDMAN=$FAULTS

use_sim_fixture a100-40gb-mig-empty.json
FLAGS=(--gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic --isolate-host true)
STATE=$(dirname "$DB")
ROWS=()

# start_armed POINT: starts the daemon with the fault armed; returns once it
# answers /healthz, or once it died (a start-up reconcile point). Sets DPID.
start_armed() {
  echo "=== start $(date -u +%FT%T.%3NZ) armed at $1" >>"$DAEMON_LOG"
  LOG_MARK=$(wc -l <"$DAEMON_LOG")
  SANDMAN_FAULT_POINT=$1 "$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$DB" --workspace-root "$WS" \
    --token-file "$TOKEN_FILE" --ssh-bind 127.0.0.1 --ssh-host 127.0.0.1 \
    --ssh-port-start "$SSH_START" --ssh-port-end "$SSH_END" --network "$NET" --image "$IMAGE" \
    --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" "${FLAGS[@]}" >>"$DAEMON_LOG" 2>&1 </dev/null &
  DPID=$!
  ALL_DPIDS+=("$DPID")
  local i
  for i in $(seq 200); do
    kill -0 "$DPID" 2>/dev/null || return 0
    curl -fsS -o /dev/null --max-time 2 "$API/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "armed daemon neither answered nor died"
}

# died_at POINT: waits for the armed daemon to die by its own SIGKILL at POINT.
# Sets DIED ("killed", or what happened instead); not in a subshell (wait).
died_at() {
  local i
  for i in $(seq 300); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DPID" 2>/dev/null; then
    kill -9 "$DPID"; wait "$DPID" 2>/dev/null; DPID=
    DIED="no-crash"; return 1
  fi
  wait "$DPID" 2>/dev/null
  local rc=$?
  DPID=
  if ! tail -n "+$((LOG_MARK + 1))" "$DAEMON_LOG" | grep -q "fault point $1 reached"; then DIED="rc$rc-elsewhere"; return 1; fi
  if [ "$rc" != 137 ]; then DIED="rc$rc"; return 1; fi
  DIED=killed
}

fw_rules() {
  local iface
  iface=br-$(docker network inspect -f '{{.Id}}' "$NET" 2>/dev/null | cut -c1-12)
  iptables -S INPUT 2>/dev/null | grep -c -- "-i $iface " || true
}

# check_invariants: prints "ok" or what leaked / was lost.
check_invariants() {
  local problems=() sid st reason
  api GET /api/v1/sessions
  [ "$CODE" = 200 ] || { echo "GET sessions: $CODE"; return; }
  local sessions=$BODY
  for sid in "${SIDS[@]}"; do
    st=$(jq -r --arg s "$sid" '(if type == "array" then . else .sessions end)[] | select(.session_id == $s) | .status' <<<"$sessions")
    reason=$(jq -r --arg s "$sid" '(if type == "array" then . else .sessions end)[] | select(.session_id == $s) | .end_reason // ""' <<<"$sessions")
    case "$st" in
      running) ;;
      ended|failed) [ -n "$reason" ] || problems+=("$sid $st without a reason") ;;
      "") problems+=("session $sid lost") ;;
      *) problems+=("$sid left $st") ;;
    esac
  done
  local running; running=$(jq -r '(if type == "array" then . else .sessions end)[] | select(.status == "running") | .session_id' <<<"$sessions" | sort)
  # Containers: exactly the running sessions', all running.
  local inst; inst=$(fnv1a64 "$DB")
  local cont; cont=$(docker ps -a --filter "label=sandman.instance=$inst" --format '{{.Label "sandman.session"}} {{.State}}' | sort)
  local want; want=$(for sid in $running; do echo "$sid running"; done | sort)
  [ "$cont" = "$want" ] || problems+=("containers [$(echo $cont)] != running sessions [$(echo $running)]")
  # Published ports: listening exactly for running sessions.
  local p listening=() expect=()
  for p in $(seq "$SSH_START" "$SSH_END"); do port_in_use "$p" && listening+=("$p"); done
  for sid in $running; do expect+=("$(jq -r --arg s "$sid" '(if type == "array" then . else .sessions end)[] | select(.session_id == $s) | .ssh_port' <<<"$sessions")"); done
  [ "$(printf '%s\n' "${listening[@]}" | sort)" = "$(printf '%s\n' "${expect[@]}" | sort)" ] ||
    problems+=("ports listening [${listening[*]}] != running sessions' [${expect[*]}]")
  # MIG instances: exactly one per running session, each its own.
  api GET /api/v1/gpus
  local migs held
  migs=$(jq -r '[.gpus[].mig_instances[]] | length' <<<"$BODY")
  held=$(jq -r '[.gpus[].mig_instances[] | select(.session_id != null)] | length' <<<"$BODY")
  local nrun; nrun=$(echo -n "$running" | grep -c . || true)
  [ "$migs" = "$nrun" ] && [ "$held" = "$nrun" ] || problems+=("MIG instances $migs (held $held) for $nrun running sessions")
  # Key files and sshd files: only for running sessions.
  local keys files
  keys=$(ls "$STATE/gateway-keys" 2>/dev/null | sort)
  files=$(ls "$STATE/session-files" 2>/dev/null | sort)
  [ "$keys" = "$running" ] || problems+=("gateway keys [$(echo $keys)] != [$(echo $running)]")
  [ "$files" = "$running" ] || problems+=("sshd files [$(echo $files)] != [$(echo $running)]")
  local fw; fw=$(fw_rules)
  [ "$fw" = "$FW_BASE" ] || problems+=("firewall rules $fw, expected $FW_BASE")
  if [ ${#problems[@]} -eq 0 ]; then echo ok; else (IFS=';'; echo "${problems[*]}"); fi
}

# The bystander: a running session that every crash must leave running.
start_daemon "${FLAGS[@]}"
FW_BASE=$(fw_rules)
[ "$FW_BASE" -gt 0 ] || fail "--isolate-host installed no firewall rule to watch"
mkuser BY by
create_session "$BY" '"mig_profile":"1g.5gb","ttl_minutes":60'
BYSTANDER=$SID

# run_point POINT KIND: KIND create|stop|startup. Leaves a clean daemon running.
run_point() {
  local point=$1 kind=$2 victim="" outcome died
  case "$kind" in
    stop)
      mkuser victim v
      create_session "$victim" '"mig_profile":"1g.5gb","ttl_minutes":60'
      victim=$SID ;;
    startup-orphan)
      local inst; inst=$(fnv1a64 "$DB")
      docker create --name "e2e-orphan-$RUN" --label "sandman.instance=$inst" \
        --label "sandman.session=s-00000000deadbeef" "$IMAGE" /bin/true >/dev/null || fail "orphan create"
      EXTRA_CONTAINERS+=("e2e-orphan-$RUN") ;;
    startup-create)  # leave a session caught mid-create by an earlier crash
      stop_daemon; start_armed create.key_written
      mkuser victim m
      api POST /api/v1/sessions "{\"user_id\":\"$victim\",\"mig_profile\":\"1g.5gb\"}"
      died_at create.key_written || fail "setting up $point: no crash at create.key_written"
      track_new_sessions ;;
    startup-stop)  # leave a session caught mid-stop by an earlier crash
      mkuser victim s
      create_session "$victim" '"mig_profile":"1g.5gb","ttl_minutes":60'
      victim=$SID
      stop_daemon; start_armed stop.container_removed
      api DELETE "/api/v1/sessions/$victim"
      died_at stop.container_removed || fail "setting up $point: no crash at stop.container_removed" ;;
  esac
  [ -n "$DPID" ] && stop_daemon
  start_armed "$point"
  case "$kind" in
    create)
      mkuser victim c
      api POST /api/v1/sessions "{\"user_id\":\"$victim\",\"mig_profile\":\"1g.5gb\",\"ttl_minutes\":60}" ;;
    stop) api DELETE "/api/v1/sessions/$victim" ;;
  esac
  died_at "$point"
  died=$DIED
  start_daemon "${FLAGS[@]}"
  track_new_sessions
  outcome=$(check_invariants)
  local by; by=$(api GET "/api/v1/sessions/$BYSTANDER" && jb .status)
  [ "$by" = running ] || outcome="$outcome; bystander $by"
  ROWS+=("$(printf '%-40s %-8s %s' "$point" "$died" "$outcome")")
  # Next point starts from running sessions only: end a victim that survived.
  api GET /api/v1/sessions
  local sid
  for sid in $(jq -r --arg b "$BYSTANDER" '(if type == "array" then . else .sessions end)[] | select(.status == "running" and .session_id != $b) | .session_id' <<<"$BODY"); do
    api DELETE "/api/v1/sessions/$sid"
  done
}

# Sessions created through a crashed request never answered: find them by listing.
track_new_sessions() {
  api GET /api/v1/sessions
  local sid
  for sid in $(jq -r '(if type == "array" then . else .sessions end)[] | .session_id' <<<"$BODY"); do
    [[ " ${SIDS[*]} " == *" $sid "* ]] || SIDS+=("$sid")
  done
}

for p in create.reserved mig.before_create mig.created create.gpu_recorded create.key_written \
  create.container_created create.container_started create.running; do
  run_point "$p" create
done
for p in stop.claimed stop.container_removed stop.files_removed mig.before_destroy mig.destroyed stop.recorded; do
  run_point "$p" stop
done
run_point reconcile.orphan_removed startup-orphan
run_point reconcile.failing_interrupted_create startup-create
run_point reconcile.finishing_interrupted_stop startup-stop

echo
echo "crash-injection matrix (point, daemon, outcome after restart):"
printf '%-40s %-8s %s\n' POINT DAEMON OUTCOME
bad=0
for r in "${ROWS[@]}"; do
  echo "$r"
  [[ "$r" =~ \ killed\ +ok$ ]] || bad=$((bad + 1))
done
[ "$bad" = 0 ] || fail "$bad of ${#ROWS[@]} fault points leaked, lost a session or did not crash"
note "all ${#ROWS[@]} fault points: killed, restarted, nothing leaked, no session lost"
