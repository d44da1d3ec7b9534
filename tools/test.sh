#!/usr/bin/env bash
# tools/test.sh -- set up and run every test of resonance:
#   1. install missing Debian packages (tools/setup.sh); check that every
#      #include points down the layers (tools/check_layers.sh, whose
#      self-test first proves it catches an upward one)
#   2. normal build (-Wall -Wextra -Werror), all tests with ctest
#   3. AddressSanitizer + UBSan build, all tests
#   4. ThreadSanitizer build (without OpenMP, whose runtime TSan cannot see),
#      the concurrency tests
#   5. the libFuzzer targets (clang, ASan+UBSan): every seed and committed
#      regression input replayed, then a short run of each (tools/fuzz.sh --ci)
# Idempotent; build trees live in build/, build-asan/, build-tsan/,
# build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

step() { printf '\n==== %s ====\n' "$*"; }

step "setup"
RSN_SETUP_FUZZ=1 bash tools/setup.sh

step "layers: every #include points down"
bash tools/check_layers.sh --self-test

run_suite() { # dir label cmake-args... ; then ctest args after --
  local dir=$1 label=$2; shift 2
  local cfg=() ct=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cfg+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ct=("$@")
  step "$label: configure + build ($dir)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRSN_WERROR=ON "${cfg[@]}" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  step "$label: ctest"
  ctest --test-dir "$dir" --output-on-failure -j 1 "${ct[@]}"
}

run_suite build "normal" -DRSN_BUILD_BENCH=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan "asan+ubsan" -DRSN_SANITIZE=address
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  run_suite build-tsan "tsan" -DRSN_SANITIZE=thread -DRSN_OPENMP=OFF -- -L concurrency

step "fuzz targets: replay seeds and regressions, ${RSN_CI_FUZZ_SECONDS:-5} s each"
bash tools/fuzz.sh --ci "${RSN_CI_FUZZ_SECONDS:-5}"

step "all test suites passed"
