"""The benchmark queries, run with DuckDB over civica's Parquet warehouse, and the checks.

Usage:
  python queries.py sql Q                     print the SQL of query Q (b or c) for civica
  python queries.py duckdb-cold WAREHOUSE Q   run query Q once and write CSV to stdout
  python queries.py warm WAREHOUSE RUNS       every query in one process: one warm-up run,
                                              then RUNS timed runs; prints JSON
  python queries.py compare Q CIVICA_CSV DUCKDB_CSV
                                              exit 0 when both engines give the same answer
  python queries.py verify NAME=GLOB ...      per-year row counts of ingested Parquet outputs

Queries (table `requests` = civica's warehouse, Hive partition column `year`):
  a  online share per service per year (civica: `civica kpi online_share --by service,year`)
  b  mean satisfaction per service per year
  c  monthly online share of one service (suap); months are truncated in UTC, as both
     engines do for a UTC timestamp column (DuckDB's session time zone is set to UTC)
The SQL text of b and c is identical for both engines; for a, DuckDB runs the SQL that the
KPI's definition (analytics/src/kpi.rs) documents.
"""

import csv
import json
import math
import statistics
import sys
import time
from datetime import datetime

DIGITAL = "CASE WHEN channel IN ('online', 'app') THEN 1 ELSE 0 END"

QUERIES = {
    "a": f"""SELECT service, year,
       100.0 * sum({DIGITAL}) / count(*) AS value,
       sum({DIGITAL}) AS numerator,
       count(*) AS denominator
FROM requests
WHERE status <> 'abandoned'
GROUP BY service, year
ORDER BY service, year""",
    "b": """SELECT service, year, avg(satisfaction) AS mean_satisfaction, count(satisfaction) AS n
FROM requests
GROUP BY 1, 2
ORDER BY 1, 2""",
    "c": f"""SELECT date_trunc('month', submitted_at) AS month,
       100.0 * sum({DIGITAL}) / count(*) AS online_share,
       sum({DIGITAL}) AS numerator,
       count(*) AS denominator
FROM requests
WHERE service = 'suap' AND status <> 'abandoned'
GROUP BY 1
ORDER BY 1""",
}

# Per query: key columns, integer columns, floating-point columns.
SHAPES = {
    "a": (("service", "year"), ("numerator", "denominator"), ("value",)),
    "b": (("service", "year"), ("n",), ("mean_satisfaction",)),
    "c": (("month",), ("numerator", "denominator"), ("online_share",)),
}

REL_TOL = 1e-9


def connect(warehouse: str):
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE VIEW requests AS SELECT * FROM read_parquet("
        f"'{warehouse}/requests/*/*.parquet', hive_partitioning = true)"
    )
    return con


def duckdb_cold(warehouse: str, q: str) -> None:
    con = connect(warehouse)
    con.execute(f"COPY ({QUERIES[q]}) TO '/dev/stdout' (FORMAT csv, HEADER)")


def warm(warehouse: str, runs: int) -> None:
    con = connect(warehouse)
    out = {}
    for q, sql in QUERIES.items():
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        first = time.perf_counter() - t0
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - t0)
        out[q] = {"first_s": first, "runs_s": times, "median_s": statistics.median(times)}
    print(json.dumps(out))


def _key(value: str, column: str):
    if column == "month":
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    if column == "year":
        return int(value)
    return value


def _read(path: str, q: str) -> dict:
    keys, _, _ = SHAPES[q]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {tuple(_key(r[k], k) for k in keys): r for r in rows}


def compare(q: str, civica_csv: str, duckdb_csv: str) -> int:
    _, ints, floats = SHAPES[q]
    left, right = _read(civica_csv, q), _read(duckdb_csv, q)
    problems = []
    if set(left) != set(right):
        only_l = sorted(set(left) - set(right))[:3]
        only_r = sorted(set(right) - set(left))[:3]
        problems.append(f"different groups (only civica: {only_l}; only DuckDB: {only_r})")
    max_rel = 0.0
    for key in sorted(set(left) & set(right)):
        a, b = left[key], right[key]
        for c in ints:
            if int(a[c] or 0) != int(b[c] or 0) or (a[c] == "") != (b[c] == ""):
                problems.append(f"{key} {c}: civica {a[c]!r} vs DuckDB {b[c]!r}")
        for c in floats:
            if a[c] == "" or b[c] == "":
                if a[c] != b[c]:
                    problems.append(f"{key} {c}: civica {a[c]!r} vs DuckDB {b[c]!r}")
                continue
            x, y = float(a[c]), float(b[c])
            rel = abs(x - y) / max(abs(x), abs(y), 1e-300)
            max_rel = max(max_rel, rel)
            if not math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12):
                problems.append(f"{key} {c}: civica {x!r} vs DuckDB {y!r}")
    what = {"a": "online share by service and year",
            "b": "mean satisfaction by service and year",
            "c": "monthly online share of suap"}[q]
    exact = ", ".join(ints)
    if problems:
        print(f"DISAGREE ({q}) {what}: {len(problems)} difference(s); first: "
              + "; ".join(problems[:5]))
        return 1
    print(f"AGREE ({q}) {what}: civica and DuckDB return the same {len(left)} groups, "
          f"identical {exact}, values within relative {max_rel:.1e}")
    return 0


def verify(specs: list) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    result = {}
    for spec in specs:
        name, pattern = spec.split("=", 1)
        rows = con.execute(
            f"""SELECT CAST(year AS INTEGER) AS year, count(*) AS n,
                       count(completed_at) AS n_completed, count(satisfaction) AS n_satisfaction,
                       round(sum(amount_eur), 2) AS amount
                FROM read_parquet('{pattern}', hive_partitioning = true)
                GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        files = con.execute(
            f"SELECT count(*) FROM glob('{pattern}')"
        ).fetchone()[0]
        result[name] = {"files": files, "by_year": [list(r) for r in rows],
                        "rows": sum(r[1] for r in rows)}
    first = next(iter(result.values()))["by_year"]
    same = all(v["by_year"] == first for v in result.values())
    result["agree"] = same
    print(json.dumps(result))
    return 0


def main(argv: list) -> int:
    cmd = argv[1]
    if cmd == "sql":
        print(QUERIES[argv[2]])
    elif cmd == "duckdb-cold":
        duckdb_cold(argv[2], argv[3])
    elif cmd == "warm":
        warm(argv[2], int(argv[3]))
    elif cmd == "compare":
        return compare(argv[2], argv[3], argv[4])
    elif cmd == "verify":
        return verify(argv[2:])
    else:
        raise SystemExit(f"unknown command {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
