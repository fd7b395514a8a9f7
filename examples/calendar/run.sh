#!/usr/bin/env bash
# The calendar example (scenario S1), from the repository root or anywhere:
#
#   bash examples/calendar/run.sh
#
#   1. builds bin/mcpgate, bin/calendar-server, bin/calendar-api and bin/testidp
#   2. starts, each on a free loopback port:
#      - the calendar's OAuth provider (bin/testidp; its users sam / sam and riley / riley),
#      - the downstream calendar API (bin/calendar-api), which accepts only that
#        provider's tokens and keeps each user's events (in memory),
#      - the calendar MCP server (bin/calendar-server -api), which calls the API with
#        the token each call carries (one line per tool call in $DATA_DIR/calendar-calls.log)
#   3. starts mcpgate on http://127.0.0.1:$PORT, which serves it at /mcp/calendar and
#      hands it each user's own calendar token, connected once at /connections
#
# Ctrl-C (SIGINT) or SIGTERM stops all four. If one exits, the others are stopped too.
#
# Environment:
#   PORT               gateway port (default 8080)
#   DATA_DIR           state: gateway store, vault key, logs (default ./data/calendar)
#   IDP_ISSUER         tenant-a's OIDC issuer; when set, mcpgate-idp.yaml is used
#   IDP_CLIENT_SECRET  mcpgate's client secret at that IdP (required with IDP_ISSUER)
#   MCPGATE_BIN_DIR    where to build the binaries (default ./bin)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

say() { printf 'calendar: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

export PORT="${PORT:-8080}"
export DATA_DIR="${DATA_DIR:-$ROOT/data/calendar}"
BIN="${MCPGATE_BIN_DIR:-$ROOT/bin}"
BASE="http://127.0.0.1:$PORT"
MCP_URL="$BASE/mcp/calendar"

CONFIG="$HERE/mcpgate.yaml"
if [[ -n "${IDP_ISSUER:-}" ]]; then
  [[ -n "${IDP_CLIENT_SECRET:-}" ]] || die "IDP_ISSUER is set but IDP_CLIENT_SECRET is not (mcpgate's client secret at the IdP)"
  CONFIG="$HERE/mcpgate-idp.yaml"
fi

command -v go >/dev/null || die "go is needed to build the example"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$PORT" && die "port $PORT is in use; stop whatever listens there or set PORT"

mkdir -p "$DATA_DIR" "$BIN"
DATA_DIR="$(cd "$DATA_DIR" && pwd)" # absolute: the config's store path is relative to nothing
CAL_LOG="$DATA_DIR/calendar-server.log"
API_LOG="$DATA_DIR/calendar-api.log"
IDP_LOG="$DATA_DIR/calendar-provider.log"

say "building mcpgate, calendar-server, calendar-api and testidp into $BIN"
go build -o "$BIN/" ./cmd/mcpgate ./cmd/testidp ./examples/calendar/cmd/...

IDP_PID=
API_PID=
CAL_PID=
GW_PID=
# stop PID NAME: SIGTERM, up to 20 s to exit, then SIGKILL; always reaped.
# shellcheck disable=SC2317 # called from the EXIT trap
stop() {
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop within 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  trap '' INT TERM # a second Ctrl-C must not cut the shutdown short
  stop "$GW_PID" mcpgate # first the gateway, so that it drains its requests
  stop "$CAL_PID" calendar-server
  stop "$API_PID" calendar-api
  stop "$IDP_PID" "the calendar's OAuth provider"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_url PID NAME LOG: the http://127.0.0.1:PORT… URL after "listening on"
# in LOG, within 10 s; dies if the process exits first.
wait_url() {
  local pid="$1" name="$2" log="$3" url i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$name exited"; }
    url="$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+(/mcp)?' "$log" || true)"
    if [[ -n "$url" ]]; then
      printf '%s\n' "${url#listening on }"
      return
    fi
    sleep 0.1
  done
  die "$name did not report its address within 10 s (see $log)"
}

# The calendar's own OAuth provider, as a real calendar service has one. It
# lives in memory: every run starts with fresh accounts, keys and tokens. Its
# client is mcpgate's connection calendar-api, with a new secret each run.
export CALENDAR_API_CLIENT_ID=mcpgate-calendar
CALENDAR_API_CLIENT_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export CALENDAR_API_CLIENT_SECRET
IDP_CONFIG="$DATA_DIR/calendar-provider.yaml"
(
  umask 077 # it holds the client secret and the demo passwords
  cat >"$IDP_CONFIG" <<EOF
# Written by run.sh on every start: the calendar's OAuth provider (bin/testidp).
users: # demo accounts at the calendar service, not at mcpgate
  - {username: sam, password: sam, email: sam@tenant-a.example}
  - {username: riley, password: riley, email: riley@tenant-a.example}
clients:
  - id: $CALENDAR_API_CLIENT_ID
    secret: $CALENDAR_API_CLIENT_SECRET
    redirect_uris: [$BASE/connections/callback]
EOF
)
say "starting the calendar's OAuth provider (log: $IDP_LOG)"
"$BIN/testidp" -listen 127.0.0.1:0 -config "$IDP_CONFIG" </dev/null >"$IDP_LOG" 2>&1 &
IDP_PID=$!
IDP_URL="$(wait_url "$IDP_PID" "the calendar's OAuth provider" "$IDP_LOG")"
say "the calendar's OAuth provider is at $IDP_URL"

say "starting calendar-api (log: $API_LOG)"
"$BIN/calendar-api" -listen 127.0.0.1:0 -userinfo "$IDP_URL/userinfo" </dev/null >"$API_LOG" 2>&1 &
API_PID=$!
API_URL="$(wait_url "$API_PID" calendar-api "$API_LOG")"
say "calendar-api listening on $API_URL"

say "starting calendar-server (log: $CAL_LOG)"
"$BIN/calendar-server" -listen 127.0.0.1:0 -api "$API_URL" \
  -calls-log "$DATA_DIR/calendar-calls.log" </dev/null >"$CAL_LOG" 2>&1 &
CAL_PID=$!
CAL_URL="$(wait_url "$CAL_PID" calendar-server "$CAL_LOG")"
CALENDAR_PORT="${CAL_URL##*:}"
export CALENDAR_PORT="${CALENDAR_PORT%/mcp}"
say "calendar-server listening on $CAL_URL"

# What mcpgate.yaml's connection calendar-api reads.
export CALENDAR_API_AUTHORIZE_URL="$IDP_URL/authorize"
export CALENDAR_API_TOKEN_URL="$IDP_URL/oauth/token"
export CALENDAR_API_URL="$API_URL"

say "starting mcpgate serve --config ${CONFIG#"$ROOT"/}"
"$BIN/mcpgate" serve --config "$CONFIG" </dev/null &
GW_PID=$!
for ((i = 0; ; i++)); do
  kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited (see its messages above)"
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$BASE/healthz" || true)" == 200 ]] && break
  ((i < 300)) || die "mcpgate did not answer $BASE/healthz within 30 s"
  sleep 0.1
done

if [[ -n "${IDP_ISSUER:-}" ]]; then
  signin="  tenant-a's people (e-mail @tenant-a.example) sign in through $IDP_ISSUER: members
  of its group Schedulers may read and write, everyone else may only read.
  The config's built-in users:"
else
  signin="  Sign in with a built-in user:"
fi
cat >&2 <<EOF

  The calendar is up. MCP server URL (paste into your MCP client):

      $MCP_URL

$signin
      sam   / sam     group Schedulers: may read and write (list, check, create, update, delete)
      riley / riley   may only read (list_events, check_availability)

  Connect your calendar once (until you do, tool calls answer with this address):

      $BASE/connections

  Sign in there as above, press Connect next to calendar-api, and sign in at the
  calendar's own OAuth provider as sam / sam (or riley / riley). From then on your
  calls reach the calendar API with your own calendar token, and the events you
  create are yours there ("owner": "sam@tenant-a.example").

  Try it:
      npx @modelcontextprotocol/inspector $MCP_URL
      npx mcp-remote $MCP_URL

  The calendar server's log of tool calls: $DATA_DIR/calendar-calls.log
  The calendar API's log (whose events):   $API_LOG
  Ctrl-C stops the gateway, the calendar server, the calendar API and its provider.

EOF

# Run until a signal arrives or any process exits.
wait -n "$GW_PID" "$CAL_PID" "$API_PID" "$IDP_PID" || true
kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited"
kill -0 "$CAL_PID" 2>/dev/null || die "calendar-server exited (see $CAL_LOG)"
kill -0 "$API_PID" 2>/dev/null || die "calendar-api exited (see $API_LOG)"
die "the calendar's OAuth provider exited (see $IDP_LOG)"
