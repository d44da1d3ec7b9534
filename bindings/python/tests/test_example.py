"""examples/app_search.py reproduces the app's search on an app-style
database made by the CLI (generate + import), and agrees with the app's own
loop (--check)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import PKG, cli_path

EXAMPLE = os.path.join(PKG, "examples", "app_search.py")


@pytest.fixture(scope="module")
def app_db(tmp_path_factory):
    cli = cli_path()
    if not os.path.exists(cli):
        pytest.skip(f"{cli} not built")
    d = tmp_path_factory.mktemp("app")
    run = lambda *a: subprocess.run([cli, *a], check=True, capture_output=True, text=True)
    run("generate", str(d / "c.jsonl"), "--n", "2000", "--dim", "48", "--seed", "5",
        "--clusters", "8", "--queries", "3", "--queries-out", str(d / "q.f32"))
    run("init", str(d / "app.db"), "--dim", "48")
    run("import", str(d / "app.db"), str(d / "c.jsonl"))
    return d


def run_example(*args):
    env = dict(os.environ, PYTHONPATH=PKG + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True,
                          env=env)


def test_example_matches_the_app_loop(app_db):
    q = np.fromfile(app_db / "q.f32", "<f4").reshape(3, 48)
    for i in range(3):
        np.save(app_db / f"q{i}.npy", q[i])
        p = run_example(str(app_db / "app.db"), "--vector", str(app_db / f"q{i}.npy"),
                        "--limit", "7", "--check")
        assert p.returncode == 0, p.stderr
        assert "same answer" in p.stderr
        hits = json.loads(p.stdout)
        assert len(hits) == 7 and all(h["score"] > 0 for h in hits)
        assert all({"id", "score", "title", "type"} <= set(h) for h in hits)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_example_by_node_id(app_db):
    p = run_example(str(app_db / "app.db"), "--id", "node-000042", "--limit", "3", "--check")
    assert p.returncode == 0, p.stderr
    hits = json.loads(p.stdout)
    assert hits[0]["id"] == "node-000042" and abs(hits[0]["score"] - 1) < 1e-6
