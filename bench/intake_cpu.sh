#!/usr/bin/env bash
# bench/intake_cpu.sh [REQUESTS]: the CPU time a `POST /api/v1/contacts` of 3000 generated
# contacts costs the process that takes it. Starts `serve` alone (no worker) on a fresh database
# of its own, posts REQUESTS requests (default 150) one after the other after three to warm up,
# and prints the service's user + system time per request (/proc/PID/stat), that of its
# database backends, and the wall time per request as curl saw it. Run two builds alternately
# (BIN=...) to compare them.
#   BIN=path/to/contact-import (default: a release build, built if missing)
# Needs PostgreSQL and RabbitMQ (deploy/services.sh) and ../shared/bench/gen_contacts.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=${1:-150}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/contact-import
fi
admin=${ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
db="bench_intake_cpu_$$"
data=$(mktemp -d)
export DATABASE_URL="${admin%/*}/$db" AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export QUEUE_PREFIX="bench_$$" LISTEN_ADDR="127.0.0.1:$((20000 + RANDOM % 20000))"
export RUST_LOG=warn RATE_LIMIT_RPS=100000 RATE_LIMIT_BURST=100000
PID=
finish() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  if command -v rabbitmqctl >/dev/null; then
    rabbitmqctl -q delete_queue "$QUEUE_PREFIX.batches" >/dev/null 2>&1 || true
    rabbitmqctl -q delete_queue "$QUEUE_PREFIX.batches.dlq" >/dev/null 2>&1 || true
    # rabbitmqctl has no command for exchanges; this is RabbitMQ 3.x's internal call.
    for exchange in events dlx; do
      rabbitmqctl eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$QUEUE_PREFIX.$exchange\">>), false, <<\"bench\">>)." >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$data"
}
trap finish EXIT
python3 ../shared/bench/gen_contacts.py json 30000 >"$data/requests.jsonl"
split -l 1 -d "$data/requests.jsonl" "$data/body."
bodies=("$data"/body.*)
psql "$admin" -qc "CREATE DATABASE $db"
"$BIN" serve >"$data/service.log" 2>&1 &
PID=$!
until curl -sf "http://$LISTEN_ADDR/readyz" >/dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "intake_cpu: the service stopped:" >&2; tail -n 5 "$data/service.log" >&2; exit 1; }
  sleep 0.2
done
KEY=$("$BIN" tenant create bench | tail -n 1)
auth="Authorization: Bearer $KEY"
for field in '{"name":"plan","type":"enum","options":["free","standard","premium","trial"]}' \
  '{"name":"account_balance","type":"number"}'; do
  curl -sf -o /dev/null -H "$auth" -H 'content-type: application/json' -d "$field" \
    "http://$LISTEN_ADDR/api/v1/fields"
done
post() {
  curl -sf -o /dev/null -H "$auth" -H 'content-type: application/json' --data-binary "@$1" \
    "http://$LISTEN_ADDR/api/v1/contacts"
}
for i in 0 1 2; do post "${bodies[$i]}"; done
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# The CPU of the service's database backends: those open after the warm-up from their ticks
# then, those opened later from their start.
backends() { psql "$admin" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$db'"; }
db_ticks() {
  local pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && echo "$pid $(awk '{print $14 + $15}' "/proc/$pid/stat")"
  done
}
db_before=$(db_ticks $(backends))
before=$(ticks)
started=$(date +%s.%N)
for ((i = 0; i < requests; i++)); do post "${bodies[$((i % ${#bodies[@]}))]}"; done
ended=$(date +%s.%N)
after=$(ticks)
db_after=$(db_ticks $(backends))
python3 - "$before" "$after" "$(getconf CLK_TCK)" "$started" "$ended" "$requests" \
  "$db_before" "$db_after" <<'PY'
import sys
before, after, hz, started, ended, n, db_before, db_after = sys.argv[1:]
ticks = lambda text: dict(line.split() for line in text.splitlines() if line.strip())
db_before, db_after = ticks(db_before), ticks(db_after)
db_used = sum(int(t) - int(db_before.get(pid, 0)) for pid, t in db_after.items())
cpu = (int(after) - int(before)) / int(hz) * 1000 / int(n)
db = db_used / int(hz) * 1000 / int(n)
wall = (float(ended) - float(started)) * 1000 / int(n)
print(f"{n} requests of 3000 contacts: service CPU {cpu:.2f} ms a request, its database "
      f"backends {db:.2f} ms ({len(db_after)} of them), wall {wall:.2f} ms a request")
PY
