#!/usr/bin/env bash
# tools/demo.sh -- set up, build, and run resonance's main job on a built-in
# default: a deterministic generated corpus (5,000 nodes with metadata and
# 384-dimensional unit vectors, 16 clusters) imported into demo/demo.db,
# then stats, an integrity/vector check, and real searches with timings;
# the same database over HTTP, by text, from Python and JavaScript, and
# split into shards searched on a local Dask cluster.
# Idempotent: rebuilds incrementally and recreates the demo database.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${RSN_DEMO_N:-5000}
DIM=${RSN_DEMO_DIM:-384}

step() { printf '\n==== %s ====\n' "$*"; }

step "setup (missing Debian packages only)"
bash tools/setup.sh

step "build (Release, portable: per-ISA flags only on the kernel files)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRSN_BUILD_TESTS=OFF -DRSN_WERROR=OFF >/dev/null
cmake --build build-release -j "$(nproc)"
R=build-release/tools/resonance

mkdir -p demo
rm -f demo/demo.db demo/demo.db-wal demo/demo.db-shm

step "generate a deterministic corpus: $N nodes x $DIM dims, plus 5 queries"
$R generate demo/corpus.jsonl --n "$N" --dim "$DIM" --seed 42 --clusters 16 \
   --queries 5 --queries-out demo/queries.f32

step "import into demo/demo.db (one transaction)"
$R init demo/demo.db --dim "$DIM" --model demo-generator
$R import demo/demo.db demo/corpus.jsonl

step "stats"
$R stats demo/demo.db

step "check (integrity + vector audit)"
$R check demo/demo.db

step "search: 'more like this' for node-000007, top 5"
$R search demo/demo.db --like node-000007 -k 5

step "search: 5 generated queries in one batch, top 3 each"
$R search demo/demo.db --queries demo/queries.f32 -k 3

step "search: the same batch with the scalar reference kernel, for comparison"
$R search demo/demo.db --queries demo/queries.f32 -k 3 --isa scalar

step "search: the same batch through the i8 tier (a quarter of the bytes), rescored exactly"
$R search demo/demo.db --queries demo/queries.f32 -k 3 --tier i8

step "serve: the same database over HTTP (port 0: an ephemeral port), one search, then SIGTERM"
rm -f demo/serve.port
$R serve demo/demo.db --port 0 --port-file demo/serve.port >/dev/null &
SERVE_PID=$!
for _ in $(seq 1 200); do [ -s demo/serve.port ] && break; sleep 0.05; done
PORT=$(cat demo/serve.port)
http() { # METHOD PATH [BODY]: one HTTP/1.1 request through bash's /dev/tcp (no curl needed)
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  printf '%s %s HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$1" "$2" "${#3}" "${3:-}" >&3
  sed -n '/^\r$/,$p' <&3 | tail -n +2; echo
  exec 3<&-
}
for _ in $(seq 1 200); do http GET /readyz | grep -q ready && break; sleep 0.05; done
echo "POST /v1/search {\"like\": \"node-000007\", \"k\": 3, \"with\": [\"title\"]} on port $PORT:"
http POST /v1/search '{"like": "node-000007", "k": 3, "with": ["title"]}'
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"

step "text search: notes embedded on import by an embedding service, then searched by text"
# No model can be downloaded here, so the service is tests/embed_server.py:
# a deterministic stand-in (hashed character trigrams) speaking the same
# dialects as Ollama, TEI, OpenAI-compatible servers and the app's daemon,
# on a loopback port.  With a real one, only --provider/--embed-url change.
exec 9> >(python3 tests/embed_server.py --port 0 --dim 384 --model demo-ngram \
          --quiet --lifetime 120 > demo/embed_server.port)
for _ in $(seq 50); do [ -s demo/embed_server.port ] && break; sleep 0.1; done
EMBED_URL="http://127.0.0.1:$(awk '{print $2}' demo/embed_server.port)"
cat > demo/notes.jsonl <<'NOTES'
{"id": "tides", "title": "Tides", "text": "the tides rise and fall with the pull of the moon"}
{"id": "bread", "title": "Bread", "text": "a sourdough bread needs flour, water, salt and time"}
{"id": "sqlite", "title": "SQLite", "text": "sqlite is a small, fast, self-contained SQL database engine"}
{"id": "orbits", "title": "Orbits", "text": "the moon orbits the earth once a month"}
NOTES
rm -f demo/notes.db demo/notes.db-wal demo/notes.db-shm
$R import demo/notes.db demo/notes.jsonl --embed --provider ollama \
   --embed-url "$EMBED_URL" --embed-model demo-ngram
$R search demo/notes.db --text "why do tides follow the moon" -k 2 \
   --provider ollama --embed-url "$EMBED_URL" --embed-model demo-ngram
exec 9>&-   # the service exits when its stdin closes

step "Python: the app's searchByVector from numpy, checked against the app's own loop (bindings/python)"
export RESONANCE_LIB=$PWD/build-release/libresonance.so
PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/examples/app_search.py \
   demo/demo.db --id node-000007 --limit 3 --check

step "JavaScript: the app's VectorEngine.searchByVector as a drop-in (bindings/node, Node-API)"
if [ -f build-release/bindings/node/resonance.node ]; then
  RSN_NODE_ADDON=$PWD/build-release/bindings/node/resonance.node \
    node bindings/node/examples/vector_engine.mjs demo/demo.db node-000007 3
else
  echo "skipped: the addon was not built (no node_api.h; tools/setup.sh installs it)"
fi

step "shards: split into 3 by id hash, searched on a local Dask cluster, merged exactly"
$R shard demo/demo.db --shards 3 --out demo/shards --force
PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/examples/cluster_search.py \
   demo/shards/manifest.json demo/demo.db demo/queries.f32 -k 3

step "demo finished"
