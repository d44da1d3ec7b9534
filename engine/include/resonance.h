/*
 * resonance.h -- the public API of resonance: exact vector search over the
 * embeddings of a SQLite knowledge-graph database.
 *
 * SQLite is the durable source of truth; an aligned in-memory arena is a
 * cache of it that serves queries with SIMD kernels, OpenMP sharding and a
 * heap top-K.  The big picture is in DESIGN.md; the database contract is in
 * README.md ("Database contract").
 *
 * Conventions
 *   - Every fallible call returns an rsn_status; RSN_OK is 0.
 *     rsn_strerror(status) gives a fixed sentence, rsn_errmsg(db) the detail
 *     of the most recent failure of the calling thread (it names ids,
 *     dimensions, SQL errors, line numbers ...).
 *   - Nothing here aborts the process or writes to stdout/stderr.
 *   - Objects returned through out-parameters belong to the caller and are
 *     released with the matching free or close call, all of which accept NULL.
 *   - Strings are UTF-8 and NUL-terminated; NULL string fields mean SQL NULL.
 *
 * Thread-safety contract (see also each call)
 *   - An rsn_db may be shared by any number of threads.  Searches
 *     (rsn_search*, rsn_get, rsn_list, rsn_edges, rsn_stats) run concurrently
 *     with each other.  Writes (rsn_upsert, rsn_delete, rsn_update_meta,
 *     rsn_edge_*) and rsn_refresh may be called from any thread; they are
 *     serialised with each other, and exclude searches only while the arena
 *     rows they change are being mutated.
 *   - A transaction opened with rsn_begin belongs to the handle, not to the
 *     thread: while it is open, writes from other threads join it.  Use one
 *     writer thread per handle if that is not what you want.
 *   - rsn_close must not race with any other call on the same handle.
 *   - Calls that touch no handle are safe from any thread at any time:
 *     rsn_strerror, rsn_status_name, rsn_version, rsn_sqlite_version,
 *     rsn_open_opts_init, rsn_search_params_init, the FAFCAS codec
 *     (rsn_fafcas_*, rsn_normalize) and rsn_isa_*.  A *_free call must not
 *     race with another use of the object it frees; results, nodes and
 *     edge lists are the caller's and independent of the handle.
 */
#ifndef RESONANCE_H
#define RESONANCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSN_VERSION_MAJOR 0
#define RSN_VERSION_MINOR 1
#define RSN_VERSION_PATCH 0
#define RSN_VERSION_STRING "0.1.0"

#if defined(RSN_STATIC_DEFINE)
#define RSN_API
#elif defined(_WIN32)
#define RSN_API __declspec(dllexport)
#else
#define RSN_API __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------
 * Status codes.  One list generates the enum, rsn_strerror() and
 * rsn_status_name().  Values are stable: new codes are appended.
 * ------------------------------------------------------------------------- */
#define RSN_STATUS_MAP(X)                                                     \
  X(OK,        0, "success")                                                  \
  X(E_NOMEM,   1, "out of memory")                                            \
  X(E_INVAL,   2, "invalid argument")                                         \
  X(E_CANTOPEN, 3, "cannot open the database file")                           \
  X(E_NOTDB,   4, "file is not a SQLite database")                            \
  X(E_BUSY,    5, "database is locked by another connection")                 \
  X(E_READONLY, 6, "database is read-only")                                   \
  X(E_SCHEMA,  7, "database schema does not match the resonance contract")    \
  X(E_SQL,     8, "SQLite error")                                             \
  X(E_NOTFOUND, 9, "no such node")                                            \
  X(E_DIM,     10, "vector dimension does not match the database")           \
  X(E_NULLBLOB, 11, "embedding is NULL")                                      \
  X(E_BLOBLEN, 12, "embedding length is not a multiple of 4 bytes")           \
  X(E_NONFINITE, 13, "vector contains NaN or infinity")                       \
  X(E_ZERO,    14, "zero vector (norm below 1e-6)")                           \
  X(E_K,       15, "k must be at least 1")                                    \
  X(E_PARSE,   16, "malformed input")                                         \
  X(E_IO,      17, "I/O error")                                               \
  X(E_ISA,     18, "instruction set not available on this CPU")               \
  X(E_STATE,   19, "call not valid in the current state")                     \
  X(E_CORRUPT, 20, "database is corrupt")                                     \
  X(E_PROBLEMS, 21, "check found problems")                                  \
  X(E_MODEL,   22, "embedding model does not match the database")            \
  X(E_LIMIT,   23, "size exceeds what resonance can represent")             \
  X(E_TIER,    24, "search tier not built by this handle")                   \
  X(E_NETWORK, 25, "cannot reach the embedding service")                      \
  X(E_TIMEOUT, 26, "the embedding service did not answer in time")           \
  X(E_REMOTE,  27, "the embedding service answered with an error")           \
  X(E_RESPONSE, 28, "the embedding service's answer is malformed")

typedef enum rsn_status {
#define RSN__ENUM(name, val, msg) RSN_##name = val,
  RSN_STATUS_MAP(RSN__ENUM)
#undef RSN__ENUM
  RSN_STATUS__COUNT
} rsn_status;

typedef struct rsn_db rsn_db;

/* A fixed English sentence for a status; never NULL. */
RSN_API const char *rsn_strerror(rsn_status status);
/* The enum name without prefix ("E_DIM"); never NULL. */
RSN_API const char *rsn_status_name(rsn_status status);
/* Detail of the last failure on the calling thread (db may be NULL, e.g.
 * after a failed rsn_open).  Valid until the thread's next resonance call. */
RSN_API const char *rsn_errmsg(const rsn_db *db);
/* "0.1.0" */
RSN_API const char *rsn_version(void);

/* ---------------------------------------------------------------------------
 * FAFCAS codec: raw little-endian float32, 4*d bytes, unit L2 norm.
 * ------------------------------------------------------------------------- */
#define RSN_ZERO_NORM 1e-6     /* norm below this: a failed embedding      */
#define RSN_UNIT_TOL  1e-3     /* |norm - 1| above this: not unit length    */
#define RSN_MAX_DIM   65536u
#define RSN_MODEL_MAX 127      /* bytes of a model name (without the NUL)  */

/* Outcome of validating one blob; RSN_BLOB_OK and RSN_BLOB_NOT_UNIT are
 * usable (the second after normalising), the others are rejections. */
typedef enum rsn_blob_verdict {
  RSN_BLOB_OK = 0,
  RSN_BLOB_NOT_UNIT,    /* valid, norm differs from 1 by more than RSN_UNIT_TOL */
  RSN_BLOB_NULL,        /* SQL NULL / no bytes                              */
  RSN_BLOB_BADLEN,      /* length not a multiple of 4                       */
  RSN_BLOB_DIM,         /* length/4 differs from the expected dimension     */
  RSN_BLOB_NONFINITE,   /* a NaN or +-Inf element                           */
  RSN_BLOB_ZERO,        /* norm < RSN_ZERO_NORM                             */
  RSN_BLOB__COUNT
} rsn_blob_verdict;

/* Short name of a verdict ("ok", "not_unit", "null", "bad_length",
 * "dim_mismatch", "non_finite", "zero"). */
RSN_API const char *rsn_blob_verdict_name(rsn_blob_verdict v);
/* The status code that corresponds to a rejecting verdict (RSN_OK for
 * OK/NOT_UNIT). */
RSN_API rsn_status rsn_blob_verdict_status(rsn_blob_verdict v);
/* Validate `bytes` bytes at `blob` (any alignment) against dimension `dim`
 * (0 = accept any dimension).  If norm_out is not NULL it receives the L2
 * norm (computed in double) when the verdict gets that far. */
RSN_API rsn_blob_verdict rsn_fafcas_check(const void *blob, size_t bytes,
                                          uint32_t dim, double *norm_out);
/* The codec functions are pure: thread-safe, no handle needed. */
/* Normalise v[0..dim) in place to unit length.  Returns RSN_E_NONFINITE,
 * RSN_E_ZERO or RSN_E_INVAL (dim 0) and leaves v unchanged on failure. */
RSN_API rsn_status rsn_normalize(float *v, uint32_t dim);
/* Decode a blob into out[0..dim) (host floats) and normalise it.  Returns
 * the verdict's status; *verdict_out (optional) receives the verdict. */
RSN_API rsn_status rsn_fafcas_decode(const void *blob, size_t bytes,
                                     uint32_t dim, float *out,
                                     rsn_blob_verdict *verdict_out);

/* ---------------------------------------------------------------------------
 * Instruction-set dispatch (process-wide).
 * ------------------------------------------------------------------------- */
typedef enum rsn_isa {
  RSN_ISA_SCALAR = 1u << 0, /* portable C reference, always available       */
  RSN_ISA_SIMDE = 1u << 1,  /* SIMDe 256-bit path, builds on any CPU         */
  RSN_ISA_AVX2 = 1u << 2,   /* AVX2 + FMA                                    */
  RSN_ISA_AVX512 = 1u << 3  /* AVX-512F                                      */
} rsn_isa;
#define RSN_ISA_ALL 0xFu

/* All rsn_isa_* calls are thread-safe (detection runs once, the choice is
 * an atomic pointer). */
/* Paths this CPU (and this build) can run, as a mask of rsn_isa. */
RSN_API unsigned rsn_isa_supported(void);
/* Restrict the choice to `mask` (the environment variable RSN_ISA=
 * scalar|simde|avx2|avx512 does the same at first use).  The best supported
 * path in the mask becomes active.  RSN_E_ISA if none of the mask is
 * supported (the active path is then unchanged).  Thread-safe; searches
 * already running finish on the path they started with. */
RSN_API rsn_status rsn_isa_restrict(unsigned mask);
/* The active path. */
RSN_API rsn_isa rsn_isa_active(void);
/* "scalar", "simde", "avx2", "avx512"; "?" for anything else. */
RSN_API const char *rsn_isa_name(rsn_isa isa);
/* Parse a name as above (case-insensitive) into *out; RSN_E_INVAL if unknown. */
RSN_API rsn_status rsn_isa_parse(const char *name, rsn_isa *out);
/* If RSN_ISA was set but could not be honoured (an unknown name, or a path
 * this CPU or build cannot run), a sentence saying so and which path is
 * used instead; NULL otherwise.  The library never prints it: callers that
 * talk to a person should (the CLI does, on stderr). */
RSN_API const char *rsn_isa_env_warning(void);

/* ---------------------------------------------------------------------------
 * Opening a database.
 * ------------------------------------------------------------------------- */
#define RSN_OPEN_READONLY 0x01u     /* never write; works on read-only files   */
#define RSN_OPEN_CREATE 0x02u       /* create the file and schema if missing   */
#define RSN_OPEN_NOLOAD 0x04u       /* build the arena lazily, at first search */
#define RSN_OPEN_AUTO_REFRESH 0x08u /* before a search, apply what other
                                       connections committed (see rsn_refresh) */
#define RSN_OPEN_NO_TRIGGERS 0x10u  /* do not install change-log triggers    */
#define RSN_OPEN_NO_HISTORY 0x20u   /* do not write history audit rows        */
#define RSN_OPEN_CODES_ONLY 0x40u   /* keep only the tiers' codes in memory (at
                                       least one tier in opts.tiers): a search
                                       rescores its candidates from the file's
                                       float32 blobs (one primary-key lookup
                                       each); f32 searches are E_TIER.  See
                                       "Tiers" below                          */

/* Progress callback for long work: phase is "load", "import", ...; total is
 * 0 when unknown.  Called on the thread that asked for the work (rsn_open,
 * or the search, refresh or write that started a load) while the handle is
 * busy with it: a call on the same handle from inside the callback returns
 * E_STATE instead of waiting for itself.  Other handles may be used. */
typedef void (*rsn_progress_fn)(void *ctx, const char *phase, uint64_t done,
                                uint64_t total);

/* ---------------------------------------------------------------------------
 * Tiers: compact copies of every vector that a search can scan instead of
 * the float32 rows, reading fewer bytes, and then rescore exactly.
 *
 *   f16  IEEE half precision (2 bytes per dimension, 1/2 of f32)
 *   i8   one byte per dimension (1/4): each dimension j has an offset lo[j]
 *        and a step scale[j] = (max - min) / 255, calibrated from the rows at
 *        every full load (open, rsn_reload, a refresh that falls back to a
 *        full reload).  Rows written later keep that calibration; a
 *        component outside it is clipped to the nearest code, and such rows
 *        are counted (rsn_stats.tier_clipped_rows): rsn_reload recalibrates.
 *        An arena that starts empty uses lo = -1, scale = 2/255 (all of a
 *        unit vector's range) until its first full load with rows.
 *   b1   one bit per dimension (1/32): the sign of each component; rows are
 *        compared by Hamming distance.  A first stage only: how much ranking
 *        signal signs carry depends on the model (see README "Tiers").
 *
 * Tiers are derived from the float32 rows and kept in step by every write
 * and refresh; nothing is persisted (SQLite stays the only truth).  Which
 * tiers a handle builds is chosen at open (rsn_open_opts.tiers); which one
 * a search scans, per search (rsn_search_params.tier).
 *
 * What a tier search guarantees.  The tier's scan keeps the best
 * k x oversample rows by the tier's approximate score (ties by id, so the
 * candidates do not depend on threads); with rescoring (the default) those
 * candidates are scored again in float32 exactly as the f32 search scores
 * them (the same kernel, the same bits) and the best k are returned.  So
 * every returned score is exact, every hit satisfies the filter, and the
 * result equals the exact search's whenever the exact top k are among the
 * candidates; when one is not, its place goes to the next best candidate.
 * With RSN_SEARCH_NO_RESCORE the scores are the tier's approximations and
 * rsn_results.approximate is 1.
 * ------------------------------------------------------------------------- */
typedef enum rsn_tier {
  RSN_TIER_F32 = 0, /* the float32 rows: exact search (the default)        */
  RSN_TIER_F16 = 1,
  RSN_TIER_I8 = 2,
  RSN_TIER_B1 = 3
} rsn_tier;
#define RSN_TIER__COUNT 4
/* rsn_open_opts.tiers bits. */
#define RSN_TIERS_F16 (1u << RSN_TIER_F16)
#define RSN_TIERS_I8 (1u << RSN_TIER_I8)
#define RSN_TIERS_B1 (1u << RSN_TIER_B1)
#define RSN_TIERS_ALL (RSN_TIERS_F16 | RSN_TIERS_I8 | RSN_TIERS_B1)

/* "f32", "f16", "i8", "b1"; "?" for anything else. */
RSN_API const char *rsn_tier_name(rsn_tier tier);
/* Parse a name as above (case-insensitive); RSN_E_INVAL if unknown. */
RSN_API rsn_status rsn_tier_parse(const char *name, rsn_tier *out);
/* The oversample a search uses when it asks for 0 (README "Tiers" has the
 * recall curves they come from): f32 1, f16 2, i8 4, b1 16. */
RSN_API unsigned rsn_tier_default_oversample(rsn_tier tier);

typedef struct rsn_open_opts {
  unsigned flags;            /* RSN_OPEN_*                                    */
  uint32_t dim;              /* expected embedding dimension, 0 = any.  On
                                every open (not only CREATE): if the file
                                records one that differs, E_DIM naming both;
                                if it records none, a writable open records
                                it, and a read-only one checks it against
                                the dimension the loaded vectors have (not
                                with NOLOAD).  0: the first vector written
                                fixes it.                                   */
  const char *model;         /* expected model name (<= RSN_MODEL_MAX
                                bytes), NULL = any.  If the file records
                                another, E_MODEL naming both; if it records
                                none, a writable open records it.  A
                                recorded model is never overwritten.        */
  int threads;               /* search threads; 0 = all cores                */
  int load_threads;          /* arena loader threads; 0 = automatic (one per
                                core, at most 8); at most 64 are used       */
  rsn_progress_fn progress;  /* optional                                     */
  void *progress_ctx;        /* passed to progress                           */
  unsigned tiers;            /* RSN_TIERS_* to build beside the f32 rows (0:
                                none).  Memory per row: f16 2*dim bytes, i8
                                dim, b1 dim/8 (strides rounded up to 64)    */
} rsn_open_opts;

/* Fill opts with defaults (all zero: read-write, load at open). */
RSN_API void rsn_open_opts_init(rsn_open_opts *opts);

/* Open `path` (opts may be NULL for defaults).  Applies the connection
 * standard, verifies (or with CREATE, creates) the schema, checks or
 * records opts->dim and opts->model, and unless NOLOAD loads every valid
 * embedding into the arena.  A load reads one snapshot of the file, even
 * with several loader threads and other processes committing meanwhile.
 * On success *out owns the handle; on failure *out is NULL and
 * rsn_errmsg(NULL) says why.
 * Errors: E_CANTOPEN (missing file without CREATE, directory, permission),
 * E_NOTDB, E_BUSY, E_READONLY (CREATE on a read-only location), E_SCHEMA
 * (names the missing table or column), E_DIM, E_MODEL, E_LIMIT (more rows
 * than an arena holds: 2^32 - 2), E_NOMEM, E_SQL.  Any thread; the
 * new handle is not visible to others until this returns. */
RSN_API rsn_status rsn_open(const char *path, const rsn_open_opts *opts,
                            rsn_db **out);
/* Checkpoint (TRUNCATE) and PRAGMA optimize when writable, then release
 * everything.  Accepts NULL.  An open transaction is rolled back.  Must not
 * race with any other call on the same handle (join your threads first). */
RSN_API void rsn_close(rsn_db *db);
/* The embedding dimension the database holds: from resonance's metadata,
 * else the one the loaded arena found (the length most blobs have), else
 * the first vector written; 0 while none is known.  Thread-safe. */
RSN_API uint32_t rsn_db_dim(rsn_db *db);

/* ---------------------------------------------------------------------------
 * Nodes, edges, history.
 * ------------------------------------------------------------------------- */
typedef struct rsn_node {
  const char *id;        /* primary key, required                           */
  const char *type;      /* NULL = SQL NULL for every string field          */
  const char *title;
  const char *domain;
  const char *layer;
  const char *hash;
  const char *meta;      /* JSON text                                       */
  const char *date;
  const char *summary;
  const float *embedding; /* NULL = no embedding (stored as SQL NULL)        */
  uint32_t dim;          /* number of floats at embedding                   */
} rsn_node;

/* Insert or replace a node (INSERT OR REPLACE, as the app does) and write a
 * history row (entity_type 'node', action 'upsert').  The embedding is
 * validated (E_DIM, E_NONFINITE, E_ZERO) and normalised before it is stored.
 * SQLite first; the arena changes only once the write is committed.
 * Serialised with other writes. */
RSN_API rsn_status rsn_upsert(rsn_db *db, const rsn_node *node);
/* Replace a node's meta JSON; history row with old and new meta (action
 * 'update').  E_NOTFOUND if there is no such node.  Serialised with other
 * writes; the arena is not touched (hydration reads metadata fresh). */
RSN_API rsn_status rsn_update_meta(rsn_db *db, const char *id,
                                   const char *meta_json);
/* Delete a node; history row (action 'delete').  E_NOTFOUND if absent.
 * Serialised with other writes; searches are excluded only while the row
 * leaves the arena. */
RSN_API rsn_status rsn_delete(rsn_db *db, const char *id);

/* Group writes into one SQLite transaction.  Nested begin is E_STATE.  The
 * arena applies the group's changes only after rsn_commit succeeds;
 * rsn_rollback discards them.  A write that fails inside the transaction
 * after reaching SQLite (E_SQL, E_BUSY, E_IO, E_NOMEM ...) poisons it:
 * rsn_commit then rolls everything back and returns E_STATE, so a half-done
 * write is never committed.  Rejections found before any SQL runs (E_INVAL,
 * E_DIM, E_NONFINITE, E_ZERO, E_NOTFOUND) leave the transaction usable. */
RSN_API rsn_status rsn_begin(rsn_db *db);
RSN_API rsn_status rsn_commit(rsn_db *db);
RSN_API rsn_status rsn_rollback(rsn_db *db);

/* Fetch one node.  with_embedding=0 leaves embedding NULL.  *out is one
 * allocation owned by the caller: free it with rsn_node_free.  E_NOTFOUND if
 * absent.  A stored embedding that fails validation is returned as stored
 * (dim = bytes/4) so callers can inspect it.  Thread-safe: reads use a
 * pooled reader connection (inside this handle's open transaction, the
 * writer connection, so the transaction's own writes are visible). */
RSN_API rsn_status rsn_get(rsn_db *db, const char *id, int with_embedding,
                           rsn_node **out);
RSN_API void rsn_node_free(rsn_node *node);

/* Column selection for rsn_list (id is always returned). */
#define RSN_COL_TYPE 0x001u
#define RSN_COL_TITLE 0x002u
#define RSN_COL_DOMAIN 0x004u
#define RSN_COL_LAYER 0x008u
#define RSN_COL_HASH 0x010u
#define RSN_COL_META 0x020u
#define RSN_COL_DATE 0x040u
#define RSN_COL_SUMMARY 0x080u
#define RSN_COL_EMBEDDING 0x100u
#define RSN_COL_ALL_TEXT 0x0FFu

typedef struct rsn_list_opts {
  const char *domain;   /* filter: domain = ?, or NULL for any             */
  const char *type;     /* filter: type = ?, or NULL for any               */
  int64_t limit;        /* <= 0: no limit                                  */
  int64_t offset;       /* >= 0                                            */
  unsigned columns;     /* RSN_COL_* to fetch; others are left NULL         */
} rsn_list_opts;

/* List nodes ordered by id.  *out is an array of *n nodes in one allocation,
 * freed with rsn_nodes_free.  Thread-safe, as rsn_get. */
RSN_API rsn_status rsn_list(rsn_db *db, const rsn_list_opts *opts,
                            rsn_node **out, size_t *n);
RSN_API void rsn_nodes_free(rsn_node *nodes);

typedef struct rsn_edge {
  const char *source;
  const char *target;
  const char *type;
  double confidence;          /* default 1                                 */
  double veracity;            /* default 1                                 */
  const char *context_source; /* NULL = SQL NULL                           */
} rsn_edge;

/* INSERT OR IGNORE (source, target, type) with default confidence and
 * veracity, plus a history row (entity_type 'edge', action 'insert'). */
RSN_API rsn_status rsn_edge_insert(rsn_db *db, const rsn_edge *edge);
/* Insert, or on conflict update confidence, veracity and context_source.
 * Both edge writes are serialised with other writes. */
RSN_API rsn_status rsn_edge_upsert(rsn_db *db, const rsn_edge *edge);

#define RSN_EDGES_OUT 1  /* edges whose source is the id */
#define RSN_EDGES_IN 2   /* edges whose target is the id */
#define RSN_EDGES_BOTH 3 /* RSN_EDGES_OUT | RSN_EDGES_IN */
/* Neighbours of a node: out-edges ordered by target then type, in-edges by
 * source then type; RSN_EDGES_BOTH gives the out-edges, then the in-edges,
 * with a self-loop (source = target = id) once, among the out-edges.  An id
 * with no edges (or no node) gives *n = 0 and *out = NULL; any other
 * direction is E_INVAL.  *out: array of *n edges in one allocation, freed
 * with rsn_edges_free.  Thread-safe, as rsn_get. */
RSN_API rsn_status rsn_edges(rsn_db *db, const char *id, int direction,
                             rsn_edge **out, size_t *n);
RSN_API void rsn_edges_free(rsn_edge *edges);

/* ---------------------------------------------------------------------------
 * Filters: which nodes a search may return.
 *
 * A filter becomes a bitmap over the arena's rows before any score is
 * computed, so a filtered search returns min(k, rows that match and have a
 * valid vector) hits, every time, exactly (never fewer because of the
 * filter, as filters applied after a top-k do).
 *
 * Where each kind of condition is answered:
 *   - type, domain, layer, date: in memory.  The arena keeps these columns
 *     beside the vectors (dictionary codes; a sortable key for the date),
 *     so they never touch SQLite.  Date keys: "YYYY[-MM[-DD]]" optionally
 *     followed by "T" or " " and "hh:mm[:ss[.fff]]" and a zone, which is
 *     ignored (dates compare as written, as the app's ISO strings compare in
 *     SQL); missing parts count as 0; a date that is not in that form never
 *     matches a date condition.
 *   - has_id / id lists: in memory (the id map).
 *   - meta.<path> (JSON inside `meta`), title, hash, summary: parameterised
 *     SQL on a read-only connection (json_extract, json_each; every value
 *     is bound, never pasted).  For a JSON array, "match" and "range"
 *     match when any element does; a row whose meta is not valid JSON
 *     matches no meta condition (but is_null).  These read the whole nodes
 *     table (the app has no index on them): at a million rows that is a
 *     scan of the file, paid once per condition until the cache below is
 *     invalidated.
 *   - a raw WHERE clause over nodes (trusted callers): runs on a read-only
 *     connection under an authorizer that allows reading nodes and edges
 *     and nothing else (no writes, ATTACH, PRAGMA or other tables).
 *   - graph neighbourhoods: nodes within `hops` edges of a node (the node
 *     included), by edge type and direction (a recursive query over the
 *     edges indexes).
 * Results of SQL conditions are cached per handle (the 16 most recently
 * used), keyed by the condition and its values, until this handle writes
 * or sees (rsn_refresh, or RSN_OPEN_AUTO_REFRESH before each search)
 * another connection's commit.  An SQL condition reads the file as
 * committed when it runs (not this handle's open transaction), and its
 * ids are matched against the rows loaded now; ids it names that are not
 * loaded (no valid vector) are never returned.
 *
 * Cost: a filter's bitmap takes about half a millisecond per million rows
 * to build (README "Filtered search"); the handle keeps the bitmaps of the
 * 8 filters used last (keyed by their content, so an equal filter built
 * anew also hits) until the arena changes.  The scan then reads only the
 * selected rows.
 *
 * Filters are immutable and reference-counted: the combinators keep what
 * they combine alive, so each rsn_filter_* result is freed by the caller
 * with rsn_filter_free whether or not it was used in another filter.  One
 * filter may be used by any number of threads and searches at once.
 * ------------------------------------------------------------------------- */
typedef struct rsn_filter rsn_filter;

/* Parse a filter in Qdrant's JSON shape:
 *   {"must": [C...], "should": [C...], "must_not": [C...]}
 * (all three optional; must: all hold; should: at least one holds when
 * present; must_not: none holds), where each condition C is one of
 *   {"key": K, "match": {"value": V}}        K equals V
 *   {"key": K, "match": {"any": [V, ...]}}   K equals one of them
 *   {"key": K, "match": {"except": [V, ...]}} K is set and equals none
 *   {"key": K, "range": {"gt"|"gte"|"lt"|"lte": X, ...}}
 *   {"is_null": {"key": K}}                  K is SQL NULL
 *   {"has_id": ["id", ...]}
 *   {"near": {"id": ID, "hops": H, "edge_type": T, "direction": D}}
 *       (resonance's own: D is "out", "in" or "both", the default; T
 *       optional; H from 0 to 16, default 1)
 *   a nested filter {"must": ..., ...}
 * K is "type", "domain", "layer", "date", "id", "title", "hash",
 * "summary" or "meta.<path>" (dot-separated object keys inside the meta
 * JSON; a part may not contain quotes, backslashes or control bytes).
 * Values of the columns must be strings; meta values may be strings,
 * numbers or booleans (true matches a JSON true, stored as 1), and a
 * string never equals a number.  Ranges: on date, date strings compared as
 * keys (above); on type, domain, layer, title, hash, summary, strings in
 * byte order (SQLite's BINARY); on meta, all numbers (numeric values only)
 * or all strings (string values only).  "match" on date compares keys, so
 * "2026-03-01T10:00Z" equals "2026-03-01 10:00:00.000".  is_null on a
 * column is SQL NULL (on date also text that is not a date); on a meta path
 * it is a missing or JSON null value, or meta that is NULL or not JSON.
 * "except" needs the value set (not NULL, present in meta).  An empty
 * "should" list is no condition.  E_PARSE names what is wrong and where
 * (nesting is limited to 32 levels).  *out is freed with rsn_filter_free. */
RSN_API rsn_status rsn_filter_parse(const char *json, rsn_filter **out);
/* A raw SQL expression over the columns of nodes, e.g. "date >= ? AND meta
 * LIKE ?", with nparams text parameters bound in order (NULL entries bind
 * SQL NULL).  Trusted callers only: it may read any column of nodes and
 * edges; anything else is refused when the search runs (E_SQL with
 * SQLite's message and the clause). */
RSN_API rsn_status rsn_filter_where(const char *sql, const char *const *params,
                                    size_t nparams, rsn_filter **out);
/* Only these ids (an empty list matches nothing). */
RSN_API rsn_status rsn_filter_ids(const char *const *ids, size_t n, rsn_filter **out);
/* Nodes within `hops` (0..16) edges of `id`, the node included, along edges
 * of type edge_type (NULL: any) in direction RSN_EDGES_OUT, RSN_EDGES_IN or
 * RSN_EDGES_BOTH. */
RSN_API rsn_status rsn_filter_near(const char *id, unsigned hops, const char *edge_type,
                                   int direction, rsn_filter **out);
/* Both / either / not.  The results keep a and b alive. */
RSN_API rsn_status rsn_filter_and(rsn_filter *a, rsn_filter *b, rsn_filter **out);
RSN_API rsn_status rsn_filter_or(rsn_filter *a, rsn_filter *b, rsn_filter **out);
RSN_API rsn_status rsn_filter_not(rsn_filter *a, rsn_filter **out);
/* Release a filter (accepts NULL). */
RSN_API void rsn_filter_free(rsn_filter *f);

/* ---------------------------------------------------------------------------
 * Search.
 * ------------------------------------------------------------------------- */
#define RSN_SEARCH_MIN_SCORE 0x01u /* keep only hits with score > min_score  */
#define RSN_SEARCH_NO_HYDRATE 0x02u /* ids and scores only                  */
#define RSN_SEARCH_NO_REFRESH 0x04u /* skip RSN_OPEN_AUTO_REFRESH's check for
                                       outside commits for this search      */
#define RSN_SEARCH_NO_RESCORE 0x08u /* a tier search returns the tier's own
                                       approximate scores (results say so)  */

typedef struct rsn_search_params {
  size_t k;          /* number of hits wanted, >= 1; k > N returns N        */
  unsigned flags;    /* RSN_SEARCH_*                                        */
  float min_score;   /* with RSN_SEARCH_MIN_SCORE: keep score > min_score
                        (0 reproduces the app, which drops scores <= 0)    */
  int threads;       /* 0 = the handle's default; 1 = caller's thread only  */
  const rsn_filter *filter; /* NULL: every row; else only rows it matches   */
  rsn_tier tier;     /* which copy the scan reads (RSN_TIER_F32: exact);
                        another tier must have been built at open (E_TIER) */
  unsigned oversample; /* tier searches keep k x oversample candidates for
                          rescoring; 0 = rsn_tier_default_oversample      */
} rsn_search_params;

/* k = 10, hydrate, no minimum, default threads. */
RSN_API void rsn_search_params_init(rsn_search_params *p);

typedef struct rsn_hit {
  const char *id;
  float score;       /* dot product with the normalised query (cosine)     */
  /* Hydrated metadata (NULL when not hydrated or SQL NULL). */
  const char *type, *title, *domain, *layer, *date, *meta, *summary;
} rsn_hit;

typedef struct rsn_results {
  size_t nq;         /* number of queries                                  */
  size_t k;          /* hits[q*k .. q*k+count[q]) belong to query q         */
  size_t *count;     /* count[q] <= k: hits found for query q               */
  rsn_hit *hits;     /* nq*k slots, sorted by score desc, id asc            */
  double search_ms;  /* wall time of the scan                               */
  double hydrate_ms; /* wall time of the metadata fetch                     */
  rsn_tier tier;     /* the tier that was scanned                           */
  int approximate;   /* 1: scores are the tier's approximations (a tier
                        search with RSN_SEARCH_NO_RESCORE); 0: exact f32   */
  size_t candidates; /* rows rescored per query (0 for an f32 search)       */
} rsn_results;

/* Exact top-k of one query (dim floats, any alignment) by dot product with
 * the normalised query.  Errors: E_K (k = 0), E_DIM (also: the database
 * holds no vectors yet), E_NONFINITE, E_ZERO, E_INVAL; with NOLOAD or
 * after a lost arena, whatever the load returns (E_BUSY, E_NOMEM, ...);
 * with AUTO_REFRESH, whatever the refresh returns.  *out is freed with
 * rsn_results_free.  Safe to call from many threads at once: searches do
 * not wait for each other, only (briefly) for writes changing the arena. */
RSN_API rsn_status rsn_search(rsn_db *db, const float *query, uint32_t dim,
                              const rsn_search_params *params,
                              rsn_results **out);
/* nq queries stored row-major (query i at queries + i*dim), answered with the
 * blocked multi-query kernel.  Any invalid query fails the whole call and
 * rsn_errmsg names its index (every query is checked before any is
 * scored).  Working memory is bounded: queries are scored in pieces (the
 * answer does not depend on it), all against the same state of the arena.
 * E_LIMIT when nq x dim floats or nq x k hits cannot be represented. */
RSN_API rsn_status rsn_search_batch(rsn_db *db, const float *queries,
                                    size_t nq, uint32_t dim,
                                    const rsn_search_params *params,
                                    rsn_results **out);
/* "More like this": the node's own stored vector is the query and the node
 * itself is excluded.  E_NOTFOUND if the id is not in the arena.  Batch and
 * like searches are thread-safe like rsn_search. */
RSN_API rsn_status rsn_search_like(rsn_db *db, const char *id,
                                   const rsn_search_params *params,
                                   rsn_results **out);
/* Results belong to the caller alone; free them from any thread. */
RSN_API void rsn_results_free(rsn_results *results);

/* ---------------------------------------------------------------------------
 * Sync with other writers.
 * ------------------------------------------------------------------------- */
typedef struct rsn_refresh_info {
  int changed;          /* 0: nothing changed since the last look            */
  int full_reload;      /* 1: the change log could not be trusted            */
  int64_t upserted;     /* rows (re)loaded into the arena                    */
  int64_t removed;      /* rows removed from the arena                       */
} rsn_refresh_info;

/* Bring the arena up to date with commits made by other connections: the
 * ids logged since the last sync are re-read (incremental), or the arena is
 * rebuilt when the change log cannot be trusted (triggers absent, log
 * pruned past this handle, schema changed).  A no-op (changed = 0) while
 * this handle's own transaction is open.  info may be NULL.  Thread-safe.
 * It waits for writes, other refreshes, loads and rsn_check of this handle
 * (which can take seconds on a large file), and runs beside searches:
 * they are excluded only while the changed rows are applied, and a full
 * reload builds the new arena while searches use the old one.
 * With RSN_OPEN_AUTO_REFRESH a search first asks a pooled connection
 * whether anything was committed (no lock of the handle is taken); if so,
 * it refreshes -- unless a write, refresh, load or check of this handle is
 * under way, in which case it searches the current arena rather than wait
 * (that refresh, or the next search, catches up). */
RSN_API rsn_status rsn_refresh(rsn_db *db, rsn_refresh_info *info);

/* Rebuild the arena from the file now: a full load of one snapshot (as at
 * open), which replaces the current arena when it is complete; searches
 * use the old one meanwhile.  Never needed for correctness (rsn_refresh
 * falls back to it by itself); for benchmarks, and for callers who want the
 * load's cost paid at a moment of their choosing.  Waits for writes,
 * refreshes and other loads of this handle.  Thread-safe. */
RSN_API rsn_status rsn_reload(rsn_db *db);

/* ---------------------------------------------------------------------------
 * Stats, health, check, maintenance.
 * ------------------------------------------------------------------------- */
#define RSN_DRIFT_NOT_WAL 0x01u      /* journal_mode is not WAL              */
#define RSN_DRIFT_BUSY_TIMEOUT 0x02u /* busy_timeout below 5000 ms           */
#define RSN_DRIFT_MMAP 0x04u         /* mmap_size is not 0                   */
#define RSN_DRIFT_SYNCHRONOUS 0x08u  /* synchronous is not NORMAL            */
#define RSN_DRIFT_FOREIGN_KEYS 0x10u /* foreign_keys is off                  */
#define RSN_DRIFT_TEMP_STORE 0x20u   /* temp_store is not MEMORY             */

typedef struct rsn_health {
  char journal_mode[16]; /* "wal", "delete", ...                            */
  int busy_timeout_ms;
  int64_t mmap_size;
  int synchronous;       /* 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA                 */
  int foreign_keys;
  int temp_store;        /* 0 DEFAULT, 1 FILE, 2 MEMORY                      */
  unsigned drift;        /* RSN_DRIFT_* bits; 0 = compliant                  */
} rsn_health;

#define RSN_MAX_DIMS_SEEN 8

typedef struct rsn_vector_audit {
  int64_t rows;          /* rows with a non-NULL embedding                   */
  int64_t no_embedding;  /* rows whose embedding is NULL                     */
  int64_t valid;         /* usable rows (includes not_unit)                  */
  int64_t by_verdict[RSN_BLOB__COUNT]; /* counts per rsn_blob_verdict        */
  uint32_t dim;          /* expected dimension (metadata, else most common)  */
  int dim_from_meta;     /* 1 if dim came from rsn_meta                      */
  size_t ndims;          /* distinct lengths seen (bytes/4), up to 8        */
  uint32_t dims[RSN_MAX_DIMS_SEEN];
  int64_t dims_count[RSN_MAX_DIMS_SEEN];
} rsn_vector_audit;

typedef struct rsn_stats {
  int64_t nodes, edges, history;
  rsn_vector_audit vectors; /* from the arena load, or a scan with NOLOAD    */
  int64_t db_bytes;         /* page_count * page_size                        */
  int64_t wal_bytes;        /* size of the -wal file, 0 if none              */
  char model[RSN_MODEL_MAX + 1]; /* recorded model name, "" if none          */
  int loaded;               /* 1 if the arena is built                       */
  int64_t arena_rows;       /* rows searchable now                           */
  int64_t arena_bytes;      /* bytes reserved by the arena                   */
  double load_ms;           /* wall time of the last full load               */
  int load_threads;         /* loader threads that read its snapshot (1 when
                               the load fell back to one connection)        */
  const char *isa;          /* active kernel path name                       */
  unsigned tiers;           /* RSN_TIERS_* built in the arena                 */
  int64_t tier_bytes;       /* bytes of their codes (part of arena_bytes)     */
  int64_t tier_clipped_rows;/* rows written since the i8 calibration with a
                               component outside it (rsn_reload recalibrates) */
  int threads;              /* default search threads                        */
  rsn_health health;
} rsn_stats;

/* Thread-safe.  Holds the writer connection while it counts rows (writes
 * wait); before the arena is loaded (NOLOAD) it also audits every blob,
 * which reads the whole file. */
RSN_API rsn_status rsn_stats_get(rsn_db *db, rsn_stats *out);

typedef struct rsn_check_report {
  int integrity_ok;         /* PRAGMA integrity_check said "ok"              */
  char integrity[512];      /* its first message(s)                          */
  rsn_vector_audit vectors; /* full audit of every blob in the file          */
  rsn_health health;
  int problems;             /* count of problems found (0 = clean)           */
} rsn_check_report;

/* Integrity check plus a vector audit of every row.  Returns RSN_OK whether
 * or not problems were found; look at report->problems.  Thread-safe;
 * holds the writer connection for the whole check (writes wait). */
RSN_API rsn_status rsn_check(rsn_db *db, rsn_check_report *report);

#define RSN_MAINT_ANALYZE 0x01u
#define RSN_MAINT_VACUUM 0x02u
#define RSN_MAINT_OPTIMIZE 0x04u
#define RSN_MAINT_CHECKPOINT 0x08u /* wal_checkpoint(TRUNCATE) */

/* Run the selected maintenance steps in the order analyze, vacuum, optimize,
 * checkpoint.  E_STATE inside a transaction.  Thread-safe; writes wait. */
RSN_API rsn_status rsn_maintain(rsn_db *db, unsigned ops);
/* Online backup of the whole database to dest_path with the SQLite backup
 * API (overwrites dest_path).  Thread-safe; writes wait; searches go on. */
RSN_API rsn_status rsn_backup(rsn_db *db, const char *dest_path);

/* ---------------------------------------------------------------------------
 * Shards: one database split into S files by a stable hash of the node id,
 * each an ordinary app database that resonance (and the app) opens as it
 * is.  Searching every shard and merging the per-shard top k by (score
 * desc, id asc) gives exactly the top k of the whole (README "Shards").
 *
 * The hash.  It must never change: shard files, and every program that
 * routes writes or queries to them (in any language), depend on it.
 *
 *   h = 0xcbf29ce484222325                    FNV-1a, 64 bits, over the
 *   for each byte b of the id (UTF-8):          id's bytes (no terminator)
 *     h = (h XOR b) * 0x100000001b3 mod 2^64
 *   h = h XOR (h >> 33)                        then MurmurHash3's fmix64
 *   h = h * 0xff51afd7ed558ccd mod 2^64          finalizer
 *   h = h XOR (h >> 33)
 *   h = h * 0xc4ceb9fe1a85ec53 mod 2^64
 *   h = h XOR (h >> 33)
 *   shard = h mod S
 *
 * Why the finalizer: modulo 2^k, plain FNV-1a depends only on the low k
 * bits of each byte, so ids that differ only in higher bits always share a
 * shard ("note" and "Note" do for every S up to 32).  fmix64 makes every
 * bit of the input count; it is three shifts and two multiplies in any
 * language (Python: mask with (1 << 64) - 1).
 *
 * Test vectors (tests/test_shard.c checks them; computed in Python):
 *   id                            rsn_shard_hash        S=2 S=3 S=4 S=7 S=16 S=1000
 *   ""                            0xefd01f60ba992926      0   2   2   1    6   342
 *   "a"                           0x82a2a958a9bece5b      1   2   3   1   11   315
 *   "node-42"                     0x6d450d277743995e      0   0   2   1   14   798
 *   "note"                        0x5b79326216421d61      1   1   1   0    1     9
 *   "Note"                        0x15e58a43fc0369ee      0   0   2   2   14   958
 *   "caf\xc3\xa9" (cafe, e acute) 0xf50b1f8e2c0682e6      0   2   2   5    6   854
 * ------------------------------------------------------------------------- */
#define RSN_SHARD_MAX 1024u            /* most shards rsn_shard_split makes   */
#define RSN_SHARD_HASH "fnv1a64-fmix64" /* the hash's name (rsn_meta, manifest) */

/* The 64-bit hash above of len bytes at id (id may be NULL when len is 0).
 * Pure: thread-safe, no handle. */
RSN_API uint64_t rsn_shard_hash(const char *id, size_t len);
/* The shard of an id among `shards`: rsn_shard_hash(id, len) % shards
 * (0 when shards is 0 or 1).  Pure. */
RSN_API uint32_t rsn_shard_of(const char *id, size_t len, uint32_t shards);

typedef struct rsn_shard_counts {
  int64_t nodes;   /* node rows                                             */
  int64_t history; /* history rows: the nodes' own (entity_type 'node') and
                      every other one (edges' rows are in every shard)     */
  int64_t edges;   /* edge rows: all of the source's, in every shard        */
} rsn_shard_counts;

typedef struct rsn_shard_info {
  rsn_shard_counts source;        /* the source's rows, in the snapshot read */
  uint32_t dim;                   /* recorded in every shard: the source's
                                     recorded dimension, else the length
                                     most of its blobs have; 0: none       */
  char model[RSN_MODEL_MAX + 1];  /* the source's model, "" if none          */
  int64_t virtual_tables;         /* virtual tables (FTS, R-tree) copied
                                     whole, as VACUUM copies them: an index
                                     over nodes still names the other
                                     shards' rows (rebuild it if it matters) */
} rsn_shard_info;

typedef struct rsn_shard_opts {
  rsn_progress_fn progress;       /* optional: phase "shard", node rows read
                                     of the total (all passes)             */
  void *progress_ctx;
} rsn_shard_opts;

/* Split the database at `source` into `shards` files paths[0..shards):
 * shard i holds the nodes whose rsn_shard_of(id) is i, the history rows of
 * those nodes (entity_type 'node', by entity_id), and a whole copy of every
 * other table (edges, the other history rows, ember_state, the app's own
 * tables); rsn_meta also records shard_index, shard_count and shard_hash
 * (RSN_SHARD_HASH), and the dimension (see rsn_shard_info.dim).  Each file
 * has the source's schema (tables, indexes, views, triggers, virtual tables,
 * page size, encoding, journal mode, user_version) and its rowids; the
 * change log (rsn_changes, rsn_cursors) starts empty and sqlite_stat1, when
 * the source has it, is rebuilt with ANALYZE.
 *
 * The source is opened read-only and read in one read transaction: every
 * shard comes from the same snapshot while other connections go on
 * writing (in WAL mode; in rollback-journal mode a writer's commit waits
 * for the split, up to its busy timeout).  Up to 32 files are written per
 * pass over the source.  The output depends only on the source's content
 * (and the SQLite library): a second split of an unchanged file gives
 * byte-identical files.
 *
 * Files are written as "<path>.rsn-tmp", synced, and renamed over paths[i]
 * only when all of them are complete; a failure before that removes the
 * temporary files and leaves every paths[i] as it was (only a rename that
 * fails, which needs the directory to change under the split, can leave
 * the earlier ones renamed).  An existing paths[i] is replaced, and a
 * stale -wal or -shm beside it removed.  counts (optional) receives shards entries; info (optional)
 * the source's.  Errors: E_INVAL (shards not in 1..RSN_SHARD_MAX, a NULL
 * or repeated path, a path naming the source), whatever opening the source
 * returns (E_CANTOPEN, E_NOTDB, E_SCHEMA, E_BUSY ...), E_CANTOPEN or
 * E_READONLY (a shard file cannot be created), E_IO, E_SQL, E_NOMEM.
 * Thread-safe (it uses no handle). */
RSN_API rsn_status rsn_shard_split(const char *source, uint32_t shards,
                                   const char *const *paths,
                                   const rsn_shard_opts *opts,
                                   rsn_shard_info *info,
                                   rsn_shard_counts *counts);

/* The SQLite library version resonance runs on ("3.40.1"). */
RSN_API const char *rsn_sqlite_version(void);

#ifdef __cplusplus
}
#endif
#endif /* RESONANCE_H */
