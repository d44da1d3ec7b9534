#!/usr/bin/python3
"""compare.py -- FAISS IndexFlatIP and numpy on the files `resonance bench`
measures, for `resonance bench --compare` (bench/lib/compare.c runs it with
/usr/bin/python3, Debian's, which has python3-numpy and python3-faiss; then,
when $RSN_COMPARE_PYTHON_PYPI names a second python, e.g. the venv that
tools/bench.sh makes from bench/requirements-anchors.txt with PyPI's
faiss-cpu, once more with that one, "--systems faiss --suffix=-pypi", so
both FAISS builds are measured in the same run under their own names:
"faiss" and "faiss-pypi", "faiss-sel" and "faiss-sel-pypi").

Both sides are L2-normalised here, so inner product = cosine, as in
resonance.  For each system it prints JSON lines on stdout:
  {"measurement":"info","system":..,"blas":..}           what BLAS/build it ran
  {"measurement":"latency","system":..,"samples_ms":[..]} single queries, one
                                                          at a time
  {"measurement":"batch","system":..,"batch_size":B,"qps_reps":[..]}
  {"measurement":"ids","system":..,"path":..}            Q x kr int32 result
                                                          rows (-1 = none)
With --types (`resonance bench --filter-selectivity ... --compare`) it then
runs the filtered anchors on the same rows and queries: --types is one
byte per base row, the index j of the smallest selectivity whose subset
holds the row (255: none), so subset j is every row with a byte <= j, the
rows `type IN ('c0'..'cj')` matches.  Per subset and system:
  {"measurement":"filter_latency","system":..,"selectivity_index":j,
   "samples_ms":[..]}
  {"measurement":"filter_ids","system":..,"selectivity_index":j,
   "queries":Qa,"path":..}   Q x k int32 rows (-1 = none), the first Qa
                             queries answered
Systems: "faiss-sel" (IndexFlatIP searched with SearchParameters(sel=
IDSelectorBitmap)) and "numpy-sub" (the subset gathered in advance, then
searched as numpy above: the ideal a filter can only approach).
--systems faiss leaves numpy and numpy-sub out; --suffix is appended to
every system name (names must stay [a-z0-9_-]{1,15}).  The "info" line of
FAISS says which FAISS it is: version, package, the SIMD level it runs
(faiss.SIMDConfig where the build has it, as PyPI's 1.15 does, else the
swigfaiss module the loader picked), compile options, OpenMP threads, the
python, and the BLAS and OpenMP libraries the module links.
With --tiers (`resonance bench --tiers ... --compare`) it also runs the
tier anchors, FAISS's counterparts of resonance's quantized tiers, on the
same vectors, each for the tiers of the list:
  faiss-sq8   i8:  IndexScalarQuantizer QT_8bit, inner product (per-
                   dimension ranges, as resonance's i8); no rescoring
  faiss-rsq8  i8:  IndexRefineFlat over that SQ8 with k_factor = each
                   --tier-oversample: k x oversample candidates rescored
                   exactly (FAISS's own refine)
  faiss-fp16  f16: IndexScalarQuantizer QT_fp16, inner product; no rescoring
  faiss-bin   b1:  IndexBinaryFlat on the sign bits (bit j = x[j] > 0, as
                   resonance's b1), then numpy scores its k x oversample
                   candidates exactly in float32 and keeps the best k
One line per index and oversample (null: the index has none):
  {"measurement":"tier_point","system":..,"tier":..,"oversample":..,
   "rescore":..,"candidates":..,"samples_ms":[..],
   "batches":[{"batch_size":B,"qps_reps":[..]},..],"path":..,"build":..}
where path holds Q x k int32 rows (-1 = none); single queries stop after
--tier-max-seconds per point.  Without faiss: {"measurement":
"tier_missing","system":..,"tier":..,"error":..}.
Raw samples, not summaries: the C side computes the percentiles, medians
and recall with the same code it uses for resonance.  Timing follows the C
side: chunks of consecutive queries wrapping around, each rep at least
--min-rep-ms.  Single-query timing stops after --max-seconds (numpy at
large N is slow); the sample count says how many queries were timed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


def emit(**kw):
    print(json.dumps(kw), flush=True)


def load(path, fmt, dim):
    import numpy as np
    if fmt == "npy":
        a = np.load(path, mmap_mode="r")
    elif fmt == "fvecs":
        a = np.fromfile(path, "<i4").reshape(-1, dim + 1)[:, 1:].view("<f4")
    elif fmt == "bvecs":
        a = np.fromfile(path, np.uint8).reshape(-1, dim + 4)[:, 4:]
    else:
        a = np.fromfile(path, "<f4").reshape(-1, dim)
    a = np.array(a, dtype=np.float32, order="C")
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def mapped_blas():
    """BLAS/LAPACK libraries actually mapped into this process: Debian picks
    the implementation through update-alternatives, so the build config
    alone does not say which one runs."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if re.search(r"blas|lapack|mkl|atlas|blis", os.path.basename(p)):
                libs.add(os.path.realpath(p))
    return sorted(libs)


def time_single(search, q, max_seconds):
    samples, start = [], time.perf_counter()
    for i in range(q.shape[0]):
        t0 = time.perf_counter()
        search(q[i:i + 1])
        samples.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start > max_seconds:
            break
    return samples


def time_batches(search, q, bs, reps, min_rep_ms):
    import numpy as np
    nq = q.shape[0]
    qx = np.ascontiguousarray(q[np.arange(nq + bs) % nq])
    out = []
    pos = 0
    for _ in range(reps):
        done, t0 = 0, time.perf_counter()
        while True:
            search(qx[pos:pos + bs])
            pos = (pos + bs) % nq
            done += bs
            el = (time.perf_counter() - t0) * 1e3
            if el >= min_rep_ms:
                break
        out.append(done / (el / 1e3))
    return out


def run_system(name, search, q, a):
    import numpy as np
    emit(measurement="latency", system=name,
         samples_ms=time_single(search(a.k), q, a.max_seconds))
    for bs in a.batch_sizes:
        emit(measurement="batch", system=name, batch_size=bs,
             qps_reps=time_batches(search(a.k), q, bs, a.reps, a.min_rep_ms))
    ids = np.full((q.shape[0], a.kr), -1, dtype="<i4")
    for s in range(0, q.shape[0], 100):  # chunks bound numpy's score matrix
        got = search(a.kr)(q[s:s + 100])
        ids[s:s + got.shape[0], :got.shape[1]] = got
    path = os.path.join(a.out, name + ".ids.i32")
    ids.tofile(path)
    emit(measurement="ids", system=name, path=path)


def numpy_search(base):
    import numpy as np
    n = base.shape[0]

    def make(k):
        k = min(k, n)

        def search(qs):
            s = qs @ base.T
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(s, part, 1), axis=1,
                               kind="stable")
            return np.take_along_axis(part, order, 1)
        return search
    return make


def faiss_search(index):
    def make(k):
        return lambda qs: index.search(qs, k)[1]
    return make


def short_path(p):
    """The last two components of p's real path: enough to tell Debian's
    openblas-pthread/libblas.so.3 from a wheel's faiss_cpu.libs/..."""
    p = os.path.realpath(p)
    return os.path.join(os.path.basename(os.path.dirname(p)),
                        os.path.basename(p))


def faiss_info(faiss):
    """Which FAISS this is, for the "info" line (see the top of the file)."""
    import importlib.metadata as md
    pkg = "?"
    for dist in ("faiss-cpu", "faiss"):
        try:
            pkg = "%s %s" % (dist, md.version(dist))
            break
        except md.PackageNotFoundError:
            pass
    # The extension module the loader imported: swigfaiss, or one of the
    # per-ISA copies (swigfaiss_avx2, swigfaiss_avx512) of older wheels.
    mods = sorted(m for m in sys.modules
                  if re.match(r"faiss\._?swigfaiss", m))
    ext = [getattr(sys.modules[m], "__file__", None) for m in mods]
    ext = [f for f in ext if f and f.endswith(".so")]
    module = ", ".join(m.split(".")[-1] for m in mods
                       if not m.split(".")[-1].startswith("_")) or "?"
    simd = "module " + module
    cfg = getattr(faiss, "SIMDConfig", None)
    if cfg is not None:
        try:
            simd = "SIMD level %s (%s)" % (
                cfg.get_level_name(),
                "dynamic dispatch" if cfg.has_dynamic_dispatch()
                else "static")
        except Exception:  # an API that changed: keep the module name
            pass
    opts = faiss.get_compile_options() if hasattr(
        faiss, "get_compile_options") else "?"
    linked = []
    if ext:
        try:
            out = subprocess.run(["ldd", ext[0]], capture_output=True,
                                 text=True).stdout
            linked = sorted({short_path(l.split("=>")[1].split()[0])
                             for l in out.splitlines()
                             if "=>" in l and re.search(
                                 r"blas|lapack|mkl|omp", l)})
        except (OSError, IndexError):
            pass
    return ("faiss %s (%s, %s), %s, compile options: %s, %d OpenMP threads, "
            "python %s %s, linked: %s" % (
                faiss.__version__, pkg, os.path.dirname(faiss.__file__), simd,
                opts.strip(), faiss.omp_get_max_threads(),
                sys.version.split()[0], sys.executable,
                ", ".join(linked) or "?"))


def filtered_anchors(a, base, q, index, faiss):
    """--types: the filtered anchors (see the top of this file)."""
    import numpy as np
    codes = np.fromfile(a.types, np.uint8)
    if codes.shape[0] != base.shape[0]:
        raise SystemExit("compare.py: --types has %d rows, the base %d" %
                         (codes.shape[0], base.shape[0]))
    nq = q.shape[0]
    for j in range(a.nsel):
        mask = codes <= j
        subset = np.flatnonzero(mask)
        k = min(a.k, subset.shape[0])
        systems = []
        if k > 0 and a.systems == "all":
            sub = np.ascontiguousarray(base[subset])
            search_sub = numpy_search(sub)(k)
            systems.append(("numpy-sub" + a.suffix,
                            lambda qs: subset[search_sub(qs)]))
        if index is not None and k > 0:
            # Bit i of the bitmap is row i, lowest bit first (faiss's
            # IDSelectorBitmap reads bitmap[i >> 3] >> (i & 7)).
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(base.shape[0],
                                         faiss.swig_ptr(bitmap))
            params = faiss.SearchParameters(sel=sel)

            def search_faiss(qs, params=params, bitmap=bitmap, sel=sel):
                return index.search(qs, a.k, params=params)[1]
            systems.append(("faiss-sel" + a.suffix, search_faiss))
        for name, search in systems:
            ids = np.full((nq, a.k), -1, dtype="<i4")
            samples, start = [], time.perf_counter()
            for i in range(nq):
                t0 = time.perf_counter()
                got = search(q[i:i + 1])
                samples.append((time.perf_counter() - t0) * 1e3)
                ids[i, :got.shape[1]] = got[0]
                if time.perf_counter() - start > a.max_seconds:
                    break
            path = os.path.join(a.out, "%s.f%d.ids.i32" % (name, j))
            ids.tofile(path)
            emit(measurement="filter_latency", system=name,
                 selectivity_index=j, samples_ms=samples)
            emit(measurement="filter_ids", system=name, selectivity_index=j,
                 queries=len(samples), path=path)


def sign_bits(x):
    """b1 codes for IndexBinaryFlat: bit j set when x[j] > 0 (resonance's
    rule), 8 per byte; d is rounded up to a multiple of 8 with zero bits,
    which add nothing to a Hamming distance."""
    import numpy as np
    return np.packbits(x > 0, axis=1)


def rescore_top(base, q, cand, k):
    """The exact top k of each query among its candidates (-1 = none), by
    float32 inner product, best first."""
    import numpy as np
    out = np.full((q.shape[0], k), -1, dtype=np.int64)
    kk = min(k, cand.shape[1])
    for s in range(0, q.shape[0], 100):  # bounds the gathered rows
        c = cand[s:s + 100]
        valid = c >= 0
        rows = base[np.where(valid, c, 0)]
        sc = np.einsum("mkd,md->mk", rows, q[s:s + 100])
        sc[~valid] = -np.inf
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(sc, part, 1), axis=1,
                           kind="stable")
        out[s:s + 100, :kk] = np.take_along_axis(
            c, np.take_along_axis(part, order, 1), 1)
    return out


# The tier anchors: (name, tier, what it is, for the "build" field).
TIER_ANCHORS = [
    ("faiss-sq8", "i8", "IndexScalarQuantizer QT_8bit, inner product, no "
     "rescoring"),
    ("faiss-rsq8", "i8", "IndexRefineFlat over IndexScalarQuantizer "
     "QT_8bit, k_factor = oversample"),
    ("faiss-fp16", "f16", "IndexScalarQuantizer QT_fp16, inner product, no "
     "rescoring"),
    ("faiss-bin", "b1", "IndexBinaryFlat on sign bits, k x oversample "
     "candidates rescored exactly by numpy"),
]


def tier_names(a):
    """(name, tier, what) of every tier anchor a.tiers asks for."""
    return [(name, tier, what) for t in a.tiers
            for name, tier, what in TIER_ANCHORS if tier == t]


def tier_builders(a, base, faiss):
    """name -> make(): builds that anchor's index and returns
    [(oversample, candidates, search)], search(qs) giving the ids of the
    top a.k (oversample None: the index keeps no candidates)."""
    n, d, k = base.shape[0], base.shape[1], a.k
    ip, qt = faiss.METRIC_INNER_PRODUCT, faiss.ScalarQuantizer

    def sq(qtype):
        index = faiss.IndexScalarQuantizer(d, qtype, ip)
        index.train(base)
        index.add(base)
        return [(None, 0, lambda qs: index.search(qs, k)[1])]

    def refine():
        inner = faiss.IndexScalarQuantizer(d, qt.QT_8bit, ip)
        inner.train(base)
        index = faiss.IndexRefineFlat(inner)  # its flat copy: same metric
        index.add(base)
        points = []
        for os_ in a.tier_oversample:
            def search(qs, os_=os_, index=index, inner=inner):
                index.k_factor = float(os_)
                return index.search(qs, k)[1]
            points.append((os_, min(k * os_, n), search))
        return points

    def binary():
        index = faiss.IndexBinaryFlat(8 * ((d + 7) // 8))
        index.add(sign_bits(base))
        points = []
        for os_ in a.tier_oversample:
            kc = min(k * os_, n)

            def search(qs, kc=kc):
                cand = index.search(sign_bits(qs), kc)[1]
                return rescore_top(base, qs, cand, k)
            points.append((os_, kc, search))
        return points

    return {"faiss-sq8": lambda: sq(qt.QT_8bit), "faiss-rsq8": refine,
            "faiss-fp16": lambda: sq(qt.QT_fp16), "faiss-bin": binary}


def tier_anchors(a, base, q, faiss, info):
    """--tiers: the tier anchors (see the top of this file), one index at
    a time."""
    import numpy as np
    builders = tier_builders(a, base, faiss)
    for name, tier, what in tier_names(a):
        for os_, kc, search in builders[name]():
            ids = np.full((q.shape[0], a.k), -1, dtype="<i4")
            for s in range(0, q.shape[0], 100):
                got = search(q[s:s + 100])
                ids[s:s + got.shape[0], :got.shape[1]] = got
            path = os.path.join(a.out, "%s%s.t%d.ids.i32" % (
                name, a.suffix, os_ or 0))
            ids.tofile(path)
            emit(measurement="tier_point", system=name + a.suffix, tier=tier,
                 oversample=os_, rescore=os_ is not None, candidates=kc,
                 samples_ms=time_single(search, q, a.tier_max_seconds),
                 batches=[{"batch_size": bs,
                           "qps_reps": time_batches(search, q, bs, a.reps,
                                                    a.min_rep_ms)}
                          for bs in a.batch_sizes],
                 path=path, build="%s; %s" % (what, info))


def tier_missing(a, error):
    for name, tier, _ in tier_names(a):
        emit(measurement="tier_missing", system=name + a.suffix, tier=tier,
             error=error)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--format", default="f32")
    ap.add_argument("--queries", required=True)  # raw f32
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--kr", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch-sizes", default="1,10,100,1000",
                    type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-rep-ms", type=float, default=250.0)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--types", help="filtered anchors: one byte per row")
    ap.add_argument("--nsel", type=int, default=0)
    ap.add_argument("--unfiltered", type=int, default=1,
                    help="0: only the filtered anchors")
    ap.add_argument("--systems", choices=("all", "faiss"), default="all",
                    help="faiss: FAISS only (numpy and numpy-sub left out)")
    ap.add_argument("--suffix", default="",
                    help="appended to every system name, e.g. -pypi")
    ap.add_argument("--install", default="sudo apt-get install python3-faiss",
                    help="how to install faiss, for the 'missing' line")
    ap.add_argument("--tiers", default="",
                    type=lambda s: [t for t in s.split(",") if t],
                    help="tier anchors for these tiers (f32,f16,i8,b1)")
    ap.add_argument("--tier-oversample", default="1,2,4,8,16,32",
                    type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--tier-max-seconds", type=float, default=10.0)
    a = ap.parse_args()
    with_numpy = a.systems == "all"
    faiss_names = (["faiss"] if a.unfiltered else []) + (
        ["faiss-sel"] if a.types else [])
    try:
        import numpy as np
    except ImportError as e:  # a second python without the requirements
        numpy_names = (["numpy"] if a.unfiltered else []) + (
            ["numpy-sub"] if a.types else [])
        for name in (numpy_names if with_numpy else []) + faiss_names:
            emit(measurement="missing", system=name + a.suffix, error=str(e),
                 install=a.install)
        tier_missing(a, str(e))
        return
    base = load(a.base, a.format, a.dim)
    q = load(a.queries, "f32", a.dim)

    if with_numpy:
        cfg = getattr(np.__config__, "blas_opt_info", None) or {}
        numpy_blas = "numpy %s, build BLAS %s" % (
            np.__version__,
            ",".join(cfg.get("libraries", [])) or "see show_config")
        (q[:2] @ base[:4].T).sum()  # make numpy load its BLAS
        numpy_blas += "; mapped: " + (", ".join(mapped_blas()) or "none")
        if a.unfiltered:
            emit(measurement="info", system="numpy" + a.suffix,
                 blas=numpy_blas)
            run_system("numpy" + a.suffix, numpy_search(base), q, a)
        if a.types:
            emit(measurement="info", system="numpy-sub" + a.suffix,
                 blas=numpy_blas)

    try:
        import faiss
    except ImportError as e:
        for name in faiss_names:
            emit(measurement="missing", system=name + a.suffix, error=str(e),
                 install=a.install)
        tier_missing(a, str(e))
        if a.types and with_numpy:
            filtered_anchors(a, base, q, None, None)
        return
    if a.threads > 0:
        faiss.omp_set_num_threads(a.threads)
    info = faiss_info(faiss)
    index = faiss.IndexFlatIP(a.dim)
    index.add(base)
    if a.unfiltered:
        emit(measurement="info", system="faiss" + a.suffix, blas=info)
        run_system("faiss" + a.suffix, faiss_search(index), q, a)
    if a.types:
        emit(measurement="info", system="faiss-sel" + a.suffix, blas=info)
        filtered_anchors(a, base, q, index, faiss)
    if a.tiers:
        del index  # its copy of the base: the tier anchors make their own
        tier_anchors(a, base, q, faiss, info)

if __name__ == "__main__":
    sys.exit(main())
