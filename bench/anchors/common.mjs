// common.mjs -- what the filtered anchors (lancedb.mjs, sqlitevec.mjs)
// share: their arguments, the files `resonance bench` hands them (the same
// files bench/compare.py reads), and the JSON lines they print, which are
// compare.py's (see the top of bench/compare.py and bench/lib/compare.c).
//
// Files: --base (raw f32 with --dim, .fvecs, .bvecs or .npy float32),
// --queries (raw f32), --types (one byte per base row: the index j of the
// smallest selectivity whose subset holds the row, 255 for none).  Subset
// j is every row whose byte is <= j, which is what `type IN ('c0', ...,
// 'cj')` matches: the bench writes the same types into its database.
// Rows and queries are L2-normalised here, as resonance normalises them.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function emit(o) {
  process.stdout.write(JSON.stringify(o) + "\n");
}

export function parseArgs(argv) {
  const a = { format: "f32", k: 10, nsel: 0, maxSeconds: 30 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-(.)/g, (_, c) => c.toUpperCase());
    a[key] = argv[i + 1];
  }
  for (const n of ["dim", "k", "nsel", "maxSeconds"]) a[n] = Number(a[n]);
  for (const n of ["base", "queries", "types", "out", "dim"])
    if (!a[n]) throw new Error(`missing --${n}`);
  return a;
}

function normalise(v, d) {
  for (let r = 0; r < v.length / d; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[r * d + j] * v[r * d + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) v[r * d + j] *= inv;
  }
  return v;
}

// Rows of a vector file as one Float32Array (n x d), normalised.
export function loadVectors(path, format, d) {
  const buf = readFileSync(path);
  const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let out;
  if (format === "npy") {
    const hlen = buf.readUInt8(8) === 1 ? buf.readUInt16LE(8 + 2) + 10 : buf.readUInt32LE(8 + 2) + 12;
    const header = buf.toString("latin1", 0, hlen);
    if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
      throw new Error(`${path}: only C-order little-endian float32 .npy is read here`);
    out = new Float32Array(u8.slice(hlen).buffer);
  } else if (format === "fvecs" || format === "bvecs") {
    const elt = format === "fvecs" ? 4 : 1, rowBytes = 4 + d * elt;
    const n = buf.byteLength / rowBytes;
    out = new Float32Array(n * d);
    for (let r = 0; r < n; r++)
      for (let j = 0; j < d; j++)
        out[r * d + j] = elt === 4 ? buf.readFloatLE(r * rowBytes + 4 + 4 * j)
                                   : buf[r * rowBytes + 4 + j];
  } else {
    out = new Float32Array(u8.slice().buffer);
  }
  return normalise(out, d);
}

// The installed version of a package of node_modules beside this file
// (its package.json is not in every package's "exports").
export function pkgVersion(name) {
  return JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
}

export function loadTypes(path) {
  return new Uint8Array(readFileSync(path));
}

// The run's base vectors, queries and per-row types, checked to agree.
export function loadInputs(a) {
  const d = a.dim;
  const base = loadVectors(a.base, a.format, d);
  const queries = loadVectors(a.queries, "f32", d);
  const types = loadTypes(a.types);
  const n = base.length / d;
  if (types.length !== n) throw new Error(`--types has ${types.length} rows, the base ${n}`);
  return { d, base, queries, types, n };
}

// The filter of subset j as SQL: type IN ('c0', ..., 'cj').
export function typeList(j) {
  return Array.from({ length: j + 1 }, (_, i) => `'c${i}'`).join(", ");
}
export function typeName(code) {
  return code === 255 ? "rest" : `c${code}`;
}

// Time each query (at most maxSeconds in all), keep its ids, and print the
// filter_latency and filter_ids lines.  search(qvec) returns row ids.
export async function runQueries(name, j, a, queries, search) {
  const d = a.dim, nq = queries.length / d;
  const ids = new Int32Array(nq * a.k).fill(-1);
  const samples = [], start = performance.now();
  for (let i = 0; i < nq; i++) {
    const q = queries.subarray(i * d, (i + 1) * d);
    const t0 = performance.now();
    const got = await search(q);
    samples.push(performance.now() - t0);
    for (let r = 0; r < got.length && r < a.k; r++) ids[i * a.k + r] = got[r];
    if (performance.now() - start > a.maxSeconds * 1e3) break;
  }
  const path = join(a.out, `${name}.f${j}.ids.i32`);
  writeFileSync(path, Buffer.from(ids.buffer));
  emit({ measurement: "filter_latency", system: name, selectivity_index: j, samples_ms: samples });
  emit({ measurement: "filter_ids", system: name, selectivity_index: j, queries: samples.length, path });
}

// Run main(); a package that does not load or a failure is a "missing"
// line for each system (the bench reports "not available: <why>").
export async function guard(systems, install, main) {
  try {
    await main();
  } catch (e) {
    for (const s of systems)
      emit({ measurement: "missing", system: s, error: String(e && e.message || e).split("\n")[0], install });
  }
}
