# tools/serve_data.sh -- sourced by tools/loadtest.sh and tools/soak.sh: the
# data both load `resonance serve` with, made once per size and shared.
#
#   serve_data RESONANCE ROWS DIM K
#
# Writes (unless present) into build-release/serve-data/: base-ROWS-DIM.f32
# (synthetic, uniform on the sphere, seed 7), q-ROWS-DIM.f32 (1,000
# queries), s-ROWS-DIM.db (the base imported, no history), and
# bodies-ROWS-DIM-kK.jsonl (one {"vector": [...], "k": K} per query).  Sets
# DATA_DIR, DATA_BASE, DATA_Q, DATA_DB and DATA_BODIES.  Needs step().
serve_data() {
  local R=$1 rows=$2 dim=$3 k=$4
  DATA_DIR=build-release/serve-data
  DATA_BASE="$DATA_DIR/base-$rows-$dim.f32" DATA_Q="$DATA_DIR/q-$rows-$dim.f32"
  DATA_DB="$DATA_DIR/s-$rows-$dim.db" DATA_BODIES="$DATA_DIR/bodies-$rows-$dim-k$k.jsonl"
  mkdir -p "$DATA_DIR"
  if [ ! -f "$DATA_DB" ] || [ ! -f "$DATA_Q" ]; then
    step "data: $rows x $dim rows, 1000 queries"
    rm -f "$DATA_DB"
    $R generate "$DATA_BASE" --n "$rows" --dim "$dim" --clusters 0 --seed 7 \
       --queries 1000 --queries-out "$DATA_Q" >/dev/null
    $R import "$DATA_DB.tmp" "$DATA_BASE" --dim "$dim" --no-history >/dev/null
    mv "$DATA_DB.tmp" "$DATA_DB"
    rm -f "$DATA_DB.tmp-wal" "$DATA_DB.tmp-shm"
  fi
  if [ ! -s "$DATA_BODIES" ]; then
    od -An -v -f -w$((dim * 4)) "$DATA_Q" |
      awk -v k="$k" '{ printf "{\"vector\":["; for (i = 1; i <= NF; i++) printf "%s%s", (i > 1 ? "," : ""), $i; printf "],\"k\":%d}\n", k }' \
      > "$DATA_BODIES.tmp"
    mv "$DATA_BODIES.tmp" "$DATA_BODIES"
  fi
}
