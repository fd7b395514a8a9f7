#!/usr/bin/env bash
# Runs the hub example (scenario S3) on loopback: three sample upstreams
# (codehost, cloud, tracker) and mcpgate at http://127.0.0.1:${PORT:-8080}
# with the endpoint /mcp/hub. Sign in as alice / alice. Ctrl-C or SIGTERM
# stops everything. Logs: $DATA_DIR/<upstream>.log names the user of every
# call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export PORT="${PORT:-8080}"
export DATA_DIR="${DATA_DIR:-$ROOT/data/hub}"
BIN="${MCPGATE_BIN_DIR:-$ROOT/bin}"
mkdir -p "$DATA_DIR" "$BIN"
go build -o "$BIN/" ./cmd/mcpgate ./examples/hub/cmd/sample-upstream

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
for name in codehost cloud tracker; do
  port="$(free_port)"
  export "${name^^}_PORT=$port"
  "$BIN/sample-upstream" -name "$name" -listen "127.0.0.1:$port" -issuer "http://127.0.0.1:$PORT" \
    -log "$DATA_DIR/$name.log" 2>>"$DATA_DIR/$name.stderr" &
  PIDS+=($!)
done
"$BIN/mcpgate" serve --config examples/hub/mcpgate.yaml &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  sleep 0.1
done
cat >&2 <<MSG

  hub example: http://127.0.0.1:$PORT/mcp/hub   (sign in as alice / alice)
  tools: codehost__whoami, cloud__whoami, tracker__whoami, codehost__list_repositories, …
  each upstream's log names the user: $DATA_DIR/{codehost,cloud,tracker}.log

MSG
wait "${PIDS[-1]}"
