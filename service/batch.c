/*
 * batch.c -- the search queue of `resonance serve`, its worker threads and
 * the micro-batcher.
 *
 * An HTTP thread parses a search, suspends its connection and queues the
 * job here; a worker runs it and resumes the connection with the reply, so
 * a few HTTP threads serve many waiting searches.  At most opts.queue jobs
 * wait at once (queued or gathering); beyond that a search is answered 503
 * overloaded with Retry-After.
 *
 * Micro-batching.  Single vector searches with the same k, flags,
 * min_score, tier, oversample, filter (canonical JSON) and dimension are
 * answered together by one rsn_search_batch call (the blocked kernel:
 * each row read from memory serves every query of the group).  A worker
 * that takes such a job first takes every queued job with the same key;
 * then, if other searches are running or waiting (so more are likely to
 * come), it keeps the group open until batch_window_us after the first
 * job arrived or until batch_max jobs joined, and new jobs with that key
 * join it instead of queueing.  A lone search on an idle server runs at
 * once: the window never adds latency when there is nobody to batch with
 * (unless batch_hold asks every search to wait it: throughput over latency).
 * The library's batch and single searches give the same bits, so a
 * micro-batched answer equals the single one (tests/test_serve.c checks).
 * If the batch call fails, each job is run on its own, so every request
 * gets its own error.
 *
 * Text searches.  An HTTP thread queues a {"text": ...} search on a list of
 * its own; one of opts.embed_workers embedding threads embeds it (the
 * service may take a while, and no HTTP or search thread waits for it),
 * then queues the vector search it became like any other, so it is
 * micro-batched too.  At stop the workers wait for texts being embedded.
 */
#define _POSIX_C_SOURCE 200809L
#include "srv_int.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double srv_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int batchable(const srv_job *j) {
  return j->req->kind == SRV_Q_VECTOR && !j->req->batch && j->req->nq == 1;
}

static int same_key(const srv_search_req *a, const srv_search_req *b) {
  if (a->p.k != b->p.k || a->p.flags != b->p.flags || a->p.tier != b->p.tier ||
      a->p.oversample != b->p.oversample || a->dim != b->dim)
    return 0;
  if ((a->p.flags & RSN_SEARCH_MIN_SCORE) &&
      memcmp(&a->p.min_score, &b->p.min_score, sizeof(float)) != 0)
    return 0;
  if (!a->filter_key || !b->filter_key) return !a->filter_key && !b->filter_key;
  return strcmp(a->filter_key, b->filter_key) == 0;
}

/* Hand the reply to the connection.  The job belongs to the connection
 * again once resumed: nothing may touch it afterwards. */
static void finish(srv_job *j) {
  struct MHD_Connection *c = j->conn;
  atomic_store_explicit(&j->done, 1, memory_order_release);
  MHD_resume_connection(c);
}

static void fail_job(srv_job *j, srv_ecode c, const char *msg) {
  srv_err e;
  srv_err_set(&e, c, "%s", msg);
  j->http = e.http;
  j->retry_after = e.retry_after;
  j->body = srv_error_body(&e);
  finish(j);
}

/* n searches are past their scan: they no longer count as running.  Done
 * before their replies go out, so the client's next search does not see
 * its own previous one as "another running search" and wait a window for
 * company that is not coming. */
static void scanned(rsn_srv *s, size_t n) {
  pthread_mutex_lock(&s->q.mu);
  s->q.running -= n;
  pthread_mutex_unlock(&s->q.mu);
}

/* Run one job alone (counted in q->running until its scan is done). */
static void run_one(rsn_srv *s, srv_job *j) {
  srv_search_req *r = j->req;
  rsn_results *res = NULL;
  rsn_status st;
  if (r->kind == SRV_Q_LIKE) st = rsn_search_like(s->db, r->like, &r->p, &res);
  else if (r->batch) st = rsn_search_batch(s->db, r->vecs, r->nq, r->dim, &r->p, &res);
  else st = rsn_search(s->db, r->vecs, r->dim, &r->p, &res);
  scanned(s, 1);
  srv_job_reply(s, j, st, st ? rsn_errmsg(s->db) : NULL, res, 0, 1);
  rsn_results_free(res);
  finish(j);
}

/* Run a group of same-key single searches as one batch (if the batch call
 * fails, each runs alone to get its own error). */
static void run_group(rsn_srv *s, srv_group *g) {
  if (batchable(g->jobs[0])) srv_metrics_batch(&s->m, g->n);
  if (g->n == 1) {
    run_one(s, g->jobs[0]);
    return;
  }
  const srv_search_req *r0 = g->jobs[0]->req;
  float *qs = malloc(g->n * r0->dim * sizeof(float));
  rsn_results *res = NULL;
  rsn_status st = RSN_E_NOMEM;
  if (qs) {
    for (size_t i = 0; i < g->n; i++)
      memcpy(qs + i * r0->dim, g->jobs[i]->req->vecs, r0->dim * sizeof(float));
    st = rsn_search_batch(s->db, qs, g->n, r0->dim, &r0->p, &res);
    free(qs);
  }
  if (st != RSN_OK) {
    for (size_t i = 0; i < g->n; i++) run_one(s, g->jobs[i]);
    return;
  }
  scanned(s, g->n);
  for (size_t i = 0; i < g->n; i++) {
    srv_job_reply(s, g->jobs[i], RSN_OK, NULL, res, i, g->n);
    finish(g->jobs[i]);
  }
  rsn_results_free(res);
}

/* Move queued jobs with g's key into g (q->mu held). */
static void take_matching(srv_queue *q, srv_group *g) {
  srv_job **pp = &q->head, *prev = NULL;
  while (*pp && g->n < g->max) {
    srv_job *j = *pp;
    if (batchable(j) && same_key(j->req, g->jobs[0]->req)) {
      *pp = j->next;
      if (q->tail == j) q->tail = prev;
      j->next = NULL;
      g->jobs[g->n++] = j;
    } else {
      prev = j;
      pp = &j->next;
    }
  }
}

static void deadline_ts(double at, struct timespec *ts) {
  ts->tv_sec = (time_t)at;
  ts->tv_nsec = (long)((at - (double)ts->tv_sec) * 1e9);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* What a worker thread is given: its server and its slot in q->open. */
typedef struct srv_worker {
  rsn_srv *s;
  int slot;
} srv_worker;

static void *worker(void *arg) {
  rsn_srv *s = ((srv_worker *)arg)->s;
  int slot = ((srv_worker *)arg)->slot;
  srv_queue *q = &s->q;
  size_t max = s->o.microbatch ? s->o.batch_max : 1;
  size_t cap = sizeof((srv_group *)0)->jobs / sizeof(srv_job *);
  if (max > cap) max = cap;
  if (max < 1) max = 1;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    /* At stop, texts being embedded still come: wait for them too. */
    while (!q->head && !(q->stop && !q->thead && !q->embedding))
      pthread_cond_wait(&q->work, &q->mu);
    if (!q->head) break;
    srv_group g;
    g.n = 0;
    g.max = max;
    srv_job *j = q->head;
    q->head = j->next;
    if (!q->head) q->tail = NULL;
    j->next = NULL;
    g.jobs[g.n++] = j;
    if (batchable(j) && g.max > 1) {
      take_matching(q, &g);
      int others = q->running > 0 || q->head != NULL;
      if (g.n < g.max && (others || g.n > 1 || s->o.batch_hold) && !q->stop) {
        double until = j->t_enq + (double)s->o.batch_window_us / 1e6;
        struct timespec ts;
        deadline_ts(until, &ts);
        q->open[slot] = &g;
        while (g.n < g.max && !q->stop && srv_now() < until)
          pthread_cond_timedwait(&q->joined, &q->mu, &ts);
        q->open[slot] = NULL;
      }
    }
    q->waiting -= g.n;
    q->running += g.n;
    pthread_mutex_unlock(&q->mu);
    run_group(s, &g); /* takes the group out of q->running */
    pthread_mutex_lock(&q->mu);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* Give a counted job (q->waiting includes it) to the search workers: into
 * a gathering group with its key, else at the queue's tail (q->mu held). */
static void enqueue(srv_queue *q, srv_job *j) {
  j->t_enq = srv_now();
  if (batchable(j))
    for (int i = 0; i < q->nthreads; i++) {
      srv_group *g = q->open[i];
      if (g && g->n < g->max && same_key(g->jobs[0]->req, j->req)) {
        g->jobs[g->n++] = j;
        pthread_cond_broadcast(&q->joined);
        return;
      }
    }
  if (q->tail) q->tail->next = j;
  else q->head = j;
  q->tail = j;
  pthread_cond_signal(&q->work);
}

/* Turn a text search into a vector search: embed it (the service may take
 * a while: this is why it happens here, not on an HTTP thread).  Returns
 * 0, or 1 with *e set. */
static int embed_job(rsn_srv *s, srv_job *j, srv_err *e) {
  srv_search_req *req = j->req;
  float *v;
  if (srv_embed_text(s, req->text, &v, &req->dim, e)) return 1;
  req->vecs = v; /* owned by req from here */
  req->kind = SRV_Q_VECTOR;
  req->nq = 1;
  uint32_t dim = rsn_db_dim(s->db);
  if (dim && req->dim != dim) {
    srv_err_status(e, RSN_E_DIM, "text", NULL);
    snprintf(e->msg, sizeof e->msg, "the embedding of the text has dimension "
             "%u but the database has dimension %u", req->dim, dim);
    return 1;
  }
  return 0;
}

/* An embedding thread: takes texts, embeds them, and queues the vector
 * searches they became; exits at stop once no text is left. */
static void *embedder(void *arg) {
  rsn_srv *s = arg;
  srv_queue *q = &s->q;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (!q->thead && !q->stop) pthread_cond_wait(&q->text, &q->mu);
    srv_job *j = q->thead;
    if (!j) break;
    q->thead = j->next;
    if (!q->thead) q->ttail = NULL;
    j->next = NULL;
    q->embedding++;
    pthread_mutex_unlock(&q->mu);
    srv_err e;
    int bad = embed_job(s, j, &e);
    pthread_mutex_lock(&q->mu);
    q->embedding--;
    if (bad) {
      q->waiting--;
      pthread_cond_broadcast(&q->work); /* a stopping worker may wait on us */
      pthread_mutex_unlock(&q->mu);
      j->http = e.http;
      j->retry_after = e.retry_after;
      j->body = srv_error_body(&e);
      finish(j);
      pthread_mutex_lock(&q->mu);
    } else {
      enqueue(q, j);
      pthread_cond_broadcast(&q->work);
    }
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

int srv_queue_start(rsn_srv *s) {
  srv_queue *q = &s->q;
  pthread_condattr_t ca;
  int n = s->o.workers;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->work, NULL);
  pthread_cond_init(&q->joined, &ca);
  pthread_cond_init(&q->text, NULL);
  pthread_condattr_destroy(&ca);
  q->started = 1;
  q->open = calloc((size_t)n, sizeof *q->open);
  q->threads = calloc((size_t)n, sizeof *q->threads);
  q->workers = calloc((size_t)n, sizeof *q->workers);
  if (!q->open || !q->threads || !q->workers) return -1;
  for (int i = 0; i < n; i++) {
    q->workers[i].s = s;
    q->workers[i].slot = i;
    if (pthread_create(&q->threads[i], NULL, worker, &q->workers[i]) != 0) break;
    q->nthreads++;
  }
  if (q->nthreads != n) return -1;
  int ne = s->o.embedder ? (s->o.embed_workers > 0 ? s->o.embed_workers : 1) : 0;
  q->ethreads = ne ? calloc((size_t)ne, sizeof *q->ethreads) : NULL;
  if (ne && !q->ethreads) return -1;
  for (int i = 0; i < ne; i++) {
    if (pthread_create(&q->ethreads[i], NULL, embedder, s) != 0) break;
    q->nethreads++;
  }
  return q->nethreads == ne ? 0 : -1;
}

int srv_queue_push(rsn_srv *s, srv_job *j, srv_err *e) {
  srv_queue *q = &s->q;
  pthread_mutex_lock(&q->mu);
  if (q->stop) {
    pthread_mutex_unlock(&q->mu);
    return srv_err_set(e, SE_SHUTTING_DOWN, "the server is shutting down");
  }
  if (q->waiting >= s->o.queue) {
    size_t w = q->waiting;
    pthread_mutex_unlock(&q->mu);
    return srv_err_set(e, SE_OVERLOADED, "%zu searches are waiting, the "
                       "queue's limit (--queue %zu); retry later", w,
                       s->o.queue);
  }
  q->waiting++;
  j->next = NULL;
  if (j->req->kind == SRV_Q_TEXT) { /* first to an embedding thread */
    if (q->ttail) q->ttail->next = j;
    else q->thead = j;
    q->ttail = j;
    pthread_cond_signal(&q->text);
  } else {
    enqueue(q, j);
  }
  pthread_mutex_unlock(&q->mu);
  return 0;
}

void srv_queue_stop(rsn_srv *s, int abort) {
  srv_queue *q = &s->q;
  srv_job *cut = NULL;
  if (!q->started) return;
  pthread_mutex_lock(&q->mu);
  q->stop = 1;
  if (abort) { /* the queued searches and the texts not yet taken */
    if (q->ttail) {
      q->ttail->next = q->head;
      q->head = q->thead;
    }
    cut = q->head;
    for (srv_job *j = cut; j; j = j->next) q->waiting--;
    q->head = q->tail = q->thead = q->ttail = NULL;
  }
  pthread_cond_broadcast(&q->work);
  pthread_cond_broadcast(&q->joined);
  pthread_cond_broadcast(&q->text);
  pthread_mutex_unlock(&q->mu);
  while (cut) {
    srv_job *next = cut->next;
    fail_job(cut, SE_SHUTTING_DOWN, "the server is shutting down: this search "
             "was still queued at the drain deadline");
    cut = next;
  }
  for (int i = 0; i < q->nethreads; i++) pthread_join(q->ethreads[i], NULL);
  q->nethreads = 0;
  for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
  q->nthreads = 0;
}

void srv_queue_free(rsn_srv *s) {
  srv_queue *q = &s->q;
  if (!q->started) return;
  free(q->threads);
  free(q->ethreads);
  free(q->workers);
  free(q->open);
  pthread_cond_destroy(&q->work);
  pthread_cond_destroy(&q->joined);
  pthread_cond_destroy(&q->text);
  pthread_mutex_destroy(&q->mu);
  memset(q, 0, sizeof *q);
}

size_t srv_queue_depth(rsn_srv *s) {
  if (!s->q.started) return 0;
  pthread_mutex_lock(&s->q.mu);
  size_t n = s->q.waiting;
  pthread_mutex_unlock(&s->q.mu);
  return n;
}
