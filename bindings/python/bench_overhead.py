#!/usr/bin/env python3
"""What the Python binding costs over the C call, measured in one run.

For a database FILE (default /work/data/c100k.db, 100,000 x 384) and k:

  single   p50 of single searches (one query at a time, no hydration),
           alternating, query by query, between
             C call   rsn_search through bare ctypes with arguments built
                      once (a prebuilt rsn_search_params, the query's
                      pointer): the library's work plus ctypes' own call
                      cost, then rsn_results_free;
             binding  db.search(q, k): argument checks, the call, copying
                      ids and scores into numpy arrays, freeing the results.
           Reported: both p50s, their ratio, and the median of the paired
           differences (binding - C call, per query: slow drift of the
           machine cancels).
  tiny     the same pair on a 1,000-row database of the same dimension,
           where the scan costs microseconds: the binding's overhead
           without the scan's noise.
  batch    QPS of one batch of --batch queries, median of --reps,
           alternating rsn_search_batch through bare ctypes and
           db.search(batch).
  cli      with --cli: the CLI's in-process p50 and batch QPS
           (`resonance bench --synthetic N --dim D`, the same shape,
           generated data), for the C figure without Python at all.

No figure is asserted: this prints what it measured (and the CPU).
    bench_overhead.py [--db FILE] [-k 10] [--single 300] [--batch 1000] [--cli PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("RESONANCE_LIB", os.path.join(ROOT, "build", "libresonance.so"))

import resonance  # noqa: E402
from resonance import _lib  # noqa: E402


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def unit(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class CCall:
    """rsn_search / rsn_search_batch through bare ctypes, arguments prebuilt."""

    def __init__(self, db: resonance.Database, k: int):
        self.lib = _lib.load()
        self.h = ctypes.c_void_p(db._h)
        self.p = _lib.rsn_search_params()
        self.lib.rsn_search_params_init(ctypes.byref(self.p))
        self.p.k = k
        self.p.flags = _lib.RSN_SEARCH_NO_HYDRATE
        self.pp = ctypes.byref(self.p)
        self.out = ctypes.c_void_p()
        self.po = ctypes.byref(self.out)

    def single(self, ptr: int, d: int) -> None:
        if self.lib.rsn_search(self.h, ptr, d, self.pp, self.po):
            raise RuntimeError(self.lib.rsn_errmsg(None))
        self.lib.rsn_results_free(self.out)

    def batch(self, ptr: int, n: int, d: int) -> None:
        if self.lib.rsn_search_batch(self.h, ptr, n, d, self.pp, self.po):
            raise RuntimeError(self.lib.rsn_errmsg(None))
        self.lib.rsn_results_free(self.out)


def single_pair(db, qs, k, warm=20):
    """Alternate C call and binding query by query; times in microseconds."""
    c = CCall(db, k)
    d = qs.shape[1]
    ptrs = [q.ctypes.data for q in qs]  # rows of a C-contiguous array
    for i in range(min(warm, len(qs))):
        c.single(ptrs[i], d)
        db.search(qs[i], k=k)
    tc, tb = [], []
    pc = time.perf_counter_ns
    for i, q in enumerate(qs):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                t0 = pc()
                c.single(ptrs[i], d)
                tc.append((pc() - t0) / 1e3)
            else:
                t0 = pc()
                db.search(q, k=k)
                tb.append((pc() - t0) / 1e3)
    diffs = [b - a for a, b in zip(tc, tb)]
    return statistics.median(tc), statistics.median(tb), statistics.median(diffs)


def batch_pair(db, qs, k, reps):
    c = CCall(db, k)
    n, d = qs.shape
    ptr = qs.ctypes.data
    c.batch(ptr, n, d)
    db.search(qs, k=k)
    tc, tb = [], []
    for r in range(reps):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            if which == 0:
                c.batch(ptr, n, d)
                tc.append(time.perf_counter() - t0)
            else:
                db.search(qs, k=k)
                tb.append(time.perf_counter() - t0)
    return n / statistics.median(tc), n / statistics.median(tb)


def cli_figures(cli, n, d, k, nq, batch, reps):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        out = subprocess.run([cli, "bench", "--synthetic", str(n), "--dim", str(d), "-k", str(k),
                              "--queries", str(nq), "--batch-sizes", str(batch), "--reps",
                              str(reps), "--json"], capture_output=True, text=True, env=env,
                             check=True).stdout
    p50 = qps = None
    for line in out.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("measurement") == "latency" and o.get("system") == "resonance":
            p50 = o["p50_ms"]
        if o.get("measurement") == "batch" and o.get("batch_size") == batch:
            qps = o["qps"]
    return p50, qps, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="/work/data/c100k.db")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--single", type=int, default=300, help="single searches per mode")
    ap.add_argument("--batch", type=int, default=1000, help="queries in the batch")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cli", help="the resonance CLI, for its in-process figures")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)

    rng = np.random.default_rng(a.seed)
    print(f"cpu: {cpu_name()}, {os.cpu_count()} logical; python {platform.python_version()}, "
          f"numpy {np.__version__}; libresonance {resonance.version()} ({resonance.isa()})")
    t0 = time.perf_counter()
    with resonance.open(a.db, readonly=True) as db:
        n, d = len(db), db.dim
        print(f"db: {a.db}: {n} x {d}, opened and loaded in {time.perf_counter() - t0:.2f} s; "
              f"k = {a.k}; threads {db.stats().threads}")
        qs = unit(rng, a.single, d)
        c50, b50, diff = single_pair(db, qs, a.k)
        print(f"single ({a.single} each, alternating): C call p50 {c50:.1f} us, binding p50 "
              f"{b50:.1f} us, ratio {b50 / c50:.4f}; median paired difference {diff:+.1f} us")
        qb = unit(rng, a.batch, d)
        cq, bq = batch_pair(db, qb, a.k, a.reps)
        print(f"batch of {a.batch} (median of {a.reps}): C call {cq:.0f} QPS, binding {bq:.0f} "
              f"QPS, ratio {bq / cq:.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "tiny.db")
        with resonance.open(small, create=True, dim=d) as db:
            db.upsert(range(1000), unit(rng, 1000, d))
            c50, b50, diff = single_pair(db, unit(rng, 2000, d), a.k, warm=200)
            print(f"tiny (1000 x {d}, 2000 each): C call p50 {c50:.1f} us, binding p50 "
                  f"{b50:.1f} us; binding overhead {b50 - c50:.1f} us (median paired "
                  f"difference {diff:+.1f} us)")
    if a.cli:
        p50, qps, raw = cli_figures(a.cli, n, d, a.k, min(a.single, 200), a.batch, a.reps)
        if p50 is None:
            print("cli: could not read p50 from its output:\n" + raw[:2000])
        else:
            print(f"cli (resonance bench --synthetic {n} --dim {d}, in-process): p50 "
                  f"{p50 * 1e3:.1f} us, batch of {a.batch} {qps:.0f} QPS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
