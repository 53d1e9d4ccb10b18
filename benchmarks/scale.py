"""Scale run: the whole command line on a Parquet log far larger than the upload box.

    .venv/bin/python -m benchmarks.scale --lines 100m --duckdb-memory 2GB

Generates the log once (``benchmarks/generate.py``, seed 0, Parquet only, in the data
folder), then runs ``python -m dashapp segment FILE --k 4`` once in a fresh process and
reports its wall time and peak RSS (``wait4``). ``--duckdb-memory`` sets
``PERSONA_DUCKDB_MEMORY``, DuckDB's own budget, past which its grouping spills to the
temporary folder; the Python side (customers, K-Means, output) is on top of it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import ensure_parquet, parse_size, size_label
from benchmarks.run import DEFAULT_DATA, _environment, _measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--lines", default="100m")
    parser.add_argument("--duckdb-memory", default=None,
                        help="DuckDB's memory limit, e.g. 2GB (default: DuckDB's own)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    lines = parse_size(args.lines)
    start = time.perf_counter()
    path = ensure_parquet(lines, args.data)
    generated = time.perf_counter() - start
    env = _environment()
    if args.duckdb_memory:
        env["PERSONA_DUCKDB_MEMORY"] = args.duckdb_memory
    with tempfile.TemporaryDirectory(prefix="persona-scale-") as work:
        work = Path(work)
        summary = work / "summary.json"
        argv = [sys.executable, "-m", "dashapp", "segment", str(path), "--k", "4",
                "--out", str(work / "customers.csv"), "--summary", str(summary)]
        wall, peak, _ = _measure(argv, env, work / "cli.log")
        facts = json.loads(summary.read_text())
    customers = facts["cleaning"]["customers"]
    print(f"| {size_label(lines)} | {path.stat().st_size / 1e6:,.0f} MB | {customers:,} | "
          f"{args.duckdb_memory or 'default'} | {wall:.1f} s | {peak:,.0f} MB |")
    print(f"(generated or found the file in {generated:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
