"""Renders the results of one bench/run.sh run as a Markdown fragment.

Usage: python report.py RUN_DIR

Reads RUN_DIR/meta.tsv (key<TAB>value), RUN_DIR/measurements.tsv (one line per process run:
label, repetition, elapsed s, peak RSS KiB, user s, system s, as reported by GNU time -v),
RUN_DIR/ingest_civica.json, RUN_DIR/verify.json, RUN_DIR/warm.json, RUN_DIR/civica_warm.json
(`civica bench-queries`) and RUN_DIR/compare.txt.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(run: Path):
    meta = {}
    for line in (run / "meta.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            meta[k] = v
    runs = defaultdict(list)
    for line in (run / "measurements.tsv").read_text(encoding="utf-8").splitlines():
        label, rep, elapsed, rss, user, system = line.split("\t")
        runs[label].append(
            {"rep": int(rep), "s": float(elapsed), "rss_kib": int(rss),
             "cpu_s": float(user) + float(system)}
        )
    return meta, runs


def med(values):
    return statistics.median(values) if values else float("nan")


def summary(runs, label):
    r = runs[label]
    return {
        "s": med([x["s"] for x in r]),
        "all_s": [x["s"] for x in r],
        "rss_mib": med([x["rss_kib"] for x in r]) / 1024,
        "cpu_s": med([x["cpu_s"] for x in r]),
        "n": len(r),
    }


def fmt_s(s):
    return f"{s:.2f}" if s < 100 else f"{s:.0f}"


def fmt_runs(values):
    return " / ".join(f"{v:.2f}" for v in values)


def main() -> None:
    run = Path(sys.argv[1])
    meta, runs = load(run)
    civica_ingest = json.loads((run / "ingest_civica.json").read_text())
    verify = json.loads((run / "verify.json").read_text())
    warm = json.loads((run / "warm.json").read_text())
    compare = (run / "compare.txt").read_text(encoding="utf-8").strip().splitlines()
    rows = int(meta["csv_rows"])
    out = []
    w = out.append

    w(f"## Results: scale {meta['scale']} ({rows:,} rows), {meta['date']}")
    w("")
    w(f"Command: `{meta['command']}` (repository HEAD at run time: `{meta['git_rev']}`; the "
      "binary measured is identified by its build time and hash below)")
    w("")
    w("### Machine and versions")
    w("")
    w(f"- CPU: {meta['cpu_model']}, `nproc` = {meta['nproc']}")
    w(f"- Memory: {meta['mem_total']}; kernel {meta['kernel']}")
    w(f"- Load average (1/5/15 min) at start: {meta['load_start']}; "
      f"before queries: {meta['load_queries']}; at end: {meta['load_end']}")
    w(f"- rustc processes running at start: {meta['rustc_start']}, at end: {meta['rustc_end']}")
    w("  (the load averages sampled after the start include the benchmark's own processes)")
    load_start = float(meta["load_start"].split()[0])
    busy = int(meta["rustc_start"] or 0) + int(meta["rustc_end"] or 0)
    if load_start > 0.5 * int(meta["nproc"]) or busy:
        w(f"- **Note: the machine was not idle at the start** (1-min load average "
          f"{load_start:.2f} on {meta['nproc']} cores; rustc processes at start/end: "
          f"{meta['rustc_start']}/{meta['rustc_end']}): times may be inflated and noisier "
          "than on an idle machine.")
    w(f"- {meta['civica_version']} (`{meta['civica_bin']}`, {meta['civica_bin_info']}); "
      f"Python {meta['python_version']}, "
      f"duckdb {meta['duckdb_version']}, polars {meta['polars_version']}")
    w("")
    w("### Data")
    w("")
    gen = summary(runs, "generate")
    w(f"- `civica generate --seed {meta['seed']} --scale {meta['scale']}`: "
      f"{rows:,} data rows, {int(meta['csv_bytes']):,} bytes "
      f"({int(meta['csv_bytes']) / 2**20:,.0f} MiB), generated in {fmt_s(gen['s'])} s "
      f"(peak RSS {gen['rss_mib']:,.0f} MiB)")
    w(f"- civica ingest: rows_read {civica_ingest['rows_read']:,}, rows_accepted "
      f"{civica_ingest['rows_accepted']:,}, rows_quarantined "
      f"{civica_ingest['rows_quarantined']:,}, rows_duplicate {civica_ingest['rows_duplicate']:,}")
    w("")
    w("### Ingest: CSV → Hive-partitioned Parquet (year=YYYY, zstd)")
    w("")
    n_ing = summary(runs, "ingest_civica")["n"]
    w(f"Median of {n_ing} run(s) per engine (runs interleaved), each a new process writing into "
      "an empty directory; rows/s = CSV data rows ÷ median wall-clock seconds; CPU = user + "
      "system seconds; peak RSS = GNU time's maximum resident set size.")
    w("")
    w("| engine | wall s (all runs) | rows/s | peak RSS MiB | CPU s | output MiB | files | "
      "rows written |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, name in (("ingest_civica", "civica ingest"),
                        ("ingest_duckdb", "DuckDB COPY (Python)"),
                        ("ingest_polars", "polars sink_parquet (Python)")):
        s = summary(runs, label)
        key = label.split("_", 1)[1]
        v = verify[key]
        size = int(meta[f"size_{key}"]) / 2**20
        w(f"| {name} | {fmt_s(s['s'])} ({fmt_runs(s['all_s'])}) | {rows / s['s']:,.0f} | {s['rss_mib']:,.0f} | "
          f"{fmt_s(s['cpu_s'])} | {size:,.1f} | {v['files']} | {v['rows']:,} |")
    w("")
    w("civica ingest additionally validates every field (vocabularies, timestamps, amounts, "
      "ranges), replaces `citizen_id` by an HMAC-SHA256 pseudonym, computes a per-row "
      "fingerprint, de-duplicates by `request_id` (also against rows already stored) and "
      "records quarantine and a commit; the DuckDB and polars baselines only parse types and "
      "write the raw columns (the codice fiscale stays in clear). civica's files also hold "
      "`citizen_key` (32 hexadecimal characters a row) and `record_fingerprint` (a 64-bit "
      "integer), both nearly incompressible, which the others do not write; hence its larger "
      "output.")
    w("")
    agree = "the same" if verify["agree"] else "DIFFERENT"
    w(f"Output check: the three outputs have {agree} per-year counts of rows, of non-null "
      "`completed_at` and `satisfaction`, and sum of `amount_eur`.")
    w("")
    w("### Queries over civica's warehouse")
    w("")
    n_q = summary(runs, "q_a_civica")["n"]
    w(f"Cold = a whole new process, median of {n_q} runs (all runs listed); the OS page cache "
      "is warm (not dropped). civica: `civica kpi online_share --by service,year --format csv` "
      "for (a), `civica query --format csv SQL` for (b) and (c). DuckDB cold: a new Python "
      "process that imports duckdb, opens an in-memory database with a view over "
      "`read_parquet('…/requests/*/*.parquet', hive_partitioning = true)`, and writes the "
      f"result as CSV. DuckDB warm: the same view in one process, median of {meta['warm_runs']} "
      "runs after one warm-up run (timed inside Python).")
    w("")
    w("| query | civica cold s | DuckDB cold s | DuckDB warm s | DuckDB 1st in-process s | "
      "civica peak RSS MiB | DuckDB cold peak RSS MiB |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"a": "(a) online share by service, year",
             "b": "(b) mean satisfaction by service, year",
             "c": "(c) monthly online share, suap"}
    for q in ("a", "b", "c"):
        c = summary(runs, f"q_{q}_civica")
        d = summary(runs, f"q_{q}_duckdb")
        w(f"| {names[q]} | {c['s']:.2f} ({fmt_runs(c['all_s'])}) | "
          f"{d['s']:.2f} ({fmt_runs(d['all_s'])}) | {warm[q]['median_s']:.3f} | "
          f"{warm[q]['first_s']:.3f} | {c['rss_mib']:,.0f} | {d['rss_mib']:,.0f} |")
    bc = summary(runs, "baseline_civica")
    bd = summary(runs, "baseline_duckdb")
    w(f"| process start only: `civica --version` / `python -c 'import duckdb'` | "
      f"{bc['s']:.2f} | {bd['s']:.2f} | | | {bc['rss_mib']:,.0f} | {bd['rss_mib']:,.0f} |")
    w("")
    civica_warm = json.loads((run / "civica_warm.json").read_text())
    w("### civica's KPI engine: roll-ups and raw scan")
    w("")
    w("The same three questions as catalogue KPIs: (a) `online_share --by service,year`, (b) "
      "`satisfaction_mean --by service,year`, (c) `online_share --by month --service suap` "
      "(local Europe/Rome months, as every civica period; the SQL of (c) above truncates in "
      "UTC). Cold: `civica kpi … --scan rollup --format csv` (and `--scan raw` for (a)), a new "
      f"process, median of {n_q} runs. Warm: `civica bench-queries --runs "
      f"{meta['civica_warm_runs']}`, one process, one warm-up run per query and path, then "
      "the timed runs; p50 and p95 in milliseconds. Each timed run executes the plan the "
      "engine kept for that query and commit, as the dashboard's process does; the roll-ups' "
      "first run (planning included) is shown beside them.")
    w("")
    w("| query | civica cold, roll-ups s | civica cold, raw s | DuckDB cold s | civica warm raw "
      "p50 / p95 ms | civica warm roll-ups p50 / p95 ms | civica roll-ups first run ms | "
      "DuckDB warm ms |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for q in ("a", "b", "c"):
        k = summary(runs, f"q_{q}_civica_kpi")
        raw_cold = (f"{summary(runs, 'q_a_civica_raw')['s']:.2f} "
                    f"({fmt_runs(summary(runs, 'q_a_civica_raw')['all_s'])})") if q == "a" else ""
        d = summary(runs, f"q_{q}_duckdb")
        r = civica_warm[q]["raw"]
        u = civica_warm[q]["rollup"]
        w(f"| {names[q]} | {k['s']:.2f} ({fmt_runs(k['all_s'])}) | {raw_cold} | {d['s']:.2f} | "
          f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} | {u['p50_ms']:.2f} / {u['p95_ms']:.2f} | "
          f"{u['first_ms']:.1f} | {1000 * warm[q]['median_s']:.0f} |")
    w("")
    w("Targets of issue 4: civica cold ≤ half of DuckDB's whole-process time; warm raw scan no "
      "slower than DuckDB in-process; warm through roll-ups p50 < 5 ms.")
    w("")
    w("Answers:")
    w("")
    for line in compare:
        w(f"- {line}")
    w("")
    w("Timing resolution of GNU time's wall clock is 0.01 s.")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
