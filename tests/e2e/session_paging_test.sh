#!/usr/bin/env bash
# e2e: paged history over REST and the CLI. History rows (ended sessions, connections, events) are
# written into the daemon's store with sqlite3 (no container is involved in reading them), then:
# limit (default 100, max 1000) and the Link / X-Next-Cursor of each page, a walk over every page
# that stays put while rows are added, filters (user_id, status, from, to), 400s for bad limits,
# tampered cursors, cursors used with other filters, bad times; stats from counts; connections,
# events and user keys paged; the CLI's active-by-default ls, --all, --limit/--cursor; and the
# retention pass at start-up (--session-retention, --event-retention).
# Usage: session_paging_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed"

# The schema first (a daemon start), then the history, written while no daemon runs.
start_daemon
stop_daemon
mkuser UP p
NOW=$(date +%s)
N=250
sql() { sqlite3 -bail "$DB" "$@" || fail "sqlite3 failed: $*"; }
{
  echo "BEGIN;"
  for i in $(seq 1 $N); do
    # Pairs share a created_at (ties are broken by id); the newest is i=N.
    c=$(((NOW - 3600 + i / 2) * 1000))
    printf "INSERT INTO sessions (id,user_id,status,image,ssh_port,user_public_key,host_public_key,created_at,expires_at,ended_at,end_reason) VALUES ('s-%016x','%s%03d','%s','sandman-workspace:latest',%d,'ssh-ed25519 AAAA k','ssh-ed25519 AAAA h',%d,%d,%d,'expired');\n" \
      "$i" "$UP" "$i" "$([ $((i % 5)) = 0 ] && echo failed || echo ended)" $((30000 + i)) "$c" $((c + 60000)) $((c + 60000))
  done
  # Five sessions that ended 200 days ago (past the default 90 days), each with an event.
  for i in $(seq 1 5); do
    c=$(((NOW - 200 * 86400) * 1000 + i))
    printf "INSERT INTO sessions (id,user_id,status,image,ssh_port,user_public_key,host_public_key,created_at,expires_at,ended_at,end_reason) VALUES ('s-a%015x','old%s%d','ended','img',1,'k','h',%d,%d,%d,'expired');\n" \
      "$i" "$RUN" "$i" "$c" "$c" "$c"
    printf "INSERT INTO session_events (session_id,at,kind,detail) VALUES ('s-a%015x',%d,'idle_stop','old');\n" "$i" "$c"
  done
  # Session N: 25 connections and 30 recent events, plus 4 events 40 days old (past the default 30).
  for i in $(seq 1 25); do
    printf "INSERT INTO connections (user_id,session_id,source,outcome,started_at) VALUES ('%s%03d','s-%016x','127.0.0.1:%d','closed',%d);\n" \
      "$UP" $N $N $((40000 + i)) $(((NOW - 600 + i) * 1000))
  done
  for i in $(seq 1 30); do
    printf "INSERT INTO session_events (session_id,at,kind,detail) VALUES ('s-%016x',%d,'idle_warning','e%02d');\n" $N $(((NOW - 600 + i) * 1000)) "$i"
  done
  for i in $(seq 1 4); do
    printf "INSERT INTO session_events (session_id,at,kind,detail) VALUES ('s-%016x',%d,'idle_warning','ancient');\n" $N $(((NOW - 40 * 86400) * 1000))
  done
  echo "COMMIT;"
} | sql
start_daemon
SIDN=$(printf 's-%016x' $N)

# ------------------------------------------------------------------ retention at start-up
note "retention: the start-up pass pruned what is past --session-retention / --event-retention"
assert_eq "$(sql "SELECT count(*) FROM sessions WHERE id LIKE 's-a%'")" 0 "sessions ended 200 days ago after start"
assert_eq "$(sql "SELECT count(*) FROM session_events WHERE detail = 'old'")" 0 "events of pruned sessions"
assert_eq "$(sql "SELECT count(*) FROM session_events WHERE detail = 'ancient'")" 0 "events 40 days old"
assert_eq "$(sql "SELECT count(*) FROM session_events WHERE session_id = '$SIDN'")" 30 "recent events kept"
assert_eq "$(sql "SELECT count(*) FROM sessions WHERE user_id LIKE '$UP%'")" $N "recent ended sessions kept"

# ------------------------------------------------------------------ pages
hdr() { tr -d '\r' <"$E2E_TMP/hdrs" | awk -v h="$1" 'BEGIN{IGNORECASE=1} index(tolower($0), tolower(h) ":") == 1 {sub(/^[^:]*: */, ""); print; exit}'; }
page() { api_curl "$TOKEN" GET "$1" -D "$E2E_TMP/hdrs"; }

note "GET /sessions: 100 rows by default, a JSON array, and where the next page is"
page "/api/v1/sessions?user_id=$UP%2A" # not a user id: the filter is checked
assert_code 400 "user_id that is not a POSIX user name"
page /api/v1/sessions
assert_code 200 "GET /api/v1/sessions"
assert_json 'type == "array" and length == 100' "default page is an array of 100"
NEXT=$(hdr X-Next-Cursor)
assert_match "$NEXT" '^[A-Za-z0-9_-]{20,}$' "X-Next-Cursor is an opaque base64url token"
assert_eq "$(hdr Link)" "</api/v1/sessions?cursor=$NEXT>; rel=\"next\"" "Link header"
page "/api/v1/sessions?limit=3"
assert_json 'length == 3' "limit=3"
assert_eq "$(hdr Link)" "</api/v1/sessions?limit=3&cursor=$(hdr X-Next-Cursor)>; rel=\"next\"" "Link keeps the query"
page "/sessions?limit=2"
assert_match "$(hdr Link)" '^</sessions\?limit=2&cursor=[A-Za-z0-9_-]+>; rel="next"$' "bare path: Link without /api/v1"
page "/api/v1/sessions?limit=1000"
assert_json "length == $N" "limit=1000 holds all $N rows"
[ -z "$(hdr X-Next-Cursor)" ] || fail "the last page still names a next page"
EXPECTED=$(jq -r '.[].session_id' <<<"$BODY")
[ "$(head -1 <<<"$EXPECTED")" = "$SIDN" ] || fail "newest first: expected $SIDN first, got $(head -1 <<<"$EXPECTED")"

note "walk every page (limit 40), rows added between pages: each row once, in order"
got=() url="/api/v1/sessions?limit=40" pages=0 extra=0
while :; do
  page "$url"
  assert_code 200 "page $pages"
  mapfile -t rows < <(jq -r '.[].session_id' <<<"$BODY")
  got+=("${rows[@]}")
  pages=$((pages + 1))
  nxt=$(hdr X-Next-Cursor)
  [ -n "$nxt" ] || break
  url="/api/v1/sessions?limit=40&cursor=$nxt"
  extra=$((extra + 1))
  sql "INSERT INTO sessions (id,user_id,status,image,ssh_port,user_public_key,host_public_key,created_at,expires_at,ended_at) VALUES ('s-b$(printf %015x $extra)','late$RUN$extra','ended','img',1,'k','h',$(((NOW + extra) * 1000)),0,$(((NOW + extra) * 1000)))"
  [ $pages -lt 50 ] || fail "more than 50 pages"
done
assert_eq "$pages" 7 "pages of 40 for $N rows"
assert_eq "$(printf '%s\n' "${got[@]}")" "$EXPECTED" "the walk (no row repeated, skipped or added)"

note "filters: user_id, status, from/to (RFC 3339 and unix seconds), with paging"
page "/api/v1/sessions?user_id=${UP}007"
assert_json "length == 1 and .[0].session_id == \"$(printf 's-%016x' 7)\"" "user_id"
page "/api/v1/sessions?status=failed&limit=1000"
assert_json "length == $((N / 5)) and all(.[]; .status == \"failed\")" "status=failed"
page "/api/v1/sessions?status=active"
assert_json 'length == 0' "status=active (no live session)"
from=$((NOW - 3600 + 50)) to=$((NOW - 3600 + 60))  # created_at from i/2 = 50 .. 59: i = 100 .. 119
page "/api/v1/sessions?from=$from&to=$to&limit=7"
assert_json 'length == 7' "from/to first page"
c1=$(hdr X-Next-Cursor)
page "/api/v1/sessions?from=$(date -u -d "@$from" +%FT%TZ)&to=$to&limit=20"
assert_json 'length == 20' "from as RFC 3339: 20 sessions in the window"
page "/api/v1/sessions?from=$from&to=$to&limit=7&cursor=$c1"
assert_json 'length == 7' "from/to second page"

note "400s: limits, cursors, times, statuses"
for q in limit=0 limit=1001 limit=abc limit= limit=-5 "limit=10%2E5" status=gone from=yesterday \
  "from=$to&to=$from" cursor=not-a-cursor "cursor=$NEXT%21" "cursor=${NEXT:0:20}" "status=ended&cursor=$NEXT" \
  "limit=3&to=$NOW&cursor=$NEXT"; do
  page "/api/v1/sessions?$q"
  assert_code 400 "GET /sessions?$q"
  assert_error_json "GET /sessions?$q"
  assert_eq "$(jb .code)" invalid "code of GET /sessions?$q"
done
# Every single-character edit of a real cursor is refused.
for pos in 0 5 $((${#NEXT} / 2)) $((${#NEXT} - 1)); do
  ch=${NEXT:$pos:1}
  [ "$ch" = A ] && nc=B || nc=A
  page "/api/v1/sessions?cursor=${NEXT:0:$pos}$nc${NEXT:$((pos + 1))}"
  assert_code 400 "cursor edited at $pos"
  assert_contains "$(jb .error)" cursor "message of an edited cursor"
done
page "/api/v1/sessions?cursor=$NEXT"
assert_code 200 "the real cursor still works"

note "stats: counts without reading history"
api GET /api/v1/sessions/stats
assert_code 200 "stats"
total=$(sql "SELECT count(*) FROM sessions")
assert_json ".total == $total and .by_status.failed == $((N / 5)) and .active == 0 and .active_users == 0" "stats counts"

note "connections and events of a session, paged"
page "/api/v1/sessions/$SIDN/connections?limit=10"
assert_json 'length == 10' "connections page 1"
ids=$(jq -r '.[].id' <<<"$BODY")
nxt=$(hdr X-Next-Cursor)
assert_eq "$(hdr Link)" "</api/v1/sessions/$SIDN/connections?limit=10&cursor=$nxt>; rel=\"next\"" "connections Link"
page "/api/v1/sessions/$SIDN/connections?limit=10&cursor=$nxt"
ids="$ids"$'\n'$(jq -r '.[].id' <<<"$BODY")
page "/api/v1/sessions/$SIDN/connections?limit=10&cursor=$(hdr X-Next-Cursor)"
assert_json 'length == 5' "connections page 3"
[ -z "$(hdr X-Next-Cursor)" ] || fail "connections: a 4th page is announced"
ids="$ids"$'\n'$(jq -r '.[].id' <<<"$BODY")
assert_eq "$ids" "$(sort -rn <<<"$ids" | uniq)" "connections newest first, each once"
page "/api/v1/sessions/$(printf 's-%016x' 9)/connections?cursor=$nxt"
assert_code 400 "a connections cursor of another session"
page "/api/v1/sessions/$SIDN/events?limit=12"
assert_json 'length == 12 and .[0].detail == "e01" and .[11].detail == "e12"' "events oldest first"
page "/api/v1/sessions/$SIDN/events?limit=12&cursor=$(hdr X-Next-Cursor)"
assert_json 'length == 12 and .[0].detail == "e13"' "events page 2"
page "/api/v1/sessions/$SIDN/events?from=$((NOW - 600 + 5))&to=$((NOW - 600 + 8))"
assert_json 'length == 3 and (map(.detail) == ["e05","e06","e07"])' "events from/to"
page "/api/v1/sessions/$SIDN/events?limit=1001"
assert_code 400 "events limit=1001"

note "user keys, paged"
for i in 1 2 3; do
  ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/keys/uk$i" >/dev/null || fail "ssh-keygen failed"
  api PUT "/api/v1/users/${UP}001/keys" "{\"public_key\":\"$(cat "$E2E_TMP/keys/uk$i.pub")\"}"
  assert_code 200 "PUT key $i"
done
page "/api/v1/users/${UP}001/keys?limit=2"
assert_json 'length == 2' "keys page 1"
page "/api/v1/users/${UP}001/keys?limit=2&cursor=$(hdr X-Next-Cursor)"
assert_json 'length == 1' "keys page 2"

# ------------------------------------------------------------------ CLI
note "CLI: active sessions by default, history with --all, --limit/--cursor"
cli() {
  OUT=$("$SANDMAN" sessions --server "$API" --token-file "$TOKEN_FILE" "$@" 2>"$E2E_TMP/cli.err")
  RC=$?
  ERR=$(<"$E2E_TMP/cli.err")
}
cli ls
[ "$RC" = 0 ] || fail "sessions ls exited $RC: $ERR"
assert_eq "$(wc -l <<<"$OUT")" 1 "sessions ls (only the header: no session is active)"
cli -o json ls --all
[ "$RC" = 0 ] || fail "sessions ls --all exited $RC: $ERR"
jq -e "length == $total" <<<"$OUT" >/dev/null || fail "ls --all -o json does not follow every page to $total rows"
cli ls --all --limit 5
[ "$RC" = 0 ] || fail "sessions ls --all --limit 5 exited $RC: $ERR"
assert_eq "$(($(wc -l <<<"$OUT") - 1))" 5 "rows of ls --all --limit 5"
CUR=$(sed -n 's/.*--cursor \([A-Za-z0-9_-]*\).*/\1/p' <<<"$ERR")
[ -n "$CUR" ] || fail "ls --limit prints no next cursor on stderr: $ERR"
first=$(awk 'NR == 2 {print $1}' <<<"$OUT")
cli ls --all --limit 5 --cursor "$CUR"
[ "$RC" = 0 ] || fail "ls --cursor exited $RC: $ERR"
grep -q "$first" <<<"$OUT" && fail "the second page repeats the first's $first"
cli ls --all --status ended --limit 5 --cursor "$CUR"
[ "$RC" != 0 ] || fail "a cursor with other filters was accepted by the CLI"
assert_contains "$ERR" "cursor" "CLI shows the daemon's cursor error"
cli events "$SIDN" --limit 3
[ "$RC" = 0 ] || fail "sessions events --limit exited $RC: $ERR"
assert_eq "$(($(wc -l <<<"$OUT") - 1))" 3 "rows of events --limit 3"
echo "PASS session_paging"
