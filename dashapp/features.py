"""Features: RFM per customer, quintile RFM scores with their cut points, named RFM segments."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dashapp.rfm_segments import CODE_TO_SEGMENT

RFM_FEATURES = ("recency", "frequency", "monetary")
SCORE_BINS = 5


def rfm(lines: pd.DataFrame, reference_date: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Aggregate cleaned transaction lines to one row per customer.

    Recency counts calendar days: reference date = the day after the latest order date
    (unless given); Recency = reference date - the date of the customer's last order, so a
    time of day never shifts it. Frequency = distinct orders (without an order id, distinct
    order days), returns excluded. Monetary = sum of signed amounts (returns subtract).

    Parameters
    ----------
    lines
        ``(n_lines, >=3)``: ``customer_id``, ``order_date``, ``amount`` and optionally
        ``order_id`` and ``is_return`` (bool; missing means no line is a return).
    reference_date
        The day the recency is measured to; its time of day is ignored.

    Returns
    -------
    pandas.DataFrame
        ``(n_customers, 8)``, sorted by ``customer_id``, with ``customer_id``, ``recency``,
        ``frequency``, ``monetary``, ``first_order``, ``last_order``, ``tenure`` (days from
        the first order to the reference date) and ``avg_order_value`` (0 without orders).
        ``frequency`` counts only purchases; a customer with returns alone has 0, and then
        the last and first order dates fall back to those of their returns.
    """
    frame = lines
    has_order = "order_id" in frame.columns
    has_return = "is_return" in frame.columns
    if reference_date is None:
        reference = pd.Timestamp(frame["order_date"].max()).normalize() + pd.Timedelta(days=1)
    else:
        reference = pd.Timestamp(reference_date).normalize()
    order_key = "order_id" if has_order else "CAST(order_date AS DATE)"
    purchase = "NOT is_return" if has_return else "TRUE"
    needed = ["customer_id", "order_date", "amount"]
    needed += [c for c in ("order_id", "is_return") if c in frame.columns]
    # Arrow columns are scanned in place and in parallel; a pandas frame is converted first.
    table = pa.Table.from_pandas(frame[needed], preserve_index=False)
    con = duckdb.connect()
    try:
        con.register("lines", table)
        out = con.execute(
            f"""
            SELECT customer_id,
                   CAST(coalesce(max(order_date) FILTER ({purchase}), max(order_date)) AS DATE)
                       AS last_order,
                   CAST(coalesce(min(order_date) FILTER ({purchase}), min(order_date)) AS DATE)
                       AS first_order,
                   count(DISTINCT {order_key}) FILTER ({purchase}) AS frequency,
                   coalesce(sum(amount), 0) AS monetary
            FROM lines
            GROUP BY customer_id
            ORDER BY customer_id
            """
        ).df()
    finally:
        con.close()
    return rfm_from_aggregates(out, reference)


def rfm_from_aggregates(out: pd.DataFrame, reference: pd.Timestamp) -> pd.DataFrame:
    """The customer table of :func:`rfm` from its per-customer aggregates.

    Parameters
    ----------
    out
        ``(n_customers, 5)`` sorted by id: ``customer_id``, ``last_order`` and
        ``first_order`` (dates), ``frequency`` (int) and ``monetary`` (net sum).
    reference
        The reference date, already normalized to midnight.

    Returns
    -------
    pandas.DataFrame
        As :func:`rfm` returns it, with ``attrs["reference_date"]`` set.
    """
    ref_day = reference.to_datetime64().astype("datetime64[D]")
    last = out["last_order"].to_numpy(dtype="datetime64[D]")
    first = out["first_order"].to_numpy(dtype="datetime64[D]")
    frequency = out["frequency"].to_numpy(dtype="int64")
    monetary = np.round(out["monetary"].to_numpy(dtype="float64"), 2)
    result = pd.DataFrame({
        "customer_id": out["customer_id"].astype("str"),
        "recency": (ref_day - last).astype("int64"),
        "frequency": frequency,
        "monetary": monetary,
        "first_order": pd.to_datetime(first),
        "last_order": pd.to_datetime(last),
        "tenure": (ref_day - first).astype("int64"),
        "avg_order_value": np.round(
            np.divide(monetary, frequency, out=np.zeros_like(monetary), where=frequency > 0), 2
        ),
    })
    result.attrs["reference_date"] = reference
    return result


@dataclass(frozen=True)
class RFMCuts:
    """Edges of the five quintile bins of recency, frequency and monetary, score 1 to 5.

    For frequency and monetary, ``edges[s - 1]`` is the largest value that scored ``s``; for
    recency, where lower is better, it is the smallest recency that scored ``s`` (so the
    recency edges descend). One new customer is scored without the batch: its score is the
    lowest whose edge it does not pass.
    """

    recency: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {f: list(getattr(self, f)) for f in RFM_FEATURES}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> RFMCuts:
        return cls(**{f: tuple(float(v) for v in data[f]) for f in RFM_FEATURES})

    def score(self, recency: float, frequency: float, monetary: float) -> tuple[int, int, int]:
        """Scores ``(r, f, m)`` of one customer from the kept cut points."""
        return (
            _bin_of(-recency, tuple(-e for e in self.recency)),
            _bin_of(frequency, self.frequency),
            _bin_of(monetary, self.monetary),
        )


def _bin_of(value: float, edges: tuple[float, ...]) -> int:
    index = int(np.searchsorted(np.asarray(edges), value, side="left"))
    return min(index, len(edges) - 1) + 1


def _quintile_bins(values: pd.Series) -> tuple[np.ndarray, tuple[float, ...]]:
    """Bins 1..5 of ``values``, higher values in higher bins, and each bin's largest value
    (:func:`_upper_edges`). Ties are broken by order (rank "first"), so equal values may land
    in neighbouring bins but no bin collapses."""
    array = values.to_numpy(dtype="float64")
    if np.isnan(array).any():
        ranks = values.rank(method="first").to_numpy()
        bins = np.ceil(ranks * SCORE_BINS / len(values)).astype("int64")
        return bins, _upper_edges(array, bins)
    # A stable argsort ranks ties in order of appearance, as rank("first") does, in a fifth
    # of the time. Whole numbers of a small range (days, order counts) are sorted as 16-bit
    # keys, which numpy's stable sort does by radix: several times faster.
    keys = array
    if len(array):
        low, high = array.min(), array.max()
        if high - low < 2**16 and np.array_equal(array, np.floor(array)):
            keys = (array - low).astype("uint16")
    order = np.argsort(keys, kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(1, len(array) + 1)
    bins = np.ceil(ranks * SCORE_BINS / len(values)).astype("int64")
    # In sorted order the bins rise, so each bin's largest value is at its last position.
    ends = np.searchsorted(bins[order], np.arange(1, SCORE_BINS + 1), side="right")
    starts = np.concatenate(([0], ends[:-1]))
    edges = [float(array[order[end - 1]]) if end > start else np.nan
             for start, end in zip(starts, ends)]
    return bins, _filled(edges)


def _upper_edges(array: np.ndarray, bins: np.ndarray) -> tuple[float, ...]:
    """The largest value of each bin 1..5, missing values skipped."""
    edges = []
    for b in range(1, SCORE_BINS + 1):
        inside = array[bins == b]
        inside = inside[~np.isnan(inside)]  # as groupby's max skips missing values
        edges.append(float(inside.max()) if len(inside) else np.nan)
    return _filled(edges)


def _filled(edges: list[float]) -> tuple[float, ...]:
    """An empty bin (fewer than five customers) takes the next bin's edge."""
    for i in range(len(edges) - 2, -1, -1):
        if np.isnan(edges[i]):
            edges[i] = edges[i + 1]
    return tuple(edges)


def _strictly_increasing(ids: pd.Series) -> bool:
    """Sorted with no repeats: each id above the one before (as strings when they are)."""
    if len(ids) < 2:
        return True
    if ids.hasnans or not (ids.dtype == "str" or isinstance(ids.dtype, pd.ArrowDtype)):
        return ids.is_monotonic_increasing and ids.is_unique
    # Text compared with its neighbour in Arrow, once: pandas' is_monotonic_increasing and a
    # hash of every id (is_unique) cost 60 ms at 500,000 ids, this about 5.
    values = pa.array(ids)
    return bool(pc.all(pc.less(values[:-1], values[1:])).as_py())


def rfm_scores(customers: pd.DataFrame) -> tuple[pd.DataFrame, RFMCuts]:
    """Score recency, frequency and monetary 1-5 by quintiles (5 = best; recency reversed).

    Parameters
    ----------
    customers
        ``(n_customers, >=4)`` with ``customer_id``, ``recency``, ``frequency``, ``monetary``.

    Returns
    -------
    scores
        ``(n_customers, 5)``, same index: ``r_score``, ``f_score``, ``m_score`` (int),
        ``rfm_code`` (e.g. ``"545"``) and ``rfm_segment`` (one of the 11 named segments).
    cuts
        The bins' edges, for scoring new customers with :meth:`RFMCuts.score`.
    """
    # Rank "first" follows row order, so sort by id first to make ties deterministic.
    ids = customers["customer_id"]
    # rfm() returns customers sorted by id already; checking is cheaper than sorting again.
    ordered = customers if _strictly_increasing(ids) else (
        customers.sort_values("customer_id", kind="stable"))
    goodness = {
        "recency": -ordered["recency"].astype("float64"),
        "frequency": ordered["frequency"].astype("float64"),
        "monetary": ordered["monetary"].astype("float64"),
    }
    scores = pd.DataFrame(index=customers.index)
    edges = {}
    for feature, letter in zip(RFM_FEATURES, "rfm"):
        bins, edges[feature] = _quintile_bins(goodness[feature])
        scores[f"{letter}_score"] = (
            bins if ordered is customers
            else pd.Series(bins, index=ordered.index).reindex(customers.index)
        )
    edges["recency"] = tuple(-e for e in edges["recency"])
    # Each code and segment name taken from the 125 possible ones, instead of joining
    # three strings per customer.
    at = ((scores["r_score"].to_numpy() - 1) * 25 + (scores["f_score"].to_numpy() - 1) * 5
          + scores["m_score"].to_numpy() - 1)
    picks = pa.array(at)
    scores["rfm_code"] = pd.Series(_CODE_TEXT.take(picks), index=scores.index, dtype="str")
    scores["rfm_segment"] = pd.Series(_SEGMENT_TEXT.take(picks), index=scores.index,
                                      dtype="str")
    return scores, RFMCuts(**edges)


#: The 125 score codes "111" .. "555" in order, and their named segments.
_CODES = np.array([f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)],
                  dtype=object)
_CODE_SEGMENTS = np.array([CODE_TO_SEGMENT[code] for code in _CODES], dtype=object)
# The same as Arrow text: taken from these, each customer's code is no Python string.
_CODE_TEXT = pa.array(_CODES.tolist(), pa.large_string())
_SEGMENT_TEXT = pa.array(_CODE_SEGMENTS.tolist(), pa.large_string())


def rfm_segment_of(code: str) -> str:
    """The named segment of a score code such as ``"545"``."""
    return CODE_TO_SEGMENT[code]
