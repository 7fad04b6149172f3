#!/usr/bin/env bash
# Exports N contacts (default 1,000,000, stored by SQL on a fresh database) through a release
# `contact-import run` with curl, as CSV and as NDJSON, and prints the time, the bytes and the
# service's peak RSS (VmHWM) after each. Usage: bench/export_memory.sh [N]
#   BIN=path/to/contact-import (default: a release build, built if missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000000}
export WORKERS=1
. bench/service.sh
start_service export
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
echo "stored $n contacts; service peak RSS before: $(peak_rss)"
for format in csv ndjson; do
  start=$(date +%s.%N)
  bytes=$(curl -sf "http://$LISTEN_ADDR/api/v1/contacts/export.csv?format=$format" -H "Authorization: Bearer $KEY" | wc -c)
  took=$(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$start")
  echo "$format: $bytes bytes in ${took}s; service peak RSS $(peak_rss)"
done
