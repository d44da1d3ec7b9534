#!/usr/bin/env python3
"""embed_server_selftest.py -- checks tests/embed_server.py: every route,
dialect, error, fault kind, the log, keep-alive and the ways it stops.
Stdlib only, 127.0.0.1 only; a few seconds.  Exits 0 when all pass.

    python3 tests/embed_server_selftest.py
"""
import hashlib
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embed_server.py")
KEY = "sk-selftest-3f9a1c"
DIM, MAX_BATCH, MODEL = 64, 4, "mdl"
started = []


def ref_embed(text, dim):
    """embed() written again from embed_server.py's docstring."""
    s = " " + text.lower() + " "
    grams = [s[i:i + 3] for i in range(len(s) - 2)] if len(s) >= 3 else [s]
    v = [0] * dim
    for g in grams:
        h = int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(),
                           "little")
        v[h % dim] += 1 if h < 1 << 63 else -1
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else [1.0] + [0.0] * (dim - 1)


def cos(a, b):
    return sum(x * y for x, y in zip(a, b))


class Srv:
    def __init__(self, *args, stdin=subprocess.PIPE):
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen([sys.executable, SERVER, *args], stdin=stdin,
                                  stdout=subprocess.PIPE, stderr=self.err)
        started.append(self.p)
        line = self.p.stdout.readline()
        assert line.startswith(b"PORT ") and line.endswith(b"\n"), line
        self.port = int(line[5:])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def req(self, method, path, body=None, key=KEY, headers=None, conn=None):
        """(status, headers, raw body); body: a dict/list as JSON, bytes as is."""
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c = conn or self.conn
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        if method != "HEAD":
            assert r.getheader("Content-Length") == str(len(data)), (path, r.getheaders())
        return r.status, r, data

    def js(self, method, path, body=None, **kw):
        status, r, data = self.req(method, path, body, **kw)
        return status, json.loads(data)

    def stop(self, how=None, timeout=5):
        """Stops it (how: a signal, "stdin", or None to wait); (rc, stdout rest, stderr)."""
        self.conn.close()
        if how == "stdin":
            self.p.stdin.close()
        elif how is not None:
            self.p.send_signal(how)
        rc = self.p.wait(timeout)
        out = self.p.stdout.read()
        self.p.stdout.close()
        if self.p.stdin:
            self.p.stdin.close()
        self.err.seek(0)
        return rc, out, self.err.read().decode()


def log_of(s, fid):
    return s.js("GET", "/_log?id=" + fid)[1]["requests"]


def check_vectors(s):
    texts = ["Hello world", "hello world!", "quantum chromodynamics", "Größe ÄÖÜ", "a"]
    st, o = s.js("POST", "/v1/embeddings", {"model": "m", "input": texts[:4]})
    assert st == 200 and [d["index"] for d in o["data"]] == [0, 1, 2, 3], o
    got = [d["embedding"] for d in o["data"]]
    assert got == [ref_embed(t, DIM) for t in texts[:4]]          # bit-exact
    assert all(abs(math.sqrt(cos(v, v)) - 1) < 1e-12 for v in got)
    assert cos(got[0], got[1]) > 0.8 > 0.4 > cos(got[0], got[2]), (cos(got[0], got[1]),
                                                                 cos(got[0], got[2]))
    assert o["model"] == "m" and o["object"] == "list" and o["data"][0]["object"] == "embedding"
    st, o = s.js("POST", "/v1/embeddings", {"model": "m", "input": "a", "encoding_format": "float"})
    assert st == 200 and o["data"][0]["embedding"] == ref_embed("a", DIM)
    assert o["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    st, o = s.js("POST", "/v1/embeddings", {"model": "m", "input": ["hello", "world!"]})
    assert o["usage"]["prompt_tokens"] == 3                        # ceil(11 / 4)


def check_dialects(s):
    st, o = s.js("POST", "/api/embed", {"model": "llm", "input": "hi there"})
    assert st == 200 and o == {"model": "llm", "embeddings": [ref_embed("hi there", DIM)]}
    st, o = s.js("POST", "/api/embed", {"model": "llm", "input": ["x", "y"]})
    assert st == 200 and o["embeddings"] == [ref_embed("x", DIM), ref_embed("y", DIM)]
    st, o = s.js("POST", "/embed", {"inputs": ["x", "yz"], "truncate": True})
    assert st == 200 and o == [ref_embed("x", DIM), ref_embed("yz", DIM)]
    st, o = s.js("POST", "/embed", {"inputs": "x", "normalize": False})
    assert st == 200 and o == [[3.0 * x for x in ref_embed("x", DIM)]]
    st, o = s.js("POST", "/embed", {"text": "the daemon"})
    assert st == 200 and o == {"vector": ref_embed("the daemon", DIM), "dimensions": DIM}
    st, o = s.js("GET", "/info", key=None)
    assert st == 200 and o == {"model_id": MODEL, "max_client_batch_size": MAX_BATCH,
                               "model_type": {"embedding": {"pooling": "cls"}}}
    st, o = s.js("GET", "/health", key=None)
    assert st == 200 and o == {"status": "ok", "model": MODEL, "ready": True}


def openai_err(s, body, status, path="/v1/embeddings", **kw):
    st, o = s.js("POST", path, body, **kw)
    assert st == status and o["error"]["type"] == "invalid_request_error", (st, o)
    assert isinstance(o["error"]["message"], str) and "code" in o["error"], o
    return o["error"]


def plain_err(s, path, body, status, **kw):
    st, o = s.js("POST", path, body, **kw)
    assert st == status and isinstance(o["error"], str), (path, body, st, o)
    return o


def check_errors(s):
    openai_err(s, {"input": "x"}, 400)
    openai_err(s, {"model": "m", "input": "x", "encoding_format": "base64"}, 400)
    openai_err(s, {"model": "m", "input": [1, 2]}, 400)
    openai_err(s, {"model": "m", "input": []}, 400)
    openai_err(s, {"model": "m", "input": ["ok", ""]}, 400)
    openai_err(s, {"model": "m"}, 400)
    assert str(MAX_BATCH) in openai_err(s, {"model": "m", "input": ["t"] * 5}, 400)["message"]
    assert openai_err(s, {"model": "missing-model", "input": "x"}, 404)["code"] == "model_not_found"
    openai_err(s, b"not json", 400)
    openai_err(s, b"[1, 2]", 400)
    plain_err(s, "/api/embed", {"input": "x"}, 400)
    plain_err(s, "/api/embed", {"model": "m", "input": ""}, 400)
    plain_err(s, "/api/embed", {"model": "m", "input": ["t"] * 5}, 400)
    plain_err(s, "/api/embed", b"{oops", 400)
    assert "not found" in plain_err(s, "/api/embed", {"model": "missing-model", "input": "x"},
                                    404)["error"]
    o = plain_err(s, "/embed", {"inputs": ["t"] * 5}, 413)
    assert o["error_type"] == "Validation" and str(MAX_BATCH) in o["error"], o
    for bad in ({"inputs": ""}, {"inputs": []}, {"inputs": ["a", ""]}, {"inputs": 7},
                {"inputs": "a", "normalize": "yes"}):
        assert plain_err(s, "/embed", bad, 422)["error_type"] == "Validation"
    assert set(plain_err(s, "/embed", {"text": ""}, 400)) == {"error"}
    plain_err(s, "/embed", {"text": 5}, 400)
    assert set(plain_err(s, "/embed", {}, 400)) == {"error"}
    assert set(plain_err(s, "/embed", b"\xff garbage", 400)) == {"error"}
    st, o = s.js("GET", "/nope", key=None)
    assert st == 404 and o == {"error": "not found"}
    st, o = s.js("POST", "/v1/embeddings/extra", {}, key=None)
    assert st == 404 and o == {"error": "not found"}
    for method, path, allow in (("GET", "/v1/embeddings", "POST"), ("POST", "/info", "GET"),
                                ("DELETE", "/embed", "POST"), ("PUT", "/_log", "GET")):
        st, r, data = s.req(method, path, key=None)
        assert st == 405 and r.getheader("Allow") == allow and "error" in json.loads(data)
    st, r, data = s.req("HEAD", "/health", key=None)
    assert st == 405 and data == b"" and int(r.getheader("Content-Length")) > 0


def check_auth(s):
    for key in (None, "wrong-key-77"):
        e = openai_err(s, {"model": "m", "input": "x"}, 401, key=key, path="/_f/id=auth/v1/embeddings")
        assert e["message"] == "invalid api key" and e["code"] == "invalid_api_key"
        assert plain_err(s, "/_f/id=auth/api/embed", {"model": "m", "input": "x"}, 401,
                         key=key) == {"error": "invalid api key"}
        o = plain_err(s, "/_f/id=auth/embed", {"inputs": "x"}, 401, key=key)
        assert o == {"error": "invalid api key", "error_type": "Unauthorized"}
        assert plain_err(s, "/_f/id=auth/embed", {"text": "x"}, 401,
                         key=key) == {"error": "invalid api key"}
    st, _ = s.js("POST", "/embed", {"text": "x"}, key=None, headers={"Authorization": "bearer " + KEY})
    assert st == 200
    log = log_of(s, "auth")
    assert [e["dialect"] for e in log] == ["openai", "ollama", "tei", "daemon"] * 2
    assert not any(e["authorized"] or e["faulted"] for e in log)
    assert all(e["n_inputs"] == 1 for e in log) and log == sorted(log, key=lambda e: e["t_ms"])


def check_faults(s):
    body = {"model": "m", "input": ["a", "b", "c"]}
    pre = "/_f/fail=500,times=2,id=t1"
    for want in (500, 500, 200):
        st, o = s.js("POST", pre + "/v1/embeddings", body)
        assert st == want, (st, o)
    assert o["data"][2]["embedding"] == ref_embed("c", DIM)
    log = log_of(s, "t1")
    assert [e["faulted"] for e in log] == [True, True, False], log
    assert log[0]["path"] == "/v1/embeddings" and log[0]["n_inputs"] == 3
    assert set(log[0]) == {"path", "dialect", "n_inputs", "authorized", "faulted", "t_ms"}
    st, o = s.js("POST", "/_f/fail=500,id=t2/v1/embeddings", body)
    assert o["error"]["message"] == "injected failure 500" and o["error"]["type"] == "invalid_request_error"
    # the fault answers before the key check; a daemon-style 500
    st, o = s.js("POST", "/_f/fail=500,id=t2/embed", {"text": "x"}, key=None)
    assert st == 500 and o == {"error": "injected failure 500"}
    for code, etype in ((424, "Backend"), (429, "Overloaded"), (503, "Unhealthy")):
        st, r, data = s.req("POST", f"/_f/fail={code},retry_after=7,id=t3/embed", {"inputs": "x"})
        assert st == code and json.loads(data) == {"error": f"injected failure {code}",
                                                   "error_type": etype}
        assert r.getheader("Retry-After") == "7"
    st, r, data = s.req("POST", "/_f/fail=429,id=t3/api/embed", {"model": "m", "input": "x"})
    assert st == 429 and json.loads(data) == {"error": "injected failure 429"}
    assert r.getheader("Retry-After") is None
    t0 = time.monotonic()
    st, o = s.js("POST", "/_f/delay=300,times=1,id=slow/api/embed", {"model": "m", "input": "x"})
    assert st == 200 and time.monotonic() - t0 >= 0.3 and o["embeddings"] == [ref_embed("x", DIM)]
    t0 = time.monotonic()
    s.js("POST", "/_f/delay=300,times=1,id=slow/api/embed", {"model": "m", "input": "x"})
    assert time.monotonic() - t0 < 0.25
    assert [e["faulted"] for e in log_of(s, "slow")] == [True, False]

    # raw kinds
    st, r, data = s.req("POST", "/_f/bad=json/v1/embeddings", body)
    assert st == 200 and data == b'{"data": ['
    st, r, data = s.req("POST", "/_f/bad=empty/v1/embeddings", body)
    assert st == 200 and data == b""
    st, r, data = s.req("POST", "/_f/bad=html,retry_after=3/embed", {"inputs": "x"})
    assert (st, data, r.getheader("Retry-After")) == (502, b"<html>Bad Gateway</html>", "3")
    assert r.getheader("Content-Type").startswith("text/html")
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("POST", "/_f/bad=truncate/v1/embeddings", body=json.dumps(body))
    r = c.getresponse()
    assert r.status == 200
    try:
        r.read()
        raise AssertionError("truncate: the body was complete")
    except http.client.IncompleteRead as e:
        assert e.partial.startswith(b'{"object"')
    c.close()
    st, o = s.js("POST", "/_f/bad=echo_key/v1/embeddings", body)
    assert st == 401 and "Bearer " + KEY in o["error"]["message"]
    st, o = s.js("POST", "/_f/bad=echo_key/embed", {"inputs": "x"}, key="leak-me")
    assert st == 401 and "Bearer leak-me" in o["error"] and o["error_type"] == "Unauthorized"

    # vector kinds
    refs = [ref_embed(t, DIM) for t in body["input"]]

    def vecs(spec, path="/v1/embeddings", b=body):
        st, r, data = s.req("POST", "/_f/" + spec + path, b)
        assert st == 200, (spec, st, data)
        o = json.loads(data)
        return data, o
    _, o = vecs("bad=count")
    assert [d["embedding"] for d in o["data"]] == refs[:2]
    _, o = vecs("bad=extra")
    assert [d["index"] for d in o["data"]] == [0, 1, 2, 3] and len(o["data"][3]["embedding"]) == DIM
    _, o = vecs("bad=order")
    assert [d["index"] for d in o["data"]] == [2, 1, 0]
    assert all(d["embedding"] == refs[d["index"]] for d in o["data"])
    _, o = vecs("bad=dupindex")
    assert [d["index"] for d in o["data"]] == [0, 1, 0]
    _, o = vecs("bad=dupindex", b={"model": "m", "input": "a"})
    assert [d["index"] for d in o["data"]] == [0, 0]
    _, o = vecs("bad=dim")
    assert [len(d["embedding"]) for d in o["data"]] == [DIM, DIM, DIM - 1]
    _, o = vecs("bad=dim,at=0")
    assert [len(d["embedding"]) for d in o["data"]] == [DIM - 1, DIM, DIM]
    data, o = vecs("bad=nan,at=1")
    assert b"NaN" in data and math.isnan(o["data"][1]["embedding"][0])
    assert o["data"][1]["embedding"][1:] == refs[1][1:] and o["data"][0]["embedding"] == refs[0]
    data, o = vecs("bad=inf")
    assert b"1e999" in data and b"Infinity" not in data and o["data"][2]["embedding"][0] == math.inf
    _, o = vecs("bad=zero,at=0")
    assert o["data"][0]["embedding"] == [0.0] * DIM and o["data"][1]["embedding"] == refs[1]
    _, o = vecs("bad=string")
    assert o["data"][2]["embedding"][0] == "0.1"
    ob = {"model": "m", "input": ["a", "b"]}
    _, o = vecs("bad=count", "/api/embed", ob)
    assert o["embeddings"] == [ref_embed("a", DIM)]
    _, o = vecs("bad=order", "/api/embed", ob)
    assert o["embeddings"] == [ref_embed("a", DIM), ref_embed("b", DIM)]
    _, o = vecs("bad=extra", "/embed", {"inputs": ["a", "b"]})
    assert len(o) == 3
    _, o = vecs("bad=zero", "/embed", {"inputs": ["a", "b"], "normalize": False})
    assert o[1] == [0.0] * DIM and o[0] == [3.0 * x for x in ref_embed("a", DIM)]
    _, o = vecs("bad=count", "/embed", {"text": "a"})
    assert o == {"dimensions": DIM}
    _, o = vecs("bad=dim", "/embed", {"text": "a"})
    assert len(o["vector"]) == DIM - 1 and o["dimensions"] == DIM
    _, o = vecs("bad=string,times=1,id=once", "/embed", {"text": "a"})
    assert o["vector"][0] == "0.1"
    _, o = vecs("bad=string,times=1,id=once", "/embed", {"text": "a"})
    assert o["vector"] == ref_embed("a", DIM)
    openai_err(s, body, 400, path="/_f/bad=nan,at=3/v1/embeddings")

    # spec errors: the dialect's 400
    for spec in ("bogus=1", "fail=200", "fail=abc", "times=-1", "bad=wat", "fail=500,bad=json",
                 "id=a,id=b", "id=a%20b", "delay", "at=x"):
        assert "fault spec" in openai_err(s, body, 400, path=f"/_f/{spec}/v1/embeddings")["message"]
    o = plain_err(s, "/_f/bogus=1/embed", {"inputs": "x"}, 400)
    assert o["error_type"] == "Validation"
    st, o = s.js("GET", "/_f/bogus=1/health", key=None)
    assert st == 400 and "bogus" in o["error"]
    st, o = s.js("GET", "/_f/fail=500/info", key=None)
    assert st == 200 and o["model_id"] == MODEL
    assert "bogus" not in s.js("GET", "/_log")[1]["ids"]


def check_log_reset(s):
    st, o = s.js("GET", "/_log", key=None)
    assert st == 200 and o["ids"]["t1"] == 3 and o["ids"]["auth"] == 8 and o["ids"]["default"] > 10
    assert s.js("GET", "/_log?id=never", key=None)[1] == {"requests": []}
    st, o = s.js("POST", "/_reset", key=None)
    assert st == 200 and o == {"ok": True}
    assert s.js("GET", "/_log")[1] == {"ids": {}}
    st, _ = s.js("POST", "/_f/fail=500,times=2,id=t1/v1/embeddings", {"model": "m", "input": "x"})
    assert st == 500                                  # the times counter started over


def check_transport(s):
    sock = s.conn.sock
    for _ in range(5):
        assert s.js("POST", "/embed", {"text": "keep"})[0] == 200
        assert s.js("GET", "/health")[0] == 200
        assert s.js("POST", "/v1/embeddings", {"model": "m", "input": []})[0] == 400
    assert s.conn.sock is sock and sock is not None, "the connection was not kept alive"
    s.conn.request("POST", "/embed", body=iter([b'{"te', b'xt": "chunked"}']),
                   headers={"Authorization": "Bearer " + KEY}, encode_chunked=True)
    r = s.conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["vector"] == ref_embed("chunked", DIM)
    assert s.conn.sock is sock


def main():
    fd, keyfile = tempfile.mkstemp()
    os.write(fd, (KEY + "\n").encode())
    os.close(fd)
    try:
        s = Srv("--dim", str(DIM), "--max-batch", str(MAX_BATCH), "--model", MODEL,
                "--api-key-file", keyfile)
        for check in (check_vectors, check_dialects, check_errors, check_auth, check_faults,
                      check_log_reset, check_transport):
            check(s)
            print("ok", check.__name__)
        idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        s.req("GET", "/health", conn=idle)          # left open, idle, while it stops
        rc, out, err = s.stop(signal.SIGTERM)
        assert rc == 0 and out == b"", (rc, out)
        assert "POST /v1/embeddings" in err and KEY not in err and "leak-me" not in err, err
        idle.close()
        print("ok access log on stderr, no key in it; SIGTERM with a keep-alive connection open")

        s = Srv("--quiet")                              # the defaults, no key
        st, o = s.js("POST", "/embed", {"text": "x"}, key=None)
        assert st == 200 and o["dimensions"] == 384 and o["vector"] == ref_embed("x", 384)
        assert s.js("GET", "/info")[1]["max_client_batch_size"] == 32
        assert s.js("GET", "/health")[1]["model"] == "test-ngram-384"
        assert s.js("POST", "/v1/embeddings", {"model": "m", "input": ["t"] * 33})[0] == 400
        t0 = time.monotonic()
        assert s.stop("stdin") == (0, b"", "") and time.monotonic() - t0 < 2
        print("ok defaults; stdin EOF stops it")

        s = Srv("--quiet", "--lifetime", "1", stdin=subprocess.DEVNULL)
        time.sleep(0.3)
        assert s.p.poll() is None and s.js("GET", "/health")[0] == 200
        assert s.stop(None, timeout=4) == (0, b"", "")
        print("ok --lifetime; stdin /dev/null ignored")
        s = Srv("--quiet", stdin=subprocess.DEVNULL)
        assert s.stop(signal.SIGINT) == (0, b"", "")
        print("ok SIGINT")

        r = subprocess.run([sys.executable, SERVER, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and all(w in r.stdout for w in (
            "blake2b", "bad=KIND", "retry_after", "echo_key", "/_log", "--api-key-file"))
        r = subprocess.run([sys.executable, SERVER, "--api-key", "topsecret", "--api-key-file",
                            keyfile], capture_output=True, text=True)
        assert r.returncode == 2 and "topsecret" not in r.stderr + r.stdout
        r = subprocess.run([sys.executable, SERVER, "--api-key-file", keyfile + ".none"],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
        print("ok --help and argument errors")
    finally:
        os.unlink(keyfile)
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()
    print("embed_server selftest: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
