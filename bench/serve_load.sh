#!/usr/bin/env bash
# Throughput and latency of the server for three kinds of answer: the overview page, a KPI from
# the JSON API and an open-data CSV download.
#
# Usage: bench/serve_load.sh WAREHOUSE [SECONDS]
#
# Serves WAREHOUSE with the release binary (target/release/civica, or $CIVICA_BIN) on
# 127.0.0.1 with a free port, warms each URL once, then runs wrk (16 connections, 2 threads,
# SECONDS each, default 10) against it. Loopback only; the server is stopped at the end.
# Installs Debian's wrk when it is missing. Prints a Markdown table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(dirname "$here")"
warehouse="${1:?usage: bench/serve_load.sh WAREHOUSE [SECONDS]}"
seconds="${2:-10}"
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] && [ "$seconds" -le 120 ] \
  || { echo "bench: SECONDS must be 1..120" >&2; exit 1; }
civica="${CIVICA_BIN:-$repo/target/release/civica}"
[ -x "$civica" ] || { echo "bench: no release binary at $civica (cargo build --release)" >&2; exit 1; }
[ -d "$warehouse/_commits" ] || { echo "bench: $warehouse is not a civica warehouse" >&2; exit 1; }
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  if [ "$(id -u)" -eq 0 ]; then
    timeout 600 apt-get install -y -qq wrk >/dev/null 2>&1 \
      || { timeout 600 apt-get update -qq >/dev/null && timeout 600 apt-get install -y -qq wrk >/dev/null; }
  else
    timeout 600 sudo apt-get install -y -qq wrk >/dev/null
  fi
fi

log="$(mktemp)"
NO_COLOR=1 timeout 1800 "$civica" serve --warehouse "$warehouse" --bind 127.0.0.1:0 \
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
base="${url%/}"

echo "wrk, 2 threads and 16 connections for ${seconds} s per URL, after one warm-up request; \
latency from wrk's own distribution; $(nproc) CPUs; $("$civica" --version)."
echo
echo "| answer | URL | requests/s | p50 ms | p90 ms | p99 ms | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
while IFS='|' read -r name path; do
  curl -fsS -o /dev/null --max-time 600 "$base$path"
  out="$(timeout $((seconds + 60)) wrk -t2 -c16 -d"${seconds}s" --timeout 30s --latency "$base$path")"
  python3 "$here/wrk_row.py" "$name" "$path" <<<"$out"
done <<'URLS'
overview page|/?year=2017
KPI from the API (JSON)|/api/v1/kpis/online_share?by=service,year
open-data CSV download|/opendata/online_share_by_service_year.csv
URLS
