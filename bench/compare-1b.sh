#!/usr/bin/env bash
# Times `dokja compare` on two 1B-parameter-shaped synthetic models (TinyLlama-1.1B dims,
# BF16, sharded): a fine-tuned pair and an independent pair, with peak resident memory, in
# memory-mapped and positioned-read modes. Models are generated under ${BENCH_DIR:-/tmp/dokja-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/dokja-bench}
mkdir -p "$dir"
cargo build --release --locked -q -p dokja-cli
cargo build --release --locked -q -p dokja-testkit --example synth-model
gen=target/release/examples/synth-model
[ -d "$dir/1b-a" ] || "$gen" 1b 1 "$dir/1b-a"
[ -d "$dir/1b-tuned" ] || "$gen" 1b 1 "$dir/1b-tuned" 0.1
[ -d "$dir/1b-other" ] || "$gen" 1b 2 "$dir/1b-other"
run() {
  local label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %U s user, peak RSS %M KiB" target/release/dokja compare "$@" >"$dir/$label.txt" 2>"$dir/$label.time" || { cat "$dir/$label.time"; exit 1; }
  tail -n 1 "$dir/$label.time"
  grep -m1 '^verdict' "$dir/$label.txt"
}
run fine-tuned-mmap "$dir/1b-a" "$dir/1b-tuned"
run fine-tuned-pread "$dir/1b-a" "$dir/1b-tuned" --no-mmap
run independent-pread "$dir/1b-a" "$dir/1b-other" --no-mmap
du -sh "$dir/1b-a" "$dir/1b-tuned"
