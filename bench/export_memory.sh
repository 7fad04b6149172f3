#!/usr/bin/env bash
# Exports N contacts (default 1,000,000, stored by SQL on a fresh database) through a release
# `contact-import run` with curl, as CSV and as NDJSON, and prints the time, the bytes and the
# service's peak RSS (VmHWM) after each. Usage: bench/export_memory.sh [N]
#   BIN=path/to/contact-import (default: a release build, built if missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000000}
admin=${ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
db="bench_export_$$"
port=$((20000 + RANDOM % 20000))
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/contact-import
fi
psql "$admin" -qc "CREATE DATABASE $db"
export DATABASE_URL="${admin%/*}/$db" AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export QUEUE_PREFIX="bench_$$" LISTEN_ADDR="127.0.0.1:$port" WORKERS=1 RUST_LOG=warn
"$BIN" run & pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  if command -v rabbitmqctl >/dev/null; then
    for q in "$QUEUE_PREFIX.batches" "$QUEUE_PREFIX.batches.dlq"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done
  fi
}
trap cleanup EXIT
until curl -sf "http://$LISTEN_ADDR/readyz" >/dev/null; do sleep 0.2; done
key=$("$BIN" tenant create bench | tail -n 1)
psql "$DATABASE_URL" -q <<SQL
INSERT INTO contacts (id, tenant_id, phone, email, first_name, last_name, city, tags, consent, created_at)
SELECT gen_random_uuid(), (SELECT id FROM tenants WHERE name = 'bench'),
       '+2126' || lpad(g::text, 8, '0'), 'p' || g || '@example.com', 'First' || g, 'Last' || g,
       'Rabat', ARRAY['vip', 'fair'],
       CASE WHEN g % 3 = 0 THEN '{"sms": {"status": "optedIn", "updatedAt": "2026-01-01T00:00:00Z", "source": "bench"}}'::jsonb END,
       now() - make_interval(secs => $n - g)
FROM generate_series(1, $n) g;
ANALYZE contacts;
SQL
echo "stored $n contacts; service RSS before: $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$pid/status)"
for format in csv ndjson; do
  start=$(date +%s.%N)
  bytes=$(curl -sf "http://$LISTEN_ADDR/api/v1/contacts/export.csv?format=$format" -H "Authorization: Bearer $key" | wc -c)
  took=$(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$start")
  echo "$format: $bytes bytes in ${took}s; service peak RSS $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$pid/status)"
done
