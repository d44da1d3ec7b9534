#!/usr/bin/env python3
"""embed_server.py -- a deterministic fake embedding service for the C tests
of resonance's embedding client.  Python 3 standard library only.

It binds --host:--port (port 0: an ephemeral one), prints exactly
"PORT <n>\\n" on stdout (nothing else is ever written there), then serves
four dialects at once over HTTP/1.1 with keep-alive; every response carries
a Content-Length.  It exits 0 after --lifetime seconds, on SIGTERM or
SIGINT, and when stdin reaches EOF if stdin is a pipe (a tty or /dev/null
is ignored), so a test that dies takes it along.  Access logs go to stderr
unless --quiet.  The API key is never printed or logged.

VECTORS: hashed character trigrams, embed(text, dim)
  s = " " + text.lower() + " "    Python's str.lower(); a character is a
                                  Unicode code point
  grams: s[i:i+3] for i = 0 .. len(s)-3, in order (s itself if len(s) < 3)
  v = dim integers, all 0
  for each gram g:
    h = BLAKE2b, unkeyed, of the UTF-8 bytes of g with digest length 8 (set
        in the parameter block: hashlib.blake2b(b, digest_size=8), not a cut
        64-byte digest), read as a little-endian uint64
    v[h % dim] += 1 if bit 63 of h is 0 else -1
  n = sqrt(sum of v[i]^2)         the sum is exact, then an IEEE double sqrt
  x[i] = v[i] / n                 one IEEE double division each; the JSON
                                  has Python's repr of the double
  if n == 0 (every gram cancelled out; rare) x = (1.0, 0.0, ..., 0.0)
  Texts that share trigrams get close vectors.  An empty text is the
  dialect's 4xx, never a vector.

AUTH: with --api-key or --api-key-file, every embedding POST needs
  "Authorization: Bearer <key>" (scheme case-insensitive), else a 401 with
  the dialect's error body, message "invalid api key".  GETs and
  POST /_reset need no key.

DIALECTS (a model named "missing-model" is "not found" where one is sent)
  POST /v1/embeddings   OpenAI.  {"model": M, "input": str | [str],
      "encoding_format": "float" (or absent)} -> {"object": "list", "data":
      [{"object": "embedding", "index": i, "embedding": [..]}, ..], "model":
      M, "usage": {"prompt_tokens": T, "total_tokens": T}}, T = ceil(total
      characters / 4).  Errors {"error": {"message": .., "type":
      "invalid_request_error", "code": str or null}}: 400 no model, other
      encoding_format, input not a string or list of strings, empty text or
      list, more inputs than --max-batch; 404 missing-model.
  POST /api/embed       Ollama.  {"model": M, "input": str | [str]} ->
      {"model": M, "embeddings": [[..], ..]} (nested even for one string).
      Errors {"error": msg}: 400 bad request, 404 missing-model.
  POST /embed, body with "inputs"   TEI.  {"inputs": str | [str],
      "normalize": bool = true, "truncate": bool} -> [[..], ..]; normalize
      false gives 3.0 times the unit vector.  Errors {"error": msg,
      "error_type": T}: 413 Validation past --max-batch, 422 Validation for
      an empty text or list or wrong types, 401 Unauthorized; injected
      codes: 424 Backend, 429 Overloaded, 503 Unhealthy, else Validation
      (4xx) or Backend (5xx).
  GET /info             TEI.  {"model_id": --model, "max_client_batch_size":
      --max-batch, "model_type": {"embedding": {"pooling": "cls"}}}
  POST /embed, body with "text" and no "inputs"   the vector daemon.
      {"text": str} -> {"vector": [..], "dimensions": --dim}.  Errors
      {"error": msg}: 400 (500 and others only when injected).
  GET /health           the daemon.  {"status": "ok", "model": --model,
      "ready": true}
  A body that is not a JSON object: the dialect's 400; on /embed, where the
  dialect is then unknown, 400 {"error": msg}, as for a body with neither
  key.  Unknown path: 404 {"error": "not found"}; wrong method: 405.

FAULTS: put /_f/<spec> before the path.  E.g. with the base URL
  http://127.0.0.1:P/_f/fail=500,times=2,id=t7 a client posts to
  http://127.0.0.1:P/_f/fail=500,times=2,id=t7/v1/embeddings.
  <spec> is key=value pairs joined by commas (values %-decoded):
    id=TOKEN       [A-Za-z0-9_.~-]+, groups requests for times and the log
                   (default "default")
    fail=CODE      400..599, with the dialect's error body, message
                   "injected failure CODE"
    after=N        the first N requests of this id are answered normally,
                   the fault applies from request N+1 on (with times: to
                   the next `times` of them)
    times=N        only the first N requests of this id are faulted (each
                   embedding POST counts); absent: every request
    retry_after=S  adds the header "Retry-After: S" to faulted responses
    delay=MS       sleeps MS milliseconds before a faulted answer (alone:
                   the answer is right, only slow)
    bad=KIND       a wrong answer, KIND one of
      json      200, body {"data": [
      truncate  200, Content-Length larger than the bytes sent, then close
      empty     200, empty body
      html      502 text/html, <html>Bad Gateway</html>
      echo_key  401 whose message holds the raw Authorization header sent
      count     one embedding fewer than inputs (daemon: no "vector")
      extra     one more (OpenAI: with index n; daemon: ignored)
      order     OpenAI: data reversed, each index still right (else ignored)
      dupindex  OpenAI: the last entry takes the first one's index; with
                one input, the entry twice (else ignored)
      dim       the vector of input `at` has dim-1 elements
      nan       element 0 of that vector is the bare token NaN
      inf       element 0 of that vector is 1e999
      zero      that vector is all zeros
      string    element 0 of that vector is the JSON string "0.1"
    at=I           the input index for dim/nan/inf/zero/string (default the
                   last; past the end of the batch: the dialect's 400)
  fail and bad exclude each other.  An unknown key, a repeated key or a
  bad value is the dialect's 400 (on a GET route, 400 {"error": msg}).
  Faults touch embedding POSTs only; GETs under a prefix answer normally.
  "faulted" means: within times, and fail, bad, delay or retry_after given.
  A faulted request is handled as: log, delay, fail, the kinds json,
  truncate, empty, html and echo_key, then (as for any request) the key
  check and validation, then the vector kinds.  So fail and those kinds
  answer even a request without the key.

LOG: GET /_log?id=TOKEN -> {"requests": [{"path": "/v1/embeddings",
  "dialect": "openai"|"ollama"|"tei"|"daemon"|null, "n_inputs": n,
  "authorized": bool, "faulted": bool, "t_ms": monotonic ms}, ..]}, every
  embedding POST of that id in arrival order (dialect null: /embed with a
  body of neither dialect).  GET /_log -> {"ids": {TOKEN: count}}.
  POST /_reset -> {"ok": true}, forgetting all logs and times counters.
"""
import argparse
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import socketserver
import stat
import sys
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

MISSING_MODEL = "missing-model"
INF_MARK = "\x00inf\x00"          # an element to be written as 1e999


def embed(text, dim):
    """The unit vector of `text` (see the module docstring)."""
    s = " " + text.lower() + " "
    grams = [s[i:i + 3] for i in range(len(s) - 2)] or [s]
    v = [0] * dim
    for g in grams:
        h = int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8)
                           .digest(), "little")
        v[h % dim] += -1 if (h >> 63) & 1 else 1
    n = math.sqrt(sum(x * x for x in v))
    if n == 0:
        return [1.0] + [0.0] * (dim - 1)
    return [x / n for x in v]


class ApiError(Exception):
    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


# ---- the dialects: how each reads a request, answers, and reports errors

def _texts(value, field, status):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value
    raise ApiError(status, f'"{field}" must be a string or a list of strings')


def _check(texts, cfg, status, over_status):
    if not texts:
        raise ApiError(status, "the list of inputs is empty", "empty_input")
    if len(texts) > cfg.max_batch:
        raise ApiError(over_status, f"batch size {len(texts)} exceeds the "
                       f"limit of {cfg.max_batch} inputs", "batch_too_large")
    for i, s in enumerate(texts):
        if not s:
            raise ApiError(status, f"input {i} is empty", "empty_input")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(status, f"input {i} is not valid Unicode") from None
    return texts


def parse_openai(body, cfg):
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", "missing_model")
    if body.get("encoding_format", "float") != "float":
        raise ApiError(400, 'only encoding_format "float" is supported',
                       "invalid_encoding_format")
    texts = _check(_texts(body.get("input"), "input", 400), cfg, 400, 400)
    if model == MISSING_MODEL:
        raise ApiError(404, f"the model {model} does not exist", "model_not_found")
    return model, texts, 1.0


def parse_ollama(body, cfg):
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    texts = _check(_texts(body.get("input"), "input", 400), cfg, 400, 400)
    if model == MISSING_MODEL:
        raise ApiError(404, f'model "{model}" not found, try pulling it first')
    return model, texts, 1.0


def parse_tei(body, cfg):
    for flag in ("normalize", "truncate"):
        if not isinstance(body.get(flag, True), (bool, type(None))):
            raise ApiError(422, f'"{flag}" must be a boolean')
    texts = _check(_texts(body["inputs"], "inputs", 422), cfg, 422, 413)
    return cfg.model, texts, 3.0 if body.get("normalize") is False else 1.0


def parse_daemon(body, cfg):
    if not isinstance(body["text"], str):
        raise ApiError(400, '"text" must be a string')
    return cfg.model, _check([body["text"]], cfg, 400, 400), 1.0


def openai_body(model, texts, vecs, bad, cfg):
    data = [{"object": "embedding", "index": i, "embedding": v}
            for i, v in enumerate(vecs)]
    if bad == "order":
        data.reverse()
    elif bad == "dupindex":
        if len(data) > 1:
            data[-1]["index"] = data[0]["index"]
        else:
            data.append(dict(data[0]))
    tokens = (sum(len(t) for t in texts) + 3) // 4
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def daemon_body(model, texts, vecs, bad, cfg):
    return dict({"vector": vecs[0]} if vecs else {}, dimensions=cfg.dim)


TEI_ERROR_TYPES = {401: "Unauthorized", 413: "Validation", 422: "Validation",
                   424: "Backend", 429: "Overloaded", 503: "Unhealthy"}

Dialect = namedtuple("Dialect", "name field parse body error")
DIALECTS = {d.name: d for d in [
    Dialect("openai", "input", parse_openai, openai_body,
            lambda e: {"error": {"message": e.message, "type":
                                 "invalid_request_error", "code": e.code}}),
    Dialect("ollama", "input", parse_ollama,
            lambda model, texts, vecs, bad, cfg: {"model": model, "embeddings": vecs},
            lambda e: {"error": e.message}),
    Dialect("tei", "inputs", parse_tei,
            lambda model, texts, vecs, bad, cfg: vecs,
            lambda e: {"error": e.message, "error_type": TEI_ERROR_TYPES.get(
                e.status, "Validation" if e.status < 500 else "Backend")}),
    Dialect("daemon", "text", parse_daemon, daemon_body,
            lambda e: {"error": e.message}),
]}
UNKNOWN = Dialect(None, None, None, None, lambda e: {"error": e.message})
POST_DIALECT = {"/v1/embeddings": "openai", "/api/embed": "ollama", "/embed": None}


def embed_dialect(path, body):
    """The dialect of an embedding POST; /embed is told apart by its body."""
    name = POST_DIALECT[path]
    if name is None and body is not None:
        name = "tei" if "inputs" in body else "daemon" if "text" in body else None
    return DIALECTS.get(name, UNKNOWN)


# ---- faults

SPEC_INTS = {"fail": (400, 599), "times": (0, None), "after": (0, None),
             "delay": (0, None), "at": (0, None)}
SPEC_PATTERNS = {"id": r"[A-Za-z0-9_.~-]+", "retry_after": r"[\x20-\x7e]+"}
BAD_KINDS = {"json", "truncate", "empty", "html", "echo_key", "count", "extra",
             "order", "dupindex", "dim", "nan", "inf", "zero", "string"}
FAULT_KEYS = ("fail", "bad", "delay", "retry_after")


def parse_spec(text):
    """The fault spec of a /_f/<text> prefix as a dict; ValueError if wrong."""
    spec = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        value = unquote(value)
        if key not in SPEC_INTS and key not in SPEC_PATTERNS and key != "bad":
            raise ValueError(f"unknown fault key {key!r}")
        if key in spec:
            raise ValueError(f"fault key {key!r} given twice")
        if key in SPEC_INTS:
            lo, hi = SPEC_INTS[key]
            if not re.fullmatch(r"[0-9]{1,9}", value) or int(value) < lo or (
                    hi is not None and int(value) > hi):
                raise ValueError(f"{key}={value!r}: want an integer from {lo}"
                                 + (f" to {hi}" if hi is not None else " up"))
            value = int(value)
        elif key == "bad" and value not in BAD_KINDS:
            raise ValueError(f"unknown bad kind {value!r}")
        elif key in SPEC_PATTERNS and not re.fullmatch(SPEC_PATTERNS[key], value):
            raise ValueError(f"{key}={value!r} is not allowed")
        spec[key] = value
    if "fail" in spec and "bad" in spec:
        raise ValueError("fail and bad cannot be combined")
    spec.setdefault("id", "default")
    return spec


def spoil(vecs, bad, at):
    """The vectors as the vector kinds of bad=KIND get them wrong."""
    if bad == "count":
        return vecs[:-1]
    if bad == "extra":
        return vecs + [embed("extra", len(vecs[0]))]
    if bad in ("dim", "nan", "inf", "zero", "string"):
        i = len(vecs) - 1 if at is None else at
        if i >= len(vecs):
            raise ApiError(400, f"fault at={i} is past the {len(vecs)} inputs")
        v = list(vecs[i])
        if bad == "dim":
            v.pop()
        elif bad == "zero":
            v = [0.0] * len(v)
        else:
            v[0] = {"nan": math.nan, "inf": INF_MARK, "string": "0.1"}[bad]
        vecs = vecs[:i] + [v] + vecs[i + 1:]
    return vecs


class State:
    """The request logs by fault id; they are also the times counters."""

    def __init__(self):
        self.lock = threading.Lock()
        self.logs = {}

    def arrive(self, spec, entry):
        """Logs one embedding POST and says whether it is to be faulted."""
        with self.lock:
            log = self.logs.setdefault(spec["id"], [])
            n = len(log) - spec.get("after", 0)  # this id's requests before
            entry["faulted"] = (any(k in spec for k in FAULT_KEYS) and n >= 0
                                and n < spec.get("times", n + 1))
            log.append(entry)
            return entry["faulted"]


# ---- HTTP

ROUTES = {"/v1/embeddings": ("POST", "post_embed"), "/api/embed": ("POST", "post_embed"),
          "/embed": ("POST", "post_embed"), "/info": ("GET", "get_info"),
          "/health": ("GET", "get_health"), "/_log": ("GET", "get_log"),
          "/_reset": ("POST", "post_reset")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "embed_server/1"
    timeout = 120                  # an idle keep-alive connection is dropped
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms

    def log_message(self, fmt, *args):
        if not self.server.cfg.quiet:
            super().log_message(fmt, *args)

    def send(self, status, body, ctype="application/json", headers=(), length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        text = json.dumps(obj).replace(json.dumps(INF_MARK), "1e999")
        self.send(status, text.encode(), headers=headers)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while (size := int(self.rfile.readline(1024).split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            while self.rfile.readline(1024).strip():
                pass                                   # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError(length)
        return self.rfile.read(length)

    def dispatch(self):
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send_json(400, {"error": "unreadable request body"})
        path, _, query = self.path.partition("?")
        spec_text = ""
        if path.startswith("/_f/"):
            spec_text, _, rest = path[4:].partition("/")
            path = "/" + rest
        if path not in ROUTES:
            return self.send_json(404, {"error": "not found"})
        method, action = ROUTES[path]
        if self.command != method:
            return self.send_json(405, {"error": f"method not allowed, use {method}"},
                                  [("Allow", method)])
        try:
            spec, spec_error = parse_spec(spec_text), None
        except ValueError as e:
            spec, spec_error = None, f"bad fault spec: {e}"
        if action != "post_embed" and spec_error:
            return self.send_json(400, {"error": spec_error})
        getattr(self, action)(path, query, raw, spec, spec_error)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = dispatch

    def authorized(self):
        key = self.server.cfg.api_key
        if key is None:
            return True
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), key.encode("utf-8"))

    def post_embed(self, path, query, raw, spec, spec_error):
        cfg = self.server.cfg
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        body = body if isinstance(body, dict) else None
        dialect = embed_dialect(path, body)
        if spec_error:
            return self.send_json(400, dialect.error(ApiError(400, spec_error)))
        field = body.get(dialect.field) if body and dialect.field else None
        entry = {"path": path, "dialect": dialect.name,
                 "n_inputs": len(field) if isinstance(field, list) else int(
                     isinstance(field, str)),
                 "authorized": self.authorized(), "faulted": None,
                 "t_ms": round(time.monotonic() * 1000, 3)}
        faulted = self.server.state.arrive(spec, entry)
        headers = [("Retry-After", spec["retry_after"])] if (
            faulted and "retry_after" in spec) else []
        bad = spec.get("bad") if faulted else None
        if faulted and "delay" in spec:
            time.sleep(spec["delay"] / 1000)
        try:
            if faulted and "fail" in spec:
                raise ApiError(spec["fail"], f"injected failure {spec['fail']}",
                               "injected_failure")
            if bad == "echo_key":
                raise ApiError(401, "invalid api key: " + self.headers.get(
                    "Authorization", "(none)"), "invalid_api_key")
            if bad in ("json", "truncate", "empty", "html"):
                return self.send_raw(bad, headers)
            if not entry["authorized"]:
                raise ApiError(401, "invalid api key", "invalid_api_key")
            if body is None:
                raise ApiError(400, "the request body must be a JSON object")
            if dialect is UNKNOWN:
                raise ApiError(400, 'the body has neither "inputs" (TEI) '
                               'nor "text" (the vector daemon)')
            model, texts, scale = dialect.parse(body, cfg)
            vecs = spoil([[x * scale for x in embed(t, cfg.dim)] for t in texts],
                         bad, spec.get("at"))
            self.send_json(200, dialect.body(model, texts, vecs, bad, cfg), headers)
        except ApiError as e:
            self.send_json(e.status, dialect.error(e), headers)

    def send_raw(self, bad, headers):
        if bad == "html":
            return self.send(502, b"<html>Bad Gateway</html>", "text/html", headers)
        if bad == "truncate":
            part = b'{"object": "list", "data": [{"object": "embedding", "index": 0'
            self.send(200, part, headers=headers, length=len(part) + 4096)
            self.close_connection = True         # the rest never comes
            return
        self.send(200, b'{"data": [' if bad == "json" else b"", headers=headers)

    def get_info(self, *_):
        cfg = self.server.cfg
        self.send_json(200, {"model_id": cfg.model, "max_client_batch_size": cfg.max_batch,
                             "model_type": {"embedding": {"pooling": "cls"}}})

    def get_health(self, *_):
        self.send_json(200, {"status": "ok", "model": self.server.cfg.model, "ready": True})

    def get_log(self, path, query, *_):
        state, ids = self.server.state, parse_qs(query).get("id")
        with state.lock:
            obj = ({"requests": list(state.logs.get(ids[0], []))} if ids else
                   {"ids": {k: len(v) for k, v in state.logs.items()}})
        self.send_json(200, obj)

    def post_reset(self, *_):
        with self.server.state.lock:
            self.server.state.logs.clear()
        self.send_json(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False         # keep-alive connections must not hold exit

    def server_bind(self):         # HTTPServer's own does a DNS getfqdn()
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if not self.cfg.quiet:
            print(f"embed_server: {client_address[:2]}: {sys.exc_info()[1]!r}",
                  file=sys.stderr)


class Server6(Server):
    address_family = socket.AF_INET6


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port, 0: ephemeral (default)")
    p.add_argument("--dim", type=int, default=384, help="vector dimensions (default %(default)s)")
    p.add_argument("--model", default="test-ngram-384",
                   help="model name of /info, /health, TEI and the daemon (default %(default)s)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", metavar="KEY", help="require Authorization: Bearer KEY")
    key.add_argument("--api-key-file", metavar="F",
                     help="the same, KEY read from file F (surrounding whitespace dropped)")
    p.add_argument("--max-batch", type=int, default=32,
                   help="most inputs per request (default %(default)s)")
    p.add_argument("--lifetime", type=float, default=600,
                   help="seconds until the server stops by itself (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = p.parse_args(argv)
    if args.dim < 1 or args.max_batch < 1 or args.lifetime <= 0:
        p.error("--dim and --max-batch must be at least 1, --lifetime positive")
    if args.api_key_file is not None:
        try:
            with open(args.api_key_file, encoding="utf-8") as f:
                args.api_key = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            p.error("cannot read --api-key-file: "
                    + (e.strerror if isinstance(e, OSError) else "not UTF-8"))
    if args.api_key is not None and not args.api_key:
        p.error("the API key is empty")
    return args


def main(argv=None):
    cfg = parse_args(argv)
    try:
        server = (Server6 if ":" in cfg.host else Server)((cfg.host, cfg.port), Handler)
    except OSError as e:
        print(f"embed_server: cannot listen on {cfg.host}:{cfg.port}: {e.strerror}",
              file=sys.stderr)
        return 1
    server.cfg, server.state = cfg, State()
    stop = []                      # appended to by signals, stdin EOF

    def watch_stdin():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.append("stdin")

    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
    try:
        if stat.S_ISFIFO(os.fstat(0).st_mode):
            threading.Thread(target=watch_stdin, daemon=True).start()
    except OSError:
        pass                       # no stdin at all
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    deadline = time.monotonic() + cfg.lifetime
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    if not cfg.quiet:
        print(f"embed_server: stopping ({stop[0] if stop else 'lifetime'})",
              file=sys.stderr)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
