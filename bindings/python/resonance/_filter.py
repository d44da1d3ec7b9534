"""Filters: which nodes a search may return (rsn_filter_* of resonance.h).

A Filter owns one reference to an immutable, reference-counted rsn_filter;
combining filters (&, |, ~) makes a new one that keeps its parts alive in C,
so each Python object is freed on its own when it is garbage-collected.
One Filter may be used by any number of threads and searches at once.
"""

from __future__ import annotations

import ctypes
import json
from ctypes import byref, c_char_p, c_void_p
from typing import Any, Iterable, Mapping, Optional, Union

import numpy as np

from . import _errors, _lib

_DIRECTIONS = {"out": _lib.RSN_EDGES_OUT, "in": _lib.RSN_EDGES_IN,
               "both": _lib.RSN_EDGES_BOTH}


def _b(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else str(s).encode("utf-8")


def _check(lib, st: int) -> None:
    if st:
        raise _errors.from_status(lib, st)


class Filter:
    """A search filter.  Build one with a class method and pass it as
    ``filter=`` to Database.search; combine with ``a & b``, ``a | b``, ``~a``.

    >>> f = Filter.parse({"must": [{"key": "type", "match": {"value": "note"}}]})
    >>> f = Filter.ids(["note-1", "note-2"]) | Filter.near("note-9", hops=2)

    search() also accepts a dict or JSON string (parsed per call) and a list
    of ids directly; building the Filter once saves the parse when it is
    reused (the library caches the row bitmap by content either way).
    """

    __slots__ = ("_ptr", "_lib", "_desc", "__weakref__")

    def __init__(self) -> None:
        raise TypeError("use Filter.parse, Filter.ids, Filter.where or Filter.near")

    @classmethod
    def _wrap(cls, lib, ptr: c_void_p, desc: str) -> "Filter":
        self = object.__new__(cls)
        self._lib = lib
        self._ptr = ptr.value
        self._desc = desc
        return self

    def _free(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            self._lib.rsn_filter_free(ptr)

    __del__ = _free

    def __repr__(self) -> str:
        return f"<resonance.Filter {self._desc}>"

    # ---- constructors -----------------------------------------------------
    @classmethod
    def parse(cls, spec: Union[str, Mapping[str, Any]]) -> "Filter":
        """A filter in Qdrant's JSON shape, as a dict or a JSON string:
        {"must": [...], "should": [...], "must_not": [...]} with conditions
        {"key": K, "match": {"value"|"any"|"except": ...}}, {"key": K,
        "range": {"gt"|"gte"|"lt"|"lte": X}}, {"is_null": {"key": K}},
        {"has_id": [...]}, {"near": {"id": ..., "hops": H, "edge_type": T,
        "direction": "out"|"in"|"both"}} (resonance.h, rsn_filter_parse, has
        the full grammar).  ParseError names what is wrong and where."""
        lib = _lib.load()
        text = spec if isinstance(spec, str) else json.dumps(spec)
        out = c_void_p()
        _check(lib, lib.rsn_filter_parse(text.encode("utf-8"), byref(out)))
        return cls._wrap(lib, out, text if len(text) <= 80 else text[:77] + "...")

    @classmethod
    def ids(cls, ids: Iterable[Any]) -> "Filter":
        """Only these ids (an empty list matches nothing)."""
        lib = _lib.load()
        items = [_b(i) for i in _id_list(ids)]
        arr = (c_char_p * max(len(items), 1))(*items)
        out = c_void_p()
        _check(lib, lib.rsn_filter_ids(arr, len(items), byref(out)))
        return cls._wrap(lib, out, f"ids[{len(items)}]")

    @classmethod
    def where(cls, sql: str, *params: Optional[str]) -> "Filter":
        """A raw SQL expression over the columns of nodes with text
        parameters bound in order (None binds NULL), e.g.
        ``Filter.where("date >= ? AND meta LIKE ?", "2024", "%x%")``.
        Trusted callers only: it may read any column of nodes and edges;
        anything else is refused when the search runs (SQLError)."""
        lib = _lib.load()
        items = [_b(p) for p in params]
        arr = (c_char_p * max(len(items), 1))(*items)
        out = c_void_p()
        _check(lib, lib.rsn_filter_where(sql.encode("utf-8"), arr, len(items), byref(out)))
        return cls._wrap(lib, out, f"where {sql!r}")

    @classmethod
    def near(cls, id: str, hops: int = 1, edge_type: Optional[str] = None,
             direction: str = "both") -> "Filter":
        """Nodes within `hops` (0..16) edges of node `id`, the node included,
        along edges of type edge_type (None: any) in direction "out", "in"
        or "both"."""
        lib = _lib.load()
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        out = c_void_p()
        _check(lib, lib.rsn_filter_near(_b(id), int(hops), _b(edge_type),
                                        _DIRECTIONS[direction], byref(out)))
        return cls._wrap(lib, out, f"near {id!r} hops={hops}")

    # ---- combinators ------------------------------------------------------
    def __and__(self, other: "Filter") -> "Filter":
        other = as_filter(other)
        out = c_void_p()
        _check(self._lib, self._lib.rsn_filter_and(self._ptr, other._ptr, byref(out)))
        return Filter._wrap(self._lib, out, f"({self._desc}) & ({other._desc})")

    def __or__(self, other: "Filter") -> "Filter":
        other = as_filter(other)
        out = c_void_p()
        _check(self._lib, self._lib.rsn_filter_or(self._ptr, other._ptr, byref(out)))
        return Filter._wrap(self._lib, out, f"({self._desc}) | ({other._desc})")

    def __invert__(self) -> "Filter":
        out = c_void_p()
        _check(self._lib, self._lib.rsn_filter_not(self._ptr, byref(out)))
        return Filter._wrap(self._lib, out, f"~({self._desc})")


def _id_list(ids: Any) -> list:
    """ids as a list of str: one str, or an iterable of str or integers
    (integers become their decimal text, as the CLI's matrix imports
    name rows)."""
    if isinstance(ids, (str, bytes)):
        ids = [ids]
    elif isinstance(ids, (int, np.integer)):
        ids = [ids]
    out = []
    for i in ids:
        if isinstance(i, str):
            out.append(i)
        elif isinstance(i, bytes):
            out.append(i.decode("utf-8"))
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            out.append(str(int(i)))
        else:
            raise TypeError(f"an id must be a str or an int, not {type(i).__name__}")
    return out


FilterLike = Union[Filter, str, Mapping[str, Any], Iterable[str], None]


def as_filter(f: Any) -> Filter:
    """A Filter from what search() accepts: a Filter, a dict or JSON string
    (rsn_filter_parse), or a list/tuple/set/array of ids (rsn_filter_ids)."""
    if isinstance(f, Filter):
        return f
    if isinstance(f, (str, Mapping)):
        return Filter.parse(f)
    if isinstance(f, (list, tuple, set, frozenset, np.ndarray)):
        return Filter.ids(f)
    raise TypeError("filter must be a resonance.Filter, a dict or JSON string, "
                    f"or a list of ids, not {type(f).__name__}")
