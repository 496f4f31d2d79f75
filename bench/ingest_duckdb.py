"""Ingest baseline: DuckDB loads the canonical CSV into a year-partitioned Parquet directory.

Usage: python ingest_duckdb.py CSV OUT_DIR

One DuckDB statement: read_csv with explicit column types, a `year` column computed from
`submitted_at` in Europe/Rome, COPY ... TO OUT_DIR (PARTITION_BY (year), zstd).
No validation beyond type parsing, no pseudonymisation, no de-duplication.
Prints one JSON object: {"rows_written": N}.
"""

import json
import sys

import duckdb

COLUMNS = {
    "request_id": "VARCHAR",
    "service": "VARCHAR",
    "channel": "VARCHAR",
    "submitted_at": "TIMESTAMPTZ",
    "completed_at": "TIMESTAMPTZ",
    "status": "VARCHAR",
    "auth_method": "VARCHAR",
    "citizen_id": "VARCHAR",
    "amount_eur": "DOUBLE",
    "satisfaction": "INTEGER",
}


def main() -> None:
    csv_path, out_dir = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    select_list = ", ".join(COLUMNS)
    sql = f"""
        COPY (
            SELECT {select_list},
                   year(submitted_at AT TIME ZONE 'Europe/Rome') AS year
            FROM read_csv('{csv_path}', header = true, columns = {columns})
        ) TO '{out_dir}' (FORMAT parquet, PARTITION_BY (year), COMPRESSION zstd)
    """
    rows = con.execute(sql).fetchone()[0]
    print(json.dumps({"rows_written": rows}))


if __name__ == "__main__":
    main()
