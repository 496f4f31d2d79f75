#!/usr/bin/env bash
# Memory benchmark: civica and DuckDB ingest one large export; peak resident memory and time.
#
# Usage: bench/memory.sh [GB]      GB = size of the export in 10^9 bytes (default 5)
#
# The export is the sample city's log (civica generate --scale 29, about 10 million rows and
# 1.3 GB) followed by copies of its rows whose request ids carry a prefix (B, C, …), until
# the file reaches GB: every request stays distinct, so nothing is a duplicate. Each engine
# runs once as a new process into an empty directory, under GNU time -v.
#
# Prerequisites as for bench/run.sh: a release build (or CIVICA_BIN), python3 with venv,
# /usr/bin/time, coreutils timeout, and free disk of about 2.5 × GB. Data and results go to
# ${CIVICA_BENCH_DIR:-$HOME/.cache/civica-bench}/memory-GB/ (outside the repository); the
# Markdown table goes to stdout and to memory-GB/results.md.
set -euo pipefail

log() { printf '[memory %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'memory: error: %s\n' "$*" >&2; exit 1; }

GB="${1:-5}"
[[ "$GB" =~ ^[0-9]+$ ]] && [ "$GB" -ge 1 ] && [ "$GB" -le 50 ] || die "GB must be a whole number in 1..50"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(dirname "$HERE")"
T_LONG="${CIVICA_BENCH_TIMEOUT:-3600}"
CIVICA_SRC="${CIVICA_BIN:-$REPO/target/release/civica}"
[ -x "$CIVICA_SRC" ] || die "no civica binary at $CIVICA_SRC: run 'cargo build --release' first"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is required"

BENCH_DIR="${CIVICA_BENCH_DIR:-$HOME/.cache/civica-bench}"
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd -P)"
case "$BENCH_DIR/" in "$REPO/"*) die "CIVICA_BENCH_DIR must be outside the repository" ;; esac
RUN="$BENCH_DIR/memory-$GB"
rm -rf -- "$RUN"
mkdir -p "$RUN/data" "$RUN/logs"
need_kib=$(( GB * 1000000 * 25 / 10 ))
avail_kib=$(df -Pk "$RUN" | awk 'NR == 2 { print $4 }')
[ "$avail_kib" -ge "$need_kib" ] || die "need about $((need_kib / 1024)) MiB free in $RUN"
cp -- "$CIVICA_SRC" "$RUN/civica"
CIVICA="$RUN/civica"

VENV="${CIVICA_BENCH_VENV:-$HOME/.cache/civica-bench-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  timeout 300 python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! timeout 120 "$PY" -c 'import duckdb' 2>/dev/null; then
  timeout 900 "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi

log "generating the sample log (scale 29)"
timeout "$T_LONG" "$CIVICA" generate --out "$RUN/data" --seed 2018 --scale 29 >/dev/null
BASE="$RUN/data/requests.csv"
CSV="$RUN/data/export.csv"
target=$(( GB * 1000000000 ))
cp -- "$BASE" "$CSV"
for prefix in B C D E F G H I J K L M N O P Q R S T U V W X Y Z; do
  [ "$(stat -c %s "$CSV")" -lt "$target" ] || break
  log "appending a copy with ids prefixed $prefix"
  tail -n +2 "$BASE" | sed "s/^/$prefix/" >>"$CSV"
done
rm -f -- "$BASE"
bytes=$(stat -c %s "$CSV")
rows=$(( $(wc -l <"$CSV") - 1 ))
log "export: $bytes bytes, $rows rows"
cat "$CSV" >/dev/null

# measure LABEL CMD...: one run under GNU time; prints label, rows, s, MiB, CPU s.
measure() {
  local label="$1"
  shift
  log "ingest: $label"
  /usr/bin/time -v -o "$RUN/logs/$label.time" timeout --kill-after=30 "$T_LONG" "$@" \
    >"$RUN/logs/$label.out" 2>"$RUN/logs/$label.err" || die "$label failed: $(tail -n 5 "$RUN/logs/$label.err")"
  awk -F': ' -v label="$label" -v rows="$rows" '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); e = 0; for (i = 1; i <= n; i++) e = e * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 }
    /User time \(seconds\)/ { u = $2 }
    /System time \(seconds\)/ { s = $2 }
    END { printf "| %s | %.1f | %d | %.0f | %.1f |\n", label, e, rss / 1024, rows / e, u + s }
  ' "$RUN/logs/$label.time"
}

{
  echo "Export: $bytes bytes, $rows data rows ($(date -u +%Y-%m-%d), $(nproc) cores," \
    "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
    "load average at start $(cut -d' ' -f1-3 /proc/loadavg))."
  echo
  echo "| engine | wall s | peak RSS MiB | rows/s | CPU s |"
  echo "| --- | --- | --- | --- | --- |"
  measure civica "$CIVICA" ingest --warehouse "$RUN/wh-civica" --key-file "$RUN/key" --json "$CSV"
  measure duckdb "$PY" "$HERE/ingest_duckdb.py" "$CSV" "$RUN/wh-duckdb"
} | tee "$RUN/results.md"
grep -q '"rows_accepted":'"$rows"',' "$RUN/logs/civica.out" || die "civica did not accept every row"
rm -rf -- "$RUN/data" "$RUN/wh-civica" "$RUN/wh-duckdb"
