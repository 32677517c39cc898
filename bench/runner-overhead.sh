#!/usr/bin/env bash
# Per-sample overhead of `dokja bench run` itself (planning excluded): the documented fake
# backend answers instantly, so the time per sample is the runner's (request digest, cache
# lookup, scoring, one durable SQLite transaction per sample, progress).
# Usage: bench/runner-overhead.sh [DATA_DIR]   (default: shared/data/benchmarks)
# Measures two runs of GSM8K (generation + numeric extraction) with 100 and 1000 samples and
# reports (t1000 - t100) / 900 per sample, so planning and start-up cancel out.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-$(cd .. && pwd)/shared/data/benchmarks}
[ -d "$data" ] || data=/work/shared/data/benchmarks
cargo build -q --release -p dokja-cli
bin=${CARGO_TARGET_DIR:-target}/release/dokja
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  local n=$1
  local start end
  start=$(date +%s.%N)
  "$bin" bench run --fake-backend "" --suite gsm8k --data "$data" --db "$tmp/runs-$n.sqlite" \
    --limit "$n" --concurrency 4 --no-cache --quiet >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
t100=$(run 100)
t1000=$(run 1000)
per=$(echo "($t1000 - $t100) / 900 * 1000" | bc -l)
printf 'machine: %s, %s cores\n' "$(uname -m)" "$(nproc)"
printf '100 samples: %.3f s, 1000 samples: %.3f s\n' "$t100" "$t1000"
printf 'runner overhead: %.3f ms per sample (durable commit per sample, synchronous=FULL)\n' "$per"
