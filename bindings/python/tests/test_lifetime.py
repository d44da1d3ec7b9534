"""Lifetime rules: results are copies that outlive the handle; a closed
handle refuses calls; close() waits for calls in progress; a handle that is
garbage-collected without close() is closed."""

import gc
import threading

import numpy as np
import pytest

import resonance


def test_results_outlive_the_handle(small):
    db = resonance.open(small.path, readonly=True)
    res = db.search(small.queries[:3], k=5, hydrate=True)
    ids, scores = res.ids.copy(), res.scores.copy()
    titles = res.fields["title"].copy()
    db.close()
    del db
    gc.collect()
    # Churn the allocator so freed C memory would be reused if still referenced.
    with resonance.open(small.path, readonly=True) as other:
        for _ in range(50):
            other.search(small.queries[5:9], k=5, hydrate=True)
    assert res.ids.tolist() == ids.tolist() and res.fields["title"].tolist() == titles.tolist()
    np.testing.assert_array_equal(res.scores, scores)
    assert res.hits(2)[0].id == ids[2, 0]


def test_closed_handle_refuses_calls(small):
    with resonance.open(small.path, readonly=True) as db:
        assert not db.closed
    assert db.closed and "closed" in repr(db)
    for call in (lambda: db.search(small.queries[0]), lambda: db.search_like("node-00001"),
                 lambda: db.get("node-00001"), lambda: db.stats(), lambda: db.check(),
                 lambda: db.refresh(), lambda: db.upsert("a", small.queries[0]),
                 lambda: db.delete("a"), lambda: db.dim):
        with pytest.raises(resonance.ClosedError):
            call()
    db.close()  # idempotent


def test_close_waits_for_searches_in_progress(small):
    db = resonance.open(small.path, readonly=True)
    started = threading.Event()
    outcome = {}

    def searcher():
        n = 0
        try:
            while True:
                res = db.search(small.queries[:4], k=10, hydrate=True)
                assert res.counts.tolist() == [10] * 4
                n += 1
                started.set()
        except resonance.ClosedError:
            outcome["closed_after"] = n
        except BaseException as e:  # pragma: no cover - reported below
            outcome["error"] = e
            started.set()

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait()
    db.close()  # waits for the searches under way, then refuses new ones
    for t in threads:
        t.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["closed_after"] >= 0 and db.closed


def test_unclosed_handle_is_closed_when_collected(small):
    db = resonance.open(small.path, readonly=True)
    fin = db._finalizer
    assert fin.alive
    del db
    gc.collect()
    assert not fin.alive


def test_filters_are_independent_objects(small):
    a = resonance.Filter.ids(["node-00001", "node-00002"])
    b = resonance.Filter.parse({"must": [{"key": "type", "match": {"value": "note"}}]})
    both = a | b
    del a, b
    gc.collect()
    with resonance.open(small.path, readonly=True) as db:
        res = db.search(small.queries[0], k=1000, filter=both)
        assert "node-00001" in res.ids[0].tolist() and "node-00002" in res.ids[0].tolist()
    assert "|" in repr(both)
