#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests (internal/store/postgres): one cluster
# in .cache/postgres/, listening on 127.0.0.1 only, trust auth for loopback,
# tuned for speed rather than durability (fsync off). Nothing here is for
# production data.
#
#   scripts/postgres.sh start    initdb on first use, then start; waits until it
#                                accepts connections. A no-op when it is running.
#   scripts/postgres.sh stop     fast shutdown; a no-op when it is not running.
#   scripts/postgres.sh status   exit 0 when running (prints the URL), 3 when not.
#   scripts/postgres.sh url      prints the DSN, e.g.
#                                postgres://postgres@127.0.0.1:39200/postgres?sslmode=disable
#
# `make test` runs start, exports MCPGATE_TEST_POSTGRES_URL="$(scripts/postgres.sh url)"
# for `go test`, and stops the server afterwards unless it was already running
# (so `make postgres` keeps one up across test runs). The cluster stays on disk:
# the first start runs initdb (a few seconds), later starts only start it.
#
# Needs the PostgreSQL server binaries (Debian: the postgresql package, installed by
# scripts/install-test-tools.sh); the newest /usr/lib/postgresql/*/bin is used, or
# PG_BIN. As root the server runs as the `postgres` OS user (PostgreSQL refuses to
# run as root); if that user cannot reach .cache/postgres (e.g. the checkout is under
# a private home), the cluster goes to /tmp/mcpgate-postgres-<hash of the checkout>.
#
# Environment:
#   MCPGATE_PG_PORT   port to listen on (default: the first free from 39200; the
#                     choice is remembered in the cluster directory)
#   MCPGATE_PG_DIR    cluster directory (default .cache/postgres)
#   PG_BIN            directory holding initdb and pg_ctl
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

START_TIMEOUT=60 # seconds for the server to accept connections

# ---------------------------------------------------------------------------
# Who runs the server, and where it lives.
# ---------------------------------------------------------------------------
RUN_AS=() # prefix for commands that must run as the cluster owner
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user (install the postgresql package: make tools)"
  if command -v runuser >/dev/null 2>&1; then
    RUN_AS=(runuser -u postgres --)
  else
    RUN_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
fi
# as_owner runs a command as the cluster owner, without fd 9 (the lock):
# the server must not inherit it, or it would hold the lock forever.
# It runs from / (the owner may not be allowed into the current directory).
as_owner() { (cd / && "${RUN_AS[@]}" "$@") 9>&-; }

find_pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/pg_ctl" ]] || die "PG_BIN=$PG_BIN has no pg_ctl"
    echo "$PG_BIN"
    return
  fi
  local d best=""
  # The newest major version (sort -V: 9.6 < 15).
  while IFS= read -r d; do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && best="$d"
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
  if [[ -z "$best" ]] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    best="$(dirname "$(command -v pg_ctl)")"
  fi
  [[ -n "$best" ]] || die "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb); run: make tools (installs the postgresql package)"
  echo "$best"
}

# cluster_dir picks .cache/postgres, or a /tmp directory when the server's OS
# user cannot reach the checkout.
cluster_dir() {
  if [[ -n "${MCPGATE_PG_DIR:-}" ]]; then
    mkdir -p "$MCPGATE_PG_DIR"
    (cd "$MCPGATE_PG_DIR" && pwd)
    return
  fi
  local dir="$ROOT/.cache/postgres"
  if ((${#RUN_AS[@]} > 0)); then
    mkdir -p "$ROOT/.cache"
    if ! as_owner test -x "$ROOT/.cache"; then
      dir="/tmp/mcpgate-postgres-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
    fi
  fi
  echo "$dir"
}

DIR="$(cluster_dir)"
DATA="$DIR/data"
PORT_FILE="$DIR/port"
LOGFILE="$DIR/server.log"

url_for() { printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$1"; }

# port_in_use: someone listens there, or a socket holds it (an outgoing
# connection's local port is invisible to a connect probe yet blocks bind).
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  ! python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
free_port() {
  local p
  for ((p = $1; p < $1 + 100; p++)); do
    port_in_use "$p" || {
      echo "$p"
      return 0
    }
  done
  die "no free loopback port from $1"
}

is_running() {
  [[ -f "$DATA/PG_VERSION" ]] || return 1
  as_owner "$PG/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# ready PORT: the server answers on 127.0.0.1:PORT.
ready() { "$PG/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -t 2 >/dev/null 2>&1; }

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  log "initdb in $DATA (first run)"
  local tmp="$DATA.init"
  rm -rf "$tmp"
  # initdb into a scratch directory and rename it, so an interrupted initdb
  # never leaves a half-made cluster behind.
  as_owner "$PG/initdb" -D "$tmp" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$DIR/initdb.log" 2>&1 ||
    {
      cat "$DIR/initdb.log" >&2
      die "initdb failed (log: $DIR/initdb.log)"
    }
  # Test settings: loopback TCP only, no unix socket (its path could be too
  # long inside a deep checkout), durability traded for speed.
  as_owner tee -a "$tmp/postgresql.conf" >/dev/null <<'EOF'

# --- mcpgate test cluster (scripts/postgres.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
EOF
  as_owner mv "$tmp" "$DATA"
}

cmd_start() {
  mkdir -p "$DIR"
  if ((${#RUN_AS[@]} > 0)); then
    chown postgres:postgres "$DIR"
  fi
  exec 9>"$DIR/.lock" # serialises concurrent starts/stops of this cluster
  flock -w 120 9 || die "timed out waiting for the lock on $DIR"

  if is_running; then
    local port
    port="$(cat "$PORT_FILE" 2>/dev/null || true)"
    if [[ -n "$port" ]] && ready "$port"; then
      log "already running on 127.0.0.1:$port"
      return 0
    fi
    log "running but not answering; restarting"
    as_owner "$PG/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 >/dev/null 2>&1 || true
  fi

  init_cluster

  local port="${MCPGATE_PG_PORT:-}"
  if [[ -z "$port" ]]; then
    port="$(cat "$PORT_FILE" 2>/dev/null || true)"
    if [[ -z "$port" ]] || port_in_use "$port"; then
      port="$(free_port 39200)"
    fi
  fi
  port_in_use "$port" && die "port $port on 127.0.0.1 is already in use"

  local t0=$SECONDS
  if ! as_owner "$PG/pg_ctl" start -D "$DATA" -l "$LOGFILE" -o "-p $port" -w -t "$START_TIMEOUT" >/dev/null; then
    tail -n 30 "$LOGFILE" >&2 || true
    die "pg_ctl start failed (log: $LOGFILE)"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready "$port"; do
    ((SECONDS < deadline)) || {
      tail -n 30 "$LOGFILE" >&2 || true
      die "server did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s"
    }
    sleep 0.2
  done
  echo "$port" >"$PORT_FILE"
  log "started on 127.0.0.1:$port in $((SECONDS - t0))s ($DATA)"
}

cmd_stop() {
  [[ -d "$DIR" ]] || return 0
  exec 9>"$DIR/.lock"
  flock -w 120 9 || die "timed out waiting for the lock on $DIR"
  if is_running; then
    as_owner "$PG/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null
    log "stopped"
  fi
}

cmd_url() {
  local port
  port="$(cat "$PORT_FILE" 2>/dev/null || true)"
  [[ -n "$port" ]] || die "not started yet (run: scripts/postgres.sh start)"
  url_for "$port"
}

cmd_status() {
  if is_running; then
    cmd_url
    return 0
  fi
  echo "not running" >&2
  return 3
}

case "${1:-}" in
start)
  PG="$(find_pg_bin)"
  cmd_start
  ;;
stop)
  PG="$(find_pg_bin)"
  cmd_stop
  ;;
status)
  PG="$(find_pg_bin)"
  cmd_status
  ;;
url) cmd_url ;;
*)
  echo "usage: $0 start|stop|status|url" >&2
  exit 2
  ;;
esac
