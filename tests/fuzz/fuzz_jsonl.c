/*
 * fuzz_jsonl.c -- libFuzzer target for the JSON Lines import parser
 * (tools/cli_import.c): the input is the file, read line by line with
 * cli_jsonl_read (getline on a memory stream, byte-order mark dropped) and
 * parsed with cli_jsonl_parse, the two calls `resonance import` makes
 * before it stores a node.
 *
 * Checks: each line is blank, bad with a reason, or a node with a non-empty
 * id, an embedding of 1..RSN_MAX_DIM floats (or none) and string fields
 * that can be read; "meta" was serialised to JSON that parses back; the
 * blob check the import runs next accepts or names every embedding; and a
 * numeric id's text reads back as the number.
 */
#include <math.h>

#include "cli.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  json_object_seed(0); /* as import_jsonl does before any parse */
  return 0;
}

static void check_line(const cli_jsonl_line *L) {
  if (L->blank) return;
  if (L->bad) {
    FZ_CHECK(L->why[0] != '\0', "line %llu is bad without a reason",
             (unsigned long long)L->lineno);
    return;
  }
  const rsn_node *n = &L->n;
  FZ_CHECK(n->id && n->id[0], "a good line without an id");
  const char *fields[] = {n->type, n->title, n->domain, n->layer,
                          n->hash, n->meta,  n->date,   n->summary};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (fields[i]) (void)strlen(fields[i]);
  if (n->meta) {
    json_t *back = json_loads(n->meta, JSON_DECODE_ANY, NULL);
    FZ_CHECK(back != NULL, "meta '%s' does not parse back", n->meta);
    json_decref(back);
  }
  json_t *id = json_object_get(L->obj, "id");
  if (json_is_number(id)) {
    char *end;
    double d = strtod(n->id, &end);
    FZ_CHECK(*end == '\0' && d == json_number_value(id),
             "numeric id %.17g became '%s'", json_number_value(id), n->id);
  }
  if (n->embedding) {
    FZ_CHECK(n->dim >= 1 && n->dim <= RSN_MAX_DIM, "dimension %u", n->dim);
    json_t *e = json_object_get(L->obj, "embedding");
    FZ_CHECK(json_array_size(e) == n->dim, "%u floats from %zu elements",
             n->dim, json_array_size(e));
    int finite = 1;
    for (uint32_t i = 0; i < n->dim; i++) {
      finite &= isfinite(n->embedding[i]);
      FZ_CHECK(n->embedding[i] == (float)json_number_value(json_array_get(e, i)) ||
                   isnan(n->embedding[i]),
               "element %u differs", i);
    }
    rsn_blob_verdict v = rsn_fafcas_check(n->embedding, (size_t)n->dim * 4, 0, NULL);
    FZ_CHECK(finite == (v != RSN_BLOB_NONFINITE), "verdict %s for %s floats",
             rsn_blob_verdict_name(v), finite ? "finite" : "non-finite");
  } else {
    FZ_CHECK(n->dim == 0, "dimension %u without an embedding", n->dim);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  FILE *in = fmemopen((void *)data, size, "r");
  if (!in) return 0;
  cli_jsonl_line L;
  memset(&L, 0, sizeof L);
  uint64_t lineno = 0;
  while (cli_jsonl_read(in, &L, lineno + 1) == 0) {
    lineno++;
    FZ_CHECK(L.len <= size, "line of %zu bytes in %zu", L.len, size);
    cli_jsonl_parse(&L);
    check_line(&L);
    cli_jsonl_release(&L);
  }
  FZ_CHECK(!ferror(in), "read error on a memory stream");
  fclose(in);
  free(L.text);
  free(L.b.vec);
  return 0;
}
