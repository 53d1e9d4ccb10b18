"""AG Grid's filter and sort models applied to a DataFrame, for a grid paged from the server.

Past a few tens of thousands of customers the grid does not get every row: it asks for
blocks (``getRowsRequest``: ``startRow``, ``endRow``, ``filterModel``, ``sortModel``) and the
server answers from the full table with the same filter semantics as the grid's own number
and text filters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashapp.errors import PersonaError


def _number_mask(values: pd.Series, spec: dict) -> np.ndarray:
    kind = spec.get("type", "equals")
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    if kind == "blank":
        return np.isnan(x)
    if kind == "notBlank":
        return ~np.isnan(x)
    try:
        a = float(spec.get("filter"))
    except (TypeError, ValueError):
        return np.ones(len(x), dtype=bool)  # the grid ignores an incomplete condition too
    with np.errstate(invalid="ignore"):
        if kind == "equals":
            return x == a
        if kind == "notEqual":
            return x != a
        if kind == "lessThan":
            return x < a
        if kind == "lessThanOrEqual":
            return x <= a
        if kind == "greaterThan":
            return x > a
        if kind == "greaterThanOrEqual":
            return x >= a
        if kind == "inRange":
            b = float(spec.get("filterTo", a))
            low, high = min(a, b), max(a, b)
            # Our columns set inRangeInclusive, so the grid keeps both ends; so do we.
            return (x >= low) & (x <= high)
    raise PersonaError(f"Unknown number filter {kind!r}.")


def _text_mask(values: pd.Series, spec: dict) -> np.ndarray:
    kind = spec.get("type", "contains")
    text = values.astype("string").str.lower()
    if kind == "blank":
        return (text.isna() | (text == "")).to_numpy(dtype=bool)
    if kind == "notBlank":
        return (text.notna() & (text != "")).to_numpy(dtype=bool)
    needle = spec.get("filter")
    if needle is None or needle == "":
        return np.ones(len(values), dtype=bool)
    needle = str(needle).lower()
    if kind == "contains":
        hit = text.str.contains(needle, regex=False)
    elif kind == "notContains":
        hit = ~text.str.contains(needle, regex=False)
    elif kind == "equals":
        hit = text == needle
    elif kind == "notEqual":
        hit = text != needle
    elif kind == "startsWith":
        hit = text.str.startswith(needle)
    elif kind == "endsWith":
        hit = text.str.endswith(needle)
    else:
        raise PersonaError(f"Unknown text filter {kind!r}.")
    # Missing values match only the negative filters, as in the grid.
    return hit.fillna(kind in {"notContains", "notEqual"}).to_numpy(dtype=bool)


def _column_mask(values: pd.Series, spec: dict) -> np.ndarray:
    if "conditions" in spec:
        masks = [_column_mask(values, c) for c in spec["conditions"] or []]
        if not masks:
            return np.ones(len(values), dtype=bool)
        combine = np.logical_or if str(spec.get("operator", "AND")).upper() == "OR" \
            else np.logical_and
        return combine.reduce(masks)
    if spec.get("filterType") == "number":
        return _number_mask(values, spec)
    return _text_mask(values, spec)


def filter_mask(frame: pd.DataFrame, model: dict | None) -> np.ndarray:
    """Rows of ``frame`` that pass AG Grid's ``filterModel`` (``{column: spec}``).

    Raises
    ------
    PersonaError
        A column the table does not have (the browser can send anything).
    """
    mask = np.ones(len(frame), dtype=bool)
    for column, spec in (model or {}).items():
        if column not in frame.columns:
            raise PersonaError(f"The grid filtered on {column!r}, which this table does not "
                               "have; reload the page.")
        if isinstance(spec, dict):
            mask &= _column_mask(frame[column], spec)
    return mask


def sort_frame(frame: pd.DataFrame, sort_model: Sequence[dict] | None) -> pd.DataFrame:
    """``frame`` in the order of AG Grid's ``sortModel`` (``[{"colId", "sort"}]``), stable."""
    keys = [s for s in sort_model or () if s.get("colId") in frame.columns
            and s.get("sort") in {"asc", "desc"}]
    if not keys:
        return frame
    return frame.sort_values([s["colId"] for s in keys],
                             ascending=[s["sort"] == "asc" for s in keys],
                             kind="stable", na_position="last")


def sort_model_of(column_state: Sequence[dict] | None) -> list[dict]:
    """The sort model hidden in the grid's ``columnState``, in sort-index order."""
    sorted_columns = [c for c in column_state or () if c.get("sort") in {"asc", "desc"}]
    sorted_columns.sort(key=lambda c: c.get("sortIndex") or 0)
    return [{"colId": c.get("colId"), "sort": c["sort"]} for c in sorted_columns]


def query(frame: pd.DataFrame, filter_model: dict | None,
          sort_model: Sequence[dict] | None) -> pd.DataFrame:
    """The rows the grid shows for these models, in its order."""
    return sort_frame(frame.loc[filter_mask(frame, filter_model)], sort_model)


def block(frame: pd.DataFrame, request: dict, max_rows: int = 1000) -> tuple[pd.DataFrame, int]:
    """One block of a ``getRowsRequest`` and the number of rows that match in all."""
    matched = query(frame, request.get("filterModel"), request.get("sortModel"))
    start = max(0, int(request.get("startRow") or 0))
    end = min(int(request.get("endRow") or start + 100), start + max_rows)
    return matched.iloc[start:end], len(matched)
