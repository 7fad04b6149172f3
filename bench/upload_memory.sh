#!/usr/bin/env bash
# Uploads one file to a fresh service (its own database and queue prefix) and prints how the
# import ended and the service's peak RSS (VmHWM): the hostile-file table of bench/RESULTS.md.
# Usage: bench/upload_memory.sh FILE CONTENT_TYPE [QUERY]
#   BIN=path/to/contact-import (default: a release build, built if missing)
# Needs PostgreSQL and RabbitMQ (deploy/services.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file=$1
content_type=$2
query=${3:-}
. bench/service.sh
start_service upload
auth="Authorization: Bearer $KEY"
start=$(date +%s.%N)
code=$(curl -s -o /tmp/upload_answer.$$ -w '%{http_code}' -X POST "http://$LISTEN_ADDR/api/v1/imports$query" \
  -H "$auth" -H "content-type: $content_type" --data-binary "@$file")
answer=$(cat /tmp/upload_answer.$$); rm -f /tmp/upload_answer.$$
status=$answer
if [ "$code" = 202 ]; then
  id=$(sed -E 's/.*"asyncSessionId":"([^"]+)".*/\1/' <<<"$answer")
  while :; do
    status=$(curl -sf "http://$LISTEN_ADDR/api/v1/imports/$id" -H "$auth")
    case "$status" in *'"status":"completed'*|*'"status":"failed"'*|*'"status":"cancelled"'*) break ;; esac
    sleep 0.5
  done
fi
done_at=$(date +%s.%N)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
python3 - "$code" "$start" "$done_at" "$rss_kb" "$status" "$(stat -c %s "$file")" <<'PY'
import json, sys
code, start, done, rss, body, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
try:
    s = json.loads(body)
except ValueError:
    s = {"detail": body[:200]}
summary = {k: s[k] for k in ("status", "totalRows", "created", "updated", "failed", "detail") if k in s}
print(f"file={size/1e6:.1f} MB answer={code} took={done-start:.1f}s {summary}")
print(f"service peak RSS={rss/1024:.0f} MiB")
PY
