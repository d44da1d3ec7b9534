/*
 * cols.c -- the arena's in-memory filter columns and their dictionaries.
 * Layout and meaning are in cols.h.
 */
#define _GNU_SOURCE
#include "cols.h"

#include <string.h>

/* FNV-1a over the value's bytes, never 0. */
static uint32_t hash_val(const char *s, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h ? h : 1u;
}

/* ---- per-slot arrays --------------------------------------------------------- */

rsn_status rsn__cols_reserve(rsn_cols *c, size_t live, size_t cap) {
  if (cap <= c->cap) return RSN_OK;
  void *fresh[RSN_NDICT + 1] = {NULL};
  for (int k = 0; k <= RSN_NDICT; k++) {
    size_t width = k < RSN_NDICT ? sizeof(uint32_t) : sizeof(int64_t);
    fresh[k] = rsn__malloc(cap * width);
    if (!fresh[k]) {
      for (int j = 0; j < k; j++) rsn__free(fresh[j]);
      return rsn__err(RSN_E_NOMEM, "arena: cannot grow the filter columns to %zu rows", cap);
    }
    void *old = k < RSN_NDICT ? (void *)c->code[k] : (void *)c->date;
    if (live) memcpy(fresh[k], old, live * width);
  }
  for (int k = 0; k < RSN_NDICT; k++) {
    rsn__free(c->code[k]);
    c->code[k] = fresh[k];
  }
  rsn__free(c->date);
  c->date = fresh[RSN_NDICT];
  c->cap = cap;
  return RSN_OK;
}

static void dict_free(rsn_dict *d) {
  for (uint32_t i = 0; i < d->n; i++) rsn__free(d->str[i]);
  rsn__free(d->str);
  rsn__free(d->map);
  memset(d, 0, sizeof *d);
}

void rsn__cols_free(rsn_cols *c) {
  if (!c) return;
  for (int k = 0; k < RSN_NDICT; k++) {
    rsn__free(c->code[k]);
    dict_free(&c->dict[k]);
  }
  rsn__free(c->date);
  memset(c, 0, sizeof *c);
}

size_t rsn__cols_bytes(const rsn_cols *c) {
  size_t b = c->cap * (RSN_NDICT * sizeof(uint32_t) + sizeof(int64_t));
  for (int k = 0; k < RSN_NDICT; k++) {
    const rsn_dict *d = &c->dict[k];
    b += d->cap * sizeof *d->str + d->map_cap * sizeof *d->map;
    for (uint32_t i = 0; i < d->n; i++) b += strlen(d->str[i]) + 1;
  }
  return b;
}

/* ---- dictionaries ---------------------------------------------------------- */

/* Map index of value s: its entry, or the empty entry where it belongs. */
static uint32_t dict_probe(const rsn_dict *d, const char *s, size_t len, uint32_t h) {
  uint32_t mask = d->map_cap - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t code = d->map[i];
    if (!code) return i;
    const char *v = d->str[code - 1];
    if (strncmp(v, s, len) == 0 && v[len] == '\0') return i;
  }
}

uint32_t rsn__dict_find(const rsn_dict *d, const char *s, size_t len) {
  if (!d->map_cap || !s) return 0;
  return d->map[dict_probe(d, s, len, hash_val(s, len))];
}

static rsn_status dict_grow_map(rsn_dict *d) {
  uint32_t cap = d->map_cap ? d->map_cap * 2 : 16;
  uint32_t *m = rsn__calloc(cap, sizeof *m);
  if (!m) return rsn__err(RSN_E_NOMEM, "arena: cannot grow a filter dictionary");
  for (uint32_t code = 1; code <= d->n; code++) {
    const char *v = d->str[code - 1];
    uint32_t i = hash_val(v, strlen(v)) & (cap - 1);
    while (m[i]) i = (i + 1) & (cap - 1);
    m[i] = code;
  }
  rsn__free(d->map);
  d->map = m;
  d->map_cap = cap;
  return RSN_OK;
}

/* The code of s (len bytes), added when new.  A value holding a NUL byte
 * is kept up to it (SQLite's text of such a value ends there too). */
static rsn_status dict_intern(rsn_dict *d, const char *s, size_t len, uint32_t *code) {
  *code = 0;
  if (!s) return RSN_OK;
  const char *nul = memchr(s, '\0', len);
  if (nul) len = (size_t)(nul - s);
  if ((d->n + 1) * 2 > d->map_cap) {
    if (d->n == UINT32_MAX - 1)
      return rsn__err(RSN_E_LIMIT, "arena: more than %u distinct values in a filter column",
                      UINT32_MAX - 1);
    rsn_status st = dict_grow_map(d);
    if (st) return st;
  }
  uint32_t h = hash_val(s, len), i = dict_probe(d, s, len, h);
  if (d->map[i]) {
    *code = d->map[i];
    return RSN_OK;
  }
  if (d->n == d->cap) {
    uint32_t cap = d->cap ? d->cap * 2 : 16;
    char **str = rsn__realloc(d->str, cap * sizeof *str);
    if (!str) return rsn__err(RSN_E_NOMEM, "arena: cannot grow a filter dictionary");
    d->str = str;
    d->cap = cap;
  }
  char *copy = rsn__malloc(len + 1);
  if (!copy) return rsn__err(RSN_E_NOMEM, "arena: cannot store a filter value");
  memcpy(copy, s, len);
  copy[len] = '\0';
  d->str[d->n++] = copy;
  d->map[i] = d->n;
  *code = d->n;
  return RSN_OK;
}

/* ---- rows ------------------------------------------------------------------ */

rsn_status rsn__cols_set(rsn_cols *c, size_t slot, const rsn_colvals *v) {
  assert(slot < c->cap);
  uint32_t code[RSN_NDICT];
  for (int k = 0; k < RSN_NDICT; k++) {
    rsn_status st = dict_intern(&c->dict[k], v->v[k], v->len[k], &code[k]);
    if (st) return st; /* values interned so far stay: harmless */
  }
  for (int k = 0; k < RSN_NDICT; k++) c->code[k][slot] = code[k];
  c->date[slot] = rsn__date_key(v->v[RSN_NDICT], v->len[RSN_NDICT]);
  return RSN_OK;
}

void rsn__cols_move(rsn_cols *c, size_t from, size_t to) {
  for (int k = 0; k < RSN_NDICT; k++) c->code[k][to] = c->code[k][from];
  c->date[to] = c->date[from];
}

rsn_status rsn__cols_copy(rsn_cols *dst, size_t dst_slot, const rsn_cols *src,
                          size_t src_slot, size_t n) {
  assert(dst_slot + n <= dst->cap && src_slot + n <= src->cap);
  for (int k = 0; k < RSN_NDICT; k++) {
    const rsn_dict *sd = &src->dict[k];
    /* src's code -> dst's code, for every value src knows (few). */
    uint32_t *remap = rsn__malloc((sd->n + 1) * sizeof *remap);
    if (!remap) return rsn__err(RSN_E_NOMEM, "arena: cannot merge filter dictionaries");
    remap[0] = 0;
    for (uint32_t code = 1; code <= sd->n; code++) {
      const char *v = sd->str[code - 1];
      rsn_status st = dict_intern(&dst->dict[k], v, strlen(v), &remap[code]);
      if (st) {
        rsn__free(remap);
        return st;
      }
    }
    const uint32_t *from = src->code[k] + src_slot;
    uint32_t *to = dst->code[k] + dst_slot;
    for (size_t i = 0; i < n; i++) to[i] = remap[from[i]];
    rsn__free(remap);
  }
  memcpy(dst->date + dst_slot, src->date + src_slot, n * sizeof *dst->date);
  return RSN_OK;
}

/* ---- dates ----------------------------------------------------------------- */

/* Parse exactly `n` decimal digits at s[*i]; -1 if they are not there. */
static int64_t digits(const char *s, size_t len, size_t *i, int n) {
  int64_t v = 0;
  for (int k = 0; k < n; k++, (*i)++) {
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
    v = v * 10 + (s[*i] - '0');
  }
  return v;
}

int64_t rsn__date_key(const char *s, size_t len) {
  if (!s || !len) return RSN_DATE_NONE;
  /* Fields: year, month, day, hour, minute, second, millisecond, each
   * shifted into its own decimal place of the key. */
  static const int64_t scale[7] = {10000000000000LL, 100000000000LL, 1000000000LL,
                                   10000000LL, 100000LL, 1000LL, 1LL};
  static const int64_t maxv[7] = {9999, 12, 31, 24, 59, 60, 999};
  int64_t f[7] = {0};
  size_t i = 0;
  if ((f[0] = digits(s, len, &i, 4)) < 0) return RSN_DATE_NONE;
  int field = 1;
  /* -MM, -DD */
  for (; field <= 2 && i < len && s[i] == '-'; field++) {
    i++;
    if ((f[field] = digits(s, len, &i, 2)) < 0) return RSN_DATE_NONE;
  }
  if (field == 3 && i < len && (s[i] == 'T' || s[i] == ' ')) {
    i++;
    if ((f[3] = digits(s, len, &i, 2)) < 0) return RSN_DATE_NONE;
    if (i >= len || s[i] != ':') return RSN_DATE_NONE;
    i++;
    if ((f[4] = digits(s, len, &i, 2)) < 0) return RSN_DATE_NONE;
    if (i < len && s[i] == ':') {
      i++;
      if ((f[5] = digits(s, len, &i, 2)) < 0) return RSN_DATE_NONE;
      if (i < len && s[i] == '.') {
        i++;
        int nd = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
          if (nd < 3) f[6] = f[6] * 10 + (s[i] - '0');
        if (nd == 0) return RSN_DATE_NONE;
        for (; nd < 3; nd++) f[6] *= 10;
      }
    }
    /* A zone is accepted and ignored. */
    if (i < len && s[i] == 'Z') {
      i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
      i++;
      if (digits(s, len, &i, 2) < 0) return RSN_DATE_NONE;
      if (i < len && s[i] == ':') i++;
      if (digits(s, len, &i, 2) < 0) return RSN_DATE_NONE;
    }
  }
  if (i != len) return RSN_DATE_NONE;
  int64_t key = 0;
  for (int k = 0; k < 7; k++) {
    if (f[k] > maxv[k]) return RSN_DATE_NONE;
    key += f[k] * scale[k];
  }
  return key;
}
