#!/usr/bin/env bash
# ONNX Runtime against netcalc on the same model and CPU: inference images/s at batch 1000 of
# the keras-cnn preset, in ROUNDS interleaved rounds of `netcalc bench --model keras-cnn
# --infer-batch-size 1000 --steps STEPS` (its inference figure: the median of STEPS timed
# batches after warm-up) and ONNX Runtime running the same network's `model.onnx` (an export of
# a keras-cnn run; the median of STEPS timed batches after 3 untimed), then the median ratio.
#
# Usage: benches/onnx.sh   Environment: VENV (a Python with onnxruntime and numpy;
# default /tmp/onnxvenv), NETCALC (target/release/netcalc), DEVICE (flex), ROUNDS (5),
# STEPS (30), WORK (/tmp/netcalc-onnx-bench).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=${VENV:-/tmp/onnxvenv}/bin/python
netcalc=$(realpath "${NETCALC:-target/release/netcalc}")
device=${DEVICE:-flex}
rounds=${ROUNDS:-5}
steps=${STEPS:-30}
work=${WORK:-/tmp/netcalc-onnx-bench}
mkdir -p "$work"
"$py" -c "import onnxruntime, numpy" || { echo "needs onnxruntime and numpy in $py" >&2; exit 1; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "CPU: $cpu, $(nproc) cores; netcalc $(git rev-parse --short HEAD 2>/dev/null || echo '?'); onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)')"
if [ ! -e "$work/export/model.onnx" ]; then
  rm -rf "$work/run" "$work/export"
  "$netcalc" train --model keras-cnn --epochs 1 --limit 2000 --offline --plain --device "$device" --out "$work/run" >/dev/null
  "$netcalc" export --model "$work/run" --out "$work/export" --device "$device" >/dev/null
fi
printf "%-6s %14s %14s %8s\n" round "netcalc img/s" "onnxrt img/s" ratio
ratios=()
for r in $(seq 1 "$rounds"); do
  "$netcalc" bench --model keras-cnn --device "$device" --infer-batch-size 1000 --steps "$steps" --json "$work/bench.json" >/dev/null
  n=$("$py" -c "import json,sys; print(round(json.load(open(sys.argv[1]))[0]['result']['infer_images_per_sec']))" "$work/bench.json")
  o=$("$py" - "$work/export/model.onnx" "$steps" <<'PY'
import sys, time
import numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((1000, 1, 28, 28)).astype(np.float32)
for _ in range(3):
    s.run(["logits"], {"input": x})
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); s.run(["logits"], {"input": x}); times.append(time.perf_counter() - t)
print(round(1000 / float(np.median(times))))
PY
)
  ratio=$("$py" -c "print(f'{$n/$o:.3f}')")
  ratios+=("$ratio")
  printf "%-6s %14s %14s %8s\n" "$r" "$n" "$o" "$ratio"
done
echo "median netcalc/onnxruntime: $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
