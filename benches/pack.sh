#!/usr/bin/env bash
# Benchmark of packed image folders (`netcalc pack`, `--data DIR` through the cache):
#
# 1. Decode once: a folder of 60,000 28×28 PNGs (the bundled MNIST sample, cycled with
#    1–2 px shifts) and the 2,000 held-out digits. Prints the first run's time to read the
#    data (decoding into the packed cache), the second run's (mapping it: the time to the
#    first step), and ROUNDS interleaved rounds of two epochs of `--model cnn` trained from
#    the packed file and from the folder decoded into memory (`--in-memory`): the second
#    epoch's images/s of each (past the warm-up) and their ratio, then the median ratio.
# 2. Larger than the budget: a synthetic folder of BIG_IMAGES RGB 64×64 PNGs (its packed
#    file ≥ 600 MB) and one of 2,000, each packed with `netcalc pack`, then one epoch of
#    keras-cnn at batch 64 on each, from the packed file: the peak RssAnon (the process's
#    own memory, sampled from /proc/PID/status every 0.1 s; the page cache holding the
#    mapped file does not count) and the epoch's images/s; then the big folder decoded into
#    memory (`--in-memory`), for contrast.
# 3. Flat, not proportional: peak RssAnon of one epoch of `--model mlp` on 10k, 60k and 240k
#    28×28 images, read from the packed cache, and decoded into memory for contrast.
#
# Usage: benches/pack.sh   Environment: WORK (/tmp/netcalc-pack-bench: folders, kept between
# runs), NETCALC (target/release/netcalc), DEVICE (flex), ROUNDS (7), BIG_IMAGES (50000),
# PARTS ("1 2 3": which of the three to run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work=${WORK:-/tmp/netcalc-pack-bench}
netcalc=$(realpath "${NETCALC:-target/release/netcalc}")
device=${DEVICE:-flex}
rounds=${ROUNDS:-7}
big=${BIG_IMAGES:-50000}
parts=${PARTS:-1 2 3}
[ -x "$netcalc" ] || { echo "build netcalc first: cargo test --release --no-run" >&2; exit 1; }
mkdir -p "$work"
export NETCALC_CACHE_DIR="$work/cache"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "CPU: $cpu, $(nproc) cores; netcalc $(git rev-parse --short HEAD 2>/dev/null || echo '?'); device $device"

folder() { # folder KIND DIR ARGS...: written once
  local kind=$1 dir=$2; shift 2
  [ -e "$dir/.done" ] || { rm -rf "$dir"; python3 benches/pack_folders.py "$kind" "$dir" "$@"; touch "$dir/.done"; }
}

# peak_anon OUT ARGS...: `netcalc train` of one epoch into OUT, stdout to $work/out.txt;
# prints the process's peak RssAnon in MB
peak_anon() {
  local out=$1; shift
  rm -rf "$out"
  "$netcalc" train --device "$device" --plain --epochs 1 --out "$out" "$@" >"$work/out.txt" 2>"$work/err.txt" &
  local pid=$! peak=0 kb
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 0.1
  done
  wait "$pid" || { cat "$work/err.txt" >&2; return 1; }
  echo $((peak / 1024))
}

read_secs() { grep -o 'read in [0-9.]* s' "$1" | grep -o '[0-9.]*' | head -1; }
epoch_rate() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))[-1]['images_per_sec']))" "$1/metrics.json"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

train() { # train OUT ARGS...: ${EPOCHS_NOW:-1} epochs
  local out=$1; shift
  rm -rf "$out"
  "$netcalc" train --device "$device" --plain --epochs "${EPOCHS_NOW:-1}" --out "$out" "$@"
}

if [[ " $parts " == *" 1 "* ]]; then
  echo "== 1. decode once: 60,000 + 2,000 PNGs of 28x28"
  d="$work/mnist60k"
  folder mnist "$d" 60000
  rm -rf "$NETCALC_CACHE_DIR/packs"
  train "$work/run" --data "$d" --model cnn >"$work/first.txt"
  first=$(read_secs "$work/first.txt")
  train "$work/run" --data "$d" --model cnn >"$work/second.txt"
  second=$(read_secs "$work/second.txt")
  echo "first run, decoding into the packed cache: ${first} s; second run, mapping it: ${second} s (to the first step)"
  echo "pack: $(ls -l "$NETCALC_CACHE_DIR"/packs/*.ncpack | awk '{print $5}') bytes"
  printf "%-6s %12s %12s %8s\n" round "packed img/s" "memory img/s" ratio
  ratios=()
  for r in $(seq 1 "$rounds"); do
    EPOCHS_NOW=2 train "$work/p" --data "$d" --model cnn >/dev/null
    EPOCHS_NOW=2 train "$work/m" --data "$d" --model cnn --in-memory >/dev/null
    p=$(epoch_rate "$work/p"); m=$(epoch_rate "$work/m")
    ratio=$(python3 -c "print(f'{$p/$m:.3f}')")
    ratios+=("$ratio")
    printf "%-6s %12s %12s %8s\n" "$r" "$p" "$m" "$ratio"
  done
  echo "median packed/in-memory: $(printf '%s\n' "${ratios[@]}" | median)"
fi

if [[ " $parts " == *" 2 "* ]]; then
  echo "== 2. larger than the budget: $big RGB 64x64 images against 2,000"
  folder synthetic "$work/big" "$big" 64
  folder synthetic "$work/small" 2000 64
  for set in small big; do
    [ -e "$work/$set.ncpack" ] || "$netcalc" pack --data "$work/$set" --input-shape 3x64x64 --out "$work/$set.ncpack"
  done
  echo "packed file: $(ls -l "$work/big.ncpack" | awk '{print $5}') bytes; small: $(ls -l "$work/small.ncpack" | awk '{print $5}')"
  printf "%-6s %10s %14s %10s\n" set images "peak RssAnon MB" "img/s"
  for set in small big; do
    mb=$(peak_anon "$work/r-$set" --data "$work/$set.ncpack" --model keras-cnn --batch-size 64)
    n=$(grep -o '[0-9]* train / [0-9]* test' "$work/out.txt" | head -1)
    printf "%-6s %10s %14s %10s\n" "$set" "${n%% train*}" "$mb" "$(epoch_rate "$work/r-$set")"
  done
  # for contrast: the big folder decoded into memory
  mb=$(peak_anon "$work/r-mem" --data "$work/big" --in-memory --input-shape 3x64x64 --model keras-cnn --batch-size 64)
  printf "%-6s %10s %14s %10s\n" "big, in memory" "$big" "$mb" "$(epoch_rate "$work/r-mem")"
fi

if [[ " $parts " == *" 3 "* ]]; then
  echo "== 3. peak RssAnon of one epoch of mlp, packed and in memory"
  printf "%-8s %18s %18s\n" images "packed MB" "in memory MB"
  for n in 10000 60000 240000; do
    d="$work/mnist$n"
    [ "$n" = 60000 ] && d="$work/mnist60k"
    folder mnist "$d" "$n"
    train "$work/warm" --data "$d" --model mlp >/dev/null # packs it into the cache
    p=$(peak_anon "$work/r-p" --data "$d" --model mlp)
    m=$(peak_anon "$work/r-m" --data "$d" --model mlp --in-memory)
    printf "%-8s %18s %18s\n" "$n" "$p" "$m"
  done
fi
