#!/usr/bin/env bash
# Regenerates the results, plots and report of every scenario in scenarios/ (as a researcher
# reproducing the figures would): results/<scenario>/ for each scenarios/*.toml.
# Usage: scripts/regenerate-scenarios.sh [extra `obasim run` options, e.g. --patients 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
for f in scenarios/*.toml; do
  name=$(basename "$f" .toml)
  echo "== $name"
  ./target/release/obasim run "$f" --out "results/$name" --force --quiet "$@"
done
echo "done: results/*/report.html"
