/*
 * progress.c -- the handle's progress callback, and the guard that keeps a
 * call from inside it from waiting for itself.
 *
 * The callback runs on the thread that asked for a load while load_mu is
 * held (db_int.h); a call on the same handle from inside it would wait for
 * load_mu forever.  A thread-local pointer marks the handle whose callback
 * the thread is running, and every entry point refuses such a call with
 * E_STATE (RSN_DB_ENTER).  Leaf module: it calls nothing else of engine/.
 */
#define _GNU_SOURCE
#include "db_int.h"

/* The handle whose progress callback the calling thread is running. */
static _Thread_local const rsn_db *tl_in_callback;

rsn_status rsn__progress_busy(const rsn_db *db) {
  if (db && tl_in_callback == db)
    return rsn__err(RSN_E_STATE, "called from the handle's progress callback: "
                    "the handle is busy with the load that reports progress");
  return RSN_OK;
}

void rsn__progress_report(rsn_db *db, const char *phase, uint64_t done, uint64_t total) {
  if (!db->progress) return;
  const rsn_db *outer = tl_in_callback;
  tl_in_callback = db;
  db->progress(db->progress_ctx, phase, done, total);
  tl_in_callback = outer;
}

/* Entry check of every call on a handle: db present, not re-entered from
 * its progress callback. */
