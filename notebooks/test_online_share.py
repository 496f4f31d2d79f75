"""civica's KPIs must equal an independent recomputation by DuckDB and by polars.

Builds a warehouse with the real `civica` binary (path in $CIVICA_BIN) from the sample city,
then compares `civica kpi online_share --by service,year --format csv` with the notebook's
DuckDB and polars computations, cell by cell.
"""

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from online_share import OTHER_KPIS, kpi_duckdb, online_share_duckdb, online_share_polars
from sample_city import civica


def civica_online_share(warehouse: Path) -> list[dict]:
    out = civica("kpi", "online_share", "--by", "service,year", "--format", "csv",
                 "--warehouse", str(warehouse))
    return list(csv.DictReader(io.StringIO(out)))


@pytest.mark.parametrize("engine", [online_share_duckdb, online_share_polars])
def test_online_share_matches_an_independent_engine(warehouse: Path, engine) -> None:
    ours = civica_online_share(warehouse)
    theirs = engine(str(warehouse)).to_dicts()
    assert len(ours) == len(theirs) > 0
    for mine, other in zip(ours, theirs):
        assert mine["service"] == other["service"]
        assert int(mine["year"]) == other["year"]
        assert int(mine["numerator"]) == other["numerator"]
        assert int(mine["denominator"]) == other["denominator"]
        assert float(mine["value"]) == pytest.approx(other["value"], rel=1e-12, abs=1e-12)


def test_partition_year_is_the_local_calendar_year(warehouse: Path) -> None:
    mismatched = pl.scan_parquet(f"{warehouse}/requests/**/*.parquet", hive_partitioning=True).filter(
        pl.col("submitted_at").dt.convert_time_zone("Europe/Rome").dt.year() != pl.col("year")
    ).collect()
    assert mismatched.height == 0


@pytest.mark.parametrize("kpi", sorted(OTHER_KPIS))
def test_catalogue_kpis_match_duckdb(warehouse: Path, kpi: str) -> None:
    out = civica("kpi", kpi, "--by", "service,year", "--format", "csv", "--warehouse", str(warehouse))
    ours = list(csv.DictReader(io.StringIO(out)))
    theirs = kpi_duckdb(kpi, str(warehouse)).to_dicts()
    assert len(ours) == len(theirs) > 0
    for mine, other in zip(ours, theirs):
        assert (mine["service"], int(mine["year"])) == (other["service"], other["year"])
        assert float(mine["value"]) == pytest.approx(float(other["value"]), rel=1e-9, abs=1e-9), kpi
