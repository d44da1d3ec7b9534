/*
 * acc.c -- the result accumulator (store_int.h): rsn_store_get, _list and
 * _edges return arrays of structs whose strings and floats share the
 * array's allocation, so the caller frees the whole result with one call
 * (rsn_nodes_free, rsn_edges_free).  Rows are gathered here first, then
 * copied behind the struct array in one block.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <string.h>

/* Grow a's data so `more` bytes fit after aligning len to `align`. */
static rsn_status acc_reserve(rsn_store_acc *a, size_t more, size_t align,
                              size_t *off) {
  size_t start = (a->len + align - 1) & ~(align - 1);
  if (start + more > a->cap) {
    size_t cap = a->cap ? a->cap : 256;
    while (cap < start + more) cap *= 2;
    char *d = rsn__realloc(a->data, cap);
    if (!d) return rsn__err(RSN_E_NOMEM, "out of memory building a result "
                            "(%zu bytes)", cap);
    a->data = d;
    a->cap = cap;
  }
  *off = start;
  a->len = start + more;
  return RSN_OK;
}

rsn_status rsn__store_acc_row(rsn_store_acc *a, rsn_store_acc_row **row) {
  if (a->n == a->cap_rows) {
    size_t cap = a->cap_rows ? a->cap_rows * 2 : 16;
    rsn_store_acc_row *r = rsn__realloc(a->rows, cap * sizeof *r);
    if (!r) return rsn__err(RSN_E_NOMEM, "out of memory building a result "
                            "(%zu rows)", cap);
    a->rows = r;
    a->cap_rows = cap;
  }
  *row = &a->rows[a->n++];
  memset(*row, 0, sizeof **row);
  return RSN_OK;
}

rsn_status rsn__store_acc_text(rsn_store_acc *a, rsn_store_acc_row *row,
                               int field, sqlite3_stmt *st, int col) {
  const unsigned char *t;
  size_t n, off = 0;
  rsn_status s;
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return RSN_OK;
  t = sqlite3_column_text(st, col);
  n = (size_t)sqlite3_column_bytes(st, col);
  if (!t) return rsn__err(RSN_E_NOMEM, "out of memory reading a column");
  s = acc_reserve(a, n + 1, 1, &off);
  if (s != RSN_OK) return s;
  memcpy(a->data + off, t, n);
  a->data[off + n] = '\0';
  row->off[field] = off + 1;
  return RSN_OK;
}

rsn_status rsn__store_acc_floats(rsn_store_acc *a, rsn_store_acc_row *row,
                                 sqlite3_stmt *st, int col) {
  const void *b;
  size_t n, off = 0;
  rsn_status s;
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return RSN_OK;
  b = sqlite3_column_blob(st, col);
  n = (size_t)sqlite3_column_bytes(st, col) / 4;
  if (n == 0) return RSN_OK; /* empty (or < 4 bytes): nothing to return */
  if (!b) return rsn__err(RSN_E_NOMEM, "out of memory reading a blob");
  s = acc_reserve(a, n * 4, sizeof(float), &off);
  if (s != RSN_OK) return s;
  rsn__store_le_to_f32((float *)(void *)(a->data + off), b, n);
  row->off[RSN_STORE_ACC_FLOATS] = off + 1;
  row->dim = (uint32_t)n;
  return RSN_OK;
}

void *rsn__store_acc_block(const rsn_store_acc *a, size_t size,
                           char **data_out) {
  size_t head = a->n * size; /* a multiple of the struct's alignment */
  char *p = rsn__malloc(head + a->len);
  *data_out = NULL;
  if (!p) {
    rsn__err(RSN_E_NOMEM, "out of memory returning %zu rows (%zu bytes)", a->n,
             head + a->len);
    return NULL;
  }
  if (a->len) memcpy(p + head, a->data, a->len);
  *data_out = p + head;
  return p;
}

void rsn__store_acc_free(rsn_store_acc *a) {
  rsn__free(a->data);
  rsn__free(a->rows);
  memset(a, 0, sizeof *a);
}
