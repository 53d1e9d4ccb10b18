"""Real exports' shapes read by DuckDB and by pandas: ``python -m benchmarks.shapes``.

The batch benchmark's log has four columns. Real exports carry more, and until 2026-12-03
common shapes sent a log of any size to the general (pandas) path: a contact column
(Online Retail's and sales_data_sample's Country), Windows-1252 text with its own letters
(curly quotes, the euro sign), decimal commas, and a Parquet folder written by pandas
(float customer ids, a column whose type differs between files; the general path refused
such a folder outright). Each shape is derived here from the batch benchmark's generated
CSV (deterministic, same lines and customers), and each is read by both paths in fresh
processes, alternating in every round: ``fast`` is :func:`dashapp.fastpath.prepare_fast`
(a run fails if it falls back), ``general`` is :func:`dashapp.pipeline.prepare_file` (for a
folder, its files joined in memory as ``prepare_path`` does). The table gives the medians,
the median of the per-round ratios general / fast, each process's peak RSS, and whether
both gave the same customers (a hash of the whole customer table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
SHAPES = ("plain", "country", "windows-1252", "decimal-comma", "pandas-folder",
          "parquet-country")


def derive(source: Path, shape: str, data_dir: Path) -> Path:
    """``source`` (the batch benchmark's CSV) in ``shape``, written once next to it."""
    import duckdb

    if shape == "plain":
        return source
    if shape == "pandas-folder":
        return _pandas_folder(source, data_dir)
    if shape == "parquet-country":
        # The country shape as one typed Parquet file.
        import duckdb

        path = data_dir / f"{source.stem}_{shape}.parquet"
        if not path.exists():
            partial = path.with_suffix(".partial")
            duckdb.connect().execute(f"""COPY (
                SELECT CAST(ORDERNUMBER AS BIGINT) AS ORDERNUMBER,
                       strptime(ORDERDATE, '%m/%d/%Y %H:%M') AS ORDERDATE, CUSTOMERNAME,
                       CAST(SALES AS DOUBLE) AS SALES, COUNTRY
                FROM read_csv('{derive(source, "country", data_dir)}', all_varchar = true))
                TO '{partial}' (FORMAT parquet)""").close()
            partial.rename(path)
        return path
    path = data_dir / f"{source.stem}_{shape}.csv"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    # Eight countries, two of them shorter than a missing token ('UK', 'USA'), fixed by
    # customer as a shop's export has them.
    country = ("(['USA', 'France', 'Norway', 'Australia', 'UK', 'Spain', 'Germany', "
               "'Japan'])[1 + (hash(CUSTOMERNAME) % 8)::INT]")
    sales, options = "SALES", "HEADER"
    if shape == "decimal-comma":
        sales, options = "replace(SALES, '.', ',') AS SALES", "HEADER, DELIMITER ';'"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT ORDERNUMBER, ORDERDATE, CUSTOMERNAME, {sales},
                          {country} AS COUNTRY
                          FROM read_csv('{source}', all_varchar = true))
                    TO '{partial}' ({options})""")
    con.close()
    if shape == "windows-1252":
        # One country in curly quotes, as Excel writes them on Windows: bytes 0x93 and 0x94.
        text = partial.with_suffix(".utf8")
        partial.rename(text)
        with open(text, "rb") as source_file, open(partial, "wb") as out:
            for line in source_file:
                out.write(line.decode("utf-8").replace(",UK\n", ",\u201cUK\u201d\n")
                          .encode("cp1252"))
        text.unlink()
    partial.rename(path)
    return path


def _pandas_folder(source: Path, data_dir: Path) -> Path:
    """The log as a daily job writes it with pandas: one Parquet file per month, numeric
    customer ids that pandas keeps as double (a few lines have none), typed dates, and a
    UNITS column that is int64 but double in the one month with an empty value."""
    import duckdb

    path = data_dir / f"{source.stem}_pandas-folder"
    if path.exists():
        return path
    partial = data_dir / f"{path.name}.partial"
    partial.mkdir()
    con = duckdb.connect()
    con.execute(f"""CREATE TEMP TABLE log AS
        SELECT CAST(ORDERNUMBER AS BIGINT) AS ORDERNUMBER,
               strptime(ORDERDATE, '%m/%d/%Y %H:%M') AS ORDERDATE,
               CAST(CAST(substr(CUSTOMERNAME, 2) AS BIGINT) AS DOUBLE) AS CUSTOMERID,
               CAST(SALES AS DOUBLE) AS SALES,
               1 + CAST(ORDERNUMBER AS BIGINT) % 5 AS UNITS
        FROM read_csv('{source}', all_varchar = true)""")
    # One line in 10,000 more, without a customer id (dropped as such on both paths).
    con.execute("""INSERT INTO log SELECT ORDERNUMBER, ORDERDATE, NULL, SALES, UNITS
                   FROM log WHERE ORDERNUMBER % 10000 = 7""")
    months = [m for (m,) in con.execute(
        "SELECT DISTINCT strftime(ORDERDATE, '%Y-%m') AS m FROM log ORDER BY m").fetchall()]
    for i, month in enumerate(months):
        units = "CAST(UNITS AS DOUBLE)" if i == 2 else "UNITS"
        con.execute(f"""COPY (SELECT ORDERNUMBER, ORDERDATE, CUSTOMERID, SALES, {units} AS UNITS
                              FROM log WHERE strftime(ORDERDATE, '%Y-%m') = '{month}'
                              ORDER BY ORDERNUMBER)
                        TO '{partial / f"{month}.parquet"}' (FORMAT parquet)""")
    con.close()
    partial.rename(path)
    return path


def _worker(method: str, path: Path) -> dict:
    import pandas as pd

    from dashapp.fastpath import prepare_fast
    from dashapp.pipeline import PrepareOptions, prepare_file, prepare_path
    from dashapp.settings import Limits

    options = PrepareOptions(limits=Limits(max_bytes=1 << 40, max_rows=1 << 40),
                             content_hash=False)
    start = time.perf_counter()
    if method == "fast":
        prepared = prepare_fast(path, options)
    elif path.is_dir():
        prepared = prepare_path(path, options, min_bytes=1 << 62)  # the folder's files joined
    else:
        prepared = prepare_file(path, options)
    seconds = time.perf_counter() - start
    if prepared is None:
        raise SystemExit(f"{path.name}: the fast path fell back to the general path")
    customers = prepared.customers
    digest = int(pd.util.hash_pandas_object(customers, index=False).sum())
    return {"seconds": seconds, "customers": len(customers), "digest": str(digest),
            "columns": list(customers.columns), "rules": [
                [r.rule, r.count] for r in prepared.report.rules]}


def bench(lines: int, rounds: int, data_dir: Path, shapes: tuple[str, ...] = SHAPES) -> list[dict]:
    from benchmarks.generate import ensure
    from benchmarks.run import _environment, _measure, _warm

    source = ensure(lines, data_dir).csv
    paths = {shape: derive(source, shape, data_dir) for shape in shapes}
    env = _environment()
    work = DEFAULT_OUT / "shapes"
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(rounds):
        for shape, path in paths.items():
            for file in sorted(path.iterdir()) if path.is_dir() else (path,):
                _warm(file)
            for method in ("general", "fast"):
                argv = [sys.executable, "-m", "benchmarks.shapes", "--worker", method, str(path)]
                wall, peak, stdout = _measure(argv, env, work / f"{shape}-{method}.log")
                found = json.loads(stdout.strip().splitlines()[-1])
                found.update(wall=wall, peak_mb=peak, round=round_)
                runs.setdefault((shape, method), []).append(found)
    rows = []
    for shape in shapes:
        general, fast = runs[(shape, "general")], runs[(shape, "fast")]
        rows.append({
            "shape": shape, "lines": lines, "customers": fast[0]["customers"],
            "general_s": statistics.median(r["seconds"] for r in general),
            "fast_s": statistics.median(r["seconds"] for r in fast),
            "ratio": statistics.median(g["seconds"] / f["seconds"]
                                       for g, f in zip(general, fast)),
            "general_mb": statistics.median(r["peak_mb"] for r in general),
            "fast_mb": statistics.median(r["peak_mb"] for r in fast),
            "same": all(g["digest"] == f["digest"] and g["rules"] == f["rules"]
                        and g["columns"] == f["columns"] for g, f in zip(general, fast)),
        })
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| shape | lines | general (pandas) | DuckDB path | ratio | peak MB general / DuckDB "
             "| same result |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['lines']:,} | {r['general_s']:.2f} s | "
                     f"{r['fast_s']:.2f} s | {r['ratio']:.1f}x | "
                     f"{r['general_mb']:,.0f} / {r['fast_mb']:,.0f} | "
                     f"{'yes' if r['same'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.generate import parse_size
    from benchmarks.run import DEFAULT_DATA

    parser = argparse.ArgumentParser(prog="python -m benchmarks.shapes")
    parser.add_argument("--lines", default="1m", help="lines of the log (default 1m)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, path = args.worker
        print(json.dumps(_worker(method, Path(path))))
        return 0
    rows = bench(parse_size(args.lines), args.rounds, args.data)
    text = table(rows)
    print(text)
    DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
    (DEFAULT_OUT / "shapes.md").write_text(text + "\n")
    (DEFAULT_OUT / "shapes.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
