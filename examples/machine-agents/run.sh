#!/usr/bin/env bash
# The machine-agents example (scenario S5), from the repository root or anywhere:
#
#   bash examples/machine-agents/run.sh
#
#   1. builds bin/mcpgate and bin/platform-server
#   2. starts the platform MCP server on a free loopback port
#      (one line per tool call in $DATA_DIR/platform-calls.log)
#   3. starts mcpgate on http://127.0.0.1:$PORT, which serves it at /mcp/platform to the
#      pre-registered clients env-bot and org-admin (client credentials grant)
#
# Ctrl-C (SIGINT) or SIGTERM stops both. If either exits, the other is stopped too.
#
# Environment:
#   PORT               gateway port (default 8080)
#   DATA_DIR           state: gateway store, logs (default ./data/machine-agents)
#   ENV_BOT_SECRET     env-bot's client secret (default: a demo value, see mcpgate.yaml)
#   ORG_ADMIN_SECRET   org-admin's client secret (default: a demo value)
#   MCPGATE_BIN_DIR    where to build the binaries (default ./bin)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

say() { printf 'machine-agents: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

export PORT="${PORT:-8080}"
export DATA_DIR="${DATA_DIR:-$ROOT/data/machine-agents}"
BIN="${MCPGATE_BIN_DIR:-$ROOT/bin}"
BASE="http://127.0.0.1:$PORT"
MCP_URL="$BASE/mcp/platform"

CONFIG="$HERE/mcpgate.yaml"

command -v go >/dev/null || die "go is needed to build the example"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$PORT" && die "port $PORT is in use; stop whatever listens there or set PORT"

mkdir -p "$DATA_DIR" "$BIN"
DATA_DIR="$(cd "$DATA_DIR" && pwd)" # absolute: the config's store path is relative to nothing
SRV_LOG="$DATA_DIR/platform-server.log"

say "building mcpgate and platform-server into $BIN"
go build -o "$BIN/" ./cmd/mcpgate ./examples/machine-agents/...

SRV_PID=
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
  stop "$SRV_PID" platform-server
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting platform-server (log: $SRV_LOG)"
"$BIN/platform-server" -listen 127.0.0.1:0 -calls-log "$DATA_DIR/platform-calls.log" </dev/null >"$SRV_LOG" 2>&1 &
SRV_PID=$!
PLATFORM_PORT=
for ((i = 0; i < 100; i++)); do
  kill -0 "$SRV_PID" 2>/dev/null || { cat "$SRV_LOG" >&2; die "platform-server exited"; }
  line="$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$SRV_LOG" || true)"
  if [[ -n "$line" ]]; then
    PLATFORM_PORT="${line##*:}"
    PLATFORM_PORT="${PLATFORM_PORT%/mcp}"
    break
  fi
  sleep 0.1
done
[[ -n "$PLATFORM_PORT" ]] || die "platform-server did not report its address within 10 s (see $SRV_LOG)"
export PLATFORM_PORT
say "platform-server listening on http://127.0.0.1:$PLATFORM_PORT/mcp"

say "starting mcpgate serve --config ${CONFIG#"$ROOT"/}"
"$BIN/mcpgate" serve --config "$CONFIG" </dev/null &
GW_PID=$!
for ((i = 0; ; i++)); do
  kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited (see its messages above)"
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$BASE/healthz" || true)" == 200 ]] && break
  ((i < 300)) || die "mcpgate did not answer $BASE/healthz within 30 s"
  sleep 0.1
done

# Shown as typed: the demo values, or a reference to the variable the secret came from.
ENV_BOT_SHOWN='env-bot-demo-secret'
ORG_ADMIN_SHOWN='org-admin-demo-secret'
if [[ -n "${ENV_BOT_SECRET:-}" ]]; then ENV_BOT_SHOWN="\"\$ENV_BOT_SECRET\""; fi
if [[ -n "${ORG_ADMIN_SECRET:-}" ]]; then ORG_ADMIN_SHOWN="\"\$ORG_ADMIN_SECRET\""; fi
cat >&2 <<EOF

  The platform server is up at $MCP_URL for two machine clients:
      env-bot     may get env:read             (list_environments)
      org-admin   may get env:read org:write   (list_environments, create_organization)

  Get a token (client credentials; the resource names the server):
      curl -s -u env-bot:$ENV_BOT_SHOWN -d grant_type=client_credentials \\
           -d resource=$MCP_URL $BASE/oauth/token
      curl -s -u org-admin:$ORG_ADMIN_SHOWN -d grant_type=client_credentials \\
           -d resource=$MCP_URL $BASE/oauth/token

  Then call tools with "Authorization: Bearer <access_token>" (see examples/machine-agents/README.md).
  The platform server's log of tool calls: $DATA_DIR/platform-calls.log
  Ctrl-C stops the gateway and the platform server.

EOF

# Run until a signal arrives or either process exits.
wait -n "$GW_PID" "$SRV_PID" || true
kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited"
die "platform-server exited (see $SRV_LOG)"
