#!/usr/bin/env bash
# e2e: the REST API's gatekeeping. Auth (401 JSON without or with a wrong token; /healthz and /readyz
# open), input validation (every bad create is a 400 JSON error that leaves no session row, workspace
# directory or container), bad ids, oversized bodies, bad filters, the token file's mode and the token
# never logged, and --auth none.
# Usage: api_validation_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon --ttl-max 60

mkuser UOK ok
mkuser UV v   # a valid name that must never get a session or a workspace here

note "token file"
[ -f "$TOKEN_FILE" ] || fail "no token file at $TOKEN_FILE"
assert_eq "$(stat -c %a "$TOKEN_FILE")" 600 "mode of the generated token file"
[ ${#TOKEN} -ge 16 ] || fail "token in $TOKEN_FILE is too short: ${#TOKEN} chars"

note "auth"
api_as "" GET /api/v1/sessions
assert_code 401 "GET /api/v1/sessions without a token"
assert_error_json "401 without a token"
api_as "" GET /sessions
assert_code 401 "GET /sessions (bare path) without a token"
assert_error_json "401 on the bare path"
api_as "wrong-${TOKEN}" GET /api/v1/sessions
assert_code 401 "GET /api/v1/sessions with a wrong token"
assert_error_json "401 with a wrong token"
api_as "${TOKEN:0:${#TOKEN}-1}" GET /api/v1/sessions
assert_code 401 "GET /api/v1/sessions with a truncated token"
api_as "" POST /api/v1/sessions "{\"user_id\":\"$UV\"}"
assert_code 401 "POST /api/v1/sessions without a token"
api_as "" GET /healthz
assert_code 200 "/healthz without a token"
assert_json '.status == "healthy" and .service == "gpu-ssh-gateway-orchestrator"' "/healthz body"
api_as "" GET /readyz
assert_code 200 "/readyz without a token"

note "baseline: one valid session"
create_session "$UOK" '"ttl_minutes":10'
SID_OK=$SID
INST=$(docker inspect -f '{{index .Config.Labels "sandman.instance"}}' "$CONTAINER")
[ -n "$INST" ] || fail "session container has no sandman.instance label"

api GET /api/v1/sessions
BASE_ROWS=$(jq -c '[.[].session_id] | sort' <<<"$BODY")
BASE_WS=$(ls -A "$WS")
BASE_CT=$(docker ps -aq --filter "label=sandman.instance=$INST" | sort)
assert_eq "$BASE_WS" "$UOK" "workspace root holds only the valid user's directory"

# no_trace WHAT: nothing new in GET /sessions, the workspace root or Docker.
no_trace() {
  api GET /api/v1/sessions
  [ "$CODE" = 200 ] || fail "GET /api/v1/sessions answered $CODE: $BODY"
  assert_eq "$(jq -c '[.[].session_id] | sort' <<<"$BODY")" "$BASE_ROWS" "$1: session rows changed"
  assert_eq "$(ls -A "$WS")" "$BASE_WS" "$1: workspace root changed"
  assert_eq "$(docker ps -aq --filter "label=sandman.instance=$INST" | sort)" "$BASE_CT" "$1: containers changed"
  [ -z "$(docker ps -aq --filter "label=sandman.user=$UV")" ] || fail "$1: a container exists for $UV"
}

# bad_create BODY WHAT [MESSAGE_SUBSTRING]: POST must be 400 with an error JSON and leave no trace.
bad_create() {
  api POST /api/v1/sessions "$1"
  local sid; sid=$(jq -r '.session_id? // empty' <<<"$BODY" 2>/dev/null)
  [ -n "$sid" ] && track_session "$sid"
  assert_code 400 "create with $2 ($1)"
  assert_error_json "create with $2"
  [ $# -ge 3 ] && assert_contains "$(jb .error)" "$3" "error message for $2"
  no_trace "create with $2"
}

note "invalid creates: 400, no trace"
bad_create '{"user_id":"../etc"}' 'user_id ../etc'
bad_create '{"user_id":".."}' 'user_id ..'
bad_create '{"user_id":"a/b"}' 'user_id a/b'
bad_create '{"user_id":"Alice"}' 'user_id with capitals'
bad_create '{"user_id":""}' 'empty user_id'
bad_create "{\"user_id\":\"a$(printf 'b%.0s' $(seq 32))\"}" 'a 33-character user_id'
bad_create '{"user_id":"root;rm"}' 'user_id root;rm'
bad_create '{"user_id":"-x"}' 'user_id starting with -'
bad_create '{"user_id":5}' 'a numeric user_id'
bad_create '{}' 'missing user_id'
bad_create '{"ttl_minutes":5}' 'missing user_id with a ttl'
bad_create "{\"user_id\":\"$UV\"" 'malformed JSON'
bad_create "[{\"user_id\":\"$UV\"}]" 'a JSON array'
bad_create '"x"' 'a JSON string'
bad_create "{\"user_id\":\"$UV\",\"bogus\":1}" 'an unknown field'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":\"5\"}" 'ttl_minutes as a string'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":0}" 'ttl_minutes 0'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":-1}" 'ttl_minutes -1'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":1.5}" 'ttl_minutes 1.5'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":61}" 'ttl_minutes above --ttl-max 60'
bad_create "{\"user_id\":\"$UV\",\"ttl_seconds\":3601}" 'ttl_seconds above --ttl-max 60 min'
bad_create "{\"user_id\":\"$UV\",\"ttl_seconds\":0}" 'ttl_seconds 0'
bad_create "{\"user_id\":\"$UV\",\"ttl_minutes\":5,\"ttl_seconds\":30}" 'both ttl_minutes and ttl_seconds'
bad_create "{\"user_id\":\"$UV\",\"mig_profile\":\"1g.10gb\"}" 'mig_profile without a GPU backend' 'no GPU backend configured'
bad_create "{\"user_id\":\"$UV\",\"mig_profile\":\"1g.10gb\",\"mig_instance_uuid\":\"MIG-00000000-0000-0000-0000-000000000000\"}" 'both mig_profile and mig_instance_uuid'
bad_create "{\"user_id\":\"$UV\",\"ssh_public_key\":\"not a key\"}" 'ssh_public_key "not a key"'
bad_create "{\"user_id\":\"$UV\",\"image\":\"bad image!\"}" 'image "bad image!"'

note "oversized body: 413, no trace"
{
  printf '{"user_id":"%s","image":"' "$UV"
  head -c 70000 /dev/zero | tr '\0' a
  printf '"}'
} >"$E2E_TMP/big.json"
api_file POST /api/v1/sessions "$E2E_TMP/big.json"
assert_code 413 "create with a 70 KB body"
assert_error_json "413"
no_trace "create with a 70 KB body"

note "bad and unknown session ids"
for p in '/api/v1/sessions/../../etc/passwd' '/api/v1/sessions/..%2F..%2Fetc%2Fpasswd' '/sessions/..%2f..%2fetc%2fpasswd' \
  '/api/v1/sessions/%2e%2e'; do
  api GET "$p"
  [[ "$CODE" == 400 || "$CODE" == 404 ]] || fail "GET $p: expected 400 or 404, got $CODE: $BODY"
  assert_error_json "GET $p"
done
for m in GET DELETE; do
  for p in /api/v1/sessions/s-xyz /sessions/s-xyz; do
    api "$m" "$p"
    [[ "$CODE" == 400 || "$CODE" == 404 ]] || fail "$m $p: expected 400 or 404, got $CODE: $BODY"
    assert_error_json "$m $p"
  done
  api "$m" /api/v1/sessions/s-0123456789abcdef
  assert_code 404 "$m of a well-formed unknown id"
  assert_error_json "$m unknown id"
done
api PATCH /api/v1/sessions/s-xyz '{"ttl_minutes":5}'
[[ "$CODE" == 400 || "$CODE" == 404 ]] || fail "PATCH /api/v1/sessions/s-xyz: expected 400 or 404, got $CODE: $BODY"
assert_error_json "PATCH s-xyz"
api PATCH /api/v1/sessions/s-0123456789abcdef '{"ttl_minutes":5}'
assert_code 404 "PATCH of a well-formed unknown id"
assert_error_json "PATCH unknown id"
api PATCH "/api/v1/sessions/$SID_OK" '{"ttl_minutes":"5"}'
assert_code 400 "PATCH with ttl_minutes as a string"
api PATCH "/api/v1/sessions/$SID_OK" '{"user_id":"x"}'
assert_code 400 "PATCH with a field other than the ttl"
api PATCH "/api/v1/sessions/$SID_OK" '{"ttl_minutes":61}'
assert_code 400 "PATCH above --ttl-max"
no_trace "bad ids and PATCHes"

note "bad filters"
api GET '/api/v1/sessions?status=bogus'
assert_code 400 "GET /api/v1/sessions?status=bogus"
assert_error_json "status=bogus"
api GET '/api/v1/sessions?user_id=..%2Fetc'
assert_code 400 "GET /api/v1/sessions?user_id=../etc"
assert_error_json "user_id filter ../etc"

note "the token is never logged"
stop_daemon
[ -s "$DAEMON_LOG" ] || fail "daemon log is empty"
if grep -qF "$TOKEN" "$DAEMON_LOG"; then fail "the API token appears in the daemon log"; fi

note "--auth none"
start_daemon "${DAEMON_FLAGS[@]}" --auth none
api_as "" GET /api/v1/sessions
assert_code 200 "GET /api/v1/sessions without a token under --auth none"
assert_json "any(.[]; .session_id == \"$SID_OK\")" "list under --auth none"
api_as "" DELETE "/api/v1/sessions/$SID_OK"
assert_code 200 "DELETE without a token under --auth none"
wait_container_gone "$SID_OK" 10 || fail "container of $SID_OK still there after DELETE"
if grep -qF "$TOKEN" "$DAEMON_LOG"; then fail "the API token appears in the daemon log"; fi

# Last: the 64 KiB limit must hold however the body is framed.
note "chunked body: refused before it is read (411), no trace"
api GET /api/v1/sessions
BASE_ROWS=$(jq -c '[.[].session_id] | sort' <<<"$BODY")
BASE_WS=$(ls -A "$WS")
BASE_CT=$(docker ps -aq --filter "label=sandman.instance=$INST" | sort)
api_file POST /api/v1/sessions "$E2E_TMP/big.json" -H 'Transfer-Encoding: chunked'
assert_code 411 "create with a 70 KB body sent with Transfer-Encoding: chunked"
assert_error_json "411 (chunked)"
no_trace "create with a 70 KB chunked body"

note "POST/PATCH without Content-Length: an immediate 411 (not a wait for the client to close)"
t0=$(now)
api_curl "$TOKEN" POST /api/v1/sessions
assert_code 411 "POST without a body or Content-Length"
assert_error_json "411 (no Content-Length)"
api_curl "$TOKEN" PATCH /api/v1/sessions/s-0000000000000000
assert_code 411 "PATCH without a body or Content-Length"
fle "$(fsub "$(now)" "$t0")" 2 || fail "the 411s took $(fsub "$(now)" "$t0") s"
api_curl "$TOKEN" DELETE /api/v1/sessions/s-0000000000000000
assert_code 404 "DELETE needs no body"
stop_daemon
exit 0
