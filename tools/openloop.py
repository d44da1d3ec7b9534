#!/usr/bin/env python3
"""tools/openloop.py -- open-loop load generator for `resonance serve` (loopback).

  python3 tools/openloop.py --port P --rate R --seconds S --queries Q.f32 --dim D
                            [--poisson] [--writes F --acked FILE] [--rss-pid PID]

Requests are scheduled at a fixed offered rate (--rate per second; evenly
spaced, or exponential gaps with --poisson) by one scheduler thread and sent
by a pool of --threads worker threads, each with its own keep-alive
http.client connection.  Latency is measured from the request's SCHEDULED
send time, so a stall of the server (or a full worker pool) shows up in the
percentiles instead of being hidden (coordinated omission corrected); the
"service" line gives the time from the actual send, for comparison.

Searches: POST /v1/search {"vector": [...], "k": K}, a different query per
request (cycling through the raw little-endian float32 file --queries of
--dim floats per row).  With --writes F, that fraction of the requests are
PUT /v1/nodes/soak-<run>-<n> {"type": "soak", "embedding": [random unit
vector]} instead; the id of every write answered 2xx is appended to
--acked FILE (flushed and fsync'd) only after the 2xx arrived.

Bounded: the schedule stops after --seconds; requests still queued or in
flight are given --drain seconds more, then abandoned (counted as errors,
"abandoned").  With --rss-pid PID, VmRSS of PID (and arena_bytes from
GET /v1/stats) is sampled every --rss-every seconds, the first sample after
a warm-up of 10% of the run; reported: first, last, max, change in %, and
the change net of the rows the writes added (arena_rows from GET /v1/stats,
times dim x 4 bytes of vector each).

Prints human lines and one line starting with "JSON " (one JSON object).
Exit status: 0 if every request got a 2xx, 1 otherwise, 2 on usage errors.
Python 3 standard library only.
"""
import argparse
import http.client
import json
import math
import os
import queue
import random
import struct
import sys
import threading
import time


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].split("--")[1].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="offered requests per second")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the schedule (default 20)")
    p.add_argument("--poisson", action="store_true", help="exponential gaps instead of even spacing")
    p.add_argument("--queries", required=True, help="raw little-endian float32 query file")
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=64, help="worker threads = connections (default 64)")
    p.add_argument("--writes", type=float, default=0.0, help="fraction of requests that are PUTs (default 0)")
    p.add_argument("--acked", help="append the id of every 2xx write here (fsync'd); needed with --writes")
    p.add_argument("--run", default=None, help="run tag in the write ids soak-<run>-<n> (default: time)")
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for in-flight requests (default 10)")
    p.add_argument("--timeout", type=float, default=30.0, help="socket timeout per request (default 30)")
    p.add_argument("--rss-pid", type=int, default=None)
    p.add_argument("--rss-every", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="only the JSON line")
    a = p.parse_args()
    if a.rate <= 0 or a.seconds <= 0 or a.dim <= 0 or a.threads <= 0:
        p.error("--rate, --seconds, --dim and --threads must be positive")
    if not 0.0 <= a.writes <= 1.0:
        p.error("--writes is a fraction in [0, 1]")
    if a.writes > 0 and not a.acked:
        p.error("--writes needs --acked FILE")
    return a


def load_bodies(path, dim, k):
    raw = open(path, "rb").read()
    row = dim * 4
    n = len(raw) // row
    if n == 0 or len(raw) % row:
        sys.exit("openloop: %s holds %d bytes, not a whole number (>= 1) of %d-float rows"
                 % (path, len(raw), dim))
    bodies = []
    for i in range(n):
        v = struct.unpack_from("<%df" % dim, raw, i * row)
        bodies.append(('{"vector":[%s],"k":%d}' % (",".join("%.7g" % x for x in v), k)).encode())
    return bodies


def unit_vector(rng, dim):
    while True:
        v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
        n = math.sqrt(sum(x * x for x in v))
        if n > 1e-6:
            return [x / n for x in v]


def pct(sorted_ms, q):
    if not sorted_ms:
        return None
    i = max(0, min(len(sorted_ms) - 1, int(math.ceil(q / 100.0 * len(sorted_ms))) - 1))
    return sorted_ms[i]


class Conn:
    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.c = None

    def request(self, method, path, body=None):
        """(status, body bytes); raises on a transport error (connection dropped)."""
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                hdr = {"Content-Type": "application/json"} if body is not None else {}
                self.c.request(method, path, body=body, headers=hdr)
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed while idle: one retry
                # on a fresh connection (only for a request that was not answered).
                self.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except Exception:
                pass
        self.c = None


def main():
    a = parse_args()
    bodies = load_bodies(a.queries, a.dim, a.k)
    run = a.run or ("%x" % int(time.time()))
    rng = random.Random(a.seed)

    # Decide the schedule up front: (offset seconds, kind) for every request.
    sched = []
    t = 0.0
    gap = 1.0 / a.rate
    while t < a.seconds:
        sched.append((t, "w" if rng.random() < a.writes else "s"))
        t += rng.expovariate(a.rate) if a.poisson else gap
    work = queue.Queue()
    lock = threading.Lock()
    lat = {"s": [], "w": []}     # ms from scheduled time, 2xx only
    svc = {"s": [], "w": []}     # ms from actual send, 2xx only
    status = {}                  # "200" / "503" / "conn:ExcName" / "abandoned" -> count
    done_at = [0.0]
    acked_n = [0]
    stop = threading.Event()
    acked_f = open(a.acked, "a") if a.acked else None

    def worker(wid):
        c = Conn(a.host, a.port, a.timeout)
        wrng = random.Random(a.seed * 1000003 + wid)
        while True:
            item = work.get()
            if item is None:
                break
            i, t_sched, kind = item
            if stop.is_set():
                with lock:
                    status["abandoned"] = status.get("abandoned", 0) + 1
                continue
            if kind == "s":
                method, path, body, nid = "POST", "/v1/search", bodies[i % len(bodies)], None
            else:
                nid = "soak-%s-%d" % (run, i)
                v = unit_vector(wrng, a.dim)
                body = ('{"type":"soak","embedding":[%s]}' % ",".join("%.7g" % x for x in v)).encode()
                method, path = "PUT", "/v1/nodes/" + nid
            t_send = time.monotonic()
            try:
                st, _ = c.request(method, path, body)
                key = str(st)
            except Exception as ex:  # timeout, refused, reset twice
                c.close()
                st, key = 0, "conn:" + type(ex).__name__
            t_done = time.monotonic()
            if 200 <= st < 300 and kind == "w":
                with lock:
                    acked_f.write(nid + "\n")
                    acked_f.flush()
                    os.fsync(acked_f.fileno())
                    acked_n[0] += 1
            with lock:
                status[key] = status.get(key, 0) + 1
                if 200 <= st < 300:
                    lat[kind].append((t_done - t_sched) * 1e3)
                    svc[kind].append((t_done - t_send) * 1e3)
                done_at[0] = max(done_at[0], t_done)
        c.close()

    # RSS (and arena bytes) sampler.
    rss = []  # (t offset, VmRSS kB, arena_bytes or None)

    def read_rss(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def sampler(t0):
        c = Conn(a.host, a.port, 5.0)
        nxt = t0 + 0.1 * a.seconds
        while not stop.is_set():
            now = time.monotonic()
            if now < nxt:
                stop.wait(min(nxt - now, 0.5))
                continue
            if now > t0 + a.seconds:
                break
            try:
                kb = read_rss(a.rss_pid)
            except OSError:
                kb = None
            arena = None
            try:
                st, data = c.request("GET", "/v1/stats")
                if st == 200:
                    arena = json.loads(data).get("arena_rows")
            except Exception:
                c.close()
            rss.append((now - t0, kb, arena))
            nxt += a.rss_every
        c.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(a.threads)]
    for th in threads:
        th.start()
    t0 = time.monotonic()
    smp = None
    if a.rss_pid:
        smp = threading.Thread(target=sampler, args=(t0,), daemon=True)
        smp.start()
    max_behind = 0.0
    for i, (off, kind) in enumerate(sched):
        target = t0 + off
        now = time.monotonic()
        if target > now:
            time.sleep(target - now)
        else:
            max_behind = max(max_behind, now - target)
        work.put((i, target, kind))
    t_sched_end = time.monotonic()
    if smp:  # take the last RSS sample at the end of the schedule
        while smp.is_alive() and time.monotonic() < t0 + a.seconds + 2 * a.rss_every:
            smp.join(0.1)
    for _ in threads:
        work.put(None)
    deadline = time.monotonic() + a.drain
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    inflight = sum(1 for th in threads if th.is_alive())
    # Workers still blocked in a request at the deadline: their requests count as abandoned.
    with lock:
        answered = sum(status.values())
        if inflight:
            status["abandoned"] = status.get("abandoned", 0) + inflight
        left = 0
        while True:
            try:
                if work.get_nowait() is not None:
                    left += 1
            except queue.Empty:
                break
        if left:
            status["abandoned"] = status.get("abandoned", 0) + left
        all_lat = sorted(lat["s"] + lat["w"])
        all_svc = sorted(svc["s"] + svc["w"])
        s_lat, w_lat = sorted(lat["s"]), sorted(lat["w"])
        st_copy = dict(status)
        n_ok = len(all_lat)
    if acked_f:
        acked_f.close()
    elapsed = (done_at[0] or t_sched_end) - t0
    errors = sum(v for k, v in st_copy.items() if not (k.isdigit() and 200 <= int(k) < 300))

    def summ(xs):
        return {"n": len(xs), "p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99),
                "p99.9": pct(xs, 99.9), "max": xs[-1] if xs else None}

    out = {
        "offered_rate": a.rate, "poisson": a.poisson, "seconds": a.seconds, "threads": a.threads,
        "scheduled": len(sched), "answered": answered, "ok": n_ok, "errors": errors,
        "status": st_copy, "achieved_rate": (n_ok / elapsed) if elapsed > 0 else 0.0,
        "elapsed_s": elapsed, "scheduler_max_behind_ms": max_behind * 1e3,
        "latency_ms": summ(all_lat), "service_ms": summ(all_svc),
        "search_latency_ms": summ(s_lat), "write_latency_ms": summ(w_lat),
        "writes_acked": acked_n[0], "run": run,
        "kept_up": bool(len(sched) and n_ok >= 0.95 * len(sched) and elapsed <= a.seconds * 1.05 + 1.0),
    }
    if a.rss_pid:
        good = [r for r in rss if r[1] is not None]
        if good:
            first, last = good[0], good[-1]
            rs = {"samples": len(good), "first_kb": first[1], "last_kb": last[1],
                  "max_kb": max(r[1] for r in good),
                  "change_pct": 100.0 * (last[1] - first[1]) / first[1],
                  "first_at_s": first[0], "last_at_s": last[0]}
            if first[2] is not None and last[2] is not None:
                # The rows the writes added must live in the arena: dim floats each.
                grow_kb = (last[2] - first[2]) * a.dim * 4 / 1024.0
                rs["arena_rows_added"] = last[2] - first[2]
                rs["arena_growth_kb"] = grow_kb
                rs["net_change_pct"] = 100.0 * (last[1] - first[1] - grow_kb) / first[1]
            out["rss"] = rs
        else:
            out["rss"] = {"samples": 0}
    if not a.quiet:
        f = lambda v: "-" if v is None else "%.2f" % v
        L = out["latency_ms"]
        print("offered %.1f req/s%s for %.0f s, %d threads: %d scheduled, %d ok, %d errors %s"
              % (a.rate, " (poisson)" if a.poisson else "", a.seconds, a.threads, len(sched), n_ok,
                 errors, json.dumps(st_copy, sort_keys=True)))
        print("achieved %.1f req/s (ok answers / %.1f s from start to last answer)"
              % (out["achieved_rate"], elapsed))
        for name, key in (("latency (from scheduled send)", "latency_ms"),
                          ("  searches", "search_latency_ms"), ("  writes", "write_latency_ms"),
                          ("service (from actual send)", "service_ms")):
            s = out[key]
            if s["n"]:
                print("%-30s ms: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)"
                      % (name, f(s["p50"]), f(s["p90"]), f(s["p99"]), f(s["p99.9"]), f(s["max"]), s["n"]))
        if not out["kept_up"]:
            print("WARNING: did not keep up with the offered rate (server and this client share the "
                  "machine's cores; a Python client costs CPU too): the latencies include the backlog")
        if a.writes > 0:
            print("writes acknowledged (2xx, in %s): %d" % (a.acked, acked_n[0]))
        if "rss" in out and out["rss"].get("samples"):
            r = out["rss"]
            print("RSS of pid %d: first %d kB (t=%.0f s), last %d kB (t=%.0f s), max %d kB, change %+.2f%%%s"
                  % (a.rss_pid, r["first_kb"], r["first_at_s"], r["last_kb"], r["last_at_s"], r["max_kb"],
                     r["change_pct"], "" if "net_change_pct" not in r else
                     ", %d rows added (%.0f kB of vectors), change net of them %+.2f%%"
                     % (r["arena_rows_added"], r["arena_growth_kb"], r["net_change_pct"])))
    print("JSON " + json.dumps(out, sort_keys=True))
    sys.stdout.flush()
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
