#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the datastore tests and bench.
#   scripts/pg-test-server.sh start   # installs PostgreSQL via apt if missing, starts, prints the URL
#   scripts/pg-test-server.sh stop
#   scripts/pg-test-server.sh url     # prints the connection string
# Environment: ZTWIM_PG_DIR (default /tmp/ztwim-pg-test), ZTWIM_PG_PORT (default 25432),
#              ZTWIM_PG_DB (default ztwim_test), ZTWIM_PG_STOP_MODE (pg_ctl stop -m: fast (default),
#              immediate = crash-like, smart).
# The cluster listens on 127.0.0.1:$PORT and on a Unix socket in $DIR; it trusts local connections
# (test use only). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
# Test ports sit below Linux's ephemeral range (32768-60999): a port in it can be held for a moment
# as the local end of any outgoing connection, and the cluster's start then fails with
# "Address already in use" (seen in CI on 55434).
set -euo pipefail

DIR="${ZTWIM_PG_DIR:-/tmp/ztwim-pg-test}"
PORT="${ZTWIM_PG_PORT:-25432}"
DB="${ZTWIM_PG_DB:-ztwim_test}"
URL="postgres://postgres@127.0.0.1:${PORT}/${DB}"

die() { echo "pg-test-server: $*" >&2; exit 1; }

find_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

ensure_installed() {
  local bin
  bin="$(find_bin || true)"
  if [ -z "$bin" ]; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and this is not root: apt-get install -y postgresql"
    echo "pg-test-server: installing postgresql via apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2 && apt-get install -y postgresql >&2 || die "apt-get install postgresql failed"
    bin="$(find_bin || true)"
    [ -n "$bin" ] || die "postgresql installed but initdb not found under /usr/lib/postgresql/*/bin"
  fi
  echo "$bin"
}

# Runs a command as the cluster owner (postgres when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  local bin="$1"
  [ -f "$DIR/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

# The port a running cluster listens on (line 4 of postmaster.pid).
running_port() {
  sed -n 4p "$DIR/data/postmaster.pid" 2>/dev/null || true
}

start() {
  local bin
  bin="$(ensure_installed)"
  # A cluster left running on another port (an older default) is restarted on this one.
  if running "$bin" && [ "$(running_port)" != "$PORT" ]; then
    as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null
  fi
  if ! running "$bin"; then
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || die "no postgres system user to run the cluster as"
      chown postgres "$DIR"
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      rm -rf "$DIR/data"
      as_owner "$bin/initdb" -D "$DIR/data" -A trust -U postgres --no-sync >"$DIR/initdb.log" 2>&1 \
        || die "initdb failed: $(tail -n 5 "$DIR/initdb.log")"
    fi
    # fsync stays on: the restart tests check that committed writes survive.
    as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
      || die "pg_ctl start failed: $(tail -n 5 "$DIR/server.log" 2>/dev/null)"
  fi
  if ! as_owner "$bin/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_owner "$bin/createdb" -h "$DIR" -p "$PORT" -U postgres "$DB" || die "createdb $DB failed"
  fi
  echo "$URL"
}

stop() {
  local bin
  bin="$(find_bin || true)"
  [ -n "$bin" ] || exit 0
  if running "$bin"; then
    as_owner "$bin/pg_ctl" -D "$DIR/data" -m "${ZTWIM_PG_STOP_MODE:-fast}" -w -t 60 stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "$URL" ;;
  *) die "usage: $0 start|stop|url" ;;
esac
