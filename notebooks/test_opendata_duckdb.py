"""The DuckDB notebook over the open-data downloads gives the warehouse's own figures.

Exports the site of a small sample city with the real `civica` binary (path in $CIVICA_BIN),
then checks the notebook's analyses against an independent recomputation from the
warehouse's Parquet files (the first notebook's DuckDB query), cell by cell.
"""

from pathlib import Path

import duckdb
import pytest

from online_share import online_share_duckdb
from opendata_duckdb import download, months_against_years, ranking


@pytest.fixture
def city(warehouse: Path, site: Path) -> tuple[Path, Path]:
    return warehouse, site


def test_the_ranking_holds_the_recomputed_shares_of_published_services(city) -> None:
    warehouse, site = city
    recomputed = {
        (r["service"], r["year"]): r for r in online_share_duckdb(str(warehouse)).to_dicts()
    }
    ranked = ranking(str(site), year=2017).to_dicts()
    assert len(ranked) > 10
    values = [r["value"] for r in ranked]
    assert values == sorted(values, reverse=True)
    for row in ranked:
        truth = recomputed[(row["service"], 2017)]
        assert row["numerator"] == truth["numerator"]
        assert row["denominator"] == truth["denominator"]
        assert row["value"] == pytest.approx(truth["value"], rel=1e-12)
        earlier = recomputed.get((row["service"], 2016))
        if row["change_points"] is None:
            continue
        assert row["change_points"] == pytest.approx(truth["value"] - earlier["value"], rel=1e-9)


def test_withheld_cells_never_enter_the_ranking(city) -> None:
    _, site = city
    path = download(str(site), "online_share_by_service_year")
    withheld = duckdb.sql(
        f"SELECT service FROM read_parquet('{path}') WHERE year = 2017 AND value IS NULL"
    ).fetchall()
    ranked = {r["service"] for r in ranking(str(site), year=2017).to_dicts()}
    assert not ranked & {service for (service,) in withheld}


def test_published_months_add_up_to_their_year(city) -> None:
    _, site = city
    rows = months_against_years(str(site)).to_dicts()
    assert rows, "some service has all twelve months of a year published"
    for row in rows:
        assert row["months_numerator"] == row["year_numerator"], row
        assert row["months_denominator"] == row["year_denominator"], row


def test_parquet_and_csv_downloads_hold_the_same_rows(city) -> None:
    _, site = city
    parquet = download(str(site), "online_share_by_service_year")
    text = download(str(site), "online_share_by_service_year", "csv")
    columns = "service, year, value, numerator, denominator, flag"
    from_parquet = duckdb.sql(f"SELECT {columns} FROM read_parquet('{parquet}') ORDER BY 1, 2").fetchall()
    from_csv = duckdb.sql(
        f"SELECT {columns} FROM read_csv('{text}', header = true) ORDER BY 1, 2"
    ).fetchall()
    assert len(from_parquet) == len(from_csv) > 0
    for a, b in zip(from_parquet, from_csv):
        assert a[0] == b[0] and a[1] == b[1] and a[3:] == b[3:]
        assert (a[2] is None and b[2] is None) or a[2] == pytest.approx(b[2], rel=1e-12)
