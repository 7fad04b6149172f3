# Sourced by the bench scripts: `start_service NAME` creates a fresh database bench_NAME_<pid>,
# starts `$BIN run` (a release build, built if BIN is unset) on a random port with its own queue
# prefix, waits until it is ready, creates the tenant `bench` and sets KEY, PID and LISTEN_ADDR;
# everything is dropped again when the script exits. WORKERS defaults to 2.
# Needs PostgreSQL and RabbitMQ (deploy/services.sh).
start_service() {
  admin=${ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
  db="bench_$1_$$"
  if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/contact-import
  fi
  psql "$admin" -qc "CREATE DATABASE $db"
  export DATABASE_URL="${admin%/*}/$db" AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
  export QUEUE_PREFIX="bench_$$" LISTEN_ADDR="127.0.0.1:$((20000 + RANDOM % 20000))"
  export WORKERS=${WORKERS:-2} RUST_LOG=warn
  "$BIN" run &
  PID=$!
  trap stop_service EXIT
  until curl -sf "http://$LISTEN_ADDR/readyz" >/dev/null; do sleep 0.2; done
  KEY=$("$BIN" tenant create bench | tail -n 1)
}

stop_service() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  if command -v rabbitmqctl >/dev/null; then
    for q in "$QUEUE_PREFIX.batches" "$QUEUE_PREFIX.batches.dlq"; do
      rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
  fi
}

# The service's peak RSS so far, in MiB.
peak_rss() {
  awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$PID/status"
}
