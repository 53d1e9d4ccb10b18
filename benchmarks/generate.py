"""Deterministic transaction logs (CSV and Parquet) for the benchmark, cached on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: Bumped whenever the generated content changes, so cached files are not reused.
VERSION = 1
LINES_PER_CUSTOMER = 20
LINES_PER_ORDER = 4
START = np.datetime64("2023-01-01T00:00", "m")
DAYS = 731
COLUMNS = ("ORDERNUMBER", "ORDERDATE", "CUSTOMERNAME", "SALES")
FIRST_ORDER_NUMBER = 10_000_000


@dataclass(frozen=True)
class Dataset:
    """One generated log: its line count and where its two files are."""

    lines: int
    csv: Path
    parquet: Path


def parse_size(text: str) -> int:
    """``"100k"`` -> 100000, ``"1m"`` -> 1000000, ``"2500"`` -> 2500."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


def size_label(lines: int) -> str:
    for scale, suffix in ((1_000_000, "M"), (1_000, "k")):
        if lines >= scale and lines % scale == 0:
            return f"{lines // scale}{suffix}"
    return f"{lines:,}"


def transactions(lines: int, seed: int = 0) -> pa.Table:
    """A transaction log of exactly ``lines`` lines, one per order line, in time order.

    About ``lines / 20`` customers, each with at least one order; order counts per
    customer and line amounts are heavy-tailed (log-normal); orders fall within each
    customer's active window inside two years (2023-01-01 .. 2024-12-31), at any minute.
    No returns, no missing values: every line counts for both pipelines.

    Returns
    -------
    pyarrow.Table
        ``(lines, 4)``: ``ORDERNUMBER`` (int64, numbered in time order), ``ORDERDATE``
        (timestamp, minutes), ``CUSTOMERNAME`` (string, ``C0000001`` ..) and ``SALES``
        (float64, two decimals).
    """
    if lines < LINES_PER_CUSTOMER:
        raise ValueError(f"at least {LINES_PER_CUSTOMER} lines, got {lines}")
    rng = np.random.default_rng(seed)
    n_customers = lines // LINES_PER_CUSTOMER
    n_orders = max(lines // LINES_PER_ORDER, n_customers)

    weight = rng.lognormal(0.0, 1.5, n_customers)
    extra = rng.choice(n_customers, n_orders - n_customers, p=weight / weight.sum())
    per_customer = 1 + np.bincount(extra, minlength=n_customers)
    customer_of_order = np.repeat(np.arange(n_customers), per_customer)

    minutes = DAYS * 24 * 60
    ends = np.sort(rng.integers(0, minutes, (n_customers, 2)), axis=1)
    low, high = ends[customer_of_order, 0], ends[customer_of_order, 1]
    when = low + (rng.random(n_orders) * (high - low + 1)).astype(np.int64)
    order = np.lexsort((customer_of_order, when))
    customer_of_order, when = customer_of_order[order], when[order]

    lines_per_order = 1 + np.bincount(
        rng.integers(0, n_orders, lines - n_orders), minlength=n_orders
    )
    order_of_line = np.repeat(np.arange(n_orders), lines_per_order)
    sales = np.round(np.maximum(rng.lognormal(4.0, 1.0, lines), 0.01), 2)

    ids = pa.array([f"C{i:07d}" for i in range(1, n_customers + 1)])
    timestamps = (START + when[order_of_line]).astype("datetime64[us]")
    return pa.table({
        "ORDERNUMBER": pa.array(FIRST_ORDER_NUMBER + order_of_line, pa.int64()),
        "ORDERDATE": pa.array(timestamps, pa.timestamp("us")),
        "CUSTOMERNAME": ids.take(pa.array(customer_of_order[order_of_line])),
        "SALES": pa.array(sales, pa.float64()),
    })


def _export_dates(timestamps: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``M/D/YYYY H:MM`` (no zero padding) as the paper's ``sales_data_sample.csv`` has them."""
    values = np.asarray(timestamps.to_numpy(), dtype="datetime64[m]")
    minutes = (values - START).astype(np.int64)
    day, minute = np.divmod(minutes, 24 * 60)
    calendar = (START.astype("datetime64[D]") + np.arange(day.max() + 1)).astype(object)
    days = pa.array([f"{d.month}/{d.day}/{d.year}" for d in calendar])
    clock = pa.array([f"{m // 60}:{m % 60:02d}" for m in range(24 * 60)])
    return pc.binary_join_element_wise(days.take(pa.array(day)), clock.take(pa.array(minute)), " ")


def export_csv(table: pa.Table) -> pa.Table:
    """The columns as text the way a shop's export writes them."""
    return table.set_column(1, "ORDERDATE", _export_dates(table["ORDERDATE"].combine_chunks()))


def _atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def ensure(lines: int, data_dir: Path, seed: int = 0) -> Dataset:
    """The CSV and Parquet files for ``lines`` lines, generated once and reused after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stem = f"transactions_{size_label(lines)}_seed{seed}_v{VERSION}"
    dataset = Dataset(lines, data_dir / f"{stem}.csv", data_dir / f"{stem}.parquet")
    if dataset.csv.exists() and dataset.parquet.exists():
        return dataset
    table = transactions(lines, seed)
    _atomic(dataset.parquet, lambda p: pq.write_table(table, p, row_group_size=1_000_000))
    _atomic(dataset.csv, lambda p: _write_csv(export_csv(table), p))
    return dataset


def ensure_parquet(lines: int, data_dir: Path, seed: int = 0) -> Path:
    """The Parquet file alone (the scale run reads Parquet; a 100M-line CSV is 4 GB)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"transactions_{size_label(lines)}_seed{seed}_v{VERSION}.parquet"
    if not path.exists():
        table = transactions(lines, seed)
        _atomic(path, lambda p: pq.write_table(table, p, row_group_size=1_000_000))
    return path


def _write_csv(table: pa.Table, path: Path) -> None:
    # Arrow quotes header names; a shop's export does not.
    with open(path, "wb") as out:
        out.write((",".join(table.column_names) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, out, options)
