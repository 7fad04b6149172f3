#!/usr/bin/env bash
# The run command (README): starts PostgreSQL and RabbitMQ if needed, creates the database, then
# runs the whole service in one process (API, outbox relay and workers) on LISTEN_ADDR
# (default 127.0.0.1:8080). Extra arguments go to `contact-import run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/services.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/contact_import}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

# Create the database named in DATABASE_URL if missing, connecting to the `postgres` database of
# the same server.
url_no_query=${DATABASE_URL%%\?*}
query=${DATABASE_URL#"$url_no_query"}
db=${url_no_query##*/}
admin_url="${url_no_query%/*}/postgres${query}"
if ! psql "$admin_url" -v ON_ERROR_STOP=1 -Atq -v db="$db" \
  <<<"SELECT 1 FROM pg_database WHERE datname = :'db'" | grep -q 1; then
  echo "run: creating database $db" >&2
  psql "$admin_url" -v ON_ERROR_STOP=1 -q -v db="$db" <<<'CREATE DATABASE :"db"'
fi

exec cargo run --release -- run "$@"
