/*
 * dispatch.c -- run-time choice of the kernel table (kern.h) and the public
 * rsn_isa_* calls (resonance.h).
 *
 * The CPU is examined once (pthread_once): CPUID says what the core
 * implements, XGETBV says whether the OS saves the AVX / AVX-512 register
 * state across context switches; a path is supported only if both agree
 * and this build compiled it (RSN_HAVE_AVX2 / RSN_HAVE_AVX512, set by
 * kernels/CMakeLists.txt on x86-64 only).  The supported set is masked by an
 * allowed set -- RSN_ISA from the environment at initialisation, then
 * rsn_isa_restrict() at any time -- and the best allowed path (avx512 >
 * avx2 > simde > scalar) is published through an atomic pointer, so a
 * search that loaded the pointer keeps a consistent table even if another
 * thread restricts the choice meanwhile.
 *
 * This file has no -m flags: the CPUID probe is plain inline assembly and
 * it never calls an AVX kernel itself.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "kern.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define RSN_X86_64 1
#else
#define RSN_X86_64 0
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned supported;                  /* rsn_isa mask, set once      */
static _Atomic(const rsn_kern *) active;    /* the published table         */
static char env_warning[160];               /* "" when RSN_ISA was honoured */

/* Order of preference, best first. */
static const rsn_isa order[] = {RSN_ISA_AVX512, RSN_ISA_AVX2, RSN_ISA_SIMDE,
                                RSN_ISA_SCALAR};

/* The compiled-in table of one path, or NULL if this build lacks it
 * (regardless of what the CPU can do). */
static const rsn_kern *compiled(rsn_isa isa) {
  switch (isa) {
    case RSN_ISA_SCALAR: return &rsn_kern_scalar;
    case RSN_ISA_SIMDE: return &rsn_kern_simde;
#ifdef RSN_HAVE_AVX2
    case RSN_ISA_AVX2: return &rsn_kern_avx2;
#endif
#ifdef RSN_HAVE_AVX512
    case RSN_ISA_AVX512: return &rsn_kern_avx512;
#endif
    default: return NULL;
  }
}

/* The tables handed out: the compiled ones, with every quantized kernel a
 * path does not provide taken from the scalar reference (filled once). */
static rsn_kern tables[4];
static int have_table[4];

static int isa_index(rsn_isa isa) {
  switch (isa) {
    case RSN_ISA_SCALAR: return 0;
    case RSN_ISA_SIMDE: return 1;
    case RSN_ISA_AVX2: return 2;
    case RSN_ISA_AVX512: return 3;
    default: return -1;
  }
}

static void fill_tables(void) {
  static const rsn_isa all[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2, RSN_ISA_AVX512};
  const rsn_kern *ref = &rsn_kern_scalar;
  for (size_t i = 0; i < 4; i++) {
    const rsn_kern *c = compiled(all[i]);
    if (!c) continue;
    rsn_kern t = *c;
#define RSN_FILL(m) if (!t.m) t.m = ref->m
    RSN_FILL(qname); RSN_FILL(i8rows); RSN_FILL(i8ptrs); RSN_FILL(i8block);
    RSN_FILL(f16rows); RSN_FILL(f16ptrs); RSN_FILL(f16block);
    RSN_FILL(b1rows); RSN_FILL(b1ptrs); RSN_FILL(b1block); RSN_FILL(f16enc);
#undef RSN_FILL
    tables[i] = t;
    have_table[i] = 1;
  }
}

/* The table for one path, or NULL if this build lacks it. */
static const rsn_kern *table_of(rsn_isa isa) {
  int i = isa_index(isa);
  return i >= 0 && have_table[i] ? &tables[i] : NULL;
}

#if RSN_X86_64
/* XCR0, the register-state components the OS enables.  Only valid when
 * CPUID.1:ECX.OSXSAVE is set. */
static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

/* The x86 paths this CPU and OS can run, as an rsn_isa mask. */
static unsigned detect_x86(void) {
  unsigned a, b, c, d, mask = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return 0;
  uint64_t xcr0 = read_xcr0();
  int os_avx = (xcr0 & 0x6) == 0x6;             /* XMM and YMM state       */
  int os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0; /* opmask, ZMM hi/lo   */
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
  if (os_avx && avx2 && fma) mask |= RSN_ISA_AVX2;
  if (os_avx512 && avx512f) mask |= RSN_ISA_AVX512;
  return mask;
}
#endif

static rsn_isa lookup(const char *name);

/* The best path in `mask` that is supported, or NULL. */
static const rsn_kern *best_in(unsigned mask) {
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if ((mask & supported & (unsigned)order[i]) && table_of(order[i]))
      return table_of(order[i]);
  return NULL;
}

/* pthread_once body: detect the CPU, read RSN_ISA, publish the table.  An
 * RSN_ISA value that is unknown or names an unsupported path is ignored
 * (the best path is used) and remembered in env_warning; nothing is
 * printed. */
static void init_once(void) {
  fill_tables();
  unsigned s = RSN_ISA_SCALAR | RSN_ISA_SIMDE;
#if RSN_X86_64
  s |= detect_x86();
#endif
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (!table_of(order[i])) s &= ~(unsigned)order[i];
  supported = s;

  const rsn_kern *k = best_in(RSN_ISA_ALL);
  const char *env = getenv("RSN_ISA");
  if (env && *env) {
    rsn_isa want = lookup(env);
    if (!want) {
      snprintf(env_warning, sizeof env_warning,
               "RSN_ISA=%.40s is not one of scalar, simde, avx2, avx512; "
               "using %s",
               env, k->name);
    } else if (!best_in(want)) {
      snprintf(env_warning, sizeof env_warning,
               "RSN_ISA=%s is not supported by this CPU or build; using %s",
               rsn_isa_name(want), k->name);
    } else {
      k = best_in(want);
    }
  }
  atomic_store(&active, k);
}

static void ensure_init(void) { pthread_once(&once, init_once); }

const rsn_kern *rsn_kern_active(void) {
  ensure_init();
  return atomic_load_explicit(&active, memory_order_acquire);
}

const rsn_kern *rsn_kern_for(rsn_isa isa) {
  ensure_init();
  return (supported & (unsigned)isa) && table_of(isa) ? table_of(isa) : NULL;
}

const char *rsn_kern_env_warning(void) {
  ensure_init();
  return env_warning[0] ? env_warning : NULL;
}

const char *rsn_isa_env_warning(void) { return rsn_kern_env_warning(); }

unsigned rsn_isa_supported(void) {
  ensure_init();
  return supported;
}

rsn_status rsn_isa_restrict(unsigned mask) {
  ensure_init();
  const rsn_kern *k = best_in(mask);
  if (!k)
    return rsn__err(RSN_E_ISA,
                    "no instruction set in mask 0x%x is supported here "
                    "(supported: 0x%x)",
                    mask, supported);
  atomic_store_explicit(&active, k, memory_order_release);
  return RSN_OK;
}

rsn_isa rsn_isa_active(void) { return rsn_kern_active()->isa; }

const char *rsn_isa_name(rsn_isa isa) {
  switch (isa) {
    case RSN_ISA_SCALAR: return "scalar";
    case RSN_ISA_SIMDE: return "simde";
    case RSN_ISA_AVX2: return "avx2";
    case RSN_ISA_AVX512: return "avx512";
    default: return "?";
  }
}

/* ASCII case-insensitive equality (strcasecmp would follow the locale). */
static int ieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
    if (x != *b) return 0;
  }
  return *a == *b;
}

/* The path called `name`, or 0 if none (no error message recorded, so
 * init_once can use it without touching the caller's rsn_errmsg). */
static rsn_isa lookup(const char *name) {
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (ieq(name, rsn_isa_name(order[i]))) return order[i];
  return (rsn_isa)0;
}

rsn_status rsn_isa_parse(const char *name, rsn_isa *out) {
  if (!name || !out)
    return rsn__err(RSN_E_INVAL, "rsn_isa_parse: NULL argument");
  rsn_isa isa = lookup(name);
  if (isa) {
    *out = isa;
    return RSN_OK;
  }
  return rsn__err(RSN_E_INVAL,
                  "unknown instruction set '%.40s' (scalar, simde, avx2, avx512)",
                  name);
}
