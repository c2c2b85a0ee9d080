# shellcheck shell=bash disable=SC2034  # globals are read by the suites that source this file
# Shared helpers for the end-to-end suites (tests/e2e/*_test.sh): sourced, never run.
# Each suite drives a real `sandman serve` against the real dockerd and the real
# OpenSSH client, in a private temp dir, and removes everything it made on exit.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_init "$@"            # $1 = path to the sandman binary
#   start_daemon [flags...]  # sets API, TOKEN, DPID
#
# Everything of one run carries a random suffix ($RUN): the docker network
# (e2e-$RUN), the user names (mkuser), extra containers (e2e-*-$RUN). The
# cleanup only touches containers found through this run's session ids, users,
# daemon instance label or tracked names.

set -u
set -o pipefail

IMAGE=${SANDMAN_E2E_IMAGE:-sandman-workspace:latest}
# Debian's interpreter, which has the python3-* test modules scripts/lib.sh installs; the
# python3 first on PATH may be another (pyenv, a venv). Use "$PY", never a bare python3.
PY=/usr/bin/python3

SIDS=()             # session ids this run created (cleanup by label sandman.session)
USERS=()            # user names this run uses (cleanup by label sandman.user)
INSTANCES=()        # sandman.instance label values of this run's daemon
EXTRA_CONTAINERS=() # containers the test itself started, by name
BG_PIDS=()          # background processes the test started (ssh clients, ...)
E2E_EXTRA_CLEANUP=() # functions a suite's helpers add, run by the cleanup (e.g. lab_down)
ALL_DPIDS=()        # every daemon pid this run started
DPID=
DAEMON_FLAGS=()
E2E_TMP=
DAEMON_LOG=
NET=
TOKEN=
CODE=
BODY=
E2E_T0=$(date +%s.%N)

note() { echo "-- $*"; }

fail() {
  echo "FAIL: $*"
  if [ -n "${DAEMON_LOG:-}" ] && [ -s "$DAEMON_LOG" ]; then
    echo "--- daemon log (last 40 lines) ---"
    tail -n 40 "$DAEMON_LOG"
    echo "---"
  fi
  exit 1
}

# ---------------------------------------------------------------- set-up

# e2e_init SANDMAN_BINARY: checks prerequisites, makes the run's temp dir, names, ports; installs the trap.
e2e_init() {
  SANDMAN=${1:-}
  [ -n "$SANDMAN" ] || fail "usage: $0 <path-to-sandman-binary>"
  SANDMAN=$(readlink -f "$SANDMAN") || fail "sandman binary not found: $1"
  [ -x "$SANDMAN" ] || fail "sandman binary is not executable: $SANDMAN"
  local t
  for t in docker jq curl ssh scp ssh-keygen sha256sum timeout od "$PY"; do
    command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed"
  done
  docker info >/dev/null 2>&1 || fail "docker is not reachable (is dockerd running? these tests need a real Docker engine)"
  docker image inspect "$IMAGE" >/dev/null 2>&1 ||
    fail "image $IMAGE is missing: build it with images/workspace/build.sh"

  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  RUN=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandman-e2e.XXXXXX") || fail "mktemp failed"
  mkdir -p "$E2E_TMP/state" "$E2E_TMP/ws" "$E2E_TMP/keys"
  chmod 700 "$E2E_TMP/keys"
  DB=$E2E_TMP/state/sandman.db
  WS=$E2E_TMP/ws
  TOKEN_FILE=$E2E_TMP/state/api-token
  DAEMON_LOG=$E2E_TMP/daemon.log
  NET=e2e-$RUN
  INSTANCES+=("$(fnv1a64 "$DB")")  # what the daemon labels its containers with (see serve_command.cc)
  API_PORT=$(free_port) || fail "no free port for the API"
  GW_PORT=$(free_port) || fail "no free port for the SSH gateway"
  while [ "$GW_PORT" = "$API_PORT" ]; do GW_PORT=$(free_port); done
  API=http://127.0.0.1:$API_PORT
  pick_ssh_range || fail "could not find 10 free ports in 10000-19999"
  note "run $RUN: tmp=$E2E_TMP api=$API ssh ports $SSH_START-$SSH_END network $NET"
}

# Everything this run started goes, whatever happened; the exit status is kept.
e2e_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local p
  for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for p in "${E2E_EXTRA_CLEANUP[@]}"; do "$p"; done
  for p in "${ALL_DPIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      local i
      for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
  done
  local ids=() x
  for x in "${SIDS[@]}"; do mapfile -t -O "${#ids[@]}" ids < <(docker ps -aq --filter "label=sandman.session=$x"); done
  for x in "${USERS[@]}"; do mapfile -t -O "${#ids[@]}" ids < <(docker ps -aq --filter "label=sandman.user=$x"); done
  for x in "${INSTANCES[@]}"; do mapfile -t -O "${#ids[@]}" ids < <(docker ps -aq --filter "label=sandman.instance=$x"); done
  for x in "${EXTRA_CONTAINERS[@]}"; do
    docker container inspect "$x" >/dev/null 2>&1 && ids+=("$x")
  done
  if [ ${#ids[@]} -gt 0 ]; then
    printf '%s\n' "${ids[@]}" | sort -u | xargs -r docker rm -f >/dev/null 2>&1
  fi
  if [ -n "$NET" ] && docker network inspect "$NET" >/dev/null 2>&1; then
    # The daemon's firewall chains (SANDMAN-IN-/SANDMAN-EG-<bridge>) and older
    # "sandman:" INPUT rules name this network's bridge; drop them with it.
    local iface rule ipt chain
    iface=br-$(docker network inspect -f '{{.Id}}' "$NET" | cut -c1-12)
    for ipt in iptables ip6tables; do
      for chain in INPUT FORWARD DOCKER-USER; do
        while read -r rule; do
          [ -n "$rule" ] && eval "$ipt -w ${rule/-A /-D }" 2>/dev/null
        done < <($ipt -S "$chain" 2>/dev/null | grep -- "-i $iface " | grep -e "-j SANDMAN-" -e '"sandman:')
      done
      for chain in "SANDMAN-IN-$iface" "SANDMAN-EG-$iface"; do
        $ipt -w -F "$chain" 2>/dev/null && $ipt -w -X "$chain" 2>/dev/null
      done
    done
    docker network rm "$NET" >/dev/null 2>&1 || echo "warning: could not remove network $NET"
  fi
  if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
    if [ "${E2E_KEEP_TMP:-0}" = 1 ]; then echo "kept $E2E_TMP"; else rm -rf "$E2E_TMP"; fi
  fi
  local dt; dt=$(awk -v a="$E2E_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  if [ "$rc" = 0 ]; then echo "PASS: $(basename "$0") (${dt} s)"; else echo "($(basename "$0") failed after ${dt} s, rc=$rc)"; fi
  exit "$rc"
}

# The daemon's instance label: an FNV-1a-style 64-bit hash of the store path, with the offset basis
# of FNV-1a (14695981039346656037, as a signed 64-bit value here). Only a cleanup safety net: labels seen on this run's
# containers are collected too (create_session).
fnv1a64() {
  local s=$1 h=-3750763034362895579 i c
  for ((i = 0; i < ${#s}; i++)); do
    printf -v c '%d' "'${s:i:1}"
    h=$(((h ^ c) * 1099511628211))
  done
  printf '%016x' "$h"
}

# mkuser VAR PREFIX: a POSIX user name unique to this run, remembered for cleanup.
mkuser() {
  local name="$2$RUN"
  USERS+=("$name")
  printf -v "$1" '%s' "$name"
}

# ---------------------------------------------------------------- ports

port_in_use() {
  local p=$1
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
  return 1
}

# free_port: an unused loopback port in 20000-29999 (below the ssh ranges).
free_port() {
  local i p
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 10000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# pick_ssh_range: SSH_START..SSH_END, 10 free ports at random in 10000-19990:
# below the kernel's ephemeral range (32768-60999), where any process's
# outgoing connection or port-0 listener could land in a suite's range.
pick_ssh_range() {
  local i p ok
  for i in $(seq 100); do
    SSH_START=$((10000 + (RANDOM % 999) * 10))
    SSH_END=$((SSH_START + 9))
    ok=1
    for ((p = SSH_START; p <= SSH_END; p++)); do
      if port_in_use "$p"; then ok=0; break; fi
    done
    [ "$ok" = 1 ] && return 0
  done
  return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- daemon

# start_daemon [extra flags...]: starts `sandman serve` for this run; waits for /healthz.
start_daemon() {
  DAEMON_FLAGS=("$@")
  echo "=== start $(date -u +%FT%T.%3NZ): ${DAEMON_FLAGS[*]}" >>"$DAEMON_LOG"
  "$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$DB" --workspace-root "$WS" \
    --token-file "$TOKEN_FILE" --ssh-bind 127.0.0.1 --ssh-host 127.0.0.1 \
    --ssh-port-start "$SSH_START" --ssh-port-end "$SSH_END" --network "$NET" --image "$IMAGE" \
    --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" \
    "$@" >>"$DAEMON_LOG" 2>&1 </dev/null &
  DPID=$!
  ALL_DPIDS+=("$DPID")
  local i
  for i in $(seq 200); do
    curl -fsS -o /dev/null --max-time 2 "$API/healthz" 2>/dev/null && break
    kill -0 "$DPID" 2>/dev/null || fail "daemon exited during start-up"
    sleep 0.1
  done
  curl -fsS -o /dev/null --max-time 2 "$API/healthz" 2>/dev/null || fail "daemon never answered /healthz on $API"
  if [ -f "$TOKEN_FILE" ]; then TOKEN=$(<"$TOKEN_FILE"); fi
}

restart_daemon() { start_daemon "${DAEMON_FLAGS[@]}"; }

# stop_daemon: SIGTERM, wait up to 10 s (then SIGKILL). Sets DAEMON_RC.
stop_daemon() {
  [ -n "$DPID" ] || return 0
  kill -TERM "$DPID" 2>/dev/null
  local i
  for i in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DPID" 2>/dev/null; then
    kill -9 "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=
    fail "daemon did not exit within 10 s of SIGTERM"
  fi
  wait "$DPID" 2>/dev/null
  DAEMON_RC=$?
  DPID=
}

# kill9_daemon: SIGKILL, as a crash would.
kill9_daemon() {
  [ -n "$DPID" ] || return 0
  kill -9 "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  DPID=
}

# ---------------------------------------------------------------- REST

# api_curl TOKEN METHOD PATH [curl args...]: one request; sets CODE ("000" when there was no answer)
# and BODY from temp files, so it must not (and need not) run in a subshell. TOKEN "" sends none.
api_curl() {
  local tok=$1 m=$2 p=$3
  shift 3
  local args=(-sS --path-as-is --max-time 60 -o "$E2E_TMP/resp" -w '%{http_code}' -X "$m")
  [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
  # Bodies are JSON; a suite that tests another content type names its own.
  case " $* " in *[Cc]ontent-[Tt]ype:*) ;; *) args+=(-H 'Content-Type: application/json') ;; esac
  rm -f "$E2E_TMP/resp"
  curl "${args[@]}" "$@" "$API$p" >"$E2E_TMP/code" 2>"$E2E_TMP/curl.err"
  CODE=
  read -r CODE <"$E2E_TMP/code" || true
  [ -n "$CODE" ] || CODE=000
  BODY=
  if [ -f "$E2E_TMP/resp" ]; then IFS= read -r -d '' BODY <"$E2E_TMP/resp" || true; fi
}

# api_as TOKEN METHOD PATH [BODY]
api_as() {
  if [ $# -ge 4 ]; then
    api_curl "$1" "$2" "$3" -H 'Content-Type: application/json' --data-binary "$4"
  else
    api_curl "$1" "$2" "$3"
  fi
}

# api METHOD PATH [BODY]: with this run's token.
api() { api_as "$TOKEN" "$@"; }

# api_file METHOD PATH FILE [curl args...]: the body read from FILE.
api_file() {
  local m=$1 p=$2 f=$3
  shift 3
  api_curl "$TOKEN" "$m" "$p" -H 'Content-Type: application/json' --data-binary "@$f" "$@"
}

# jb FILTER: jq -r FILTER over the last response body.
jb() { jq -r "$1" <<<"$BODY"; }

# create_session USER [extra json members]: POST, expects 201. Sets SID SSH_PORT KEY RESP CONTAINER.
create_session() {
  local u=$1 extra=${2:-}
  api POST /api/v1/sessions "{\"user_id\":\"$u\"${extra:+,$extra}}"
  local sid; sid=$(jq -r '.session_id // empty' <<<"$BODY" 2>/dev/null)
  [ -n "$sid" ] && SIDS+=("$sid")
  [ "$CODE" = 201 ] || fail "create session for $u: expected HTTP 201, got $CODE: $BODY"
  [ -n "$sid" ] || fail "create session for $u: no session_id in $BODY"
  RESP=$BODY
  SID=$sid
  SSH_PORT=$(jq -r .ssh_port <<<"$RESP")
  CONTAINER=$(jq -r '.container_id // empty' <<<"$RESP")
  KEY=$E2E_TMP/keys/$SID
  if jq -e 'has("ssh_private_key")' <<<"$RESP" >/dev/null; then
    jq -r .ssh_private_key <<<"$RESP" >"$KEY"
    chmod 600 "$KEY"
  fi
  if [ -n "$CONTAINER" ]; then
    local inst
    inst=$(docker inspect -f '{{index .Config.Labels "sandman.instance"}}' "$CONTAINER" 2>/dev/null)
    if [ -n "$inst" ] && [[ " ${INSTANCES[*]} " != *" $inst "* ]]; then INSTANCES+=("$inst"); fi
  fi
}

# ---------------------------------------------------------------- NVML simulator

# use_sim_fixture NAME: the daemon's GPUs become a private copy of tests/fixtures/nvml-sim/NAME
# (the simulator keeps its state next to it; a test steers telemetry by rewriting it). Sets
# SIMLIB (pass it as --nvml-library) and exports SANDMAN_NVML_SIM_CONFIG.
use_sim_fixture() {
  SIMLIB=$(dirname "$SANDMAN")/libsandman-nvml-sim.so
  [ -f "$SIMLIB" ] || fail "NVML simulator library not built next to $SANDMAN"
  local fixtures
  fixtures=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures/nvml-sim" && pwd) || fail "fixtures dir missing"
  export SANDMAN_NVML_SIM_CONFIG=$E2E_TMP/$1
  cp "$fixtures/$1" "$SANDMAN_NVML_SIM_CONFIG" || fail "fixture $1 missing"
  rm -f "$SANDMAN_NVML_SIM_CONFIG.state"
}

# track_session SID: remember a session created some other way (CLI) for cleanup.
track_session() { SIDS+=("$1"); }

# session_containers SID: ids of the containers labelled with SID (running or not).
session_containers() { docker ps -aq --filter "label=sandman.session=$1"; }

# wait_container_gone SID SECONDS
wait_container_gone() {
  local sid=$1 secs=${2:-10} i
  for i in $(seq $((secs * 10))); do
    [ -z "$(session_containers "$sid")" ] && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- ssh

SSH_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=5 -o IdentitiesOnly=yes -o IdentityAgent=none)

# sshc PORT USER KEY [cmd...]: runs cmd in the session over the direct port.
sshc() {
  local p=$1 u=$2 k=$3
  shift 3
  ssh "${SSH_OPTS[@]}" -i "$k" -p "$p" "$u@127.0.0.1" "$@" </dev/null
}

# sshg USER KEY [ssh options...] [cmd...]: the same through the SSH gateway ($GW_PORT, routed by
# USER), bounded by `timeout ${SSHG_TIMEOUT:-120}` (status 124 when it ran out). stdin is the
# caller's (give </dev/null where nothing should be read). For a background client whose pid goes
# into BG_PIDS, run ssh itself: ssh "${SSH_OPTS[@]}" -p "$GW_PORT" ... &
sshg() {
  local u=$1 k=$2
  shift 2
  timeout "${SSHG_TIMEOUT:-120}" ssh "${SSH_OPTS[@]}" -i "$k" -p "$GW_PORT" "$u@127.0.0.1" "$@"
}

# wait_gw USER KEY [SECONDS]: until a gateway login runs `true`.
wait_gw() {
  local u=$1 k=$2 secs=${3:-15} end
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    sshg "$u" "$k" true </dev/null 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# scpc PORT KEY SRC DST
scpc() {
  local p=$1 k=$2
  shift 2
  scp -q "${SSH_OPTS[@]}" -i "$k" -P "$p" "$@"
}

# wait_ssh PORT USER KEY [SECONDS]: until a login works.
wait_ssh() {
  local p=$1 u=$2 k=$3 secs=${4:-15} end
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    sshc "$p" "$u" "$k" true 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- assertions

assert_code() { # EXPECTED WHAT
  [ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE: ${BODY:0:500}"
}

assert_eq() { # ACTUAL EXPECTED WHAT
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

assert_ne() { # ACTUAL UNEXPECTED WHAT
  [ "$1" != "$2" ] || fail "$3: got '$1', which it must not be"
}

assert_contains() { # HAYSTACK NEEDLE WHAT
  [[ "$1" == *"$2"* ]] || fail "$3: '$2' not found in: ${1:0:800}"
}

assert_not_contains() { # HAYSTACK NEEDLE WHAT
  [[ "$1" != *"$2"* ]] || fail "$3: '$2' must not appear in: ${1:0:800}"
}

assert_match() { # STRING REGEX WHAT
  [[ "$1" =~ $2 ]] || fail "$3: '$1' does not match /$2/"
}

# assert_json FILTER WHAT: jq -e FILTER must hold on the last response body.
assert_json() {
  jq -e "$1" <<<"$BODY" >/dev/null 2>&1 || fail "$2: '$1' does not hold for: ${BODY:0:800}"
}

# assert_error_json WHAT: the body is {"error": "<non-empty>", "code": "<non-empty>"}.
assert_error_json() {
  assert_json '(.error | type == "string" and length > 0) and (.code | type == "string" and length > 0)' "$1 (error body)"
}

# ---------------------------------------------------------------- time

now() { date +%s.%N; }
# ts RFC3339: seconds since the epoch (returns non-zero when unparsable; check it at the call site).
ts() { date -d "$1" +%s.%N 2>/dev/null; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
# fle A B: A <= B (floats)
fle() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a<=b)}'; }
fabs_le() { awk -v a="$1" -v b="$2" 'BEGIN{if(a<0)a=-a; exit !(a<=b)}'; }

RFC3339_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
