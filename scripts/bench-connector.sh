#!/usr/bin/env bash
# scripts/bench-connector.sh — the cost of the outbound connector (issue 10):
# mcpgate in front of one fixture directly and of a second, identical one
# through `mcpgate connector`, same run, alternating rounds. Target: the
# tunnel's p50 at most 1.3x the direct path's on loopback. See
# docs/performance.md "Through a connector".
#
# Needs bin/mcpgate, bin/mcpfixture and bin/mcpload. Everything listens on
# 127.0.0.1; every process started here is stopped on exit.
#
# Environment (all optional): BENCH_SESSIONS=32, BENCH_DURATION=10s,
# BENCH_WARMUP=1s, BENCH_ROUNDS=3, BENCH_BIN_DIR=bin, BENCH_KEEP=1 (keep logs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN_DIR="${BENCH_BIN_DIR:-bin}"
SESSIONS="${BENCH_SESSIONS:-32}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-1s}"
ROUNDS="${BENCH_ROUNDS:-3}"

die() {
	echo "bench-connector: $*" >&2
	exit 1
}
for b in mcpgate mcpfixture mcpload; do
	[[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b not found (run: make build)"
done
command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-bench-connector.XXXXXX")"
PIDS=()
NAMES=()
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in "${!PIDS[@]}"; do
		pid="${PIDS[$i]}"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		if ((rc != 0)) && [[ -s "$WORK/${NAMES[$i]}.log" ]]; then
			echo "---- last lines of ${NAMES[$i]}.log ----" >&2
			tail -n 20 "$WORK/${NAMES[$i]}.log" >&2 || true
		fi
	done
	if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench-connector: logs in $WORK" >&2; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {
	local name="$1"
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=("$!")
	NAMES+=("$name")
}
wait_until() { # NAME CHECK...
	local name="$1" i
	shift
	for ((i = 0; i < 150; i++)); do
		"$@" && return 0
		kill -0 "${PIDS[-1]}" 2>/dev/null || die "$name exited during startup"
		sleep 0.1
	done
	die "$name did not come up within 15s"
}

export BENCH_UPSTREAM_PORT BENCH_PRIVATE_PORT BENCH_GATE_PORT BENCH_DATA="$WORK"
BENCH_UPSTREAM_PORT="$(free_port)"
BENCH_PRIVATE_PORT="$(free_port)"
BENCH_GATE_PORT="$(free_port)"
CONNECTOR_JWKS="$("$BIN_DIR/mcpgate" connector keygen --key "$WORK/connector.pem" --kid bench-1)"
export CONNECTOR_JWKS

start fixture-direct "$BIN_DIR/mcpfixture" -http "127.0.0.1:$BENCH_UPSTREAM_PORT"
wait_until fixture-direct port_open "$BENCH_UPSTREAM_PORT"
start fixture-private "$BIN_DIR/mcpfixture" -http "127.0.0.1:$BENCH_PRIVATE_PORT"
wait_until fixture-private port_open "$BENCH_PRIVATE_PORT"
start mcpgate "$BIN_DIR/mcpgate" serve --config bench/connector.yaml
wait_until mcpgate curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$BENCH_GATE_PORT/healthz" 2>/dev/null
cat >"$WORK/connector.yaml" <<YAML
gateway: http://127.0.0.1:$BENCH_GATE_PORT
name: bench-net
client_id: bench-connector
private_key_file: $WORK/connector.pem
key_id: bench-1
upstreams: [{name: fixture, url: "http://127.0.0.1:$BENCH_PRIVATE_PORT/mcp"}]
YAML
start connector "$BIN_DIR/mcpgate" connector --config "$WORK/connector.yaml"
wait_until connector grep -q 'connected to the gateway' "$WORK/connector.log"

declare -A URLS=([direct]="http://127.0.0.1:$BENCH_GATE_PORT/mcp/direct" [tunnel]="http://127.0.0.1:$BENCH_GATE_PORT/mcp/tunnel")
declare -A RPS P50 P99
ERRORS=0
json_num() {
	local re="\"$1\":(-?[0-9][0-9.eE+-]*)"
	[[ "$2" =~ $re ]] || die "no \"$1\" in: $2"
	printf '%s' "${BASH_REMATCH[1]}"
}
measure() { # ROUND TARGET
	local json
	json="$("$BIN_DIR/mcpload" run -url "${URLS[$2]}" -sessions "$SESSIONS" -duration "$DURATION" -warmup "$WARMUP" 2>"$WORK/load-$1-$2.err" | tail -n 1)" ||
		die "mcpload against $2 failed: $(cat "$WORK/load-$1-$2.err")"
	printf '%-7s %-7s %12.1f %10.3f %10.3f %8d\n' "$1" "$2" "$(json_num rps "$json")" "$(json_num p50_ms "$json")" "$(json_num p99_ms "$json")" "$(json_num errors "$json")"
	ERRORS=$((ERRORS + $(json_num errors "$json")))
	if [[ "$1" != warmup ]]; then
		RPS[$2]+="$(json_num rps "$json") "
		P50[$2]+="$(json_num p50_ms "$json") "
		P99[$2]+="$(json_num p99_ms "$json") "
	fi
}
echo "bench-connector: $SESSIONS sessions, $DURATION per run, 1 warmup pass + $ROUNDS rounds"
printf '%-7s %-7s %12s %10s %10s %8s\n' round target rps p50_ms p99_ms errors
for t in direct tunnel; do measure warmup "$t"; done
for ((r = 1; r <= ROUNDS; r++)); do for t in direct tunnel; do measure "$r" "$t"; done; done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.3f\n", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "null"; else printf "%.3f\n", a / b}'; }
declare -A M50 M99 MRPS
for t in direct tunnel; do
	MRPS[$t]="$(median "${RPS[$t]}")"
	M50[$t]="$(median "${P50[$t]}")"
	M99[$t]="$(median "${P99[$t]}")"
	printf '%-7s %-7s %12.1f %10.3f %10.3f\n' median "$t" "${MRPS[$t]}" "${M50[$t]}" "${M99[$t]}"
done
P50_RATIO="$(ratio "${M50[tunnel]}" "${M50[direct]}")"
RPS_RATIO="$(ratio "${MRPS[tunnel]}" "${MRPS[direct]}")"
ADDED="$(awk -v a="${M50[tunnel]}" -v b="${M50[direct]}" 'BEGIN {printf "%.3f\n", a - b}')"
echo
echo "p50 ratio tunnel/direct: $P50_RATIO (target <= 1.3); added p50 latency: $ADDED ms; rps ratio: $RPS_RATIO"
((ERRORS == 0)) || echo "bench-connector: WARNING: $ERRORS failed calls; the figures are suspect" >&2
printf '{"sessions":%d,"duration":"%s","rounds":%d,"errors":%d,"median":{"direct":{"rps":%s,"p50_ms":%s,"p99_ms":%s},"tunnel":{"rps":%s,"p50_ms":%s,"p99_ms":%s}},"p50_ratio":%s,"rps_ratio":%s}\n' \
	"$SESSIONS" "$DURATION" "$ROUNDS" "$ERRORS" "${MRPS[direct]}" "${M50[direct]}" "${M99[direct]}" \
	"${MRPS[tunnel]}" "${M50[tunnel]}" "${M99[tunnel]}" "$P50_RATIO" "$RPS_RATIO"
