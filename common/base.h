/*
 * base.h -- common/, the bottom layer every module of resonance includes:
 * allocation hooks that tests can make fail, the calling thread's error
 * message, a monotonic clock and small helpers.
 *
 * It depends on libc and on the public header's types (rsn_status and the
 * structs of the API, engine/include/resonance.h), which every layer
 * shares; never on kernels/, storage/ or engine/.  The build enforces it:
 * common/'s include path holds only common/ and the public headers, and
 * tools/check_layers.sh fails CI on an upward #include.
 */
#ifndef RSN_BASE_H
#define RSN_BASE_H

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "resonance.h"

/* Hidden symbols shared between modules carry the rsn__ prefix. */
#define RSN_INTERNAL __attribute__((visibility("hidden")))

/* ---- allocation -------------------------------------------------------- */
/* Every allocation of the library goes through these so tests can inject
 * failures (rsn__alloc_fail_after).  rsn__free accepts NULL. */
RSN_INTERNAL void *rsn__malloc(size_t n);
RSN_INTERNAL void *rsn__calloc(size_t count, size_t size);
RSN_INTERNAL void *rsn__realloc(void *p, size_t n);
RSN_INTERNAL void rsn__free(void *p);
RSN_INTERNAL char *rsn__strdup(const char *s); /* NULL in, NULL out */
/* 64-byte aligned allocation of n bytes (n rounded up); free with
 * rsn__aligned_free. */
RSN_INTERNAL void *rsn__aligned_alloc(size_t n);
RSN_INTERNAL void rsn__aligned_free(void *p);

/* Large row storage: an anonymous mapping of n bytes, 64-byte aligned, and
 * 2 MiB aligned when n >= 2 MiB.  huge: advised MADV_HUGEPAGE now, so the
 * kernel can back it with transparent huge pages (fewer TLB misses on
 * scans).  Free with the same n.  Pages are zero until written. */
RSN_INTERNAL void *rsn__map_alloc(size_t n, int huge);
RSN_INTERNAL void rsn__map_free(void *p, size_t n);
/* Advise MADV_HUGEPAGE on a mapping from rsn__map_alloc (n >= 2 MiB and
 * 2 MiB aligned, else nothing); returns 1 if advised. */
RSN_INTERNAL int rsn__map_advise_huge(void *p, size_t n);

/* Test hook: the next `n` allocations succeed, the one after fails, then
 * all succeed again.  n < 0 disables.  Counts every rsn__* allocation. */
RSN_INTERNAL void rsn__alloc_fail_after(long n);
/* Test hook: number of live allocations made through rsn__* (leak check). */
RSN_INTERNAL long rsn__alloc_live(void);

/* ---- errors ------------------------------------------------------------ */
/* Record a message for the calling thread and return `st`, so a failure
 * reads:  return rsn__err(RSN_E_DIM, "query has %u floats, db has %u", a, b);
 * The message is what rsn_errmsg() returns. */
RSN_INTERNAL rsn_status rsn__err(rsn_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
RSN_INTERNAL rsn_status rsn__verr(rsn_status st, const char *fmt, va_list ap);
/* Clear the calling thread's message (successful calls need not). */
RSN_INTERNAL void rsn__err_clear(void);
/* The calling thread's message buffer (never NULL). */
RSN_INTERNAL const char *rsn__errbuf(void);

/* ---- time -------------------------------------------------------------- */
/* Monotonic wall clock in milliseconds. */
RSN_INTERNAL double rsn__now_ms(void);

/* ---- defensive macros (sqlite's ALWAYS/NEVER) -------------------------- */
#ifdef NDEBUG
#define RSN_ALWAYS(x) (x)
#define RSN_NEVER(x) (x)
#else
#define RSN_ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#define RSN_NEVER(x) ((x) ? (assert(0), 1) : 0)
#endif

#define RSN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RSN_MAX(a, b) ((a) > (b) ? (a) : (b))
/* Row stride in floats: dim rounded up to a multiple of 16 (64 bytes). */
#define RSN_STRIDE(dim) ((((size_t)(dim)) + 15u) & ~(size_t)15u)

#endif /* RSN_BASE_H */
