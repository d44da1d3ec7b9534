"""Search results, copied out of rsn_results into numpy arrays.

A Results object holds no pointer into C memory: the binding copies scores,
ids and (when asked) the hydrated fields, then frees the rsn_results at
once.  So a Results outlives the handle that produced it, and can be shared
between threads like any other Python object.
"""

from __future__ import annotations

import ctypes
import struct
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
# The same layout for struct.iter_unpack (native alignment, as C lays it
# out; tests/test_abi.py checks it): the single-query path reads its few
# hits this way, cheaper than building numpy views for ten rows.
_HIT_STRUCT = struct.Struct("@" + "".join("f" if t is ctypes.c_float else "P"
                                          for _, t in _lib.rsn_hit._fields_))
if _HIT_STRUCT.size != _HIT_SIZE:  # pragma: no cover - a platform ctypes disagrees with
    raise ImportError(f"rsn_hit: struct says {_HIT_STRUCT.size} bytes, ctypes {_HIT_SIZE}")
_SCORE_AT = [i for i, (n, _) in enumerate(_lib.rsn_hit._fields_) if n == "score"][0]
_FIELD_AT = [i for i, (n, _) in enumerate(_lib.rsn_hit._fields_) if n in FIELDS]
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


# str from a NUL-terminated UTF-8 char*, in one C call (half the cost of
# string_at + decode); it holds the GIL, as the C API requires.
_from_utf8 = ctypes.pythonapi.PyUnicode_FromString
_from_utf8.restype = ctypes.py_object
_from_utf8.argtypes = [ctypes.c_void_p]


def _strings(ptrs) -> list:
    """Python strings from a sequence of char* (0 = NULL gives None).  Bytes
    that are not UTF-8 (SQLite does not check TEXT) are decoded with
    replacement characters instead of failing."""
    try:
        return [_from_utf8(p) if p else None for p in ptrs]
    except UnicodeDecodeError:
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


def _one(r, k: int, hydrated: bool):
    """The arrays of a one-query rsn_results (the common, latency-bound case)."""
    c = ctypes.c_size_t.from_address(r.count).value if r.nq else 0
    scores = np.empty((1, k), dtype=np.float32)
    scores.fill(np.nan)
    ids = np.empty((1, k), dtype=object)  # np.empty fills object arrays with None
    fields = {f: np.empty((1, k), dtype=object) for f in FIELDS} if hydrated else None
    if c:
        rows = list(_HIT_STRUCT.iter_unpack(string_at(r.hits, c * _HIT_SIZE)))
        scores[0, :c] = [row[_SCORE_AT] for row in rows]
        ids[0, :c] = _strings([row[0] for row in rows])
        if fields is not None:
            for f, at in zip(FIELDS, _FIELD_AT):
                fields[f][0, :c] = _strings([row[at] for row in rows])
    return scores, ids, np.array([c], dtype=np.int64), fields


def _many(r, k: int, hydrated: bool):
    """The arrays of a batch rsn_results: numpy views over a copy of the hits."""
    nq, kc = r.nq, r.k
    counts = np.frombuffer(string_at(r.count, nq * _SIZE_T), dtype=np.uintp) \
        .astype(np.int64) if nq else np.zeros(0, np.int64)
    scores = np.empty((nq, k), dtype=np.float32)
    scores.fill(np.nan)
    ids = np.empty((nq, k), dtype=object)
    fields = {f: np.empty((nq, k), dtype=object) for f in FIELDS} if hydrated else None
    if nq and kc:
        hits = np.frombuffer(string_at(r.hits, nq * kc * _HIT_SIZE), dtype=_HIT)
        hits = hits.reshape(nq, kc)
        mask = np.arange(kc) < counts[:, None]
        h = hits[mask]
        scores[:, :kc][mask] = h["score"]
        ids[:, :kc][mask] = _strings(h["id"].tolist())
        if fields is not None:
            for f in FIELDS:
                fields[f][:, :kc][mask] = _strings(h[f].tolist())
    return scores, ids, counts, fields


def take(lib, ptr: int, k: int, hydrated: bool) -> Results:
    """Copy an rsn_results (at address ptr) into a Results with arrays of
    width k, then free it.  k >= r.k always (the library returns
    min(k, rows available) columns)."""
    try:
        r = _lib.rsn_results.from_address(ptr)
        scores, ids, counts, fields = (_one if r.nq == 1 else _many)(r, k, hydrated)
        tier = r.tier
        return Results(scores, ids, counts, k, fields,
                       _TIER_NAMES[tier] if 0 <= tier < len(_TIER_NAMES) else str(tier),
                       bool(r.approximate), int(r.candidates),
                       float(r.search_ms), float(r.hydrate_ms))
    finally:
        lib.rsn_results_free(ptr)
