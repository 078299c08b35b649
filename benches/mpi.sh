#!/usr/bin/env bash
# One process with T threads against T processes (mpirun) with one thread each, on this
# machine, in interleaved rounds: training images/s of the second epoch (the first warms up)
# for keras-cnn and cnn on the bundled sample, and the all-reduce's share of a step.
#
#   cargo build --release --features mpi      (or a test build: target/release/netcalc)
#   benches/mpi.sh [ROUNDS]                   (default 3; T = the machine's cores)
#
# Run it on a quiet machine; it prints every round and the medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
exe=${NETCALC:-target/release/netcalc}
cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $cores cores"
# images/s of epoch 2, from the run's metrics.csv, and the all-reduce line when there is one
measure() { # SETUP MODEL COMMAND... (the command before `train`); extra flags after `--`
  local setup=$1 model=$2
  shift 2
  local cmd=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cmd+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  extra=("$@")
  rm -rf "$work/run"
  "${cmd[@]}" train --offline --model "$model" --epochs 2 --device flex --plain \
    --out "$work/run" "${extra[@]}" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  local ips ar
  ips=$(awk -F, 'NR==3 {print $7}' "$work/run/metrics.csv")
  ar=$(grep -o 'all-reduce: .*' "$work/out.txt" || true)
  printf '%-3s %-8s %-10s %10.0f  %s\n' "$r" "$setup" "$model" "$ips" "$ar"
  echo "$setup $model $ips" >>"$work/all.txt"
}
echo "round setup  model      images/s (epoch 2)"
for r in $(seq "$rounds"); do
  for model in keras-cnn cnn; do
    measure "1x$cores" "$model" "$exe" -- --threads "$cores"
    measure "${cores}x1" "$model" "${mpirun[@]}" -np "$cores" "$exe" -- --threads 1
  done
done
echo
echo "median images/s"
for model in keras-cnn cnn; do
  for setup in "1x$cores" "${cores}x1"; do
    awk -v s="$setup" -v m="$model" '$1==s && $2==m {print $3}' "$work/all.txt" | sort -g |
      awk -v s="$setup" -v m="$model" '{v[NR]=$1} END {printf "%-8s %-10s %10.0f\n", s, m, v[int((NR+1)/2)]}'
  done
done
