"""Fixtures for the Python binding's tests.

Run by ctest (python_binding) with RESONANCE_LIB, RSN_CLI, RSN_PY_ABI_LAYOUT
and RSN_SHARED_DATA set; run by hand from the repository root after a build,
the defaults below find build/.  Databases are made in tmp dirs through the
binding itself or the CLI.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import List, Tuple

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(PKG))
BUILD = os.path.join(ROOT, "build")

if PKG not in sys.path:
    sys.path.insert(0, PKG)
os.environ.setdefault("RESONANCE_LIB", os.path.join(BUILD, "libresonance.so"))

import resonance  # noqa: E402
from resonance import _lib  # noqa: E402

SANITIZED = os.environ.get("RSN_PY_SANITIZED", "")


def cli_path() -> str:
    return os.environ.get("RSN_CLI", os.path.join(BUILD, "tools", "resonance"))


def abi_helper_path() -> str:
    return os.environ.get("RSN_PY_ABI_LAYOUT", os.path.join(BUILD, "bindings", "python",
                                                            "py_abi_layout"))


def shared_data() -> str:
    return os.environ.get("RSN_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class SmallDB:
    """A database of N random vectors with metadata, made through the
    binding; ids node-00000 ..., types cycling note/paper/person, and three
    exact duplicates of row 0 (dup-a, dup-b, dup-c) to make ties."""

    def __init__(self, path: str, n: int = 600, d: int = 32, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.path = path
        self.d = d
        vecs = unit_rows(rng, n, d)
        ids = [f"node-{i:05d}" for i in range(n)]
        types = [("note", "paper", "person")[i % 3] for i in range(n)]
        dates = [f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}" for i in range(n)]
        metas = [{"n": i, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(n)]
        with resonance.open(path, create=True, dim=d) as db:
            db.upsert(ids, vecs, type=types, title=[f"Title {i}" for i in range(n)],
                      domain="test", layer=["core" if i % 4 else "edge" for i in range(n)],
                      date=dates, meta=metas)
            db.upsert(["dup-c", "dup-a", "dup-b"], np.repeat(vecs[:1], 3, axis=0),
                      type="note", title="duplicate")
        self.ids: List[str] = ids + ["dup-c", "dup-a", "dup-b"]
        self.types = types + ["note"] * 3
        with resonance.open(path, readonly=True) as db:
            self.stored = np.stack([db.get(i).embedding for i in self.ids])
        self.queries = unit_rows(rng, 12, d)
        self.queries[0] = vecs[0]  # ties with the three duplicates

    def oracle(self, q: np.ndarray, k: int, rows=None) -> Tuple[List[str], np.ndarray]:
        """Exact top-k in float64: dot products with the normalised query,
        ties by id ascending; rows limits the candidates (a filter)."""
        q = np.asarray(q, dtype=np.float64)
        q = q / np.linalg.norm(q)
        s = self.stored.astype(np.float64) @ q
        cand = range(len(self.ids)) if rows is None else rows
        order = sorted(cand, key=lambda i: (-s[i], self.ids[i]))[:k]
        return [self.ids[i] for i in order], s[order]

    def exact_score(self, q: np.ndarray, id: str) -> float:
        q = np.asarray(q, dtype=np.float64)
        q = q / np.linalg.norm(q)
        return float(self.stored[self.ids.index(id)].astype(np.float64) @ q)


def assert_oracle(small: SmallDB, q, ids, scores, k: int, rows=None, tol=1e-5) -> None:
    """ids/scores (one query's hits) equal the float64 oracle: the same
    scores rank by rank within tol, the same ids except that near-ties
    (exact scores within 1e-6) may be ordered either way."""
    want_ids, want_scores = small.oracle(q, k, rows)
    assert len(ids) == len(want_ids)
    np.testing.assert_allclose(np.asarray(scores, np.float64), want_scores, atol=tol, rtol=0)
    for j, (got, want) in enumerate(zip(ids, want_ids)):
        if got != want:
            assert abs(small.exact_score(q, got) - want_scores[j]) < 1e-6, (j, got, want)
    assert sorted(ids) == sorted(want_ids) or len(set(ids)) == len(ids)


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> SmallDB:
    return SmallDB(str(tmp_path_factory.mktemp("small") / "small.db"))


@pytest.fixture
def db(small):
    with resonance.open(small.path, readonly=True) as h:
        yield h


# ---- the C library called directly, without the binding's conversions ------
class CHit(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char_p), ("score", ctypes.c_float)] + \
               [(f, ctypes.c_char_p) for f in ("type", "title", "domain", "layer", "date",
                                               "meta", "summary")]


def c_search(database: resonance.Database, q: np.ndarray, k: int,
             batch: bool = False) -> Tuple[List[List[str]], List[List[float]]]:
    """rsn_search (or rsn_search_batch) through bare ctypes: the C library's
    own answer, read field by field, for comparison with the binding."""
    lib = _lib.load()
    q = np.ascontiguousarray(q, dtype=np.float32)
    q2 = q.reshape(-1, q.shape[-1])
    p = _lib.rsn_search_params()
    lib.rsn_search_params_init(ctypes.byref(p))
    p.k = k
    p.flags = _lib.RSN_SEARCH_NO_HYDRATE
    out = ctypes.c_void_p()
    h = database._h
    if batch:
        st = lib.rsn_search_batch(h, q2.ctypes.data, q2.shape[0], q2.shape[1],
                                  ctypes.byref(p), ctypes.byref(out))
    else:
        assert q2.shape[0] == 1
        st = lib.rsn_search(h, q2.ctypes.data, q2.shape[1], ctypes.byref(p), ctypes.byref(out))
    assert st == 0, lib.rsn_errmsg(None)
    r = _lib.rsn_results.from_address(out.value)
    counts = ctypes.cast(r.count, ctypes.POINTER(ctypes.c_size_t))
    hits = ctypes.cast(r.hits, ctypes.POINTER(CHit))
    ids, scores = [], []
    for qi in range(r.nq):
        ids.append([hits[qi * r.k + j].id.decode() for j in range(counts[qi])])
        scores.append([hits[qi * r.k + j].score for j in range(counts[qi])])
    lib.rsn_results_free(out.value)
    return ids, scores
