#!/usr/bin/env bash
# tools/setup.sh -- install what resonance needs to build, test and bench on
# Debian 12.  Idempotent: installs only the packages that are missing, and
# runs `apt-get update` only when something must be installed.
set -euo pipefail

# libhdf5-dev: `resonance bench` reads ann-benchmarks' HDF5 files (the build
# goes on without it); python3-numpy and python3-h5py write the reference
# files the reader tests compare against.
PKGS=(build-essential cmake pkg-config git libcurl4-openssl-dev
      libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev libsimde-dev
      libmicrohttpd-dev
      libbenchmark-dev python3-numpy zlib1g-dev libhdf5-dev python3-h5py)
PKGS+=(python3-pytest python3-venv python3-pip python3-setuptools python3-wheel) # bindings/python tests
PKGS+=(python3-distributed python3-dask) # resonance.cluster (bindings/python) and its tests
# Extra packages for the benchmark suite (comparison and plots); python3-venv
# for tools/bench.sh's venv with PyPI's faiss-cpu (bench/requirements-anchors.txt).
if [ "${RSN_SETUP_BENCH:-0}" = 1 ]; then
  PKGS+=(python3-faiss gnuplot-nox dataset-fashion-mnist libopenblas0-pthread
         python3-venv)
fi
# The fuzz targets (tools/fuzz.sh, and tools/test.sh's fuzz step): clang 15
# with its sanitizer runtimes and libFuzzer; llvm-15 for llvm-symbolizer, so
# that a finding's stack names files and lines.
if [ "${RSN_SETUP_FUZZ:-0}" = 1 ]; then
  PKGS+=(clang-15 libfuzzer-15-dev llvm-15)
fi

# bindings/node (the Node-API addon) builds against node_api.h.  Node's own
# packages ship it in /usr/include/node; with Debian's nodejs 18 it comes
# from libnode-dev.  Only when it is missing, so a Node installed otherwise
# (NodeSource's, with its headers) is left alone.
if [ ! -f /usr/include/node/node_api.h ] && [ ! -f /usr/local/include/node/node_api.h ]; then
  PKGS+=(nodejs libnode-dev)
fi
# npm installs the pinned bun and typescript the node tests run under
# (bindings/node/tools/node_tools.sh); NodeSource's nodejs carries its own.
if ! command -v npm >/dev/null; then
  PKGS+=(npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
