// example.test.mjs -- examples/vector_engine.mjs, the drop-in VectorEngine,
// against an app-style database (the app's own migrations, written by the
// sqlite3 shell, no resonance tables), compared with a port of the app's
// JavaScript loop over the same rows.  Under Bun it is also built from a
// bun:sqlite Database, as the app constructs it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { RUNTIME, IS_BUN, PKG, gaussian, row, tmpdir, rmrf, prng } from './helpers.mjs';
import { VectorEngine } from '../examples/vector_engine.mjs';

const N = 400;
const D = 384;

/* The app's migrations 0000-0002 (storage/schema.c has the same text). */
const APP_DDL = `
CREATE TABLE \`edges\` (
\t\`source\` text NOT NULL,
\t\`target\` text NOT NULL,
\t\`type\` text NOT NULL,
\t\`confidence\` real DEFAULT 1,
\t\`veracity\` real DEFAULT 1,
\t\`context_source\` text,
\tPRIMARY KEY(\`source\`, \`target\`, \`type\`)
);
CREATE INDEX \`idx_edges_source\` ON \`edges\` (\`source\`);
CREATE INDEX \`idx_edges_target\` ON \`edges\` (\`target\`);
CREATE TABLE \`ember_state\` (
\t\`file_path\` text PRIMARY KEY NOT NULL,
\t\`last_analyzed\` text,
\t\`sidecar_created\` integer,
\t\`confidence\` real
);
CREATE TABLE \`nodes\` (
\t\`id\` text PRIMARY KEY NOT NULL,
\t\`type\` text,
\t\`title\` text,
\t\`domain\` text,
\t\`layer\` text,
\t\`embedding\` blob,
\t\`hash\` text,
\t\`meta\` text,
\t\`date\` text
);
CREATE TABLE \`history\` (
\t\`id\` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
\t\`entity_type\` text NOT NULL,
\t\`entity_id\` text NOT NULL,
\t\`action\` text NOT NULL,
\t\`old_value\` text,
\t\`new_value\` text,
\t\`timestamp\` text DEFAULT (CURRENT_TIMESTAMP)
);
ALTER TABLE \`nodes\` ADD \`summary\` text;
`;

/* The app's toFafcas: divide by the float64 norm, store float32. */
function toFafcas(v) {
  let s = 0;
  for (const x of v) s += x * x;
  const m = Math.sqrt(s);
  const out = Float32Array.from(v);
  if (m > 1e-6) for (let i = 0; i < out.length; i++) out[i] = out[i] / m;
  return out;
}

const hex = (f32) => Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('hex');
const sqlStr = (s) => (s == null ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);

function sqlite(file, sql) {
  const r = spawnSync('sqlite3', [file], { input: sql, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/* The app's searchByVector, ported (src/core/VectorEngine.ts): every row's
 * dot product in JavaScript, keep > 0, sort, slice, hydrate. */
function appSearch(rows, q, limit) {
  const scored = [];
  for (const r of rows) {
    if (!r.vec) continue;
    let ma = 0, mb = 0, s = 0;
    for (let i = 0; i < q.length; i++) { ma += q[i] * q[i]; mb += r.vec[i] * r.vec[i]; }
    if (Math.sqrt(ma) < 1e-6 || Math.sqrt(mb) < 1e-6) continue; // score 0
    for (let i = 0; i < q.length; i++) s += (q[i] || 0) * (r.vec[i] || 0);
    if (s > 0) scored.push({ r, score: s });
  }
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, limit).map(({ r, score }) => {
    let content = '';
    if (r.meta) {
      try {
        content = `[Hollow Node: ${JSON.parse(r.meta).source || 'no source'}]`;
      } catch {
        content = '[Hollow Node: parse error]';
      }
    }
    return { id: r.id, score, title: r.title, content, date: r.date || undefined };
  });
}

function sameHits(got, want) {
  assert.deepEqual(got.map((h) => h.id), want.map((h) => h.id));
  got.forEach((h, i) => {
    assert.ok(Math.abs(h.score - want[i].score) < 1e-5, `${h.id}: ${h.score} vs ${want[i].score}`);
    assert.deepEqual({ ...h, score: 0 }, { ...want[i], score: 0 });
  });
}

describe(`VectorEngine drop-in (${RUNTIME})`, { skip: spawnSync('sqlite3', ['-version']).status !== 0 && 'no sqlite3 shell' }, () => {
  let dir, file, rows, queries;

  before(() => {
    dir = tmpdir();
    file = path.join(dir, 'resonance.db');
    const flat = gaussian(N, D, 31);
    const r = prng(32);
    rows = [];
    for (let i = 0; i < N; i++) {
      const id = `note-${i}`;
      let vec = toFafcas(row(flat, D, i));
      if (i % 50 === 7) vec = null;                      // no embedding yet
      if (i === 13) vec = new Float32Array(D);           // a failed embedding
      const kind = i % 4;
      const meta = kind === 0 ? JSON.stringify({ source: `docs/${id}.md` })
        : kind === 1 ? JSON.stringify({ other: 1 }) : kind === 2 ? '{not json' : null;
      rows.push({ id, vec, title: `Note ${i}`, meta, date: r() < 0.5 ? `2024-02-${10 + (i % 18)}` : null,
                  type: 'note', domain: 'test' });
    }
    let sql = 'PRAGMA journal_mode=WAL;\nBEGIN;\n' + APP_DDL;
    for (const x of rows)
      sql += `INSERT INTO nodes(id,type,title,domain,embedding,meta,date) VALUES(${sqlStr(x.id)},` +
        `${sqlStr(x.type)},${sqlStr(x.title)},${sqlStr(x.domain)},${x.vec ? `X'${hex(x.vec)}'` : 'NULL'},` +
        `${sqlStr(x.meta)},${sqlStr(x.date)});\n`;
    sql += 'COMMIT;\n';
    sqlite(file, sql);
    queries = Array.from({ length: 8 }, (_, i) => toFafcas(row(gaussian(8, D, 33), D, i)));
  });
  after(() => rmrf(dir));

  test('searchByVector returns what the app loop returns', async () => {
    const engine = new VectorEngine(file);
    for (const limit of [1, 5, 20]) {
      for (const q of queries) sameHits(await engine.searchByVector(q, limit), appSearch(rows, q, limit));
    }
    // default limit 5, a stored vector as the query ("more like this" the app's way)
    const q = rows[20].vec;
    sameHits(await engine.searchByVector(q), appSearch(rows, q, 5));
    // queries the app scores as nothing
    assert.deepEqual(await engine.searchByVector(new Float32Array(D)), []);
    assert.deepEqual(await engine.searchByVector(new Float32Array(D).fill(NaN)), []);
    assert.deepEqual(await engine.searchByVector(q, 0), []);
    // a query of another dimension is an error rather than a partial dot product
    await assert.rejects(() => engine.searchByVector(new Float32Array(D / 2).fill(1)), (e) => e.code === 'E_DIM');
    // limit larger than the rows with score > 0: all of them
    sameHits(await engine.searchByVector(q, 10000), appSearch(rows, q, 10000));
    await engine.close();
  });

  test("rows the app writes through its own connection are seen by the next search", async () => {
    const engine = new VectorEngine(file);
    const q = queries[0];
    const before = await engine.searchByVector(q, 3);
    // the app writes (another process, another connection): a node equal to the query
    const x = { id: 'note-new', vec: q, title: 'Fresh', meta: JSON.stringify({ source: 'new.md' }), date: '2024-03-01' };
    sqlite(file, `INSERT INTO nodes(id,title,embedding,meta,date) VALUES('note-new','Fresh',X'${hex(q)}',${sqlStr(x.meta)},'2024-03-01');`);
    const after = await engine.searchByVector(q, 3);
    assert.notDeepEqual(after, before);
    assert.equal(after[0].id, 'note-new');
    assert.equal(after[0].content, '[Hollow Node: new.md]');
    sameHits(after, appSearch([...rows, x], q, 3));
    // saveEmbedding replaces only the embedding
    engine.saveEmbedding('note-new', toFafcas(queries[1]));
    const moved = await engine.searchByVector(queries[1], 1);
    assert.equal(moved[0].id, 'note-new');
    assert.equal(moved[0].title, 'Fresh');
    assert.equal(moved[0].date, '2024-03-01');
    await engine.close();
    sqlite(file, "DELETE FROM nodes WHERE id = 'note-new';");
  });

  test('under Bun, built from a bun:sqlite Database as the app does', { skip: !IS_BUN && 'Bun only' }, async () => {
    const { Database } = await import('bun:sqlite');
    const appDb = new Database(file);
    const engine = new VectorEngine(appDb);
    const q = queries[3];
    sameHits(await engine.searchByVector(q, 5), appSearch(rows, q, 5));
    await engine.close();
    appDb.close();
  });

  test('the example runs as a script', () => {
    const r = spawnSync(process.execPath, [path.join(PKG, 'examples', 'vector_engine.mjs'), file, 'note-20', '3'],
                        { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /searchByVector\(note-20, 3\)/);
    assert.equal(lines.length, 4);
    assert.match(lines[1], /note-20/); // itself first, score 1
  });
});
