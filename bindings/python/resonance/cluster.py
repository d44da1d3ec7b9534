"""resonance.cluster: exact search over shards held by Dask distributed workers.

The shards are ordinary databases that ``resonance shard DB --shards S --out
DIR`` made: the nodes split by a stable hash of the id (``shard_of``), the
edges kept whole in every shard.  A ShardedIndex starts one Dask actor per
shard, each holding its file open with the binding on one worker, sends
every search to all of them at once and merges their top-k.

Why the merge is exact.  The library orders hits by score descending, then
id ascending: a total order.  Every hit of the global top-k is, within its
own shard, among that shard's top-k under the same order, and a row's score
depends only on the row and the query (the kernels keep one accumulator per
row), so it is the same number in the shard as in one database holding every
row.  The top-k of the union of the shards' top-k is therefore the global
top-k, ties included, bit for bit.  Filters keep this: a SQL or id filter
selects rows by their own columns, and a graph filter sees every edge in
every shard.  A tier search (tier="i8", ...) is not exact in one database
either, and sharded it is a different approximation: each shard keeps its
own k x oversample candidates and rescores them in f32.  Every hit is then a
real row with its exact score, never above the exact answer's hit of the
same rank.  With b1 (sign bits, a row's code depends on that row alone) the
union of the shards' candidates holds every candidate the single database
keeps, so each merged hit scores at least as high as the single database's
of the same rank.  i8 codes use per-dimension ranges fitted to each file's
rows, so a shard's candidates can differ from the single database's either
way (tests/test_cluster.py checks each statement).

Faults.  Dask actors are not resilient: when the worker holding a shard dies
its actor is gone.  A call that fails to reach its actor, or does not answer
within ``timeout`` seconds, makes the index re-create that shard's actor on
a live worker from the shard file and retry the call once; if the shard still
does not answer, the call raises ShardUnavailableError naming it.  There are
no silent partial results: ``search(..., partial=True)`` returns what the
answering shards found, with ``res.shards_answered`` and ``res.shards_missing``
saying which is which.

Writes.  ``upsert`` and ``delete`` route each id to its shard by the same
hash and run one transaction per shard, the shards in parallel.  A write
spanning shards is not atomic across them: if one shard fails, the error
names it and the shards listed in ``err.committed`` did commit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import Error, Results
from . import open as _open

__all__ = ["ShardedIndex", "ShardedResults", "ShardUnavailableError", "ManifestError",
           "shard_of", "shard_hash", "merge_topk", "load_manifest"]

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3


class ShardUnavailableError(Error):
    """A shard did not answer, even after its actor was re-created once.

    ``shard`` is its index, ``file`` its path; ``committed`` lists the shards
    that did commit a write the failing shard was part of."""

    def __init__(self, shard: int, file: str, reason: str,
                 committed: Sequence[int] = ()):
        self.shard = shard
        self.file = file
        self.reason = reason
        self.committed = list(committed)
        msg = f"shard {shard} ({file}) is unavailable: {reason}"
        if self.committed:
            msg += f" (shards {self.committed} committed their part)"
        super().__init__(msg)


class ManifestError(Error):
    """The manifest is unreadable, malformed or does not match its shards."""


def shard_hash(id: str) -> int:
    """The library's rsn_shard_hash: FNV-1a 64 of the id's UTF-8 bytes, then
    MurmurHash3's fmix64 finalizer (resonance.h defines it; it never
    changes, since shard files were split by it)."""
    m = 0xFFFFFFFFFFFFFFFF
    h = FNV_OFFSET
    for b in id.encode("utf-8"):
        h = ((h ^ b) * FNV_PRIME) & m
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & m
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & m
    return h ^ (h >> 33)


def shard_of(id: str, shards: int) -> int:
    """The shard an id belongs to among `shards`: shard_hash(id) % shards,
    as the library's rsn_shard_of and `resonance shard` compute it."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return shard_hash(id) % shards


def load_manifest(manifest: Any) -> Dict[str, Any]:
    """Read a manifest (a path to manifest.json, or its dict), resolve each
    shard's file against the manifest's folder and check the shard list is
    whole (indexes 0..S-1, once each)."""
    base = os.getcwd()
    if isinstance(manifest, (str, os.PathLike)):
        path = os.fspath(manifest)
        try:
            with open(path, "r", encoding="utf-8") as f:
                m = json.load(f)
        except OSError as e:
            raise ManifestError(f"{path}: cannot read it: {e.strerror}") from e
        except ValueError as e:
            raise ManifestError(f"{path}: not JSON: {e}") from e
        base = os.path.dirname(os.path.abspath(path))
    elif isinstance(manifest, dict):
        m = manifest
    else:
        raise ManifestError("manifest must be a path or a dict")
    if not isinstance(m, dict) or not isinstance(m.get("shards"), list):
        raise ManifestError("manifest: no \"shards\" list")
    shards = m["shards"]
    count = m.get("shard_count", len(shards))
    if count != len(shards) or count < 1:
        raise ManifestError(f"manifest: shard_count {count} but {len(shards)} shards listed")
    seen = set()
    out = []
    for s in shards:
        if not isinstance(s, dict) or not isinstance(s.get("index"), int) \
                or not isinstance(s.get("file"), str):
            raise ManifestError("manifest: each shard needs an integer index and a file")
        i = s["index"]
        if i < 0 or i >= count or i in seen:
            raise ManifestError(f"manifest: shard index {i} out of range or repeated")
        seen.add(i)
        out.append(dict(s, file=os.path.join(base, s["file"])))
    out.sort(key=lambda s: s["index"])
    return dict(m, shards=out, shard_count=count)


class _Shard:
    """The actor: one shard file held open on one worker."""

    def __init__(self, path: str, index: int, count: int, open_kw: Dict[str, Any]):
        if not os.path.exists(path):
            raise FileNotFoundError(f"shard {index}: {path}: no such file")
        self.path = path
        self.index = index
        self.db = _open(path, **open_kw)
        self._check_meta(count)

    def _check_meta(self, count: int) -> None:
        import sqlite3
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = dict(con.execute(
                "SELECT key, value FROM rsn_meta WHERE key IN ('shard_index', 'shard_count')"))
        finally:
            con.close()
        got = (int(rows.get("shard_index", -1)), int(rows.get("shard_count", -1)))
        if got != (self.index, count):
            raise ValueError(f"{self.path} records shard {got[0]} of {got[1]}, "
                             f"the manifest says {self.index} of {count}")

    def search(self, q: np.ndarray, k: int, kw: Dict[str, Any]):
        r = self.db.search(q, k=k, **kw)
        return r.scores, r.ids, r.counts

    def upsert(self, ids: List[str], vectors: np.ndarray, meta: Dict[str, Any]) -> int:
        return self.db.upsert(ids, vectors, **meta)

    def delete(self, ids: List[str], missing_ok: bool) -> int:
        return self.db.delete(ids, missing_ok=missing_ok)

    def rows(self) -> int:
        return len(self.db)

    def pid(self) -> int:
        return os.getpid()

    def ping(self, payload: Any) -> int:
        """Nothing but the round trip (and the payload's transfer), for
        measuring what the Dask path itself costs (bench_cluster.py)."""
        return getattr(payload, "nbytes", 0)

    def close(self) -> None:
        self.db.close()


class ShardedResults(Results):
    """Results merged from the shards.  ``shards_answered`` and
    ``shards_missing`` list shard indexes (missing is empty unless the search
    was asked for partial results)."""

    __slots__ = ("shards_answered", "shards_missing")


def merge_topk(parts: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], k: int
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge per-shard (scores (n, k), ids (n, k), counts (n,)) into the
    global top-k: score descending, then id ascending (the library's order;
    numpy compares str by code point, the same order as UTF-8 bytes).
    Padding as in Results: NaN scores and None ids beyond counts."""
    if not parts:
        raise ValueError("nothing to merge")
    n = parts[0][2].shape[0]
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    width = scores.shape[1]
    valid = np.concatenate([np.arange(p[0].shape[1])[None, :] < p[2][:, None]
                            for p in parts], axis=1)
    key_score = np.where(valid, -scores.astype(np.float64), np.inf)
    key_id = np.where(valid, ids, "").astype(str)
    rows = np.repeat(np.arange(n), width).reshape(n, width)
    order = np.lexsort((key_id.ravel(), key_score.ravel(), rows.ravel()))
    order = order.reshape(n, width)[:, :k] if width >= k else order.reshape(n, width)
    pick_r = np.arange(n)[:, None]
    pick_c = order - pick_r * width
    counts = np.minimum(valid.sum(axis=1), k).astype(np.int64)
    out_s = np.full((n, k), np.nan, dtype=np.float32)
    out_i = np.full((n, k), None, dtype=object)
    w = min(width, k)
    out_s[:, :w] = scores[pick_r, pick_c[:, :w]]
    out_i[:, :w] = ids[pick_r, pick_c[:, :w]]
    keep = np.arange(k)[None, :] < counts[:, None]
    out_s[~keep] = np.nan
    out_i[~keep] = None
    return out_s, out_i, counts


class ShardedIndex:
    """Exact search over the shards of a manifest, one Dask actor per shard.

    >>> from distributed import Client, LocalCluster
    >>> client = Client(LocalCluster(n_workers=2, dashboard_address=None))
    >>> with ShardedIndex(client, "shards/manifest.json") as index:
    ...     res = index.search(queries, k=10)

    Parameters
    ----------
    client : distributed.Client
    manifest : path to manifest.json or its dict
    timeout : float
        Seconds a shard may take to answer one call before it is taken as
        lost (its actor is then re-created once).  Also bounds the start.
    tiers : iterable of "f16", "i8", "b1", or "all"
        Tiers each shard builds at open, for search(tier=...).
    **open_kw
        Other keyword arguments of resonance.open for every shard
        (auto_refresh=True to see other writers' commits, threads=...).

    search_like is not offered: the library scores a like-search with the
    stored row as it is, while a search normalises its query, so emulating
    one with the other could differ in the last bit of a score.
    """

    def __init__(self, client: Any, manifest: Any, timeout: float = 60.0,
                 tiers: Any = (), **open_kw: Any):
        self.client = client
        self.open_kw = dict(open_kw, tiers=tiers)
        self.manifest = load_manifest(manifest)
        self.count = self.manifest["shard_count"]
        self.timeout = float(timeout)
        self.dim = self.manifest.get("dim")
        self._mu = threading.Lock()
        self._actors: List[Any] = [None] * self.count
        self._futures: List[Any] = [None] * self.count  # keep the actors alive
        self._where: Dict[int, str] = {}  # the worker each shard was put on
        self.restarts = 0
        missing = [s for s in self.manifest["shards"] if not os.path.exists(s["file"])]
        if missing:
            s = missing[0]
            raise ShardUnavailableError(s["index"], s["file"], "no such file")
        for i in range(self.count):
            self._start(i, avoid=None)

    # ---- actors -------------------------------------------------------------

    def _workers(self) -> List[str]:
        return sorted(self.client.scheduler_info()["workers"])

    def _start(self, i: int, avoid: Optional[str]) -> None:
        shard = self.manifest["shards"][i]
        workers = self._workers()
        live = [w for w in workers if w != avoid] or workers
        if not live:
            raise ShardUnavailableError(i, shard["file"], "the cluster has no workers")
        w = live[i % len(live)]
        fut = self.client.submit(_Shard, shard["file"], i, self.count, self.open_kw, actor=True,
                                 workers=[w], allow_other_workers=False, pure=False,
                                 key=f"resonance-shard-{i}-{uuid.uuid4().hex}")
        try:
            actor = fut.result(timeout=self.timeout)
        except Exception as e:  # the shard file, its meta or the worker
            raise ShardUnavailableError(i, shard["file"], f"{type(e).__name__}: {e}") from e
        with self._mu:
            self._actors[i] = actor
            self._futures[i] = fut
            self._where[i] = w

    def _call_all(self, shards: Sequence[int], method: str, args_of, partial: bool = False):
        """Call method on the given shards at once; re-create a shard that
        fails and retry it once.  Returns {shard: answer} and the list of
        shards that did not answer (only with partial=True)."""
        def send(i):
            return getattr(self._actors[i], method)(*args_of(i))

        futs, out, failed = {}, {}, {}
        for i in shards:  # a lost actor may fail at the call itself
            try:
                futs[i] = send(i)
            except Error:
                raise
            except Exception as e:
                failed[i] = e
        for i, f in futs.items():
            try:
                out[i] = f.result(timeout=self.timeout)
            except Error:
                raise  # the library's own answer (bad k, bad filter ...)
            except Exception as e:
                failed[i] = e
        missing = []
        for i, e in failed.items():
            try:
                self.restarts += 1
                self._start(i, avoid=self._where.get(i))
                out[i] = send(i).result(timeout=self.timeout)
            except Error as e2:
                if not isinstance(e2, ShardUnavailableError):
                    raise
                if not partial:
                    raise
                missing.append(i)
            except Exception as e2:
                if not partial:
                    raise ShardUnavailableError(
                        i, self.manifest["shards"][i]["file"],
                        f"{type(e2).__name__}: {e2} (first: {type(e).__name__}: {e})") from e2
                missing.append(i)
        return out, missing

    # ---- searches -----------------------------------------------------------

    def search(self, queries: Any, k: int = 10, filter: Any = None, tier: Optional[str] = None,
               min_score: Optional[float] = None, oversample: int = 0,
               partial: bool = False) -> ShardedResults:
        """Exact top-k of one query (d,) or a batch (n, d) over every shard:
        the same hits, scores and order as one database holding every row.
        Filters and tiers as in Database.search (see the module's doc for
        what a sharded tier search guarantees)."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim not in (1, 2):
            raise ValueError("queries must be (d,) or (n, d)")
        q = np.ascontiguousarray(q.reshape(1, -1) if q.ndim == 1 else q)
        kw = {"filter": filter, "tier": tier, "min_score": min_score,
              "oversample": oversample}
        return self._gather("search", lambda i: (q, k, kw), k, partial)

    def _gather(self, method: str, args_of, k: int, partial: bool) -> ShardedResults:
        out, missing = self._call_all(range(self.count), method, args_of, partial)
        answered = sorted(out)
        if not answered:
            raise ShardUnavailableError(missing[0], self.manifest["shards"][missing[0]]["file"],
                                        "no shard answered")
        s, i, c = merge_topk([out[j] for j in answered], k)
        res = ShardedResults(s, i, c, k)
        res.shards_answered = answered
        res.shards_missing = sorted(missing)
        return res

    # ---- writes ---------------------------------------------------------------

    def _route(self, ids: Sequence[str]) -> Dict[int, List[int]]:
        by: Dict[int, List[int]] = {}
        for n, id in enumerate(ids):
            by.setdefault(shard_of(id, self.count), []).append(n)
        return by

    def upsert(self, ids: Sequence[str], vectors: Any, **metadata: Any) -> int:
        """Insert or replace nodes, each in the shard its id hashes to (one
        transaction per shard).  Metadata columns as in Database.upsert
        (per-node sequences are split with the ids)."""
        ids = [str(x) for x in ids]
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v.reshape(1, -1)
        if v.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids but {v.shape[0]} vectors")
        by = self._route(ids)

        def part(i):
            idx = by[i]
            meta = {key: ([val[n] for n in idx] if isinstance(val, (list, tuple, np.ndarray))
                          else val) for key, val in metadata.items()}
            return ([ids[n] for n in idx], np.ascontiguousarray(v[idx]), meta)

        return sum(self._write(sorted(by), "upsert", part).values())

    def delete(self, ids: Sequence[str], missing_ok: bool = False) -> int:
        """Delete nodes from their shards (NotFoundError for an absent id
        unless missing_ok)."""
        ids = [str(x) for x in ids]
        by = self._route(ids)
        return sum(self._write(sorted(by), "delete",
                               lambda i: ([ids[n] for n in by[i]], missing_ok)).values())

    def _write(self, shards: List[int], method: str, args_of) -> Dict[int, int]:
        done: Dict[int, int] = {}
        for i in shards:  # one at a time: a failure says exactly who committed
            try:
                got, _ = self._call_all([i], method, args_of)
            except ShardUnavailableError as e:
                e.committed = sorted(done)
                raise
            done[i] = got[i]
        return done

    # ---- the rest ---------------------------------------------------------------

    def ping(self, payload: Any = None) -> None:
        """A round trip to every shard at once, carrying payload (e.g. a batch
        of queries) and doing nothing with it: the Dask path's own cost."""
        self._call_all(range(self.count), "ping", lambda i: (payload,))

    def rows(self) -> List[int]:
        """Rows loaded in each shard."""
        out, _ = self._call_all(range(self.count), "rows", lambda i: ())
        return [out[i] for i in range(self.count)]

    def close(self) -> None:
        """Close every shard's database and release the actors."""
        for i, a in enumerate(self._actors):
            if a is not None:
                try:
                    a.close().result(timeout=self.timeout)
                except Exception:
                    pass  # a lost worker has nothing left to close
            self._actors[i] = None
            self._futures[i] = None

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- command line: `resonance cluster-search` runs this -------------------------

def _read_queries(path: str, dim: Optional[int]) -> np.ndarray:
    """Queries from a JSON file (a vector or a list of vectors), .npy, or
    raw float32 (dim floats a query; needs the manifest's dim)."""
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32)
    if path.endswith(".json"):
        with open(path, "r", encoding="utf-8") as f:
            q = np.asarray(json.load(f), dtype=np.float32)
        return q.reshape(1, -1) if q.ndim == 1 else q
    raw = np.fromfile(path, dtype="<f4")
    if not dim or raw.size % dim:
        raise ValueError(f"{path}: {raw.size} floats is not a whole number of "
                         f"{dim}-float queries")
    return raw.reshape(-1, dim)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="resonance cluster-search",
        description="Exact top-k over the shards of a manifest, on a Dask cluster.")
    ap.add_argument("manifest", help="manifest.json written by `resonance shard`")
    ap.add_argument("--scheduler", required=True,
                    help="the Dask scheduler's address, e.g. tcp://10.0.0.5:8786")
    ap.add_argument("--queries", required=True,
                    help="queries: .json (a vector or list of vectors), .npy, "
                         "or raw float32")
    ap.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    ap.add_argument("--filter", help="the library's JSON filter")
    ap.add_argument("--tier", help="f32 (default), f16, i8 or b1")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds a shard may take (default 60)")
    ap.add_argument("--partial", action="store_true",
                    help="answer from the shards that answer, and say which did not")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    a = ap.parse_args(argv)
    from distributed import Client
    try:
        man = load_manifest(a.manifest)
        q = _read_queries(a.queries, man.get("dim"))
        filt = json.loads(a.filter) if a.filter else None
    except (ManifestError, ValueError, OSError) as e:
        print(f"resonance: cluster-search: {e}", file=sys.stderr)
        return 3
    try:
        client = Client(a.scheduler, timeout=a.timeout)
    except (OSError, ValueError) as e:
        print(f"resonance: cluster-search: cannot reach the scheduler {a.scheduler}: {e}",
              file=sys.stderr)
        return 6
    try:
        tiers = [a.tier] if a.tier and a.tier != "f32" else []
        with ShardedIndex(client, man, timeout=a.timeout, tiers=tiers) as index:
            res = index.search(q, k=a.k, filter=filt, tier=a.tier, partial=a.partial)
    except ShardUnavailableError as e:
        print(f"resonance: cluster-search: {e}", file=sys.stderr)
        return 6
    except Error as e:
        print(f"resonance: cluster-search: {e}", file=sys.stderr)
        return 5
    finally:
        client.close()
    out = {"k": a.k, "shards": index.count, "shards_answered": res.shards_answered,
           "shards_missing": res.shards_missing, "results": [
               [{"id": res.ids[n, j], "score": float(res.scores[n, j])}
                for j in range(int(res.counts[n]))] for n in range(len(res))]}
    if a.json:
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        for n, hits in enumerate(out["results"]):
            for rank, h in enumerate(hits):
                print(f"{n}\t{rank + 1}\t{h['score']:.6f}\t{h['id']}")
        if res.shards_missing:
            print(f"resonance: cluster-search: shards {res.shards_missing} did not answer",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
