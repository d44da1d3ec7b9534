/*
 * srv_int.h -- what the files of service/ share (service.h has the map of
 * the files).  Internal names carry the srv_ prefix; nothing here is
 * exported from the CLI binary.
 */
#ifndef RSN_SRV_INT_H
#define RSN_SRV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "resonance.h"
#include "service.h"

/* ---- errors (route.c) ------------------------------------------------------
 * Every error a request can meet has one code and one HTTP status.  Library
 * statuses map through one table (srv_err_status); the service's own
 * errors are the SE_* below. */
typedef enum srv_ecode {
  SE_BAD_JSON,       /* 400 bad_json: not JSON, or not an object           */
  SE_WRONG_TYPE,     /* 400 wrong_type: a field of the wrong JSON type     */
  SE_MISSING,        /* 400 missing_field                                  */
  SE_UNKNOWN_FIELD,  /* 400 unknown_field                                  */
  SE_TOO_DEEP,       /* 400 too_deep: JSON nested deeper than the limit    */
  SE_BAD_PATH,       /* 400 bad_path: bad percent-encoding in the path     */
  SE_NOT_SUPPORTED,  /* 400 not_supported: a feature not in this build     */
  SE_BAD_VALUE,      /* 422 bad_value: a value out of its range            */
  SE_K_LIMIT,        /* 422 k_too_large: k above the server's limit        */
  SE_UNAUTHORIZED,   /* 401 unauthorized                                   */
  SE_NO_ROUTE,       /* 404 no_route                                       */
  SE_METHOD,         /* 405 method_not_allowed (Allow header)              */
  SE_BODY_LIMIT,     /* 413 body_too_large                                 */
  SE_BATCH_LIMIT,    /* 413 batch_too_large                                */
  SE_MEDIA,          /* 415 unsupported_media_type                         */
  SE_NOT_READY,      /* 503 not_ready: the arena is still loading          */
  SE_OVERLOADED,     /* 503 overloaded: the search queue is full           */
  SE_SHUTTING_DOWN,  /* 503 shutting_down                                  */
  SE_INTERNAL,       /* 500 internal                                       */
  SE__COUNT
} srv_ecode;

typedef struct srv_err {
  int http;          /* HTTP status                                        */
  const char *code;  /* stable error code ("dimension_mismatch")           */
  char msg[320];     /* what is wrong, naming values                       */
  int retry_after;   /* seconds for a Retry-After header, 0 = none         */
  const char *allow; /* Allow header of a 405, else NULL                   */
} srv_err;

/* Set e from a service error; returns -1 (so: return srv_err_set(...)). */
int srv_err_set(srv_err *e, srv_ecode c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set e from a library status (st != RSN_OK) with `what` and the library's
 * detail as the message; returns -1. */
int srv_err_status(srv_err *e, rsn_status st, const char *what,
                   const char *detail);
/* The HTTP status and code a library status maps to (the table). */
int srv_status_http(rsn_status st);
const char *srv_status_code(rsn_status st);
/* The code string and HTTP status of a service error. */
const char *srv_ecode_name(srv_ecode c);
int srv_ecode_http(srv_ecode c);

/* ---- routes (route.c) --------------------------------------------------- */
typedef enum srv_route {
  SRV_R_OTHER = 0,     /* no route (404) -- the metrics label "other"      */
  SRV_R_SEARCH,        /* POST /v1/search                                  */
  SRV_R_SEARCH_BATCH,  /* POST /v1/search/batch                            */
  SRV_R_NODE,          /* GET|PUT|DELETE /v1/nodes/{id}                    */
  SRV_R_NODE_EDGES,    /* GET /v1/nodes/{id}/edges                         */
  SRV_R_NODES_BATCH,   /* POST /v1/nodes:batchUpsert                       */
  SRV_R_STATS,         /* GET /v1/stats                                    */
  SRV_R_LIVEZ,         /* GET /livez                                       */
  SRV_R_READYZ,        /* GET /readyz                                      */
  SRV_R_METRICS,       /* GET /metrics                                     */
  SRV_R_OPENAPI,       /* GET /openapi.json                                */
  SRV_R__COUNT
} srv_route;

#define SRV_M_GET 0x1u
#define SRV_M_HEAD 0x2u
#define SRV_M_POST 0x4u
#define SRV_M_PUT 0x8u
#define SRV_M_DELETE 0x10u

typedef struct srv_match {
  srv_route route;
  unsigned method;     /* SRV_M_* of the request                           */
  const char *id;      /* decoded {id} (in the caller's buffer), or NULL   */
} srv_match;

/* The route's label for metrics and logs ("search", "node", ...). */
const char *srv_route_name(srv_route r);
/* Match `method` and the raw (still percent-encoded) `path`.  {id} is
 * percent-decoded into idbuf, which must hold strlen(path) + 1 bytes.
 * Returns 0, or -1 with e set: 404 no_route, 405 method_not_allowed (with
 * e->allow), 400 bad_path (bad escape, or an id with a NUL byte). */
int srv_route_match(const char *method, const char *path, srv_match *m,
                    char *idbuf, size_t idcap, srv_err *e);

/* ---- request bodies (req.c) --------------------------------------------- */
typedef struct srv_limits {
  size_t max_k;
  size_t max_batch;
  int max_depth;
} srv_limits;

typedef enum srv_qkind { SRV_Q_VECTOR, SRV_Q_LIKE, SRV_Q_TEXT } srv_qkind;

/* Which hydrated fields a reply carries ("with"). */
#define SRV_W_TITLE 0x01u
#define SRV_W_TYPE 0x02u
#define SRV_W_DOMAIN 0x04u
#define SRV_W_LAYER 0x08u
#define SRV_W_DATE 0x10u
#define SRV_W_META 0x20u
#define SRV_W_SUMMARY 0x40u

/* A parsed search or batch-search body.  Owns everything it points to
 * (srv_search_req_free). */
typedef struct srv_search_req {
  srv_qkind kind;
  float *vecs;          /* nq * dim floats (SRV_Q_VECTOR)                   */
  size_t nq;            /* 1 for /v1/search                                 */
  uint32_t dim;
  char *like;           /* SRV_Q_LIKE: the node id                          */
  char *text;           /* SRV_Q_TEXT: the text                             */
  rsn_search_params p;  /* k, flags, min_score, tier, oversample, filter    */
  rsn_filter *filter;   /* p.filter, owned                                  */
  char *filter_key;     /* canonical JSON of the filter (sorted keys), or
                           NULL: searches batch only with an equal key      */
  unsigned with;        /* SRV_W_*                                          */
  int batch;            /* 1: a /v1/search/batch body ("results" reply)     */
} srv_search_req;

/* Does the JSON text nest at most max_depth arrays/objects?  A cheap scan
 * before the parser runs.  Returns 0, or -1 with e set (400 too_deep). */
int srv_json_depth_ok(const char *body, size_t len, int max_depth,
                      srv_err *e);
/* Parse a POST /v1/search body (batch = 0) or a /v1/search/batch body
 * (batch = 1).  `dim` is the database's dimension (0 while unknown: any
 * dimension, the same for every vector).  Vectors must be finite floats
 * and not zero.  Returns 0 with *out filled, or -1 with e set and *out
 * zeroed. */
int srv_parse_search(const char *body, size_t len, int batch,
                     const srv_limits *lim, uint32_t dim, srv_search_req *out,
                     srv_err *e);
void srv_search_req_free(srv_search_req *r);

/* Parsed node bodies for PUT /v1/nodes/{id} (one node; path_id given) or
 * POST /v1/nodes:batchUpsert ({"nodes": [...]}; path_id NULL).  The nodes
 * borrow from root, vecs and metas (srv_nodes_free). */
typedef struct srv_nodes {
  rsn_node *nodes;
  size_t n;
  json_t *root;
  float *vecs;          /* the embeddings, one after another               */
  char **metas;         /* compact JSON of each node's meta, or NULL       */
} srv_nodes;

int srv_parse_nodes(const char *body, size_t len, const char *path_id,
                    const srv_limits *lim, uint32_t dim, srv_nodes *out,
                    srv_err *e);
void srv_nodes_free(srv_nodes *n);

/* ---- metrics (metrics.c) ------------------------------------------------ */
#define SRV_LAT_BUCKETS 14
#define SRV_MB_BUCKETS 10
#define SRV_NSTATUS 14

typedef struct srv_metrics {
  atomic_uint_fast64_t req[SRV_R__COUNT][SRV_NSTATUS]; /* by status index  */
  atomic_uint_fast64_t lat[SRV_R__COUNT][SRV_LAT_BUCKETS + 1]; /* per bucket */
  atomic_uint_fast64_t lat_sum_ns[SRV_R__COUNT];
  atomic_uint_fast64_t mb[SRV_MB_BUCKETS + 1];   /* micro-batch sizes       */
  atomic_uint_fast64_t mb_sum, mb_count;
  atomic_uint_fast64_t refresh_runs, refresh_changes, refresh_errors;
} srv_metrics;

/* Count one finished request. */
void srv_metrics_request(srv_metrics *m, srv_route r, int http, double secs);
/* Count one micro-batch of n searches. */
void srv_metrics_batch(srv_metrics *m, size_t n);

/* ---- the server (http.c), shared by handlers.c and batch.c ------------- */
struct MHD_Daemon;
struct MHD_Connection;
struct srv_job;

struct srv_worker;

typedef struct srv_queue {
  pthread_mutex_t mu;
  pthread_cond_t work;      /* a job was queued, or stop                     */
  pthread_cond_t joined;    /* a job joined a gathering group, or stop       */
  struct srv_job *head, *tail; /* waiting jobs (mu)                          */
  struct srv_group **open;  /* groups gathering now, one slot per worker (mu) */
  size_t waiting;           /* jobs queued or gathering (mu)                 */
  size_t running;           /* jobs being searched (mu)                      */
  int stop;                 /* 1: workers exit once the queue is empty (mu)  */
  /* Text searches wait here for an embedding thread, then join the queue
   * above as vector searches (so they are micro-batched too). */
  struct srv_job *thead, *ttail; /* texts waiting to be embedded (mu)        */
  size_t embedding;         /* texts an embedding thread holds now (mu)      */
  pthread_cond_t text;      /* a text was queued, or stop                    */
  pthread_t *ethreads;      /* the embedding threads                         */
  int nethreads;
  pthread_t *threads;
  struct srv_worker *workers; /* each thread's argument                      */
  int nthreads;
  int started;              /* the mutex and condition variables exist      */
} srv_queue;

struct rsn_srv {
  rsn_srv_opts o;           /* copy of the options (strings borrowed)        */
  srv_limits lim;
  rsn_db *db;
  struct MHD_Daemon *mhd;
  uint16_t port;
  atomic_int ready;         /* 0 loading, 1 loaded, -1 load failed           */
  char load_err[256];       /* why the load failed (written before ready=-1) */
  atomic_int stopping;      /* 1 once rsn_srv_stop began                     */
  atomic_long inflight;     /* requests between first call and completion   */
  pthread_mutex_t write_mu; /* one writer at a time: rsn_begin's transaction
                               belongs to the handle, not the thread         */
  pthread_t loader, refresher;
  int have_loader, have_refresher;
  pthread_mutex_t bg_mu;    /* guards bg_stop with bg_cv                     */
  pthread_cond_t bg_cv;
  int bg_stop;              /* (bg_mu)                                       */
  srv_queue q;
  srv_metrics m;
};

/* A queued search (batch.c runs it, handlers.c formats the reply).  Owned
 * by the request's connection state; the worker writes the reply fields,
 * sets done and resumes the connection, and touches the job no more. */
typedef struct srv_job {
  srv_search_req *req;
  struct MHD_Connection *conn;
  double t0;                /* request start, seconds (monotonic)            */
  double t_enq;             /* queued at                                     */
  struct srv_job *next;     /* queue link (srv_queue.mu)                     */
  /* The reply. */
  int http;
  char *body;               /* malloc'd JSON                                 */
  int retry_after;
  atomic_int done;
} srv_job;

/* A group of same-key single searches being gathered (batch.c). */
typedef struct srv_group {
  srv_job *jobs[256];
  size_t n, max;
} srv_group;

double srv_now(void); /* monotonic seconds */

/* batch.c */
int srv_queue_start(rsn_srv *s);
/* Queue a search job; 0, or -1 with e set (503 overloaded / shutting_down). */
int srv_queue_push(rsn_srv *s, srv_job *j, srv_err *e);
/* Stop the workers: new jobs are refused (503 shutting_down); abort:
 * answer every job still queued with 503 shutting_down; then wait for the
 * running ones and join the threads. */
void srv_queue_stop(rsn_srv *s, int abort);
/* Release the queue (after the HTTP daemon stopped: handlers may still
 * read the depth until then). */
void srv_queue_free(rsn_srv *s);
size_t srv_queue_depth(rsn_srv *s);

/* handlers.c: the reply of job j from results r, query q (batched: how many
 * searches r answered together) -- or the error when st != RSN_OK. */
void srv_job_reply(rsn_srv *s, srv_job *j, rsn_status st, const char *detail,
                   const rsn_results *r, size_t q, size_t batched);
/* An error reply body {"error": {"code", "message"}} (malloc'd). */
char *srv_error_body(const srv_err *e);

/* A route's reply, made by handlers.c for http.c. */
typedef struct srv_reply {
  int http;
  char *body;               /* malloc'd                                      */
  const char *ctype;        /* static content type                           */
  int retry_after;
  const char *allow;
} srv_reply;

/* Run the route inline (everything but queued searches).  Returns 0 with
 * *rep set, or 1 when the request was queued as job j (the connection must
 * be suspended first: handlers.c calls suspend before queueing). */
int srv_handle(rsn_srv *s, const srv_match *m, struct MHD_Connection *conn,
               const char *body, size_t len, srv_job *j, srv_reply *rep);
/* The text search hook: turn text into a query vector.  Until the
 * embedding client is wired in, 400 not_supported. */
int srv_embed_text(rsn_srv *s, const char *text, float **vec, uint32_t *dim,
                   srv_err *e);
/* The Prometheus text of GET /metrics (malloc'd). */
char *srv_metrics_text(rsn_srv *s);

/* The OpenAPI document (generated from service/openapi.json). */
extern const char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

#endif /* RSN_SRV_INT_H */
