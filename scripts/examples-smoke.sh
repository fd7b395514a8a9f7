#!/usr/bin/env bash
# scripts/examples-smoke.sh — each example's run.sh keeps its contract:
# it starts everything on loopback, mcpgate answers at
# http://127.0.0.1:$PORT with the example's MCP endpoint protected (401 with
# resource metadata), and SIGTERM stops every process it started.
# Part of `make test`; the examples' behaviour itself is tested in Go.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'examples: %s\n' "$*" >&2; }
passed=0
failed=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-examples.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# free_port asks the kernel for a port nothing uses: probing fixed ports
# by connecting misses sockets that are bound but not listening (another
# program's outgoing connection), and then mcpgate cannot bind.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# smoke NAME ENDPOINT: run examples/NAME/run.sh and check it. With
# CONNECTOR=1 in the environment (the metrics example), the upstream is
# served through `mcpgate connector`, which must connect before the stop.
smoke() {
	local name="$1${CONNECTOR:+-connector}" endpoint="$2" port pid ok=0 i code hdr
	port="$(free_port)"
	say "$name: starting examples/$1/run.sh on port $port"
	CONNECTOR="${CONNECTOR:-}" PORT="$port" DATA_DIR="$WORK/$name" MCPGATE_BIN_DIR="$WORK/bin" setsid bash "examples/$1/run.sh" >"$WORK/$name.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 1200; i++)); do # builds come first: up to 120 s
		if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
			ok=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ((ok)); then
		hdr="$(curl -sS --max-time 5 -o /dev/null -D - -X POST "http://127.0.0.1:$port$endpoint" || true)"
		code="$(head -1 <<<"$hdr" | awk '{print $2}')"
		if [[ "$code" != 401 ]] || ! grep -qi 'resource_metadata=' <<<"$hdr"; then
			say "$name: $endpoint answered $code, want 401 with resource_metadata"
			ok=0
		fi
	else
		say "$name: mcpgate did not come up"
	fi
	if ((ok)) && [[ -n "${CONNECTOR:-}" ]]; then
		for ((i = 0; i < 300; i++)); do
			grep -q 'connector metrics-net connected' "$WORK/$name.log" && break
			sleep 0.1
		done
		grep -q 'connector metrics-net connected' "$WORK/$name.log" || { say "$name: the connector did not connect"; ok=0; }
	fi
	# SIGTERM the script: it must stop everything it started.
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name: run.sh did not stop on SIGTERM"
		ok=0
	fi
	wait "$pid" 2>/dev/null || true
	sleep 0.3
	if pgrep -f -- "$WORK/bin/" >/dev/null; then
		say "$name: processes left behind: $(pgrep -fa -- "$WORK/bin/" | tr '\n' ';')"
		pkill -KILL -f -- "$WORK/bin/" || true
		ok=0
	fi
	if ((ok)); then
		echo "PASS $name: up at http://127.0.0.1:$port$endpoint (401 with resource metadata), stopped cleanly on SIGTERM"
		passed=$((passed + 1))
	else
		echo "FAIL $name (log: below)"
		tail -n 30 "$WORK/$name.log" >&2
		failed=$((failed + 1))
	fi
}

smoke calendar /mcp/calendar
smoke machine-agents /mcp/platform
smoke hub /mcp/hub
smoke metrics /mcp/metrics
CONNECTOR=1 smoke metrics /mcp/metrics
echo "examples: $passed passed, $failed failed"
((failed == 0))
