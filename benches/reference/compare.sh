#!/usr/bin/env bash
# netcalc against PyTorch and Keras/TensorFlow on this machine, in interleaved rounds: each
# round runs `netcalc bench` (every CPU backend), the baseline build if one is given, the
# PyTorch reference, the Keras reference and the machine's own sgemm, one after the other, so
# that a slow moment of the shared machine falls on one round, not on one framework. Prints the
# CPU and thread counts, every round's figures and ratios to the best peer (the faster of
# PyTorch and Keras in that round, for training and inference separately), their medians, and
# the convolution layers' FLOP rate as a fraction of the sgemm rate.
#
#   PYTHON=/path/to/python-with-torch KERAS_PYTHON=/path/to/python-with-tensorflow \
#     bash benches/reference/compare.sh [--rounds 5] [--steps 30] \
#       [--model keras-cnn|cnn|mlp] [--infer-batch-size 1000] [--json FILE] [--baseline EXE] \
#       [--exe EXE] [--device all|flex|ndarray]
#
# `--exe EXE` measures that netcalc binary instead of building `target/release/netcalc`;
# `--device` picks the backends measured (default: all compiled in).
# `--infer-batch-size 1` measures one image at a time: its img/s is 1 / latency.
# `--baseline EXE` adds a second netcalc binary, e.g. a build of an older commit, to every
# round, run right after the current one with the same arguments (`EXE bench ... --device all
# --json ...`), so that before and after are interleaved on the same machine. Its rows are
# labelled `baseline <backend>`, with their ratio to the best peer and, in the `× now`
# columns, to the current build's same backend in the same round (below 1: the current build
# is faster); the --json output has them under `results` too, with `x_current`. Builds from
# before the `netcalc` binary have the `mnist` example instead, which takes the same `bench`
# arguments:
#
#   git worktree add /tmp/before 54dd3ee && (cd /tmp/before && cargo build --release --example mnist)
#   bash benches/reference/compare.sh --baseline /tmp/before/target/release/examples/mnist
#
# Either reference is skipped (and said so) when its Python cannot import its framework.
# Set-up (PyPI only): python3 -m venv venv && venv/bin/pip install torch tensorflow-cpu
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON="${PYTHON:-python3}"
KERAS_PYTHON="${KERAS_PYTHON:-$PYTHON}"
rounds=5
steps=30
model=keras-cnn
infer=1000
json_out=""
baseline=""
exe=""
device=all
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --infer-batch-size) infer="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --exe) exe="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
common=(--model "$model" --steps "$steps" --infer-batch-size "$infer")
if [[ -n $baseline && ! -x $baseline ]]; then
  echo "compare.sh: --baseline $baseline is not an executable file" >&2; exit 2
fi
if [[ -z $exe ]]; then
  cargo build --release --bin netcalc -q
  exe=./target/release/netcalc
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
have_torch=0; have_keras=0
"$PYTHON" -c 'import torch' 2>/dev/null && have_torch=1 || echo "PyTorch: skipped ($PYTHON cannot import torch)"
"$KERAS_PYTHON" -c 'import tensorflow, keras' 2>/dev/null && have_keras=1 ||
  echo "Keras: skipped ($KERAS_PYTHON cannot import tensorflow and keras)"
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  "$exe" bench "${common[@]}" --device "$device" --json "$tmp/netcalc-$r.json" >/dev/null
  if [[ -n $baseline ]]; then
    "$baseline" bench "${common[@]}" --device "$device" --json "$tmp/baseline-$r.json" >/dev/null
  fi
  if [[ $have_torch == 1 ]]; then
    "$PYTHON" benches/reference/pytorch_convnet.py "${common[@]}" > "$tmp/pytorch-$r.json"
    "$PYTHON" benches/reference/sgemm.py > "$tmp/sgemm-$r.json"
  fi
  if [[ $have_keras == 1 ]]; then
    "$KERAS_PYTHON" benches/reference/keras_convnet.py "${common[@]}" > "$tmp/keras-$r.json"
  fi
done
python3 - "$tmp" "$rounds" "$model" "$infer" "$json_out" "$baseline" <<'PY'
import json, os, statistics, sys
tmp, rounds, model, infer, json_out, baseline = (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
KINDS = ("train", "infer")

def load(name, r):
    p = os.path.join(tmp, f"{name}-{r}.json")
    return json.load(open(p)) if os.path.exists(p) else None

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
simd = " ".join(f for f in ("avx512f", "avx2") if f in flags)
print(f"cpu: {cpu}, {os.cpu_count()} threads, flags: {simd}")
print(f"model: {model}, training batch 128, inference batch {infer}, {rounds} interleaved rounds")
if baseline:
    print(f"baseline: {baseline}")
# Convolution FLOPs per image (2 per multiply-add) of the two convnets: conv 1 is 26·26·32
# outputs of 9 products, conv 2 is 11·11·64 outputs of 9·32; a training step adds the weight
# gradients (as many again) and conv 2's input gradient (conv 1 has none: its input is the image).
conv1, conv2 = 2 * 26 * 26 * 32 * 9, 2 * 11 * 11 * 64 * 9 * 32
conv_flops = {"train": 2 * (conv1 + conv2) + conv2, "infer": conv1 + conv2} if model != "mlp" else None

rows = []
for r in range(1, rounds + 1):
    peers = {n: load(n, r) for n in ("pytorch", "keras")}
    peers = {n: v for n, v in peers.items() if v}
    ours = load("netcalc", r) or []
    before = load("baseline", r) or []
    sg = load("sgemm", r)
    best = {k: max((p[f"{k}_images_per_sec"] for p in peers.values()), default=None) for k in ("train", "infer")}
    row = {"round": r, "sgemm_gflops": sg["sgemm_gflops"] if sg else None, "best": best, "figures": {}}
    for n, p in peers.items():
        row["figures"][n] = {k: p[f"{k}_images_per_sec"] for k in ("train", "infer")}
    for label, records in (("netcalc", ours), ("baseline", before)):
        for o in records:
            row["figures"][f"{label} {o['backend']}"] = {
                "train": o["result"]["train_images_per_sec"], "infer": o["result"]["infer_images_per_sec"]}
    # the baseline's figures over the current build's, backend by backend, in this round
    row["x_current"] = {}
    for o in before:
        now = row["figures"].get("netcalc " + o["backend"])
        if now:
            row["x_current"]["baseline " + o["backend"]] = {
                k: row["figures"]["baseline " + o["backend"]][k] / now[k] if now[k] else None for k in KINDS}
    rows.append(row)

names = [n for n in ("pytorch", "keras") if any(n in r["figures"] for r in rows)]
names += sorted({n for r in rows for n in r["figures"] if n.startswith("netcalc")})
names += sorted({n for r in rows for n in r["figures"] if n.startswith("baseline")})
has_baseline = any(r["x_current"] for r in rows)

def cell(v, w, p):
    return f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"

def now_cell(xc, k):
    # the `× now` column, there only when a baseline was given: the baseline rows' ratio to the
    # current build (`xc`, by kind), blank on the other rows
    if not has_baseline:
        return ""
    return cell(xc.get(k), 7, 2) if xc is not None else " " * 7

now_head = f"{'× now':>7}" if has_baseline else ""
first = {n: load(n, 1) for n in ("pytorch", "keras")}
for n, v in first.items():
    if v:
        print(f"{n}: {v['version']}, {v['threads']} threads")
print()
print(f"{'round':<6}{'':<18}{'train img/s':>13}{'× best':>8}{now_head}"
      f"{'infer img/s':>14}{'× best':>8}{now_head}")
for row in rows:
    for n in names:
        f = row["figures"].get(n)
        if not f:
            continue
        rt = f["train"] / row["best"]["train"] if row["best"]["train"] else float("nan")
        ri = f["infer"] / row["best"]["infer"] if row["best"]["infer"] else float("nan")
        xc = row["x_current"].get(n)
        print(f"{row['round']:<6}{n:<18}{f['train']:>13.0f}{rt:>8.2f}{now_cell(xc, 'train')}"
              f"{f['infer']:>14.0f}{ri:>8.2f}{now_cell(xc, 'infer')}".rstrip())
    if row["sgemm_gflops"]:
        print(f"{row['round']:<6}{'sgemm 2048²':<18}{row['sgemm_gflops']:>13.1f} GFLOP/s")

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

print("\nmedian of the rounds (ratios: the median of each round's ratio)")
print(f"{'':<24}{'train img/s':>13}{'× best':>8}{now_head}{'infer img/s':>14}{'× best':>8}{now_head}")
summary = {"cpu": cpu, "model": model, "infer_batch": int(infer), "rounds": rounds, "results": {}}
if baseline:
    summary["baseline"] = baseline
sgemm = med([r["sgemm_gflops"] for r in rows])
for n in names:
    vals = {k: med([r["figures"].get(n, {}).get(k) for r in rows]) for k in KINDS}
    ratios = {k: med([r["figures"][n][k] / r["best"][k] for r in rows if n in r["figures"] and r["best"][k]])
              for k in KINDS}
    entry = {"images_per_sec": vals, "x_best_peer": ratios}
    xc = None
    if n.startswith("baseline"):
        xc = {k: med([r["x_current"].get(n, {}).get(k) for r in rows]) for k in KINDS}
        entry["x_current"] = xc
    print(f"{n:<24}{cell(vals['train'], 13, 0)}{cell(ratios['train'], 8, 2)}{now_cell(xc, 'train')}"
          f"{cell(vals['infer'], 14, 0)}{cell(ratios['infer'], 8, 2)}{now_cell(xc, 'infer')}".rstrip())
    if conv_flops and sgemm and n.startswith(("netcalc", "baseline")):
        entry["conv_fraction_of_sgemm"] = {k: vals[k] * conv_flops[k] / 1e9 / sgemm for k in ("train", "infer")}
    summary["results"][n] = entry
if sgemm:
    print(f"\nsgemm (PyTorch a @ b, 2048², f32): {sgemm:.1f} GFLOP/s (median of the rounds)")
    summary["sgemm_gflops"] = sgemm
    if conv_flops:
        for n, e in summary["results"].items():
            if "conv_fraction_of_sgemm" in e:
                c = e["conv_fraction_of_sgemm"]
                print(f"{n}: convolutions at {100 * c['train']:.0f} % of it in training, "
                      f"{100 * c['infer']:.0f} % in inference "
                      f"({conv_flops['train'] / 1e6:.2f} / {conv_flops['infer'] / 1e6:.2f} MFLOP per image)")
if json_out:
    for row in rows:
        if not row["x_current"]:
            del row["x_current"]
    summary["rounds_detail"] = rows
    json.dump(summary, open(json_out, "w"), indent=2)
PY
