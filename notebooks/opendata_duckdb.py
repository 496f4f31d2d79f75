# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The open data, read with DuckDB
#
# What a journalist or a researcher does with the city's downloads: no access to the
# warehouse, only the files of the open-data site (`civica export`, or the published site).
# DuckDB reads the Parquet downloads directly. Withheld cells (`flag = 'suppressed'`) have no
# value and are left out of every ranking and sum, never counted as zero.

# %%
import os

import duckdb
import polars as pl

SITE = os.environ.get("CIVICA_OPENDATA", "data/opendata-site")


def download(site: str, dataset: str, extension: str = "parquet") -> str:
    """The path of one download of the exported site."""
    return f"{site}/opendata/{dataset}.{extension}"


def frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    return pl.DataFrame(relation.fetchall(), schema=relation.columns, orient="row")


# %% [markdown]
# ## Services ranked by online share, with the change on the previous year
#
# The way the city lists its services ("83% for nursery enrolment, 76% for the canteen…").

# %%
def ranking(site: str = SITE, year: int | None = None) -> pl.DataFrame:
    """Published services of `year` (the latest year when not given) by online share."""
    path = download(site, "online_share_by_service_year")
    relation = duckdb.sql(
        f"""
        WITH shares AS (SELECT * FROM read_parquet('{path}'))
        SELECT s.service, s.year, s.value, s.numerator, s.denominator,
               s.value - before.value AS change_points
        FROM shares s
        LEFT JOIN shares before ON before.service = s.service AND before.year = s.year - 1
        WHERE s.value IS NOT NULL
          AND s.year = coalesce(?, (SELECT max(year) FROM shares))
        ORDER BY s.value DESC, s.service
        """,
        params=[year],
    )
    return frame(relation)


# %%
if __name__ == "__main__":
    print(ranking(year=2017))


# %% [markdown]
# ## Months add up to years
#
# The monthly and the yearly datasets are published separately. Where every month of a
# service's year is published, the monthly numerators and denominators must add up to the
# yearly ones: a check any reader can make of the city's figures.

# %%
def months_against_years(site: str = SITE) -> pl.DataFrame:
    """Per service and year: the sums of the published months next to the yearly cell, for
    the years whose twelve months are all published."""
    months = download(site, "online_share_by_service_month")
    years = download(site, "online_share_by_service_year")
    relation = duckdb.sql(
        f"""
        WITH m AS (
            SELECT service, CAST(substr(month, 1, 4) AS INTEGER) AS year,
                   count(*) AS months, count(numerator) AS published,
                   sum(numerator) AS numerator, sum(denominator) AS denominator
            FROM read_parquet('{months}')
            GROUP BY ALL
        )
        SELECT m.service, m.year, m.numerator AS months_numerator,
               y.numerator AS year_numerator, m.denominator AS months_denominator,
               y.denominator AS year_denominator
        FROM m JOIN read_parquet('{years}') y USING (service, year)
        WHERE m.months = 12 AND m.published = 12 AND y.numerator IS NOT NULL
        ORDER BY m.service, m.year
        """
    )
    return frame(relation)


# %%
if __name__ == "__main__":
    print(months_against_years())
