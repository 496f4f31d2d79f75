#!/usr/bin/env python3
"""Load test of the dashboard's pages over loopback, standard library only.

Usage: load_pages.py BASE_URL [--requests N] [--concurrency C] [--seconds S] PATH...

For each PATH: one first request (timed alone: the render when the page cache is cold), then
up to N requests from C keep-alive connections, stopping early after S seconds. Prints one
Markdown table row per path: requests done, first-request time, p50, p95 and max latency in
milliseconds, all for complete responses (status 200, body read). Refuses any host other than
127.0.0.1 or localhost: this tool is not for loading other people's servers.
"""

import argparse
import http.client
import statistics
import sys
import threading
import time
import urllib.parse


def fetch(conn, path):
    start = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
    return elapsed


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def load(host, port, path, requests, concurrency, seconds):
    first = fetch(http.client.HTTPConnection(host, port, timeout=600), path)
    latencies = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))
    errors = []

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if next(counter, None) is None:
                    break
            try:
                elapsed = fetch(conn, path)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(str(err))
                break
            with lock:
                latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])
    return first, latencies, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    if url.hostname not in ("127.0.0.1", "localhost"):
        sys.exit("load_pages.py: only loopback servers (127.0.0.1) may be loaded")
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 64 and 0 < args.seconds <= 600):
        sys.exit("load_pages.py: requests 1–100000, concurrency 1–64, seconds up to 600")
    print("| page | requests | req/s | first (ms) | p50 (ms) | p95 (ms) | max (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.paths:
        first, latencies, wall = load(url.hostname, url.port, path, args.requests, args.concurrency, args.seconds)
        ms = [x * 1000 for x in latencies]
        print(
            f"| `{path}` | {len(ms)} | {len(ms) / wall:.0f} | {first * 1000:.0f} | "
            f"{statistics.median(ms):.1f} | {percentile(ms, 95):.1f} | {max(ms):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
