"""RFM, its quintile scores and the named segments, on hand-worked frames and real data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from dashapp.features import RFMCuts, rfm, rfm_scores
from dashapp.rfm_segments import CODE_TO_SEGMENT, RFM_SEGMENT_CODES


def _lines(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "amount",
                                        "is_return"])
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["order_id"] = frame["order_id"].astype("str")
    return frame


def test_rfm_hand_worked():
    lines = _lines([
        ("a", "1", "2024-01-01 09:00", 10.0, False),
        ("a", "1", "2024-01-01 09:00", 5.0, False),   # second line of order 1
        ("a", "2", "2024-03-10 23:59", 20.0, False),  # late in the day: still 2024-03-10
        ("a", "C3", "2024-03-11 08:00", -5.0, True),  # a return: nets, is not an order
        ("b", "4", "2024-03-31 00:01", 100.0, False),  # latest purchase: reference 2024-04-01
        ("c", "5", "2023-12-31 12:00", 7.5, False),
        ("c", "C6", "2024-01-02 12:00", -7.5, True),
        ("d", "C7", "2024-02-01 10:00", -3.0, True),  # returns only
    ])
    got = rfm(lines)
    expected = pd.DataFrame({
        "customer_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
        "recency": [22, 1, 92, 60],
        "frequency": [2, 1, 1, 0],
        "monetary": [30.0, 100.0, 0.0, -3.0],
        "first_order": pd.to_datetime(["2024-01-01", "2024-03-31", "2023-12-31", "2024-02-01"]),
        "last_order": pd.to_datetime(["2024-03-10", "2024-03-31", "2023-12-31", "2024-02-01"]),
        "tenure": [91, 1, 92, 60],
        "avg_order_value": [15.0, 100.0, 0.0, 0.0],
    })
    assert_frame_equal(got, expected, check_dtype=False)
    assert got.attrs["reference_date"] == pd.Timestamp("2024-04-01")


def test_recency_counts_calendar_days_whatever_the_time():
    early = _lines([("x", "1", "2024-05-01 00:00", 1.0, False),
                    ("y", "2", "2024-05-10 23:59", 1.0, False)])
    late = _lines([("x", "1", "2024-05-01 23:59", 1.0, False),
                   ("y", "2", "2024-05-10 00:00", 1.0, False)])
    assert rfm(early)["recency"].tolist() == [10, 1]
    assert rfm(late)["recency"].tolist() == [10, 1]
    assert rfm(early, reference_date="2024-06-01 18:30")["recency"].tolist() == [31, 22]


def test_without_order_id_each_customer_day_is_one_order():
    lines = _lines([("x", "", "2024-05-01 09:00", 1.0, False),
                    ("x", "", "2024-05-01 17:00", 2.0, False),
                    ("x", "", "2024-05-02 09:00", 4.0, False)]).drop(columns="order_id")
    got = rfm(lines)
    assert got.loc[0, "frequency"] == 2
    assert got.loc[0, "monetary"] == 7.0


def test_rfm_matches_an_independent_pandas_computation(shared_data):
    raw = pd.read_csv(shared_data / "sales_data_sample" / "sales_data_sample.csv",
                      encoding="ISO-8859-1")
    raw["ORDERDATE"] = pd.to_datetime(raw["ORDERDATE"], format="%m/%d/%Y %H:%M")
    lines = pd.DataFrame({
        "customer_id": raw["CUSTOMERNAME"].astype("str"),
        "order_id": raw["ORDERNUMBER"].astype("str"),
        "order_date": raw["ORDERDATE"],
        "amount": raw["SALES"].astype("float64"),
    })
    got = rfm(lines).set_index("customer_id")
    reference = raw["ORDERDATE"].max().normalize() + pd.Timedelta(days=1)
    grouped = raw.groupby("CUSTOMERNAME")
    expected_r = (reference - grouped["ORDERDATE"].max().dt.normalize()).dt.days
    assert len(got) == 92
    assert (got["recency"] == expected_r.reindex(got.index)).all()
    assert (got["frequency"] == grouped["ORDERNUMBER"].nunique().reindex(got.index)).all()
    np.testing.assert_allclose(got["monetary"], grouped["SALES"].sum().reindex(got.index),
                               atol=0.005)
    # The paper's table, as the data gives it (PROVENANCE.md: the paper's Lyon row is wrong).
    for name, r, f, m in [("Land of Toys Inc.", 198, 4, 164069.44),
                          ("Reims Collectables", 63, 5, 135042.94),
                          ("Toys4GrownUps.com", 140, 3, 104561.96),
                          ("Lyon Souveniers", 76, 3, 78570.34)]:
        assert (got.loc[name, "recency"], got.loc[name, "frequency"]) == (r, f)
        assert got.loc[name, "monetary"] == pytest.approx(m, abs=0.005)


def test_lookup_covers_all_125_codes_exactly_once():
    listed = [code for codes in RFM_SEGMENT_CODES.values() for code in codes]
    every = {"".join(map(str, c)) for c in itertools.product(range(1, 6), repeat=3)}
    assert len(listed) == 125
    assert set(listed) == every
    assert len(RFM_SEGMENT_CODES) == 11
    assert CODE_TO_SEGMENT["555"] == "Champions" and CODE_TO_SEGMENT["111"] == "Lost"


def test_scores_are_quintiles_with_ties_broken_by_rank():
    customers = pd.DataFrame({
        "customer_id": [f"c{i:02d}" for i in range(10)],
        "recency": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "frequency": [1] * 10,             # all tied: ranks spread them over every bin
        "monetary": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    })
    scores, cuts = rfm_scores(customers)
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores.loc[0, "rfm_code"] == "511"
    assert scores.loc[0, "rfm_segment"] == "New Customers"
    assert cuts.monetary == (20.0, 40.0, 60.0, 80.0, 100.0)
    assert cuts.recency == (9.0, 7.0, 5.0, 3.0, 1.0)


def test_cut_points_score_one_new_customer_like_the_batch():
    rng = np.random.default_rng(3)
    customers = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(200)],
        "recency": rng.permutation(200) + 1,
        "frequency": rng.permutation(200) + 1,
        "monetary": rng.permutation(200) * 10.0 + 5,
    })
    scores, cuts = rfm_scores(customers)
    for i in range(0, 200, 7):
        row = customers.loc[i]
        assert cuts.score(row.recency, row.frequency, row.monetary) == tuple(
            scores.loc[i, ["r_score", "f_score", "m_score"]])
    assert RFMCuts.from_dict(cuts.to_dict()) == cuts
    assert cuts.score(-1, 10_000, 1e12) == (5, 5, 5)
    assert cuts.score(10_000, 0, -1) == (1, 1, 1)


def test_scores_with_fewer_customers_than_bins():
    customers = pd.DataFrame({"customer_id": ["a", "b"], "recency": [1, 9],
                              "frequency": [3, 1], "monetary": [5.0, 1.0]})
    scores, cuts = rfm_scores(customers)
    assert scores["r_score"].tolist() == [5, 3]
    assert scores["m_score"].tolist() == [5, 3]
    assert all(not np.isnan(edge) for edge in cuts.monetary)


def test_codes_and_segments_follow_the_scores_on_any_index():
    rng = np.random.default_rng(5)
    customers = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in rng.permutation(1_000)],
        "recency": rng.integers(1, 400, 1_000),
        "frequency": rng.integers(1, 30, 1_000),
        "monetary": rng.lognormal(4, 1, 1_000),
    }, index=rng.permutation(np.arange(5_000, 6_000)))
    scores, _ = rfm_scores(customers)
    assert scores.index.equals(customers.index)
    joined = (scores["r_score"].astype(str) + scores["f_score"].astype(str)
              + scores["m_score"].astype(str))
    assert scores["rfm_code"].tolist() == joined.tolist()
    assert scores["rfm_segment"].tolist() == [CODE_TO_SEGMENT[c] for c in joined]
    assert scores["rfm_code"].dtype == "str" and scores["rfm_segment"].dtype == "str"


@pytest.mark.parametrize("seed", range(6))
def test_scores_and_cuts_equal_pandas_ranks_and_group_maxima(seed):
    # Independent of the sort-based code: pandas' rank("first") in id order gives the bins,
    # a groupby max of each bin its upper edge (an empty bin takes the next one's).
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    ids = np.array([f"c{i:04d}" for i in range(n)])
    customers = pd.DataFrame({
        "customer_id": ids if seed % 2 else rng.permutation(ids),
        "recency": rng.integers(1, 5 if seed < 3 else 70_000, n),   # ties, then a wide range
        "frequency": rng.integers(1, 4, n),
        "monetary": np.round(rng.lognormal(3, 1.5, n) * rng.choice([-1, 1], n, p=[.1, .9]), 2),
    })
    scores, cuts = rfm_scores(customers)
    ordered = customers.sort_values("customer_id")
    for feature, letter, sign in (("recency", "r", -1), ("frequency", "f", 1),
                                  ("monetary", "m", 1)):
        goodness = sign * ordered[feature].astype("float64")
        bins = np.ceil(goodness.rank(method="first") * 5 / n).astype("int64")
        assert scores.loc[ordered.index, f"{letter}_score"].tolist() == bins.tolist()
        maxima = goodness.groupby(bins).max().reindex(range(1, 6)).bfill()
        assert getattr(cuts, feature) == tuple(sign * maxima.to_numpy())


@pytest.mark.parametrize("values, dtype", [
    (["a", "b", "c"], "str"), (["a", "a", "b"], "str"), (["b", "a"], "str"),
    (["B", "a"], "str"), (["a", "B"], "str"), (["é", "z"], "str"), (["z", "é"], "str"),
    (["ab", "abc"], "str"), (["abc", "ab"], "str"), (["a", None, "b"], "str"),
    (["a", "b"], object), (["b", "a"], object), ([1, 2, 2], "int64"), ([1, 2, 3], "int64"),
])
def test_sorted_ids_check_agrees_with_pandas(values, dtype):
    from dashapp.features import _strictly_increasing

    ids = pd.Series(values, dtype=dtype)
    assert _strictly_increasing(ids) == (ids.is_monotonic_increasing and ids.is_unique
                                         and not ids.hasnans)
