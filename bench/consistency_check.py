#!/usr/bin/env python3
"""Checks that every answer of a KPI endpoint shows one whole warehouse version.

Usage: consistency_check.py BASE_URL --path PATH --seconds S --max-requests N
                            --state VERSION=VALUE [--state VERSION=VALUE ...]

Asks BASE_URL + PATH (a `/api/v1/kpis/{id}` answer without `by`: one row) over one keep-alive
connection, one request after another, until S seconds have passed or N requests were made.
Each answer must be HTTP 200 and its pair (`version`, `rows[0].value`) must be one of the
given states: an answer that shows a version with the value of another one mixed old and new
data. Prints how many answers showed each state; exits with 1 at the first wrong answer.
Refuses any host other than 127.0.0.1 or localhost.
"""

import argparse
import http.client
import json
import sys
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--path", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--state", action="append", required=True)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.base)
    if url.hostname not in ("127.0.0.1", "localhost"):
        sys.exit(f"consistency: refusing to load {url.hostname}: loopback only")
    states = {}
    for state in args.state:
        version, value = state.split("=", 1)
        states[int(version)] = float(value)
    seen = {version: 0 for version in states}

    deadline = time.monotonic() + args.seconds
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    requests = 0
    while requests < args.max_requests and time.monotonic() < deadline:
        requests += 1
        try:
            conn.request("GET", args.path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            sys.exit(f"consistency: request {requests}: {error}")
        if response.status != 200:
            sys.exit(f"consistency: HTTP {response.status}: {body[:300]!r}")
        answer = json.loads(body)
        version = answer["version"]
        value = float(answer["rows"][0]["value"])
        if states.get(version) != value:
            sys.exit(
                f"consistency: answer {requests} shows version {version} with value {value}; "
                f"the versions and values are {states}"
            )
        seen[version] += 1
    conn.close()
    print(
        f"consistency: {requests} answers, each of one version: "
        + ", ".join(f"version {v} (value {states[v]:g}): {n}" for v, n in seen.items())
    )


if __name__ == "__main__":
    main()
