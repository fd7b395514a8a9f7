#!/usr/bin/env bash
# Quickstart (what `make run` runs after building bin/):
#   1. bin/mcpfixture -http 127.0.0.1:$DEMO_UPSTREAM_PORT in the background: the demo upstream
#   2. bin/mcpgate serve --config examples/quickstart/mcpgate.yaml in the foreground,
#      which serves the demo upstream at http://127.0.0.1:8080/mcp/demo
# Ctrl-C stops the gateway; the fixture is stopped on exit. State goes to ./data/
# (the fixture's log to ./data/mcpfixture.log); nothing else in the repo is written.
#
# Environment:
#   DEMO_UPSTREAM_PORT  port of the demo upstream (default 3002; must match the config,
#                       which can refer to it as ${DEMO_UPSTREAM_PORT})
#   MCPGATE_CONFIG      config file (default examples/quickstart/mcpgate.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEMO_UPSTREAM_PORT="${DEMO_UPSTREAM_PORT:-3002}"
CONFIG="${MCPGATE_CONFIG:-examples/quickstart/mcpgate.yaml}"
DATA="$ROOT/data"

say() { printf 'run: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

for b in bin/mcpfixture bin/mcpgate; do
  [[ -x "$b" ]] || die "$b missing; run 'make run' (it builds first) or 'make build'"
done
[[ -f "$CONFIG" ]] || die "config $CONFIG not found"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

# Where the gateway listens, from the config's top-level `listen:` (default 127.0.0.1:8080).
LISTEN="$(sed -n -E 's/^listen:[[:space:]]*"?([^"#[:space:]]+)"?.*/\1/p' "$CONFIG" | head -1)"
LISTEN="${LISTEN:-127.0.0.1:8080}"
case "$LISTEN" in :*) LISTEN="127.0.0.1$LISTEN" ;; 0.0.0.0:*) LISTEN="127.0.0.1:${LISTEN#*:}" ;; esac
BASE="http://$LISTEN"
MCP_URL="$BASE/mcp/demo"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$DEMO_UPSTREAM_PORT" &&
  die "port $DEMO_UPSTREAM_PORT is in use (another 'make run'?); stop it or set DEMO_UPSTREAM_PORT"
port_in_use "${LISTEN##*:}" && die "port ${LISTEN##*:} ($LISTEN) is in use; stop whatever listens there"
if [[ "$DEMO_UPSTREAM_PORT" != 3002 ]] && ! grep -q 'DEMO_UPSTREAM_PORT' "$CONFIG"; then
  say "warning: DEMO_UPSTREAM_PORT=$DEMO_UPSTREAM_PORT but $CONFIG does not refer to \${DEMO_UPSTREAM_PORT}"
fi

mkdir -p "$DATA"

FIXTURE_PID=
BANNER_PID=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  local pid
  for pid in $BANNER_PID $FIXTURE_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting demo upstream: bin/mcpfixture -http 127.0.0.1:$DEMO_UPSTREAM_PORT (log: data/mcpfixture.log)"
bin/mcpfixture -http "127.0.0.1:$DEMO_UPSTREAM_PORT" </dev/null >>"$DATA/mcpfixture.log" 2>&1 &
FIXTURE_PID=$!
for ((i = 0; ; i++)); do
  kill -0 "$FIXTURE_PID" 2>/dev/null || { tail -n 20 "$DATA/mcpfixture.log" >&2; die "mcpfixture exited"; }
  code="$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "http://127.0.0.1:$DEMO_UPSTREAM_PORT/mcp" || true)"
  [[ "$code" != 000 ]] && break
  ((i < 100)) || die "mcpfixture not ready on 127.0.0.1:$DEMO_UPSTREAM_PORT after 10 s"
  sleep 0.1
done

# Print how to connect once the gateway answers /healthz.
(
  for ((i = 0; i < 300; i++)); do
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$BASE/healthz" || true)" == 200 ]]; then
      cat >&2 <<EOF

  mcpgate is up. MCP server URL (paste into your MCP client):

      $MCP_URL

  It is protected by mcpgate's own OAuth authorization server: your client
  registers itself, opens a browser to sign in, and asks your consent.
  Sign in as   demo / demo-password   (a demo account; see the config).

  Connect a stdio-only client (e.g. Claude Desktop) through mcp-remote:

      npx mcp-remote $MCP_URL

  Or open the MCP Inspector and use its OAuth flow:

      npx @modelcontextprotocol/inspector      (Transport: Streamable HTTP, URL above)

  Without a token the server answers 401 with where to get one:

      curl -si -X POST $MCP_URL | head -5

  Ctrl-C stops the gateway and the demo upstream.

EOF
      exit 0
    fi
    sleep 0.1
  done
) &
BANNER_PID=$!

say "starting gateway: bin/mcpgate serve --config $CONFIG"
rc=0
bin/mcpgate serve --config "$CONFIG" || rc=$?
exit "$rc"
