#!/usr/bin/env python3
"""Search the shards of a manifest on a local Dask cluster and check the
answer against the unsplit database: the same ids and score bits.

    cluster_search.py shards/manifest.json graph.db queries.f32 [-k 3] [--workers 3]

The queries file is raw little-endian float32 (the database's dimension).
Every process listens on loopback only.  For a real cluster, pass
Client("tcp://scheduler:8786") to ShardedIndex instead of a LocalCluster.
"""

import argparse
import sys

import numpy as np

import resonance
from resonance.cluster import ShardedIndex


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("db", help="the database the shards were split from")
    ap.add_argument("queries", help="raw float32 queries")
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--workers", type=int, default=3)
    a = ap.parse_args()
    from distributed import Client, LocalCluster
    with resonance.open(a.db, readonly=True) as db:
        q = np.fromfile(a.queries, dtype="<f4").reshape(-1, db.dim)
        want = db.search(q, k=a.k)
    with LocalCluster(n_workers=a.workers, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0",
                      worker_dashboard_address="127.0.0.1:0", silence_logs=40) as lc, \
            Client(lc) as client, ShardedIndex(client, a.manifest) as index:
        got = index.search(q, k=a.k)
        print("rows per shard:", index.rows())
    for n in range(len(q)):
        c = int(got.counts[n])
        print(f"query {n}:", ", ".join(f"{i} {s:.4f}"
                                      for i, s in zip(got.ids[n, :c], got.scores[n, :c])))
    same = bool(np.array_equal(got.counts, want.counts) and (got.ids == want.ids).all()
                and got.scores.tobytes() == want.scores.tobytes())
    print("identical to the unsplit database (ids and score bits):", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
