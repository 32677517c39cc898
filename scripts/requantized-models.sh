#!/usr/bin/env bash
# Make real derived copies of SmolLM2-135M-Instruct: the pinned Q4_1 GGUF requantized to
# Q8_0 and to Q4_0 by the real llama-quantize, cached outside the repo. dokja's tests
# compare them with the original (same model, other quantization: a true "derived" pair).
#
# Usage: scripts/requantized-models.sh [--print-dir | --verify | --help] [LLAMA_CPP [MODELS]]
#   LLAMA_CPP    folder holding llama-quantize (default: $DOKJA_LLAMA_CPP, else
#                `scripts/build-llama-cpp.sh --print-dir`)
#   MODELS       folder holding smollm2/SmolLM2-135M-Instruct.Q4_1.gguf (default:
#                $DOKJA_TEST_MODELS, else `scripts/fetch-test-models.sh --print-dir`)
#   (no option)  make what is missing, then print DOKJA_REQUANT_MODELS=<dir> as the last line
#                of stdout (progress goes to stderr, one line per step), so this works:
#                  export "$(scripts/requantized-models.sh "$DOKJA_LLAMA_CPP" "$DOKJA_TEST_MODELS")"
#   --print-dir  print <dir> and exit: nothing is made or checked
#   --verify     like no option, but re-hash the cached copies against their SHA256SUMS
# Run scripts/build-llama-cpp.sh and scripts/fetch-test-models.sh first: this script only
# uses what they made, and never touches the network.
#
# Layout, with CACHE=${DOKJA_CACHE:-$HOME/.cache/dokja} and LLVER the llama.cpp version
# (from a LLAMA_CPP folder named llama.cpp-LLVER/bin, else b<build number> from --version):
#   $CACHE/models/smollm2-requant-LLVER/SmolLM2-135M-Instruct.Q8_0.gguf
#                                       SmolLM2-135M-Instruct.Q4_0.gguf
#                                       SHA256SUMS   digests of the two copies
#                                       PROVENANCE   source digest, tool, exact commands
#                                       LICENSE      the source model's (Apache-2.0)
#   $CACHE/models/smollm2-requant -> smollm2-requant-LLVER, so tests can ask for
#                                    smollm2-requant/<file> under DOKJA_TEST_MODELS
#   $CACHE/tmp-requant/   work in progress; a folder moves into models/ only when complete
# A present folder is trusted (it only ever appears whole) unless --verify is given.
# Environment: DOKJA_CACHE, DOKJA_LLAMA_CPP, DOKJA_TEST_MODELS, DOKJA_BUILD_JOBS (threads
# for llama-quantize, default 2).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE="${DOKJA_CACHE:-${HOME:?HOME is not set: set DOKJA_CACHE}/.cache/dokja}"
SCRATCH="$CACHE/tmp-requant"
SRC_REL="smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STEM="SmolLM2-135M-Instruct"
TYPES=(Q8_0 Q4_0)
THREADS="${DOKJA_BUILD_JOBS:-2}"
MODE=build

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
say() { printf 'requantized-models: %s\n' "$*" >&2; }
die() { printf 'requantized-models: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  --print-dir) MODE=print; shift ;;
  --verify) MODE=verify; shift ;;
  -h|--help) usage; exit 0 ;;
  -*) usage >&2; die "unknown option: $1" ;;
esac
[[ $# -le 2 ]] || die "expected at most two folders: LLAMA_CPP MODELS"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "DOKJA_BUILD_JOBS must be a positive number, not '$THREADS'"

LLAMA="${1:-${DOKJA_LLAMA_CPP:-$("$SCRIPT_DIR/build-llama-cpp.sh" --print-dir)}}"
MODELS_IN="${2:-${DOKJA_TEST_MODELS:-$("$SCRIPT_DIR/fetch-test-models.sh" --print-dir)}}"
# Accept the llama.cpp-<version> folder as well as its bin/.
if [[ ! -e "$LLAMA/llama-quantize" && -e "$LLAMA/bin/llama-quantize" ]]; then LLAMA="$LLAMA/bin"; fi
LLAMA=${LLAMA%/}
QUANT="$LLAMA/llama-quantize"

# The llama.cpp version names the output folder: other versions may quantize differently.
llama_version() {
  local parent out n
  parent=$(basename "$(dirname "$LLAMA")")
  if [[ "$(basename "$LLAMA")" == bin && "$parent" =~ ^llama\.cpp-([A-Za-z0-9._+-]+)$ ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"; return 0
  fi
  [[ -x "$LLAMA/llama-gguf-split" ]] || die "no llama.cpp binaries in $LLAMA: run scripts/build-llama-cpp.sh"
  out=$(timeout 30 "$LLAMA/llama-gguf-split" --version 2>&1 </dev/null) \
    || die "$LLAMA/llama-gguf-split --version failed: $out"
  n=$(sed -n 's/^version: \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -n 1)
  [[ -n "$n" && "$n" != 0 ]] || die "cannot tell the llama.cpp version of $LLAMA (got: $out)"
  printf 'b%s\n' "$n"
}
LLVER=$(llama_version)
NAME="smollm2-requant-$LLVER"
MODELS="$CACHE/models"
DEST="$MODELS/$NAME"

if [[ $MODE == print ]]; then printf '%s\n' "$DEST"; exit 0; fi

sha256_of() { local out; out=$(sha256sum -- "$1") && printf '%s\n' "${out%% *}"; }
# Present and complete? With --verify, every digest is checked too.
dest_ok() {
  local sha name n=0
  [[ -f "$DEST/SHA256SUMS" && -f "$DEST/PROVENANCE" ]] || return 1
  while read -r sha name; do
    [[ -n "$sha" ]] || continue
    [[ -s "$DEST/$name" ]] || { say "$NAME: $name is missing"; return 1; }
    if [[ $MODE == verify && "$(sha256_of "$DEST/$name")" != "$sha" ]]; then
      say "$NAME: $name does not match its SHA256SUMS: making it again"; return 1
    fi
    n=$((n + 1))
  done <"$DEST/SHA256SUMS"
  [[ $n -eq ${#TYPES[@]} ]]
}

# Point models/smollm2-requant at this version (atomically).
link_dest() {
  local link="$MODELS/smollm2-requant"
  if [[ -L "$link" && "$(readlink "$link")" == "$NAME" ]]; then return 0; fi
  [[ ! -e "$link" || -L "$link" ]] || die "$link exists and is not a symlink: remove it and run again"
  mkdir -p "$SCRATCH"
  ln -sfn "$NAME" "$SCRATCH/link.$$"
  mv -fT "$SCRATCH/link.$$" "$link"
}

finish() { link_dest; say "$NAME: $1"; printf 'DOKJA_REQUANT_MODELS=%s\n' "$DEST"; exit 0; }

dest_ok && finish cached

# ---- lock, leftovers -----------------------------------------------------------------
mkdir -p "$MODELS" "$SCRATCH"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock-requant"
  flock 9
  dest_ok && finish "made by another run"
  find "$SCRATCH" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +   # left from a killed run
fi
TMP=$(mktemp -d "$SCRATCH/$NAME.XXXXXX")
trap 'rm -rf -- "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- inputs --------------------------------------------------------------------------
[[ -x "$QUANT" ]] || die "$QUANT not found: run scripts/build-llama-cpp.sh"
SRC="$MODELS_IN/$SRC_REL"
[[ -f "$SRC" ]] || die "$SRC not found: run scripts/fetch-test-models.sh"
SRC_SHA=$(sha256_of "$SRC")
# The source must be the pinned file (scripts/test-models.tsv), not whatever is there.
PIN=$(awk -F'\t' '$1=="smollm2" && $3=="file" && $4=="SmolLM2-135M-Instruct.Q4_1.gguf" {print $5}' \
  "$SCRIPT_DIR/test-models.tsv" 2>/dev/null || true)
[[ -z "$PIN" || "$SRC_SHA" == "$PIN" ]] \
  || die "$SRC has sha256 $SRC_SHA, not the pinned $PIN: run scripts/fetch-test-models.sh --verify"
QVER=$(timeout 30 "$LLAMA/llama-server" --version 2>&1 </dev/null | grep -m1 '^version' || true)

# ---- requantize ----------------------------------------------------------------------
OUT="$TMP/out"
mkdir -p "$OUT"
{
  printf 'Derived copies of %s, made by llama.cpp llama-quantize (--allow-requantize).\n' "$STEM"
  printf 'source: %s (sha256 %s, %s bytes)\n' "$SRC_REL" "$SRC_SHA" "$(stat -c %s "$SRC")"
  printf 'tool: %s (%s)\n' "$QUANT" "${QVER:-version unknown}"
  printf 'made: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'commands (SRC = the source above, run in the output folder):\n'
} >"$OUT/PROVENANCE"
for type in "${TYPES[@]}"; do
  file="$STEM.$type.gguf"
  t0=$(date +%s)
  if ! "$QUANT" --allow-requantize "$SRC" "$OUT/$file" "$type" "$THREADS" \
      </dev/null >"$TMP/$type.log" 2>&1; then
    tail -n 30 "$TMP/$type.log" >&2
    die "llama-quantize to $type failed: $QUANT --allow-requantize $SRC $OUT/$file $type $THREADS"
  fi
  [[ -s "$OUT/$file" && "$(head -c 4 "$OUT/$file")" == GGUF ]] \
    || die "llama-quantize to $type did not write a GGUF file"
  printf '  llama-quantize --allow-requantize SRC %s %s %s\n' "$file" "$type" "$THREADS" >>"$OUT/PROVENANCE"
  printf '%s  %s\n' "$(sha256_of "$OUT/$file")" "$file" >>"$OUT/SHA256SUMS"
  say "$file: $(stat -c %s "$OUT/$file") bytes in $(($(date +%s) - t0))s"
done
[[ ! -f "$MODELS_IN/smollm2/LICENSE" ]] || cp -- "$MODELS_IN/smollm2/LICENSE" "$OUT/LICENSE"

# ---- swap in -------------------------------------------------------------------------
[[ ! -e "$DEST" ]] || mv -T -- "$DEST" "$TMP/old"
mv -T -- "$OUT" "$DEST"
finish made
