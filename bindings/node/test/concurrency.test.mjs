// concurrency.test.mjs -- searches in flight (libuv's pool) while the
// JavaScript thread writes; close() while searches run; results outliving
// the handle; the addon in a worker thread.  No timing is asserted: what is
// checked is every answer, whatever the interleaving was.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  rsn, RUNTIME, PKG, gaussian, row, oracle, assertMatchesOracle, tmpdir, rmrf, makeDb, gc,
} from './helpers.mjs';

const N = 20000;
const D = 64;
const K = 10;
const tick = () => new Promise((r) => setImmediate(r));

/* Every hit of r scores as its stored vector says, in order, once. */
function assertConsistent(r, q, vectors) {
  let norm = 0;
  for (const x of q) norm += x * x;
  norm = Math.sqrt(norm);
  assert.equal(new Set(r.ids).size, r.ids.length, 'duplicate ids');
  r.ids.forEach((id, j) => {
    const v = vectors.get(id);
    assert.ok(v, `unknown id ${id}`);
    let s = 0;
    for (let i = 0; i < D; i++) s += (q[i] / norm) * v[i];
    assert.ok(Math.abs(s - r.scores[j]) <= 2e-6, `${id}: ${r.scores[j]} vs ${s}`);
    if (j) assert.ok(r.scores[j - 1] >= r.scores[j], 'order');
  });
}

describe(`concurrency and lifetime (${RUNTIME})`, () => {
  let dir, data, queries;
  before(() => {
    dir = tmpdir();
    data = makeDb(dir, N, D, 11);
    queries = gaussian(64, D, 12);
  });
  after(() => rmrf(dir));

  test('many searches in flight give the sync answers', async () => {
    const db = rsn.open(data.file, { readonly: true });
    const nq = queries.length / D;
    const want = Array.from({ length: nq }, (_, i) => db.searchSync(row(queries, D, i), { k: K }));
    const singles = Array.from({ length: nq }, (_, i) => db.search(row(queries, D, i), { k: K }));
    const batches = [0, 1, 2, 3].map(() => db.searchBatch(queries, { k: K }));
    const likes = data.ids.slice(0, 8).map((id) => db.searchLike(id, { k: K }));
    assert.ok(db.pending > 0);
    const got = await Promise.all(singles);
    got.forEach((g, i) => {
      assert.deepEqual(g.ids, want[i].ids);
      assert.deepEqual(g.scores, want[i].scores);
      assert.deepEqual(g.hits, want[i].hits);
    });
    for (const b of await Promise.all(batches))
      for (let i = 0; i < nq; i++) assert.deepEqual(b.ids[i], want[i].ids);
    const lk = await Promise.all(likes);
    lk.forEach((r, i) => assert.deepEqual(r.ids, db.searchLikeSync(data.ids[i], { k: K }).ids));
    assert.equal(db.pending, 0);
    await db.close();
  });

  test('searches in flight while the JavaScript thread upserts and deletes', async (t) => {
    const file = path.join(dir, 'rw.db');
    const base = makeDb(dir, N, D, 13, { name: 'rw.db' });
    assert.equal(base.file, file);
    const db = rsn.open(file);
    const vectors = new Map(base.rows);
    const fresh = gaussian(200, D, 14);
    const nq = queries.length / D;
    let writesStarted = false;
    let settledDuringWrites = 0;
    const inflight = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < nq; i++) {
        const q = row(queries, D, i);
        inflight.push(db.search(q, { k: K, hydrate: i % 2 === 0 }).then((r) => {
          if (writesStarted) settledDuringWrites++;
          return { r, q };
        }));
      }
    }
    writesStarted = true;
    for (let w = 0; w < 10; w++) {
      const ids = Array.from({ length: 20 }, (_, i) => `w${w}-${i}`);
      const vecs = fresh.subarray(w * 20 * D, (w + 1) * 20 * D);
      db.upsert({ ids, vectors: vecs, titles: ids });
      ids.forEach((id) => vectors.set(id, db.get(id, { embedding: true }).embedding));
      db.delete(base.ids.slice(w * 5, w * 5 + 5));
      await tick();
    }
    writesStarted = false;
    const results = await Promise.all(inflight);
    for (const { r, q } of results) {
      assert.equal(r.count, K);
      assertConsistent(r, q, vectors);
    }
    // after the writes: the final state, exactly
    for (const id of base.ids.slice(0, 50)) vectors.delete(id);
    for (let i = 0; i < 8; i++) {
      const q = row(queries, D, i);
      const r = await db.search(q, { k: K });
      assertMatchesOracle(assert, r.ids, r.scores, oracle(q, vectors, K));
    }
    t.diagnostic(`${settledDuringWrites} of ${results.length} searches settled while the writes ran`);
    await db.close();
  });

  test('close() while searches run: they finish, later calls fail with E_STATE', async () => {
    const db = rsn.open(data.file, { readonly: true });
    const q = row(queries, D, 0);
    const want = db.searchSync(q, { k: K });
    const order = [];
    const searches = Array.from({ length: 16 }, (_, i) =>
      db.search(q, { k: K }).then((r) => { order.push(`s${i}`); return r; }));
    const closed = db.close().then(() => order.push('closed'));
    assert.equal(db.closed, true);
    assert.strictEqual(db.close(), db.close(), 'one close promise');
    assert.throws(() => db.searchSync(q), (e) => e.code === 'E_STATE');
    await assert.rejects(() => db.search(q), (e) => e.code === 'E_STATE');
    assert.throws(() => db.upsert({ id: 'x' }), (e) => e.code === 'E_STATE');
    assert.throws(() => db.stats(), (e) => e.code === 'E_STATE');
    for (const r of await Promise.all(searches)) assert.deepEqual(r.ids, want.ids);
    await closed;
    assert.equal(order.at(-1), 'closed', 'close resolves after the searches in flight');
    assert.equal(order.length, 17);
    assert.equal(db.pending, 0);
    await db.close(); // closing again is fine
  });

  test('a result outlives its handle (results are copies)', async () => {
    let r, b;
    {
      const db = rsn.open(data.file, { readonly: true });
      r = await db.search(row(queries, D, 2), { k: K });
      b = db.searchBatchSync(queries.subarray(0, 4 * D), { k: K });
      await db.close();
    }
    gc();
    await tick();
    gc();
    const want = oracle(row(queries, D, 2), data.rows, K);
    assertMatchesOracle(assert, r.ids, r.scores, want);
    assert.equal(r.hits[0].title, `Title ${r.ids[0]}`);
    assertMatchesOracle(assert, b.ids[2], b.scores.subarray(2 * K, 3 * K), want);
  });

  test('handles dropped without close() are collected without harm', async () => {
    for (let i = 0; i < 8; i++) {
      const db = rsn.open(data.file, { readonly: true });
      db.searchSync(row(queries, D, i), { k: 1 });
    }
    gc();
    await tick();
    gc();
    const db = rsn.open(data.file, { readonly: true });
    assert.equal(db.searchSync(row(queries, D, 0), { k: 3 }).count, 3);
    await db.close();
  });

  test('the addon in a worker thread (its own environment) answers the same', async () => {
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      const rsn = require(workerData.index);
      const db = rsn.open(workerData.file, { readonly: true });
      db.search(new Float32Array(workerData.q), { k: ${K} }).then(async (r) => {
        let err = null;
        try { db.searchSync(new Float32Array(3)); } catch (e) { err = e.code + ':' + (e instanceof rsn.ResonanceError); }
        await db.close();
        parentPort.postMessage({ ids: r.ids, scores: Array.from(r.scores), err });
      });`;
    const q = row(queries, D, 5);
    const w = new Worker(src, {
      eval: true,
      workerData: { index: path.join(PKG, 'index.js'), file: data.file, q: Array.from(q) },
    });
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    const db = rsn.open(data.file, { readonly: true });
    const want = db.searchSync(q, { k: K });
    assert.deepEqual(msg.ids, want.ids);
    assert.deepEqual(msg.scores, Array.from(want.scores));
    assert.equal(msg.err, 'E_DIM:true');
    await db.close();
  });
});
