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
 * The quantized members of each table are composed here, tier by tier,
 * from the partial tables of the quantized kernel files (kern.h): the best
 * one of the table's path or a lower path whose file's extensions the CPU
 * all has (so the avx512 table of an AVX-512F CPU without VNNI runs the
 * AVX2 i8 kernel), the scalar reference at the latest.
 *
 * This file has no -m flags: the CPUID probe is plain inline assembly and
 * it never calls an AVX kernel itself.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
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
static unsigned features;                   /* RSN_CPU_* bits, set once    */
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

static int isa_index(rsn_isa isa) {
  switch (isa) {
    case RSN_ISA_SCALAR: return 0;
    case RSN_ISA_SIMDE: return 1;
    case RSN_ISA_AVX2: return 2;
    case RSN_ISA_AVX512: return 3;
    default: return -1;
  }
}

/* A partial table of quantized kernels: the path whose table it belongs to
 * (it may serve that path and higher ones) and every RSN_CPU_* extension
 * its file is compiled with (kernels/CMakeLists.txt). */
typedef struct tier_part {
  const rsn_kern *k;
  rsn_isa path;
  unsigned needs;
} tier_part;

/* Best first.  The scalar table has every tier and needs nothing, so each
 * search of pick() ends there at the latest. */
static const tier_part parts[] = {
#ifdef RSN_HAVE_AVX512
    {&rsn_kern_i8_avx512vnni, RSN_ISA_AVX512,
     RSN_CPU_AVX512F | RSN_CPU_AVX512BW | RSN_CPU_AVX512VNNI},
    {&rsn_kern_f16_avx512, RSN_ISA_AVX512, RSN_CPU_AVX512F},
    {&rsn_kern_b1_avx512vpopcntdq, RSN_ISA_AVX512, RSN_CPU_AVX512F | RSN_CPU_AVX512VPOPCNTDQ},
#endif
#ifdef RSN_HAVE_AVX2
    {&rsn_kern_i8_avx2, RSN_ISA_AVX2, RSN_CPU_AVX2},
    {&rsn_kern_f16_avx2, RSN_ISA_AVX2, RSN_CPU_AVX2 | RSN_CPU_FMA | RSN_CPU_F16C},
    {&rsn_kern_b1_popcnt, RSN_ISA_AVX2, RSN_CPU_POPCNT},
#endif
    {&rsn_kern_i8_simde, RSN_ISA_SIMDE, 0},
    {&rsn_kern_scalar, RSN_ISA_SCALAR, 0},
};

enum { TIER_I8, TIER_F16, TIER_B1 };

static int provides(const rsn_kern *k, int tier) {
  switch (tier) {
    case TIER_I8: return k->i8rows != NULL;
    case TIER_F16: return k->f16rows != NULL;
    default: return k->b1rows != NULL;
  }
}

/* The partial table that serves `tier` in the table of `isa` on a CPU with
 * `feat`. */
static const rsn_kern *pick(rsn_isa isa, unsigned feat, int tier) {
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (isa_index(parts[i].path) <= isa_index(isa) && !(parts[i].needs & ~feat) &&
        provides(parts[i].k, tier))
      return parts[i].k;
  return &rsn_kern_scalar; /* not reached: the scalar part matches last */
}

int rsn__kern_compose(rsn_isa isa, unsigned feat, rsn_kern *out, char *qname, size_t cap) {
  const rsn_kern *c = compiled(isa);
  if (!c) return -1;
  const rsn_kern *i8 = pick(isa, feat, TIER_I8), *f16 = pick(isa, feat, TIER_F16),
                 *b1 = pick(isa, feat, TIER_B1);
  *out = *c;
  out->i8rows = i8->i8rows;
  out->i8ptrs = i8->i8ptrs;
  out->i8block = i8->i8block;
  out->f16rows = f16->f16rows;
  out->f16ptrs = f16->f16ptrs;
  out->f16block = f16->f16block;
  out->f16enc = f16->f16enc;
  out->b1rows = b1->b1rows;
  out->b1ptrs = b1->b1ptrs;
  out->b1block = b1->b1block;
  assert(out->i8ptrs && out->i8block && out->f16ptrs && out->f16block && out->f16enc &&
         out->b1ptrs && out->b1block);
  snprintf(qname, cap, "i8:%s f16:%s b1:%s", i8->qname, f16->qname, b1->qname);
  out->qname = qname;
  return 0;
}

/* The tables handed out, composed once for the detected features; qnames
 * holds their qname strings. */
static rsn_kern tables[4];
static char qnames[4][64];
static int have_table[4];

static void fill_tables(void) {
  static const rsn_isa all[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2, RSN_ISA_AVX512};
  for (size_t i = 0; i < 4; i++)
    have_table[i] =
        rsn__kern_compose(all[i], features, &tables[i], qnames[i], sizeof qnames[i]) == 0;
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

/* The RSN_CPU_* features of this CPU whose register state the OS saves. */
static unsigned detect_x86(void) {
  unsigned a, b, c, d, f = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if ((c >> 23) & 1) f |= RSN_CPU_POPCNT; /* general registers only   */
  int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
      f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  uint64_t xcr0 = read_xcr0();
  int os_avx = (xcr0 & 0x6) == 0x6;             /* XMM and YMM state       */
  int os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0; /* opmask, ZMM hi/lo   */
  if (!os_avx) return f;
  if (fma) f |= RSN_CPU_FMA;
  if (f16c) f |= RSN_CPU_F16C;
  if (__get_cpuid_max(0, NULL) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  if ((b >> 5) & 1) f |= RSN_CPU_AVX2;
  if (os_avx512 && ((b >> 16) & 1)) {
    f |= RSN_CPU_AVX512F;
    if ((b >> 30) & 1) f |= RSN_CPU_AVX512BW;
    if ((c >> 11) & 1) f |= RSN_CPU_AVX512VNNI;
    if ((c >> 14) & 1) f |= RSN_CPU_AVX512VPOPCNTDQ;
  }
  return f;
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
#if RSN_X86_64
  features = detect_x86();
#endif
  fill_tables();
  unsigned s = RSN_ISA_SCALAR | RSN_ISA_SIMDE;
  /* The f32 kernels of each x86 path: AVX2 with FMA, AVX-512F. */
  if ((features & (RSN_CPU_AVX2 | RSN_CPU_FMA)) == (RSN_CPU_AVX2 | RSN_CPU_FMA))
    s |= RSN_ISA_AVX2;
  if (features & RSN_CPU_AVX512F) s |= RSN_ISA_AVX512;
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

unsigned rsn_kern_features(void) {
  ensure_init();
  return features;
}

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
