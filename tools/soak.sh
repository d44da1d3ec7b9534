#!/usr/bin/env bash
# tools/soak.sh -- soak `resonance serve` at a fixed open-loop load with writes,
# SIGKILL it, restart it and check that every acknowledged write is there.
# Or, with --offered, measure latency at fixed offered rates below capacity.
#
#   bash tools/soak.sh [--rows N] [--dim D] [--seconds S] [--load F] [--writes F]
#   bash tools/soak.sh --offered "0.25 0.5 0.75" [--rows N] [--dim D] [--offered-seconds S]
#
# Defaults: 100,000 x 384 rows (synthetic, uniform on the sphere, 1,000
# queries), k = 10, --seconds 600, --load 0.7, --writes 0.1.  Steps: build
# Release; make the data once (tools/serve_data.sh: build-release/serve-data/, shared with loadtest.sh); copy the
# database to a scratch file (the soak writes into it); start
# `resonance serve` on 127.0.0.1 (ephemeral port) and wait for /readyz;
# measure capacity with wrk, closed loop, 16 connections, --cap-seconds (5)
# (as tools/loadtest.sh does); run tools/openloop.py at --load x capacity
# for --seconds with --writes of the requests PUTs of new nodes (ids
# soak-<run>-<n>; each acknowledged id fsync'd to acked.txt after its 2xx)
# and the server's RSS sampled every --rss-every (5) seconds after a 10%
# warm-up; then SIGKILL the server, restart it on the same file, wait for
# /readyz and GET /v1/nodes/{id} for every acknowledged id (one keep-alive
# connection).
#
# Exit status 1 (after printing everything) if any request failed, if any
# acknowledged write is missing after the restart, or if RSS grew more than
# 5% from the first post-warm-up sample to the last.  --rss-basis net (the
# default) subtracts the vectors of the rows added over the same interval
# (GET /v1/stats arena_rows x dim x 4 bytes), since the writes add rows and
# stored rows are not a leak; --rss-basis raw checks VmRSS itself.
#
# --offered "0.25 0.5 0.75": no writes, no restart; after the capacity
# measurement, run openloop.py at each fraction of capacity for
# --offered-seconds (20) and print one row per rate: offered, achieved,
# p50, p99, p99.9 (latency from the scheduled send time).  --poisson gives
# exponential gaps in both modes.
#
# Bounded: wrk and openloop.py stop by themselves (openloop waits at most
# --drain 10 s for in-flight requests), /readyz is awaited at most 600 s,
# and the server is killed by a trap on any exit.  Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=100000 DIM=384 SECS=600 LOAD=0.7 WRITES=0.1 K=10 CAPSECS=5 OFFERED="" OFFSECS=20
RSS_EVERY=5 RSS_BASIS=net POISSON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift ;;
    --dim) DIM=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --load) LOAD=$2; shift ;;
    --writes) WRITES=$2; shift ;;
    -k) K=$2; shift ;;
    --cap-seconds) CAPSECS=$2; shift ;;
    --offered) OFFERED=$2; shift ;;
    --offered-seconds) OFFSECS=$2; shift ;;
    --rss-every) RSS_EVERY=$2; shift ;;
    --rss-basis) RSS_BASIS=$2; shift ;;
    --poisson) POISSON=--poisson ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$RSS_BASIS" in net|raw) ;; *) echo "soak.sh: --rss-basis is net or raw" >&2; exit 2 ;; esac

step() { printf '\n==== %s ====\n' "$*"; }

if ! command -v wrk >/dev/null; then
  step "setup: wrk"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends wrk
fi

step "build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRSN_BUILD_TESTS=OFF -DRSN_WERROR=OFF >/dev/null
cmake --build build-release -j "$(nproc)" --target resonance_cli >/dev/null
R=build-release/tools/resonance
W=build-release/soak
mkdir -p "$W"
. tools/serve_data.sh
serve_data "$R" "$ROWS" "$DIM" "$K"
Q=$DATA_Q DB0=$DATA_DB

SERVE_PID="" PORT=""
kill_server() {
  if [ -n "$SERVE_PID" ]; then kill -KILL "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  SERVE_PID=""
}
trap kill_server EXIT

start_server() { # db, log
  rm -f "$W/port"
  $R serve "$1" --port 0 --port-file "$W/port" --queue 4096 >/dev/null 2>"$2" &
  SERVE_PID=$!
  for _ in $(seq 1 200); do [ -s "$W/port" ] && break; sleep 0.05; done
  [ -s "$W/port" ] || { echo "soak.sh: serve did not listen (see $2)" >&2; exit 1; }
  PORT=$(cat "$W/port")
  local t0=$SECONDS
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do
    kill -0 "$SERVE_PID" 2>/dev/null || { echo "soak.sh: serve exited (see $2)" >&2; exit 1; }
    [ $((SECONDS - t0)) -lt 600 ] || { echo "soak.sh: not ready after 600 s" >&2; exit 1; }
    sleep 0.1
  done
  echo "serve pid $SERVE_PID on 127.0.0.1:$PORT ready after $((SECONDS - t0)) s"
}

capacity() {
  local out
  out=$(RSN_BODIES="$DATA_BODIES" wrk -t2 -c16 -d"${CAPSECS}s" --latency \
          -s tools/loadtest.lua "http://127.0.0.1:$PORT" 2>&1)
  CAP=$(awk '/^Requests\/sec/ {printf "%.1f", $2}' <<<"$out")
  local p50 p99
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out"); p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "capacity (wrk, closed loop, 16 conns, ${CAPSECS} s): $CAP req/s, p50 $p50, p99 $p99"
  [ -n "$CAP" ] || { echo "soak.sh: wrk gave no rate:"; echo "$out"; exit 1; } >&2
}

if [ -n "$OFFERED" ]; then
  step "serve $ROWS x $DIM (read-only sweep)"
  start_server "$DB0" "$W/serve-sweep.log"
  capacity
  step "open loop: fixed offered rates, ${OFFSECS} s each, k=$K, no writes"
  printf '%-9s %10s %10s %9s %9s %9s %9s  %s\n' fraction 'offered/s' 'achieved/s' p50_ms p99_ms p99.9_ms max_ms errors
  FAIL=0
  for f in $OFFERED; do
    rate=$(awk -v c="$CAP" -v f="$f" 'BEGIN { printf "%.1f", c * f }')
    set +e
    line=$(python3 tools/openloop.py --port "$PORT" --rate "$rate" --seconds "$OFFSECS" $POISSON \
             --queries "$Q" --dim "$DIM" -k "$K" --quiet | sed -n 's/^JSON //p')
    rc=$?
    set -e
    [ -n "$line" ] || { echo "soak.sh: openloop.py failed (rc $rc)" >&2; exit 1; }
    python3 - "$f" "$line" <<'EOF'
import json, sys
f, o = sys.argv[1], json.loads(sys.argv[2])
L = o["latency_ms"]; g = lambda v: "-" if v is None else "%.2f" % v
print("%-9s %10.1f %10.1f %9s %9s %9s %9s  %d %s%s" % (f, o["offered_rate"], o["achieved_rate"],
      g(L["p50"]), g(L["p99"]), g(L["p99.9"]), g(L["max"]), o["errors"],
      "" if not o["errors"] else json.dumps(o["status"], sort_keys=True),
      "" if o.get("kept_up", True) else " (not kept up)"))
EOF
    [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$line")" = 0 ] || FAIL=1
  done
  exit $FAIL
fi

DB="$W/soak-$ROWS-$DIM.db"
step "scratch copy of the database: $DB"
rm -f "$DB" "$DB-wal" "$DB-shm"
cp --reflink=auto "$DB0" "$DB"
ACKED="$W/acked.txt"
: > "$ACKED"

step "serve $DB"
start_server "$DB" "$W/serve-soak.log"
capacity
RATE=$(awk -v c="$CAP" -v f="$LOAD" 'BEGIN { printf "%.1f", c * f }')

step "soak: open loop at $LOAD x $CAP = $RATE req/s for $SECS s, writes $WRITES, RSS every $RSS_EVERY s"
set +e
python3 tools/openloop.py --port "$PORT" --rate "$RATE" --seconds "$SECS" $POISSON \
  --queries "$Q" --dim "$DIM" -k "$K" --writes "$WRITES" --acked "$ACKED" \
  --rss-pid "$SERVE_PID" --rss-every "$RSS_EVERY" | tee "$W/openloop.out"
set -e
JSON=$(sed -n 's/^JSON //p' "$W/openloop.out")
[ -n "$JSON" ] || { echo "soak.sh: openloop.py printed no summary" >&2; exit 1; }

step "SIGKILL serve (pid $SERVE_PID), restart on the same file"
kill -KILL "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
start_server "$DB" "$W/serve-restart.log"

step "check: every acknowledged write is present after the restart"
python3 - "$PORT" "$ACKED" "$JSON" "$RSS_BASIS" <<'EOF'
import http.client, json, sys, urllib.parse
port, acked, summary, basis = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ids = [l.strip() for l in open(acked) if l.strip()]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
missing, other = [], {}
for i in ids:
    c.request("GET", "/v1/nodes/" + urllib.parse.quote(i, safe=""))
    r = c.getresponse(); r.read()
    if r.status == 404: missing.append(i)
    elif r.status != 200: other[r.status] = other.get(r.status, 0) + 1
present = len(ids) - len(missing) - sum(other.values())
print("acknowledged writes: %d, present after SIGKILL + restart: %d, missing: %d%s"
      % (len(ids), present, len(missing), "" if not other else ", other statuses %s" % other))
if missing: print("  first missing:", ", ".join(missing[:5]))
fail = []
if summary["errors"]: fail.append("%d request errors %s" % (summary["errors"], json.dumps(summary["status"])))
if present != len(ids): fail.append("%d acknowledged writes not found" % (len(ids) - present))
rss = summary.get("rss", {})
key = "net_change_pct" if basis == "net" else "change_pct"
if not rss.get("samples"):
    fail.append("no RSS samples")
else:
    ch = rss.get(key, rss["change_pct"])
    print("RSS: first %d kB, last %d kB, max %d kB: %+.2f%% raw, %s net of the added rows' vectors (gate: %s <= 5%%)"
          % (rss["first_kb"], rss["last_kb"], rss["max_kb"], rss["change_pct"],
             "%+.2f%%" % rss["net_change_pct"] if "net_change_pct" in rss else "n/a", basis))
    if ch > 5.0: fail.append("RSS grew %.2f%% (%s)" % (ch, basis))
L = summary["latency_ms"]
print("soak: offered %.1f req/s, achieved %.1f, %d ok, %d errors, p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms"
      % (summary["offered_rate"], summary["achieved_rate"], summary["ok"], summary["errors"],
         L["p50"] or 0, L["p99"] or 0, L["p99.9"] or 0, L["max"] or 0))
if not summary.get("kept_up", True):
    print("WARNING: the offered rate was not kept up (achieved %.1f of %.1f req/s); the soak ran overloaded"
          % (summary["achieved_rate"], summary["offered_rate"]))
print("SOAK " + ("FAILED: " + "; ".join(fail) if fail else "PASSED"))
sys.exit(1 if fail else 0)
EOF
