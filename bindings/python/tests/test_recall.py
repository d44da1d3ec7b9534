"""Recall on the real data sets in shared/data (skipped when absent): every
query's top 10 through the binding is the published exact top 10 (cosine,
float64), ties aside, for single searches and one batch."""

import os

import numpy as np
import pytest

import resonance

from conftest import shared_data

SETS = {"beir-queries-bge-base-en-v1.5": 768, "sift-ngt-5k": 128}
K = 10


@pytest.mark.parametrize("name", sorted(SETS))
def test_recall_at_10_is_exact(name, tmp_path):
    d = SETS[name]
    folder = os.path.join(shared_data(), name)
    if not os.path.exists(os.path.join(folder, "groundtruth.i32")):
        pytest.skip(f"{folder} not present (set RSN_SHARED_DATA)")
    base = np.fromfile(os.path.join(folder, "base.f32"), "<f4").reshape(-1, d)
    queries = np.fromfile(os.path.join(folder, "queries.f32"), "<f4").reshape(-1, d)
    truth = np.fromfile(os.path.join(folder, "groundtruth.i32"), "<i4").reshape(-1, 100)
    with resonance.open(str(tmp_path / "r.db"), create=True, dim=d) as db:
        db.upsert(range(len(base)), base)  # ids "0", "1", ...: base rows
        batch = db.search(queries, k=K)
        b64 = base.astype(np.float64)
        b64 /= np.linalg.norm(b64, axis=1, keepdims=True)
        hits = 0
        for qi, q in enumerate(queries):
            single = db.search(q, k=K)
            assert single.ids[0].tolist() == batch.ids[qi].tolist()
            exact = b64 @ (q.astype(np.float64) / np.linalg.norm(q))
            kth = exact[truth[qi, K - 1]]
            got = [int(i) for i in batch.ids[qi]]
            # tie-aware: an id counts when its exact score reaches the k-th's - 1e-6
            hits += sum(1 for i in got if i in set(truth[qi, :K]) or exact[i] >= kth - 1e-6)
            np.testing.assert_allclose(batch.scores[qi], exact[got], atol=1e-5, rtol=0)
        assert hits / (K * len(queries)) == 1.0
