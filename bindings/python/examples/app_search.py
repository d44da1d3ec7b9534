#!/usr/bin/env python3
"""The knowledge-graph app's search, through resonance.

The app's searchByVector(vector, limit) reads every node's embedding, scores
it by dot product with the query (FAFCAS blobs are unit length, so this is
cosine), drops scores <= 0, sorts best first and returns the first `limit`
nodes as {id, score, title, type, domain, layer, date, meta, summary}.
search_by_vector() below gives the same answer from resonance's arena:
min_score=0 is the app's "> 0" and hydrate=True fetches the columns for the
hits only.  --check also runs the app's algorithm itself (numpy over every
blob read with sqlite3) and compares the two.

    app_search.py .amalfa/resonance.db --vector query.f32 --limit 5 --check
    app_search.py .amalfa/resonance.db --id note-7 --limit 5

The vector file is raw little-endian float32 (the database's dimension) or
.npy.  Set RESONANCE_LIB if libresonance.so is not installed.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from typing import List

import numpy as np

import resonance


def search_by_vector(db: resonance.Database, vector: np.ndarray, limit: int = 10) -> List[dict]:
    """The app's searchByVector: the `limit` best nodes with score > 0."""
    return db.search(vector, k=limit, min_score=0.0, hydrate=True).to_dicts()


def app_loop(path: str, vector: np.ndarray, limit: int) -> List[dict]:
    """The app's own algorithm, for comparison: score every stored blob."""
    q = np.asarray(vector, np.float64)
    q /= np.linalg.norm(q)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    scored = []
    for id_, blob in con.execute("SELECT id, embedding FROM nodes WHERE embedding IS NOT NULL"):
        v = np.frombuffer(blob, "<f4").astype(np.float64)
        if v.shape != q.shape or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-6:
            continue  # the app would skip (or crash on) these; resonance counts them
        s = float(v @ q / np.linalg.norm(v))
        if s > 0:
            scored.append((-s, id_))
    scored.sort()
    out = []
    for neg, id_ in scored[:limit]:
        row = con.execute("SELECT title, type, domain, layer, date, meta, summary FROM nodes "
                          "WHERE id = ?", (id_,)).fetchone()
        d = {"id": id_, "score": -neg}
        d.update({k: v for k, v in zip(("title", "type", "domain", "layer", "date", "meta",
                                        "summary"), row) if v is not None})
        out.append(d)
    con.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--vector", help="query vector: raw float32 file or .npy")
    g.add_argument("--id", help="use this node's stored embedding as the query")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--check", action="store_true",
                    help="also run the app's loop and compare (exit 1 if they differ)")
    a = ap.parse_args(argv)

    with resonance.open(a.db, readonly=True) as db:
        if a.id is not None:
            vector = db.get(a.id).embedding
        elif a.vector.endswith(".npy"):
            vector = np.load(a.vector).reshape(-1)
        else:
            vector = np.fromfile(a.vector, "<f4")
        t0 = time.perf_counter()
        hits = search_by_vector(db, vector, a.limit)
        ms = (time.perf_counter() - t0) * 1e3
    json.dump(hits, sys.stdout, indent=1)
    print()
    print(f"resonance: {len(hits)} hits in {ms:.2f} ms", file=sys.stderr)
    if a.check:
        t0 = time.perf_counter()
        want = app_loop(a.db, vector, a.limit)
        ms = (time.perf_counter() - t0) * 1e3
        same = ([h["id"] for h in hits] == [h["id"] for h in want]
                and all(abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(hits, want))
                and [{k: v for k, v in h.items() if k != "score"} for h in hits]
                == [{k: v for k, v in h.items() if k != "score"} for h in want])
        print(f"app loop: {len(want)} hits in {ms:.2f} ms; "
              f"{'same answer' if same else 'DIFFERENT answer'}", file=sys.stderr)
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
