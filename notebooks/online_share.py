# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Online share, recomputed outside civica
#
# Digital take-up by service and year, computed straight from the Parquet warehouse with
# DuckDB and with polars. The definition is the one in civica's KPI catalogue: requests made
# through `online` or `app`, divided by all submitted requests; abandoned requests are in
# neither term. `year` is the Hive partition column (calendar year in Europe/Rome).

# %%
import os

import duckdb
import polars as pl

WAREHOUSE = os.environ.get("CIVICA_WAREHOUSE", "data/warehouse")


def online_share_duckdb(warehouse: str = WAREHOUSE) -> pl.DataFrame:
    """Online share by service and year, computed by DuckDB."""
    relation = duckdb.sql(
        f"""
        SELECT service,
               CAST(year AS INTEGER) AS year,
               100.0 * count(*) FILTER (WHERE channel IN ('online', 'app')) / count(*) AS value,
               count(*) FILTER (WHERE channel IN ('online', 'app')) AS numerator,
               count(*) AS denominator
        FROM read_parquet('{warehouse}/requests/*/*.parquet', hive_partitioning = true)
        WHERE status <> 'abandoned'
        GROUP BY ALL
        ORDER BY service, year
        """
    )
    return pl.DataFrame(relation.fetchall(), schema=relation.columns, orient="row")


def online_share_polars(warehouse: str = WAREHOUSE) -> pl.DataFrame:
    """Online share by service and year, computed by polars."""
    digital = pl.col("channel").is_in(["online", "app"])
    return (
        pl.scan_parquet(f"{warehouse}/requests/**/*.parquet", hive_partitioning=True)
        .filter(pl.col("status") != "abandoned")
        .group_by("service", "year")
        .agg(numerator=digital.sum(), denominator=pl.len())
        .with_columns(
            value=100.0 * pl.col("numerator") / pl.col("denominator"),
            year=pl.col("year").cast(pl.Int32),
        )
        .select("service", "year", "value", "numerator", "denominator")
        .sort("service", "year")
        .collect()
    )


# %%
if __name__ == "__main__":
    shares = online_share_duckdb()
    print(shares.filter(pl.col("year") == 2017))
    print(online_share_polars().filter(pl.col("year") == 2017))


# %% [markdown]
# ## Other catalogue KPIs, by service and year, in DuckDB
#
# The same definitions as `analytics/catalogue.toml`, written independently.

# %%
OTHER_KPIS = {
    "requests": """
        SELECT service, CAST(year AS INTEGER) AS year, count(*) AS value
        FROM {requests} WHERE status <> 'abandoned' GROUP BY ALL ORDER BY service, year""",
    "completion_rate": """
        SELECT service, CAST(year AS INTEGER) AS year,
               100.0 * count(*) FILTER (WHERE status IN ('completed', 'rejected')) / count(*) AS value
        FROM {requests} WHERE status <> 'pending' GROUP BY ALL ORDER BY service, year""",
    "digital_identity_share": """
        SELECT service, CAST(year AS INTEGER) AS year,
               100.0 * count(*) FILTER (WHERE auth_method IN ('spid', 'cie', 'federa', 'cns', 'eidas')) / count(*) AS value
        FROM {requests} WHERE status <> 'abandoned' AND channel IN ('online', 'app')
        GROUP BY ALL ORDER BY service, year""",
    "online_payment_share": """
        SELECT service, CAST(year AS INTEGER) AS year,
               100.0 * coalesce(sum(amount_eur) FILTER (WHERE channel IN ('online', 'app')), 0) / sum(amount_eur) AS value
        FROM {requests} WHERE status = 'completed' AND amount_eur IS NOT NULL
        GROUP BY ALL ORDER BY service, year""",
    "satisfaction_mean": """
        SELECT service, CAST(year AS INTEGER) AS year, avg(satisfaction) AS value
        FROM {requests} WHERE satisfaction IS NOT NULL GROUP BY ALL ORDER BY service, year""",
    "median_days_to_complete": """
        SELECT service, CAST(year AS INTEGER) AS year,
               median((epoch(completed_at) - epoch(submitted_at)) / 86400.0) AS value
        FROM {requests} WHERE status = 'completed' AND completed_at IS NOT NULL
        GROUP BY ALL ORDER BY service, year""",
}


def kpi_duckdb(kpi: str, warehouse: str = WAREHOUSE) -> pl.DataFrame:
    """A catalogue KPI by service and year, computed by DuckDB."""
    requests = f"read_parquet('{warehouse}/requests/*/*.parquet', hive_partitioning = true)"
    relation = duckdb.sql(OTHER_KPIS[kpi].format(requests=requests))
    return pl.DataFrame(relation.fetchall(), schema=relation.columns, orient="row")
