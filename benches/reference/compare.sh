#!/usr/bin/env bash
# Runs netcalc's `mnist bench` and the PyTorch reference back to back on this machine and prints
# the ratios (netcalc / PyTorch). Needs a Python with torch: PYTHON=/path/to/python (default
# python3). Extra arguments go to both (e.g. --steps 50).
#
#   bash benches/reference/compare.sh --steps 30
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON="${PYTHON:-python3}"
steps=30
if [[ "${1:-}" == "--steps" ]]; then steps="$2"; fi
cargo build --release --example mnist -q
tmp=$(mktemp -d)
./target/release/examples/mnist bench --model keras-cnn --device all --steps "$steps" --json "$tmp/netcalc.json"
"$PYTHON" benches/reference/pytorch_convnet.py --steps "$steps" | tee "$tmp/pytorch.json"
"$PYTHON" - "$tmp/netcalc.json" "$tmp/pytorch.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))
print(f"\n{'backend':<10}{'train img/s':>13}{'x PyTorch':>11}{'infer img/s':>14}{'x PyTorch':>11}")
print(f"{'pytorch':<10}{ref['train_images_per_sec']:>13.0f}{1:>11.2f}{ref['infer_images_per_sec']:>14.0f}{1:>11.2f}")
for r in ours:
    t = r["result"]["train_images_per_sec"]
    i = r["result"]["infer_images_per_sec"]
    print(f"{r['backend']:<10}{t:>13.0f}{t / ref['train_images_per_sec']:>11.2f}{i:>14.0f}{i / ref['infer_images_per_sec']:>11.2f}")
PY
rm -rf "$tmp"
