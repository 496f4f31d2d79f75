"""One small sample city for every notebook test: generated, ingested and exported once."""

from pathlib import Path

import pytest

from sample_city import civica


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    """The warehouse of a sample city (scale 0.25) built by `civica ingest`."""
    root = tmp_path_factory.mktemp("civica")
    civica("generate", "--out", str(root / "sample"), "--scale", "0.25")
    civica(
        "ingest",
        "--warehouse", str(root / "warehouse"),
        "--key-file", str(root / "key"),
        str(root / "sample" / "requests.csv"),
    )
    return root / "warehouse"


@pytest.fixture(scope="session")
def site(warehouse: Path) -> Path:
    """The open-data site of that warehouse, written by `civica export`."""
    out = warehouse.parent / "site"
    civica(
        "export",
        "--warehouse", str(warehouse),
        "--out", str(out),
        "--base-uri", "https://dati.example.it",
    )
    return out
