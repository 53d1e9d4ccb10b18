"""The grid's filter and sort models applied on the server, checked against pandas by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashapp import gridquery
from dashapp.errors import PersonaError

FRAME = pd.DataFrame({
    "customer_id": ["A01", "b02", "C03", "a04", None],
    "monetary": [10.0, -5.0, 250.5, np.nan, 40.0],
    "segment": [0, 1, 0, 2, 1],
})


def _ids(model, sort=None):
    ids = gridquery.query(FRAME, model, sort)["customer_id"].tolist()
    return [None if pd.isna(i) else i for i in ids]


def test_number_filters_match_the_grid():
    assert _ids({"segment": {"filterType": "number", "type": "equals", "filter": 0}}) == \
        ["A01", "C03"]
    assert _ids({"monetary": {"filterType": "number", "type": "inRange", "filter": 10,
                              "filterTo": 40}}) == ["A01", None]
    assert _ids({"monetary": {"filterType": "number", "type": "lessThan", "filter": 0}}) == \
        ["b02"]
    assert _ids({"monetary": {"filterType": "number", "type": "blank"}}) == ["a04"]
    assert _ids({"monetary": {"filterType": "number", "type": "greaterThanOrEqual",
                              "filter": None}}) == ["A01", "b02", "C03", "a04", None]


def test_conditions_combine_with_or_and_and():
    either = {"filterType": "number", "operator": "OR", "conditions": [
        {"filterType": "number", "type": "equals", "filter": 1},
        {"filterType": "number", "type": "equals", "filter": 2}]}
    assert _ids({"segment": either}) == ["b02", "a04", None]
    both = {"segment": either,
            "monetary": {"filterType": "number", "type": "greaterThan", "filter": 0}}
    assert _ids(both) == [None]


def test_text_filters_ignore_case_and_missing_values_fail_positive_ones():
    assert _ids({"customer_id": {"filterType": "text", "type": "startsWith",
                                 "filter": "a"}}) == ["A01", "a04"]
    assert _ids({"customer_id": {"filterType": "text", "type": "contains", "filter": "0"}}) \
        == ["A01", "b02", "C03", "a04"]
    assert _ids({"customer_id": {"filterType": "text", "type": "notContains",
                                 "filter": "a"}}) == ["b02", "C03", None]


def test_sort_is_stable_and_puts_missing_last():
    assert _ids({}, [{"colId": "monetary", "sort": "desc"}]) == ["C03", None, "A01", "b02",
                                                               "a04"]
    assert _ids({}, [{"colId": "segment", "sort": "asc"}]) == ["A01", "C03", "b02", None,
                                                             "a04"]
    state = [{"colId": "monetary", "sort": None}, {"colId": "segment", "sort": "desc",
                                                   "sortIndex": 0}]
    assert gridquery.sort_model_of(state) == [{"colId": "segment", "sort": "desc"}]


def test_blocks_page_through_the_matching_rows():
    request = {"startRow": 1, "endRow": 3, "sortModel": [{"colId": "customer_id",
                                                          "sort": "asc"}],
               "filterModel": {"segment": {"filterType": "number", "type": "notEqual",
                                           "filter": 2}}}
    rows, matched = gridquery.block(FRAME, request)
    assert matched == 4
    assert rows["customer_id"].tolist() == ["C03", "b02"]


def test_unknown_columns_and_filters_are_refused():
    with pytest.raises(PersonaError, match="does not have"):
        gridquery.filter_mask(FRAME, {"password": {"filterType": "text", "filter": "x"}})
    with pytest.raises(PersonaError, match="Unknown number filter"):
        gridquery.filter_mask(FRAME, {"segment": {"filterType": "number", "type": "regex",
                                                  "filter": 1}})
