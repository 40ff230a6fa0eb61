#!/usr/bin/env python3
"""Latency of `s2s serve`'s POST /api/translate, requests per second with concurrent
clients, and the server's peak memory with several runs open.

    python3 scripts/bench_serve.py --serve DIR [--serve DIR...] --run NAME [--run NAME...]

Starts `s2s serve --port 0` over the folders, then for each run (named as GET /api/runs
lists it): warm-up, then --requests sequential requests of one sentence, greedy, over one
kept-alive connection (p50 / p99 of the client-side wall time); then --clients clients
sending --per-client requests each at once (requests per second); then the server's peak
resident memory (VmHWM) once every run was opened. Only 127.0.0.1 is ever contacted.
"""

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time

SENTENCE = {"default": "i am a student"}


def post(conn, body):
    conn.request("POST", "/api/translate", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{r.status}: {data[:300]!r}")
    return json.loads(data)


def percentile(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/s2s")
    ap.add_argument("--serve", action="append", required=True, help="a folder of runs or a run folder")
    ap.add_argument("--run", action="append", required=True, help="a run name to time (as /api/runs names it)")
    ap.add_argument("--sentence", action="append", default=[], help="NAME=TEXT: the sentence for that run")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per-client", type=int, default=50)
    args = ap.parse_args()
    sentences = dict(SENTENCE)
    for s in args.sentence:
        name, _, text = s.partition("=")
        sentences[name] = text

    server = subprocess.Popen([args.bin, "serve", "--port", "0", *args.serve], stdout=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stdout:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("s2s serve did not say its URL")
        print(f"server pid {server.pid} on 127.0.0.1:{port}")
        for run in args.run:
            text = sentences.get(run, sentences["default"])
            body = {"run": run, "sentences": [text]}
            conn = http.client.HTTPConnection("127.0.0.1", port)
            first = time.perf_counter()
            out = post(conn, body)
            opened_ms = (time.perf_counter() - first) * 1000
            for _ in range(20):
                post(conn, body)
            times = []
            for _ in range(args.requests):
                t = time.perf_counter()
                post(conn, body)
                times.append((time.perf_counter() - t) * 1000)
            conn.close()
            hyp = out["translations"][0]["hypotheses"][0]["text"]
            print(f"{run}: {text!r} -> {hyp!r}")
            print(
                f"  first request (opens the run) {opened_ms:.1f} ms; {args.requests} requests: "
                f"p50 {statistics.median(times):.2f} ms, p99 {percentile(times, 99):.2f} ms, "
                f"mean {statistics.mean(times):.2f} ms"
            )
            errors = []

            def client():
                c = http.client.HTTPConnection("127.0.0.1", port)
                try:
                    for _ in range(args.per_client):
                        post(c, body)
                except Exception as e:  # reported below
                    errors.append(e)
                finally:
                    c.close()

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t
            n = args.clients * args.per_client
            print(f"  {args.clients} clients x {args.per_client}: {n / wall:.0f} requests/s, {len(errors)} errors")
            if errors:
                print(f"  first error: {errors[0]}")
        with open(f"/proc/{server.pid}/status") as f:
            status = f.read()
        hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        print(f"server memory with {len(args.run)} runs opened: peak {int(hwm.group(1)) / 1024:.0f} MiB, now {int(rss.group(1)) / 1024:.0f} MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
