"""Search results, copied out of rsn_results into numpy arrays.

A Results object holds no pointer into C memory: the binding copies scores,
ids and (when asked) the hydrated fields, then frees the rsn_results at
once.  So a Results outlives the handle that produced it, and can be shared
between threads like any other Python object.
"""

from __future__ import annotations

import ctypes
from ctypes import string_at
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from . import _lib

#: The metadata a hydrated search fetches for each hit, in rsn_hit order.
FIELDS = ("type", "title", "domain", "layer", "date", "meta", "summary")

#: Pad values beyond counts[q]: scores are NaN, ids and fields are None.
SCORE_PAD = float("nan")
ID_PAD = None


def _hit_dtype() -> np.dtype:
    names, formats, offsets = [], [], []
    for name, ctype in _lib.rsn_hit._fields_:
        names.append(name)
        formats.append(np.float32 if ctype is ctypes.c_float else np.uintp)
        offsets.append(getattr(_lib.rsn_hit, name).offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ctypes.sizeof(_lib.rsn_hit)})


_HIT = _hit_dtype()
_HIT_SIZE = _HIT.itemsize
_SIZE_T = ctypes.sizeof(ctypes.c_size_t)
_TIER_NAMES = ("f32", "f16", "i8", "b1")


class Hit(NamedTuple):
    """One hit of one query.  The metadata fields are None when the search
    was not hydrated (hydrate=False, the default) or the column is SQL NULL.
    meta is the node's JSON text, as stored."""
    id: str
    score: float
    type: Optional[str] = None
    title: Optional[str] = None
    domain: Optional[str] = None
    layer: Optional[str] = None
    date: Optional[str] = None
    meta: Optional[str] = None
    summary: Optional[str] = None


def _strings(ptrs) -> list:
    """Python strings from a sequence of char* (0 = NULL gives None)."""
    return [string_at(p).decode("utf-8", "replace") if p else None for p in ptrs]


class Results:
    """The answer to a search of n queries (n = 1 for a single vector).

    Attributes
    ----------
    scores : numpy.ndarray, float32, shape (n, k)
        scores[q, :counts[q]] are query q's hits, best first (score
        descending, ties by id ascending); the rest is NaN.
    ids : numpy.ndarray, object, shape (n, k)
        The node ids (str) in the same places; None beyond counts[q].
    counts : numpy.ndarray, int64, shape (n,)
        How many hits query q has: min(k, rows searched) unless min_score
        or a filter leaves fewer.  Always read it: short rows are padded,
        never silently filled.
    fields : dict of str to numpy.ndarray (object, shape (n, k)), or None
        With hydrate=True, "type", "title", "domain", "layer", "date",
        "meta" (JSON text) and "summary" of each hit (None for SQL NULL and
        beyond counts[q]); None without hydration.
    k : int
        The k that was asked for (the width of the arrays).
    tier : str
        The tier that was scanned ("f32" for exact search).
    approximate : bool
        True when the scores are a tier's approximations (rescore=False).
    candidates : int
        Rows rescored per query by a tier search (0 for f32).
    search_ms, hydrate_ms : float
        Wall time of the scan and of the metadata fetch, measured by the
        library.

    The arrays are copies owned by Python: a Results stays valid after the
    database is closed.  ``res.hits(q)`` gives query q's hits as a list of
    Hit tuples without padding, ``res.to_dicts(q)`` as dicts.
    """

    __slots__ = ("scores", "ids", "counts", "fields", "k", "tier", "approximate",
                 "candidates", "search_ms", "hydrate_ms")

    def __init__(self, scores: np.ndarray, ids: np.ndarray, counts: np.ndarray,
                 k: int, fields: Optional[Dict[str, np.ndarray]] = None,
                 tier: str = "f32", approximate: bool = False, candidates: int = 0,
                 search_ms: float = 0.0, hydrate_ms: float = 0.0):
        self.scores = scores
        self.ids = ids
        self.counts = counts
        self.fields = fields
        self.k = k
        self.tier = tier
        self.approximate = approximate
        self.candidates = candidates
        self.search_ms = search_ms
        self.hydrate_ms = hydrate_ms

    def __len__(self) -> int:
        """The number of queries."""
        return int(self.counts.shape[0])

    def hits(self, q: int = 0) -> List[Hit]:
        """Query q's hits (counts[q] of them, no padding), best first."""
        c = int(self.counts[q])
        ids = self.ids[q, :c].tolist()
        scores = self.scores[q, :c].tolist()
        if self.fields is None:
            return [Hit(i, s) for i, s in zip(ids, scores)]
        cols = [self.fields[f][q, :c].tolist() for f in FIELDS]
        return [Hit(ids[j], scores[j], *(col[j] for col in cols)) for j in range(c)]

    def to_dicts(self, q: int = 0) -> List[dict]:
        """Query q's hits as dicts {"id", "score", and each hydrated field
        that is not NULL}, the shape of the app's searchByVector."""
        out = []
        for h in self.hits(q):
            d = {"id": h.id, "score": h.score}
            if self.fields is not None:
                for f in FIELDS:
                    v = getattr(h, f)
                    if v is not None:
                        d[f] = v
            out.append(d)
        return out

    def __repr__(self) -> str:
        return (f"<resonance.Results n={len(self)} k={self.k} tier={self.tier}"
                f"{' approximate' if self.approximate else ''}"
                f" counts={self.counts.tolist() if len(self) <= 8 else '...'}>")


def take(lib, ptr: int, k: int, hydrated: bool) -> Results:
    """Copy an rsn_results (at address ptr) into a Results with arrays of
    width k, then free it.  k >= r.k always (the library returns
    min(k, rows available) columns)."""
    try:
        r = _lib.rsn_results.from_address(ptr)
        nq, kc = r.nq, r.k
        counts = np.frombuffer(string_at(r.count, nq * _SIZE_T), dtype=np.uintp) \
            .astype(np.int64) if nq else np.zeros(0, np.int64)
        scores = np.full((nq, k), np.nan, dtype=np.float32)
        ids = np.full((nq, k), None, dtype=object)
        fields = {f: np.full((nq, k), None, dtype=object) for f in FIELDS} \
            if hydrated else None
        if nq and kc:
            hits = np.frombuffer(string_at(r.hits, nq * kc * _HIT_SIZE), dtype=_HIT)
            if nq == 1:
                c = int(counts[0])
                h = hits[:c]
                scores[0, :c] = h["score"]
                ids[0, :c] = _strings(h["id"].tolist())
                if fields is not None:
                    for f in FIELDS:
                        fields[f][0, :c] = _strings(h[f].tolist())
            else:
                hits = hits.reshape(nq, kc)
                mask = np.arange(kc) < counts[:, None]
                h = hits[mask]
                scores[:, :kc][mask] = h["score"]
                ids[:, :kc][mask] = _strings(h["id"].tolist())
                if fields is not None:
                    for f in FIELDS:
                        fields[f][:, :kc][mask] = _strings(h[f].tolist())
        tier = r.tier
        return Results(scores, ids, counts, k, fields,
                       _TIER_NAMES[tier] if 0 <= tier < len(_TIER_NAMES) else str(tier),
                       bool(r.approximate), int(r.candidates),
                       float(r.search_ms), float(r.hydrate_ms))
    finally:
        lib.rsn_results_free(ptr)
