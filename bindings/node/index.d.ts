// index.d.ts -- TypeScript declarations of resonance's Node/Bun binding
// (index.js).  README.md in this folder documents the behaviour; the C
// header engine/include/resonance.h is the contract behind every call.

/** A query vector: a Float32Array is used as it is (zero-copy in the sync
 * calls); any other typed array of numbers, or an array of numbers, is
 * converted to float32 first. */
export type Vector =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Uint8ClampedArray
  | Int16Array | Uint16Array | Int32Array | Uint32Array | readonly number[];

/** Many queries: a Float32Array (or other typed array) of n x dim numbers,
 * row-major, dim being the database's; or an array of vectors of one length. */
export type Queries = Vector | readonly Vector[];

export type TierName = 'f32' | 'f16' | 'i8' | 'b1';

/** Status names of the library (resonance.h RSN_STATUS_MAP, without RSN_). */
export type StatusName =
  | 'E_NOMEM' | 'E_INVAL' | 'E_CANTOPEN' | 'E_NOTDB' | 'E_BUSY' | 'E_READONLY'
  | 'E_SCHEMA' | 'E_SQL' | 'E_NOTFOUND' | 'E_DIM' | 'E_NULLBLOB' | 'E_BLOBLEN'
  | 'E_NONFINITE' | 'E_ZERO' | 'E_K' | 'E_PARSE' | 'E_IO' | 'E_ISA' | 'E_STATE'
  | 'E_CORRUPT' | 'E_PROBLEMS' | 'E_MODEL' | 'E_LIMIT' | 'E_TIER' | 'E_NETWORK'
  | 'E_TIMEOUT' | 'E_REMOTE' | 'E_RESPONSE';

/** Every failure: the library's status name and its detailed message. */
export class ResonanceError extends Error {
  readonly name: 'ResonanceError';
  /** "E_DIM", "E_NOTFOUND", ... */
  readonly code: StatusName;
  /** The rsn_status number. */
  readonly status: number;
}

export interface OpenOptions {
  /** Create the file and the schema if missing. */
  create?: boolean;
  /** Expected embedding dimension (checked, or recorded by a writable open). */
  dim?: number;
  /** Expected embedding model name (checked, or recorded). */
  model?: string;
  /** Never write; works on read-only files. */
  readonly?: boolean;
  /** Before each search, apply what other connections committed. */
  autoRefresh?: boolean;
  /** Build the arena at the first search instead of at open (RSN_OPEN_NOLOAD). */
  lazy?: boolean;
  /** Do not install the change-log triggers. */
  noTriggers?: boolean;
  /** Do not write history rows. */
  noHistory?: boolean;
  /** Keep only the tiers' codes in memory (needs tiers). */
  codesOnly?: boolean;
  /** Compact copies to build beside the f32 rows, e.g. ['i8']. */
  tiers?: TierName | readonly TierName[];
  /** Search threads (0 = all cores). */
  threads?: number;
  /** Arena loader threads (0 = automatic). */
  loadThreads?: number;
}

/** A Qdrant-shaped filter object (resonance.h rsn_filter_parse). */
export interface FilterSpec {
  must?: readonly unknown[];
  should?: readonly unknown[];
  must_not?: readonly unknown[];
}

export interface SearchOptions {
  /** Hits wanted (default 10); k larger than the rows gives every row. */
  k?: number;
  /** Keep only hits with score > minScore (0 reproduces the app). */
  minScore?: number;
  /** Which nodes may be returned: a Filter, a filter object or its JSON. */
  filter?: Filter | FilterSpec | string;
  /** Which copy the scan reads (default 'f32', exact). */
  tier?: TierName;
  /** Tier searches rescore k x oversample candidates (0: the tier's default). */
  oversample?: number;
  /** false: a tier search returns the tier's approximate scores. */
  rescore?: boolean;
  /** false: ids and scores only, no metadata fetch (and no `hits`). Default true. */
  hydrate?: boolean;
  /** false: skip the autoRefresh check for this search. */
  refresh?: boolean;
  /** Threads for this search (0 = the handle's default). */
  threads?: number;
}

/** A hydrated hit: null for SQL NULL.  meta is the JSON text as stored. */
export interface Hit {
  id: string;
  score: number;
  type: string | null;
  title: string | null;
  domain: string | null;
  layer: string | null;
  date: string | null;
  meta: string | null;
  summary: string | null;
}

interface ResultInfo {
  /** k the search used: min(k asked, rows it could return). */
  k: number;
  tier: TierName;
  /** true: scores are the tier's approximations (rescore: false). */
  approximate: boolean;
  /** Rows rescored per query (0 for an f32 search). */
  candidates: number;
  /** Wall time of the scan and of the metadata fetch, in ms. */
  searchMs: number;
  hydrateMs: number;
}

/** One query's answer, best first (score desc, id asc); no padding. */
export interface SearchResult extends ResultInfo {
  ids: string[];
  /** scores[j] belongs to ids[j]. */
  scores: Float32Array;
  /** Present unless hydrate: false. */
  hits?: Hit[];
  count: number;
}

/** A batch's answer.  scores is row-major nq x k: query q's hits are
 * scores[q*k .. q*k + counts[q]); the slots after counts[q] are NaN. */
export interface BatchResult extends ResultInfo {
  nq: number;
  counts: Uint32Array;
  scores: Float32Array;
  /** ids[q] has counts[q] ids. */
  ids: string[][];
  /** hits[q] has counts[q] hits; present unless hydrate: false. */
  hits?: Hit[][];
}

/** A node to write; strings may be null (SQL NULL); meta may be an object
 * (stored as its JSON).  No embedding: stored as NULL. */
export interface NodeInput {
  id: string;
  embedding?: Vector | null;
  type?: string | null;
  title?: string | null;
  domain?: string | null;
  layer?: string | null;
  hash?: string | null;
  meta?: string | object | null;
  date?: string | null;
  summary?: string | null;
}

/** Columns: vectors is n x dim floats (rows are views, not copies) or an
 * array of vectors; the other columns are arrays of n values. */
export interface NodeColumns {
  ids: readonly string[];
  vectors?: Vector | readonly Vector[] | null;
  types?: readonly (string | null)[];
  titles?: readonly (string | null)[];
  domains?: readonly (string | null)[];
  layers?: readonly (string | null)[];
  hashes?: readonly (string | null)[];
  metas?: readonly (string | object | null)[];
  dates?: readonly (string | null)[];
  summaries?: readonly (string | null)[];
}

export interface Node {
  id: string;
  type: string | null;
  title: string | null;
  domain: string | null;
  layer: string | null;
  hash: string | null;
  meta: string | null;
  date: string | null;
  summary: string | null;
  /** With {embedding: true}: the stored vector (null when NULL). */
  embedding?: Float32Array | null;
}

export interface VectorAudit {
  rows: number;
  noEmbedding: number;
  valid: number;
  byVerdict: Record<'ok' | 'not_unit' | 'null' | 'bad_length' | 'dim_mismatch' | 'non_finite' | 'zero', number>;
  dim: number;
  dimFromMeta: boolean;
  dims: { dim: number; count: number }[];
}

export interface Health {
  journalMode: string;
  busyTimeoutMs: number;
  mmapSize: number;
  synchronous: number;
  foreignKeys: boolean;
  tempStore: number;
  /** RSN_DRIFT_* bits; 0 = the connection standard holds. */
  drift: number;
}

export interface Stats {
  nodes: number;
  edges: number;
  history: number;
  vectors: VectorAudit;
  dbBytes: number;
  walBytes: number;
  model: string | null;
  loaded: boolean;
  arenaRows: number;
  arenaBytes: number;
  loadMs: number;
  loadThreads: number;
  isa: string;
  tiers: TierName[];
  tierBytes: number;
  tierClippedRows: number;
  threads: number;
  health: Health;
}

export interface CheckReport {
  integrityOk: boolean;
  integrity: string;
  vectors: VectorAudit;
  health: Health;
  problems: number;
}

export interface RefreshInfo {
  changed: boolean;
  fullReload: boolean;
  upserted: number;
  removed: number;
}

export class Db {
  private constructor();
  readonly path: string;
  /** The embedding dimension the database holds (0 while none is known). */
  readonly dim: number;
  /** true once close() was called. */
  readonly closed: boolean;
  /** Async searches queued or running on this handle. */
  readonly pending: number;

  /** One query, off the JavaScript thread (libuv's pool). */
  search(query: Vector, opts?: SearchOptions): Promise<SearchResult>;
  /** One query on the calling thread. */
  searchSync(query: Vector, opts?: SearchOptions): SearchResult;
  searchBatch(queries: Queries, opts?: SearchOptions): Promise<BatchResult>;
  searchBatchSync(queries: Queries, opts?: SearchOptions): BatchResult;
  /** The node's own vector as the query, the node excluded. */
  searchLike(id: string, opts?: SearchOptions): Promise<SearchResult>;
  searchLikeSync(id: string, opts?: SearchOptions): SearchResult;

  /** Insert or replace, all in one transaction; returns the count. */
  upsert(nodes: NodeInput | readonly NodeInput[] | NodeColumns): number;
  /** Delete in one transaction (E_NOTFOUND undoes all); returns the count. */
  delete(ids: string | readonly string[]): number;
  /** One node, or null when there is none. */
  get(id: string, opts?: { embedding?: boolean }): Node | null;
  stats(): Stats;
  check(): CheckReport;
  refresh(): RefreshInfo;
  /** Later calls fail with E_STATE; searches in flight finish; resolves when
   * the database is released. */
  close(): Promise<void>;
}

export class Filter {
  private constructor();
  static parse(spec: FilterSpec | string | Filter): Filter;
  static where(sql: string, params?: readonly (string | number | null)[]): Filter;
  static ids(ids: readonly string[]): Filter;
  static near(id: string, opts?: { hops?: number; edgeType?: string | null; direction?: 'out' | 'in' | 'both' }): Filter;
  and(other: Filter | FilterSpec | string): Filter;
  or(other: Filter | FilterSpec | string): Filter;
  not(): Filter;
}

export function open(path: string, opts?: OpenOptions): Db;
export function openAsync(path: string, opts?: OpenOptions): Promise<Db>;

export const version: {
  resonance: string;
  sqlite: string;
  isa: string;
  isaSupported: string[];
  isaWarning: string | null;
  napi: number;
};
