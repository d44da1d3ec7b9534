/*
 * filter.h -- the inside of an rsn_filter (the public side is in
 * resonance.h, "Filters").
 *
 * A filter is an immutable tree.  Its leaves are answered in one of two
 * places:
 *
 *   in memory (fbits.c, under the arena's read lock)
 *     RSN_F_CODES  a dictionary column (type, domain, layer) against a set
 *                  of values, or NULL
 *     RSN_F_DATE   the date key in [lo, hi], or NULL
 *     RSN_F_IDS    a list of ids, through the id map
 *   in SQLite (storage/sqlfilter.c, on a read-only pooled connection,
 *   outside the arena's lock; results cached per handle)
 *     RSN_F_SQL    SELECT id FROM nodes WHERE <sql>, its values bound:
 *                  meta paths, the columns the arena does not keep, graph
 *                  neighbourhoods (a recursive CTE in the expression), and
 *                  raw WHERE clauses (`raw`: run under the authorizer)
 *
 * and combined with AND / OR / NOT as bitmaps over the arena's slots.
 * Reference-counted: combinators hold references to their children.
 */
#ifndef RSN_FILTER_H
#define RSN_FILTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "cols.h"

#define RSN_FILTER_MAX_DEPTH 32  /* nesting of parsed filters            */
#define RSN_FILTER_MAX_HOPS 16   /* graph neighbourhood radius           */

typedef enum rsn_fkind {
  RSN_F_ALL,   /* every row (an empty filter)                            */
  RSN_F_AND,   /* all kids (n-ary)                                       */
  RSN_F_OR,    /* any kid (n-ary; none: nothing)                         */
  RSN_F_NOT,   /* not kids[0]                                            */
  RSN_F_CODES, /* dictionary column `col`                                */
  RSN_F_DATE,  /* the date key                                           */
  RSN_F_IDS,   /* id list                                                */
  RSN_F_SQL    /* an expression over nodes, answered by SQLite           */
} rsn_fkind;

/* A value bound to an SQL leaf. */
typedef enum rsn_fval_type { RSN_FV_NULL, RSN_FV_TEXT, RSN_FV_INT, RSN_FV_REAL } rsn_fval_type;
typedef struct rsn_fval {
  rsn_fval_type type;
  char *text;  /* RSN_FV_TEXT, owned */
  int64_t i;   /* RSN_FV_INT         */
  double d;    /* RSN_FV_REAL        */
} rsn_fval;

/* How a CODES or DATE leaf matches. */
typedef enum rsn_fmode {
  RSN_FM_IN,     /* the value is one of vals (CODES) / in [lo, hi] (DATE) */
  RSN_FM_EXCEPT, /* set and none of vals (CODES)                          */
  RSN_FM_NULL,   /* NULL (CODES) / NULL or not a date (DATE)              */
  RSN_FM_RANGE   /* CODES: between the strings rlo and rhi (byte order)   */
} rsn_fmode;

struct rsn_filter {
  atomic_int refs;
  rsn_fkind kind;
  struct rsn_filter **kids; /* AND, OR, NOT: referenced children         */
  size_t nkids;
  rsn_fmode mode;           /* CODES, DATE                                */
  /* CODES: col 0..RSN_NDICT-1 and vals (owned strings); RANGE: rlo / rhi
   * (NULL: unbounded) with rlo_incl / rhi_incl.  IDS: vals are the ids. */
  int col;
  char **vals;
  size_t nvals;
  char *rlo, *rhi;
  int rlo_incl, rhi_incl;
  /* DATE: keys in [lo, hi]. */
  int64_t lo, hi;
  /* SQL: the expression, its values, whether it is a caller's raw clause
   * (authorizer), and the cache key (expression and values, canonical). */
  char *sql;
  rsn_fval *params;
  size_t nparams;
  int raw;
  char *key;
  /* The whole tree's canonical key (this node, then its kids' keys), made
   * on first use by rsn__filter_tree_key and published atomically: equal
   * keys select equal rows from equal data.  NULL until then. */
  _Atomic(char *) tkey;
};

/* Take one more reference (returns f). */
RSN_INTERNAL rsn_filter *rsn__filter_ref(rsn_filter *f);
/* Building trees (filter.c), shared with the parser (fparse.c).  The
 * combinator takes over the caller's references to kids (released on
 * failure); an SQL leaf gets room for np values, filled by the caller, and
 * sql_done computes its key and hands it out (freeing it on failure). */
RSN_INTERNAL rsn_filter *rsn__filter_new(rsn_fkind kind);
RSN_INTERNAL rsn_status rsn__filter_combine(rsn_fkind kind, rsn_filter **kids, size_t n,
                                            rsn_filter **out);
RSN_INTERNAL rsn_status rsn__filter_set_vals(rsn_filter *f, const char *const *v, size_t n);
RSN_INTERNAL rsn_status rsn__filter_nomem(void);
RSN_INTERNAL rsn_filter *rsn__filter_sql_leaf(const char *sql, size_t np, int raw);
RSN_INTERNAL rsn_status rsn__filter_sql_done(rsn_filter *f, rsn_filter **out);
/* The tree's canonical key (cached in f->tkey), or NULL out of memory. */
RSN_INTERNAL const char *rsn__filter_tree_key(const rsn_filter *f);

#endif /* RSN_FILTER_H */
