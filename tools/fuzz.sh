#!/usr/bin/env bash
# tools/fuzz.sh -- build the libFuzzer targets of tests/fuzz/ (clang,
# ASan+UBSan, in build-fuzz/) and run each of them for a while.
#
#   bash tools/fuzz.sh [SECONDS]          every target SECONDS (default 60)
#   bash tools/fuzz.sh --ci [SECONDS]     what CI runs: replay every seed and
#                                         committed regression input, then
#                                         SECONDS (default 5) per target
#   options: --only a,b   run only these targets (names as in the table)
#            -h, --help   this text
#
# Per target: the generated seeds (build-fuzz/fuzz-seeds/<t>/) and the
# committed reproducers (tests/fuzz/regressions/<t>/) are replayed first;
# then libFuzzer runs in this one process (no -jobs/-workers) for SECONDS, growing
# build-fuzz/corpus/<t>/ (kept between runs), with tests/fuzz/<t>.dict when
# there is one, writing what it finds to build-fuzz/artifacts/<t>/ (emptied
# at the start of the target's run) and its log to build-fuzz/logs/<t>.log.
# At the end a table gives executions, corpus size and findings per target
# (crash-, leak-, timeout-, oom- files, or a failed replay); the exit code
# is 1 if anything was found, 2 on a usage error.  Installs clang-15,
# libfuzzer-15-dev and llvm-15 (llvm-symbolizer) with apt-get when they are
# missing (tools/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

TARGETS=(fafcas npy xvecs f32 bin idx jsonl cli_args api filter embed serve)
ci=0
secs=""
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --ci) ci=1 ;;
    --only) [ $# -ge 2 ] || { echo "fuzz.sh: --only needs a list" >&2; exit 2; }
            only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    *) if [[ "$1" =~ ^[0-9]+$ ]] && [ -z "$secs" ]; then secs=$1
       else echo "fuzz.sh: unexpected argument '$1' (see --help)" >&2; exit 2; fi ;;
  esac
  shift
done
[ -n "$secs" ] || secs=$([ $ci = 1 ] && echo 5 || echo 60)
if [ -n "$only" ]; then
  IFS=, read -r -a want <<< "$only"
  for t in "${want[@]}"; do
    [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t' (${TARGETS[*]})" >&2; exit 2; }
  done
  TARGETS=("${want[@]}")
fi

step() { printf '\n==== %s ====\n' "$*"; }

if ! command -v clang-15 >/dev/null || ! command -v llvm-symbolizer-15 >/dev/null ||
   ! dpkg-query -W -f='${Status}' libfuzzer-15-dev 2>/dev/null | grep -q "install ok installed"; then
  step "setup (clang-15, libfuzzer-15-dev, llvm-15)"
  RSN_SETUP_FUZZ=1 bash tools/setup.sh
fi

B=build-fuzz
step "configure + build $B (clang-15, libFuzzer, ASan+UBSan)"
CC=clang-15 CXX=clang++-15 cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRSN_FUZZ=ON -DRSN_BUILD_TESTS=OFF -DRSN_WERROR=ON >/dev/null
cmake --build "$B" -j "${JOBS:-2}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-15)}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$B/logs"
declare -A EXECS RATE CORPUS FOUND
total_found=0
for t in "${TARGETS[@]}"; do
  bin="$B/tests/fuzz/fuzz_$t"
  seeds="$B/fuzz-seeds/$t"
  regress="tests/fuzz/regressions/$t"
  corpus="$B/corpus/$t"
  art="$B/artifacts/$t"
  log="$B/logs/$t.log"
  rm -rf "$art"
  mkdir -p "$corpus" "$art"
  dirs=("$seeds")
  [ -d "$regress" ] && dirs+=("$regress")
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")

  step "$t: replay $(find "${dirs[@]}" -type f | wc -l) seed and regression inputs"
  replay_failed=0
  if ! "$bin" -runs=0 -artifact_prefix="$art/" "${dirs[@]}" >"$log" 2>&1; then
    replay_failed=1
    grep -E 'ERROR|check failed|SUMMARY' "$log" | head -5 || true
  fi

  run_failed=0
  if [ $replay_failed = 0 ]; then
    step "$t: fuzz for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
         -print_final_stats=1 -artifact_prefix="$art/" \
         "${dict[@]}" "$corpus" "${dirs[@]}" >>"$log" 2>&1; then
      run_failed=1
    fi
    grep -E 'ERROR|check failed|SUMMARY' "$log" | head -5 || true
  fi
  EXECS[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  RATE[$t]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  CORPUS[$t]=$(find "$corpus" -type f | wc -l)
  n=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  # A failure that left no artifact (e.g. a replayed input crashed) still counts.
  if [ "$n" = 0 ] && { [ $replay_failed = 1 ] || [ $run_failed = 1 ]; }; then n=1; fi
  FOUND[$t]=$n
  total_found=$((total_found + n))
done

step "summary ($([ $ci = 1 ] && echo "CI: replay + ")${secs}s per target; logs in $B/logs/)"
printf '%-10s %12s %9s %8s %9s\n' target executions exec/s corpus findings
for t in "${TARGETS[@]}"; do
  printf '%-10s %12s %9s %8s %9s\n' "$t" "${EXECS[$t]:--}" "${RATE[$t]:--}" \
    "${CORPUS[$t]}" "${FOUND[$t]}"
done
if [ $total_found -gt 0 ]; then
  echo "fuzz.sh: $total_found finding(s); inputs in $B/artifacts/<target>/, reproduce with" \
       "$B/tests/fuzz/fuzz_<target> FILE"
  exit 1
fi
echo "fuzz.sh: no findings"
