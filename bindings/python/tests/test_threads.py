"""Python threads searching one handle while another thread upserts.

No timing is asserted (the machine is shared): every result must be the
exact top-k of some state of the database between the first and the last,
which the float64 oracle bounds rank by rank, and the final state must
answer exactly."""

import threading

import numpy as np

import resonance

from conftest import unit_rows

D, BASE, NEW, K = 16, 1500, 240, 8


def test_threads_search_while_one_upserts(tmp_path):
    rng = np.random.default_rng(11)
    base = unit_rows(rng, BASE, D)
    new = unit_rows(rng, NEW, D)
    base_ids = [f"b{i:05d}" for i in range(BASE)]
    new_ids = [f"w{i:05d}" for i in range(NEW)]
    queries = unit_rows(rng, 64, D)
    path = str(tmp_path / "t.db")
    with resonance.open(path, create=True, dim=D) as db:
        db.upsert(base_ids, base)

    vec = {i: v.astype(np.float64) for i, v in zip(base_ids + new_ids, np.vstack([base, new]))}
    q64 = queries.astype(np.float64)
    lo = np.sort(q64 @ base.astype(np.float64).T, axis=1)[:, ::-1][:, :K]   # base only
    hi = np.sort(q64 @ np.vstack([base, new]).astype(np.float64).T, axis=1)[:, ::-1][:, :K]

    errors, done = [], threading.Event()
    checked = [0] * 4
    during = [0] * 4  # searches that finished while the writer was writing

    def check(qi, ids, scores, count):
        assert count == K
        assert len(set(ids)) == K
        assert all(scores[j] >= scores[j + 1] for j in range(K - 1))
        for j, (i, s) in enumerate(zip(ids, scores)):
            assert abs(vec[i] @ q64[qi] - s) < 1e-5, (i, s)
            assert lo[qi, j] - 1e-5 <= s <= hi[qi, j] + 1e-5, (qi, j, s)

    def searcher(t):
        r = np.random.default_rng(100 + t)
        try:
            while not done.is_set() or checked[t] < 50:
                if r.random() < 0.5:
                    qi = int(r.integers(len(queries)))
                    res = db.search(queries[qi], k=K, hydrate=bool(t % 2))
                    check(qi, res.ids[0].tolist(), res.scores[0].tolist(), res.counts[0])
                else:
                    qs = r.choice(len(queries), 5, replace=False)
                    res = db.search(queries[qs], k=K)
                    for row, qi in enumerate(qs):
                        check(qi, res.ids[row].tolist(), res.scores[row].tolist(), res.counts[row])
                checked[t] += 1
                if not done.is_set():
                    during[t] += 1
        except BaseException as e:
            errors.append(e)

    def writer():
        try:
            for s in range(0, NEW, 8):
                db.upsert(new_ids[s:s + 8], new[s:s + 8], type="new")
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    with resonance.open(path) as db:
        threads = [threading.Thread(target=searcher, args=(t,)) for t in range(4)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert min(checked) >= 50
        print(f"searches {sum(checked)}, of which {sum(during)} finished during the writes")
        # The final state answers exactly.
        res = db.search(queries, k=K)
        np.testing.assert_allclose(res.scores.astype(np.float64), hi, atol=1e-5, rtol=0)
        assert len(db) == BASE + NEW
