// kernel_bench.cc -- google-benchmark harness around resonance's C kernels.
//
// A thin C++ layer: every benchmark calls the C kernels through the same
// dispatch tables the library uses (rsn_kern_for), so what is measured is
// what searches run.  Counters are set so a reader sees throughput directly:
//   bytes_per_second  memory streamed by the kernel (GB/s in the output)
//   items_per_second  dot products (or heap offers, blobs) per second
//   GFLOPs            2*d flops per dot product, as a rate
//
// The quantized tiers (kern.h) run beside f32 on the same shapes:
//   rows/<tier>/<isa>   one query x nrows rows (args: dim, nrows), 1M rows
//                       (memory) and about 512 KiB of rows (L2), so rows/s
//                       and bytes/s of f32, i8, f16 and b1 compare directly;
//   <tier>block/<isa>   64 queries x 256 rows like dotblock: items/s is
//                       queries*rows per second.
// The context lines give the CPU features dispatch found and, per table,
// which kernel runs each tier (qname).
//
// Run: build with -DRSN_BUILD_BENCH=ON, then
//   build/bench/rsn_kernel_bench [--benchmark_filter=dot] [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "kern.h"
#include "resonance.h"
}

namespace {

const rsn_isa kIsas[] = {RSN_ISA_SCALAR, RSN_ISA_SIMDE, RSN_ISA_AVX2, RSN_ISA_AVX512};

// A 64-byte aligned buffer of unit rows, stride-padded with zeros.
struct Rows {
  float *p = nullptr;
  size_t n = 0, dim = 0, stride = 0;
  Rows(size_t n_, size_t dim_) : n(n_), dim(dim_), stride(RSN_STRIDE(dim_)) {
    p = static_cast<float *>(rsn__aligned_alloc(n * stride * sizeof(float)));
    std::mt19937 gen(42);
    std::normal_distribution<float> g;
    for (size_t i = 0; i < n; i++) {
      float *r = p + i * stride;
      std::memset(r, 0, stride * sizeof(float));
      for (size_t j = 0; j < dim; j++) r[j] = g(gen);
      rsn_normalize(r, static_cast<uint32_t>(dim));
    }
  }
  ~Rows() { rsn__aligned_free(p); }
  Rows(const Rows &) = delete;
  Rows &operator=(const Rows &) = delete;
};

// ---- quantized tiers -------------------------------------------------------

enum class Tier { F32, I8, F16, B1 };
const Tier kTiers[] = {Tier::F32, Tier::I8, Tier::F16, Tier::B1};

const char *TierName(Tier t) {
  switch (t) {
    case Tier::F32: return "f32";
    case Tier::I8: return "i8";
    case Tier::F16: return "f16";
    default: return "b1";
  }
}

// Row stride of a tier in bytes (kern.h: a multiple of 64).
size_t RowBytes(Tier t, size_t dim) {
  uint32_t d = static_cast<uint32_t>(dim);
  switch (t) {
    case Tier::F32: return RSN_STRIDE(d) * 4;
    case Tier::I8: return rsn_i8_stride(d);
    case Tier::F16: return rsn_f16_stride(d) * 2;
    default: return rsn_b1_stride(d) * 8;
  }
}

// Query stride in bytes: the query element is f32 for f32 and f16.
size_t QueryBytes(Tier t, size_t dim) {
  return t == Tier::F16 ? RowBytes(t, dim) * 2 : RowBytes(t, dim);
}

// 64-byte aligned random codes of one tier, zero-padded to the stride.
// Random bits are enough: the kernels' speed does not depend on the values
// (f16 codes are kept finite and moderate, f32 rows likewise).
struct Codes {
  unsigned char *p = nullptr;
  Tier tier;
  size_t n, dim, bytes; // rows, dimension, bytes per row
  Codes(Tier t, size_t n_, size_t dim_, size_t bytes_per_row, uint64_t seed)
      : tier(t), n(n_), dim(dim_), bytes(bytes_per_row) {
    p = static_cast<unsigned char *>(rsn__aligned_alloc(n * bytes));
    std::memset(p, 0, n * bytes);
    std::mt19937_64 gen(seed);
    for (size_t i = 0; i < n; i++) {
      unsigned char *r = p + i * bytes;
      switch (t) {
        case Tier::F32:
          for (size_t j = 0; j < dim; j++)
            reinterpret_cast<float *>(r)[j] = static_cast<float>(gen() % 2001) / 1000.0f - 1.0f;
          break;
        case Tier::F16:
          for (size_t j = 0; j < dim; j++) // |h| in [2^-6, 2): exponents 9..15
            reinterpret_cast<uint16_t *>(r)[j] =
                static_cast<uint16_t>((gen() & 0x83FF) | ((9 + gen() % 7) << 10));
          break;
        case Tier::I8: // 129..255 and 0..127: as int8 (a query) -127..127
          for (size_t j = 0; j < dim; j++) r[j] = static_cast<unsigned char>(gen() % 255 + 129);
          break;
        case Tier::B1:
          for (size_t j = 0; j < dim; j++)
            if (gen() & 1) reinterpret_cast<uint64_t *>(r)[j / 64] |= uint64_t{1} << (j % 64);
          break;
      }
    }
  }
  ~Codes() { rsn__aligned_free(p); }
  Codes(const Codes &) = delete;
  Codes &operator=(const Codes &) = delete;
};

// The rows of the last rows/ benchmark, kept while the next one asks for
// the same shape: google-benchmark calls a benchmark several times, and a
// 1M-row buffer takes seconds to fill.  One slot bounds the memory.
const Codes &CachedRows(Tier t, size_t n, size_t dim) {
  static std::unique_ptr<Codes> slot;
  if (!slot || slot->tier != t || slot->n != n || slot->dim != dim) {
    slot.reset();
    slot = std::make_unique<Codes>(t, n, dim, RowBytes(t, dim), 42);
  }
  return *slot;
}

// One query of the tier: f32 values for f32 and f16, codes otherwise.
std::unique_ptr<Codes> Queries(Tier t, size_t nq, size_t dim) {
  Tier qt = t == Tier::F16 ? Tier::F32 : t;
  return std::make_unique<Codes>(qt, nq, dim, QueryBytes(t, dim), 7);
}

const rsn_kern *Kernel(benchmark::State &state, rsn_isa isa) {
  const rsn_kern *k = rsn_kern_for(isa);
  if (!k) state.SkipWithError((std::string(rsn_isa_name(isa)) + " not available on this CPU").c_str());
  return k;
}

void SetRates(benchmark::State &state, double dots, double bytes, size_t dim) {
  state.SetItemsProcessed(static_cast<int64_t>(dots));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["GFLOPs"] = benchmark::Counter(dots * 2.0 * dim / 1e9,
                                                benchmark::Counter::kIsRate);
}

// One dot product of two rows (in L1): latency-bound per-call cost.
void BM_dot(benchmark::State &state, rsn_isa isa) {
  const rsn_kern *k = Kernel(state, isa);
  if (!k) return;
  size_t dim = static_cast<size_t>(state.range(0));
  Rows r(2, dim);
  for (auto _ : state) benchmark::DoNotOptimize(k->dot(r.p, r.p + r.stride, dim));
  SetRates(state, static_cast<double>(state.iterations()),
           static_cast<double>(state.iterations()) * 2 * dim * 4, dim);
}

// One query against 64 MiB of rows (beyond cache): memory bandwidth bound.
void BM_dotrows(benchmark::State &state, rsn_isa isa) {
  const rsn_kern *k = Kernel(state, isa);
  if (!k) return;
  size_t dim = static_cast<size_t>(state.range(0));
  size_t n = (64u << 20) / (RSN_STRIDE(dim) * 4);
  Rows rows(n, dim), q(1, dim);
  std::vector<float> out(n);
  for (auto _ : state) {
    k->dotrows(q.p, rows.p, rows.stride, rows.stride, n, out.data());
    benchmark::ClobberMemory();
  }
  SetRates(state, static_cast<double>(state.iterations()) * n,
           static_cast<double>(state.iterations()) * n * rows.stride * 4, dim);
}

// 64 queries x 256 rows (both cache resident): compute bound, the blocked
// kernel's register tiling.
void BM_dotblock(benchmark::State &state, rsn_isa isa) {
  const rsn_kern *k = Kernel(state, isa);
  if (!k) return;
  size_t dim = static_cast<size_t>(state.range(0));
  const size_t nq = 64, nr = 256;
  Rows q(nq, dim), rows(nr, dim);
  std::vector<float> out(nq * nr);
  for (auto _ : state) {
    k->dotblock(q.p, q.stride, nq, rows.p, rows.stride, nr, rows.stride, out.data(), nr);
    benchmark::ClobberMemory();
  }
  double dots = static_cast<double>(state.iterations()) * nq * nr;
  SetRates(state, dots, static_cast<double>(state.iterations()) * (nq + nr) * rows.stride * 4, dim);
}

// One query against nrows rows of a tier (args: dim, nrows).
void BM_rows(benchmark::State &state, rsn_isa isa, Tier t) {
  const rsn_kern *k = Kernel(state, isa);
  if (!k) return;
  size_t dim = static_cast<size_t>(state.range(0)), n = static_cast<size_t>(state.range(1));
  const Codes &rows = CachedRows(t, n, dim);
  auto q = Queries(t, 1, dim);
  size_t st = rows.bytes; // stride in bytes; in elements below
  std::vector<uint32_t> out(n); // 4-byte scores of every tier
  for (auto _ : state) {
    switch (t) {
      case Tier::F32:
        k->dotrows(reinterpret_cast<float *>(q->p), reinterpret_cast<float *>(rows.p), st / 4,
                   st / 4, n, reinterpret_cast<float *>(out.data()));
        break;
      case Tier::I8:
        k->i8rows(reinterpret_cast<int8_t *>(q->p), rows.p, st, st, n,
                  reinterpret_cast<int32_t *>(out.data()));
        break;
      case Tier::F16:
        k->f16rows(reinterpret_cast<float *>(q->p), reinterpret_cast<uint16_t *>(rows.p),
                   st / 2, st / 2, n, reinterpret_cast<float *>(out.data()));
        break;
      case Tier::B1:
        k->b1rows(reinterpret_cast<uint64_t *>(q->p), reinterpret_cast<uint64_t *>(rows.p),
                  st / 8, st / 8, n, out.data());
        break;
    }
    benchmark::ClobberMemory();
  }
  SetRates(state, static_cast<double>(state.iterations()) * n,
           static_cast<double>(state.iterations()) * n * st, dim);
}

// 64 queries x 256 rows of a tier (cache resident), dotblock's shape.
void BM_qblock(benchmark::State &state, rsn_isa isa, Tier t) {
  const rsn_kern *k = Kernel(state, isa);
  if (!k) return;
  size_t dim = static_cast<size_t>(state.range(0));
  const size_t nq = 64, nr = 256;
  Codes rows(t, nr, dim, RowBytes(t, dim), 42);
  auto q = Queries(t, nq, dim);
  size_t st = rows.bytes, qs = QueryBytes(t, dim);
  std::vector<uint32_t> out(nq * nr);
  for (auto _ : state) {
    switch (t) {
      case Tier::F32:
        k->dotblock(reinterpret_cast<float *>(q->p), qs / 4, nq,
                    reinterpret_cast<float *>(rows.p), st / 4, nr, st / 4,
                    reinterpret_cast<float *>(out.data()), nr);
        break;
      case Tier::I8:
        k->i8block(reinterpret_cast<int8_t *>(q->p), qs, nq, rows.p, st, nr, st,
                   reinterpret_cast<int32_t *>(out.data()), nr);
        break;
      case Tier::F16:
        k->f16block(reinterpret_cast<float *>(q->p), qs / 4, nq,
                    reinterpret_cast<uint16_t *>(rows.p), st / 2, nr, st / 2,
                    reinterpret_cast<float *>(out.data()), nr);
        break;
      case Tier::B1:
        k->b1block(reinterpret_cast<uint64_t *>(q->p), qs / 8, nq,
                   reinterpret_cast<uint64_t *>(rows.p), st / 8, nr, st / 8, out.data(), nr);
        break;
    }
    benchmark::ClobberMemory();
  }
  double dots = static_cast<double>(state.iterations()) * nq * nr;
  SetRates(state, dots, static_cast<double>(state.iterations()) * (nq * qs + nr * st), dim);
}

// Top-k heap: offers of random scores, with the floor pre-test as the
// search loop does it.
void BM_topk(benchmark::State &state) {
  size_t k = static_cast<size_t>(state.range(0));
  const size_t n = 1 << 16;
  std::vector<float> scores(n);
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto &s : scores) s = u(gen);
  std::vector<std::string> ids(n);
  for (size_t i = 0; i < n; i++) ids[i] = "id" + std::to_string(i);
  rsn_topk h;
  std::memset(&h, 0, sizeof h);
  if (rsn_topk_init(&h, k) != RSN_OK) {
    state.SkipWithError("rsn_topk_init failed");
    return;
  }
  for (auto _ : state) {
    rsn_topk_reset(&h);
    for (size_t i = 0; i < n; i++)
      if (rsn_topk_wants(&h, scores[i])) rsn_topk_push(&h, scores[i], i, ids[i].c_str(), 0);
    benchmark::DoNotOptimize(h.n);
  }
  rsn_topk_free(&h);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

// FAFCAS codec: validate and decode one blob.
void BM_fafcas_decode(benchmark::State &state) {
  uint32_t dim = static_cast<uint32_t>(state.range(0));
  Rows r(1, dim);
  std::vector<float> out(dim);
  for (auto _ : state) {
    rsn_blob_verdict v;
    benchmark::DoNotOptimize(rsn_fafcas_decode(r.p, dim * 4u, dim, out.data(), &v));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dim * 4));
}

void Register() {
  for (rsn_isa isa : kIsas) {
    std::string name = rsn_isa_name(isa);
    for (int d : {128, 384, 768, 1536}) {
      benchmark::RegisterBenchmark(("dot/" + name).c_str(), BM_dot, isa)->Arg(d);
      benchmark::RegisterBenchmark(("dotrows/" + name).c_str(), BM_dotrows, isa)->Arg(d);
      benchmark::RegisterBenchmark(("dotblock/" + name).c_str(), BM_dotblock, isa)->Arg(d);
    }
  }
  for (rsn_isa isa : kIsas) {
    std::string name = rsn_isa_name(isa);
    for (Tier t : kTiers) {
      std::string tn = TierName(t);
      const int64_t dim = 384, l2rows = static_cast<int64_t>((512u << 10) / RowBytes(t, dim));
      benchmark::RegisterBenchmark(("rows/" + tn + "/" + name).c_str(), BM_rows, isa, t)
          ->Args({dim, 1 << 20})
          ->Args({dim, l2rows});
      if (t != Tier::F32) // f32 is dotblock above
        for (int d : {128, 384, 768, 1536})
          benchmark::RegisterBenchmark((tn + "block/" + name).c_str(), BM_qblock, isa, t)->Arg(d);
    }
  }
  benchmark::RegisterBenchmark("topk", BM_topk)->Arg(1)->Arg(10)->Arg(100);
  for (int d : {128, 384, 768, 1536})
    benchmark::RegisterBenchmark("fafcas_decode", BM_fafcas_decode)->Arg(d);
}

// The RSN_CPU_* features dispatch detected, by name.
std::string Features() {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{RSN_CPU_AVX2, "AVX2"},         {RSN_CPU_FMA, "FMA"},
               {RSN_CPU_F16C, "F16C"},         {RSN_CPU_POPCNT, "POPCNT"},
               {RSN_CPU_AVX512F, "AVX512F"},   {RSN_CPU_AVX512BW, "AVX512BW"},
               {RSN_CPU_AVX512VNNI, "AVX512_VNNI"},
               {RSN_CPU_AVX512VPOPCNTDQ, "AVX512_VPOPCNTDQ"}};
  unsigned f = rsn_kern_features();
  std::string s;
  for (const auto &n : names)
    if (f & n.bit) s += (s.empty() ? "" : " ") + std::string(n.name);
  return s.empty() ? "(none)" : s;
}

}  // namespace

int main(int argc, char **argv) {
  Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("resonance", rsn_version());
  benchmark::AddCustomContext("isa_supported_mask", std::to_string(rsn_isa_supported()));
  benchmark::AddCustomContext("cpu_features", Features());
  for (rsn_isa isa : kIsas)
    if (const rsn_kern *k = rsn_kern_for(isa))
      benchmark::AddCustomContext(std::string("quantized/") + k->name, k->qname);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
