#!/usr/bin/env bash
# bench/compare.sh REV [ROUNDS] [ARGS...]: the pipeline benchmark of commit REV and of this
# checkout, alternately (which goes first alternates too), ROUNDS times (default 2), each a
# release build of its own, so the two are measured side by side on the same machine. ARGS go to the benchmark (default:
# --rows 200000 --workers 2 --skip naive,indexes,prefilled,fairness,latency,search). Needs what `cargo bench
# --bench pipeline` needs (deploy/services.sh, ../shared/bench/gen_contacts.py). REV is checked
# out in target/compare/REV (a git worktree) with target/compare/target as its build folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rev=$(git rev-parse --short "${1:?usage: bench/compare.sh REV [ROUNDS] [ARGS...]}")
rounds=${2:-2}
shift $(($# < 2 ? $# : 2))
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--rows 200000 --workers 2 --skip naive,indexes,prefilled,fairness,latency,search)
export DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

# The path of the pipeline benchmark's executable that `cargo bench --no-run` builds in $1
# (with the environment assignments that follow); its output goes to $1.build.log.
build() {
  local dir=$1
  shift
  if ! (cd "$dir" && env "$@" cargo bench --bench pipeline --no-run) >"$dir.build.log" 2>&1; then
    echo "compare: the build in $dir failed:" >&2
    tail -n 20 "$dir.build.log" >&2
    return 1
  fi
  sed -nE 's/.*Executable benches\/pipeline.rs \((.*)\)/\1/p' "$dir.build.log" | tail -n 1
}
mkdir -p target/compare
# The old checkout finds the data generator where this one does, in ../shared.
[ -e target/compare/shared ] || ln -s "$(cd .. && pwd)/shared" target/compare/shared
old_dir=target/compare/$rev
[ -d "$old_dir" ] || git worktree add --detach "$old_dir" "$rev" >/dev/null
old_bin=$(build "$old_dir" CARGO_TARGET_DIR="$PWD/target/compare/target")
new_bin=$(build "$PWD")
case $old_bin in /*) ;; *) old_bin=$old_dir/$old_bin ;; esac
case $new_bin in /*) ;; *) new_bin=$PWD/$new_bin ;; esac
[ -x "$old_bin" ] && [ -x "$new_bin" ] || { echo "compare: a build failed" >&2; exit 1; }
# The side that runs first in a round has an edge (measured: the same two builds won 4 of 4
# rounds and lost 4 of 4 by order alone, 2026-12-07), so the order alternates: old then new in
# odd rounds, new then old in even ones. Compare over an even number of rounds.
for round in $(seq "$rounds"); do
  sides="old new"
  [ $((round % 2)) -eq 0 ] && sides="new old"
  for side in $sides; do
    if [ $side = old ]; then dir=$old_dir bin=$old_bin label=$rev; else dir=$PWD bin=$new_bin label="$(git rev-parse --short HEAD)+tree"; fi
    echo "=== round $round: $label ($(date +%T))"
    (cd "$dir" && "$bin" "${args[@]}" --bench 2>&1 | grep -E 'rows/s|^\|')
  done
done
