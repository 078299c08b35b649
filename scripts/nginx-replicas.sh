#!/usr/bin/env bash
# Two `netcalc serve` replicas behind Debian's nginx on loopback: wrk posts a digit
# to /api/predict through nginx with keep-alive, one replica is SIGKILLed halfway through, and
# the script shows that no request failed (nginx retries the POST on the other replica:
# `proxy_next_upstream error timeout non_idempotent`; passive health checks mark the dead one
# down: `max_fails`, `fail_timeout`). Exits non-zero if any request failed.
#
# Usage: scripts/nginx-replicas.sh [RUN_DIR]   (default: /tmp/serve-model; trained if missing)
# Environment: DEVICE (flex), DURATION (seconds, 10), CONNECTIONS (32), PORT (18090; the
# replicas use PORT+1 and PORT+2), NETCALC (target/release/netcalc), NGINX (nginx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_dir=${1:-/tmp/serve-model}
device=${DEVICE:-flex}
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
port=${PORT:-18090}
netcalc=${NETCALC:-target/release/netcalc}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

for p in wrk "$nginx"; do
  command -v "$p" >/dev/null || { echo "scripts/nginx-replicas.sh needs $p (Debian: nginx wrk)" >&2; exit 1; }
done
[ -x "$netcalc" ] || cargo build --release --bin netcalc
[ -e "$run_dir/config.json" ] || "$netcalc" train --epochs 1 --limit 2000 --out "$run_dir" >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

a=$((port + 1)) b=$((port + 2))
for p in $a $b; do
  "$netcalc" serve --model "$run_dir" --device "$device" --addr "127.0.0.1:$p" --threads 1 --quiet \
    >"$work/replica-$p.log" 2>&1 &
  pids+=($!)
done
for p in $a $b; do
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$p/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  curl -fs "http://127.0.0.1:$p/readyz" >/dev/null || { cat "$work/replica-$p.log" >&2; exit 1; }
done

mkdir -p "$work/tmp"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
daemon on;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  upstream netcalc {
    server 127.0.0.1:$a max_fails=1 fail_timeout=10s;
    server 127.0.0.1:$b max_fails=1 fail_timeout=10s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 4m;
    location / {
      proxy_pass http://netcalc;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 30s;
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 2;
    }
  }
}
EOF
"$nginx" -c "$work/nginx.conf" -p "$work"

python3 - "$work/digit.json" <<'EOF'
import json, sys
px = [255 if 6 <= ((x - 14) ** 2 + (y - 14) ** 2) ** 0.5 <= 9 else 0 for y in range(28) for x in range(28)]
open(sys.argv[1], "w").write(json.dumps({"pixels": px}))
EOF
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/digit.json", "rb")
wrk.body = f:read("*a")
f:close()
EOF

echo "nginx $("$nginx" -v 2>&1 | sed 's/.*\///'), two replicas on :$a and :$b, wrk -c$connections for ${duration}s through :$port"
(sleep $((duration / 2)); kill -9 "${pids[0]}"; echo "t=$((duration / 2))s: SIGKILL replica :$a (pid ${pids[0]})") &
killer=$!
out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/predict")
wait $killer
echo "$out" | grep -E 'Latency|Req/Sec|50%|99%|requests in|Requests/sec|Non-2xx|Socket errors' || true
non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out"); non2xx=${non2xx:-0}
errors=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out"); errors=${errors:-0}
echo "replica :$b still ready: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$b/readyz")"
echo "failed requests: non-2xx $non2xx, socket errors $errors"
grep -E 'upstream|connect\(\)' "$work/error.log" | head -3 | sed 's/^/nginx error.log: /' || true
[ "$non2xx" = 0 ] && [ "$errors" = 0 ]
