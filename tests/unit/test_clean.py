"""Cleaning rules on hand-worked logs and on the real Online Retail sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashapp.clean import (
    CleaningOptions,
    clean_transactions,
    handle_missing,
    handle_outliers,
)
from dashapp.ingest import read_table
from dashapp.pipeline import PrepareOptions, prepare, prepare_file

LOG = b"""invoice,customer,date,qty,price,product
1,A,2024-01-01,2,5.00,pen
1,A,2024-01-01,2,5.00,pen
2,,2024-01-02,1,3.00,ink
C3,A,2024-01-03,-1,5.00,pen
4,B,2024-01-04,1,100.00,desk
5,B,2024-01-05,-1,100.00,desk
6,C,2024-01-06,1,1.00,clip
C7,C,2024-01-07,-3,1.00,clip
"""


def _clean(data: bytes = LOG, **options):
    ingested = read_table(data, "log.csv")
    return ingested, *clean_transactions(ingested, CleaningOptions(**options))


def test_every_rule_reports_and_acts():
    ingested, lines, rules = _clean()
    by_rule = {r.rule: r for r in rules}
    assert by_rule["missing_customer_id"].count == 1
    assert by_rule["missing_customer_id"].examples[0]["row"] == "4"
    assert by_rule["duplicates"].count == 1 and by_rule["duplicates"].action == "kept"
    assert by_rule["returns"].count == 3
    assert "2 lines on invoices starting with 'C'" in by_rule["returns"].detail
    assert len(lines) == 7
    assert lines["is_return"].tolist() == [False, False, True, False, True, False, True]
    assert lines["amount"].tolist() == [10.0, 10.0, -5.0, 100.0, -100.0, 1.0, -3.0]


def test_duplicates_can_be_dropped():
    _, lines, rules = _clean(drop_duplicates=True)
    assert next(r for r in rules if r.rule == "duplicates").action == "dropped"
    assert len(lines) == 6


def test_cancellation_with_a_positive_amount_still_subtracts():
    data = b"InvoiceNo,CustomerID,InvoiceDate,Amount\n1,A,2024-01-01,50\nC2,A,2024-01-02,20\n"
    _, lines, _ = _clean(data)
    assert lines["amount"].tolist() == [50.0, -20.0]


def test_prepared_report_flags_non_positive_spend_and_keeps_them():
    prepared = prepare(LOG, "log.csv")
    customers = prepared.customers.set_index("customer_id")
    assert customers.loc["A", "monetary"] == 15.0 and customers.loc["A", "frequency"] == 1
    assert customers.loc["B", "monetary"] == 0.0 and customers.loc["B", "frequency"] == 1
    assert customers.loc["C", "monetary"] == -2.0
    flagged = prepared.report.rule("non_positive_spend")
    assert flagged.count == 2 and flagged.action == "flagged"
    assert customers["non_positive_spend"].tolist() == [False, True, True]
    assert prepared.report.rows_read == 8 and prepared.report.rows_kept == 7
    assert prepared.report.customers == 3


def test_outliers_keep_clip_drop():
    frame = pd.DataFrame({"customer_id": list("abcdefgh"),
                          "v": [1.0, 2, 3, 4, 5, 6, 7, 100]})
    kept, rule = handle_outliers(frame, ["v"], "keep")
    assert rule.count == 1 and kept["outlier"].tolist() == [False] * 7 + [True]
    assert kept["v"].iloc[-1] == 100
    assert rule.examples[0]["customer_id"] == "h"
    clipped, rule = handle_outliers(frame, ["v"], "clip")
    q1, q3 = np.quantile(frame["v"], [0.25, 0.75])
    assert clipped["v"].iloc[-1] == pytest.approx(q3 + 1.5 * (q3 - q1))
    assert rule.action == "clipped"
    dropped, rule = handle_outliers(frame, ["v"], "drop")
    assert len(dropped) == 7 and rule.action == "dropped"


def test_missing_impute_or_drop():
    frame = pd.DataFrame({"customer_id": list("abcd"), "age": [20.0, np.nan, 40, 60]})
    imputed, rule = handle_missing(frame, ["age"], "impute")
    assert imputed["age"].tolist() == [20, 40, 40, 60]
    assert rule.count == 1 and "age 1" in rule.detail
    dropped, rule = handle_missing(frame, ["age"], "drop")
    assert dropped["customer_id"].tolist() == ["a", "c", "d"]


def test_online_retail_dirt_shows_in_the_report(shared_data):
    prepared = prepare_file(shared_data / "online_retail" / "online_retail_sample_20000.csv")
    report = prepared.report
    assert report.rows_read == 20_000
    assert report.rule("missing_customer_id").count == 5_078
    returns = report.rule("returns")
    # PROVENANCE.md: 350 cancellation invoices and 398 negative quantities (among all rows);
    # the rule counts lines that still have a customer after the first rule.
    with_customer = pd.read_csv(
        shared_data / "online_retail" / "online_retail_sample_20000.csv",
        dtype={"InvoiceNo": str, "CustomerID": str},
    ).dropna(subset=["CustomerID"])
    expected = (with_customer["InvoiceNo"].str.startswith("C")
                | (with_customer["Quantity"] < 0)).sum()
    assert returns.count == expected
    assert "starting with 'C'" in returns.detail
    assert report.customers == with_customer["CustomerID"].nunique()
    assert report.rule("non_positive_spend").count > 0


def test_online_retail_counts_before_the_customer_rule(shared_data):
    options = PrepareOptions()
    raw = (shared_data / "online_retail" / "online_retail_sample_20000.csv").read_bytes()
    ingested = read_table(raw, "online_retail.csv", limits=options.limits)
    lines = ingested.canonical()
    assert lines["order_id"].str.startswith("C").sum() == 350
    assert (lines["quantity"] < 0).sum() == 398
