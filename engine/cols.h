/*
 * cols.h -- the arena's in-memory filter columns: for every slot, a
 * dictionary code for each of the app's short text columns (type, domain,
 * layer) and a sortable key for its date.
 *
 * Why in memory: the app's `nodes` table has no index on these columns, so
 * answering "type = 'note'" from SQLite reads every page of the file (about
 * 1.5 GB at 1M x 384); a compare over a million 4-byte codes is about a
 * millisecond.  The arena keeps them in step with the vectors (load, writes,
 * refresh), so a filter on them never touches SQLite.
 *
 *   code[c][slot]   0 = SQL NULL, else 1 + the index of the value in dict[c]
 *   date[slot]      rsn__date_key() of the date text, RSN_DATE_NONE for
 *                   NULL or text that is not a date
 *
 * Each arena owns its dictionaries (codes mean nothing across arenas: the
 * loader's per-thread arenas are translated when their rows are merged).
 * Not synchronised: the arena's lock covers it (engine/db_int.h).
 */
#ifndef RSN_COLS_H
#define RSN_COLS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* The dictionary-coded columns, in the order of storage's scan
 * (rsn_store_col): type, domain, layer. */
#define RSN_NDICT 3
#define RSN_DATE_NONE INT64_MIN

/* Distinct values of one column: str[code - 1] is the value of code. */
typedef struct rsn_dict {
  char **str;        /* owned NUL-terminated copies                        */
  uint32_t n, cap;   /* codes in use / capacity of str                     */
  uint32_t *map;     /* open addressing on the value's hash: code, 0 empty */
  uint32_t map_cap;  /* power of two, or 0                                 */
} rsn_dict;

typedef struct rsn_cols {
  uint32_t *code[RSN_NDICT]; /* per slot, capacity cap                     */
  int64_t *date;             /* per slot, capacity cap                     */
  size_t cap;                /* slots the arrays hold                      */
  rsn_dict dict[RSN_NDICT];  /* the values behind the codes                */
} rsn_cols;

/* The column values of one row as text (NULL = SQL NULL), with lengths:
 * type, domain, layer, date. */
typedef struct rsn_colvals {
  const char *v[RSN_NDICT + 1];
  size_t len[RSN_NDICT + 1];
} rsn_colvals;

/* Grow the per-slot arrays to hold `cap` slots, keeping the first `live`
 * (E_NOMEM leaves them as they were).  Dictionaries are untouched. */
RSN_INTERNAL rsn_status rsn__cols_reserve(rsn_cols *c, size_t live, size_t cap);
/* Free arrays and dictionaries; the struct is zeroed.  Accepts zeroed. */
RSN_INTERNAL void rsn__cols_free(rsn_cols *c);
/* Bytes held by the arrays and dictionaries. */
RSN_INTERNAL size_t rsn__cols_bytes(const rsn_cols *c);

/* Set slot's values (interning new ones).  E_NOMEM leaves the slot as it
 * was. */
RSN_INTERNAL rsn_status rsn__cols_set(rsn_cols *c, size_t slot, const rsn_colvals *v);
/* The slot gets the values of another (a swap-remove's move). */
RSN_INTERNAL void rsn__cols_move(rsn_cols *c, size_t from, size_t to);
/* Copy n slots of src (from src_slot) to dst (from dst_slot), translating
 * src's codes into dst's dictionaries (interning as needed). */
RSN_INTERNAL rsn_status rsn__cols_copy(rsn_cols *dst, size_t dst_slot, const rsn_cols *src,
                                       size_t src_slot, size_t n);

/* The code of a value in dict (0 if the value does not occur). */
RSN_INTERNAL uint32_t rsn__dict_find(const rsn_dict *d, const char *s, size_t len);

/* A date's sortable key: "YYYY", "YYYY-MM", "YYYY-MM-DD", optionally
 * followed by "T" or " " and "hh:mm", "hh:mm:ss" or "hh:mm:ss.fff..."
 * (more fraction digits are ignored), then optionally "Z" or "+hh:mm" /
 * "-hh:mm" (ignored: the key orders dates as written, which is how the
 * app's ISO strings compare in SQL).  Missing parts count as zero, so
 * "2026-03" sorts before "2026-03-01".  RSN_DATE_NONE for NULL, empty text
 * or anything else. */
RSN_INTERNAL int64_t rsn__date_key(const char *s, size_t len);

#endif /* RSN_COLS_H */
