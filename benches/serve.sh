#!/usr/bin/env bash
# Load benchmark of `netcalc serve`: wrk (Debian's `wrk`) posts a 28×28 PNG to
# /api/predict over loopback with keep-alive, at concurrency 1, 16, 64 and 256, and prints
# requests/s, p50, p99, non-2xx answers and the mean batch size the server ran (from its
# /metrics), next to the model's own batch-64 inference rate measured in the same run: the
# median of MODEL_RUNS runs of `netcalc bench --model <preset> --device <device>
# --infer-batch-size 64 --steps MODEL_STEPS` (enough steps that warm-up does not count).
# EXPLAIN_LOOPS=N runs every connection count twice: alone, then with N more keep-alive
# clients (a second wrk) posting the digit to /api/explain one after the other, and prints how
# many pictures they got and the predictions' rate and mean batch against the run alone.
#
# Usage: benches/serve.sh [RUN_DIR]   (default: /tmp/serve-model; trained if missing)
# Environment: DEVICE (flex), PRESET (cnn: the served model's preset), DURATION (10s),
# CONNECTIONS ("1 16 64 256"), PORT (18080), NETCALC (target/release/netcalc),
# MODEL_RUNS (3), MODEL_STEPS (200), EXPLAIN_LOOPS (0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_dir=${1:-/tmp/serve-model}
device=${DEVICE:-flex}
preset=${PRESET:-cnn}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-1 16 64 256}
port=${PORT:-18080}
netcalc=${NETCALC:-target/release/netcalc}
model_runs=${MODEL_RUNS:-3}
model_steps=${MODEL_STEPS:-200}
explain_loops=${EXPLAIN_LOOPS:-0}

command -v wrk >/dev/null || { echo "benches/serve.sh needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }
[ -x "$netcalc" ] || cargo build --release --bin netcalc
[ -e "$run_dir/config.json" ] || "$netcalc" train --model "$preset" --epochs 1 --limit 2000 --out "$run_dir" >/dev/null

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# a 28×28 digit as PNG (a ring, white ink on black), written with Python's standard library
python3 - "$work/digit.png" <<'EOF'
import struct, sys, zlib
rows = []
for y in range(28):
    row = bytearray([0])
    for x in range(28):
        d = ((x - 14) ** 2 + (y - 14) ** 2) ** 0.5
        row.append(255 if 6 <= d <= 9 else 0)
    rows.append(bytes(row))
def chunk(kind, data):
    c = kind + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open("$work/digit.png", "rb")
wrk.body = f:read("*a")
f:close()
EOF

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
rates=()
for _ in $(seq "$model_runs"); do
  r=$("$netcalc" bench --model "$preset" --device "$device" --infer-batch-size 64 \
    --steps "$model_steps" --json "$work/bench.json" >/dev/null 2>&1 &&
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["result"]["infer_images_per_sec"])' \
      "$work/bench.json" || true)
  [ -n "$r" ] && rates+=("$r")
done
model_rate=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }')
echo "model alone: netcalc bench --model $preset --device $device --infer-batch-size 64 --steps $model_steps, median of ${#rates[@]}: ${model_rate:-?} images/s (runs: ${rates[*]})"

"$netcalc" serve --model "$run_dir" --device "$device" --addr "127.0.0.1:$port" --quiet \
  >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 200); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

metric() { curl -fs "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# warm-up
wrk -t1 -c4 -d2s -s "$work/post.lua" "http://127.0.0.1:$port/api/predict" >/dev/null

printf '%-16s %10s %9s %9s %8s %11s %14s\n' connections req/s p50 p99 non-2xx mean-batch "x model rate"
for c in $connections; do
  t=$(( c < 2 ? 1 : 2 ))
  sides=(0)
  [ "$explain_loops" -gt 0 ] && sides+=("$explain_loops")
  alone_rps=; alone_batch=
  for e in "${sides[@]}"; do
    s0=$(metric netcalc_batch_size_sum); n0=$(metric netcalc_batch_size_count)
    side=
    if [ "$e" -gt 0 ]; then
      wrk -t1 -c"$e" -d"$duration" -s "$work/post.lua" "http://127.0.0.1:$port/api/explain" \
        >"$work/explain.out" 2>&1 &
      side=$!
    fi
    out=$(wrk -t"$t" -c"$c" -d"$duration" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/predict")
    [ -n "$side" ] && wait "$side"
    s1=$(metric netcalc_batch_size_sum); n1=$(metric netcalc_batch_size_count)
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    bad=$(awk '/Non-2xx/ { print $NF }' <<<"$out"); bad=${bad:-0}
    errs=$(awk '/Socket errors/ { print $0 }' <<<"$out")
    batch=$(awk -v a="$s0" -v b="$s1" -v x="$n0" -v y="$n1" 'BEGIN { if (y > x) printf "%.1f", (b - a) / (y - x); else print "-" }')
    ratio=$(awk -v r="$rps" -v m="${model_rate:-0}" 'BEGIN { if (m > 0) printf "%.2f", r / m; else print "-" }')
    label=$c
    [ "$e" -gt 0 ] && label="$c +$e explain"
    printf '%-16s %10s %9s %9s %8s %11s %14s\n' "$label" "$rps" "$p50" "$p99" "$bad" "$batch" "$ratio"
    [ -n "$errs" ] && echo "  $errs"
    if [ "$e" -eq 0 ]; then
      alone_rps=$rps; alone_batch=$batch
    else
      pictures=$(awk '/requests in/ { print $1 }' "$work/explain.out")
      ebad=$(awk '/Non-2xx/ { print $NF }' "$work/explain.out"); ebad=${ebad:-0}
      echo "  $e explain clients: ${pictures:-?} pictures (non-2xx $ebad);" \
        "predictions at $(awk -v a="$rps" -v b="$alone_rps" 'BEGIN { printf "%.2f", a / b }')x" \
        "and mean batch at $(awk -v a="$batch" -v b="$alone_batch" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')x" \
        "of the run without them"
    fi
    [ -n "${VERBOSE:-}" ] && echo "$out"
  done
done
