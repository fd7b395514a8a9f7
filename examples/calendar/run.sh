#!/usr/bin/env bash
# The calendar example (scenario S1), from the repository root or anywhere:
#
#   bash examples/calendar/run.sh
#
#   1. builds bin/mcpgate and bin/calendar-server
#   2. starts the calendar MCP server on a free loopback port
#      (events in $DATA_DIR/calendar.db, one line per tool call in $DATA_DIR/calendar-calls.log)
#   3. starts mcpgate on http://127.0.0.1:$PORT, which serves it at /mcp/calendar
#
# Ctrl-C (SIGINT) or SIGTERM stops both. If either exits, the other is stopped too.
#
# Environment:
#   PORT               gateway port (default 8080)
#   DATA_DIR           state: gateway store, calendar database, logs (default ./data/calendar)
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

say "building mcpgate and calendar-server into $BIN"
go build -o "$BIN/" ./cmd/mcpgate ./examples/calendar/...

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
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting calendar-server (log: $CAL_LOG)"
"$BIN/calendar-server" -listen 127.0.0.1:0 -db "$DATA_DIR/calendar.db" \
  -calls-log "$DATA_DIR/calendar-calls.log" </dev/null >"$CAL_LOG" 2>&1 &
CAL_PID=$!
CALENDAR_PORT=
for ((i = 0; i < 100; i++)); do
  kill -0 "$CAL_PID" 2>/dev/null || { cat "$CAL_LOG" >&2; die "calendar-server exited"; }
  line="$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$CAL_LOG" || true)"
  if [[ -n "$line" ]]; then
    CALENDAR_PORT="${line##*:}"
    CALENDAR_PORT="${CALENDAR_PORT%/mcp}"
    break
  fi
  sleep 0.1
done
[[ -n "$CALENDAR_PORT" ]] || die "calendar-server did not report its address within 10 s (see $CAL_LOG)"
export CALENDAR_PORT
say "calendar-server listening on http://127.0.0.1:$CALENDAR_PORT/mcp"

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

  Try it:
      npx @modelcontextprotocol/inspector $MCP_URL
      npx mcp-remote $MCP_URL

  The calendar server's log of tool calls: $DATA_DIR/calendar-calls.log
  Ctrl-C stops the gateway and the calendar server.

EOF

# Run until a signal arrives or either process exits.
wait -n "$GW_PID" "$CAL_PID" || true
kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited"
die "calendar-server exited (see $CAL_LOG)"
