#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: the cost of mcpgate relative to a bare
# httputil.ReverseProxy, both in front of the same fast upstream. See
# docs/performance.md for the method.
#
# Needs bin/mcpgate, bin/mcpfixture and bin/mcpload (built by the Makefile).
# Everything listens on 127.0.0.1 and every process started here is stopped
# on exit.
#
# Environment (all optional):
#   BENCH_SESSIONS=32       concurrent MCP sessions per run
#   BENCH_DURATION=10s      measured duration per run
#   BENCH_WARMUP=1s         unmeasured warmup at the start of each run
#   BENCH_ROUNDS=3          alternating rounds (direct, proxy, mcpgate, oauth; each era)
#   BENCH_ERAS="2025-11-25 2026-07-28"
#                           protocol eras, each measured on every target in every
#                           round (mcpload -era): 2025-11-25 sessions, 2026-07-28
#                           stateless requests (_meta, Mcp-Method/Mcp-Name, no session)
#   BENCH_UPSTREAM_PORT, BENCH_PROXY_PORT, BENCH_GATE_PORT
#                           fixed ports (default: free ports picked at random)
#   BENCH_BIN_DIR=bin       where the three binaries are
#   BENCH_CONFIG=bench/mcpgate.yaml   mcpgate config (ports as ${VAR})
#   BENCH_START_TIMEOUT=15  seconds to wait for each server to come up
#   BENCH_KEEP=1            keep the work directory (logs, raw outputs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN_DIR="${BENCH_BIN_DIR:-bin}"
SESSIONS="${BENCH_SESSIONS:-32}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-1s}"
ROUNDS="${BENCH_ROUNDS:-3}"
ERAS="${BENCH_ERAS:-2025-11-25 2026-07-28}"
CONFIG="${BENCH_CONFIG:-bench/mcpgate.yaml}"
START_TIMEOUT="${BENCH_START_TIMEOUT:-15}"

die() {
	echo "bench: $*" >&2
	exit 1
}

[[ -n "${EPOCHREALTIME:-}" ]] || die "bash 5 or later is required"
[[ "$SESSIONS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SESSIONS must be a positive integer, got '$SESSIONS'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'"
[[ "$START_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_START_TIMEOUT must be a positive integer (seconds)"
read -ra ERA_LIST <<<"$ERAS"
((${#ERA_LIST[@]} > 0)) || die "BENCH_ERAS is empty"
for e in "${ERA_LIST[@]}"; do
	[[ "$e" == 2025-11-25 || "$e" == 2026-07-28 ]] || die "BENCH_ERAS: unknown era '$e' (known: 2025-11-25 2026-07-28)"
done
for b in mcpgate mcpfixture mcpload; do
	[[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b not found or not executable (run: make bench)"
done
[[ -r "$CONFIG" ]] || die "cannot read $CONFIG"
command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-bench.XXXXXX")"
PIDS=()
NAMES=()
LOAD_PID=""

# ---- cleanup: stop exactly the processes started here, bounded in time ----
now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i pid deadline
	if [[ -n "$LOAD_PID" ]]; then # an interrupted mcpload run
		PIDS+=("$LOAD_PID")
		NAMES+=("mcpload-run")
	fi
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$(($(now_ms) + 5000))
	for i in "${!PIDS[@]}"; do
		pid="${PIDS[$i]}"
		while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "bench: ${NAMES[$i]} (pid $pid) ignored SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	if ((rc != 0)); then
		for i in "${!NAMES[@]}"; do
			if [[ -s "$WORK/${NAMES[$i]}.log" ]]; then
				echo "---- last lines of ${NAMES[$i]}.log ----" >&2
				tail -n 20 "$WORK/${NAMES[$i]}.log" >&2 || true
			fi
		done
	fi
	if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
		echo "bench: logs and raw outputs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- ports ----
USED_PORTS=" "
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port VAR: keep $VAR if set in the environment, else pick a free port.
pick_port() {
	local -n ref="$1"
	if [[ -n "${ref:-}" ]]; then
		[[ "$ref" =~ ^[0-9]+$ ]] || die "$1 must be a port number, got '$ref'"
		port_open "$ref" && die "$1=$ref is already in use on 127.0.0.1"
	else
		local p tries
		for ((tries = 0; tries < 200; tries++)); do
			p=$((20000 + RANDOM % 40000))
			[[ "$USED_PORTS" == *" $p "* ]] && continue
			# Free means nobody listens AND it can be bound (an outgoing
			# connection's local port is invisible to a connect probe).
			port_open "$p" || python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null || continue
			port_open "$p" || break
		done
		((tries < 200)) || die "no free port found"
		ref="$p"
	fi
	USED_PORTS+="$ref "
	export "${1?}"
}
pick_port BENCH_UPSTREAM_PORT
pick_port BENCH_PROXY_PORT
pick_port BENCH_GATE_PORT

# ---- servers ----
# start NAME CMD...: run CMD in the background, output to $WORK/NAME.log.
start() {
	local name="$1"
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=("$!")
	NAMES+=("$name")
}

# wait_until NAME PID CHECK...: poll CHECK until it succeeds, PID dies, or
# START_TIMEOUT passes.
wait_until() {
	local name="$1" pid="$2"
	shift 2
	local deadline=$(($(now_ms) + START_TIMEOUT * 1000))
	until "$@"; do
		kill -0 "$pid" 2>/dev/null || die "$name exited during startup (see its log below)"
		(($(now_ms) < deadline)) || die "$name did not come up within ${START_TIMEOUT}s"
		sleep 0.1
	done
}

UPSTREAM_URL="http://127.0.0.1:$BENCH_UPSTREAM_PORT/mcp"
PROXY_URL="http://127.0.0.1:$BENCH_PROXY_PORT/mcp"
GATE_URL="http://127.0.0.1:$BENCH_GATE_PORT/mcp/bench"
AUTH_URL="http://127.0.0.1:$BENCH_GATE_PORT/mcp/bench-auth"
export BENCH_DATA="$WORK" BENCH_CLIENT_SECRET="bench-$RANDOM-$RANDOM-$RANDOM-secret"

start mcpfixture "$BIN_DIR/mcpfixture" -http "127.0.0.1:$BENCH_UPSTREAM_PORT"
wait_until mcpfixture "${PIDS[-1]}" port_open "$BENCH_UPSTREAM_PORT"

start proxy "$BIN_DIR/mcpload" proxy -listen "127.0.0.1:$BENCH_PROXY_PORT" -target "$UPSTREAM_URL"
wait_until proxy "${PIDS[-1]}" port_open "$BENCH_PROXY_PORT"

# mcpgate expands ${BENCH_GATE_PORT} and ${BENCH_UPSTREAM_PORT} (exported by
# pick_port) in the config itself.
gate_healthy() { curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$BENCH_GATE_PORT/healthz" 2>/dev/null; }
start mcpgate "$BIN_DIR/mcpgate" serve --config "$CONFIG"
wait_until mcpgate "${PIDS[-1]}" gate_healthy

# A token for the OAuth-protected server, by client credentials.
TOKEN="$(curl -fsS --max-time 10 -u "bench-agent:$BENCH_CLIENT_SECRET" -d grant_type=client_credentials \
	--data-urlencode "resource=$AUTH_URL" "http://127.0.0.1:$BENCH_GATE_PORT/oauth/token" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
[[ -n "$TOKEN" ]] || die "could not get a token for the OAuth target"

echo "bench: upstream $UPSTREAM_URL, proxy $PROXY_URL, mcpgate $GATE_URL, mcpgate+oauth $AUTH_URL"
echo "bench: $SESSIONS sessions, $DURATION per run (+$WARMUP warmup), 1 warmup pass + $ROUNDS rounds, eras: ${ERA_LIST[*]}"

# ---- load ----
TARGETS=(direct proxy mcpgate oauth)
declare -A URLS=([direct]="$UPSTREAM_URL" [proxy]="$PROXY_URL" [mcpgate]="$GATE_URL" [oauth]="$AUTH_URL")
declare -A BEARER=([oauth]="$TOKEN")
declare -A RPS P50 P99 # "era/target" -> space-separated values of the measured rounds
TOTAL_ERRORS=0

# json_num KEY JSON: a numeric field of mcpload's JSON line.
json_num() {
	local re="\"$1\":(-?[0-9][0-9.eE+-]*)"
	[[ "$2" =~ $re ]] || die "no numeric \"$1\" in mcpload output: $2"
	printf '%s' "${BASH_REMATCH[1]}"
}

printf '\n%-7s %-10s %-8s %12s %10s %10s %8s\n' round era target rps p50_ms p99_ms errors
# measure ROUND ERA TARGET
measure() {
	local round="$1" era="$2" target="$3" out json rps p50 p99 errs proto
	out="$WORK/run-$round-$era-$target"
	# In the background so that a signal to this script is handled at once.
	local auth=()
	[[ -n "${BEARER[$target]:-}" ]] && auth=(-bearer "${BEARER[$target]}")
	"$BIN_DIR/mcpload" run -url "${URLS[$target]}" -era "$era" -sessions "$SESSIONS" \
		-duration "$DURATION" -warmup "$WARMUP" "${auth[@]}" >"$out.out" 2>"$out.err" &
	LOAD_PID=$!
	if ! wait "$LOAD_PID"; then
		LOAD_PID=""
		cat "$out.out" "$out.err" >&2
		die "mcpload against $target (${URLS[$target]}, era $era) failed"
	fi
	LOAD_PID=""
	json="$(tail -n 1 "$out.out")"
	rps="$(json_num rps "$json")"
	p50="$(json_num p50_ms "$json")"
	p99="$(json_num p99_ms "$json")"
	errs="$(json_num errors "$json")"
	# mcpload -era fails a run that got the other era; say which one it got.
	[[ "$json" == *"\"protocol\":\"$era\""* ]] || die "mcpload against $target did not run era $era: $json"
	printf '%-7s %-10s %-8s %12.1f %10.3f %10.3f %8d\n' "$round" "$era" "$target" "$rps" "$p50" "$p99" "$errs"
	TOTAL_ERRORS=$((TOTAL_ERRORS + errs))
	if [[ "$round" != warmup ]]; then
		RPS[$era/$target]+="$rps "
		P50[$era/$target]+="$p50 "
		P99[$era/$target]+="$p99 "
	fi
}

# Once each, to warm every path up (not part of the medians) ...
for e in "${ERA_LIST[@]}"; do
	for t in "${TARGETS[@]}"; do measure warmup "$e" "$t"; done
done
# ... then alternate, so that machine noise hits all targets and eras alike.
for ((r = 1; r <= ROUNDS; r++)); do
	for e in "${ERA_LIST[@]}"; do
		for t in "${TARGETS[@]}"; do measure "$r" "$e" "$t"; done
	done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f\n", m}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "null"; else printf "%.3f\n", a / b}'; }

declare -A MRPS MP50 MP99
for e in "${ERA_LIST[@]}"; do
	for t in "${TARGETS[@]}"; do
		k="$e/$t"
		MRPS[$k]="$(median "${RPS[$k]}")"
		MP50[$k]="$(median "${P50[$k]}")"
		MP99[$k]="$(median "${P99[$k]}")"
		printf '%-7s %-10s %-8s %12.1f %10.3f %10.3f\n' median "$e" "$t" "${MRPS[$k]}" "${MP50[$k]}" "${MP99[$k]}"
	done
done
echo
# Per era, each path against the bare proxy of the same era in the same run.
ERA_JSON=""
for e in "${ERA_LIST[@]}"; do
	g="$(ratio "${MRPS[$e/mcpgate]}" "${MRPS[$e/proxy]}")"
	a="$(ratio "${MRPS[$e/oauth]}" "${MRPS[$e/proxy]}")"
	p="$(ratio "${MRPS[$e/proxy]}" "${MRPS[$e/direct]}")"
	echo "era $e: rps ratio mcpgate/bare-proxy: $g, mcpgate+oauth/bare-proxy: $a, bare-proxy/direct: $p"
	target_json() { printf '{"rps":%s,"p50_ms":%s,"p99_ms":%s}' "${MRPS[$e/$1]}" "${MP50[$e/$1]}" "${MP99[$e/$1]}"; }
	ERA_JSON+="${ERA_JSON:+,}$(printf '"%s":{"median":{"direct":%s,"proxy":%s,"mcpgate":%s,"oauth":%s},"ratio_gate_vs_proxy":%s,"ratio_oauth_vs_proxy":%s,"ratio_proxy_vs_direct":%s}' \
		"$e" "$(target_json direct)" "$(target_json proxy)" "$(target_json mcpgate)" "$(target_json oauth)" "$g" "$a" "$p")"
done
if ((${#ERA_LIST[@]} == 2)); then
	# The stateless era against the session era, path by path (same run).
	for t in direct proxy mcpgate oauth; do
		printf '%s 2026-07-28/2025-11-25 rps: %s\n' "$t" "$(ratio "${MRPS[2026-07-28/$t]}" "${MRPS[2025-11-25/$t]}")"
	done
fi
if ((TOTAL_ERRORS > 0)); then
	echo "bench: WARNING: $TOTAL_ERRORS failed calls in total; the figures are suspect" >&2
fi
printf '{"sessions":%d,"duration":"%s","rounds":%d,"errors":%d,"eras":{%s}}\n' \
	"$SESSIONS" "$DURATION" "$ROUNDS" "$TOTAL_ERRORS" "$ERA_JSON"
[[ "${BENCH_CONNECTOR:-1}" != 1 ]] || bash "$ROOT/scripts/bench-connector.sh" >&2 # the connector (issue 10), BENCH_CONNECTOR=0 skips it; its output on stderr so the JSON line above stays last on stdout
