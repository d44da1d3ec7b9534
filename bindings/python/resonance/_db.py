"""The Database handle: open, search, write, inspect.

Thin by design (DESIGN.md, "Bindings"): every behaviour lives in
libresonance; this module converts arrays and strings, maps status codes to
exceptions, and guards the one thing the C API leaves to its caller, that
rsn_close must not race with other calls on the handle.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
import weakref
from ctypes import byref, c_int, c_void_p, string_at
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

import numpy as np

from . import _errors, _lib
from ._filter import Filter, FilterLike, _id_list, as_filter
from ._results import Results, take

PathLike = Union[str, bytes, "os.PathLike[str]"]
_F32 = np.dtype(np.float32)
_TEXT_COLUMNS = ("type", "title", "domain", "layer", "hash", "meta", "date", "summary")
_TIERS = {"f32": 0, "f16": 1, "i8": 2, "b1": 3}


def _check(lib, st: int) -> None:
    if st:
        raise _errors.from_status(lib, st)


def _matrix(x: Any, what: str) -> np.ndarray:
    """x as a C-contiguous float32 array of 1 or 2 dimensions: no copy when
    it already is one, else one conversion."""
    if type(x) is not np.ndarray or x.dtype != _F32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=_F32)
    if x.ndim not in (1, 2):
        raise ValueError(f"{what} must be a (d,) or (n, d) array, not shape {x.shape}")
    return x


# ---- plain-data answers -------------------------------------------------------
@dataclass
class Node:
    """A node as stored (rsn_get).  Text fields are None for SQL NULL; meta is
    the JSON text; embedding is a float32 copy, or None without one (or when
    fetched with embedding=False).  A stored embedding that fails validation
    is returned as stored."""
    id: str
    type: Optional[str] = None
    title: Optional[str] = None
    domain: Optional[str] = None
    layer: Optional[str] = None
    hash: Optional[str] = None
    meta: Optional[str] = None
    date: Optional[str] = None
    summary: Optional[str] = None
    embedding: Optional[np.ndarray] = None


@dataclass
class Health:
    """The connection standard as found (rsn_health); drift is a bit set of
    RSN_DRIFT_* and 0 when compliant."""
    journal_mode: str
    busy_timeout_ms: int
    mmap_size: int
    synchronous: int
    foreign_keys: int
    temp_store: int
    drift: int


@dataclass
class VectorAudit:
    """Counts of the embeddings seen (rsn_vector_audit).  by_verdict maps a
    verdict name ("ok", "not_unit", "null", "bad_length", "dim_mismatch",
    "non_finite", "zero") to its count; dims maps each distinct length
    (bytes / 4, up to 8 of them) to its count."""
    rows: int
    no_embedding: int
    valid: int
    by_verdict: Dict[str, int]
    dim: int
    dim_from_meta: bool
    dims: Dict[int, int]


@dataclass
class Stats:
    """rsn_stats_get: row counts, file sizes, the arena, tiers and health."""
    nodes: int
    edges: int
    history: int
    vectors: VectorAudit
    db_bytes: int
    wal_bytes: int
    model: str
    loaded: bool
    arena_rows: int
    arena_bytes: int
    load_ms: float
    load_threads: int
    isa: str
    tiers: List[str]
    tier_bytes: int
    tier_clipped_rows: int
    threads: int
    health: Health


@dataclass
class CheckReport:
    """rsn_check: integrity check plus an audit of every blob.  ``ok`` is
    True when problems == 0."""
    integrity_ok: bool
    integrity: str
    vectors: VectorAudit
    health: Health
    problems: int

    @property
    def ok(self) -> bool:
        return self.problems == 0


@dataclass
class RefreshInfo:
    """What rsn_refresh applied."""
    changed: bool
    full_reload: bool
    upserted: int
    removed: int


def _health(h) -> Health:
    return Health(h.journal_mode.decode(), h.busy_timeout_ms, h.mmap_size,
                  h.synchronous, h.foreign_keys, h.temp_store, h.drift)


def _audit(lib, a) -> VectorAudit:
    verdicts = {lib.rsn_blob_verdict_name(i).decode(): a.by_verdict[i]
                for i in range(_lib.RSN_BLOB__COUNT)}
    dims = {a.dims[i]: a.dims_count[i] for i in range(min(a.ndims, _lib.RSN_MAX_DIMS_SEEN))}
    return VectorAudit(a.rows, a.no_embedding, a.valid, verdicts, a.dim,
                       bool(a.dim_from_meta), dims)


def _tier_names(mask: int) -> List[str]:
    return [name for name, t in _TIERS.items() if t and mask & (1 << t)]


# ---- the handle -----------------------------------------------------------------
class Database:
    """An open resonance database (one rsn_db).  Create it with
    resonance.open(); use it as a context manager or call close().

    Threads: any number of Python threads may call search(), search_like(),
    get(), stats() ... on one Database at once; the GIL is released while
    the library works, so searches run in parallel.  Writes (upsert,
    delete, update_meta, transaction) from several threads are serialised
    by the binding, so one call's rows are never mixed into another
    thread's transaction.  close() waits for calls in progress on other
    threads, then refuses new ones (ClosedError).
    """

    def __init__(self, path: PathLike, *, create: bool = False, dim: Optional[int] = None,
                 readonly: bool = False, auto_refresh: bool = False,
                 model: Optional[str] = None, tiers: Union[str, Iterable[str]] = (),
                 codes_only: bool = False, threads: int = 0, load_threads: int = 0,
                 load: bool = True, history: bool = True, triggers: bool = True):
        lib = _lib.load()
        self._lib = lib
        self.path = os.fsdecode(path)
        opts = _lib.rsn_open_opts()
        lib.rsn_open_opts_init(byref(opts))
        opts.flags = ((_lib.RSN_OPEN_CREATE if create else 0)
                      | (_lib.RSN_OPEN_READONLY if readonly else 0)
                      | (_lib.RSN_OPEN_AUTO_REFRESH if auto_refresh else 0)
                      | (_lib.RSN_OPEN_CODES_ONLY if codes_only else 0)
                      | (0 if load else _lib.RSN_OPEN_NOLOAD)
                      | (0 if history else _lib.RSN_OPEN_NO_HISTORY)
                      | (0 if triggers else _lib.RSN_OPEN_NO_TRIGGERS))
        if dim is not None and int(dim) < 0:
            raise ValueError(f"dim must be positive (or None: any), not {dim}")
        opts.dim = 0 if dim is None else int(dim)
        opts.model = None if model is None else model.encode("utf-8")
        opts.threads = int(threads)
        opts.load_threads = int(load_threads)
        opts.tiers = 0
        for t in ([tiers] if isinstance(tiers, str) else tiers):
            if t == "all":
                opts.tiers |= (1 << 1) | (1 << 2) | (1 << 3)
            elif _tier(lib, t):  # f32 is always there: no bit
                opts.tiers |= 1 << _tier(lib, t)
        handle = c_void_p()
        _check(lib, lib.rsn_open(os.fsencode(path), byref(opts), byref(handle)))
        self._h: Optional[int] = handle.value
        self.readonly = readonly
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)  # close() waits on it
        self._busy = 0            # calls in progress [_mu]
        self._closing = False     # close() has started [_mu]
        self._wlock = threading.RLock()  # serialises writes and transactions
        self._txn = 0             # depth of transaction() [_wlock]
        # Closes the handle if the object is collected without close().
        self._finalizer = weakref.finalize(self, lib.rsn_close, handle.value)

    # ---- lifetime ---------------------------------------------------------
    def _enter(self) -> int:
        with self._mu:
            if self._h is None or self._closing:
                raise _errors.ClosedError(f"database {self.path!r} is closed")
            self._busy += 1
            return self._h

    def _leave(self) -> None:
        with self._mu:
            self._busy -= 1
            if self._closing and self._busy == 0:
                self._cv.notify_all()

    def close(self) -> None:
        """Checkpoint and close the handle (rsn_close).  Waits for calls in
        progress on other threads; later calls raise ClosedError.  An open
        transaction is rolled back.  Results already returned stay valid.
        Idempotent."""
        with self._cv:
            if self._h is None:
                return
            if self._closing:  # another thread is closing: wait for it
                while self._h is not None:
                    self._cv.wait()
                return
            self._closing = True
            while self._busy:
                self._cv.wait()
        self._finalizer()  # rsn_close, once
        with self._cv:
            self._h = None
            self._cv.notify_all()

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._h is None or self._closing else f"dim={self.dim}"
        return f"<resonance.Database {self.path!r} {state}>"

    # ---- properties ---------------------------------------------------------
    @property
    def dim(self) -> int:
        """The embedding dimension the database holds (0 while unknown)."""
        h = self._enter()
        try:
            return int(self._lib.rsn_db_dim(h))
        finally:
            self._leave()

    def __len__(self) -> int:
        """Rows searchable now (stats().arena_rows; counts rows in SQLite
        too, so not free on a large file)."""
        return self.stats().arena_rows

    # ---- search -------------------------------------------------------------
    def _params(self, k: int, min_score: Optional[float], filt: Optional[Filter],
                tier: Any, oversample: int, rescore: bool, hydrate: bool,
                threads: int, refresh: bool) -> _lib.rsn_search_params:
        k = int(k)
        if k < 0:
            raise _errors.KError(f"k = {k}: ask for at least one hit",
                                 status=15, status_name="E_K")
        flags = 0 if hydrate else _lib.RSN_SEARCH_NO_HYDRATE
        ms = 0.0
        if min_score is not None:
            flags |= _lib.RSN_SEARCH_MIN_SCORE
            ms = float(min_score)
        if not rescore:
            flags |= _lib.RSN_SEARCH_NO_RESCORE
        if not refresh:
            flags |= _lib.RSN_SEARCH_NO_REFRESH
        if int(oversample) < 0:
            raise ValueError(f"oversample must be >= 0 (0: the tier's default), not {oversample}")
        t = 0 if tier is None else _tier(self._lib, tier)
        return _lib.rsn_search_params(k, flags, ms, int(threads),
                                      filt._ptr if filt is not None else None,
                                      t, int(oversample))

    def search(self, queries: Any, k: int = 10, min_score: Optional[float] = None,
               filter: FilterLike = None, tier: Optional[str] = None, *,
               oversample: int = 0, rescore: bool = True, hydrate: bool = False,
               threads: int = 0, refresh: bool = True) -> Results:
        """Exact top-k by cosine similarity (dot product with the normalised
        query) of one query or a batch.

        Parameters
        ----------
        queries : array_like, shape (d,) or (n, d)
            Converted once to C-contiguous float32 if it is not one already
            (float64, a list, a non-contiguous view ...); a C-contiguous
            float32 array is passed without a copy.  n = 1 uses rsn_search
            (one query over all cores), n > 1 rsn_search_batch (the blocked
            multi-query kernel), n = 0 returns empty (0, k) arrays.
        k : int
            Hits per query, >= 1 (KError otherwise).  k larger than the rows
            searched gives counts < k.
        min_score : float, optional
            Keep only hits with score > min_score (0 reproduces the app,
            which drops scores <= 0).
        filter : Filter, dict, str or list of ids, optional
            Only rows the filter matches (applied before scoring, so a row
            gets min(k, matching rows) hits).  A dict or str is parsed as
            the library's JSON filter, a list/tuple/set/array as ids.
        tier : {"f32", "f16", "i8", "b1"}, optional
            The copy the scan reads; other tiers than f32 must have been
            built at open (tiers=...), else TierError.  With rescore=True
            (the default) scores are exact f32 scores of the candidates.
        oversample : int
            Tier candidates per hit (0: the tier's default).
        rescore : bool
            False returns the tier's approximate scores (res.approximate).
        hydrate : bool
            Also fetch type, title, domain, layer, date, meta and summary of
            each hit from SQLite (res.fields); off by default, for speed.
        threads : int
            Threads for this search (0: the handle's default).
        refresh : bool
            With auto_refresh, False skips the check for outside commits.

        Returns
        -------
        Results
            scores (n, k) float32, ids (n, k) object, counts (n,): row q
            holds counts[q] hits, best first; the rest is padded with NaN
            and None.  The arrays are copies: they outlive the handle.

        Raises DimensionError (wrong d), NonFiniteError, ZeroVectorError,
        KError, TierError, ParseError (a bad filter), ClosedError, ...
        """
        q = queries
        if type(q) is not np.ndarray or q.dtype != _F32 or not q.flags.c_contiguous:
            q = np.ascontiguousarray(q, dtype=_F32)
        nd = q.ndim
        if nd == 1:
            n, d = 1, q.shape[0]
        elif nd == 2:
            n, d = q.shape
        else:
            raise ValueError(f"queries must be a (d,) or (n, d) array, not shape {q.shape}")
        lib = self._lib
        tmp = None
        if filter is not None and not isinstance(filter, Filter):
            filter = tmp = as_filter(filter)
        p = self._params(k, min_score, filter, tier, oversample, rescore, hydrate,
                         threads, refresh)
        out = c_void_p()
        h = self._enter()
        try:
            if n == 1:
                st = lib.rsn_search(h, q.ctypes.data, d, byref(p), byref(out))
            else:
                st = lib.rsn_search_batch(h, q.ctypes.data if n else None, n, d,
                                          byref(p), byref(out))
            if st:
                raise _errors.from_status(lib, st)
            if n == 0:
                dbdim = lib.rsn_db_dim(h)
                if dbdim and d != dbdim:
                    lib.rsn_results_free(out)
                    raise _errors.DimensionError(
                        f"queries have {d} floats but the database holds "
                        f"{dbdim}-dimensional vectors", status=10, status_name="E_DIM")
        finally:
            self._leave()
            if tmp is not None:
                tmp._free()  # a filter parsed for this call only
        return take(lib, out.value, p.k, hydrate)

    def search_like(self, id: str, k: int = 10, min_score: Optional[float] = None,
                    filter: FilterLike = None, tier: Optional[str] = None, *,
                    oversample: int = 0, rescore: bool = True, hydrate: bool = False,
                    threads: int = 0, refresh: bool = True) -> Results:
        """"More like this": the node's own stored vector is the query and
        the node itself is excluded.  Same parameters and Results as
        search() (n = 1).  NotFoundError if the id has no loaded vector."""
        lib = self._lib
        tmp = None
        if filter is not None and not isinstance(filter, Filter):
            filter = tmp = as_filter(filter)
        p = self._params(k, min_score, filter, tier, oversample, rescore, hydrate,
                         threads, refresh)
        out = c_void_p()
        bid = _one_id(id)
        h = self._enter()
        try:
            _check(lib, lib.rsn_search_like(h, bid, byref(p), byref(out)))
        finally:
            self._leave()
            if tmp is not None:
                tmp._free()
        return take(lib, out.value, p.k, hydrate)

    # ---- writes ---------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        """Group writes into one SQLite transaction (rsn_begin/commit, or
        rollback when the block raises).  Other threads' writes wait until
        the block ends.  The arena applies the changes only after commit.
        Not nestable (StateError)."""
        with self._wlock:
            if self._txn:
                raise _errors.StateError("a transaction is already open on this handle",
                                         status=19, status_name="E_STATE")
            self._call(self._lib.rsn_begin)
            self._txn = 1
            try:
                yield self
            except BaseException:
                self._txn = 0
                self._call(self._lib.rsn_rollback)
                raise
            self._txn = 0
            self._call(self._lib.rsn_commit)

    @contextlib.contextmanager
    def _writing(self, n: int) -> Iterator[int]:
        """The handle for n writes made as one: under the write lock, in a
        transaction of their own (unless n < 2 or transaction() is open),
        committed at the end of the block or rolled back if it raises."""
        lib = self._lib
        with self._wlock:
            h = self._enter()
            try:
                own = not self._txn and n > 1
                if own:
                    _check(lib, lib.rsn_begin(h))
                try:
                    yield h
                    if own:
                        own = False
                        _check(lib, lib.rsn_commit(h))
                except BaseException:
                    if own:
                        lib.rsn_rollback(h)
                    raise
            finally:
                self._leave()

    def _call(self, fn, *args: Any) -> None:
        h = self._enter()
        try:
            _check(self._lib, fn(h, *args))
        finally:
            self._leave()

    def upsert(self, ids: Any, vectors: Any = None, **metadata: Any) -> int:
        """Insert or replace nodes (rsn_upsert, as the app does), all in one
        transaction: either every row is written or none is.

        Parameters
        ----------
        ids : str, int or sequence of them
            Node ids (ints become their decimal text).
        vectors : array_like, shape (d,) or (n, d), optional
            One embedding per id (converted to float32 once; normalised and
            validated by the library: DimensionError, NonFiniteError,
            ZeroVectorError).  None stores the nodes without embeddings.
        **metadata
            type, title, domain, layer, hash, meta, date, summary: each one
            value for every row or a sequence of n values; None is SQL NULL;
            meta may be a dict/list (stored as JSON) or JSON text.

        Returns the number of rows written.  A failure names the row and id
        and rolls the whole call back (inside transaction(), the exception
        leaving the block rolls everything back).
        """
        lib = self._lib
        id_list = _id_list(ids)
        n = len(id_list)
        if n == 0:
            return 0
        if vectors is not None:
            v = _matrix(vectors, "vectors")
            if v.ndim == 1:
                v = v.reshape(1, -1)
            if v.shape[0] != n:
                raise ValueError(f"{n} ids but {v.shape[0]} vectors")
            d = v.shape[1]
            base, row = v.ctypes.data, d * 4
        else:
            v, d, base, row = None, 0, 0, 0
        cols: Dict[str, list] = {}
        for key, val in metadata.items():
            if key not in _TEXT_COLUMNS:
                raise TypeError(f"upsert() got an unexpected keyword {key!r} "
                                f"(columns: {', '.join(_TEXT_COLUMNS)})")
            if isinstance(val, (list, tuple, np.ndarray)):  # one value per row
                if len(val) != n:
                    raise ValueError(f"{n} ids but {len(val)} values of {key}")
                cols[key] = [_text(key, x) for x in val]
            else:
                cols[key] = [_text(key, val)] * n
        node = _lib.rsn_node()
        with self._writing(n) as h:
            for i in range(n):
                node.id = id_list[i].encode("utf-8")
                for key in _TEXT_COLUMNS:
                    setattr(node, key, cols[key][i] if key in cols else None)
                node.embedding = base + i * row if v is not None else None
                node.dim = d
                st = lib.rsn_upsert(h, byref(node))
                if st:
                    e = _errors.from_status(lib, st)
                    e.message = f"row {i} (id {id_list[i]!r}): {e.message}"
                    raise e
        return n

    def delete(self, ids: Any, missing_ok: bool = False) -> int:
        """Delete nodes by id, in one transaction; returns how many were
        deleted.  An absent id is NotFoundError (and nothing is deleted)
        unless missing_ok=True, which skips it."""
        lib = self._lib
        id_list = _id_list(ids)
        deleted = 0
        with self._writing(len(id_list)) as h:
            for i in id_list:
                st = lib.rsn_delete(h, i.encode("utf-8"))
                if st == _lib.RSN_E_NOTFOUND and missing_ok:
                    continue
                _check(lib, st)
                deleted += 1
        return deleted

    def update_meta(self, id: str, meta: Any) -> None:
        """Replace a node's meta JSON (a dict/list, or JSON text); the arena
        is not touched.  NotFoundError if there is no such node."""
        with self._wlock:
            self._call(self._lib.rsn_update_meta, _one_id(id),
                       _text("meta", meta))

    # ---- reads ------------------------------------------------------------------
    def get(self, id: str, embedding: bool = True) -> Node:
        """The node with this id (NotFoundError, a KeyError, if absent)."""
        lib = self._lib
        out = ctypes.POINTER(_lib.rsn_node)()
        h = self._enter()
        try:
            _check(lib, lib.rsn_get(h, _one_id(id), int(embedding),
                                    byref(out)))
        finally:
            self._leave()
        try:
            r = out.contents
            emb = None
            if r.embedding and r.dim:
                emb = np.frombuffer(string_at(r.embedding, r.dim * 4), dtype="<f4") \
                    .astype(np.float32)
            txt = {k: (None if getattr(r, k) is None else getattr(r, k).decode("utf-8", "replace"))
                   for k in ("id",) + _TEXT_COLUMNS}
            return Node(embedding=emb, **txt)
        finally:
            lib.rsn_node_free(out)

    def __contains__(self, id: str) -> bool:
        try:
            self.get(id, embedding=False)
            return True
        except _errors.NotFoundError:
            return False

    # ---- sync, stats, check ---------------------------------------------------------
    def refresh(self) -> RefreshInfo:
        """Apply what other connections committed (rsn_refresh)."""
        info = _lib.rsn_refresh_info()
        self._call(self._lib.rsn_refresh, byref(info))
        return RefreshInfo(bool(info.changed), bool(info.full_reload),
                           info.upserted, info.removed)

    def reload(self) -> None:
        """Rebuild the arena from the file now (rsn_reload)."""
        self._call(self._lib.rsn_reload)

    def stats(self) -> Stats:
        """Row counts, sizes, the arena, tiers and connection health."""
        lib = self._lib
        s = _lib.rsn_stats()
        self._call(lib.rsn_stats_get, byref(s))
        return Stats(s.nodes, s.edges, s.history, _audit(lib, s.vectors), s.db_bytes,
                     s.wal_bytes, s.model.decode("utf-8", "replace"), bool(s.loaded),
                     s.arena_rows, s.arena_bytes, s.load_ms, s.load_threads,
                     s.isa.decode() if s.isa else "", _tier_names(s.tiers), s.tier_bytes,
                     s.tier_clipped_rows, s.threads, _health(s.health))

    def check(self) -> CheckReport:
        """Integrity check plus an audit of every blob (rsn_check).  Returns
        the report whether or not problems were found (see .ok)."""
        lib = self._lib
        r = _lib.rsn_check_report()
        self._call(lib.rsn_check, byref(r))
        return CheckReport(bool(r.integrity_ok), r.integrity.decode("utf-8", "replace"),
                           _audit(lib, r.vectors), _health(r.health), r.problems)


def _tier(lib, name: Any) -> int:
    if isinstance(name, str):
        t = _TIERS.get(name.lower())
        if t is not None:
            return t
        out = c_int()
        _check(lib, lib.rsn_tier_parse(name.encode("utf-8"), byref(out)))
        return out.value
    raise TypeError(f"tier must be a name ('f32', 'f16', 'i8', 'b1'), not {name!r}")


def _one_id(id: Any) -> bytes:
    if isinstance(id, (list, tuple, set, np.ndarray)):
        raise TypeError("expected one id (a str), not a collection")
    return _id_list(id)[0].encode("utf-8")


def _text(key: str, val: Any) -> Optional[bytes]:
    if val is None:
        return None
    if key == "meta" and not isinstance(val, (str, bytes)):
        return json.dumps(val).encode("utf-8")
    if isinstance(val, bytes):
        return val
    return str(val).encode("utf-8")
