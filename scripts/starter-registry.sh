#!/usr/bin/env bash
# Builds the starter registry: fingerprints of the real public models this project can obtain
# (scripts/fetch-test-models.sh), registered with their true metadata. Idempotent: rerunning
# adds nothing new. Usage: scripts/starter-registry.sh DOKJA_BINARY REGISTRY_DIR
# Prints the registry folder as its last line (DOKJA_REGISTRY=...).
set -euo pipefail
cd "$(dirname "$0")/.."
dokja=${1:?usage: starter-registry.sh DOKJA_BINARY REGISTRY_DIR}
registry=${2:?usage: starter-registry.sh DOKJA_BINARY REGISTRY_DIR}

models=$(scripts/fetch-test-models.sh | tail -n 1)
dir=${models#DOKJA_TEST_MODELS=}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name | model path | organization | origin country | licence | release date (public record)
# SmolLM2: Hugging Face, Inc. (New York and Paris), released 2024-10-31, Apache-2.0.
# Gemma 3 270M: Google, released 2025-08-14 under the Gemma Terms of Use (restrictive).
# all-MiniLM-L6-v2: sentence-transformers (from Microsoft's MiniLM-L6-H384), published
#   2021-08-30 during the Hugging Face community week, Apache-2.0.
entries=(
  "SmolLM2-135M-Instruct|$dir/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|Hugging Face|US|apache-2.0|2024-10-31"
  "Gemma-3-270M|$dir/gemma3-270m/gemma-3-270m-q4_k_m.gguf|Google|US|gemma|2025-08-14"
  "all-MiniLM-L6-v2|$dir/minilm|sentence-transformers|US|apache-2.0|2021-08-30"
)
for e in "${entries[@]}"; do
  IFS='|' read -r name path org country licence released <<<"$e"
  fp="$work/$name.dfp"
  "$dokja" fingerprint "$path" -o "$fp" --quiet >/dev/null
  "$dokja" registry add "$fp" --registry "$registry" --name "$name" --org "$org" \
    --origin-country "$country" --licence "$licence" --released "$released" >/dev/null
done
echo "DOKJA_REGISTRY=$registry"
