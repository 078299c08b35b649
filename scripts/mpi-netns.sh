#!/usr/bin/env bash
# Two MPI ranks on two "hosts" joined by a rate-limited link: network namespaces nc-a and nc-b,
# a veth pair between them (10.231.0.1 and 10.231.0.2, addresses that exist only inside the
# namespaces made here), a tbf qdisc on both ends at RATE. mpirun runs in nc-a; it starts the
# rank on "host" 10.231.0.2 through a launch agent that enters nc-b (in place of ssh). Every
# MPI byte then crosses the veth at RATE. Everything is removed on exit.
#
#   sudo scripts/mpi-netns.sh RATE PROGRAM [ARGS...]
#   sudo scripts/mpi-netns.sh 1gbit   target/release/examples/allreduce
#   sudo scripts/mpi-netns.sh 100mbit target/release/netcalc train --model cnn --epochs 1 --threads 1
#
# MPIRUN_FLAGS adds options to mpirun (e.g. an all-reduce algorithm: see docs/distributed.md).
# Needs root, iproute2 (ip, tc) and OpenMPI. The kernel here has no netem, so latency is not
# emulated: only the bandwidth term of the cost model is.
set -euo pipefail
rate=${1:?usage: mpi-netns.sh RATE PROGRAM [ARGS...]}
shift
program=$(realpath "${1:?usage: mpi-netns.sh RATE PROGRAM [ARGS...]}")
shift

work=$(mktemp -d)
cleanup() {
  ip netns del nc-a 2>/dev/null || true
  ip netns del nc-b 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add nc-a
ip netns add nc-b
ip link add nc-veth-a netns nc-a type veth peer name nc-veth-b netns nc-b
ip -n nc-a addr add 10.231.0.1/24 dev nc-veth-a
ip -n nc-b addr add 10.231.0.2/24 dev nc-veth-b
for ns in nc-a nc-b; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "nc-veth-${ns#nc-}" up
  # tbf: RATE, a burst of 64 KiB, at most 50 ms queued
  ip netns exec "$ns" tc qdisc add dev "nc-veth-${ns#nc-}" root tbf rate "$rate" burst 64kb latency 50ms
done

# The launch agent mpirun calls as `AGENT [options] HOST COMMAND...` for the remote host.
cat >"$work/agent" <<'EOF'
#!/bin/sh
while [ "${1#-}" != "$1" ]; do shift; done
host=$1
shift
case $host in
  10.231.0.2) exec ip netns exec nc-b sh -c "$*" ;;
  *) exec sh -c "$*" ;;
esac
EOF
chmod +x "$work/agent"
printf '10.231.0.1 slots=1\n10.231.0.2 slots=1\n' >"$work/hosts"

echo "link: veth nc-a <-> nc-b, tbf $rate each way"
cd "$work"
ip netns exec nc-a env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun --hostfile "$work/hosts" -np 2 \
  --mca plm_rsh_agent "$work/agent" \
  --mca btl self,tcp --mca btl_tcp_if_include 10.231.0.0/24 \
  --mca oob_tcp_if_include 10.231.0.0/24 \
  --bind-to none \
  ${MPIRUN_FLAGS:-} \
  "$program" "$@"
