// search.test.mjs -- results equal the C library's (bit for bit, through the
// CLI) and a float64 oracle; input shapes and types; result layout; errors.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import {
  rsn, RUNTIME, gaussian, row, oracle, assertMatchesOracle, tmpdir, rmrf, cli, haveCli,
  writeF32, makeDb,
} from './helpers.mjs';

const { ResonanceError, Filter } = rsn;
const N = 3000;
const D = 48;
const K = 10;

/* Expect fn() (sync) to throw, or its promise to reject, with this code. */
async function rejects(fn, code, re) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${code}, nothing was thrown`);
  assert.ok(err instanceof ResonanceError, `not a ResonanceError: ${err}`);
  assert.equal(err.code, code, err.message);
  assert.equal(typeof err.status, 'number');
  if (re) assert.match(err.message, re);
  return err;
}

describe(`search (${RUNTIME})`, () => {
  let dir, data, db, queries;

  before(() => {
    dir = tmpdir();
    data = makeDb(dir, N, D, 7);
    db = rsn.open(data.file);
    queries = gaussian(24, D, 99);
  });
  after(async () => {
    await db.close();
    rmrf(dir);
  });

  test('sync, async and batch equal the float64 oracle', async () => {
    const nq = queries.length / D;
    const batch = db.searchBatchSync(queries, { k: K, hydrate: false });
    for (let i = 0; i < nq; i++) {
      const q = row(queries, D, i);
      const want = oracle(q, data.rows, K);
      const s = db.searchSync(q, { k: K });
      const a = await db.search(q, { k: K });
      assertMatchesOracle(assert, s.ids, s.scores, want);
      assertMatchesOracle(assert, a.ids, a.scores, want);
      assert.deepEqual(a.ids, s.ids);
      assert.deepEqual(a.scores, s.scores);
      assertMatchesOracle(assert, batch.ids[i], batch.scores.subarray(i * K, (i + 1) * K), want);
    }
  });

  test('scores are bit-equal to the C library (resonance CLI, --json)', { skip: !haveCli() && 'no CLI' }, () => {
    const qfile = path.join(dir, 'q.f32');
    writeF32(qfile, queries);
    const out = cli(['search', data.file, '--queries', qfile, '-k', String(K), '--json', '--no-hydrate']);
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const batch = db.searchBatchSync(queries, { k: K, hydrate: false });
    assert.equal(lines.length, batch.nq);
    for (const l of lines) {
      const q = l.query;
      assert.deepEqual(batch.ids[q], l.results.map((h) => h.id));
      l.results.forEach((h, j) => assert.equal(batch.scores[q * K + j], Math.fround(h.score)));
    }
    // single queries (rsn_search) against --vector, and --like
    for (let i = 0; i < 3; i++) {
      const vfile = path.join(dir, `v${i}.f32`);
      writeF32(vfile, row(queries, D, i));
      const o = cli(['search', data.file, '--vector', vfile, '-k', String(K), '--json', '--no-hydrate']);
      assert.equal(o.status, 0, o.stderr);
      const c = JSON.parse(o.stdout.trim().split('\n')[0]).results;
      const s = db.searchSync(row(queries, D, i), { k: K, hydrate: false });
      assert.deepEqual(s.ids, c.map((h) => h.id));
      c.forEach((h, j) => assert.equal(s.scores[j], Math.fround(h.score)));
    }
    const o = cli(['search', data.file, '--like', data.ids[5], '-k', String(K), '--json']);
    assert.equal(o.status, 0, o.stderr);
    const c = JSON.parse(o.stdout.trim().split('\n')[0]).results;
    const like = db.searchLikeSync(data.ids[5], { k: K });
    assert.deepEqual(like.ids, c.map((h) => h.id));
    c.forEach((h, j) => assert.equal(like.scores[j], Math.fround(h.score)));
    assert.deepEqual(like.hits.map((h) => h.title), c.map((h) => h.title));
  });

  test('input types: Float64Array, Array and Float32Array give the same answer', async () => {
    const q32 = row(queries, D, 0);
    const q64 = Float64Array.from(q32);
    const arr = Array.from(q32);
    const a = db.searchSync(q32);
    for (const other of [db.searchSync(q64), db.searchSync(arr)]) {
      assert.deepEqual(other.ids, a.ids);
      assert.deepEqual(other.scores, a.scores);
      assert.deepEqual(other.hits, a.hits);
    }
    assert.deepEqual((await db.search(q64)).scores, a.scores);
    // a Float32Array view at an offset into a larger buffer
    const big = new Float32Array(D + 3);
    big.set(q32, 3);
    assert.deepEqual(db.searchSync(big.subarray(3)).scores, a.scores);
    // integer typed arrays are converted too
    const qi = Int16Array.from(q32, (x) => Math.round(x * 1000));
    const wantI = oracle(Float32Array.from(qi), data.rows, K);
    assertMatchesOracle(assert, db.searchSync(qi).ids, db.searchSync(qi).scores, wantI);
  });

  test('batch shapes: flat Float32Array, arrays of vectors, empty batches', async () => {
    const nq = 5;
    const flat = queries.subarray(0, nq * D);
    const a = db.searchBatchSync(flat, { k: K });
    const vecs = Array.from({ length: nq }, (_, i) => row(queries, D, i));
    const b = db.searchBatchSync(vecs, { k: K });
    const c = await db.searchBatch(vecs.map((v) => Array.from(v)), { k: K });
    const f64 = db.searchBatchSync(vecs.map((v) => Float64Array.from(v)), { k: K });
    for (const r of [b, c, f64]) {
      assert.deepEqual(r.ids, a.ids);
      assert.deepEqual(r.scores, a.scores);
      assert.deepEqual(r.counts, a.counts);
    }
    assert.equal(a.nq, nq);
    assert.equal(a.k, K);
    assert.ok(a.counts instanceof Uint32Array);
    assert.ok(a.scores instanceof Float32Array);
    assert.equal(a.scores.length, nq * K);
    assert.equal(a.hits.length, nq);
    assert.equal(a.hits[2][3].id, a.ids[2][3]);
    assert.equal(a.hits[2][3].score, a.scores[2 * K + 3]);
    for (const empty of [new Float32Array(0), []]) {
      const e = db.searchBatchSync(empty, { k: K });
      assert.equal(e.nq, 0);
      assert.equal(e.counts.length, 0);
      assert.equal(e.scores.length, 0);
      assert.deepEqual(e.ids, []);
      assert.equal((await db.searchBatch(empty)).nq, 0);
    }
  });

  test('k above 1024 (no answer buffer: the result object comes from C) answers the same', async () => {
    const q = row(queries, D, 7);
    for (const hydrate of [true, false]) {
      const big = db.searchSync(q, { k: 1500, hydrate });
      const small = db.searchSync(q, { k: 1000, hydrate });
      const bigA = await db.search(q, { k: 1500, hydrate });
      const smallA = await db.search(q, { k: 1000, hydrate });
      assert.deepEqual(Object.keys(big), Object.keys(small));
      assert.deepEqual(Object.keys(bigA), Object.keys(small));
      assert.deepEqual(big.ids.slice(0, 1000), small.ids);
      assert.deepEqual(big.scores.subarray(0, 1000), small.scores);
      assert.deepEqual(bigA.ids, big.ids);
      assert.deepEqual(smallA.ids, small.ids);
      if (hydrate) assert.deepEqual(big.hits.slice(0, 1000), small.hits);
      const likeBig = db.searchLikeSync(data.ids[3], { k: 1500, hydrate });
      const likeSmall = await db.searchLike(data.ids[3], { k: 1000, hydrate });
      assert.deepEqual(likeBig.ids.slice(0, 1000), likeSmall.ids);
      assert.equal(big.k, 1500);
      assert.equal(small.k, 1000);
    }
  });

  test('result layout: a single query, hydration, k > N, padding, minScore', () => {
    const q = row(queries, D, 1);
    const r = db.searchSync(q, { k: 4 });
    assert.ok(Array.isArray(r.ids) && r.ids.every((s) => typeof s === 'string'));
    assert.ok(r.scores instanceof Float32Array);
    assert.equal(r.count, 4);
    assert.equal(r.tier, 'f32');
    assert.equal(r.approximate, false);
    assert.equal(typeof r.searchMs, 'number');
    const h = r.hits[0];
    assert.deepEqual(Object.keys(h), ['id', 'score', 'type', 'title', 'domain', 'layer', 'date', 'meta', 'summary']);
    assert.equal(h.title, `Title ${h.id}`);
    assert.equal(JSON.parse(h.meta).source, `src-${Number(h.id.slice(1))}`);
    assert.equal(h.layer, null);
    for (let j = 1; j < r.count; j++) assert.ok(r.scores[j - 1] >= r.scores[j]);
    // no hydration: no hits
    assert.equal(db.searchSync(q, { k: 4, hydrate: false }).hits, undefined);
    // k > N: every row, no padding in a single result
    const all = db.searchSync(q, { k: N + 50, hydrate: false });
    assert.equal(all.count, N);
    assert.equal(all.ids.length, N);
    // a batch pads past counts[q] with NaN (minScore cuts each query's list
    // at its own length; a filter would lower k itself to min(k, matches))
    const b = db.searchBatchSync([q, row(queries, D, 2)], { k: 50, minScore: 0.35, hydrate: false });
    assert.equal(b.k, 50);
    assert.equal(b.scores.length, 100);
    for (const qi of [0, 1]) {
      const c = b.counts[qi];
      assert.ok(c > 0 && c < 50, `count ${c}`);
      assert.equal(b.ids[qi].length, c);
      for (let j = 0; j < c; j++) assert.ok(b.scores[qi * 50 + j] > 0.35);
      for (let j = c; j < 50; j++) assert.ok(Number.isNaN(b.scores[qi * 50 + j]));
    }
    const f = db.searchBatchSync([q], { k: 5, filter: Filter.ids(data.ids.slice(0, 3)) });
    assert.equal(f.k, 3);
    assert.deepEqual(Array.from(f.counts), [3]);
    // minScore keeps score > minScore only
    const m = db.searchSync(q, { k: 50, minScore: 0.35, hydrate: false });
    assert.ok(m.count < 50);
    assert.ok(Array.from(m.scores).every((s) => s > 0.35));
    assert.deepEqual(m.ids, all.ids.slice(0, m.count));
  });

  test('filters: objects, JSON, ids, where, near and combinators', () => {
    const q = row(queries, D, 3);
    const notes = new Set(data.ids.filter((_, i) => data.types[i] === 'note'));
    const wantNotes = oracle(q, data.rows, K, notes);
    const spec = { must: [{ key: 'type', match: { value: 'note' } }] };
    for (const filter of [spec, JSON.stringify(spec), Filter.parse(spec)]) {
      const r = db.searchSync(q, { k: K, filter, hydrate: false });
      assertMatchesOracle(assert, r.ids, r.scores, wantNotes);
    }
    const w = Filter.where("type = ? AND domain = ?", ['note', 'physics']);
    const set = new Set(data.ids.filter((_, i) => data.types[i] === 'note' && i % 2 === 1));
    const r = db.searchSync(q, { k: K, filter: w, hydrate: false });
    assertMatchesOracle(assert, r.ids, r.scores, oracle(q, data.rows, K, set));
    // and / or / not agree with the sets they combine
    const byType = Filter.parse(spec);
    const phys = Filter.parse({ must: [{ key: 'domain', match: { value: 'physics' } }] });
    const andR = db.searchSync(q, { k: K, filter: byType.and(phys), hydrate: false });
    assert.deepEqual(andR.ids, r.ids);
    const notR = db.searchSync(q, { k: K, filter: byType.not(), hydrate: false });
    const notNotes = new Set(data.ids.filter((id) => !notes.has(id)));
    assertMatchesOracle(assert, notR.ids, notR.scores, oracle(q, data.rows, K, notNotes));
    const orR = db.searchSync(q, { k: 2000, filter: byType.or(phys), hydrate: false });
    const orSet = new Set(data.ids.filter((_, i) => data.types[i] === 'note' || i % 2 === 1));
    assert.equal(orR.count, orSet.size);
    // near: no edges in this database, so only the node itself
    const nr = db.searchSync(q, { k: K, filter: Filter.near(data.ids[9], { hops: 2 }) });
    assert.deepEqual(nr.ids, [data.ids[9]]);
    // one filter object shared by concurrent searches
    return Promise.all([0, 1, 2, 3].map(() => db.search(q, { k: K, filter: byType })))
      .then((rs) => rs.forEach((x) => assertMatchesOracle(assert, x.ids, x.scores, wantNotes)));
  });

  test('tiers: an i8 search rescored in f32 gives exact scores', () => {
    const t = rsn.open(data.file, { readonly: true, tiers: ['i8'] });
    try {
      const q = row(queries, D, 4);
      const r = t.searchSync(q, { k: K, tier: 'i8', oversample: 8, hydrate: false });
      assert.equal(r.tier, 'i8');
      assert.equal(r.approximate, false);
      assert.ok(r.candidates >= K);
      const exact = t.searchSync(q, { k: K, hydrate: false });
      // every returned score is exact f32 (the same bits as the f32 search gives that id)
      const byId = new Map(exact.ids.map((id, j) => [id, exact.scores[j]]));
      r.ids.forEach((id, j) => { if (byId.has(id)) assert.equal(r.scores[j], byId.get(id)); });
      const ap = t.searchSync(q, { k: K, tier: 'i8', rescore: false, hydrate: false });
      assert.equal(ap.approximate, true);
    } finally {
      t.close();
    }
  });

  test('errors are ResonanceErrors with the library code and message', async () => {
    const q = row(queries, D, 0);
    await rejects(() => db.searchSync(new Float32Array(D + 1)), 'E_DIM', new RegExp(`${D + 1}.*${D}`));
    await rejects(() => db.search(new Float32Array(D - 1)), 'E_DIM');
    await rejects(() => db.searchBatchSync(new Float32Array(D * 2 + 1)), 'E_DIM', /whole number/);
    await rejects(() => db.searchBatch([q, q.subarray(1)]), 'E_DIM', /queries\[1\]/);
    await rejects(() => db.searchSync(q, { k: 0 }), 'E_K');
    await rejects(() => db.search(q, { k: 0 }), 'E_K');
    const nan = Float32Array.from(q);
    nan[3] = NaN;
    await rejects(() => db.searchSync(nan), 'E_NONFINITE');
    await rejects(() => db.searchBatch([q, nan]), 'E_NONFINITE', /1/);
    await rejects(() => db.search(new Float32Array(D)), 'E_ZERO');
    await rejects(() => db.searchSync('not a vector'), 'E_INVAL');
    await rejects(() => db.searchSync([1, 'x', 3]), 'E_INVAL', /\[1\]/);
    await rejects(() => db.searchSync(new BigInt64Array(D)), 'E_INVAL', /BigInt/);
    await rejects(() => db.searchSync(q, { k: -1 }), 'E_INVAL');
    await rejects(() => db.searchSync(q, { tier: 'f8' }), 'E_INVAL', /f8/);
    await rejects(() => db.searchSync(q, { tier: 'i8' }), 'E_TIER');
    await rejects(() => db.searchLike('no-such-id'), 'E_NOTFOUND');
    await rejects(() => db.searchSync(q, { filter: '{"must": [' }), 'E_PARSE');
    await rejects(() => db.searchSync(q, { filter: 42 }), 'E_PARSE');
    await rejects(() => rsn.open(path.join(dir, 'missing.db')), 'E_CANTOPEN');
    await rejects(() => rsn.open(data.file, { dim: D + 2 }), 'E_DIM', new RegExp(`${D}`));
    await rejects(() => rsn.openAsync(path.join(dir, 'missing.db')), 'E_CANTOPEN');
    fs.writeFileSync(path.join(dir, 'junk.db'), 'this is not a database'.repeat(100));
    await rejects(() => rsn.open(path.join(dir, 'junk.db')), 'E_NOTDB');
    await rejects(() => rsn.open(data.file, { tiers: ['x'] }), 'E_INVAL');
    await rejects(() => rsn.open(undefined), 'E_INVAL', /path/);
    await rejects(() => rsn.openAsync(42), 'E_INVAL', /path/);
    await rejects(() => db.searchSync(q, 'k=3'), 'E_INVAL');
    await rejects(() => db.searchSync(q, { minScore: NaN }), 'E_INVAL');
    const e = await rejects(() => db.searchSync(new Float32Array(3)), 'E_DIM');
    assert.equal(e.name, 'ResonanceError');
    assert.equal(e.status, 10);
    assert.ok(e instanceof Error);
  });

  test('openAsync loads off the JavaScript thread and searches like open', async () => {
    const a = await rsn.openAsync(data.file, { readonly: true });
    try {
      const q = row(queries, D, 6);
      assert.deepEqual(a.searchSync(q).ids, db.searchSync(q).ids);
      assert.equal(a.dim, D);
      assert.equal(a.stats().arenaRows, N);
    } finally {
      await a.close();
    }
  });
});
