"""Ingest baseline: polars loads the canonical CSV into a year-partitioned Parquet directory.

Usage: python ingest_polars.py CSV OUT_DIR

scan_csv with an explicit schema (timestamps parsed as Datetime(us, UTC), offsets honoured),
a `year` column computed from `submitted_at` in Europe/Rome, then a streaming
sink_parquet(pl.PartitionBy(OUT_DIR, key="year")) with zstd (Hive directories year=YYYY/).
No validation beyond type parsing, no pseudonymisation, no de-duplication.
"""

import sys

import polars as pl

SCHEMA = {
    "request_id": pl.String,
    "service": pl.String,
    "channel": pl.String,
    "submitted_at": pl.Datetime("us", "UTC"),
    "completed_at": pl.Datetime("us", "UTC"),
    "status": pl.String,
    "auth_method": pl.String,
    "citizen_id": pl.String,
    "amount_eur": pl.Float64,
    "satisfaction": pl.Int32,
}


def main() -> None:
    csv_path, out_dir = sys.argv[1], sys.argv[2]
    (
        pl.scan_csv(csv_path, schema=SCHEMA)
        .with_columns(
            year=pl.col("submitted_at").dt.convert_time_zone("Europe/Rome").dt.year()
        )
        .sink_parquet(
            pl.PartitionBy(out_dir, key="year", include_key=False),
            compression="zstd",
            mkdir=True,
        )
    )


if __name__ == "__main__":
    main()
