"""Plain-data helpers of the dashboard: grid set-up, ranges, row order, highlighting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashapp import figures, views


def test_grid_columns_use_number_filters_for_numbers_only():
    frame = pd.DataFrame({"customer_id": ["007", "010"], "monetary": [1.5, 2.0],
                          "segment": np.array([0, 1]), "flag": [True, False]})
    defs = {d["field"]: d for d in views.grid_columns(frame)}
    assert defs["customer_id"]["filter"] == "agTextColumnFilter"
    assert defs["customer_id"]["pinned"] == "left"
    assert defs["monetary"]["filter"] == "agNumberColumnFilter"
    assert defs["monetary"]["filterParams"]["inRangeInclusive"] is True
    assert defs["segment"]["filter"] == "agNumberColumnFilter"
    assert defs["flag"]["filter"] == "agTextColumnFilter"


def test_grid_rows_turn_missing_values_into_null():
    frame = pd.DataFrame({"customer_id": ["a", None], "x": [1.0, np.nan]})
    assert views.grid_rows(frame) == [{"customer_id": "a", "x": 1.0},
                                      {"customer_id": None, "x": None}]


def test_range_bounds_cover_the_values_and_skip_constant_features():
    frame = pd.DataFrame({"recency": [1.0, 364.2, 20.0], "flat": [3.0, 3.0, 3.0],
                          "share": [0.1, 0.35, 0.2]})
    bounds = {b["feature"]: b for b in views.range_bounds(frame, ("recency", "flat", "share"))}
    assert bounds["recency"] == {"feature": "recency", "min": 1, "max": 365, "step": 1}
    assert "flat" not in bounds
    assert bounds["share"]["min"] == 0 and bounds["share"]["max"] == 1
    assert bounds["share"]["step"] == 0.01


def test_rows_in_order_follows_the_grid_and_keeps_text_ids():
    frame = pd.DataFrame({"customer_id": ["001", "002", "003"], "v": [1, 2, 3]})
    out = views.rows_in_order(frame, ["003", "001"])
    assert out["customer_id"].tolist() == ["003", "001"]
    assert out["v"].tolist() == [3, 1]


def test_highlight_dims_the_segments_not_chosen():
    fig = {"data": [{"type": "bar", "x": [1], "meta": {"segment": 0}},
                     {"type": "bar", "x": [2], "meta": {"segment": 1}},
                     {"type": "bar", "x": [3]}], "layout": {}}
    assert figures.highlight(fig, [1]) is fig
    assert [t.get("opacity") for t in fig["data"]] == [figures.DIMMED, 1.0, None]
    figures.highlight(fig, [])
    assert [t.get("opacity") for t in fig["data"]][:2] == [1.0, 1.0]


def test_centroid_lines_speak_business_units():
    lines = views.centroid_lines({"recency": 12.26, "frequency": 3.0, "monetary": 164069.44},
                                 {"monetary"})
    assert lines == ["recency: 12.3 days", "frequency: 3.0 orders", "monetary: 164,069"]
