/* A user's program built against the installed resonance: creates a
 * database, writes two nodes, searches, and prints the best id. */
#include <resonance.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  rsn_open_opts o;
  rsn_open_opts_init(&o);
  o.flags = RSN_OPEN_CREATE;
  o.dim = 3;
  rsn_db *db = NULL;
  if (rsn_open(argv[1], &o, &db) != RSN_OK) {
    fprintf(stderr, "open: %s\n", rsn_errmsg(NULL));
    return 1;
  }
  const float a[3] = {1, 0, 0}, b[3] = {0, 1, 0};
  rsn_node n1 = {.id = "a", .title = "first", .embedding = a, .dim = 3};
  rsn_node n2 = {.id = "b", .title = "second", .embedding = b, .dim = 3};
  rsn_results *r = NULL;
  rsn_search_params p;
  rsn_search_params_init(&p);
  const float q[3] = {0.1f, 0.9f, 0};
  if (rsn_upsert(db, &n1) || rsn_upsert(db, &n2) || rsn_search(db, q, 3, &p, &r)) {
    fprintf(stderr, "error: %s\n", rsn_errmsg(db));
    rsn_close(db);
    return 1;
  }
  printf("best=%s title=%s count=%zu version=%s\n", r->hits[0].id, r->hits[0].title,
         r->count[0], rsn_version());
  rsn_results_free(r);
  rsn_close(db);
  return 0;
}
