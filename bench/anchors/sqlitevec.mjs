// sqlitevec.mjs -- sqlite-vec as a filtered-search anchor of `resonance
// bench --filter-selectivity ... --compare` (bench/lib/compare.c starts it
// with node; arguments and output lines: common.mjs).
//
// The rows go into a vec0 table with a metadata column,
//   CREATE VIRTUAL TABLE rows USING vec0(embedding float[d], type text)
// (rowid = base row), in a database in the bench's temporary directory,
// through better-sqlite3 in one transaction.  vec0 has no index: a KNN
// query scans every row, and the metadata condition is applied during the
// scan, so k is filled whenever the subset has k rows:
//   SELECT rowid FROM rows WHERE embedding MATCH ? AND k = ?
//     AND type IN ('c0', ..., 'cj') ORDER BY distance
// Distance is vec0's default L2, which on normalised vectors ranks as
// cosine does.
import { createRequire } from "node:module";
import { join } from "node:path";
import { emit, guard, pkgVersion, loadInputs, parseArgs, runQueries, typeList, typeName } from "./common.mjs";

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const require = createRequire(import.meta.url);
  const Database = require("better-sqlite3");
  const sqliteVec = require("sqlite-vec");
  const versions = `sqlite-vec ${pkgVersion("sqlite-vec")}, ` +
    `better-sqlite3 ${pkgVersion("better-sqlite3")}`;
  const { d, base, queries, types, n } = loadInputs(a);

  const db = new Database(join(a.out, "sqlitevec.db"));
  sqliteVec.load(db);
  db.pragma("journal_mode = WAL");
  db.exec(`CREATE VIRTUAL TABLE rows USING vec0(embedding float[${d}], type text)`);
  const ins = db.prepare("INSERT INTO rows(rowid, embedding, type) VALUES (?, ?, ?)");
  const t0 = performance.now();
  db.transaction(() => {
    for (let r = 0; r < n; r++) {
      const v = base.subarray(r * d, (r + 1) * d);
      ins.run(BigInt(r), Buffer.from(v.buffer, v.byteOffset, v.byteLength), typeName(types[r]));
    }
  })();
  const importMs = performance.now() - t0;
  const [{ sv, sq }] = db.prepare("SELECT vec_version() AS sv, sqlite_version() AS sq").all();
  emit({ measurement: "info", system: "sqlite-vec", blas: `${versions} (vec_version ${sv}, ` +
    `SQLite ${sq}, node ${process.version}), vec0 brute-force KNN, L2, metadata column ` +
    `type text; ${n} rows inserted in ${(importMs / 1e3).toFixed(1)} s` });

  for (let j = 0; j < a.nsel; j++) {
    const knn = db.prepare(`SELECT rowid FROM rows WHERE embedding MATCH ? AND k = ? ` +
      `AND type IN (${typeList(j)}) ORDER BY distance`).pluck().safeIntegers(false);
    await runQueries("sqlite-vec", j, a, queries, (q) =>
      knn.all(Buffer.from(q.buffer, q.byteOffset, q.byteLength), a.k));
  }
  db.close();
}

await guard(["sqlite-vec"], "npm ci --prefix bench/anchors (tools/bench.sh does)", main);
