#!/usr/bin/env bash
# Benchmark harness: civica ingest and queries against DuckDB and polars on the same data.
#
# Usage: bench/run.sh [SCALE]      SCALE = civica generate --scale (default 29 ≈ 10 M rows;
#                                  1 ≈ 350,000 rows for a quick run)
#
# Prerequisites: a release build (cargo build --release → target/release/civica, or set
# CIVICA_BIN), python3 (3.11+) with venv; GNU time at /usr/bin/time; coreutils timeout.
# The Python packages pinned in bench/requirements.txt are installed into a virtual
# environment outside the repository (only when it lacks them).
#
# Everything generated goes below ${CIVICA_BENCH_DIR:-$HOME/.cache/civica-bench}/scale-SCALE/,
# which must be outside the repository. The Markdown results go to stdout and to
# $CIVICA_BENCH_DIR/results.md (and scale-SCALE/results.md); progress goes to stderr.
# Only local processes are run; every external command has a time limit.
#
# Optional environment:
#   CIVICA_BENCH_DIR              data and results directory (default ~/.cache/civica-bench)
#   CIVICA_BIN                    civica binary (default <repo>/target/release/civica)
#   CIVICA_BENCH_VENV             virtual environment (default ~/.cache/civica-bench-venv)
#   CIVICA_BENCH_SEED             generator seed (default 2018)
#   CIVICA_BENCH_INGEST_REPEATS   runs of each ingest (default 3)
#   CIVICA_BENCH_REPEATS          runs of each cold query process, at least 3 (default 3)
#   CIVICA_BENCH_WARM_RUNS        timed warm DuckDB runs after one warm-up (default 5)
#   CIVICA_BENCH_CIVICA_WARM_RUNS timed warm civica runs per query and path (default 20)
#   CIVICA_BENCH_TIMEOUT          limit in seconds for generate and each ingest (default 3600)
#
# Exit status: 0 on success, 3 when the engines' answers disagree (results are still
# written), anything else on error.
set -euo pipefail

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

SCALE="${1:-29}"
[[ "$SCALE" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "SCALE must be a positive number, not '$SCALE'"
awk -v s="$SCALE" 'BEGIN { exit !(s > 0 && s <= 1000) }' || die "SCALE must be in (0, 1000]"
[ $# -le 1 ] || die "usage: bench/run.sh [SCALE]"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(dirname "$HERE")"
SEED="${CIVICA_BENCH_SEED:-2018}"
INGEST_REPEATS="${CIVICA_BENCH_INGEST_REPEATS:-3}"
REPEATS="${CIVICA_BENCH_REPEATS:-3}"
WARM_RUNS="${CIVICA_BENCH_WARM_RUNS:-5}"
CIVICA_WARM_RUNS="${CIVICA_BENCH_CIVICA_WARM_RUNS:-20}"
T_LONG="${CIVICA_BENCH_TIMEOUT:-3600}"
T_SHORT=600
for v in SEED INGEST_REPEATS REPEATS WARM_RUNS CIVICA_WARM_RUNS T_LONG; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
[ "$REPEATS" -ge 3 ] && [ "$REPEATS" -le 50 ] || die "CIVICA_BENCH_REPEATS must be 3..50"
[ "$INGEST_REPEATS" -ge 1 ] && [ "$INGEST_REPEATS" -le 20 ] || die "CIVICA_BENCH_INGEST_REPEATS must be 1..20"
[ "$WARM_RUNS" -ge 1 ] && [ "$WARM_RUNS" -le 100 ] || die "CIVICA_BENCH_WARM_RUNS must be 1..100"
[ "$CIVICA_WARM_RUNS" -ge 1 ] && [ "$CIVICA_WARM_RUNS" -le 1000 ] || die "CIVICA_BENCH_CIVICA_WARM_RUNS must be 1..1000"

BENCH_DIR="${CIVICA_BENCH_DIR:-$HOME/.cache/civica-bench}"
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd -P)"
case "$BENCH_DIR/" in
  "$REPO/"*) die "CIVICA_BENCH_DIR ($BENCH_DIR) must be outside the repository ($REPO)" ;;
esac

CIVICA="${CIVICA_BIN:-$REPO/target/release/civica}"
[ -x "$CIVICA" ] || die "no civica binary at $CIVICA: run 'cargo build --release' first (or set CIVICA_BIN)"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is required (Debian: apt-get install time)"
command -v timeout >/dev/null || die "coreutils 'timeout' is required"

# --- Python environment (outside the repository) ---------------------------------------
VENV="${CIVICA_BENCH_VENV:-$HOME/.cache/civica-bench-venv}"
case "$(mkdir -p "$VENV" && cd "$VENV" && pwd -P)/" in
  "$REPO/"*) die "CIVICA_BENCH_VENV must be outside the repository" ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  timeout 300 python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
want_duckdb="$(sed -n 's/^duckdb==//p' "$HERE/requirements.txt")"
want_polars="$(sed -n 's/^polars==//p' "$HERE/requirements.txt")"
if ! timeout 120 "$PY" -c "
import sys, duckdb, polars
sys.exit(0 if (duckdb.__version__, polars.__version__) == ('$want_duckdb', '$want_polars') else 1)
" 2>/dev/null; then
  log "installing bench/requirements.txt into $VENV"
  timeout 900 "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi

# --- Layout of this run -----------------------------------------------------------------
RUN="$BENCH_DIR/scale-$SCALE"
DATA="$RUN/data"
CSV="$DATA/requests.csv"
WH_CIVICA="$RUN/wh-civica"
WH_DUCKDB="$RUN/wh-duckdb"
WH_POLARS="$RUN/wh-polars"
LOGS="$RUN/logs"
KEY="$BENCH_DIR/pseudonym.key"   # a benchmark-only key, never the user's real one
rm -rf -- "$DATA" "$WH_CIVICA" "$WH_DUCKDB" "$WH_POLARS" "$LOGS" "$RUN/bin"
mkdir -p "$DATA" "$LOGS" "$RUN/bin"
META="$RUN/meta.tsv"
TSV="$RUN/measurements.tsv"
: >"$META"
: >"$TSV"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# Disk: the CSV is about 155 bytes a row; the three Parquet outputs are smaller than it.
need_kib=$(awk -v s="$SCALE" 'BEGIN { printf "%d", s * 350000 * 155 * 2.5 / 1024 }')
avail_kib=$(df -Pk "$RUN" | awk 'NR == 2 { print $4 }')
[ "$avail_kib" -ge "$need_kib" ] || die "need about $((need_kib / 1024)) MiB free in $RUN, have $((avail_kib / 1024)) MiB"

# A private copy of the binary, so that a rebuild during the run cannot change it.
cp -- "$CIVICA" "$RUN/bin/civica"
CIVICA_SRC="$CIVICA"
CIVICA="$RUN/bin/civica"

# --- Measuring one process -------------------------------------------------------------
# measure LABEL REP LIMIT STDOUT_FILE CMD...: runs CMD under GNU time -v and a time limit,
# and appends label, rep, elapsed s, peak RSS KiB, user s, system s to $TSV.
measure() {
  local label="$1" rep="$2" limit="$3" out="$4"
  shift 4
  local tlog="$LOGS/$label.$rep.time" err="$LOGS/$label.$rep.stderr" rc=0
  /usr/bin/time -v -o "$tlog" timeout --kill-after=30 "$limit" "$@" >"$out" 2>"$err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf 'bench: error: %s (run %s) failed with exit status %s%s; last lines of stderr:\n' \
      "$label" "$rep" "$rc" "$([ "$rc" -eq 124 ] && echo " (time limit ${limit}s)")" >&2
    tail -n 20 "$err" >&2
    exit 1
  fi
  awk -F': ' -v label="$label" -v rep="$rep" '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); e = 0; for (i = 1; i <= n; i++) e = e * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 }
    /User time \(seconds\)/ { u = $2 }
    /System time \(seconds\)/ { s = $2 }
    END { printf "%s\t%s\t%.2f\t%d\t%.2f\t%.2f\n", label, rep, e, rss, u, s }
  ' "$tlog" >>"$TSV"
  log "$label run $rep: $(tail -n 1 "$TSV" | cut -f3) s, peak RSS $(( $(tail -n 1 "$TSV" | cut -f4) / 1024 )) MiB"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rustc_count() { pgrep -c -x rustc 2>/dev/null || true; }

# --- Metadata ---------------------------------------------------------------------------
cmdline="bench/run.sh${1:+ $1}"
for v in CIVICA_BENCH_DIR CIVICA_BIN CIVICA_BENCH_VENV CIVICA_BENCH_SEED \
  CIVICA_BENCH_INGEST_REPEATS CIVICA_BENCH_REPEATS CIVICA_BENCH_WARM_RUNS \
  CIVICA_BENCH_CIVICA_WARM_RUNS CIVICA_BENCH_TIMEOUT; do
  if [ -n "${!v:-}" ]; then cmdline="$v=${!v} $cmdline"; fi
done
meta command "$cmdline"
meta scale "$SCALE"
meta seed "$SEED"
meta warm_runs "$WARM_RUNS"
meta civica_warm_runs "$CIVICA_WARM_RUNS"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta git_rev "$(timeout 30 git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
  [ -n "$(timeout 30 git --no-optional-locks -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo ' + uncommitted changes')"
meta nproc "$(nproc)"
meta cpu_model "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)"
meta mem_total "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta load_start "$(loadavg)"
meta rustc_start "$(rustc_count)"
meta civica_bin "$CIVICA_SRC"
meta civica_bin_info "built $(date -u -r "$CIVICA_SRC" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$CIVICA" | cut -c1-12)"
meta civica_version "$(timeout 60 "$CIVICA" --version)"
meta python_version "$(timeout 60 "$PY" -c 'import platform; print(platform.python_version())')"
meta duckdb_version "$(timeout 60 "$PY" -c 'import duckdb; print(duckdb.__version__)')"
meta polars_version "$(timeout 60 "$PY" -c 'import polars; print(polars.__version__)')"
log "scale $SCALE, data in $RUN, load average $(loadavg)"

# --- a. Generate --------------------------------------------------------------------------
log "generating the CSV (seed $SEED, scale $SCALE)"
measure generate 1 "$T_LONG" "$LOGS/generate.out" \
  "$CIVICA" generate --out "$DATA" --seed "$SEED" --scale "$SCALE"
meta csv_bytes "$(stat -c %s "$CSV")"
meta csv_rows "$(( $(wc -l <"$CSV") - 1 ))"
log "CSV: $(stat -c %s "$CSV") bytes, $(( $(wc -l <"$CSV") - 1 )) rows"
timeout "$T_LONG" cat "$CSV" >/dev/null   # same page-cache state for every ingest

# --- b. Ingest ----------------------------------------------------------------------------
for rep in $(seq 1 "$INGEST_REPEATS"); do
  rm -rf -- "$WH_CIVICA" "$WH_DUCKDB" "$WH_POLARS"
  log "ingest run $rep/$INGEST_REPEATS: civica"
  measure ingest_civica "$rep" "$T_LONG" "$RUN/ingest_civica.json" \
    "$CIVICA" ingest --warehouse "$WH_CIVICA" --key-file "$KEY" --json "$CSV"
  log "ingest run $rep/$INGEST_REPEATS: DuckDB"
  measure ingest_duckdb "$rep" "$T_LONG" "$RUN/ingest_duckdb.json" \
    "$PY" "$HERE/ingest_duckdb.py" "$CSV" "$WH_DUCKDB"
  log "ingest run $rep/$INGEST_REPEATS: polars"
  measure ingest_polars "$rep" "$T_LONG" "$LOGS/ingest_polars.out" \
    "$PY" "$HERE/ingest_polars.py" "$CSV" "$WH_POLARS"
done
meta size_civica "$(du -sbL "$WH_CIVICA/requests/" | cut -f1)"
meta size_duckdb "$(du -sb "$WH_DUCKDB" | cut -f1)"
meta size_polars "$(du -sb "$WH_POLARS" | cut -f1)"
timeout "$T_SHORT" "$PY" "$HERE/queries.py" verify \
  "civica=$WH_CIVICA/requests/*/*.parquet" \
  "duckdb=$WH_DUCKDB/*/*.parquet" \
  "polars=$WH_POLARS/*/*.parquet" >"$RUN/verify.json"

# --- c. Queries on civica's warehouse ---------------------------------------------------
SQL_B="$(timeout 60 "$PY" "$HERE/queries.py" sql b)"
SQL_C="$(timeout 60 "$PY" "$HERE/queries.py" sql c)"
meta load_queries "$(loadavg)"
for rep in $(seq 1 "$REPEATS"); do
  log "cold query processes, run $rep/$REPEATS"
  measure baseline_civica "$rep" "$T_SHORT" "$LOGS/baseline_civica.out" "$CIVICA" --version
  measure baseline_duckdb "$rep" "$T_SHORT" "$LOGS/baseline_duckdb.out" "$PY" -c 'import duckdb'
  measure q_a_civica "$rep" "$T_SHORT" "$LOGS/q_a_civica.$rep.csv" \
    "$CIVICA" kpi online_share --by service,year --format csv --warehouse "$WH_CIVICA"
  measure q_a_duckdb "$rep" "$T_SHORT" "$LOGS/q_a_duckdb.$rep.csv" \
    "$PY" "$HERE/queries.py" duckdb-cold "$WH_CIVICA" a
  measure q_b_civica "$rep" "$T_SHORT" "$LOGS/q_b_civica.$rep.csv" \
    "$CIVICA" query --format csv --warehouse "$WH_CIVICA" "$SQL_B"
  measure q_b_duckdb "$rep" "$T_SHORT" "$LOGS/q_b_duckdb.$rep.csv" \
    "$PY" "$HERE/queries.py" duckdb-cold "$WH_CIVICA" b
  measure q_c_civica "$rep" "$T_SHORT" "$LOGS/q_c_civica.$rep.csv" \
    "$CIVICA" query --format csv --warehouse "$WH_CIVICA" "$SQL_C"
  measure q_c_duckdb "$rep" "$T_SHORT" "$LOGS/q_c_duckdb.$rep.csv" \
    "$PY" "$HERE/queries.py" duckdb-cold "$WH_CIVICA" c
  # The same questions as catalogue KPIs (local months for c; see BENCHMARKS.md), answered
  # from the roll-ups that the ingest materialised, and (a) forced onto the raw scan.
  measure q_a_civica_raw "$rep" "$T_SHORT" "$LOGS/q_a_civica_raw.$rep.csv" \
    "$CIVICA" kpi online_share --by service,year --scan raw --format csv --warehouse "$WH_CIVICA"
  measure q_a_civica_kpi "$rep" "$T_SHORT" "$LOGS/q_a_civica_kpi.$rep.csv" \
    "$CIVICA" kpi online_share --by service,year --scan rollup --format csv --warehouse "$WH_CIVICA"
  measure q_b_civica_kpi "$rep" "$T_SHORT" "$LOGS/q_b_civica_kpi.$rep.csv" \
    "$CIVICA" kpi satisfaction_mean --by service,year --scan rollup --format csv --warehouse "$WH_CIVICA"
  measure q_c_civica_kpi "$rep" "$T_SHORT" "$LOGS/q_c_civica_kpi.$rep.csv" \
    "$CIVICA" kpi online_share --by month --service suap --scan rollup --format csv --warehouse "$WH_CIVICA"
done
log "warm civica queries (1 warm-up + $CIVICA_WARM_RUNS runs per query and path)"
timeout "$T_SHORT" "$CIVICA" bench-queries --warehouse "$WH_CIVICA" --runs "$CIVICA_WARM_RUNS" \
  >"$RUN/civica_warm.json"
log "warm DuckDB queries (1 warm-up + $WARM_RUNS runs each)"
timeout "$T_SHORT" "$PY" "$HERE/queries.py" warm "$WH_CIVICA" "$WARM_RUNS" >"$RUN/warm.json"

status=0
: >"$RUN/compare.txt"
for q in a b c; do
  timeout 120 "$PY" "$HERE/queries.py" compare "$q" \
    "$LOGS/q_${q}_civica.1.csv" "$LOGS/q_${q}_duckdb.1.csv" >>"$RUN/compare.txt" || status=3
done
# (a) through the roll-ups and through the raw scan: the same answer as DuckDB's.
for variant in kpi raw; do
  timeout 120 "$PY" "$HERE/queries.py" compare a \
    "$LOGS/q_a_civica_$variant.1.csv" "$LOGS/q_a_duckdb.1.csv" \
    | sed "s/^/(a, civica $variant) /" >>"$RUN/compare.txt" || status=3
done
cat "$RUN/compare.txt" >&2
meta load_end "$(loadavg)"
meta rustc_end "$(rustc_count)"

# --- d. Report ----------------------------------------------------------------------------
timeout 120 "$PY" "$HERE/report.py" "$RUN" >"$RUN/results.md"
cp "$RUN/results.md" "$BENCH_DIR/results.md"
cat "$RUN/results.md"
log "results written to $BENCH_DIR/results.md"
exit "$status"
