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
# A sweep of the US warranty over price and warranty window (heat maps next to sweep.csv)
# and one comparison plot of the share of the list price paid in every scenario.
echo "== roctavian-sweep"
./target/release/obasim sweep scenarios/roctavian-us-warranty.toml --force --quiet \
  --set "therapy.list_price=2e6:3.5e6:0.5e6" --set "contracts[1].warranty.window=2,4,6" \
  --out results/roctavian-sweep
dirs=()
for f in scenarios/*.toml; do dirs+=("results/$(basename "$f" .toml)"); done
./target/release/obasim compare "${dirs[@]}" --out results/compare.csv \
  --plot results/compare_share_of_price_paid.png --metric share_of_price_paid > /dev/null
echo "done: results/*/report.html, results/roctavian-sweep/sweep_*.png, results/compare_share_of_price_paid.png"
