#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are up for the service and
# its tests. Idempotent: when both already answer it only checks (well under a second); on a fresh
# Debian 12 machine it installs them with apt-get and starts them without systemd. After it,
# postgres://postgres:postgres@127.0.0.1:5432/postgres and amqp://guest:guest@127.0.0.1:5672/%2f work.
set -euo pipefail

PG_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres
START_TIMEOUT=${SERVICES_START_TIMEOUT:-120} # seconds allowed for each service to come up
APT_UPDATED=

log() { echo "services: $*" >&2; }
die() {
  echo "services: ERROR: $*" >&2
  exit 1
}

# Prints the end of log files, to explain a failed start.
show_logs() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "--- tail of $f" >&2
    tail -n 20 "$f" >&2 || true
  done
}

# Runs a command as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Installs Debian packages; runs `apt-get update` at most once per invocation. apt's output goes
# to a file (shown on failure), so a daemon that a package's post-install starts cannot hold
# the caller's stdout/stderr open.
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get): install it by hand"
  local out=/tmp/contact-import-apt.log
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1 </dev/null; then
      tail -n 20 "$out" >&2
      die "apt-get update failed"
    fi
    APT_UPDATED=1
  fi
  log "installing $* (log: $out)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1 </dev/null; then
    tail -n 20 "$out" >&2
    die "apt-get install $* failed"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Polls "$@" once a second until it succeeds; false after START_TIMEOUT seconds.
wait_for() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2; }

pg_login_ok() { PGCONNECT_TIMEOUT=5 psql "$PG_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
  # psql and pg_isready are needed here and by deploy/run.sh, even for a server we don't manage.
  if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
    apt_install postgresql-client
  fi

  if ! pg_ready; then
    if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
      apt_install postgresql
    fi
    local version
    # shellcheck disable=SC2012 # version directories are plain numbers
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ] || [ ! -d "/etc/postgresql/$version/main" ]; then
      # shellcheck disable=SC2012
      version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
      log "creating PostgreSQL $version cluster 'main'"
      as_root pg_createcluster "$version" main >&2 || die "pg_createcluster $version main failed"
    fi
    # The package's post-install may already have started it; start it only if it isn't running.
    if ! as_root pg_ctlcluster "$version" main status >/dev/null 2>&1; then
      log "starting PostgreSQL $version"
      local out=/tmp/contact-import-postgresql-start.log
      if ! as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >"$out" 2>&1 </dev/null; then
        cat "$out" >&2
        show_logs "/var/log/postgresql/postgresql-$version-main.log"
        die "pg_ctlcluster $version main start failed"
      fi
    fi
    if ! wait_for pg_ready; then
      show_logs "/var/log/postgresql/postgresql-$version-main.log"
      die "PostgreSQL is not accepting connections on 127.0.0.1:5432 after ${START_TIMEOUT}s"
    fi
  fi

  if ! pg_login_ok; then
    # A fresh Debian cluster asks TCP clients for a password the postgres role doesn't have yet.
    # Setting it is harmless under trust auth; pg_hba.conf is left as it is.
    log "setting the password of role postgres (for $PG_URL)"
    (cd / && as_root su postgres -c "psql -q -c \"ALTER ROLE postgres PASSWORD 'postgres'\"") >&2 ||
      die "could not set the postgres role's password (is this server local?)"
    pg_login_ok || die "cannot log in as $PG_URL (check pg_hba.conf)"
  fi
  log "PostgreSQL ok on 127.0.0.1:5432"
}

rabbit_up() { port_open 5672; }

# True when the local RabbitMQ node runs, even if it hasn't opened its listeners yet.
rabbit_node_runs() { as_root timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; }

ensure_rabbitmq() {
  if ! rabbit_up; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    local deadline=$((SECONDS + START_TIMEOUT)) last_start=-1000 out=/tmp/contact-import-rabbitmq-start.log
    until rabbit_up; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        show_logs "$out" /var/log/rabbitmq/*.log
        die "RabbitMQ did not start within ${START_TIMEOUT}s (nothing on 127.0.0.1:5672)"
      fi
      # Start the node when it doesn't run at all (the package's post-install may have started it),
      # and again if that start came to nothing (`-detached` says nothing when boot fails, e.g.
      # while an old node is still stopping).
      if [ $((SECONDS - last_start)) -ge 20 ] && ! rabbit_node_runs; then
        log "starting RabbitMQ"
        as_root rabbitmq-server -detached >"$out" 2>&1 </dev/null || true
        last_start=$SECONDS
      fi
      # Fails at once while the Erlang node itself isn't up yet.
      as_root timeout 30 rabbitmqctl -q await_startup --timeout 25 >/dev/null 2>&1 || sleep 1
    done
  fi
  log "RabbitMQ ok on 127.0.0.1:5672"
  ensure_rabbitmq_management
}

# Best effort: the management plugin (UI and HTTP API on :15672) helps operators, nothing needs it.
ensure_rabbitmq_management() {
  local plugins_file=${RABBITMQ_ENABLED_PLUGINS_FILE:-/etc/rabbitmq/enabled_plugins}
  port_open 15672 && return 0
  grep -qs rabbitmq_management "$plugins_file" && return 0
  command -v rabbitmq-plugins >/dev/null || return 0
  log "enabling rabbitmq_management"
  as_root timeout 60 rabbitmq-plugins -q enable rabbitmq_management >/dev/null 2>&1 ||
    log "warning: could not enable rabbitmq_management (not needed to run or test)"
}

# Headless Chromium and its WebDriver, for the operations page test (tests/api/operations.rs);
# only when asked (deploy/test.sh does): running the service needs neither.
ensure_chromium() {
  if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || [ -n "${CHROMIUM:-}" ]; }; then
    return 0
  fi
  apt_install chromium chromium-driver
  log "Chromium ok: $(chromium --version 2>/dev/null)"
}

ensure_postgres
ensure_rabbitmq
if [ "${WITH_CHROMIUM:-}" = 1 ]; then
  ensure_chromium
fi
