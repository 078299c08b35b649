#!/usr/bin/env bash
# Runs netcalc's `mnist bench`, the PyTorch reference and the Keras/TensorFlow reference back to
# back on this machine, and prints the CPU, the thread counts, each figure and the ratios of
# netcalc to the best peer (the faster of PyTorch and Keras, for training and inference
# separately).
#
#   PYTHON=/path/to/python-with-torch KERAS_PYTHON=/path/to/python-with-tensorflow \
#     bash benches/reference/compare.sh [--steps 30] [--model keras-cnn|cnn|mlp] \
#       [--infer-batch-size 1000]
#
# `--infer-batch-size 1` measures one image at a time: its img/s is 1 / latency.
#
# Either reference is skipped (and said so) when its Python cannot import its framework.
# Set-up (PyPI only): python3 -m venv venv && venv/bin/pip install torch tensorflow-cpu
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON="${PYTHON:-python3}"
KERAS_PYTHON="${KERAS_PYTHON:-$PYTHON}"
steps=30
model=keras-cnn
infer=1000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --infer-batch-size) infer="$2"; shift 2 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
common=(--model "$model" --steps "$steps" --infer-batch-size "$infer")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads," \
  "flags: $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "model: $model, training batch 128, inference batch $infer"
cargo build --release --example mnist -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/examples/mnist bench "${common[@]}" --device all --json "$tmp/netcalc.json"
if "$PYTHON" -c 'import torch' 2>/dev/null; then
  "$PYTHON" benches/reference/pytorch_convnet.py "${common[@]}" | tee "$tmp/pytorch.json"
else
  echo "PyTorch: skipped ($PYTHON cannot import torch)"
fi
if "$KERAS_PYTHON" -c 'import tensorflow, keras' 2>/dev/null; then
  "$KERAS_PYTHON" benches/reference/keras_convnet.py "${common[@]}" | tee "$tmp/keras.json"
else
  echo "Keras: skipped ($KERAS_PYTHON cannot import tensorflow and keras)"
fi
python3 - "$tmp" <<'PY'
import json, os, sys
tmp = sys.argv[1]
ours = json.load(open(os.path.join(tmp, "netcalc.json")))
peers = {}
for name in ("pytorch", "keras"):
    path = os.path.join(tmp, f"{name}.json")
    if os.path.exists(path):
        peers[name] = json.load(open(path))
print()
for name, r in peers.items():
    print(f"{name}: {r['version']}, {r['threads']} threads")
best_t = max((r["train_images_per_sec"] for r in peers.values()), default=None)
best_i = max((r["infer_images_per_sec"] for r in peers.values()), default=None)
print(f"\n{'':<16}{'train img/s':>13}{'x best peer':>13}{'infer img/s':>14}{'x best peer':>13}")
def row(name, t, i):
    rt = f"{t / best_t:>13.2f}" if best_t else f"{'-':>13}"
    ri = f"{i / best_i:>13.2f}" if best_i else f"{'-':>13}"
    print(f"{name:<16}{t:>13.0f}{rt}{i:>14.0f}{ri}")
for name, r in peers.items():
    row(name, r["train_images_per_sec"], r["infer_images_per_sec"])
for r in ours:
    row("netcalc " + r["backend"], r["result"]["train_images_per_sec"], r["result"]["infer_images_per_sec"])
PY
