/*
 * cli_graph.c -- the graph-browsing subcommands: `list` (nodes ordered by
 * id, filtered by type and domain, paged) and `edges` (the neighbours of
 * one node).  Each opens the database without loading the arena (they read
 * SQLite only), makes one library call (rsn_list, rsn_edges) and prints a
 * table for people or one JSON object for scripts (--json).
 *
 * Filter values are handed to the library as they are; it binds them as
 * SQL parameters, so quotes or SQL in a value match literally.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ID_WIDTH 22     /* bytes of an id shown in a table   */
#define SHORT_WIDTH 12  /* bytes of a type or domain         */

/* ---- list -----------------------------------------------------------------*/

/* The text columns of a listed node in JSON order (id first). */
static json_t *node_json(const rsn_node *n) {
  const char *keys[] = {"id",   "title",   "type", "domain", "layer",
                        "date", "summary", "hash", "meta"};
  const char *vals[] = {n->id,   n->title,   n->type, n->domain, n->layer,
                        n->date, n->summary, n->hash, n->meta};
  json_t *o = json_object();
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    cli_json_set_text(o, keys[i], vals[i]);
  return o;
}

static void print_list_human(const rsn_node *nodes, size_t n) {
  if (n > 0) {
    printf("%-*s %-*s %-*s %s\n", ID_WIDTH, "id", SHORT_WIDTH, "type",
           SHORT_WIDTH, "domain", "title");
    for (size_t i = 0; i < n; i++) {
      cli_print_cell(nodes[i].id, ID_WIDTH);
      cli_print_cell(nodes[i].type ? nodes[i].type : "-", SHORT_WIDTH);
      cli_print_cell(nodes[i].domain ? nodes[i].domain : "-", SHORT_WIDTH);
      printf("%s\n", nodes[i].title ? nodes[i].title : "");
    }
  }
  printf("%zu node%s\n", n, n == 1 ? "" : "s");
}

static int run_list(const cli_args *a) {
  uint64_t limit = 0, offset = 0;
  int rc = cli_opt_u64(a, "limit", 1, INT64_MAX, &limit);
  if (!rc) rc = cli_opt_u64(a, "offset", 0, INT64_MAX, &offset);
  if (rc) return rc;
  int json = cli_has(a, "json");
  rsn_list_opts o = {.domain = cli_str(a, "domain"),
                     .type = cli_str(a, "type"),
                     .limit = (int64_t)limit, /* 0: no limit */
                     .offset = (int64_t)offset,
                     /* People see type, domain and title; scripts get every
                      * text column (never the embedding). */
                     .columns = json ? RSN_COL_ALL_TEXT
                                     : RSN_COL_TYPE | RSN_COL_DOMAIN | RSN_COL_TITLE};
  rsn_db *db;
  if ((rc = cli_open_db(a->pos[0], NULL, RSN_OPEN_NOLOAD, &db)) != CLI_EXIT_OK)
    return rc;
  rsn_node *nodes = NULL;
  size_t n = 0;
  rsn_status st = rsn_list(db, &o, &nodes, &n);
  if (st != RSN_OK) {
    rc = cli_fail(db, st, "list %s", a->pos[0]);
  } else if (json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, node_json(&nodes[i]));
    cli_print_json(json_pack("{s:I, s:o}", "count", (json_int_t)n, "nodes", arr));
  } else {
    print_list_human(nodes, n);
  }
  rsn_nodes_free(nodes);
  rsn_close(db);
  return rc;
}

static const cli_opt list_opts[] = {
    {"type", 0, "T", "only nodes whose type is T (exact match)"},
    {"domain", 0, "D", "only nodes whose domain is D (exact match)"},
    {"limit", 0, "N", "at most N nodes (default: all)"},
    {"offset", 0, "N", "skip the first N nodes of the ordered list"},
    {"json", 0, NULL, "print one JSON object {count, nodes}"},
    {0},
};

const cli_cmd cli_cmd_list = {
    .name = "list", .usage = "DB",
    .summary = "list nodes by id, filtered by type and domain",
    .details = "Nodes come in id order.  Human output is a table (id, type, "
               "domain, title)\nand a count; --json gives every text column "
               "of each node (never the\nembedding), columns that are NULL "
               "left out.  No match is not an error.",
    .opts = list_opts, .min_pos = 1, .max_pos = 1, .run = run_list,
};

/* ---- edges ----------------------------------------------------------------*/

static json_t *edge_json(const rsn_edge *e) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "source", e->source,
                        "target", e->target, "type", e->type, "confidence",
                        e->confidence, "veracity", e->veracity);
  cli_json_set_text(o, "context_source", e->context_source);
  return o;
}

/* A table of the edges, each marked out (ID is the source), in (the
 * target) or self (both), then the counts. */
static void print_edges_human(const char *id, const rsn_edge *e, size_t n) {
  size_t count[3] = {0, 0, 0}; /* out, in, self */
  static const char *const mark[3] = {"out", "in", "self"};
  if (n > 0)
    printf("%-4s %-*s %-*s %-*s %10s %8s  %s\n", "dir", ID_WIDTH, "source",
           ID_WIDTH, "target", SHORT_WIDTH, "type", "confidence", "veracity",
           "context");
  for (size_t i = 0; i < n; i++) {
    int from = strcmp(e[i].source, id) == 0, to = strcmp(e[i].target, id) == 0;
    int m = from && to ? 2 : from ? 0 : 1;
    count[m]++;
    printf("%-4s ", mark[m]);
    cli_print_cell(e[i].source, ID_WIDTH);
    cli_print_cell(e[i].target, ID_WIDTH);
    cli_print_cell(e[i].type, SHORT_WIDTH);
    printf("%10.4g %8.4g  %s\n", e[i].confidence, e[i].veracity,
           e[i].context_source ? e[i].context_source : "-");
  }
  printf("%zu edge%s (%zu out, %zu in", n, n == 1 ? "" : "s", count[0], count[1]);
  if (count[2]) printf(", %zu self-loop%s", count[2], count[2] == 1 ? "" : "s");
  printf(")\n");
}

/* No edges in the direction asked: fine for a node, or for an id that
 * edges in the other direction name (edges may name nodes that do not
 * exist), but an id that is neither is most likely a typo, and says so
 * (exit 5, as `get`). */
static int check_known(rsn_db *db, const char *id, int dir) {
  rsn_node *node = NULL;
  rsn_status st = rsn_get(db, id, 0, &node);
  rsn_node_free(node);
  if (st == RSN_E_NOTFOUND && dir != RSN_EDGES_BOTH) {
    rsn_edge *e = NULL;
    size_t n = 0;
    st = rsn_edges(db, id, RSN_EDGES_BOTH, &e, &n);
    rsn_edges_free(e);
    if (st == RSN_OK && n == 0) st = RSN_E_NOTFOUND;
  }
  if (st == RSN_E_NOTFOUND)
    return cli_error(CLI_EXIT_OTHER, "edges: no node '%s', and no edge "
                     "names it", id);
  if (st != RSN_OK) return cli_fail(db, st, "edges '%s'", id);
  return CLI_EXIT_OK;
}

static int run_edges(const cli_args *a) {
  int dir;
  const char *dir_name, *id = a->pos[1];
  int rc = cli_opt_direction(a, &dir, &dir_name);
  if (rc) return rc;
  rsn_db *db;
  if ((rc = cli_open_db(a->pos[0], NULL, RSN_OPEN_NOLOAD, &db)) != CLI_EXIT_OK)
    return rc;
  rsn_edge *e = NULL;
  size_t n = 0;
  rsn_status st = rsn_edges(db, id, dir, &e, &n);
  if (st != RSN_OK) rc = cli_fail(db, st, "edges '%s'", id);
  else if (n == 0) rc = check_known(db, id, dir);
  if (rc == CLI_EXIT_OK && cli_has(a, "json")) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, edge_json(&e[i]));
    cli_print_json(json_pack("{s:s, s:s, s:I, s:o}", "id", id, "direction",
                             dir_name, "count", (json_int_t)n, "edges", arr));
  } else if (rc == CLI_EXIT_OK) {
    print_edges_human(id, e, n);
  }
  rsn_edges_free(e);
  rsn_close(db);
  return rc;
}

static const cli_opt edges_opts[] = {
    {"direction", 0, "DIR", "out (ID is the source), in (the target) or "
                            "both (default)"},
    {"json", 0, NULL, "print one JSON object {id, direction, count, edges}"},
    {0},
};

const cli_cmd cli_cmd_edges = {
    .name = "edges", .usage = "DB ID",
    .summary = "list the edges of a node: out, in or both",
    .details = "Out-edges are ordered by target then type, in-edges by source "
               "then type; both\ngives the out-edges first (a self-loop once).  "
               "Human output is a table with\nconfidence, veracity and context "
               "source.  An ID that is neither a node nor the\nend of any edge "
               "is an error (exit 5), as in `get`.",
    .opts = edges_opts, .min_pos = 2, .max_pos = 2, .run = run_edges,
};
