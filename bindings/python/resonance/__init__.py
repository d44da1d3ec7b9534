"""resonance: exact vector search over the embeddings of a SQLite database.

A thin ctypes + numpy binding of libresonance (the C library does all the
work; this package converts arrays and errors, and releases the GIL while
the library runs, so searches from several Python threads run in parallel).

>>> import numpy as np, resonance
>>> with resonance.open("graph.db", create=True, dim=384) as db:
...     db.upsert(["a", "b"], np.random.rand(2, 384), title=["first", "second"])
...     res = db.search(np.random.rand(384), k=5)
...     res.ids[0, :res.counts[0]], res.scores[0, :res.counts[0]]

Results are (n, k) arrays padded beyond ``counts[q]`` (scores NaN, ids None)
and are copies: they stay valid after the database is closed.  Every
failure raises a subclass of resonance.Error carrying the library's message
(DimensionError, NotFoundError, ...).  The shared library is found through
$RESONANCE_LIB, beside this package, or under the installation prefix
(see resonance.library_path()).  README: bindings/python/README.md.
"""

from __future__ import annotations

from typing import Iterable, Optional, Union

from . import _lib
from ._db import (CheckReport, Database, Health, Node, PathLike, RefreshInfo, Stats,
                  VectorAudit)
from ._errors import *  # noqa: F401,F403  (the exception classes)
from ._errors import ERROR_NAMES, BY_STATUS, ClosedError, Error, LibraryNotFoundError
from ._filter import Filter
from ._results import FIELDS, ID_PAD, SCORE_PAD, Hit, Results

__version__ = "0.1.0"


def open(path: PathLike, create: bool = False, dim: Optional[int] = None,
         readonly: bool = False, auto_refresh: bool = False, *,
         model: Optional[str] = None, tiers: Union[str, Iterable[str]] = (),
         codes_only: bool = False, threads: int = 0, load_threads: int = 0,
         load: bool = True, history: bool = True, triggers: bool = True) -> Database:
    """Open a resonance (or the app's) SQLite database and load its vectors.

    Parameters
    ----------
    path : str or path-like
        The database file.
    create : bool
        Create the file and schema if missing (else CantOpenError).
    dim : int, optional
        Expected embedding dimension, checked on every open (DimensionError
        naming both when the file records another); recorded by a writable
        open of a file that has none.  None: any, the first vector written
        fixes it.
    readonly : bool
        Never write (works on read-only files).
    auto_refresh : bool
        Before each search, apply what other connections committed.
    model : str, optional
        Expected embedding model name (ModelError on a mismatch).
    tiers : "all" or iterable of "f16", "i8", "b1"
        Compact copies to build beside the float32 rows, for
        search(tier=...).
    codes_only : bool
        Keep only the tiers' codes in memory (f32 searches are TierError).
    threads : int
        Default search threads (0: all cores).
    load_threads : int
        Arena loader threads (0: automatic).
    load : bool
        False builds the arena lazily, at the first search.
    history : bool
        False writes no history audit rows.
    triggers : bool
        False installs no change-log triggers.

    Returns
    -------
    Database
        A context manager; ``with resonance.open(p) as db:`` closes it at the
        end of the block.

    Raises CantOpenError, NotADatabaseError, SchemaError, DimensionError,
    ModelError, BusyError, ReadOnlyError, LibraryNotFoundError, ...
    """
    return Database(path, create=create, dim=dim, readonly=readonly,
                    auto_refresh=auto_refresh, model=model, tiers=tiers,
                    codes_only=codes_only, threads=threads, load_threads=load_threads,
                    load=load, history=history, triggers=triggers)


def version() -> str:
    """The version of the loaded libresonance ("0.1.0")."""
    return _lib.load().rsn_version().decode()


def sqlite_version() -> str:
    """The SQLite version libresonance runs on."""
    return _lib.load().rsn_sqlite_version().decode()


def isa() -> str:
    """The kernel path in use: "scalar", "simde", "avx2" or "avx512"."""
    lib = _lib.load()
    return lib.rsn_isa_name(lib.rsn_isa_active()).decode()


def library_path() -> str:
    """The libresonance file this package loaded (loading it if needed)."""
    return _lib.path()


__all__ = ["open", "Database", "Results", "Hit", "Filter", "Node", "Stats", "CheckReport",
           "Health", "VectorAudit", "RefreshInfo", "FIELDS", "SCORE_PAD", "ID_PAD",
           "Error", "ClosedError", "LibraryNotFoundError", "BY_STATUS", "version",
           "sqlite_version", "isa", "library_path"] + ERROR_NAMES
