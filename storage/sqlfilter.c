/*
 * sqlfilter.c -- SQL filter conditions: the ids of the nodes that
 *
 *   SELECT id FROM nodes WHERE (
 *   <where>
 *   )
 *
 * selects, for the engine's fixed templates (meta paths, graph
 * neighbourhoods) and for a trusted caller's raw clause.  The contract is
 * in store.h ("filter queries").  The clause stands on lines of its own,
 * so a trailing "-- comment" cannot swallow the closing parenthesis.
 *
 * Each call prepares and finalizes its statement: clauses and templates
 * vary from call to call, so the statement cache would only churn.
 *
 * A raw clause is compiled under an authorizer (authorize below) that lets
 * it read the tables nodes and edges and nothing else.  What SQLite 3.40
 * reports while compiling such a clause, found by logging every callback:
 *
 *   SELECT, RECURSIVE        each SELECT; a recursive CTE (its name comes
 *                            as the fourth argument)
 *   READ nodes <column>      columns read; "" when a table is named but no
 *   READ edges <column>      column is read, with the database then NULL
 *                            instead of "main"
 *   READ json_each value     json_each/json_tree are eponymous virtual
 *   READ json_tree ""        tables: read like tables under their own name
 *   FUNCTION - <name>        each function called (json_valid, like, ...)
 *
 * Reading a CTE's own name (FROM r) reports nothing.  pragma_table_info and
 * the other pragma functions are tables too (READ pragma_table_info "",
 * no PRAGMA action), so the table check refuses them; so it does
 * sqlite_master, rsn_meta, rsn_changes and every other table.
 *
 * The first use of an eponymous virtual table on a connection declares it
 * (sqlite3_declare_vtab), and SQLite 3.40 compiles, and throws away, the
 * schema-table update of that declaration: the authorizer sees UPDATE
 * sqlite_master type, name, tbl_name, rootpage, sql and then READ
 * sqlite_master ROWID.  Refusing them makes json_each fail for the
 * connection's lifetime ("vtable constructor failed").  The code is never
 * run and a SELECT cannot update anything, so the authorizer allows those
 * updates and the one rowid read right after the update of sql; later
 * SQLite versions skip that compilation and report neither.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Clauses in messages are cut to this many bytes. */
#define CLAUSE_SHOWN 200

static const char sql_head[] = "SELECT id FROM nodes WHERE (\n";
static const char sql_foot[] = "\n)";

/* The authorizer's state, on the stack of rsn_store_select_ids. */
typedef struct guard {
  int raw;       /* 1: a raw clause, checked                              */
  int armed;     /* 1: check now (raw, and not inside the caller's fn)    */
  int declaring; /* 1: the last callback was the update of sqlite_master.sql
                    in a virtual-table declaration                        */
  char why[160]; /* the first refusal, for the message ("" if none)       */
} guard;

/* ---- the authorizer ------------------------------------------------------ */

/* Tables a raw clause may read (json_each and json_tree are table-valued
 * functions, read as tables). */
static const char *const readable[] = {"nodes", "edges", "json_each",
                                       "json_tree"};
/* Functions refused although ordinary: load_extension loads code (it is
 * off on our connections anyway) and fts3_tokenizer with two arguments
 * installs a C pointer (Debian builds SQLite with
 * SQLITE_ENABLE_FTS3_TOKENIZER). */
static const char *const unsafe_fns[] = {"load_extension", "fts3_tokenizer"};
/* The columns a virtual-table declaration's update of the schema table
 * reports (see the file comment). */
static const char *const decl_cols[] = {"type", "name", "tbl_name",
                                        "rootpage", "sql"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; name && i < n; i++)
    if (sqlite3_stricmp(name, list[i]) == 0) return 1;
  return 0;
}

/* Record the first refusal and deny. */
static int refuse(guard *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int refuse(guard *g, const char *fmt, ...) {
  if (!g->why[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, sizeof g->why, fmt, ap);
    va_end(ap);
  }
  return SQLITE_DENY;
}

/* The main database, or none named (a table read without a column). */
static int main_db(const char *db) { return !db || strcmp(db, "main") == 0; }

static int is_schema_table(const char *t) {
  return t && (sqlite3_stricmp(t, "sqlite_master") == 0 ||
               sqlite3_stricmp(t, "sqlite_schema") == 0);
}

/* The callbacks of a virtual table's declaration (file comment): updates
 * of the schema table's five columns, then, right after the one of sql,
 * the read of its rowid.  Sets g->declaring after the update of sql. */
static int declaration(guard *g, int action, const char *table,
                       const char *col, const char *db, const char *inner,
                       int declaring) {
  if (inner || !db || strcmp(db, "main") != 0 || !is_schema_table(table))
    return 0;
  if (action == SQLITE_READ)
    return declaring && col && sqlite3_stricmp(col, "ROWID") == 0;
  if (action != SQLITE_UPDATE || !in_list(col, decl_cols, COUNT(decl_cols)))
    return 0;
  g->declaring = strcmp(col, "sql") == 0;
  return 1;
}

/* SQLITE_OK for what a raw clause may do (file comment), SQLITE_DENY for
 * the rest, recording why.  Allows everything while not armed: the
 * caller's fn runs between steps and may prepare statements of its own. */
static int authorize(void *ctx, int action, const char *a1, const char *a2,
                     const char *db, const char *inner) {
  guard *g = ctx;
  int declaring = g->declaring;
  g->declaring = 0;
  if (!g->armed) return SQLITE_OK;
  if (declaration(g, action, a1, a2, db, inner, declaring)) return SQLITE_OK;
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_READ:
      if (main_db(db) && in_list(a1, readable, COUNT(readable)))
        return SQLITE_OK;
      return refuse(g, "it may read nodes and edges only, not %s%s%s",
                    db && strcmp(db, "main") ? db : "",
                    db && strcmp(db, "main") ? "." : "", a1 ? a1 : "?");
    case SQLITE_FUNCTION:
      if (a2 && !in_list(a2, unsafe_fns, COUNT(unsafe_fns))) return SQLITE_OK;
      return refuse(g, "it may not call %s()", a2 ? a2 : "?");
    case SQLITE_PRAGMA:
      return refuse(g, "it may not run PRAGMA %s", a1 ? a1 : "?");
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return refuse(g, "it may not attach or detach databases");
    default:
      return refuse(g, "it may only read (SQLite authorizer action %d on "
                    "%s)", action, a1 ? a1 : "-");
  }
}

/* ---- the statement ------------------------------------------------------- */

/* The failure rc of the clause `where` as a status with a message:
 * "filter clause <verb> (<path>): <SQLite's message> [<code>] (<why>) in:
 * <clause>".  Busy keeps E_BUSY and says how long it waited. */
static rsn_status clause_err(rsn_store *s, int rc, const char *verb,
                             const char *where, const guard *g) {
  rsn_status st = rsn__store_status(rc);
  const char *more = strlen(where) > CLAUSE_SHOWN ? "..." : "";
  if (st == RSN_OK) st = RSN_E_SQL; /* called on a failure by contract */
  if (st == RSN_E_BUSY)
    return rsn__err(st, "filter clause %s (%s): %s [%s] after waiting %d ms "
                    "for the lock in: %.*s%s", verb, s->path,
                    sqlite3_errmsg(s->db), sqlite3_errstr(rc),
                    RSN_STORE_BUSY_MS, CLAUSE_SHOWN, where, more);
  return rsn__err(st, "filter clause %s (%s): %s [%s]%s%s%s in: %.*s%s",
                  verb, s->path, sqlite3_errmsg(s->db), sqlite3_errstr(rc),
                  g->why[0] ? " (" : "", g->why, g->why[0] ? ")" : "",
                  CLAUSE_SHOWN, where, more);
}

/* 1 if p holds nothing but white space. */
static int blank(const char *p) {
  while (*p && isspace((unsigned char)*p)) p++;
  return *p == '\0';
}

/* Prepare sql (the wrapped clause `where`) into *out, refusing anything
 * after the first statement: E_SQL, *out NULL. */
static rsn_status compile(rsn_store *s, const char *sql, const char *where,
                          guard *g, sqlite3_stmt **out) {
  const char *tail = NULL;
  int rc = sqlite3_prepare_v3(s->db, sql, -1, 0, out, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(*out);
    *out = NULL;
    return clause_err(s, rc, "refused", where, g);
  }
  if (*out && tail && blank(tail)) return RSN_OK;
  sqlite3_finalize(*out);
  *out = NULL;
  return rsn__err(RSN_E_SQL, "filter clause refused (%s): a second statement "
                  "follows it (\"%.40s\") in: %.*s%s", s->path,
                  tail ? tail : "", CLAUSE_SHOWN, where,
                  strlen(where) > CLAUSE_SHOWN ? "..." : "");
}

/* Bind params to ?1..?n of q.  E_INVAL when n is not the number of
 * parameters the clause takes or a type is unknown; E_LIMIT for text over
 * SQLite's length limit. */
static rsn_status bind_params(rsn_store *s, sqlite3_stmt *q,
                              const rsn_store_param *p, size_t n,
                              const char *where) {
  rsn_store_binder b = {.q = q};
  int want = sqlite3_bind_parameter_count(q);
  if (n != (size_t)want)
    return rsn__err(RSN_E_INVAL, "filter clause takes %d parameter%s, %zu "
                    "given, in: %.*s", want, want == 1 ? "" : "s", n,
                    CLAUSE_SHOWN, where);
  for (size_t i = 0; i < n; i++) {
    int k = (int)i + 1;
    switch (p[i].type) {
      case RSN_STORE_P_NULL: rsn__store_bind_null(&b, k); break;
      case RSN_STORE_P_TEXT: rsn__store_bind_text(&b, k, p[i].text); break;
      case RSN_STORE_P_INT: rsn__store_bind_int64(&b, k, p[i].i); break;
      case RSN_STORE_P_REAL: rsn__store_bind_double(&b, k, p[i].d); break;
      default:
        return rsn__err(RSN_E_INVAL, "filter clause parameter %d has unknown "
                        "type %d", k, (int)p[i].type);
    }
  }
  return rsn__store_bind_check(s, &b, "filter clause");
}

/* Step q, calling fn for each non-NULL id with the guard disarmed. */
static rsn_status run(rsn_store *s, sqlite3_stmt *q, const char *where,
                      guard *g, rsn_store_id_fn fn, void *ctx) {
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (sqlite3_column_type(q, 0) == SQLITE_NULL) continue;
    const char *id = (const char *)sqlite3_column_text(q, 0);
    if (!id)
      return rsn__err(RSN_E_NOMEM, "filter clause (%s): out of memory reading "
                      "an id", s->path);
    size_t len = (size_t)sqlite3_column_bytes(q, 0);
    g->armed = 0;
    int stop = fn(ctx, id, len);
    g->armed = g->raw;
    if (stop) return (rsn_status)stop;
  }
  return rc == SQLITE_DONE ? RSN_OK : clause_err(s, rc, "failed", where, g);
}

/* The clause between sql_head and sql_foot, rsn__malloc'ed; NULL when out
 * of memory. */
static char *wrap(const char *where) {
  size_t hn = sizeof sql_head - 1, wn = strlen(where);
  char *sql = rsn__malloc(hn + wn + sizeof sql_foot);
  if (!sql) return NULL;
  memcpy(sql, sql_head, hn);
  memcpy(sql + hn, where, wn);
  memcpy(sql + hn + wn, sql_foot, sizeof sql_foot);
  return sql;
}

/* The authorizer is set before the prepare and stays set, armed, while the
 * statement runs, so a re-prepare inside sqlite3_step (after another
 * connection changed the schema) is checked too; it is disarmed while fn
 * runs and removed on every path.  Setting it expires the connection's
 * other prepared statements: each is prepared again at its next use. */
rsn_status rsn_store_select_ids(rsn_store *s, const char *where,
                                const rsn_store_param *params, size_t nparams,
                                int raw, rsn_store_id_fn fn, void *ctx) {
  guard g = {.raw = raw != 0, .armed = raw != 0};
  sqlite3_stmt *q = NULL;
  char *sql = NULL;
  rsn_status st;
  if (!s || !where || !fn || (nparams && !params))
    return rsn__err(RSN_E_INVAL, "select_ids: NULL argument");
  if (!(sql = wrap(where)))
    return rsn__err(RSN_E_NOMEM, "filter clause: out of memory");
  if (raw) sqlite3_set_authorizer(s->db, authorize, &g);
  st = compile(s, sql, where, &g, &q);
  if (st == RSN_OK) st = bind_params(s, q, params, nparams, where);
  if (st == RSN_OK) st = run(s, q, where, &g, fn, ctx);
  sqlite3_finalize(q);
  if (raw) sqlite3_set_authorizer(s->db, NULL, NULL);
  rsn__free(sql);
  return st;
}
