// lancedb.mjs -- LanceDB as a filtered-search anchor of `resonance bench
// --filter-selectivity ... --compare` (bench/lib/compare.c starts it with
// node; arguments and output lines: common.mjs).
//
// The rows go into a Lance table (id int32, type utf8, vector float32[d])
// in the bench's temporary directory, with no vector index, so every
// search is flat (exact) and bypassVectorIndex() says so.  Distance "dot"
// on normalised vectors ranks as cosine does.  Two systems:
//   lancedb       .where("type IN (...)"), LanceDB's default prefilter: the
//                 filter runs first and the top k is taken among the rows
//                 it keeps;
//   lancedb-post  the same with .postfilter(): the top k of all rows,
//                 filtered afterwards, so k is often not filled (the bench
//                 counts how often).
import { createRequire } from "node:module";
import { join } from "node:path";
import { emit, guard, pkgVersion, loadInputs, parseArgs, runQueries, typeList, typeName } from "./common.mjs";

const CHUNK = 65536; // rows per arrow batch written

async function main() {
  const a = parseArgs(process.argv.slice(2));
  // Both through require: LanceDB checks tables with instanceof against
  // the CommonJS build of apache-arrow, and an ESM import would load the
  // other build.
  const require = createRequire(import.meta.url);
  const lancedb = require("@lancedb/lancedb");
  const arrow = require("apache-arrow");
  const version = pkgVersion("@lancedb/lancedb");
  const { d, base, queries, types, n } = loadInputs(a);

  const vecType = new arrow.FixedSizeList(d, new arrow.Field("item", new arrow.Float32(), true));
  const batchOf = (lo, hi) => {
    const m = hi - lo;
    const names = Array.from({ length: m }, (_, i) => typeName(types[lo + i]));
    return new arrow.Table({
      id: arrow.makeVector(Int32Array.from({ length: m }, (_, i) => lo + i)),
      type: arrow.vectorFromArray(names, new arrow.Utf8()),
      vector: arrow.makeVector(arrow.makeData({ type: vecType, length: m, nullCount: 0,
        child: arrow.makeData({ type: new arrow.Float32(), length: m * d, data: base.subarray(lo * d, hi * d) }) })),
    });
  };
  const db = await lancedb.connect(join(a.out, "lancedb"));
  const t0 = performance.now();
  const tbl = await db.createTable("rows", batchOf(0, Math.min(CHUNK, n)), { mode: "overwrite" });
  for (let lo = CHUNK; lo < n; lo += CHUNK) await tbl.add(batchOf(lo, Math.min(lo + CHUNK, n)));
  const importMs = performance.now() - t0;
  const note = `@lancedb/lancedb ${version} (node ${process.version}), flat search (no index, ` +
    `bypassVectorIndex), distance dot; ${n} rows written in ${(importMs / 1e3).toFixed(1)} s`;
  emit({ measurement: "info", system: "lancedb", blas: note + "; where() prefilter" });
  emit({ measurement: "info", system: "lancedb-post", blas: note + "; where() + postfilter()" });

  for (let j = 0; j < a.nsel; j++) {
    const where = `type IN (${typeList(j)})`;
    for (const [name, post] of [["lancedb", false], ["lancedb-post", true]]) {
      await runQueries(name, j, a, queries, async (q) => {
        let s = tbl.query().nearestTo(q).distanceType("dot").bypassVectorIndex()
          .where(where).select(["id", "_distance"]).limit(a.k);
        if (post) s = s.postfilter();
        const rows = await s.toArray();
        return rows.map((r) => r.id);
      });
    }
  }
}

await guard(["lancedb", "lancedb-post"], "npm ci --prefix bench/anchors (tools/bench.sh does)", main);
