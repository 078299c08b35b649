#!/usr/bin/env bash
# netcalc's test run, from a fresh machine: installs what the build and the tests need (a
# Vulkan driver for the wgpu backend, Chromium and ChromeDriver for the browser test, OpenMPI
# and libclang for the `mpi` feature and its tests) where it can, then runs
# `cargo test --release --features wgpu,mpi,failpoints` with every backend compiled in. Extra arguments go
# to cargo test (e.g. `bash scripts/test.sh --lib`); `--install-only` installs and stops.
#
# Installing needs Debian/Ubuntu's apt and root (or sudo without a password). Elsewhere the
# script says what to install and stops before running any test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian's packages, and what each gives the tests (and the benchmarks: wrk for
# benches/serve.sh, nginx for scripts/nginx-replicas.sh, iproute2's ip and tc for
# scripts/mpi-netns.sh).
packages=(mesa-vulkan-drivers libvulkan1 chromium chromium-driver wrk nginx
  openmpi-bin libopenmpi-dev libclang-dev iproute2)

has_vulkan() {
  # a Vulkan loader and at least one driver (lavapipe is the software one)
  # (grep reads all of ldconfig's output: `grep -q` would stop early and, under pipefail,
  # fail the pipeline on the SIGPIPE it leaves ldconfig)
  { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; } &&
    compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null
}
has_program() {
  local name
  for name in "$@"; do
    command -v "$name" >/dev/null 2>&1 && return 0
  done
  return 1
}
missing() {
  has_vulkan || echo "a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1)"
  has_program chromium chromium-browser google-chrome || [ -n "${NETCALC_CHROMIUM:-}" ] ||
    echo "Chromium (Debian: chromium)"
  has_program chromedriver || [ -n "${NETCALC_CHROMEDRIVER:-}" ] ||
    echo "ChromeDriver (Debian: chromium-driver)"
  has_program wrk || echo "wrk, for benches/serve.sh (Debian: wrk)"
  has_program nginx || [ -x /usr/sbin/nginx ] || echo "nginx, for scripts/nginx-replicas.sh (Debian: nginx)"
  has_program mpirun || echo "OpenMPI's mpirun, for the MPI tests (Debian: openmpi-bin)"
  { has_program ip && has_program tc; } ||
    echo "ip and tc, for scripts/mpi-netns.sh (Debian: iproute2)"
  { has_program mpicc && [ -n "$(mpicc --showme:incdirs 2>/dev/null)" ]; } ||
    echo "OpenMPI's headers, to build the mpi feature (Debian: libopenmpi-dev)"
  { ldconfig -p 2>/dev/null | grep 'libclang' >/dev/null; } ||
    echo "libclang, for bindgen in the mpi feature's build (Debian: libclang-dev)"
}

lacking=$(missing)
if [ -n "$lacking" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      sudo=(unavailable)
    fi
    if [ "${sudo[0]:-}" != unavailable ]; then
      echo "scripts/test.sh: installing ${packages[*]} (apt)"
      export DEBIAN_FRONTEND=noninteractive
      "${sudo[@]}" apt-get update -qq
      "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
  fi
  lacking=$(missing)
fi
if [ -n "$lacking" ]; then
  echo "scripts/test.sh: the tests need, and this machine lacks:" >&2
  echo "$lacking" | sed 's/^/  - /' >&2
  echo "install them (Debian/Ubuntu, as root: apt-get install ${packages[*]}) and run this again;" >&2
  echo "ChromeDriver and Chromium elsewhere can be named with NETCALC_CHROMEDRIVER and NETCALC_CHROMIUM" >&2
  exit 2
fi

# Mesa prints "XDG_RUNTIME_DIR is invalid" for every Vulkan device it opens without one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
fi
if [ "${1:-}" = --install-only ]; then
  exit 0
fi
exec cargo test --release --features wgpu,mpi,failpoints "$@"
