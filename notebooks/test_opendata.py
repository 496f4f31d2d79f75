"""The open-data downloads as their users' tools read them.

Exports the site of a small sample city with the real `civica` binary (path in $CIVICA_BIN),
then, for every dataset:

- its `datapackage.json` and CSV pass the Frictionless reference validator (descriptor, Table
  Schema, and every row against the declared types and constraints);
- its CSV loads in DuckDB and in polars with the types the Table Schema declares (no type
  guessing), both engines read the same rows, and withheld cells are empty, never zero.
"""

import csv
import json
from pathlib import Path

import duckdb
import frictionless
import polars as pl
import pytest


# Table Schema types → (DuckDB type, polars type) read straight from the file. A `yearmonth`
# (`2017-06`) has no column type of its own: it is read as text and parsed as a month below.
TYPES = {
    "string": ("VARCHAR", pl.String),
    "integer": ("BIGINT", pl.Int64),
    "number": ("DOUBLE", pl.Float64),
    "yearmonth": ("VARCHAR", pl.String),
}


# The columns that carry counted or computed figures (the rest are dimensions, the change on
# the previous period and the flag).
MEASURES = {"value", "numerator", "denominator", "n", "ci_low", "ci_high", "requests", "ratings"}


def datapackages(site: Path) -> list[Path]:
    found = sorted((site / "opendata").glob("*/datapackage.json"))
    assert found, "the export wrote no datapackage.json"
    return found


DATASETS = [
    "channel_mix_by_service_year",
    "online_share_by_service_month",
    "online_share_by_service_year",
    "requests_by_service_year",
    "satisfaction_by_service_year",
]


def test_every_dataset_has_a_datapackage(site: Path) -> None:
    assert [p.parent.name for p in datapackages(site)] == DATASETS


def local_resource(site: Path, dataset: str) -> tuple[dict, Path]:
    """The descriptor of `dataset` and its CSV on disk.

    The published resource path is the CSV's public URL; it is pointed at the exported file
    (nothing else is changed) so that validation reads the data without the network.
    """
    descriptor = json.loads((site / "opendata" / dataset / "datapackage.json").read_text("utf-8"))
    (resource,) = descriptor["resources"]
    assert resource["path"] == f"https://dati.example.it/opendata/{dataset}.csv"
    return descriptor, site / "opendata" / f"{dataset}.csv"


@pytest.mark.parametrize("dataset", DATASETS)
def test_frictionless_validates_descriptor_and_data(site: Path, dataset: str) -> None:
    descriptor, csv_path = local_resource(site, dataset)
    descriptor["resources"][0]["path"] = csv_path.name
    local = csv_path.parent / f"{dataset}.local-datapackage.json"
    local.write_text(json.dumps(descriptor), "utf-8")
    report = frictionless.validate(str(local))
    problems = report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert report.valid, problems
    (task,) = report.tasks
    assert task.stats["rows"] == len(read_rows(csv_path)) > 0


def read_rows(csv_path: Path) -> list[dict]:
    with csv_path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def fields(descriptor: dict) -> list[tuple[str, str]]:
    return [(f["name"], f["type"]) for f in descriptor["resources"][0]["schema"]["fields"]]


def duckdb_rows(csv_path: Path, schema: list[tuple[str, str]]) -> tuple[list[str], list[tuple]]:
    columns = ", ".join(f"'{name}': '{TYPES[kind][0]}'" for name, kind in schema)
    select = ", ".join(
        f"strptime({name} || '-01', '%Y-%m-%d')::DATE AS {name}" if kind == "yearmonth" else name
        for name, kind in schema
    )
    relation = duckdb.sql(
        f"SELECT {select} FROM read_csv('{csv_path}', header = true, delim = ',', quote = '\"', "
        f"nullstr = '', auto_detect = false, columns = {{{columns}}})"
    )
    return relation.types, relation.fetchall()


def polars_rows(csv_path: Path, schema: list[tuple[str, str]]) -> pl.DataFrame:
    frame = pl.read_csv(
        csv_path,
        schema={name: TYPES[kind][1] for name, kind in schema},
        null_values=[""],
        infer_schema=False,
    )
    months = [name for name, kind in schema if kind == "yearmonth"]
    return frame.with_columns(
        (pl.col(name) + "-01").str.to_date("%Y-%m-%d") for name in months
    )


@pytest.mark.parametrize("dataset", DATASETS)
def test_duckdb_and_polars_read_the_declared_types(site: Path, dataset: str) -> None:
    descriptor, csv_path = local_resource(site, dataset)
    schema = fields(descriptor)
    expected_rows = len(read_rows(csv_path))

    types, duck = duckdb_rows(csv_path, schema)
    wanted = ["DATE" if kind == "yearmonth" else TYPES[kind][0] for _, kind in schema]
    assert [str(t) for t in types] == wanted
    assert len(duck) == expected_rows > 0

    frame = polars_rows(csv_path, schema)
    assert frame.columns == [name for name, _ in schema]
    assert frame.height == expected_rows
    assert frame.rows() == duck, "DuckDB and polars read different values"

    # Withheld cells are empty (null), never a number.
    names = [name for name, _ in schema]
    flag = names.index("flag")
    measures = [i for i, name in enumerate(names) if name in MEASURES]
    assert measures, names
    suppressed = [row for row in duck if row[flag] == "suppressed"]
    for row in suppressed:
        assert all(row[i] is None for i in measures), row
    assert all(row[flag] in (None, "suppressed", "low_n") for row in duck)
