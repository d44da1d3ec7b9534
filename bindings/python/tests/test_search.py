"""search() against the numpy oracle and the C library; shapes, dtypes,
padding and errors."""

import json
import math
import os
import subprocess

import numpy as np
import pytest

import resonance

from conftest import assert_oracle, c_search, cli_path


# ---- equal to the oracle and to the C library -------------------------------------
def test_search_single_matches_oracle_and_c_bit_for_bit(db, small):
    for q in small.queries:
        res = db.search(q, k=10)
        assert res.scores.shape == (1, 10) and res.counts.tolist() == [10]
        ids, scores = res.ids[0].tolist(), res.scores[0]
        assert_oracle(small, q, ids, scores, 10)
        c_ids, c_scores = c_search(db, q, 10)
        assert ids == c_ids[0]
        assert scores.tobytes() == np.asarray(c_scores[0], np.float32).tobytes()


def test_search_batch_matches_oracle_and_c_batch(db, small):
    res = db.search(small.queries, k=7)
    assert res.scores.shape == (len(small.queries), 7)
    c_ids, c_scores = c_search(db, small.queries, 7, batch=True)
    for i, q in enumerate(small.queries):
        assert_oracle(small, q, res.ids[i].tolist(), res.scores[i], 7)
        assert res.ids[i].tolist() == c_ids[i]
        assert res.scores[i].tobytes() == np.asarray(c_scores[i], np.float32).tobytes()
        # The batch kernel sums in another order than the single one: the
        # same answer to float32 rounding.
        one = db.search(q, k=7)
        assert one.ids[0].tolist() == res.ids[i].tolist()
        np.testing.assert_allclose(one.scores[0], res.scores[i], atol=1e-6, rtol=0)


def test_search_ties_are_ordered_by_id(db, small):
    res = db.search(small.queries[0], k=4)
    # node-00000 and its three copies score the same; ids ascending.
    assert res.ids[0].tolist() == ["dup-a", "dup-b", "dup-c", "node-00000"]
    assert len(set(res.scores[0].tolist())) == 1


def test_search_equals_cli_json(db, small, tmp_path):
    cli = cli_path()
    if not os.path.exists(cli):
        pytest.skip(f"{cli} not built")
    qf = tmp_path / "q.f32"
    small.queries[:4].astype("<f4").tofile(qf)
    out = subprocess.run([cli, "search", small.path, "--queries", str(qf), "-k", "5",
                          "--json"], check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    res = db.search(small.queries[:4], k=5, hydrate=True)
    for row in rows:
        q = row["query"]
        assert [h["id"] for h in row["results"]] == res.ids[q].tolist()
        # The CLI prints 9 significant digits: float32 round-trips.
        assert [np.float32(h["score"]) for h in row["results"]] == res.scores[q].tolist()
        assert [h.get("title") for h in row["results"]] == res.fields["title"][q].tolist()


# ---- shapes and dtypes --------------------------------------------------------------
def test_search_float64_input_converted_once(db, small):
    q64 = small.queries[:3].astype(np.float64)
    a = db.search(q64, k=5)
    b = db.search(small.queries[:3], k=5)
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_array_equal(a.scores, b.scores)


def test_search_non_contiguous_input(db, small):
    wide = np.zeros((3, small.d * 2), np.float32)
    wide[:, ::2] = small.queries[:3]
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    fortran = np.asfortranarray(small.queries[:3])
    want = db.search(small.queries[:3], k=5)
    for q in (view, fortran, small.queries[:3].tolist(), small.queries[:3].astype(">f4")):
        got = db.search(q, k=5)
        assert got.ids.tolist() == want.ids.tolist()
        np.testing.assert_array_equal(got.scores, want.scores)


def test_search_single_vector_shape(db, small):
    one = db.search(small.queries[1], k=3)
    row = db.search(small.queries[1:2], k=3)
    assert one.scores.shape == (1, 3) and one.ids.shape == (1, 3) and one.counts.shape == (1,)
    assert one.ids.tolist() == row.ids.tolist()
    assert one.scores.dtype == np.float32 and one.ids.dtype == object
    assert one.counts.dtype == np.int64 and len(one) == 1


def test_search_empty_batch(db, small):
    res = db.search(np.zeros((0, small.d), np.float32), k=4)
    assert res.scores.shape == (0, 4) and res.ids.shape == (0, 4) and res.counts.shape == (0,)
    assert len(res) == 0
    with pytest.raises(resonance.DimensionError):
        db.search(np.zeros((0, small.d + 1), np.float32), k=4)


def test_search_wrong_dimension(db, small):
    with pytest.raises(resonance.DimensionError) as e:
        db.search(np.ones(small.d + 1), k=3)
    assert f"{small.d + 1} floats" in e.value.message and str(small.d) in e.value.message
    assert e.value.status_name == "E_DIM" and isinstance(e.value, ValueError)
    with pytest.raises(resonance.DimensionError) as e:
        db.search(np.ones((2, small.d - 1)), k=3)
    with pytest.raises(ValueError):
        db.search(np.ones((2, 2, small.d)), k=3)


def test_search_bad_queries_name_the_reason(db, small):
    q = small.queries[:3].copy()
    q[1, 4] = np.nan
    with pytest.raises(resonance.NonFiniteError) as e:
        db.search(q)
    assert "1" in e.value.message  # the batch names the query's index
    with pytest.raises(resonance.ZeroVectorError):
        db.search(np.zeros(small.d))
    with pytest.raises(resonance.KError):
        db.search(small.queries[0], k=0)
    with pytest.raises(resonance.KError):
        db.search(small.queries[0], k=-3)
    with pytest.raises(resonance.InvalidArgumentError):
        db.search(small.queries[0], min_score=float("nan"))


# ---- counts and padding -------------------------------------------------------------
def test_search_k_larger_than_rows_pads(db, small):
    n = len(small.ids)
    res = db.search(small.queries[:2], k=n + 5)
    assert res.scores.shape == (2, n + 5)
    assert res.counts.tolist() == [n, n]
    assert np.isnan(res.scores[:, n:]).all() and not np.isnan(res.scores[:, :n]).any()
    assert (res.ids[:, n:] == None).all()  # noqa: E711
    assert len(res.hits(1)) == n


def test_search_min_score_counts_per_row(db, small):
    res = db.search(small.queries, k=50, min_score=0.2)
    for i, q in enumerate(small.queries):
        c = res.counts[i]
        want_ids, want_scores = small.oracle(q, 50)
        keep = [s for s in want_scores if s > 0.2]
        assert c == len(keep)
        assert (res.scores[i, :c] > 0.2).all()
        assert np.isnan(res.scores[i, c:]).all() and (res.ids[i, c:] == None).all()  # noqa: E711
        assert res.ids[i, :c].tolist() == want_ids[:c]


def test_search_hydrate(db, small):
    plain = db.search(small.queries[2], k=5)
    assert plain.fields is None and plain.hits()[0].title is None
    res = db.search(small.queries[2], k=5, hydrate=True)
    assert res.ids.tolist() == plain.ids.tolist()
    for j, h in enumerate(res.hits()):
        i = small.ids.index(h.id)
        assert h.type == small.types[i] and res.fields["type"][0, j] == h.type
        if h.id.startswith("node-"):
            assert h.title == f"Title {i}" and json.loads(h.meta)["n"] == i
            assert h.summary is None  # SQL NULL
    d = res.to_dicts()
    assert d[0]["id"] == res.ids[0, 0] and "summary" not in d[0] and "title" in d[0]
    assert math.isclose(d[0]["score"], float(res.scores[0, 0]))


def test_search_like_excludes_the_node(db, small):
    res = db.search_like("node-00005", k=6)
    assert res.counts.tolist() == [6] and "node-00005" not in res.ids[0].tolist()
    want_ids, want_scores = small.oracle(small.stored[5], 7)
    assert res.ids[0].tolist() == [i for i in want_ids if i != "node-00005"][:6]
    with pytest.raises(resonance.NotFoundError) as e:
        db.search_like("nope", k=3)
    assert "nope" in str(e.value) and isinstance(e.value, KeyError)


def test_results_repr_and_metadata(db, small):
    res = db.search(small.queries[:2], k=2)
    assert "n=2 k=2 tier=f32" in repr(res)
    assert res.tier == "f32" and res.approximate is False and res.candidates == 0
    assert res.search_ms >= 0 and res.k == 2
