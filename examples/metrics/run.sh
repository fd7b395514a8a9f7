#!/usr/bin/env bash
# The metrics example (scenario S2, per-user data access), from the repository
# root or anywhere:
#
#   bash examples/metrics/run.sh
#
#   1. builds bin/mcpgate and bin/metrics-server
#   2. starts a throwaway PostgreSQL (scripts/postgres.sh, in a temporary
#      directory, 127.0.0.1 only) and applies schema.sql to it
#   3. starts the metrics MCP server on a free loopback port, logging in as
#      metrics_gateway (one line per tool call in $DATA_DIR/metrics-calls.log)
#   4. starts mcpgate on http://127.0.0.1:$PORT, which serves it at /mcp/metrics
#   5. with CONNECTOR=1: mcpgate reaches the metrics server only through an
#      outbound connector (`mcpgate connector`, mcpgate-connector.yaml), as
#      from a private network with no inbound port (docs/connector.md)
#
# Ctrl-C (SIGINT) or SIGTERM stops all three and deletes the database. If
# mcpgate or the metrics server exits, the others are stopped too.
#
# Environment:
#   PORT             gateway port (default 8080)
#   CONNECTOR        1: serve the metrics server through a connector
#   DATA_DIR         gateway store and logs (default ./data/metrics)
#   MCPGATE_BIN_DIR  where to build the binaries (default ./bin)
#   PG_BIN           directory holding initdb and pg_ctl (default: the newest
#                    /usr/lib/postgresql/*/bin; Debian: apt-get install postgresql)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

say() { printf 'metrics: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

export PORT="${PORT:-8080}"
export DATA_DIR="${DATA_DIR:-$ROOT/data/metrics}"
BIN="${MCPGATE_BIN_DIR:-$ROOT/bin}"
BASE="http://127.0.0.1:$PORT"
MCP_URL="$BASE/mcp/metrics"

command -v go >/dev/null || die "go is needed to build the example"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$PORT" && die "port $PORT is in use; stop whatever listens there or set PORT"

mkdir -p "$DATA_DIR" "$BIN"
DATA_DIR="$(cd "$DATA_DIR" && pwd)" # absolute: the config's store path is relative to nothing
METRICS_LOG="$DATA_DIR/metrics-server.log"

say "building mcpgate and metrics-server into $BIN"
go build -o "$BIN/" ./cmd/mcpgate ./examples/metrics/cmd/metrics-server

PG_DIR=
METRICS_PID=
GW_PID=
CONN_PID=
CONFIG="$HERE/mcpgate.yaml"
[[ "${CONNECTOR:-}" == 1 ]] && CONFIG="$HERE/mcpgate-connector.yaml"
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
  stop "$CONN_PID" connector
  stop "$METRICS_PID" metrics-server
  if [[ -n "$PG_DIR" ]]; then
    MCPGATE_PG_DIR="$PG_DIR" bash "$ROOT/scripts/postgres.sh" stop || say "could not stop PostgreSQL in $PG_DIR"
    rm -rf "$PG_DIR"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A throwaway cluster: its own directory (removed on exit), 127.0.0.1 only,
# trust authentication for loopback (scripts/postgres.sh).
PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-metrics-pg.XXXXXX")"
chmod 755 "$PG_DIR"
say "starting PostgreSQL in $PG_DIR"
MCPGATE_PG_DIR="$PG_DIR" bash scripts/postgres.sh start
ADMIN_DSN="$(MCPGATE_PG_DIR="$PG_DIR" bash scripts/postgres.sh url)" # postgres://postgres@127.0.0.1:P/postgres?sslmode=disable
GATEWAY_DSN="${ADMIN_DSN/postgres:\/\/postgres@/postgres://metrics_gateway@}"

# metrics-server -init applies schema.sql as the superuser, then serves as
# metrics_gateway. (With psql: psql "$ADMIN_DSN" -v ON_ERROR_STOP=1 -f examples/metrics/schema.sql)
say "starting metrics-server (log: $METRICS_LOG)"
"$BIN/metrics-server" -listen 127.0.0.1:0 -issuer "$BASE" -init "$ADMIN_DSN" -db "$GATEWAY_DSN" \
  -calls-log "$DATA_DIR/metrics-calls.log" </dev/null >"$METRICS_LOG" 2>&1 &
METRICS_PID=$!
METRICS_PORT=
for ((i = 0; i < 300; i++)); do
  kill -0 "$METRICS_PID" 2>/dev/null || { cat "$METRICS_LOG" >&2; die "metrics-server exited"; }
  line="$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*/mcp' "$METRICS_LOG" || true)"
  if [[ -n "$line" ]]; then
    METRICS_PORT="${line##*:}"
    METRICS_PORT="${METRICS_PORT%/mcp}"
    break
  fi
  sleep 0.1
done
[[ -n "$METRICS_PORT" ]] || die "metrics-server did not report its address within 30 s (see $METRICS_LOG)"
export METRICS_PORT
say "metrics-server listening on http://127.0.0.1:$METRICS_PORT/mcp"

if [[ "${CONNECTOR:-}" == 1 ]]; then
  # The connector's own key (private_key_jwt); the gateway registers its
  # public half as the client metrics-connector.
  rm -f "$DATA_DIR/connector.pem"
  CONNECTOR_JWKS="$("$BIN/mcpgate" connector keygen --key "$DATA_DIR/connector.pem" --kid metrics-net-1)"
  export CONNECTOR_JWKS
fi
say "starting mcpgate serve --config ${CONFIG#"$ROOT"/}"
"$BIN/mcpgate" serve --config "$CONFIG" </dev/null &
GW_PID=$!
for ((i = 0; ; i++)); do
  kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited (see its messages above)"
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$BASE/healthz" || true)" == 200 ]] && break
  ((i < 300)) || die "mcpgate did not answer $BASE/healthz within 30 s"
  sleep 0.1
done

if [[ "${CONNECTOR:-}" == 1 ]]; then
  cat >"$DATA_DIR/connector.yaml" <<EOF
gateway: $BASE
name: metrics-net
client_id: metrics-connector
private_key_file: $DATA_DIR/connector.pem
key_id: metrics-net-1
upstreams:
  - {name: metrics, url: "http://127.0.0.1:$METRICS_PORT/mcp"}
EOF
  say "starting mcpgate connector (log: $DATA_DIR/connector.log)"
  "$BIN/mcpgate" connector --config "$DATA_DIR/connector.yaml" </dev/null >"$DATA_DIR/connector.log" 2>&1 &
  CONN_PID=$!
  for ((i = 0; ; i++)); do
    kill -0 "$CONN_PID" 2>/dev/null || { cat "$DATA_DIR/connector.log" >&2; die "the connector exited"; }
    grep -q 'connected to the gateway' "$DATA_DIR/connector.log" && break
    ((i < 300)) || die "the connector did not connect within 30 s (see $DATA_DIR/connector.log)"
    sleep 0.1
  done
  say "connector metrics-net connected: the gateway reaches the metrics server only through it"
fi

cat >&2 <<EOF

  The metrics server is up. MCP server URL (paste into your MCP client):

      $MCP_URL

  Sign in with a built-in user:
      alice / alice   cs-engineering: may call bq.read.customer_metrics; the database shows acme and globex
      bob   / bob     cs-engineering: may call bq.read.customer_metrics; the database shows initech
      carol / carol   csm: may call bq.write.annotations only (mcpgate refuses her read call, in words)

  Try it:
      npx @modelcontextprotocol/inspector $MCP_URL
      npx mcp-remote $MCP_URL

  The metrics server's log of tool calls (who called what): $DATA_DIR/metrics-calls.log
  The database (throwaway, deleted on exit): psql "$ADMIN_DSN"
  Ctrl-C stops the gateway, the metrics server and PostgreSQL.

EOF

# Run until a signal arrives or either process exits.
wait -n "$GW_PID" "$METRICS_PID" ${CONN_PID:+"$CONN_PID"} || true
kill -0 "$GW_PID" 2>/dev/null || die "mcpgate exited"
[[ -z "$CONN_PID" ]] || kill -0 "$CONN_PID" 2>/dev/null || die "the connector exited (see $DATA_DIR/connector.log)"
die "metrics-server exited (see $METRICS_LOG)"
