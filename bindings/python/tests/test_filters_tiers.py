"""Filters (JSON as dict or str, id lists, where, near, combinations) and
tiers, checked against the oracle restricted to the matching rows."""

import shutil
import sqlite3

import numpy as np
import pytest

import resonance
from resonance import Filter

from conftest import assert_oracle


def rows_where(small, pred):
    return [i for i, id_ in enumerate(small.ids) if pred(i, id_)]


def test_filter_dict_str_and_object_agree(db, small):
    spec = {"must": [{"key": "type", "match": {"value": "paper"}}]}
    rows = rows_where(small, lambda i, _: small.types[i] == "paper")
    want = None
    for f in (spec, '{"must": [{"key": "type", "match": {"value": "paper"}}]}', Filter.parse(spec)):
        res = db.search(small.queries[:3], k=8, filter=f, hydrate=True)
        assert (res.fields["type"] == "paper").all()
        for i in range(3):
            assert_oracle(small, small.queries[i], res.ids[i].tolist(), res.scores[i], 8, rows)
        if want is None:
            want = res.ids.tolist()
        assert res.ids.tolist() == want


def test_filter_fills_k_before_scoring(db, small):
    # 3 rows match: every query gets exactly those 3, padded to k.
    f = Filter.ids(["node-00010", "node-00020", "dup-b"])
    res = db.search(small.queries[:4], k=10, filter=f)
    assert res.counts.tolist() == [3] * 4
    for i in range(4):
        assert sorted(res.ids[i, :3].tolist()) == ["dup-b", "node-00010", "node-00020"]
        assert np.isnan(res.scores[i, 3:]).all()


def test_filter_id_list_forms(db, small):
    want = db.search(small.queries[5], k=2, filter=Filter.ids(["node-00001", "node-00002"]))
    for f in (["node-00001", "node-00002"], ("node-00002", "node-00001"),
              {"node-00001", "node-00002"}, np.array(["node-00001", "node-00002"])):
        assert db.search(small.queries[5], k=2, filter=f).ids.tolist() == want.ids.tolist()
    empty = db.search(small.queries[5], k=2, filter=[])
    assert empty.counts.tolist() == [0] and (empty.ids == None).all()  # noqa: E711


def test_filter_combinators(db, small):
    notes = Filter.parse({"must": [{"key": "type", "match": {"value": "note"}}]})
    edge = Filter.parse({"must": [{"key": "layer", "match": {"value": "edge"}}]})
    for f, pred in ((notes & edge, lambda i: small.types[i] == "note" and i < 600 and i % 4 == 0),
                    (notes | edge, lambda i: small.types[i] == "note" or (i < 600 and i % 4 == 0)),
                    (~notes, lambda i: small.types[i] != "note")):
        rows = rows_where(small, lambda i, _: pred(i))
        res = db.search(small.queries[3], k=9, filter=f)
        assert_oracle(small, small.queries[3], res.ids[0].tolist(), res.scores[0], 9, rows)
    del notes  # the combination keeps its parts alive in C
    assert db.search(small.queries[3], k=2, filter=edge).counts[0] == 2


def test_filter_meta_and_where(db, small):
    f = {"must": [{"key": "meta.n", "range": {"gte": 100, "lt": 110}}]}
    res = db.search(small.queries[6], k=20, filter=f)
    assert res.counts[0] == 10
    assert sorted(res.ids[0, :10].tolist()) == [f"node-{i:05d}" for i in range(100, 110)]
    w = Filter.where("title = ? OR title = ?", "Title 3", "Title 4")
    res = db.search(small.queries[6], k=5, filter=w)
    assert sorted(res.ids[0, :res.counts[0]].tolist()) == ["node-00003", "node-00004"]


def test_filter_errors(db, small):
    with pytest.raises(resonance.ParseError) as e:
        db.search(small.queries[0], filter={"must": [{"key": "nope", "match": {"value": 1}}]})
    assert "nope" in e.value.message
    with pytest.raises(resonance.ParseError):
        db.search(small.queries[0], filter="{not json")
    with pytest.raises(TypeError):
        db.search(small.queries[0], filter=42)
    with pytest.raises(resonance.SQLError):
        db.search(small.queries[0], filter=Filter.where("nosuchcolumn = 1"))
    with pytest.raises(TypeError):
        Filter()


def test_filter_near_over_edges(small, tmp_path):
    path = str(tmp_path / "edges.db")
    shutil.copy(small.path, path)
    with sqlite3.connect(path) as con:
        con.executemany("INSERT INTO edges(source, target, type) VALUES (?, ?, ?)",
                        [("node-00001", "node-00002", "cites"), ("node-00002", "node-00003", "cites"),
                         ("node-00003", "node-00004", "likes")])
    with resonance.open(path, readonly=True) as db:
        for f, want in ((Filter.near("node-00001", hops=2, direction="out"),
                         ["node-00001", "node-00002", "node-00003"]),
                        (Filter.near("node-00003", hops=1, edge_type="cites", direction="in"),
                         ["node-00002", "node-00003"]),
                        ({"must": [{"near": {"id": "node-00004", "hops": 3}}]},
                         ["node-00001", "node-00002", "node-00003", "node-00004"])):
            res = db.search(small.queries[0], k=10, filter=f)
            assert sorted(res.ids[0, :res.counts[0]].tolist()) == want
        with pytest.raises(ValueError):
            Filter.near("node-00001", direction="sideways")


# ---- tiers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiered(small):
    with resonance.open(small.path, readonly=True, tiers=["f16", "i8", "b1"]) as h:
        yield h


@pytest.mark.parametrize("tier", ["f16", "i8", "b1", "F16"])
def test_tier_rescored_equals_exact(tiered, small, tier):
    exact = tiered.search(small.queries, k=5)
    # 50 x 5 candidates of 603 rows hold the true top 5 for f16 and i8; b1
    # (32 sign bits) ranks too coarsely at d = 32, so it rescores every row.
    over = 200 if tier == "b1" else 50
    res = tiered.search(small.queries, k=5, tier=tier, oversample=over)
    assert res.tier == tier.lower() and not res.approximate
    assert res.candidates == min(5 * over, len(small.ids))
    assert res.ids.tolist() == exact.ids.tolist()
    np.testing.assert_array_equal(res.scores, exact.scores)


def test_tier_approximate_and_errors(tiered, db, small):
    res = tiered.search(small.queries[1], k=5, tier="i8", rescore=False)
    assert res.approximate and res.tier == "i8"
    exact = tiered.search(small.queries[1], k=5)
    np.testing.assert_allclose(res.scores, exact.scores, atol=0.05)
    with pytest.raises(resonance.TierError):
        db.search(small.queries[1], tier="i8")  # not built by this handle
    with pytest.raises(resonance.InvalidArgumentError):
        db.search(small.queries[1], tier="f8")
    with pytest.raises(TypeError):
        db.search(small.queries[1], tier=2)
    assert sorted(tiered.stats().tiers) == ["b1", "f16", "i8"]


def test_tier_filtered(tiered, small):
    rows = rows_where(small, lambda i, _: small.types[i] == "person")
    f = {"must": [{"key": "type", "match": {"value": "person"}}]}
    res = tiered.search(small.queries[2], k=6, filter=f, tier="i8", oversample=40)
    assert_oracle(small, small.queries[2], res.ids[0].tolist(), res.scores[0], 6, rows)
