#!/usr/bin/env bash
# Load while ingesting: the server under 64 connections while an ingest commits.
#
# Usage: bench/load_while_ingest.sh [SECONDS]   (default 10; the full run is 30)
#
# Generates a sample city (scale 0.1) into a temporary warehouse, serves it with civica
# ($CIVICA_BIN, default target/release/civica) on 127.0.0.1 with a free port, then for SECONDS:
#   - wrk, 2 threads and 64 connections, on /api/v1/kpis/online_share?by=service,year;
#   - bench/consistency_check.py asking /api/v1/kpis/requests one request after another,
#     each answer required to show the old version with the old total or the new version
#     with the new total, never a mix;
#   - after a third of the time, `civica ingest` of a second file of NEW_ROWS new completed
#     requests, committed while the load goes on.
# Then it fails on any non-2xx/3xx answer or socket error in wrk's report, and checks that the
# API shows the new version and the new total. The totals are counted from the input files
# (distinct requests not abandoned), not asked of civica. Installs wrk (apt) when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(dirname "$here")"
seconds="${1:-10}"
new_rows="${NEW_ROWS:-500}"
civica="${CIVICA_BIN:-$repo/target/release/civica}"
[ -x "$civica" ] || { echo "load: no binary at $civica (cargo build --release)" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
  echo "load: installing Debian's wrk" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk >/dev/null
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/civica-load.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout 300 "$civica" generate --out "$tmp/sample" --scale 0.1 >/dev/null 2>"$tmp/generate.log" \
  || { cat "$tmp/generate.log" >&2; exit 1; }
timeout 300 "$civica" ingest --warehouse "$tmp/wh" --key-file "$tmp/key" \
  "$tmp/sample/requests.csv" >/dev/null 2>"$tmp/ingest.log" || { cat "$tmp/ingest.log" >&2; exit 1; }

# The second file: NEW_ROWS completed online requests with ids the sample never uses.
awk -v n="$new_rows" 'BEGIN {
  print "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction"
  for (i = 1; i <= n; i++)
    printf "LOAD-%06d,permessi_ztl,online,2018-05-%02dT10:00:00+02:00,2018-05-%02dT11:00:00+02:00,completed,spid,,,\n", i, i % 28 + 1, i % 28 + 1
}' >"$tmp/second.csv"

# The `requests` KPI (all services, all years) counted from the files: the latest row of each
# request id, abandoned ones excluded.
count_requests() {
  python3 - "$@" <<'EOF'
import csv, sys
latest = {}
for path in sys.argv[1:]:
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            latest[row["request_id"]] = row["status"]
print(sum(1 for status in latest.values() if status != "abandoned"))
EOF
}
old_total="$(count_requests "$tmp/sample/requests.csv")"
new_total="$(count_requests "$tmp/sample/requests.csv" "$tmp/second.csv")"

RUST_LOG=info NO_COLOR=1 timeout 1800 "$civica" serve --warehouse "$tmp/wh" --bind 127.0.0.1:0 \
  >/dev/null 2>"$tmp/serve.log" &
pids+=("$!")
url=""
for _ in $(seq 1 120); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -n 1 || true)"
  [ -n "$url" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.25
done
[ -n "$url" ] || { echo "load: the server did not log its address" >&2; cat "$tmp/serve.log" >&2; exit 1; }

version_of() {
  curl -fsS --max-time 30 "$url/api/v1/version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["warehouse"])'
}
total_of() {
  curl -fsS --max-time 60 "$url/api/v1/kpis/requests" \
    | python3 -c 'import json, sys; print(round(float(json.load(sys.stdin)["rows"][0]["value"])))'
}
old_version="$(version_of)"
new_version=$((old_version + 1))
if [ "$(total_of)" != "$old_total" ]; then
  echo "load: before the ingest the API says $(total_of) requests, the file has $old_total" >&2
  exit 1
fi
echo "load: version $old_version, $old_total requests; ingesting $new_rows more under load for ${seconds}s"

timeout $((seconds + 60)) wrk -t2 -c64 -d"${seconds}s" --timeout 10s --latency \
  "$url/api/v1/kpis/online_share?by=service,year" >"$tmp/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
timeout $((seconds + 60)) python3 "$here/consistency_check.py" "$url" --path /api/v1/kpis/requests \
  --seconds "$seconds" --max-requests 20000 \
  --state "$old_version=$old_total" --state "$new_version=$new_total" >"$tmp/consistency.txt" 2>&1 &
check_pid=$!
pids+=("$check_pid")

sleep "$(awk -v s="$seconds" 'BEGIN { print s / 3 }')"
started=$(date +%s.%N)
timeout 300 "$civica" ingest --warehouse "$tmp/wh" --key-file "$tmp/key" --json "$tmp/second.csv" \
  >"$tmp/second.json" 2>"$tmp/second.log" || { cat "$tmp/second.log" >&2; exit 1; }
ingest_seconds="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"

status=0
wait "$wrk_pid" || { echo "load: wrk failed" >&2; status=1; }
consistent=1
wait "$check_pid" || { status=1; consistent=0; }
cat "$tmp/wrk.txt"
cat "$tmp/consistency.txt"
echo "load: the ingest committed in ${ingest_seconds}s under load"

if grep -q 'Non-2xx or 3xx responses' "$tmp/wrk.txt"; then
  echo "load: wrk saw non-2xx/3xx answers" >&2
  status=1
fi
if grep -q 'Socket errors' "$tmp/wrk.txt"; then
  echo "load: wrk saw socket errors" >&2
  status=1
fi
if ! grep -Eq '^ +[1-9][0-9]* requests in' "$tmp/wrk.txt"; then
  echo "load: wrk made no requests" >&2
  status=1
fi
if [ "$consistent" -eq 1 ] \
  && ! grep -q "version $new_version (value $new_total): [1-9]" "$tmp/consistency.txt"; then
  echo "load: no answer during the load showed the new version" >&2
  status=1
fi
if [ "$(version_of)" != "$new_version" ] || [ "$(total_of)" != "$new_total" ]; then
  echo "load: after the ingest the API shows version $(version_of) and $(total_of) requests;" \
    "expected version $new_version and $new_total" >&2
  status=1
fi
if grep -E 'ERROR|panicked' "$tmp/serve.log" >&2; then
  echo "load: the server logged errors" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "load: ok (version $new_version, $new_total requests)"
exit "$status"
