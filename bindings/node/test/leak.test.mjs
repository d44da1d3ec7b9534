// leak.test.mjs -- 10,000 searches (sync, async, batch, like, filtered, with
// errors) leave the resident set flat: nothing the addon allocates per call
// (query copies, results, jobs, references, filters) is kept.  The check
// compares RSS after a warm-up with RSS after the 10,000, each after a full
// garbage collection; no timing is involved.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rsn, RUNTIME, gaussian, row, tmpdir, rmrf, makeDb, gc } from './helpers.mjs';

const N = 2000;
const D = 384;
const tick = () => new Promise((r) => setImmediate(r));

describe(`memory (${RUNTIME})`, () => {
  let dir, data, db, queries;
  before(() => {
    dir = tmpdir();
    data = makeDb(dir, N, D, 21);
    db = rsn.open(data.file, { readonly: true });
    queries = gaussian(16, D, 22);
  });
  after(async () => {
    await db.close();
    rmrf(dir);
  });

  /* n searches of every kind; 1 in 16 async, awaited in groups of 16. */
  async function churn(n) {
    const bad = new Float32Array(D - 1);
    let pending = [];
    for (let i = 0; i < n; i++) {
      const q = row(queries, D, i % 16);
      switch (i % 8) {
        case 0: pending.push(db.search(q, { k: 32 })); break;
        case 1: db.searchBatchSync(queries.subarray(0, 4 * D), { k: 16 }); break;
        case 2: pending.push(db.searchLike(data.ids[i % N], { k: 8 })); break;
        case 3: db.searchSync(q, { k: 32, filter: { must: [{ key: 'type', match: { value: 'note' } }] } }); break;
        case 4: try { db.searchSync(bad); } catch { /* E_DIM, on purpose */ } break;
        case 5: pending.push(db.search(bad).catch(() => null)); break;
        case 6: db.searchSync(Array.from(q), { k: 10, hydrate: false }); break;
        default: db.searchSync(q, { k: 10 }); break;
      }
      if (pending.length >= 16) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
  }

  async function settledRss() {
    for (let i = 0; i < 3; i++) {
      gc();
      await tick();
    }
    return process.memoryUsage().rss;
  }

  test('RSS is flat over 10,000 searches', async (t) => {
    await churn(2000); // warm-up: allocator arenas, caches, JIT
    const before = await settledRss();
    await churn(10000);
    const afterRss = await settledRss();
    const grew = (afterRss - before) / 1048576;
    t.diagnostic(`RSS ${(before / 1048576).toFixed(1)} MB -> ${(afterRss / 1048576).toFixed(1)} MB (${grew >= 0 ? '+' : ''}${grew.toFixed(2)} MB)`);
    // A leak of one query copy per search alone would be 10,000 x 1.5 KB =
    // 15 MB; of results (32 hydrated hits) far more.  8 MB leaves room for
    // allocator noise.
    assert.ok(grew < 8, `RSS grew by ${grew.toFixed(2)} MB over 10,000 searches`);
  });
});
