"""One measurement in a fresh process: ``python -m benchmarks.worker METHOD FILE OUT``.

Imports happen before the clock starts. The last line on stdout is JSON with ``seconds``
(file -> segment labels) and ``customers``. ``OUT`` receives one row per customer with
``customer_id``, ``recency``, ``frequency``, ``monetary`` and ``segment``: for the baseline
that is its result file (part of its whole process); for ours it is written after the clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

#: Our caps are for uploads; a benchmark of 10M lines lifts them.
UNCAPPED = {"max_bytes": 1 << 40, "max_rows": 1 << 40}


def _baseline(path: Path, out: Path) -> dict:
    from benchmarks import baseline

    start = time.perf_counter()
    table = baseline.rfm(path)
    labels = baseline.segment(table)
    seconds = time.perf_counter() - start
    result = pd.DataFrame({
        "customer_id": table.index,
        "recency": table["Recency"].to_numpy(),
        "frequency": table["Frequency"].to_numpy(),
        "monetary": table["Monetary"].to_numpy(),
        "segment": labels.to_numpy(),
    })
    result.to_csv(out, index=False)
    return {"seconds": seconds, "customers": len(result)}


def _ours(path: Path, out: Path) -> dict:
    from dashapp.pipeline import PrepareOptions, prepare_path, run
    from dashapp.segment import SegmentParams
    from dashapp.settings import Limits

    # As the CLI reads (dashapp.cli._prepare): no content hash, which only the app's caches
    # need.
    options = PrepareOptions(limits=Limits(**UNCAPPED), content_hash=False)
    start = time.perf_counter()
    prepared = prepare_path(path, options)
    result = run(prepared, SegmentParams(features=prepared.default_features, k=4))
    labels = result.segmentation.labels
    seconds = time.perf_counter() - start
    customers = prepared.customers[["customer_id", "recency", "frequency", "monetary"]].copy()
    customers["segment"] = labels
    customers.to_csv(out, index=False)
    return {"seconds": seconds, "customers": len(customers)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("method", choices=("baseline", "ours"))
    parser.add_argument("file", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    run = _baseline if args.method == "baseline" else _ours
    print(json.dumps(run(args.file, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
