#!/usr/bin/env python3
"""bench_cluster.py -- what the Dask path costs, and a model for S machines.

For each shard count S it splits the database with `resonance shard` (kept
in --work for the next run), then times one batch of B queries, median of
--reps runs, three ways in the same run:

  single   one process, the whole database (resonance.open + search)
  inproc   one process, the S shard files searched one after another with
           every core each, then merged (merge_topk): the same rows and the
           same work as the cluster, without Dask
  dask     ShardedIndex on a LocalCluster of S worker processes (1 thread
           each, the shards' searches sharing this machine's cores)

The Dask overhead per batch is dask - inproc; on a machine with fewer cores
than S it also holds the S workers' contention for them.  So S machines
are simulated, not measured: what is measured is each shard's own batch
time with the whole machine to itself (t_i), the merge, and the Dask path
alone (rpc: a call to every actor carrying the batch and doing nothing);
the model for S machines is

  latency(S)    = max_i t_i + merge(S) + rpc(S) + rtt + bytes(S) / net
  throughput(S) = B / latency(S)   (one batch at a time)

with max_i t_i ~ t_single / S for S beyond the measured points, rtt and net
(the network round trip and bandwidth) as parameters.  Prints a table and,
with --plot DIR, writes cluster_model.png (gnuplot) and the data beside it.

Usage: bench_cluster.py --db FILE [--shards 1,2,4] [--batch 100] [--k 10]
                        [--reps 5] [--work DIR] [--rtt-ms 0.2] [--net-gbps 10]
                        [--json FILE] [--plot DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("RESONANCE_LIB", os.path.join(ROOT, "build", "libresonance.so"))

import resonance  # noqa: E402
from resonance import cluster  # noqa: E402


def log(msg: str) -> None:
    print(f"bench_cluster: {msg}", file=sys.stderr, flush=True)


def median_time(fn, reps: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def make_shards(cli: str, db: str, s: int, work: str) -> str:
    out = os.path.join(work, f"s{s}")
    man = os.path.join(out, "manifest.json")
    if os.path.exists(man):
        with open(man) as f:
            m = json.load(f)
        st = os.stat(db)
        if m.get("bench_source") == [os.path.abspath(db), st.st_size, st.st_mtime_ns]:
            return man
    log(f"splitting {db} into {s} shard(s) in {out}")
    t0 = time.perf_counter()
    subprocess.run([cli, "shard", db, "--shards", str(s), "--out", out, "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    log(f"  {time.perf_counter() - t0:.1f} s")
    with open(man) as f:
        m = json.load(f)
    st = os.stat(db)
    m["bench_source"] = [os.path.abspath(db), st.st_size, st.st_mtime_ns]
    with open(man, "w") as f:
        json.dump(m, f)
    return man


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--db", required=True)
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(ROOT, "build-release", "cluster-bench"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "tools", "resonance"))
    ap.add_argument("--rtt-ms", type=float, default=0.2)
    ap.add_argument("--net-gbps", type=float, default=10.0)
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--plot")
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    shards = [int(x) for x in a.shards.split(",")]
    os.makedirs(a.work, exist_ok=True)
    cores = os.cpu_count() or 1
    with resonance.open(a.db, readonly=True) as db:
        n, d = len(db), db.dim
        rng = np.random.default_rng(1)
        q = rng.standard_normal((a.batch, d)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        log(f"{n} rows x {d}, batch {a.batch}, k {a.k}, {a.reps} reps, {cores} cores")
        t_single = median_time(lambda: db.search(q, k=a.k), a.reps)
        want = db.search(q, k=a.k)
    log(f"single: {t_single * 1e3:.1f} ms a batch, {a.batch / t_single:.1f} q/s")
    rows = []
    for s in shards:
        man = make_shards(a.cli, a.db, s, a.work)
        m = cluster.load_manifest(man)
        dbs = [resonance.open(sh["file"], readonly=True) for sh in m["shards"]]
        try:
            per = [median_time(lambda x=x: x.search(q, k=a.k), a.reps) for x in dbs]
            parts = [x.search(q, k=a.k) for x in dbs]
            trip = [(r.scores, r.ids, r.counts) for r in parts]
            t_merge = median_time(lambda: cluster.merge_topk(trip, a.k), a.reps)

            def inproc():
                rs = [x.search(q, k=a.k) for x in dbs]
                return cluster.merge_topk([(r.scores, r.ids, r.counts) for r in rs], a.k)
            t_inproc = median_time(inproc, a.reps)
        finally:
            for x in dbs:
                x.close()
        threads = max(1, cores // s)
        lc = LocalCluster(n_workers=s, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address="127.0.0.1:0",
                          worker_dashboard_address="127.0.0.1:0", silence_logs=40)
        client = Client(lc)
        try:
            with cluster.ShardedIndex(client, man, timeout=600, threads=threads) as index:
                got = index.search(q, k=a.k)
                exact = bool(np.array_equal(got.counts, want.counts) and
                             (got.ids == want.ids).all() and
                             got.scores.tobytes() == want.scores.tobytes())
                t_dask = median_time(lambda: index.search(q, k=a.k), a.reps)
                t_rpc = median_time(lambda: index.ping(q), max(a.reps, 20))
        finally:
            client.close()
            lc.close()
        over = t_dask - t_inproc
        row = {"S": s, "t_single_ms": t_single * 1e3, "t_shard_ms": [t * 1e3 for t in per],
               "t_merge_ms": t_merge * 1e3, "t_inproc_ms": t_inproc * 1e3,
               "t_dask_ms": t_dask * 1e3, "overhead_ms": over * 1e3, "rpc_ms": t_rpc * 1e3,
               "qps_dask": a.batch / t_dask, "qps_inproc": a.batch / t_inproc,
               "qps_single": a.batch / t_single, "exact": exact, "worker_threads": threads}
        rows.append(row)
        log(f"S={s}: shards {', '.join(f'{t * 1e3:.1f}' for t in per)} ms, merge "
            f"{t_merge * 1e3:.2f} ms, in-process {t_inproc * 1e3:.1f} ms, dask "
            f"{t_dask * 1e3:.1f} ms (overhead {over * 1e3:+.1f} ms; round trip with the "
            f"queries {t_rpc * 1e3:.2f} ms), exact={exact}")

    # the model for S machines
    bytes_q = a.batch * d * 4
    bytes_r = a.batch * a.k * (4 + 24)
    net = a.net_gbps * 1e9 / 8
    over_fit = max(r["rpc_ms"] for r in rows) / 1e3  # beyond the measured S
    model = []
    for s in sorted(set(shards + [1, 2, 4, 8, 16, 32])):
        meas = next((r for r in rows if r["S"] == s), None)
        scan = max(meas["t_shard_ms"]) / 1e3 if meas else t_single / s
        merge = meas["t_merge_ms"] / 1e3 if meas else rows[-1]["t_merge_ms"] / 1e3 * s / rows[-1]["S"]
        over = meas["rpc_ms"] / 1e3 if meas else over_fit
        lat = scan + merge + over + a.rtt_ms / 1e3 + (bytes_q + s * bytes_r) / net
        model.append({"S": s, "scan_ms": scan * 1e3, "merge_ms": merge * 1e3,
                      "overhead_ms": over * 1e3,
                      "latency_ms": lat * 1e3, "qps": a.batch / lat, "measured_scan": bool(meas)})

    print(f"\n{n} rows x {d}, batch of {a.batch}, k = {a.k}, median of {a.reps}, {cores} cores")
    print(f"single database in-process: {t_single * 1e3:.1f} ms a batch = {a.batch / t_single:.1f} q/s\n")
    print("| S | slowest shard alone | merge | in-process, S files | Dask | Dask - in-process | "
          "Dask round trip alone | Dask q/s | exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['S']} | {max(r['t_shard_ms']):.1f} ms | {r['t_merge_ms']:.2f} ms | "
              f"{r['t_inproc_ms']:.1f} ms | {r['t_dask_ms']:.1f} ms | {r['overhead_ms']:+.1f} ms "
              f"({r['t_dask_ms'] / r['t_inproc_ms']:.2f}x) | {r['rpc_ms']:.2f} ms | "
              f"{r['qps_dask']:.1f} | {r['exact']} |")
    print(f"\nmodel for S machines (Dask round trip as measured at S, else "
          f"{over_fit * 1e3:.2f} ms; rtt {a.rtt_ms} ms, {a.net_gbps} Gb/s):\n")
    print("| S | scan | merge | Dask round trip | latency | q/s | scan from |")
    print("|---|---|---|---|---|---|---|")
    for m_ in model:
        print(f"| {m_['S']} | {m_['scan_ms']:.1f} ms | {m_['merge_ms']:.2f} ms | "
              f"{m_['overhead_ms']:.2f} ms | "
              f"{m_['latency_ms']:.1f} ms | {m_['qps']:.1f} | "
              f"{'measured shard' if m_['measured_scan'] else 'single / S'} |")
    out = {"n": n, "dim": d, "batch": a.batch, "k": a.k, "reps": a.reps, "cores": cores,
           "rtt_ms": a.rtt_ms, "net_gbps": a.net_gbps, "rows": rows, "model": model}
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(out, f, indent=1)
    if a.plot:
        plot(a.plot, rows, model, out)
    return 0 if all(r["exact"] for r in rows) else 1


def plot(dirname: str, rows, model, out) -> None:
    if not shutil.which("gnuplot"):
        log("no gnuplot: no plot (apt-get install gnuplot-nox)")
        return
    os.makedirs(dirname, exist_ok=True)
    mdat = os.path.join(dirname, "cluster_model.dat")
    pdat = os.path.join(dirname, "cluster_measured.dat")
    with open(mdat, "w") as f:
        for m in model:
            f.write(f"{m['S']} {m['latency_ms']:.3f} {m['qps']:.3f}\n")
    with open(pdat, "w") as f:
        for r in rows:
            sim = max(r["t_shard_ms"]) + r["t_merge_ms"] + r["rpc_ms"]
            f.write(f"{r['S']} {r['t_dask_ms']:.3f} {sim:.3f}\n")
    png = os.path.join(dirname, "cluster_model.png")
    script = f"""set terminal pngcairo size 900,560
set output '{png}'
set title "Sharded exact search: {out['n']} x {out['dim']}, batch of {out['batch']}, k = {out['k']}"
set xlabel 'shards S (machines in the model)'
set ylabel 'ms per batch'
set logscale xy
set key top right
set grid
plot '{mdat}' using 1:2 with linespoints title 'model: S machines (rtt {out['rtt_ms']} ms)', \\
     '{pdat}' using 1:3 with points pt 7 ps 1.5 title 'measured: slowest shard alone + merge + Dask round trip', \\
     '{pdat}' using 1:2 with points pt 5 ps 1.5 title 'measured: S workers sharing {out['cores']} cores'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    log(f"wrote {png}")


if __name__ == "__main__":
    sys.exit(main())
