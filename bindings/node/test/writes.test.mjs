// writes.test.mjs -- upsert (every input shape, all or nothing), delete, get,
// stats, check, refresh after another connection's commit, close.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { rsn, RUNTIME, gaussian, row, tmpdir, rmrf, cli, haveCli } from './helpers.mjs';

const D = 16;

function unit(v) {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return Float32Array.from(v, (x) => x / n);
}

describe(`writes and reads (${RUNTIME})`, () => {
  let dir;
  before(() => { dir = tmpdir(); });
  after(() => rmrf(dir));

  test('upsert: nodes, one node, columns; get returns what was stored', async () => {
    const file = path.join(dir, 'w.db');
    const db = rsn.open(file, { create: true, dim: D });
    const v = gaussian(6, D, 3);
    assert.equal(db.upsert([
      { id: 'a', embedding: row(v, D, 0), title: 'A', type: 'note', meta: { source: 's', n: 1 } },
      { id: 'b', embedding: Array.from(row(v, D, 1)), summary: 'sum' },
      { id: 'c', embedding: Float64Array.from(row(v, D, 2)), date: '2024-05-06' },
    ]), 3);
    assert.equal(db.upsert({ id: 'd', embedding: row(v, D, 3), layer: 'core' }), 1);
    assert.equal(db.upsert({ ids: ['e', 'f'], vectors: v.subarray(4 * D), titles: ['E', 'F'],
                             domains: ['x', null] }), 2);
    assert.equal(db.upsert({ id: 'no-vector', title: 'only text' }), 1);
    const a = db.get('a', { embedding: true });
    assert.equal(a.id, 'a');
    assert.equal(a.title, 'A');
    assert.equal(a.type, 'note');
    assert.deepEqual(JSON.parse(a.meta), { source: 's', n: 1 });
    assert.equal(a.domain, null);
    assert.ok(a.embedding instanceof Float32Array);
    const u = unit(row(v, D, 0));
    a.embedding.forEach((x, j) => assert.ok(Math.abs(x - u[j]) < 1e-6));
    assert.equal(db.get('a').embedding, undefined);
    assert.equal(db.get('b').summary, 'sum');
    assert.equal(db.get('c').date, '2024-05-06');
    assert.equal(db.get('d').layer, 'core');
    assert.equal(db.get('f').title, 'F');
    assert.equal(db.get('f').domain, null);
    assert.equal(db.get('no-vector', { embedding: true }).embedding, null);
    assert.equal(db.get('zzz'), null);
    const s = db.stats();
    assert.equal(s.nodes, 7);
    assert.equal(s.arenaRows, 6);
    assert.equal(s.vectors.dim, D);
    assert.equal(s.loaded, true);
    assert.equal(s.health.journalMode, 'wal');
    assert.equal(s.health.drift, 0);
    assert.equal(typeof s.isa, 'string');
    assert.ok(s.history >= 7);
    // the new rows are searchable at once
    const r = db.searchSync(row(v, D, 5), { k: 1 });
    assert.deepEqual(r.ids, ['f']);
    await db.close();
  });

  test('upsert is all or nothing; delete too', async () => {
    const file = path.join(dir, 'atomic.db');
    const db = rsn.open(file, { create: true, dim: D });
    const v = gaussian(4, D, 5);
    db.upsert({ ids: ['a', 'b'], vectors: v.subarray(0, 2 * D) });
    let err = null;
    try {
      db.upsert([
        { id: 'c', embedding: row(v, D, 2) },
        { id: 'd', embedding: new Float32Array(D + 1).fill(1) }, // wrong dimension
      ]);
    } catch (e) { err = e; }
    assert.equal(err?.code, 'E_DIM');
    assert.match(err.message, /item 1 \(id 'd'\)/);
    assert.equal(db.get('c'), null, 'the first node of a failed upsert is not written');
    for (const [bad, code] of [
      [[{ id: 'x', embedding: new Float32Array(D) }], 'E_ZERO'],
      [[{ id: 'x', embedding: new Float32Array(D).fill(NaN) }], 'E_NONFINITE'],
      [[{ embedding: row(v, D, 2) }], 'E_INVAL'],
      [[{ id: 'x', title: 5 }], 'E_INVAL'],
      [[{ id: 'x', embedding: 'nope' }], 'E_INVAL'],
      [[42], 'E_INVAL'],
    ]) {
      assert.throws(() => db.upsert(bad), (e) => e.code === code, JSON.stringify(bad));
    }
    assert.throws(() => db.upsert({ ids: ['p', 'q'], vectors: new Float32Array(D * 2 + 1) }),
                  (e) => e.code === 'E_DIM');
    assert.equal(db.stats().nodes, 2);
    // a getter that throws: its exception comes through, nothing is written
    const evil = { id: 'evil', get embedding() { throw new Error('boom'); } };
    assert.throws(() => db.upsert([{ id: 'ok', embedding: row(v, D, 3) }, evil]), /boom/);
    assert.equal(db.get('ok'), null);
    // delete: an absent id undoes the whole call
    assert.throws(() => db.delete(['a', 'missing']), (e) => e.code === 'E_NOTFOUND' && /missing/.test(e.message));
    assert.notEqual(db.get('a'), null);
    assert.equal(db.delete('a'), 1);
    assert.equal(db.get('a'), null);
    assert.equal(db.searchSync(row(v, D, 0), { k: 5 }).count, 1);
    // a handle can be used for writes after failures (no transaction left open)
    assert.equal(db.upsert({ id: 'z', embedding: row(v, D, 3) }), 1);
    await db.close();
  });

  test('check, refresh after a commit by another connection, reopen', async () => {
    const file = path.join(dir, 'sync.db');
    const db = rsn.open(file, { create: true, dim: D });
    const v = gaussian(3, D, 9);
    db.upsert({ ids: ['a', 'b'], vectors: v.subarray(0, 2 * D) });
    const c = db.check();
    assert.equal(c.integrityOk, true);
    assert.equal(c.problems, 0);
    assert.equal(c.vectors.valid, 2);
    assert.deepEqual(db.refresh(), { changed: false, fullReload: false, upserted: 0, removed: 0 });
    // another handle (another connection) writes
    const other = rsn.open(file);
    other.upsert({ id: 'c', embedding: row(v, D, 2) });
    await other.close();
    assert.equal(db.searchSync(row(v, D, 2), { k: 1 }).ids[0] === 'c', false, 'not seen before refresh');
    const info = db.refresh();
    assert.equal(info.changed, true);
    assert.equal(info.upserted, 1);
    assert.deepEqual(db.searchSync(row(v, D, 2), { k: 1 }).ids, ['c']);
    // autoRefresh: a search applies outside commits by itself
    const auto = rsn.open(file, { autoRefresh: true });
    const w = rsn.open(file);
    w.delete('c');
    await w.close();
    assert.notDeepEqual(auto.searchSync(row(v, D, 2), { k: 1 }).ids, ['c']);
    await auto.close();
    await db.close();
    // lazy: the arena loads at the first search
    const lazy = rsn.open(file, { lazy: true, readonly: true });
    assert.equal(lazy.stats().loaded, false);
    assert.equal(lazy.searchSync(row(v, D, 0), { k: 1 }).ids[0], 'a');
    await lazy.close();
  });

  test('a database the CLI imported opens and searches the same', { skip: !haveCli() && 'no CLI' }, async () => {
    const corpus = path.join(dir, 'corpus.jsonl');
    const file = path.join(dir, 'cli.db');
    let r = cli(['generate', corpus, '--n', '500', '--dim', String(D), '--seed', '3']);
    assert.equal(r.status, 0, r.stderr);
    r = cli(['init', file, '--dim', String(D)]);
    assert.equal(r.status, 0, r.stderr);
    r = cli(['import', file, corpus]);
    assert.equal(r.status, 0, r.stderr);
    const db = rsn.open(file, { readonly: true });
    assert.equal(db.stats().arenaRows, 500);
    const like = db.searchLikeSync('node-000007', { k: 3 });
    r = cli(['search', file, '--like', 'node-000007', '-k', '3', '--json']);
    const c = JSON.parse(r.stdout.trim()).results;
    assert.deepEqual(like.ids, c.map((h) => h.id));
    assert.deepEqual(like.hits.map((h) => h.type), c.map((h) => h.type));
    await db.close();
  });
});
