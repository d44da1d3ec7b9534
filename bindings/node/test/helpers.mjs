// helpers.mjs -- what the binding's tests share: deterministic vectors, the
// float64 oracle, temporary directories, the CLI, garbage collection and the
// runtime's name.  Runs under Node (node --test) and Bun (bun test).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PKG = path.join(HERE, '..');
export const rsn = require(path.join(PKG, 'index.js'));
export const RUNTIME = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`;
export const IS_BUN = !!process.versions.bun;
export const CLI = process.env.RSN_CLI || path.join(PKG, '..', '..', 'build', 'tools', 'resonance');

/* mulberry32: the same numbers on every machine and runtime. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/* n Gaussian vectors of dimension d (not normalised) as one Float32Array. */
export function gaussian(n, d, seed) {
  const r = prng(seed);
  const out = new Float32Array(n * d);
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function row(flat, d, i) {
  return flat.subarray(i * d, (i + 1) * d);
}

/* Exact top-k in float64: the query normalised, dot products with the
 * stored float32 rows, ordered by score desc then id asc (resonance's
 * order).  rows: Map id -> Float32Array; allow: optional Set of ids. */
export function oracle(query, rows, k, allow) {
  let norm = 0;
  for (const x of query) norm += x * x;
  norm = Math.sqrt(norm);
  const all = [];
  for (const [id, v] of rows) {
    if (allow && !allow.has(id)) continue;
    let s = 0;
    for (let j = 0; j < v.length; j++) s += (query[j] / norm) * v[j];
    all.push({ id, score: s });
  }
  all.sort((a, b) => (b.score - a.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { top: all.slice(0, k), all };
}

/* The ids returned must be the oracle's, except where the oracle itself
 * has a near-tie (within 1e-6, the float32 kernel's rounding) at the cut
 * or between neighbours: there a swap is not an error.  Scores within tol. */
export function assertMatchesOracle(assert, ids, scores, want, tol = 2e-6) {
  assert.equal(ids.length, want.top.length, 'count');
  const byId = new Map(want.all.map((h) => [h.id, h.score]));
  for (let j = 0; j < ids.length; j++) {
    const exact = byId.get(ids[j]);
    assert.ok(exact !== undefined, `returned id ${ids[j]} is not a candidate`);
    assert.ok(Math.abs(scores[j] - exact) <= tol,
              `score of ${ids[j]}: ${scores[j]} vs oracle ${exact}`);
    if (ids[j] !== want.top[j].id)
      assert.ok(Math.abs(exact - want.top[j].score) <= 1e-6,
                `rank ${j}: ${ids[j]} (${exact}) where the oracle has ${want.top[j].id} (${want.top[j].score})`);
  }
}

export function tmpdir(tag = 'rsn-node-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), tag));
}

export function rmrf(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

/* Run the resonance CLI with an argument vector (no shell). */
export function cli(args, opts = {}) {
  const r = spawnSync(CLI, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

export function haveCli() {
  return fs.existsSync(CLI);
}

/* A full garbage collection: Bun.gc(true), or V8's gc exposed at run time. */
let v8gc = null;
export function gc() {
  if (globalThis.Bun) return globalThis.Bun.gc(true);
  if (typeof globalThis.gc === 'function') return globalThis.gc();
  if (!v8gc) {
    v8.setFlagsFromString('--expose-gc');
    v8gc = vm.runInNewContext('gc');
  }
  v8gc();
}

/* Write little-endian float32s (this machine is little-endian: the tests
 * run on x86-64/arm64) to a file. */
export function writeF32(file, floats) {
  fs.writeFileSync(file, Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength));
}

/* A test database of n nodes (dimension d) made through the binding:
 * returns {file, ids, rows (Map id -> stored Float32Array), meta}. */
export function makeDb(dir, n, d, seed, opts = {}) {
  const file = path.join(dir, opts.name || `db-${n}x${d}.db`);
  const flat = gaussian(n, d, seed);
  const ids = Array.from({ length: n }, (_, i) => `n${String(i).padStart(5, '0')}`);
  const types = ids.map((_, i) => ['note', 'person', 'place'][i % 3]);
  const db = rsn.open(file, { create: true, dim: d });
  db.upsert({
    ids,
    vectors: flat,
    titles: ids.map((id) => `Title ${id}`),
    types,
    domains: ids.map((_, i) => (i % 2 ? 'physics' : 'cooking')),
    metas: ids.map((_, i) => ({ source: `src-${i}`, rank: i })),
    dates: ids.map((_, i) => `2024-01-${String(1 + (i % 28)).padStart(2, '0')}`),
  });
  const rows = new Map();
  for (const id of ids) rows.set(id, db.get(id, { embedding: true }).embedding);
  db.close();
  return { file, ids, rows, types, flat };
}
