#!/usr/bin/env bash
# The scale benchmark suite (issue 5). One command:
#
#   bench/run.sh [--sizes LIST] [--dir DIR] [--threads N] [--no-results]
#
# LIST is comma-separated SHAPE[:LAYERS[:EXPERTS]] with SHAPE 1b, 7b or moe, e.g.
# `--sizes 7b` (Llama-2-7B dims, 32 layers, 13.5 GB per model), `--sizes 7b:8,moe:4` (moe: Qwen3-30B-A3B dims, 128 experts, 1.2 GB per layer).
# Default: 7b:8 (a Llama-2-7B-shaped model cut to 8 layers; three full 7B models need 40 GB
# of disk). For every size it generates (once, cached under DIR, default
# ${XDG_CACHE_HOME:-~/.cache}/dokja/bench) a base model, a fine-tune of it (relative change
# 0.1) and an independent model (other seed), all BF16 sharded safetensors, then measures
# side by side on the base model's bytes:
#   cat > /dev/null, b3sum (or sha256sum), dokja fingerprint (throughput and peak RSS),
#   dokja compare base vs fine-tune and base vs independent (wall, CPU, peak RSS, verdict),
#   and a placeholder row for remote audit bytes and time (filled once range reads land).
# Every reading is made twice: the first warms the page cache, the second is reported
# (page-cached figures; a cold-disk figure depends on the disk, not on dokja).
# Rows are appended to bench/RESULTS.md with the machine, the command and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=7b:8
dir=${XDG_CACHE_HOME:-$HOME/.cache}/dokja/bench
threads=
write_results=1
cmdline="bench/run.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-results) write_results=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
need() { # install a Debian package when its command is missing
  command -v "$1" >/dev/null 2>&1 && return
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y --no-install-recommends -qq "$2" >/dev/null 2>&1 ||
      sudo -n apt-get install -y --no-install-recommends -qq "$2" >/dev/null 2>&1) || true
  fi
}
need b3sum b3sum
[ -x /usr/bin/time ] || need /usr/bin/time time
[ -x /usr/bin/time ] || { echo "bench needs /usr/bin/time (Debian package time)" >&2; exit 1; }
hasher=b3sum
command -v b3sum >/dev/null 2>&1 || hasher=sha256sum

target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p dokja-cli
cargo build --release --locked -q -p dokja-testkit --example synth-shards
dokja=$target/release/dokja
gen=$target/release/examples/synth-shards
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tflag=()
[ -n "$threads" ] && tflag=(--threads "$threads")

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
date=$(date -u +%Y-%m-%dT%H:%MZ)
rows=()

# timed LABEL CMD...: runs twice (warm-up, then measured); sets wall, user, rss_kib.
timed() {
  local label=$1; shift
  "$@" >"$work/$label.out" 2>/dev/null || true
  /usr/bin/time -f "%e %U %M" -o "$work/$label.time" "$@" >"$work/$label.out" 2>"$work/$label.err" ||
    { echo "$label failed:" >&2; tail -n 5 "$work/$label.err" >&2; return 1; }
  read -r wall user rss_kib <"$work/$label.time"
}
gbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", (s > 0 ? b / s / 1e9 : 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }

IFS=, read -ra size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  IFS=: read -r shape layers experts <<<"$size"
  opts=()
  [ -n "${layers:-}" ] && opts+=(--layers "$layers")
  [ -n "${experts:-}" ] && opts+=(--experts "$experts")
  base=$dir/$size-base tuned=$dir/$size-tuned other=$dir/$size-other
  for m in "$base|1|" "$tuned|1|0.1" "$other|2|"; do
    IFS='|' read -r path seed strength <<<"$m"
    if [ ! -f "$path/.complete" ]; then
      rm -rf "$path"
      echo "generating $path" >&2
      if [ -n "$strength" ]; then
        "$gen" "$shape" "$seed" "$path" --tune "$strength" "${opts[@]}"
      else
        "$gen" "$shape" "$seed" "$path" "${opts[@]}"
      fi
      touch "$path/.complete"
    fi
  done
  bytes=$(cat "$base"/*.safetensors | wc -c)
  gb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e9 }')
  echo "== $size: $gb GB per model" >&2

  timed cat sh -c "cat '$base'/*.safetensors > /dev/null"
  rows+=("| $size | read: \`cat > /dev/null\` | $gb GB | ${wall} s | $(gbps "$bytes" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | |")
  timed hash sh -c "$hasher '$base'/*.safetensors > /dev/null"
  rows+=("| $size | hash: \`$hasher\` | $gb GB | ${wall} s | $(gbps "$bytes" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | |")
  timed fp "$dokja" fingerprint "$base" -o "$work/base.dfp" --quiet "${tflag[@]}"
  rows+=("| $size | \`dokja fingerprint\` | $gb GB | ${wall} s | $(gbps "$bytes" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | |")
  timed fpnm "$dokja" fingerprint "$base" -o "$work/base.dfp" --quiet --no-mmap "${tflag[@]}"
  rows+=("| $size | \`dokja fingerprint --no-mmap\` | $gb GB | ${wall} s | $(gbps "$bytes" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | |")
  for pair in "fine-tuned|$tuned" "independent|$other"; do
    label=${pair%%|*} partner=${pair#*|}
    timed "cmp-$label" "$dokja" compare "$base" "$partner" --quiet --no-mmap "${tflag[@]}"
    verdict=$(grep -m1 '^verdict' "$work/cmp-$label.out" | sed 's/^verdict:* *//')
    rows+=("| $size | \`dokja compare --no-mmap\` vs $label (2 x $gb GB) | $(awk -v g="$gb" 'BEGIN{printf "%.2f", 2*g}') GB | ${wall} s | $(gbps "$((2 * bytes))" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | $verdict |")
    timed "cmpfp-$label" "$dokja" compare "$work/base.dfp" "$partner" --quiet --no-mmap "${tflag[@]}"
    verdict=$(grep -m1 '^verdict' "$work/cmpfp-$label.out" | sed 's/^verdict:* *//')
    rows+=("| $size | \`dokja compare\` fingerprint vs $label weights | $gb GB | ${wall} s | $(gbps "$bytes" "$wall") GB/s | ${user} s | $(mib "$rss_kib") | $verdict |")
  done
  rows+=("| $size | remote audit (HTTP range reads) vs local: bytes fetched, time | | pending | | | | |")
done

table="$(printf '%s\n' \
  "### bench/run.sh, $date" "" \
  "- Machine: $machine" \
  "- Command: \`$cmdline\`$( [ -n "$threads" ] || echo ' (threads: all cores)')" \
  "- Models: BF16 sharded safetensors from \`synth-shards\` (dokja-testkit example), cached in \`$dir\`" \
  "- Figures are page-cached second runs; wall/user from \`/usr/bin/time\`" "" \
  "| size | what | bytes | wall | throughput | user CPU | peak RSS | verdict |" \
  "|---|---|---|---|---|---|---|---|" \
  "${rows[@]}")"
echo "$table"
if [ "$write_results" = 1 ]; then
  printf '\n%s\n' "$table" >>bench/RESULTS.md
fi
