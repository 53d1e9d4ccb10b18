"""The benchmark's generator is deterministic and its check tells agreement from drift."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow.csv as pacsv

from benchmarks import baseline
from benchmarks.check import compare, read_rfm
from benchmarks.generate import ensure, export_csv, parse_size, transactions


def test_bench001_same_seed_same_log_other_seed_other_log():
    first, again, other = transactions(2_000), transactions(2_000), transactions(2_000, seed=1)
    assert first.equals(again)
    assert not first.equals(other)
    assert first.num_rows == 2_000


def test_bench002_log_has_the_promised_shape():
    frame = transactions(20_000).to_pandas()
    lines_per_customer = frame.groupby("CUSTOMERNAME").size()
    assert frame["CUSTOMERNAME"].nunique() == 1_000
    assert lines_per_customer.mean() == 20
    assert lines_per_customer.max() > 5 * lines_per_customer.median()  # heavy tail
    span = frame["ORDERDATE"].max() - frame["ORDERDATE"].min()
    assert pd.Timedelta(days=700) < span <= pd.Timedelta(days=731)
    assert frame["ORDERDATE"].is_monotonic_increasing
    assert (frame["SALES"] > 0).all()


def test_bench003_csv_reads_like_an_export(tmp_path):
    dataset = ensure(1_000, tmp_path)
    text = dataset.csv.read_text()
    header, first = text.splitlines()[:2]
    assert header == "ORDERNUMBER,ORDERDATE,CUSTOMERNAME,SALES"
    number, when, customer, _ = first.split(",")
    assert re.fullmatch(r"\d+", number) and re.fullmatch(r"C\d{7}", customer)
    assert re.fullmatch(r"\d{1,2}/\d{1,2}/20\d\d \d{1,2}:\d\d", when)
    again = ensure(1_000, tmp_path)
    assert again.csv.stat().st_mtime_ns == dataset.csv.stat().st_mtime_ns  # cached
    from_parquet = pd.read_parquet(dataset.parquet)
    assert len(from_parquet) == 1_000
    assert pacsv.read_csv(dataset.csv).equals(pacsv.read_csv(dataset.csv))


def test_bench004_export_dates_have_no_padding():
    table = export_csv(transactions(1_000))
    dates = table["ORDERDATE"].to_pylist()
    assert all(re.fullmatch(r"[1-9]\d?/[1-9]\d?/\d{4} \d{1,2}:\d\d", d) for d in dates)


def test_bench005_sizes_parse():
    assert [parse_size(s) for s in ("100k", "1m", "10M", "2500")] == [
        100_000, 1_000_000, 10_000_000, 2_500]


def _rfm(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "recency", "frequency", "monetary"])
    return frame.set_index("customer_id")


def test_bench006_check_allows_one_day_more_recency_only():
    base = _rfm([("a", 10, 2, 5.0), ("b", 3, 1, 7.25)])
    assert compare(base, _rfm([("a", 11, 2, 5.001), ("b", 3, 1, 7.25)])).ok
    assert not compare(base, _rfm([("a", 9, 2, 5.0), ("b", 3, 1, 7.25)])).ok
    assert not compare(base, _rfm([("a", 10, 3, 5.0), ("b", 3, 1, 7.25)])).ok
    assert not compare(base, _rfm([("a", 10, 2, 5.02), ("b", 3, 1, 7.25)])).ok
    missing = compare(base, _rfm([("a", 10, 2, 5.0)]))
    assert not missing.ok and missing.only_baseline == 1


def test_bench007_baseline_and_ours_agree_on_a_small_log(tmp_path):
    from dashapp.pipeline import prepare_file, run
    from dashapp.segment import SegmentParams

    dataset = ensure(4_000, tmp_path)
    table = baseline.rfm(dataset.csv)
    assert baseline.segment(table).nunique() == 4
    base = table.rename(columns=str.lower).rename_axis("customer_id")
    prepared = prepare_file(dataset.csv)
    result = run(prepared, SegmentParams(features=prepared.default_features, k=4))
    assert len(set(result.segmentation.labels)) == 4
    ours = prepared.customers.set_index("customer_id")
    agreement = compare(base, ours)
    assert agreement.ok and agreement.customers == 200
    assert agreement.recency_one_day > 0  # times of day differ, as in real logs
    out = tmp_path / "ours.csv"
    prepared.customers.to_csv(out, index=False)
    assert compare(base, read_rfm(out)).ok


def test_bench008_scale_run_segments_a_parquet_log_in_a_fresh_process(tmp_path, capsys):
    import pyarrow.parquet as pq

    from benchmarks import scale
    from benchmarks.generate import ensure_parquet

    path = ensure_parquet(4_000, tmp_path)
    assert pq.read_table(path).equals(transactions(4_000))
    assert scale.main(["--lines", "4000", "--data", str(tmp_path),
                       "--duckdb-memory", "100MB"]) == 0
    row = capsys.readouterr().out.splitlines()[0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "4k" and cells[2] == "200" and cells[3] == "100MB"
    assert float(cells[4].removesuffix(" s")) > 0
    assert float(cells[5].removesuffix(" MB").replace(",", "")) > 50


def test_bench009_a_peak_is_the_commands_own_not_the_benchmarks(tmp_path):
    # The kernel carries the peak of the memory a process execs from into its ru_maxrss:
    # a child spawned from a process that once held 600 MB reports at least 600 MB. The
    # launcher measures the command from a small process of its own.
    import os
    import subprocess
    import sys

    import numpy as np

    from benchmarks.run import _environment, _measure

    held = np.ones(600 * 2**20 // 8)  # written, so resident
    direct = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(direct.pid, 0)
    assert usage.ru_maxrss / 1024 > 600  # what wait4 from here would have said
    del held
    wall, peak, out = _measure(
        [sys.executable, "-c", "import numpy as np; x = np.ones(2**25); print(7)"],
        _environment(), tmp_path / "one.log")
    assert out.strip() == "7" and 0 < wall < 60
    assert 256 < peak < 450  # the command's own 256 MB and an interpreter, not 600 MB more


def test_bench010_each_export_shape_is_read_by_the_duckdb_path_with_the_same_result(tmp_path):
    # benchmarks.shapes derives the shapes from the batch log and runs both paths in fresh
    # processes; a worker whose fast path falls back fails its run, so the table exists
    # only if every shape was read by DuckDB, and "same" compares whole customer tables.
    from benchmarks import shapes

    rows = shapes.bench(10_000, 1, tmp_path)
    assert [r["shape"] for r in rows] == list(shapes.SHAPES)
    assert all(r["same"] for r in rows), rows
    assert len({r["customers"] for r in rows}) == 1
    windows = (tmp_path / "transactions_10k_seed0_v1_windows-1252.csv").read_bytes()
    assert b"\x93UK\x94" in windows
    euro = (tmp_path / "transactions_10k_seed0_v1_decimal-comma.csv").read_text()
    assert euro.splitlines()[1].count(";") == 4 and "," in euro.splitlines()[1]
    assert "| windows-1252 | 10,000 |" in shapes.table(rows)
    # The pandas folder: a file per month, float ids, and UNITS int64 but double in one.
    import pyarrow.parquet as pq

    months = sorted((tmp_path / "transactions_10k_seed0_v1_pandas-folder").iterdir())
    assert len(months) >= 12
    assert {str(pq.read_schema(m).field("UNITS").type) for m in months} == {"int64", "double"}
    assert str(pq.read_schema(months[0]).field("CUSTOMERID").type) == "double"
