#!/usr/bin/env bash
# The test command (README): starts PostgreSQL and RabbitMQ if needed, then format check, clippy
# and the whole test suite. Extra arguments go to `cargo test` (e.g. a test name filter).
# Integration tests create a fresh database per test from TEST_DATABASE_URL (an admin URL) and
# their own queue prefix on AMQP_URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo "==> [${SECONDS}s] $*" >&2; }

step "services (and Chromium for tests/api/operations.rs)"
WITH_CHROMIUM=1 bash deploy/services.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-$DATABASE_URL}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "deploy/validate.sh (Dockerfile, docker-compose.yml, deploy/kubernetes)"
bash deploy/validate.sh

step "schemathesis for the OpenAPI contract test (target/contract/venv)"
bash deploy/venv.sh target/contract/venv tests/contract/requirements.txt

step "cargo test --locked $*"
cargo test --locked "$@"
