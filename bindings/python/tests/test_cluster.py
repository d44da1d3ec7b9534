"""resonance.cluster on a Dask LocalCluster of worker processes: sharded
search equals one database's exactly (ties included), writes land in the
shard their id hashes to, a killed worker is recovered, a missing shard is
named.  Skips (with the reason) when Dask distributed is not installed."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sqlite3

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="python3-distributed not installed")
if os.environ.get("RSN_PY_SANITIZED"):
    pytest.skip("resonance.cluster adds no C: its worker processes are not run under "
                "the sanitizers (the library's own tests are)", allow_module_level=True)

import resonance  # noqa: E402
from resonance import cluster  # noqa: E402
from conftest import SmallDB, cli_path, unit_rows  # noqa: E402

N, D = 900, 24


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    lc = LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      worker_dashboard_address="127.0.0.1:0", silence_logs=40)
    c = Client(lc)
    yield c
    c.close()
    lc.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster")
    src = SmallDB(str(d / "src.db"), n=N, d=D, seed=11)
    con = sqlite3.connect(src.path)  # edges, for the graph filter
    con.executemany("INSERT INTO edges(source, target, type) VALUES (?, ?, ?)",
                    [(f"node-{i:05d}", f"node-{(i * 7 + 1) % N:05d}", "cites")
                     for i in range(0, N, 3)])
    con.commit()
    con.close()
    return src, d


def shard(src_path: str, out: str, s: int) -> str:
    r = subprocess.run([cli_path(), "shard", src_path, "--shards", str(s), "--out", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return os.path.join(out, "manifest.json")


def same(a, b) -> None:
    """Two results are the same answer: counts, ids, and score bits."""
    assert np.array_equal(a.counts, b.counts)
    for q in range(len(a.counts)):
        c = int(a.counts[q])
        assert list(a.ids[q, :c]) == list(b.ids[q, :c]), q
        assert a.scores[q, :c].tobytes() == b.scores[q, :c].tobytes(), q
        assert all(x is None for x in a.ids[q, c:])
        assert np.isnan(a.scores[q, c:]).all()


def test_shard_of_matches_the_library():
    lib = resonance._lib.load()
    fn = lib.rsn_shard_of
    fn.restype = ctypes.c_uint32
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]
    ids = ["", "a", "node-00001", "ü-ß-€", "日本語", "x" * 300] + [f"n{i}" for i in range(500)]
    for s in (1, 2, 3, 4, 7, 64):
        for i in ids:
            b = i.encode("utf-8")
            assert cluster.shard_of(i, s) == fn(b, len(b), s), (i, s)


def test_merge_topk_against_brute_force():
    rng = np.random.default_rng(3)
    for trial in range(50):
        k = int(rng.integers(1, 8))
        parts, every = [], []
        for s in range(int(rng.integers(1, 5))):
            n = 4
            sc = np.full((n, k), np.nan, np.float32)
            ids = np.full((n, k), None, object)
            counts = rng.integers(0, k + 1, n)
            for q in range(n):
                # few distinct scores: many ties, broken by id
                vals = sorted(((float(np.float32(rng.integers(0, 3) / 4)), f"s{s}-{j}")
                               for j in range(int(counts[q]))), key=lambda t: (-t[0], t[1]))
                for j, (v, i) in enumerate(vals):
                    sc[q, j], ids[q, j] = v, i
                    every.append((q, v, i))
            parts.append((sc, ids, counts))
        s_, i_, c_ = cluster.merge_topk(parts, k)
        for q in range(4):
            want = sorted([(v, i) for (qq, v, i) in every if qq == q],
                          key=lambda t: (-t[0], t[1]))[:k]
            assert int(c_[q]) == len(want)
            assert [(float(s_[q, j]), i_[q, j]) for j in range(len(want))] == want
            assert all(x is None for x in i_[q, len(want):])


@pytest.mark.parametrize("s", [1, 2, 4])
def test_sharded_equals_single(client, source, s, tmp_path):
    src, _ = source
    man = shard(src.path, str(tmp_path / f"s{s}"), s)
    rng = np.random.default_rng(s)
    qs = np.concatenate([src.queries, unit_rows(rng, 20, D)])
    filters = [None, {"must": [{"key": "type", "match": {"value": "paper"}}]},
               {"must": [{"has_id": ["dup-a", "dup-b", "node-00003", "node-00900"]}]},
               {"must": [{"near": {"id": "node-00003", "hops": 2}}]},
               {"must_not": [{"key": "layer", "match": {"value": "edge"}}]}]
    with resonance.open(src.path, readonly=True) as db, \
            cluster.ShardedIndex(client, man, timeout=60) as index:
        assert sum(index.rows()) == len(db)
        for f in filters:
            for k in (1, 3, 10, 50):
                same(index.search(qs, k=k, filter=f), db.search(qs, k=k, filter=f))
                same(index.search(qs[0], k=k, filter=f), db.search(qs[0], k=k, filter=f))
        # the duplicates tie: all three, in id order, in every layout
        r = index.search(src.queries[0], k=4)
        assert list(r.ids[0, 1:4]) == ["dup-a", "dup-b", "dup-c"] or \
            list(r.ids[0, :3]) == ["dup-a", "dup-b", "dup-c"]
        # more than there is
        big = index.search(qs[:2], k=N + 100)
        assert list(big.counts) == [len(db)] * 2
        same(big, db.search(qs[:2], k=N + 100))
        same(index.search(qs, k=5, min_score=0.2), db.search(qs, k=5, min_score=0.2))
        assert index.search(qs, k=3).shards_answered == list(range(s))


def test_tier_search_guarantees(client, source, tmp_path):
    """b1 codes are per row (sign bits), so every shard keeps at least the
    candidates the single database keeps from it: rank by rank the merged
    hit scores at least as high.  i8 codes use per-dimension ranges fitted
    to the rows of each file, so a shard's candidates may differ; what holds
    is that every hit is a real row with its exact f32 score, never above
    the exact answer of its rank."""
    src, _ = source
    man = shard(src.path, str(tmp_path / "t"), 3)
    qs = unit_rows(np.random.default_rng(5), 30, D)
    with resonance.open(src.path, readonly=True, tiers=["i8", "b1"]) as db, \
            cluster.ShardedIndex(client, man, tiers=["i8", "b1"]) as index:
        exact = db.search(qs, k=10)
        one = db.search(qs, k=10, tier="b1", oversample=2)
        many = index.search(qs, k=10, tier="b1", oversample=2)
        assert np.array_equal(one.counts, many.counts)
        assert (many.scores >= one.scores).all()
        for tier, os_ in (("b1", 2), ("i8", 2)):
            many = index.search(qs, k=10, tier=tier, oversample=os_)
            assert (many.counts == 10).all()
            assert (many.scores <= exact.scores).all(), tier
            for q in range(len(qs)):
                ids = list(many.ids[q])
                own = db.search(qs[q], k=10, filter={"must": [{"has_id": ids}]})
                got = dict(zip(own.ids[0], own.scores[0]))
                assert [got[i] for i in ids] == list(many.scores[q]), (tier, q)


def test_writes_land_in_their_shard(client, source, tmp_path):
    src, _ = source
    man = shard(src.path, str(tmp_path / "w"), 3)
    m = cluster.load_manifest(man)
    rng = np.random.default_rng(9)
    new_ids = [f"new-{i}" for i in range(40)]
    vecs = unit_rows(rng, 40, D)
    with cluster.ShardedIndex(client, man) as index:
        assert index.upsert(new_ids, vecs, title=[f"T{i}" for i in range(40)],
                            type="note") == 40
        gone = ["node-00010", "node-00011", "node-00012"]
        assert index.delete(gone) == 3
        with pytest.raises(resonance.NotFoundError):
            index.delete(["node-00010"])
        r = index.search(vecs[:5], k=1)
        assert list(r.ids[:, 0]) == new_ids[:5]
    for s in m["shards"]:
        con = sqlite3.connect(s["file"])
        have = {row[0] for row in con.execute("SELECT id FROM nodes")}
        titles = dict(con.execute("SELECT id, title FROM nodes WHERE id LIKE 'new-%'"))
        con.close()
        for i, id in enumerate(new_ids):
            assert (id in have) == (cluster.shard_of(id, 3) == s["index"]), (id, s["index"])
            if id in have:
                assert titles[id] == f"T{i}"
        for id in gone:
            assert id not in have


def test_killed_worker_is_recovered(client, source, tmp_path):
    src, _ = source
    man = shard(src.path, str(tmp_path / "k"), 2)
    qs = unit_rows(np.random.default_rng(13), 8, D)
    with resonance.open(src.path, readonly=True) as db, \
            cluster.ShardedIndex(client, man, timeout=60) as index:
        want = db.search(qs, k=10)
        same(index.search(qs, k=10), want)
        pid = index._actors[1].pid().result(timeout=30)
        os.kill(pid, signal.SIGKILL)
        got = index.search(qs, k=10)  # re-created from the file, retried once
        assert index.restarts >= 1
        same(got, want)
        same(index.search(qs, k=10), want)


def test_missing_shard_is_named(client, source, tmp_path):
    src, _ = source
    out = tmp_path / "m"
    man = shard(src.path, str(out), 2)
    m = cluster.load_manifest(man)
    os.remove(m["shards"][1]["file"])
    with pytest.raises(cluster.ShardUnavailableError) as e:
        cluster.ShardedIndex(client, man)
    assert e.value.shard == 1 and "no such file" in str(e.value)
    assert m["shards"][1]["file"] in str(e.value)


def test_lost_shard_fails_or_is_partial_on_request(client, source, tmp_path):
    src, _ = source
    man = shard(src.path, str(tmp_path / "p"), 2)
    m = cluster.load_manifest(man)
    qs = unit_rows(np.random.default_rng(17), 3, D)
    with cluster.ShardedIndex(client, man, timeout=30) as index:
        # the file goes away and its worker dies: re-creating the actor fails
        os.remove(m["shards"][0]["file"])
        pid = index._actors[0].pid().result(timeout=30)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(cluster.ShardUnavailableError) as e:
            index.search(qs, k=5)
        assert e.value.shard == 0
        r = index.search(qs, k=5, partial=True)
        assert r.shards_answered == [1] and r.shards_missing == [0]
        for q in range(3):
            for j in range(int(r.counts[q])):
                assert cluster.shard_of(r.ids[q, j], 2) == 1


def test_manifest_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(cluster.ManifestError):
        cluster.load_manifest(str(bad))
    with pytest.raises(cluster.ManifestError):
        cluster.load_manifest({"shards": [{"index": 0, "file": "a"}, {"index": 0, "file": "b"}]})
    with pytest.raises(cluster.ManifestError):
        cluster.load_manifest(str(tmp_path / "absent.json"))


def test_cli_cluster_search(client, source, tmp_path):
    src, _ = source
    man = shard(src.path, str(tmp_path / "c"), 2)
    qs = unit_rows(np.random.default_rng(19), 4, D)
    qf = tmp_path / "q.json"
    qf.write_text(json.dumps(qs.tolist()))
    addr = client.scheduler.address
    r = subprocess.run([cli_path(), "cluster-search", man, "--scheduler", addr,
                        "--queries", str(qf), "-k", "7", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    with resonance.open(src.path, readonly=True) as db:
        want = db.search(qs, k=7)
    for q in range(4):
        assert [h["id"] for h in out["results"][q]] == list(want.ids[q, :7])
        assert [np.float32(h["score"]) for h in out["results"][q]] == list(want.scores[q, :7])
    r = subprocess.run([cli_path(), "cluster-search", str(tmp_path / "none.json"),
                        "--scheduler", addr, "--queries", str(qf)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and "none.json" in r.stderr
