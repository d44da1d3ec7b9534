'use strict';
/*
 * index.js -- the JavaScript API of resonance's Node-API addon, for Node
 * (>= 18) and Bun.  CommonJS, so both `require('resonance')` and
 * `import { open } from 'resonance'` work.  The addon (src/*.c) exports flat
 * functions over the C library; this file gives them option objects with
 * defaults, the Db and Filter classes and ResonanceError.  Behaviour lives
 * in the C library (resonance.h); README.md documents the API.
 */
const path = require('node:path');
const fs = require('node:fs');

/* The addon: $RSN_NODE_ADDON, else beside this file (an installed package),
 * else the repository's build tree (build/bindings/node). */
function loadAddon() {
  const tried = [];
  const candidates = [
    process.env.RSN_NODE_ADDON,
    path.join(__dirname, 'resonance.node'),
    path.join(__dirname, '..', '..', 'build', 'bindings', 'node', 'resonance.node'),
  ].filter(Boolean);
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      tried.push(file);
      continue;
    }
    return require(file);
  }
  throw new Error('resonance: the addon resonance.node was not found (tried ' +
                  tried.join(', ') + '); build it with cmake (README.md) or set RSN_NODE_ADDON');
}

const native = loadAddon();
const C = native.constants;

/** Every failure of the library (and of argument checks) is a ResonanceError:
 * .code is the status name ("E_DIM"), .status its number, .message the
 * library's detail (ids, dimensions, SQLite's message ...). */
class ResonanceError extends Error {
  constructor(message, code, status) {
    super(message);
    this.name = 'ResonanceError';
    this.code = code;
    this.status = status;
  }
}
native.init(ResonanceError);

const STATUS = { E_INVAL: 2, E_DIM: 10, E_STATE: 19 }; /* resonance.h RSN_STATUS_MAP */
function fail(code, message) {
  return new ResonanceError(message, code, STATUS[code]);
}

const TIER_BITS = { f16: C.TIERS_F16, i8: C.TIERS_I8, b1: C.TIERS_B1 };
const DIRECTIONS = { out: C.EDGES_OUT, in: C.EDGES_IN, both: C.EDGES_BOTH };

function tierMask(tiers) {
  if (tiers == null) return 0;
  if (!Array.isArray(tiers)) tiers = [tiers];
  let mask = 0;
  for (const t of tiers) {
    if (t === 'f32') continue;
    const bit = TIER_BITS[String(t).toLowerCase()];
    if (bit === undefined) throw fail('E_INVAL', `tiers: unknown tier '${t}' (f16, i8 or b1)`);
    mask |= bit;
  }
  return mask;
}

function openArgs(file, opts) {
  if (opts == null) opts = {};
  if (typeof opts !== 'object') throw fail('E_INVAL', 'open: options must be an object');
  let flags = 0;
  if (opts.readonly) flags |= C.OPEN_READONLY;
  if (opts.create) flags |= C.OPEN_CREATE;
  if (opts.lazy) flags |= C.OPEN_NOLOAD;
  if (opts.autoRefresh) flags |= C.OPEN_AUTO_REFRESH;
  if (opts.noTriggers) flags |= C.OPEN_NO_TRIGGERS;
  if (opts.noHistory) flags |= C.OPEN_NO_HISTORY;
  if (opts.codesOnly) flags |= C.OPEN_CODES_ONLY;
  return [file, flags, opts.dim ?? 0, opts.model ?? null, opts.threads ?? 0,
          opts.loadThreads ?? 0, tierMask(opts.tiers)];
}

/** Open (or with {create: true} create) a database; the arena is loaded
 * before this returns (unless {lazy: true}). */
function open(file, opts) {
  return new Db(native.open(...openArgs(file, opts)), file);
}

/** open() with the load on libuv's thread pool: the event loop runs on
 * while a large file loads. */
async function openAsync(file, opts) {
  const args = openArgs(file, opts);
  return new Db(await native.openAsync(...args), file);
}

/* A filter option: a Filter, a Qdrant-shaped object or its JSON text. */
function toFilter(f) {
  if (f == null) return null;
  if (f instanceof Filter) return f._native;
  return Filter.parse(f)._native;
}

/* A promise-returning call reports every failure, argument errors included,
 * as a rejection, never as a synchronous throw. */
function promised(start) {
  try {
    return start();
  } catch (e) {
    return Promise.reject(e);
  }
}

/* The addon's answer -> the public result (README.md "Results").  The
 * addon sends hydrated metadata as one flat array, HIT_COLS values per hit
 * (src/search.c says why); the hit objects are built here. */
const HIT_COLS = 7;
function hitsOf(ids, scores, cols, at, base) {
  const n = ids.length;
  const out = new Array(n);
  for (let j = 0; j < n; j++) {
    const c = (at + j) * HIT_COLS;
    out[j] = { id: ids[j], score: scores[base + j], type: cols[c], title: cols[c + 1],
               domain: cols[c + 2], layer: cols[c + 3], date: cols[c + 4], meta: cols[c + 5],
               summary: cols[c + 6] };
  }
  return out;
}

function single(r) {
  if (r.cols === undefined)
    return { ids: r.ids, scores: r.scores, count: r.count, k: r.k, tier: r.tier,
             approximate: r.approximate, candidates: r.candidates, searchMs: r.searchMs,
             hydrateMs: r.hydrateMs };
  return { ids: r.ids, scores: r.scores, hits: hitsOf(r.ids, r.scores, r.cols, 0, 0),
           count: r.count, k: r.k, tier: r.tier, approximate: r.approximate,
           candidates: r.candidates, searchMs: r.searchMs, hydrateMs: r.hydrateMs };
}

function batch(r) {
  if (r.cols === undefined)
    return { nq: r.nq, k: r.k, counts: r.counts, ids: r.ids, scores: r.scores, tier: r.tier,
             approximate: r.approximate, candidates: r.candidates, searchMs: r.searchMs,
             hydrateMs: r.hydrateMs };
  const hits = new Array(r.nq);
  for (let q = 0, at = 0; q < r.nq; q++) {
    hits[q] = hitsOf(r.ids[q], r.scores, r.cols, at, q * r.k);
    at += r.ids[q].length;
  }
  return { nq: r.nq, k: r.k, counts: r.counts, ids: r.ids, scores: r.scores, hits, tier: r.tier,
           approximate: r.approximate, candidates: r.candidates, searchMs: r.searchMs,
           hydrateMs: r.hydrateMs };
}

/* Single and like searches with k <= ANSWER_K pass an answer buffer made
 * here, before the search: the addon writes the numbers into it and
 * returns only the ids (or [ids, cols]), so that little has to be created
 * through Node-API right after a large scan, when the caches are cold
 * (src/search.c single_to_buf).  Layout: count, k, tier, approximate,
 * candidates, searchMs, hydrateMs, 0, then the scores. */
const ANSWER_INFO = 8;
const ANSWER_K = 1024;
const TIER_NAMES = ['f32', 'f16', 'i8', 'b1'];

/* A sync call reuses its handle's buffer (nothing else runs meanwhile);
 * an async one has its own, since several may be in flight. */
function answerBuf(args, reuse) {
  const k = args[0];
  if (!(Number.isInteger(k) && k >= 1 && k <= ANSWER_K)) return null;
  return reuse || new Float64Array(ANSWER_INFO + k);
}

function fromAnswer(buf, ret, flags) {
  const n = buf[0];
  const scores = new Float32Array(n);
  for (let j = 0; j < n; j++) scores[j] = buf[ANSWER_INFO + j];
  if (flags & C.SEARCH_NO_HYDRATE)
    return { ids: ret, scores, count: n, k: buf[1], tier: TIER_NAMES[buf[2]],
             approximate: buf[3] === 1, candidates: buf[4], searchMs: buf[5], hydrateMs: buf[6] };
  const ids = ret[0];
  return { ids, scores, hits: hitsOf(ids, scores, ret[1], 0, 0), count: n, k: buf[1],
           tier: TIER_NAMES[buf[2]], approximate: buf[3] === 1, candidates: buf[4],
           searchMs: buf[5], hydrateMs: buf[6] };
}

/* One query (mode single or like): the answer-buffer path when k allows;
 * `reuse` is the handle's buffer for sync calls. */
function one(h, mode, input, opts, isAsync, reuse) {
  const args = searchArgs(opts);
  const buf = answerBuf(args, reuse);
  if (!buf) {
    const r = native.search(h, mode, input, ...args, isAsync, null);
    return isAsync ? r.then(single) : single(r);
  }
  const r = native.search(h, mode, input, ...args, isAsync, buf);
  return isAsync ? r.then((x) => fromAnswer(buf, x, args[1])) : fromAnswer(buf, r, args[1]);
}

/* A plain array of numbers as a Float32Array (a JS loop is far cheaper than
 * reading elements one by one through Node-API); anything else goes to the
 * addon as it is, which converts typed arrays and refuses the rest. */
function vec(v, what) {
  if (!Array.isArray(v)) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number') throw fail('E_INVAL', `${what}[${i}] is not a number`);
    out[i] = x;
  }
  return out;
}

function vecs(v) {
  if (!Array.isArray(v)) return v;
  return v.map((x, i) => vec(x, `queries[${i}]`));
}

const MODE_SINGLE = 0;
const MODE_BATCH = 1;
const MODE_LIKE = 2;

/* search options -> the addon's positional arguments after the input */
function searchArgs(o) {
  if (o == null) o = {};
  else if (typeof o !== 'object') throw fail('E_INVAL', 'search options must be an object');
  let flags = 0;
  if (o.minScore != null) flags |= C.SEARCH_MIN_SCORE;
  if (o.hydrate === false) flags |= C.SEARCH_NO_HYDRATE;
  if (o.refresh === false) flags |= C.SEARCH_NO_REFRESH;
  if (o.rescore === false) flags |= C.SEARCH_NO_RESCORE;
  return [o.k ?? 10, flags, o.minScore ?? 0, toFilter(o.filter), o.tier ?? null,
          o.oversample ?? 0, o.threads ?? 0];
}

/* A node for the addon: meta objects become JSON text. */
function nodeIn(n) {
  if (n === null || typeof n !== 'object') return n;
  if (n.meta != null && typeof n.meta === 'object') return { ...n, meta: JSON.stringify(n.meta) };
  return n;
}

/* Columns {ids, vectors, titles?, types?, ...} as node objects; vectors is
 * a Float32Array of n x dim (rows become subarray views: no copy) or an
 * array of vectors. */
const COLUMNS = { types: 'type', titles: 'title', domains: 'domain', layers: 'layer',
                  hashes: 'hash', metas: 'meta', dates: 'date', summaries: 'summary' };
function columnsToNodes(c) {
  const ids = c.ids;
  if (!Array.isArray(ids)) throw fail('E_INVAL', 'upsert: ids must be an array of strings');
  const n = ids.length;
  const v = c.vectors;
  let row = null;
  if (v == null) {
    row = () => null;
  } else if (ArrayBuffer.isView(v)) {
    if (n === 0 ? v.length !== 0 : v.length % n !== 0)
      throw fail('E_DIM', `upsert: ${v.length} floats are not ${n} vectors of one length`);
    const d = n ? v.length / n : 0;
    row = (i) => v.subarray(i * d, (i + 1) * d);
  } else if (Array.isArray(v)) {
    if (v.length !== n) throw fail('E_INVAL', `upsert: ${n} ids but ${v.length} vectors`);
    row = (i) => v[i];
  } else {
    throw fail('E_INVAL', 'upsert: vectors must be a Float32Array of n x dim or an array of vectors');
  }
  const cols = Object.entries(COLUMNS).filter(([k]) => c[k] != null);
  for (const [k] of cols)
    if (!Array.isArray(c[k]) || c[k].length !== n)
      throw fail('E_INVAL', `upsert: ${k} must be an array of ${n} values`);
  const nodes = new Array(n);
  for (let i = 0; i < n; i++) {
    const node = { id: ids[i], embedding: row(i) };
    for (const [k, field] of cols) node[field] = c[k][i];
    nodes[i] = nodeIn(node);
  }
  return nodes;
}

class Db {
  #h;
  #closing = null;
  #answer = new Float64Array(ANSWER_INFO + ANSWER_K); /* for sync searches */

  /** @internal use open() */
  constructor(handle, file) {
    this.#h = handle;
    this.path = file;
  }

  /** The embedding dimension the database holds (0 while none is known). */
  get dim() { return native.state(this.#h).dim; }
  /** True once close() was called. */
  get closed() { const s = native.state(this.#h); return s.closed || s.closing; }
  /** Async searches queued or running on this handle. */
  get pending() { return native.state(this.#h).inflight; }

  /** Top-k of one query, off the JavaScript thread. */
  search(query, opts) {
    return promised(() => one(this.#h, MODE_SINGLE, vec(query, 'query'), opts, true));
  }
  /** Top-k of one query on the calling thread (blocks the event loop). */
  searchSync(query, opts) {
    return one(this.#h, MODE_SINGLE, vec(query, 'query'), opts, false, this.#answer);
  }
  /** Many queries with the blocked batch kernel: a Float32Array of n x dim
   * floats, or an array of vectors. */
  searchBatch(queries, opts) {
    return promised(() => native.search(this.#h, MODE_BATCH, vecs(queries), ...searchArgs(opts),
                                        true, null).then(batch));
  }
  searchBatchSync(queries, opts) {
    return batch(native.search(this.#h, MODE_BATCH, vecs(queries), ...searchArgs(opts), false, null));
  }
  /** "More like this": the node's stored vector as the query, itself excluded. */
  searchLike(id, opts) {
    return promised(() => one(this.#h, MODE_LIKE, id, opts, true));
  }
  searchLikeSync(id, opts) {
    return one(this.#h, MODE_LIKE, id, opts, false, this.#answer);
  }

  /** Insert or replace nodes in one transaction (all or none): an array of
   * {id, embedding, title, ...}, one such object, or columns {ids, vectors,
   * titles, ...}.  Returns the number written. */
  upsert(nodes) {
    let list;
    if (Array.isArray(nodes)) list = nodes.map(nodeIn);
    else if (nodes && typeof nodes === 'object' && Array.isArray(nodes.ids)) list = columnsToNodes(nodes);
    else if (nodes && typeof nodes === 'object') list = [nodeIn(nodes)];
    else throw fail('E_INVAL', 'upsert: expected a node, an array of nodes or {ids, vectors}');
    return native.upsert(this.#h, list);
  }

  /** Delete one id or an array of ids in one transaction; E_NOTFOUND for an
   * absent id (and nothing is deleted).  Returns the number deleted. */
  delete(ids) {
    return native.remove(this.#h, Array.isArray(ids) ? ids : [ids]);
  }

  /** One node ({id, type, title, ..., embedding?}) or null when absent. */
  get(id, opts) {
    return native.get(this.#h, id, !!(opts && opts.embedding));
  }

  /** @internal bench/overhead.mjs: the library's own calls timed in C in
   * this process (microseconds; see src/search.c addon_bench_search). */
  _benchSearch(batch, queries, k, hydrate, reps = 1) {
    return native._benchSearch(this.#h, batch ? 1 : 0, queries, k,
                               hydrate ? 0 : C.SEARCH_NO_HYDRATE, reps);
  }

  /** @internal bench/overhead.mjs: microseconds the library call took in
   * the search that settled last (src/search.c addon_last_call_us). */
  static _lastCallUs() { return native._lastCallUs(); }

  stats() { return native.stats(this.#h); }
  check() { return native.check(this.#h); }
  /** Apply what other connections committed; {changed, fullReload, upserted, removed}. */
  refresh() { return native.refresh(this.#h); }

  /** Close the handle.  Calls made after close() fail with E_STATE; searches
   * already in flight finish normally, and the database is released after
   * the last of them.  The promise resolves once it is released. */
  close() {
    if (!this.#closing) {
      this.#closing = new Promise((resolve) => {
        // The addon calls back after the last search in flight settled; the
        // promise resolves after that search's own callbacks have run.
        if (native.close(this.#h, () => setImmediate(resolve))) resolve();
      });
    }
    return this.#closing;
  }
}

/** Which nodes a search may return (resonance.h "Filters").  Immutable;
 * one filter may serve any number of searches at once. */
class Filter {
  /** @internal */
  constructor(n) { this._native = n; }
  /** A Qdrant-shaped filter: an object or its JSON text. */
  static parse(json) {
    if (json instanceof Filter) return json;
    const text = typeof json === 'string' ? json : JSON.stringify(json);
    if (typeof text !== 'string') throw fail('E_INVAL', 'filter must be an object or JSON text');
    return new Filter(native.filterParse(text));
  }
  /** A trusted SQL condition over nodes with ? parameters (strings, numbers
   * or null; numbers are bound as their text). */
  static where(sql, params = []) {
    return new Filter(native.filterWhere(sql, params.map((p) => (p == null ? null : String(p)))));
  }
  /** Only these ids. */
  static ids(ids) { return new Filter(native.filterIds(ids)); }
  /** Nodes within `hops` edges of `id` (id included). */
  static near(id, { hops = 1, edgeType = null, direction = 'both' } = {}) {
    const dir = DIRECTIONS[direction];
    if (dir === undefined) throw fail('E_INVAL', `near: direction must be out, in or both`);
    return new Filter(native.filterNear(id, hops, edgeType, dir));
  }
  and(other) { return new Filter(native.filterAnd(this._native, Filter.parse(other)._native)); }
  or(other) { return new Filter(native.filterOr(this._native, Filter.parse(other)._native)); }
  not() { return new Filter(native.filterNot(this._native)); }
}

const version = native.version();

module.exports = { open, openAsync, Db, Filter, ResonanceError, version };
