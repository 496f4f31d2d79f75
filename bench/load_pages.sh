#!/usr/bin/env bash
# Load benchmark of the dashboard's overview and service pages (BENCHMARKS.md, "Dashboard").
#
# Usage: bench/load_pages.sh WAREHOUSE [REQUESTS]
#
# Serves WAREHOUSE with the release binary (target/release/civica, or $CIVICA_BIN) on
# 127.0.0.1 with a free port, then runs bench/load_pages.py over the overview and service pages
# in Italian and English: the first request of each page (cache cold: the KPI queries run) and
# then REQUESTS requests (default 2000, 4 connections, at most 60 s per page). Loopback only;
# the server is stopped at the end. Prints a Markdown table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(dirname "$here")"
warehouse="${1:?usage: bench/load_pages.sh WAREHOUSE [REQUESTS]}"
requests="${2:-2000}"
civica="${CIVICA_BIN:-$repo/target/release/civica}"
[ -x "$civica" ] || { echo "bench: no release binary at $civica (cargo build --release)" >&2; exit 1; }
[ -d "$warehouse/_commits" ] || { echo "bench: $warehouse is not a civica warehouse" >&2; exit 1; }

log="$(mktemp)"
RUST_LOG=info NO_COLOR=1 timeout 1800 "$civica" serve --warehouse "$warehouse" --bind 127.0.0.1:0 \
  >/dev/null 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 120); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n 1 || true)"
  [ -n "$url" ] && break
  sleep 0.25
done
[ -n "$url" ] || { cat "$log" >&2; exit 1; }

rows="$(python3 -c 'import json, sys; print(sum(json.load(open(p))["summary"]["rows_accepted"] for p in sys.argv[1:]))' "$warehouse"/_commits/*.json)"
echo "Warehouse: $warehouse ($rows rows accepted over its commits); $(nproc) CPUs; $("$civica" --version 2>/dev/null || echo civica)"
echo
timeout 1800 python3 "$here/load_pages.py" "$url" --requests "$requests" --concurrency 4 --seconds 60 \
  / "/?lang=en" "/?year=2017" \
  /servizi/iscrizione_scuola_infanzia "/servizi/iscrizione_scuola_infanzia?lang=en" \
  /servizi/suap /confronto
