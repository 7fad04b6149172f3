#!/usr/bin/env bash
# bench/busy.sh [SECONDS] [DATABASE_PATTERN]: what PostgreSQL's busy backends are running, by
# statement, sampled from pg_stat_activity every 20 ms for SECONDS (default 30), over the
# databases whose name matches DATABASE_PATTERN (a LIKE pattern, default: all). Run it beside an
# import (the pipeline benchmark's databases are `bench_%`): the share of samples per statement
# is the share of the database's busy time, which perf cannot name (PostgreSQL's frames have no
# statement). Prints the 20 most sampled statements (their first 100 characters), most first.
set -euo pipefail
seconds=${1:-30}
pattern=${2:-%}
url=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
end=$((SECONDS + seconds))
samples=0
seen=$(mktemp)
trap 'rm -f "$seen"' EXIT
while [ "$SECONDS" -lt "$end" ]; do
  psql "$url" -XAtq -v pattern="$pattern" >>"$seen" <<'SQL'
SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 100)
FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND datname LIKE :'pattern'
SQL
  samples=$((samples + 1))
  sleep 0.02
done
sort "$seen" | uniq -c | sort -rn | head -n 20
echo "($samples samples over ${seconds}s, $(wc -l <"$seen") busy backends seen)"
