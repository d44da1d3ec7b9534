#!/usr/bin/env bash
# tools/bench.sh -- set up and run resonance's benchmark suite, writing every
# output to bench-results/<UTC time>/ (text tables, JSON Lines, CSV, PNG):
#
#   kernels.txt/.json   google-benchmark micro-benchmarks of the C kernels
#   core.txt            rsn_core_bench: load vs the app's loop, single-query
#                       latency vs the bandwidth floor, batch vs FMA peak
#   <set>.txt/.jsonl    `resonance bench --compare` on each real set of
#                       ../shared/data, Debian's fashion-mnist and a synthetic
#                       100,000 x 384 corpus (FAISS and numpy side by side;
#                       Debian's FAISS as faiss, PyPI's faiss-cpu as
#                       faiss-pypi, from the venv below)
#   sync.txt            rsn_sync_bench (with --full)
#   synthetic-*-filtered.txt/.jsonl  `resonance bench --filter-selectivity
#                       0.001,0.01,0.1,0.5 --compare` at 100,000 and
#                       1,000,000 x 384 (with --full): filtered latency,
#                       batch QPS, recall and short results, beside FAISS
#                       with IDSelectorBitmap, numpy on the subset, LanceDB
#                       and sqlite-vec (bench/anchors, installed here by npm)
#
# Usage: bash tools/bench.sh [--full]
#   --full  also the 1,000,000 x 384 figures of the issues: rsn_core_bench,
#           rsn_sync_bench and `resonance bench --compare` at that size
#           (about 15 more minutes and 5 GB of disk under bench-results/),
#           and the filtered bench at 100,000 and 1,000,000 (about 30 more).
# Installs what is missing first (tools/setup.sh with RSN_SETUP_BENCH=1:
# python3-faiss, python3-numpy with OpenBLAS, gnuplot, dataset-fashion-mnist,
# python3-venv), then the venv build-release/venv-anchors with the pinned
# bench/requirements-anchors.txt (PyPI's faiss-cpu and numpy; installed only
# when the venv lacks that exact file) and exports RSN_COMPARE_PYTHON_PYPI
# to its python, so each --compare runs FAISS from both.  If pip cannot
# install them, it says so and the bench compares Debian's FAISS only.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
for a in "$@"; do
  case "$a" in
    --full) FULL=1 ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option '$a' (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==== %s ====\n' "$*"; }

step "setup (benchmark packages included)"
RSN_SETUP_BENCH=1 bash tools/setup.sh

step "filtered-search anchors: npm ci in bench/anchors (pinned; node_modules is git-ignored)"
if command -v npm >/dev/null; then
  (cd bench/anchors && npm ci --no-audit --no-fund) \
    || echo "bench.sh: npm ci failed: the filtered bench reports LanceDB and sqlite-vec as not available"
else
  echo "bench.sh: npm is not installed: the filtered bench reports LanceDB and sqlite-vec as not available"
fi

# PyPI's faiss-cpu beside Debian's (bench/lib/compare.c).  The venv keeps a
# copy of the requirements it was installed from: when that copy matches
# the file, nothing is fetched.
VENV=build-release/venv-anchors
REQ=bench/requirements-anchors.txt
step "PyPI's FAISS: $VENV from $REQ (pinned; build-release/ is git-ignored)"
if cmp -s "$REQ" "$VENV/requirements.installed" && [ -x "$VENV/bin/python" ]; then
  echo "bench.sh: $VENV already has $(grep -c '==' "$REQ") pinned packages"
else
  rm -f "$VENV/requirements.installed"
  mkdir -p build-release
  if { [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"; } &&
     "$VENV/bin/python" -m pip install --no-input --disable-pip-version-check \
        -r "$REQ"; then
    cp "$REQ" "$VENV/requirements.installed"
  else
    echo "bench.sh: could not install $REQ into $VENV: the bench compares" \
         "Debian's FAISS only (no faiss-pypi rows)"
  fi
fi
if [ -f "$VENV/requirements.installed" ]; then
  export RSN_COMPARE_PYTHON_PYPI="$PWD/$VENV/bin/python"
  "$RSN_COMPARE_PYTHON_PYPI" -c 'import faiss; print("bench.sh: faiss-pypi is faiss",
      faiss.__version__, "from", faiss.__file__)' \
    || echo "bench.sh: faiss does not import in $VENV: faiss-pypi is reported as not available"
fi

step "build (Release, benchmarks on)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRSN_BUILD_TESTS=OFF \
      -DRSN_BUILD_BENCH=ON -DRSN_WERROR=OFF >/dev/null
cmake --build build-release -j "$(nproc)"
R=build-release/tools/resonance
B=build-release/bench
OUT=bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
echo "results go to $OUT"

step "kernel micro-benchmarks (google-benchmark)"
$B/rsn_kernel_bench --benchmark_min_time=0.1 --benchmark_out="$OUT/kernels.json" \
  --benchmark_out_format=json | tee "$OUT/kernels.txt"

# resonance bench on one data set: NAME, then its arguments.
e2e() {
  local name=$1; shift
  step "resonance bench: $name"
  $R bench --name "$name" --compare --csv "$OUT/$name.csv" --jsonl "$OUT/$name.jsonl" "$@" \
    | tee "$OUT/$name.txt"
}

DATA=../shared/data
if [ -d "$DATA/sift-ngt-5k" ]; then
  e2e sift-ngt-5k --base "$DATA/sift-ngt-5k/base.f32" --queries "$DATA/sift-ngt-5k/queries.f32" \
      --truth "$DATA/sift-ngt-5k/groundtruth.i32" --dim 128
else
  echo "bench.sh: $DATA/sift-ngt-5k absent: skipped"
fi
if [ -d "$DATA/beir-queries-bge-base-en-v1.5" ]; then
  e2e beir-bge-base --base "$DATA/beir-queries-bge-base-en-v1.5/base.f32" \
      --queries "$DATA/beir-queries-bge-base-en-v1.5/queries.f32" \
      --truth "$DATA/beir-queries-bge-base-en-v1.5/groundtruth.i32" --dim 768
else
  echo "bench.sh: $DATA/beir-queries-bge-base-en-v1.5 absent: skipped"
fi
FM=/usr/share/datasets/fashion-mnist
e2e fashion-mnist --idx "$FM/train-images-idx3-ubyte.gz" \
    --queries "$FM/t10k-images-idx3-ubyte.gz" --max-queries 1000
e2e synthetic-100k-384 --synthetic 100000 --dim 384 --queries 1000 --plot "$OUT/plots-100k"

if [ "$FULL" = 1 ]; then
  step "core bench: 1,000,000 x 384 (database generated once under $OUT)"
  $B/rsn_core_bench --db "$OUT/core-1m.db" --n 1000000 --dim 384 --k 10 | tee "$OUT/core.txt"
  step "sync bench: 1,000,000 x 384 (on a copy)"
  $B/rsn_sync_bench --db "$OUT/core-1m.db" --work "$OUT/sync-work.db" | tee "$OUT/sync.txt"
  rm -f "$OUT/sync-work.db"*
  step "filter bench: 1,000,000 x 384 with 3,000,000 edges (on a copy)"
  $B/rsn_filter_bench --db "$OUT/core-1m.db" --work "$OUT/filter-work.db" | tee "$OUT/filter.txt"
  rm -f "$OUT/filter-work.db"*
  e2e synthetic-1m-384 --synthetic 1000000 --dim 384 --queries 1000
  # Filtered search (issue 11); the anchors stop after 30 s of queries per
  # selectivity each, so these take about 10 and 20 minutes.
  e2e synthetic-100k-384-filtered --synthetic 100000 --dim 384 --queries 1000 \
      --filter-selectivity 0.001,0.01,0.1,0.5 --plot "$OUT/plots-100k-filtered"
  e2e synthetic-1m-384-filtered --synthetic 1000000 --dim 384 --queries 1000 \
      --filter-selectivity 0.001,0.01,0.1,0.5 --plot "$OUT/plots-1m-filtered"
fi

step "done: $OUT"
