/*
 * fuzz_api.c -- libFuzzer target for sequences of public API calls
 * (engine/include/resonance.h) on a fresh database per input, checked
 * against a small model of what the database and the handle's arena hold.
 *
 * Input: a header byte (open flags, whether a dimension is recorded at
 * create, whether the tiers are built, the kernel path), a byte for the base dimension (1..24, odd ones
 * included), then one opcode byte plus operands per call: upsert, delete,
 * begin/commit/rollback, search, search_batch, search_like, refresh, get,
 * update_meta, stats, reopen, and upsert/delete through a second handle on
 * the same file (another writer, which the first sees only after a
 * refresh).  Ids come from a set of 8 (an empty one and a 300-byte one
 * among them), vectors from bytes with NaN, infinities, huge, tiny and zero
 * elements, dimensions usually the base one and sometimes another.
 *
 * The model keeps, per id, the committed row (the file), the row as this
 * handle's open transaction sees it, and the row as the arena should hold
 * it (what searches see: own commits at once, other writers' after a
 * refresh).  Checked after each call:
 *   - status codes: the documented error for a bad k, dimension, vector or
 *     absent id, RSN_OK otherwise;
 *   - get: the stored vector is exactly the normalised input (rsn_normalize)
 *     and the title is the one written;
 *   - search/batch/like (searches also through a tier, with every row a
 *     candidate, so rescored it must equal the exact answer): every hit is a searchable id (at most once), its
 *     score is the model's dot product within 1e-4, hits are sorted by
 *     (score desc, id asc), the count is min(k, N) (fewer only when
 *     min_score cut them, and then none left out scores above it), nothing
 *     left out scores above the last hit, and hydrated titles are the
 *     committed ones;
 *   - stats: arena_rows is the number of searchable ids.
 * The database lives in a per-process directory (under $TMPDIR, default
 * /dev/shm when it exists) and is deleted after each input.
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "resonance.h"

#define NIDS 8
#define MAXD 40    /* largest dimension the inputs make                     */
#define MAXOPS 48  /* calls per input                                       */
#define TOL 1e-4   /* score tolerance: float kernels against double         */

static const char *ids[NIDS];
static char long_id[301];
static char dir[256], path[300];
static int trace;      /* FZ_TRACE=1: one line per call, to read a crash   */

/* A trace line (FZ_TRACE), on stderr before the call's answer is checked. */
static void tr(const char *fmt, ...) {
  if (!trace) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

typedef struct row {
  int present;       /* the node exists                                     */
  uint32_t dim;      /* floats in vec; 0 = no embedding                     */
  float vec[MAXD];   /* normalised, as stored                               */
  int title;         /* title version written; -1 = NULL                    */
} row;

typedef struct model {
  row file[NIDS];    /* committed rows                                      */
  row txn[NIDS];     /* rows as the open transaction sees them              */
  row arena[NIDS];   /* rows as the handle's searches see them              */
  int touched[NIDS]; /* written in the open transaction                     */
  int in_txn;        /* rsn_begin succeeded, no commit/rollback yet         */
  int unqueued;      /* the open transaction wrote while nothing was loaded */
  int loaded;        /* the arena was built (NOLOAD defers it)              */
  uint32_t rdim;     /* dimension the file records (0 = none)               */
  uint32_t tdim;     /* the same as the open transaction sees it            */
  unsigned flags;    /* open flags of the main handle                       */
} model;

static void cleanup_files(void) {
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[320];
  for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

static void remove_dir(void) {
  cleanup_files();
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  memset(long_id, 'x', 300);
  trace = getenv("FZ_TRACE") != NULL;
  static const char *const base[NIDS] = {"a", "b", "c", "n10", "n9", "",
                                         "\xc3\xa9t\xc3\xa9", NULL};
  for (int i = 0; i < NIDS; i++) ids[i] = base[i] ? base[i] : long_id;
  const char *tmp = getenv("TMPDIR");
  struct stat st;
  if (!tmp || !*tmp) tmp = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
  snprintf(dir, sizeof dir, "%s/rsn-fuzz-api-XXXXXX", tmp);
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    abort();
  }
  snprintf(path, sizeof path, "%s/f.db", dir);
  atexit(remove_dir);
  return 0;
}

/* ---- inputs -----------------------------------------------------------------*/

/* One element from a byte: mostly small values, some special ones. */
static float elem(uint8_t b) {
  switch (b) {
    case 0x80: return NAN;
    case 0x81: return INFINITY;
    case 0x82: return -INFINITY;
    case 0x83: return 3e38f;   /* finite; its square overflows a float      */
    case 0x84: return 1e-30f;  /* tiny                                      */
    case 0x85: return 1e-42f;  /* subnormal                                 */
    default: return (float)(int8_t)b / 16.0f;
  }
}

/* A dimension: usually `base`, sometimes one off, 0, or another small one. */
static uint32_t pick_dim(fz_in *in, uint32_t base) {
  uint8_t b = fz_u8(in);
  switch (b % 16) {
    case 13: return base + 1 <= MAXD ? base + 1 : base;
    case 14: return base > 1 ? base - 1 : 0;
    case 15: return 1 + (b / 16) % MAXD;
    default: return base;
  }
}

/* Fill v[0..dim) from the input; one byte in 8 makes an all-zero vector. */
static void pick_vec(fz_in *in, float *v, uint32_t dim) {
  uint8_t mode = fz_u8(in);
  for (uint32_t i = 0; i < dim; i++) v[i] = mode % 8 == 7 ? 0.0f : elem(fz_u8(in));
}

static size_t pick_k(fz_in *in) {
  static const size_t ks[] = {0, 1, 2, 3, 5, 8, 1000, SIZE_MAX};
  return ks[fz_u8(in) % 8];
}

/* ---- the model --------------------------------------------------------------*/

static int searchable(const row *r, uint32_t dim) {
  return r->present && r->dim != 0 && r->dim == dim;
}

static int count_searchable(const model *m, uint32_t dim) {
  int n = 0;
  for (int i = 0; i < NIDS; i++) n += searchable(&m->arena[i], dim);
  return n;
}

static int id_index(const char *id) {
  for (int i = 0; i < NIDS; i++)
    if (strcmp(ids[i], id) == 0) return i;
  return -1;
}

/* Which status a vector gets, and its normalised form in out. */
static rsn_status vec_status(const float *v, uint32_t dim, float *out) {
  memcpy(out, v, dim * sizeof *v);
  return rsn_normalize(out, dim);
}

static double dot(const float *a, const float *b, uint32_t dim) {
  double s = 0;
  for (uint32_t i = 0; i < dim; i++) s += (double)a[i] * b[i];
  return s;
}

/* A search's arena view: the lazy load or auto-refresh it triggers. */
static void before_search(model *m) {
  if (!m->loaded) {
    memcpy(m->arena, m->file, sizeof m->arena);
    m->loaded = 1;
  }
  if ((m->flags & RSN_OPEN_AUTO_REFRESH) && !m->in_txn)
    memcpy(m->arena, m->file, sizeof m->arena);
}

/* Check one query's hits against the model.  q is normalised; skip is the
 * index of the id excluded (like), or -1. */
static void check_hits(const model *m, const rsn_results *r, size_t qi,
                       const float *q, uint32_t dim, const rsn_search_params *p,
                       int skip) {
  double score[NIDS];
  int avail = 0;
  for (int i = 0; i < NIDS; i++) {
    score[i] = NAN;
    if (i != skip && searchable(&m->arena[i], dim)) {
      score[i] = dot(q, m->arena[i].vec, dim);
      avail++;
    }
  }
  size_t want = p->k < (size_t)avail ? p->k : (size_t)avail;
  size_t c = r->count[qi];
  FZ_CHECK(r->k >= c, "count %zu above k %zu", c, r->k);
  FZ_CHECK(c <= want, "%zu hits, at most %zu expected", c, want);
  int seen[NIDS] = {0};
  double last = INFINITY;
  for (size_t h = 0; h < c; h++) {
    const rsn_hit *hit = &r->hits[qi * r->k + h];
    int i = id_index(hit->id);
    FZ_CHECK(i >= 0 && i != skip && !isnan(score[i]),
             "hit '%.20s' is not searchable", hit->id);
    FZ_CHECK(!seen[i], "hit '%.20s' twice", hit->id);
    seen[i] = 1;
    FZ_CHECK(fabs(hit->score - score[i]) < TOL, "'%.20s' scored %.7g, model %.7g",
             hit->id, hit->score, score[i]);
    if (h > 0) {
      const rsn_hit *prev = hit - 1;
      FZ_CHECK(prev->score > hit->score ||
                   (prev->score == hit->score && strcmp(prev->id, hit->id) < 0),
               "hits %zu and %zu out of order", h - 1, h);
    }
    if (p->flags & RSN_SEARCH_MIN_SCORE)
      FZ_CHECK(hit->score > p->min_score, "score %g not above min %g",
               hit->score, p->min_score);
    if (!(p->flags & RSN_SEARCH_NO_HYDRATE) &&
        memcmp(&m->arena[i], &m->file[i], sizeof(row)) == 0) {
      int t = m->file[i].title;
      char want_title[16];
      snprintf(want_title, sizeof want_title, "t%d", t);
      FZ_CHECK(t < 0 ? hit->title == NULL
                     : hit->title && strcmp(hit->title, want_title) == 0,
               "'%.20s' hydrated title '%s', expected %d", hit->id,
               hit->title ? hit->title : "(null)", t);
    }
    last = score[i];
  }
  /* Nothing left out beats the last hit; a short list was cut by min_score. */
  for (int i = 0; i < NIDS; i++) {
    if (isnan(score[i]) || seen[i]) continue;
    if (c == want)
      FZ_CHECK(c == 0 || score[i] <= last + TOL,
               "'%.20s' (%.7g) left out above the last hit (%.7g)", ids[i],
               score[i], last);
    else
      FZ_CHECK((p->flags & RSN_SEARCH_MIN_SCORE) && score[i] <= p->min_score + TOL,
               "'%.20s' (%.7g) missing from a short list", ids[i], score[i]);
  }
}

/* The status a search call must return before it scans, given the handle's
 * dimension and the queries; RSN_OK when it should scan. */
static rsn_status expect_query(uint32_t dbdim, const float *q, uint32_t dim,
                               float *qn) {
  if (dbdim == 0 || dim != dbdim) return RSN_E_DIM;
  return vec_status(q, dim, qn);
}

/* ---- one input ---------------------------------------------------------------*/

typedef struct run {
  model m;
  rsn_db *db;        /* main handle                                         */
  rsn_db *other;     /* second writer, opened on first use                  */
  rsn_open_opts o;   /* options of the main handle                          */
} run;

static void open_main(run *R) {
  rsn_status st = rsn_open(path, &R->o, &R->db);
  tr("  open flags %#x dim %u: %s\n", R->o.flags, R->o.dim, rsn_status_name(st));
  FZ_CHECK(st == RSN_OK, "rsn_open: %s: %s", rsn_status_name(st), rsn_errmsg(NULL));
  R->m.in_txn = 0;
  memset(R->m.touched, 0, sizeof R->m.touched);
  R->m.loaded = !(R->o.flags & RSN_OPEN_NOLOAD);
  R->m.tdim = R->m.rdim;
  FZ_CHECK(rsn_db_dim(R->db) == R->m.rdim, "opened with dim %u, the file records %u",
           rsn_db_dim(R->db), R->m.rdim);
  if (R->m.loaded) memcpy(R->m.arena, R->m.file, sizeof R->m.arena);
}

/* Apply a committed write of row `nr` to id i in the model. */
static void model_write(run *R, int i, const row *nr, int own) {
  model *m = &R->m;
  if (own && m->in_txn) {
    m->txn[i] = *nr;
    m->touched[i] = 1;
    if (!m->loaded) m->unqueued = 1;
    return;
  }
  m->file[i] = *nr;
  m->txn[i] = *nr;
  if (own) m->arena[i] = *nr; /* at once, or read by the coming load */
}

static void op_upsert(run *R, fz_in *in, rsn_db *db, int own) {
  int i = fz_u8(in) % NIDS;
  uint8_t how = fz_u8(in);
  uint32_t base = rsn_db_dim(db);
  if (!base) base = R->o.dim ? R->o.dim : 1 + how % 8;
  uint32_t dim = pick_dim(in, base);
  float v[MAXD], vn[MAXD];
  pick_vec(in, v, dim);
  int with_vec = how % 8 != 0 && dim > 0;
  static int title_counter;
  int title = how & 0x80 ? -1 : title_counter++ % 1000;
  char tbuf[16];
  snprintf(tbuf, sizeof tbuf, "t%d", title);
  rsn_node n = {.id = ids[i], .title = title < 0 ? NULL : tbuf,
                .embedding = with_vec ? v : NULL, .dim = with_vec ? dim : 0};
  uint32_t dbdim = rsn_db_dim(db);
  /* The handle's dimension, else the one the file (or the open
   * transaction) records, else this vector's. */
  uint32_t fdim = own && R->m.in_txn ? R->m.tdim : R->m.rdim;
  rsn_status want = RSN_OK;
  if (with_vec) {
    if (dbdim && dim != dbdim) want = RSN_E_DIM;
    else want = vec_status(v, dim, vn);
    if (want == RSN_OK && !dbdim && fdim && dim != fdim) want = RSN_E_DIM;
  }
  rsn_status st = rsn_upsert(db, &n);
  tr("  %supsert '%.20s' %s dim %u, title %d: %s\n", own ? "" : "other: ", ids[i],
     with_vec ? "vector" : "no vector", dim, title, rsn_status_name(st));
  FZ_CHECK(st == want, "upsert '%.20s' dim %u (db %u): %s, expected %s: %s", ids[i],
           dim, dbdim, rsn_status_name(st), rsn_status_name(want), rsn_errmsg(db));
  if (st != RSN_OK) return;
  if (with_vec && !dbdim)
    FZ_CHECK(rsn_db_dim(db) == dim, "first vector of %u left dim %u", dim,
             rsn_db_dim(db));
  if (with_vec && own && R->m.in_txn) {
    if (!R->m.tdim) R->m.tdim = dim;
  } else if (with_vec && !R->m.rdim) {
    R->m.rdim = R->m.tdim = dim;
  }
  row nr = {.present = 1, .dim = with_vec ? dim : 0, .title = title};
  if (with_vec) memcpy(nr.vec, vn, dim * sizeof *vn);
  model_write(R, i, &nr, own);
}

static void op_delete(run *R, fz_in *in, rsn_db *db, int own) {
  int i = fz_u8(in) % NIDS;
  const row *cur = own && R->m.in_txn ? &R->m.txn[i] : &R->m.file[i];
  rsn_status want = cur->present ? RSN_OK : RSN_E_NOTFOUND;
  rsn_status st = rsn_delete(db, ids[i]);
  tr("  %sdelete '%.20s': %s\n", own ? "" : "other: ", ids[i], rsn_status_name(st));
  FZ_CHECK(st == want, "delete '%.20s': %s, expected %s: %s", ids[i],
           rsn_status_name(st), rsn_status_name(want), rsn_errmsg(db));
  if (st != RSN_OK) return;
  row gone = {.present = 0, .title = -1};
  model_write(R, i, &gone, own);
}

static void op_search(run *R, fz_in *in, int batch) {
  model *m = &R->m;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = pick_k(in);
  uint8_t fl = fz_u8(in);
  static const float mins[] = {-2.0f, -0.5f, 0.0f, 0.3f, 0.99f, NAN, INFINITY, 0.5f};
  if (fl & 1) {
    p.flags |= RSN_SEARCH_MIN_SCORE;
    p.min_score = mins[(fl >> 2) % 8];
  }
  if (fl & 2) p.flags |= RSN_SEARCH_NO_HYDRATE;
  /* A tier with every row a candidate (8 ids, oversample 8): rescored, it
   * must answer exactly as f32 does, so the same checks apply. */
  p.tier = (rsn_tier)((fl >> 5) & 3);
  p.oversample = 8;
  uint32_t base = rsn_db_dim(R->db);
  uint32_t dim = pick_dim(in, base ? base : 3);
  size_t nq = batch ? fz_u8(in) % 4 : 1;
  float q[4][MAXD], qn[4][MAXD];
  float packed[4 * MAXD]; /* the call wants query j at j * dim */
  for (size_t j = 0; j < nq; j++) {
    pick_vec(in, q[j], dim);
    memcpy(packed + j * dim, q[j], dim * sizeof(float));
  }

  rsn_results *r = NULL;
  rsn_status st = batch ? rsn_search_batch(R->db, packed, nq, dim, &p, &r)
                        : rsn_search(R->db, q[0], dim, &p, &r);
  tr("  %s k %zu flags %#x tier %s dim %u nq %zu: %s\n", batch ? "search_batch" : "search",
     p.k, p.flags, rsn_tier_name(p.tier), dim, nq, rsn_status_name(st));
  for (size_t j = 0; trace && st == RSN_OK && j < nq; j++) {
    tr("    query %zu:", j);
    for (size_t h = 0; h < r->count[j]; h++)
      tr(" '%.20s' %.4f", r->hits[j * r->k + h].id, r->hits[j * r->k + h].score);
    tr("\n");
  }
  /* The call may have loaded the arena, which can set the handle's
   * dimension (NOLOAD): validation uses the dimension after it. */
  rsn_status want = RSN_OK;
  if (p.k == 0) want = RSN_E_K;
  else if ((p.flags & RSN_SEARCH_MIN_SCORE) && !isfinite(p.min_score)) want = RSN_E_INVAL;
  else if (p.tier != RSN_TIER_F32 && !R->o.tiers) want = RSN_E_TIER;
  if (want == RSN_OK) before_search(m);
  uint32_t dbdim = rsn_db_dim(R->db);
  if (want == RSN_OK && !(batch && nq == 0))
    for (size_t j = 0; j < nq && want == RSN_OK; j++)
      want = expect_query(dbdim, q[j], dim, qn[j]);
  FZ_CHECK(st == want, "%s k %zu dim %u (db %u) nq %zu: %s, expected %s: %s",
           batch ? "batch" : "search", p.k, dim, dbdim, nq, rsn_status_name(st),
           rsn_status_name(want), rsn_errmsg(R->db));
  if (st == RSN_OK) {
    FZ_CHECK(r && r->nq == nq, "results for %zu queries", r ? r->nq : 0);
    for (size_t j = 0; j < nq; j++) check_hits(m, r, j, qn[j], dbdim, &p, -1);
  } else {
    FZ_CHECK(r == NULL, "results left after a failure");
  }
  rsn_results_free(r);
}

static void op_like(run *R, fz_in *in) {
  model *m = &R->m;
  int i = fz_u8(in) % NIDS;
  rsn_search_params p;
  rsn_search_params_init(&p);
  p.k = pick_k(in);
  if (fz_u8(in) & 1) p.flags |= RSN_SEARCH_NO_HYDRATE;
  rsn_results *r = NULL;
  rsn_status st = rsn_search_like(R->db, ids[i], &p, &r);
  tr("  search_like '%.20s' k %zu: %s, %zu hits\n", ids[i], p.k, rsn_status_name(st),
     st == RSN_OK ? r->count[0] : 0);
  rsn_status want = RSN_OK;
  if (p.k == 0) want = RSN_E_K;
  if (want == RSN_OK) before_search(m);
  uint32_t dbdim = rsn_db_dim(R->db);
  if (want == RSN_OK && !searchable(&m->arena[i], dbdim)) want = RSN_E_NOTFOUND;
  FZ_CHECK(st == want, "like '%.20s' k %zu: %s, expected %s: %s", ids[i], p.k,
           rsn_status_name(st), rsn_status_name(want), rsn_errmsg(R->db));
  if (st == RSN_OK) check_hits(m, r, 0, m->arena[i].vec, dbdim, &p, i);
  rsn_results_free(r);
}

static void op_get(run *R, fz_in *in) {
  int i = fz_u8(in) % NIDS;
  int with = fz_u8(in) & 1;
  const row *cur = R->m.in_txn ? &R->m.txn[i] : &R->m.file[i];
  rsn_node *n = NULL;
  rsn_status st = rsn_get(R->db, ids[i], with, &n);
  tr("  get '%.20s': %s\n", ids[i], rsn_status_name(st));
  FZ_CHECK(st == (cur->present ? RSN_OK : RSN_E_NOTFOUND), "get '%.20s': %s: %s",
           ids[i], rsn_status_name(st), rsn_errmsg(R->db));
  if (st == RSN_OK) {
    FZ_CHECK(strcmp(n->id, ids[i]) == 0, "get returned id '%.20s'", n->id);
    char t[16];
    snprintf(t, sizeof t, "t%d", cur->title);
    FZ_CHECK(cur->title < 0 ? !n->title : n->title && strcmp(n->title, t) == 0,
             "get '%.20s': title '%s', expected %d", ids[i],
             n->title ? n->title : "(null)", cur->title);
    if (with && cur->dim) {
      FZ_CHECK(n->embedding && n->dim == cur->dim, "get '%.20s': dim %u, expected %u",
               ids[i], n->dim, cur->dim);
      FZ_CHECK(memcmp(n->embedding, cur->vec, cur->dim * sizeof(float)) == 0,
               "get '%.20s': the stored vector differs", ids[i]);
    } else {
      FZ_CHECK(!n->embedding, "get '%.20s': an embedding that should not be there",
               ids[i]);
    }
  }
  rsn_node_free(n);
}

static void op_txn(run *R, uint8_t which) {
  model *m = &R->m;
  rsn_status st;
  if (which == 0) {
    st = rsn_begin(R->db);
    tr("  begin: %s\n", rsn_status_name(st));
    FZ_CHECK(st == (m->in_txn ? RSN_E_STATE : RSN_OK), "begin: %s",
             rsn_status_name(st));
    if (st == RSN_OK) {
      m->in_txn = 1;
      m->unqueued = 0;
      m->tdim = m->rdim;
      memcpy(m->txn, m->file, sizeof m->txn);
      memset(m->touched, 0, sizeof m->touched);
    }
    return;
  }
  st = which == 1 ? rsn_commit(R->db) : rsn_rollback(R->db);
  tr("  %s: %s\n", which == 1 ? "commit" : "rollback", rsn_status_name(st));
  FZ_CHECK(st == (m->in_txn ? RSN_OK : RSN_E_STATE), "%s: %s: %s",
           which == 1 ? "commit" : "rollback", rsn_status_name(st),
           rsn_errmsg(R->db));
  if (!m->in_txn) return;
  m->in_txn = 0;
  if (which == 1) {
    m->rdim = m->tdim;
    /* A search built the arena after the transaction wrote rows it did not
     * queue (nothing was loaded then), so the load missed them: the commit
     * drops the arena and the next search loads the file again, with
     * whatever other connections committed meanwhile. */
    if (m->unqueued) m->loaded = 0;
    for (int i = 0; i < NIDS; i++)
      if (m->touched[i]) {
        m->file[i] = m->txn[i];
        m->arena[i] = m->txn[i];
      }
  } else {
    /* A rolled-back transaction that recorded the file's first dimension
     * drops an arena shaped by it: the next search loads the file again,
     * with whatever other connections committed meanwhile. */
    if (m->rdim == 0 && m->tdim != 0) m->loaded = 0;
    memcpy(m->txn, m->file, sizeof m->txn);
    m->tdim = m->rdim;
  }
}

static void op_refresh(run *R) {
  rsn_refresh_info info;
  rsn_status st = rsn_refresh(R->db, &info);
  tr("  refresh: %s, changed %d, full_reload %d\n", rsn_status_name(st), info.changed,
     info.full_reload);
  FZ_CHECK(st == RSN_OK, "refresh: %s: %s", rsn_status_name(st), rsn_errmsg(R->db));
  if (!R->m.in_txn && R->m.loaded) memcpy(R->m.arena, R->m.file, sizeof R->m.arena);
}

static void op_meta(run *R, fz_in *in) {
  int i = fz_u8(in) % NIDS;
  const row *cur = R->m.in_txn ? &R->m.txn[i] : &R->m.file[i];
  rsn_status st = rsn_update_meta(R->db, ids[i], fz_u8(in) & 1 ? "{\"k\":1}" : NULL);
  tr("  update_meta '%.20s': %s\n", ids[i], rsn_status_name(st));
  FZ_CHECK(st == (cur->present ? RSN_OK : RSN_E_NOTFOUND), "update_meta: %s",
           rsn_status_name(st));
}

static void op_stats(run *R) {
  rsn_stats s;
  rsn_status st = rsn_stats_get(R->db, &s);
  if (st == RSN_OK)
    tr("  stats: loaded %d, arena_rows %lld\n", s.loaded, (long long)s.arena_rows);
  FZ_CHECK(st == RSN_OK, "stats: %s: %s", rsn_status_name(st), rsn_errmsg(R->db));
  if (s.loaded && R->m.loaded) {
    int want = count_searchable(&R->m, rsn_db_dim(R->db));
    FZ_CHECK(s.arena_rows == want, "arena_rows %lld, model %d",
             (long long)s.arena_rows, want);
  }
}

static void op_other(run *R, fz_in *in, int del) {
  if (R->m.in_txn) return; /* it would wait for our write lock */
  if (!R->other) {
    rsn_open_opts o;
    rsn_open_opts_init(&o);
    o.flags = RSN_OPEN_NOLOAD;
    rsn_status st = rsn_open(path, &o, &R->other);
    tr("  other: open (NOLOAD): %s\n", rsn_status_name(st));
    FZ_CHECK(st == RSN_OK, "second open: %s: %s", rsn_status_name(st),
             rsn_errmsg(NULL));
  }
  if (del) op_delete(R, in, R->other, 0);
  else op_upsert(R, in, R->other, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  static run R;
  memset(&R, 0, sizeof R);
  for (int i = 0; i < NIDS; i++) R.m.file[i].title = R.m.txn[i].title =
      R.m.arena[i].title = -1;
  uint8_t hdr = fz_u8(&in);
  uint32_t base = 1 + fz_u8(&in) % 24;
  static const unsigned isas[] = {RSN_ISA_ALL, RSN_ISA_SCALAR, RSN_ISA_SIMDE,
                                  RSN_ISA_AVX2};
  if (rsn_isa_restrict(isas[(hdr >> 5) & 3]) != RSN_OK) rsn_isa_restrict(RSN_ISA_ALL);
  rsn_open_opts_init(&R.o);
  R.o.flags = RSN_OPEN_CREATE | (hdr & 1 ? RSN_OPEN_NOLOAD : 0) |
              (hdr & 2 ? RSN_OPEN_NO_HISTORY : 0) |
              (hdr & 4 ? RSN_OPEN_AUTO_REFRESH : 0);
  R.o.dim = hdr & 8 ? base : 0;
  R.o.tiers = hdr & 16 ? RSN_TIERS_ALL : 0;
  R.o.threads = 1;
  cleanup_files();
  R.m.flags = R.o.flags;
  R.m.rdim = R.o.dim;
  open_main(&R);

  for (int n = 0; n < MAXOPS && in.n > 0; n++) {
    uint8_t op = fz_u8(&in);
    if (trace)
      fprintf(stderr, "op %d: %u (in_txn %d, loaded %d, dim %u)\n", n, op % 16,
              R.m.in_txn, R.m.loaded, rsn_db_dim(R.db));
    switch (op % 16) {
      case 0: case 1: case 2: op_upsert(&R, &in, R.db, 1); break;
      case 3: op_delete(&R, &in, R.db, 1); break;
      case 4: op_txn(&R, 0); break;
      case 5: op_txn(&R, 1); break;
      case 6: op_txn(&R, 2); break;
      case 7: case 8: op_search(&R, &in, 0); break;
      case 9: op_search(&R, &in, 1); break;
      case 10: op_like(&R, &in); break;
      case 11: op_get(&R, &in); break;
      case 12: op_refresh(&R); break;
      case 13: op_other(&R, &in, fz_u8(&in) % 3 == 0); break;
      case 14: op_meta(&R, &in); break;
      case 15:
        if (op & 0x10) {
          op_stats(&R);
        } else { /* reopen: an open transaction is rolled back */
          tr("  close\n");
          rsn_close(R.db);
          R.db = NULL;
          if (R.m.in_txn) memcpy(R.m.txn, R.m.file, sizeof R.m.txn);
          open_main(&R);
        }
        break;
    }
    /* The handle's dimension is unknown or the one the file (or its open
     * transaction) records. */
    uint32_t h = rsn_db_dim(R.db), f = R.m.in_txn ? R.m.tdim : R.m.rdim;
    FZ_CHECK(h == 0 || h == f, "handle dim %u, the %s records %u", h,
             R.m.in_txn ? "transaction" : "file", f);
  }
  rsn_check_report rep;
  rsn_status st = rsn_check(R.db, &rep);
  FZ_CHECK(st == RSN_OK && rep.integrity_ok, "check: %s, integrity '%s'",
           rsn_status_name(st), rep.integrity);
  /* Every vector in the file has the recorded dimension and is valid (the
   * check runs on the writer connection, inside an open transaction). */
  const row *rows = R.m.in_txn ? R.m.txn : R.m.file;
  int64_t vecs = 0;
  for (int i = 0; i < NIDS; i++) vecs += rows[i].present && rows[i].dim;
  FZ_CHECK(rep.vectors.rows == vecs && rep.vectors.valid == vecs &&
               rep.vectors.ndims <= 1,
           "check: %lld rows, %lld valid, %zu dimensions; the model has %lld",
           (long long)rep.vectors.rows, (long long)rep.vectors.valid,
           rep.vectors.ndims, (long long)vecs);
  /* The main handle first: closing the other one writes (it drops its
   * change-log cursor) and would wait out the busy timeout behind an open
   * transaction of the main one. */
  rsn_close(R.db);
  rsn_close(R.other);
  cleanup_files();
  return 0;
}
