"""Writes BENCHMARKS.md from the outputs of one `bench/run`.

Usage: compose.py OUT RUN_DIR
RUN_DIR holds `scales` (one CIVICA_BENCH_DIR per line, with its scale), `memory.md`,
`server.md`, `pages.md` and `meta.md`, written by bench/run. The method comes from
bench/intro.md and earlier results from bench/history.md; nothing else is added.
"""

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def medians(tsv: Path) -> dict:
    """name → (median wall s, median CPU s, median peak RSS MiB) from measurements.tsv."""
    runs: dict[str, list[tuple[float, float, float]]] = {}
    for line in tsv.read_text().splitlines():
        name, _run, wall, rss_kb, user, system = line.split("\t")
        runs.setdefault(name, []).append(
            (float(wall), float(user) + float(system), float(rss_kb) / 1024)
        )
    return {
        name: tuple(statistics.median(v[i] for v in values) for i in range(3))
        for name, values in runs.items()
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f} ×" if b > 0 else "n/a"


def summary_rows(scale_dir: Path) -> list[str]:
    m = medians(scale_dir / "measurements.tsv")
    meta = dict(
        line.split("\t", 1) for line in (scale_dir / "meta.tsv").read_text().splitlines() if "\t" in line
    )
    rows = int(meta.get("csv_rows", "0"))
    label = f"{rows:,} rows"
    out = []
    civica, duck = m["ingest_civica"], m["ingest_duckdb"]
    out.append(
        f"| {label} | ingest: wall | {civica[0]:.2f} s | {duck[0]:.2f} s | {ratio(civica[0], duck[0])} |"
    )
    out.append(f"| {label} | ingest: CPU | {civica[1]:.1f} s | {duck[1]:.1f} s | {ratio(civica[1], duck[1])} |")
    out.append(
        f"| {label} | ingest: peak RSS | {civica[2]:,.0f} MiB | {duck[2]:,.0f} MiB | {ratio(civica[2], duck[2])} |"
    )
    warm_duck = json.loads((scale_dir / "warm.json").read_text())
    warm_civica = json.loads((scale_dir / "civica_warm.json").read_text())
    for q in "abc":
        cold_civica = m.get(f"q_{q}_civica_kpi")
        cold_duck = m[f"q_{q}_duckdb"]
        if cold_civica:
            out.append(
                f"| {label} | ({q}) cold, whole process (civica KPI, roll-ups) | {cold_civica[0]:.2f} s | "
                f"{cold_duck[0]:.2f} s | {ratio(cold_civica[0], cold_duck[0])} |"
            )
        duck_ms = warm_duck[q]["median_s"] * 1000
        for path in ("rollup", "raw"):
            ms = warm_civica[q][path]["p50_ms"]
            out.append(
                f"| {label} | ({q}) warm p50, civica {path} vs DuckDB median | {ms:.1f} ms | "
                f"{duck_ms:.1f} ms | {ratio(ms, duck_ms)} |"
            )
    return out


def demote(markdown: str) -> str:
    """One heading level down (## → ###), so that each included report nests under ours."""
    lines = []
    for line in markdown.splitlines():
        lines.append("#" + line if line.startswith("#") else line)
    return "\n".join(lines)


def main() -> None:
    out, run = Path(sys.argv[1]), Path(sys.argv[2])
    scales = [line.split("\t") for line in (run / "scales").read_text().splitlines() if line]
    parts = ["# Benchmarks", "", (HERE / "intro.md").read_text().rstrip(), ""]
    parts += ["## Latest run", "", (run / "meta.md").read_text().rstrip(), ""]
    parts += [
        "### civica against DuckDB",
        "",
        "Medians from the runs below; a ratio above 1 means civica took longer or used more.",
        "",
        "| data | measure | civica | DuckDB | civica ÷ DuckDB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for _scale, directory in scales:
        parts += summary_rows(Path(directory) / f"scale-{_scale}")
    parts.append("")
    for scale, directory in scales:
        report = (Path(directory) / f"scale-{scale}" / "results.md").read_text()
        parts += [demote(report).rstrip(), ""]
    parts += ["### Peak memory on a large export (`bench/memory.sh`)", "", (run / "memory.md").read_text().rstrip(), ""]
    parts += ["### The server under load (`bench/serve_load.sh`)", "", (run / "server.md").read_text().rstrip(), ""]
    parts += ["### Dashboard pages (`bench/load_pages.sh`)", "", (run / "pages.md").read_text().rstrip(), ""]
    parts += ["## Earlier runs", "", demote((HERE / "history.md").read_text()).rstrip(), ""]
    out.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
