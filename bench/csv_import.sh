#!/usr/bin/env bash
# Imports one generated CSV file through a release build of the service, end to end, and
# prints rows/s and the service's peak RSS (VmHWM). Usage:
#   bench/csv_import.sh [ROWS=1000000] [WORKERS=2]
# Needs PostgreSQL and RabbitMQ (deploy/services.sh) and ../shared/bench/gen_contacts.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-1000000}
workers=${2:-2}
data=bench/data
mkdir -p "$data"
file="$data/contacts-$rows.csv"
if [ ! -s "$file" ]; then
  echo "generating $file" >&2
  python3 ../shared/bench/gen_contacts.py csv "$rows" > "$file"
fi
. bench/service.sh
WORKERS=$workers start_service csv
auth="Authorization: Bearer $KEY"
for field in '{"name":"plan","type":"enum","options":["free","standard","premium","trial"]}' \
             '{"name":"account_balance","type":"number"}'; do
  curl -sf -X POST "http://$LISTEN_ADDR/api/v1/fields" -H "$auth" -H 'content-type: application/json' -d "$field" >/dev/null
done
start=$(date +%s.%N)
answer=$(curl -sf -X POST "http://$LISTEN_ADDR/api/v1/imports" -H "$auth" -H 'content-type: text/csv' --data-binary "@$file")
stored=$(date +%s.%N)
id=$(sed -E 's/.*"asyncSessionId":"([^"]+)".*/\1/' <<<"$answer")
while :; do
  status=$(curl -sf "http://$LISTEN_ADDR/api/v1/imports/$id" -H "$auth")
  case "$status" in *'"status":"completed'*|*'"status":"failed"'*|*'"status":"cancelled"'*) break ;; esac
  sleep 0.5
done
done_at=$(date +%s.%N)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
python3 - "$rows" "$start" "$stored" "$done_at" "$rss_kb" "$status" <<'PY'
import json, sys
rows, start, stored, done, rss = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
s = json.loads(sys.argv[6])
print(f"rows={rows} upload+store={stored-start:.1f}s total={done-start:.1f}s rows/s={rows/(done-start):.0f}")
print(f"created={s['created']} updated={s['updated']} skipped={s['skipped']} failed={s['failed']} processed={s['processedRows']}/{s['totalRows']} status={s['status']}")
print(f"service peak RSS={rss/1024:.0f} MiB")
PY
