// vector_engine.mjs -- a drop-in for the knowledge-graph app's VectorEngine:
// the same searchByVector(vector, limit) signature and the same result
// objects ({id, score, title, content, date}), answered by resonance instead
// of a JavaScript loop over every blob.  Runs under Bun (the app's runtime)
// and Node.
//
//   import { VectorEngine } from './vector_engine.mjs';
//   const engine = new VectorEngine('.amalfa/resonance.db');   // or a bun:sqlite Database
//   const hits = await engine.searchByVector(queryFloats, 5);
//
// What is the same as the app's loop (README "Database contract"): scores
// are dot products with the stored unit vectors; only scores > 0 are kept;
// at most `limit` hits, best first; title, meta and date are read for the
// hits only; `content` is "[Hollow Node: <meta.source or 'no source'>]"
// when meta is set ("[Hollow Node: parse error]" when it is not JSON), else
// ""; `date` is undefined when empty.  A zero or non-finite query (the app
// scores it 0 or NaN, so nothing passes "> 0") returns [].
//
// What differs, on purpose: the query is normalised first (the app's
// queries come from its FAFCAS normaliser, so they already are); a query
// of another dimension than the database's is an error (E_DIM) instead of
// a partial dot product; rows whose blob is NULL, zero, non-finite or of
// another length never match (the app would score them 0 or garbage);
// equal scores are ordered by id (the app keeps SQLite's row order).
//
// The database is opened with autoRefresh, so rows the app writes through
// its own connection are seen by the next search, as its loop would see them.
//
// Run as a script: node|bun vector_engine.mjs DB [ID] [LIMIT] prints the
// nodes most like ID (default: the first node with an embedding).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const rsn = require(process.env.RSN_NODE_PACKAGE ||
                    path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'index.js'));

function hollow(meta) {
  if (!meta) return '';
  try {
    const m = JSON.parse(meta);
    return `[Hollow Node: ${(m && m.source) || 'no source'}]`;
  } catch {
    return '[Hollow Node: parse error]';
  }
}

export class VectorEngine {
  /**
   * @param dbOrPath a path, a bun:sqlite Database (its file is opened), or
   *   a resonance Db
   * @param opts resonance open options (default {autoRefresh: true})
   */
  constructor(dbOrPath, opts = {}) {
    if (dbOrPath instanceof rsn.Db) {
      this.db = dbOrPath;
      this.owned = false;
      return;
    }
    const file = typeof dbOrPath === 'string' ? dbOrPath : dbOrPath && dbOrPath.filename;
    if (!file) throw new TypeError('VectorEngine: expected a path, a bun:sqlite Database or a resonance Db');
    this.db = rsn.open(file, { autoRefresh: true, ...opts });
    this.owned = true;
  }

  /** The app's searchByVector: top `limit` nodes with score > 0. */
  async searchByVector(queryFloats, limit = 5) {
    if (!(limit >= 1)) return [];
    let r;
    try {
      r = await this.db.search(queryFloats, { k: Math.floor(limit), minScore: 0 });
    } catch (e) {
      if (e.code === 'E_ZERO' || e.code === 'E_NONFINITE') return [];
      throw e;
    }
    return r.hits.map((h) => ({
      id: h.id,
      score: h.score,
      title: h.title,
      content: hollow(h.meta),
      date: h.date || undefined,
    }));
  }

  /** The app's saveEmbedding(id, blob): replaces only the embedding. */
  saveEmbedding(id, embedding) {
    const node = this.db.get(id);
    if (!node) throw new Error(`VectorEngine.saveEmbedding: no node ${id}`);
    const floats = embedding instanceof Float32Array ? embedding
      : new Float32Array(embedding.buffer, embedding.byteOffset, embedding.byteLength / 4);
    this.db.upsert({ ...node, embedding: floats });
  }

  close() {
    return this.owned ? this.db.close() : Promise.resolve();
  }
}

async function main(argv) {
  const [file, id, limit] = argv;
  if (!file) {
    console.error('usage: vector_engine.mjs DB [ID] [LIMIT]');
    return 2;
  }
  const engine = new VectorEngine(file, { readonly: true, autoRefresh: false });
  let node = id ? engine.db.get(id, { embedding: true }) : null;
  if (!node) {
    const any = engine.db.searchSync(new Float32Array(engine.db.dim).fill(1), { k: 1, hydrate: false });
    node = engine.db.get(any.ids[0], { embedding: true });
  }
  const t0 = performance.now();
  const hits = await engine.searchByVector(node.embedding, Number(limit) || 5);
  const ms = performance.now() - t0;
  const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`;
  console.log(`searchByVector(${node.id}, ${Number(limit) || 5}) on ${engine.db.stats().arenaRows} rows: ` +
              `${ms.toFixed(2)} ms (${runtime})`);
  for (const h of hits) console.log(`${h.score.toFixed(4)}  ${h.id}  ${h.title ?? ''}  ${h.content}`);
  await engine.close();
  return 0;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  main(process.argv.slice(2)).then((rc) => { process.exitCode = rc; });
}
