#!/usr/bin/env bash
# tools/loadtest.sh -- load `resonance serve` with wrk on loopback, with and
# without micro-batching, and print QPS and latency per connection count.
#
#   bash tools/loadtest.sh [--rows N] [--dim D] [--seconds S] [--conns "1 16 64"] [-k K]
#
# Defaults: 100,000 x 384 rows (synthetic, uniform on the sphere), k = 10,
# 8 s per point, 1, 16 and 64 connections, each point once with the server's
# micro-batcher on and once with --no-microbatch.  wrk is closed-loop (each
# connection sends its next request when the last reply came), so the
# latencies are those of a saturated server at that concurrency, not of an
# open-loop offered rate.  Every request is a different query vector
# (tools/loadtest.lua cycles through 1,000 bodies).  Bounded: the server
# listens on 127.0.0.1 only, each wrk run stops after --seconds, and the
# server is stopped by SIGTERM at the end (also on errors).  Installs wrk
# (Debian) when missing.  Data (shared with tools/soak.sh, tools/serve_data.sh) goes to
# build-release/serve-data/, work files to build-release/loadtest/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=100000 DIM=384 SECS=8 CONNS="1 16 64" K=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift ;;
    --dim) DIM=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    -k) K=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "loadtest.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==== %s ====\n' "$*"; }

if ! command -v wrk >/dev/null; then
  step "setup: wrk"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends wrk
fi
bash tools/setup.sh >/dev/null

step "build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRSN_BUILD_TESTS=OFF -DRSN_WERROR=OFF >/dev/null
cmake --build build-release -j "$(nproc)" --target resonance_cli >/dev/null
R=build-release/tools/resonance
W=build-release/loadtest
mkdir -p "$W"
. tools/serve_data.sh
serve_data "$R" "$ROWS" "$DIM" "$K"
DB=$DATA_DB Q=$DATA_Q

step "in-process reference: resonance bench on the same file and queries (single p50, batch QPS)"
$R bench --base "$DATA_BASE" --dim "$DIM" --db "$DB" --queries "$Q" --max-queries 200 \
   -k "$K" --batch-sizes 1,64 --reps 3 2>/dev/null | grep -E '^  (system|resonance) ' | head -6 || true

SERVE_PID=""
stop_server() {
  if [ -n "$SERVE_PID" ]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  SERVE_PID=""
}
trap stop_server EXIT

run_mode() { # label, extra serve flags...
  local label=$1; shift
  rm -f "$W/port"
  $R serve "$DB" --port 0 --port-file "$W/port" --queue 4096 "$@" >/dev/null 2>"$W/serve-$label.log" &
  SERVE_PID=$!
  for _ in $(seq 1 600); do [ -s "$W/port" ] && break; sleep 0.05; done
  local port; port=$(cat "$W/port")
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
       head -1 <&3 | grep -q ' 200 ') 2>/dev/null && break
    sleep 0.05
  done
  for c in $CONNS; do
    local t=$(( c < 2 ? 1 : 2 ))
    local out
    out=$(RSN_BODIES="$DATA_BODIES" wrk -t"$t" -c"$c" -d"${SECS}s" --latency \
            -s tools/loadtest.lua "http://127.0.0.1:$port" 2>&1)
    local qps p50 p99 errs
    qps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print "sock:" $0}' <<<"$out" | tr '\n' ' ')
    printf '%-14s %5s %10s %10s %10s  %s\n' "$label" "$c" "$qps" "$p50" "$p99" "${errs:-0}"
  done
  curl_metric=$(exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3;
                grep -E '^resonance_microbatch_size_(sum|count)' <&3 | tr '\n' ' ')
  echo "               micro-batch metrics: $curl_metric"
  stop_server
}

step "wrk: $ROWS x $DIM, k=$K, ${SECS}s per point (closed loop)"
printf '%-14s %5s %10s %10s %10s  %s\n' mode conns 'req/s' p50 p99 'non-2xx'
run_mode microbatch
run_mode no-microbatch --no-microbatch
