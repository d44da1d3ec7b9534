// kernel_bench.cc -- google-benchmark harness around resonance's C kernels.
//
// A thin C++ layer: every benchmark calls the C kernels through the same
// dispatch tables the library uses (rsn_kern_for), so what is measured is
// what searches run.  Counters are set so a reader sees throughput directly:
//   bytes_per_second  memory streamed by the kernel (GB/s in the output)
//   items_per_second  dot products (or heap offers, blobs) per second
//   GFLOPs            2*d flops per dot product, as a rate
//
// Run: build with -DRSN_BUILD_BENCH=ON, then
//   build/bench/rsn_kernel_bench [--benchmark_filter=dot] [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstring>
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
  benchmark::RegisterBenchmark("topk", BM_topk)->Arg(1)->Arg(10)->Arg(100);
  for (int d : {128, 384, 768, 1536})
    benchmark::RegisterBenchmark("fafcas_decode", BM_fafcas_decode)->Arg(d);
}

}  // namespace

int main(int argc, char **argv) {
  Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("resonance", rsn_version());
  benchmark::AddCustomContext("isa_supported_mask", std::to_string(rsn_isa_supported()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
