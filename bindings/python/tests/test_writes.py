"""Writes (upsert in one transaction, delete, update_meta, transaction()),
reads (get), open errors, refresh after an outside writer, stats and check."""

import json
import os
import sqlite3

import numpy as np
import pytest

import resonance

from conftest import unit_rows


@pytest.fixture
def fresh(tmp_path):
    with resonance.open(str(tmp_path / "w.db"), create=True, dim=8) as db:
        yield db


def test_upsert_arrays_and_metadata(fresh):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((5, 8))  # float64, not unit: normalised by the library
    n = fresh.upsert([f"n{i}" for i in range(5)], v, type="note",
                     title=[f"T{i}" for i in range(5)], meta=[{"i": i} for i in range(5)],
                     date=np.array(["2024-01-0%d" % (i + 1) for i in range(5)]))
    assert n == 5 and len(fresh) == 5 and fresh.dim == 8
    node = fresh.get("n3")
    assert (node.type, node.title, node.date, node.domain) == ("note", "T3", "2024-01-04", None)
    assert json.loads(node.meta) == {"i": 3}
    np.testing.assert_allclose(node.embedding, v[3] / np.linalg.norm(v[3]), atol=1e-6)
    assert node.embedding.dtype == np.float32
    assert fresh.get("n3", embedding=False).embedding is None
    res = fresh.search(v[2], k=1, hydrate=True)
    assert res.hits()[0].id == "n2" and res.hits()[0].title == "T2"
    # a single id and a (d,) vector; int ids become text
    fresh.upsert("solo", v[0], meta='{"raw": true}')
    fresh.upsert([7, np.int64(8)], v[:2])
    assert "7" in fresh and "8" in fresh and "solo" in fresh and "nine" not in fresh
    assert json.loads(fresh.get("solo").meta) == {"raw": True}
    # no vectors: nodes without embeddings are stored but not searchable
    fresh.upsert(["bare"], title="no vector")
    assert fresh.get("bare").embedding is None and fresh.stats().arena_rows == 8


def test_upsert_is_one_transaction(fresh):
    v = unit_rows(np.random.default_rng(2), 6, 8)
    v[4, 0] = np.inf
    with pytest.raises(resonance.NonFiniteError) as e:
        fresh.upsert([f"x{i}" for i in range(6)], v)
    assert "row 4" in e.value.message and "x4" in e.value.message
    assert fresh.stats().nodes == 0 and len(fresh) == 0  # rows 0..3 rolled back
    with pytest.raises(resonance.DimensionError):
        fresh.upsert(["a", "b"], np.ones((2, 9)))
    with pytest.raises(resonance.ZeroVectorError):
        fresh.upsert(["z"], np.zeros(8))
    assert fresh.stats().nodes == 0


def test_upsert_argument_errors(fresh):
    with pytest.raises(ValueError):
        fresh.upsert(["a", "b"], np.ones((3, 8)))
    with pytest.raises(ValueError):
        fresh.upsert(["a", "b"], np.ones((2, 8)), title=["only one"])
    with pytest.raises(TypeError):
        fresh.upsert(["a"], np.ones(8), colour="red")
    with pytest.raises(TypeError):
        fresh.upsert([1.5], np.ones(8))


def test_delete(fresh):
    fresh.upsert(["a", "b", "c", "d"], np.eye(4, 8))
    assert fresh.delete("a") == 1
    with pytest.raises(resonance.NotFoundError):
        fresh.delete(["b", "nope"])  # nothing is deleted
    assert "b" in fresh
    assert fresh.delete(["b", "nope"], missing_ok=True) == 1
    assert len(fresh) == 2
    res = fresh.search(np.eye(4, 8)[0], k=5)
    assert sorted(res.ids[0, :res.counts[0]].tolist()) == ["c", "d"]


def test_update_meta_and_get_missing(fresh):
    fresh.upsert("a", np.ones(8))
    fresh.update_meta("a", {"k": [1, 2]})
    assert json.loads(fresh.get("a").meta) == {"k": [1, 2]}
    with pytest.raises(resonance.NotFoundError):
        fresh.update_meta("b", {})
    with pytest.raises(KeyError):
        fresh.get("b")
    with pytest.raises(TypeError):
        fresh.get(["a"])


def test_transaction_commit_and_rollback(fresh):
    with fresh.transaction():
        fresh.upsert(["a", "b"], np.eye(2, 8))
        fresh.delete("a")
        fresh.upsert("c", np.ones(8))
    assert sorted(n for n in ("a", "b", "c") if n in fresh) == ["b", "c"]
    with pytest.raises(RuntimeError):
        with fresh.transaction():
            fresh.upsert("d", np.ones(8))
            raise RuntimeError("abandon")
    assert "d" not in fresh and len(fresh) == 2
    with fresh.transaction():
        with pytest.raises(resonance.StateError):
            with fresh.transaction():
                pass


def test_open_errors(tmp_path, small):
    with pytest.raises(resonance.CantOpenError):
        resonance.open(str(tmp_path / "missing.db"))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(resonance.NotADatabaseError):
        resonance.open(str(junk))
    with pytest.raises(resonance.DimensionError) as e:
        resonance.open(small.path, readonly=True, dim=small.d + 1)
    assert str(small.d) in e.value.message and str(small.d + 1) in e.value.message
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t(x)")
    with pytest.raises(resonance.SchemaError):
        resonance.open(str(other))
    with pytest.raises(resonance.InvalidArgumentError):
        resonance.open(small.path, readonly=True, tiers=["f64"])


def test_readonly_refuses_writes(small):
    with resonance.open(small.path, readonly=True) as db:
        with pytest.raises(resonance.ReadOnlyError):
            db.upsert("x", np.ones(small.d))
        with pytest.raises(resonance.Error):
            db.delete("node-00001")


def test_refresh_sees_an_outside_writer(tmp_path):
    path = str(tmp_path / "r.db")
    v = unit_rows(np.random.default_rng(3), 3, 8)
    with resonance.open(path, create=True, dim=8) as db:
        db.upsert(["a", "b"], v[:2])
        with sqlite3.connect(path) as con:  # another connection, as the app writes
            con.execute("INSERT INTO nodes(id, title, embedding) VALUES (?, ?, ?)",
                        ("c", "outside", v[2].astype("<f4").tobytes()))
            con.execute("DELETE FROM nodes WHERE id = 'a'")
        assert db.search(v[2], k=1).ids[0, 0] != "c"
        info = db.refresh()
        assert info.changed and info.upserted >= 1 and info.removed >= 1
        assert db.search(v[2], k=1).ids[0, 0] == "c"
        assert not db.refresh().changed
    with resonance.open(path, auto_refresh=True) as db:
        with sqlite3.connect(path) as con:
            con.execute("UPDATE nodes SET embedding = ? WHERE id = 'b'",
                        (v[2].astype("<f4").tobytes(),))
        res = db.search(v[2], k=2)
        assert res.scores[0].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
        db.reload()


def test_ids_that_are_not_utf8_are_decoded_with_replacement(tmp_path):
    path = str(tmp_path / "u.db")
    with resonance.open(path, create=True, dim=4) as db:
        db.upsert("plain", np.ones(4))
    with sqlite3.connect(path) as con:  # SQLite stores TEXT bytes unchecked
        con.execute("INSERT INTO nodes(id, title, embedding) VALUES "
                    "(CAST(x'6e6fff' AS TEXT), CAST(x'ff' AS TEXT), ?)",
                    (np.array([1, 1, 1, 0.5], "<f4").tobytes(),))
    with resonance.open(path, readonly=True) as db:
        for res in (db.search([1, 1, 1, 0.5], k=2, hydrate=True),
                    db.search([[1, 1, 1, 0.5], [1, 1, 1, 0.4]], k=2, hydrate=True)):
            assert res.ids[0, 0] == "no\ufffd" and res.fields["title"][0, 0] == "\ufffd"


def test_stats_and_check(small, tmp_path):
    with resonance.open(small.path, readonly=True) as db:
        s = db.stats()
        assert s.nodes == len(small.ids) and s.arena_rows == len(small.ids) and s.loaded
        assert s.vectors.by_verdict["ok"] == len(small.ids) and s.vectors.dims == {small.d: len(small.ids)}
        assert s.health.journal_mode == "wal" and s.health.drift == 0
        assert s.isa == resonance.isa() and s.tiers == []
        r = db.check()
        assert r.ok and r.integrity_ok and r.integrity == "ok" and r.problems == 0
    path = str(tmp_path / "bad.db")
    with resonance.open(path, create=True, dim=4) as db:
        db.upsert(["a"], np.ones(4))
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO nodes(id, embedding) VALUES ('nan', ?)",
                    (np.array([np.nan, 1, 1, 1], "<f4").tobytes(),))
        con.execute("INSERT INTO nodes(id, embedding) VALUES ('short', x'0000')")
    with resonance.open(path) as db:
        r = db.check()
        assert not r.ok and r.problems >= 2
        assert r.vectors.by_verdict["non_finite"] == 1 and r.vectors.by_verdict["bad_length"] == 1
        assert len(db) == 1


def test_open_options(small, tmp_path):
    with resonance.open(small.path, readonly=True, load=False, threads=1) as db:
        assert db.stats().loaded is False
        assert db.search(small.queries[0], k=1).counts[0] == 1  # loads at first search
    path = str(tmp_path / "m.db")
    with resonance.open(path, create=True, dim=4, model="m-1", history=False) as db:
        db.upsert("a", np.ones(4))
        assert db.stats().model == "m-1" and db.stats().history == 0
    with pytest.raises(resonance.ModelError):
        resonance.open(path, model="m-2")
    with resonance.open(os.fsencode(path), tiers="all", codes_only=True) as db:
        assert db.search(np.ones(4), k=1, tier="i8").ids[0, 0] == "a"
        with pytest.raises(resonance.TierError):
            db.search(np.ones(4), k=1)
