#!/usr/bin/python3
"""compare.py -- FAISS IndexFlatIP and numpy on the files `resonance bench`
measures, for `resonance bench --compare` (tools/cli_bench.c runs it with
/usr/bin/python3, Debian's, which has python3-numpy and python3-faiss).

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
        if k > 0:
            sub = np.ascontiguousarray(base[subset])
            search_sub = numpy_search(sub)(k)
            systems.append(("numpy-sub",
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
            systems.append(("faiss-sel", search_faiss))
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
    a = ap.parse_args()
    import numpy as np
    base = load(a.base, a.format, a.dim)
    q = load(a.queries, "f32", a.dim)

    cfg = getattr(np.__config__, "blas_opt_info", None) or {}
    numpy_blas = "numpy %s, build BLAS %s" % (
        np.__version__, ",".join(cfg.get("libraries", [])) or "see show_config")
    (q[:2] @ base[:4].T).sum()  # make numpy load its BLAS
    numpy_blas += "; mapped: " + (", ".join(mapped_blas()) or "none")
    if a.unfiltered:
        emit(measurement="info", system="numpy", blas=numpy_blas)
        run_system("numpy", numpy_search(base), q, a)
    if a.types:
        emit(measurement="info", system="numpy-sub", blas=numpy_blas)

    try:
        import faiss
    except ImportError as e:
        for name in ["faiss"] + (["faiss-sel"] if a.types else []):
            emit(measurement="missing", system=name, error=str(e),
                 install="sudo apt-get install python3-faiss")
        if a.types:
            filtered_anchors(a, base, q, None, None)
        return
    if a.threads > 0:
        faiss.omp_set_num_threads(a.threads)
    so = [os.path.join(os.path.dirname(faiss.__file__), f)
          for f in os.listdir(os.path.dirname(faiss.__file__))
          if f.startswith("_swigfaiss") and f.endswith(".so")]
    linked = []
    if so:
        try:
            out = subprocess.run(["ldd", so[0]], capture_output=True,
                                 text=True).stdout
            linked = sorted({l.split("=>")[1].split()[0]
                             for l in out.splitlines()
                             if "=>" in l and re.search(
                                 r"blas|lapack|mkl|openmp|gomp", l)})
        except (OSError, IndexError):
            pass
    opts = faiss.get_compile_options() if hasattr(
        faiss, "get_compile_options") else "?"
    info = ("faiss %s from %s (compile options: %s), %d OpenMP threads, "
            "linked: %s" % (faiss.__version__, faiss.__file__, opts.strip(),
                            faiss.omp_get_max_threads(),
                            ", ".join(linked) or "?"))
    index = faiss.IndexFlatIP(a.dim)
    index.add(base)
    if a.unfiltered:
        emit(measurement="info", system="faiss", blas=info)
        run_system("faiss", faiss_search(index), q, a)
    if a.types:
        emit(measurement="info", system="faiss-sel", blas=info)
        filtered_anchors(a, base, q, index, faiss)


if __name__ == "__main__":
    sys.exit(main())
