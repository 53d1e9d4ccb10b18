"""Saved segmentations: the saved-and-reloaded model scores as the fitted one, on real data,
for every algorithm and scaling; transactions give the training RFM; broken files; the store."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline

from dashapp import accounts, saved
from dashapp.analysis import Controls, analyse
from dashapp.db import Database, Dataset
from dashapp.errors import NoClustersFoundError, PersonaError
from dashapp.features import rfm_segment_of
from dashapp.pipeline import prepare_file, run
from dashapp.segment import ALGORITHMS, SCALINGS, SegmentParams, _auto_eps
from dashapp.settings import Limits

#: The seed report's table of customers: Age, Annual Income (k$), Spending Score (1-100).
MALL = ("mall_customers", "Mall_Customers.csv")
SALES = ("sales_data_sample", "sales_data_sample.csv")
RETAIL = ("online_retail", "online_retail_sample_20000.csv")


def _prepare(shared_data: Path, where: tuple[str, str]):
    from dashapp.pipeline import PrepareOptions

    return prepare_file(shared_data.joinpath(*where), PrepareOptions(limits=Limits()))


@pytest.fixture(scope="module")
def sales(shared_data):
    return _prepare(shared_data, SALES)


@pytest.fixture(scope="module")
def mall(shared_data):
    return _prepare(shared_data, MALL)


@pytest.fixture(scope="module")
def retail(shared_data):
    return _prepare(shared_data, RETAIL)


def _round_trip(model: saved.SavedModel, folder: Path) -> saved.SavedModel:
    model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == [saved.ARRAYS_FILE, saved.MODEL_FILE]
    return saved.load(folder)


def _fit(prepared, algorithm: str, scaling: str, pca: int | None):
    """``pipeline.run`` with k = 4; DBSCAN, which has no k, tries eps at its automatic value
    and then at half and a third of it until it finds two clusters or more."""
    params = SegmentParams(features=prepared.default_features, algorithm=algorithm, k=4,
                           scaling=scaling, pca=pca)
    if algorithm != "dbscan":
        return run(prepared, params)
    probe = run(prepared, replace(params, algorithm="kmeans")).segmentation
    auto = _auto_eps(probe.transform(prepared.customers), params.min_samples, params.seed)
    for factor in (None, 0.5, 0.3):
        try:
            return run(prepared, replace(params, eps=None if factor is None else auto * factor))
        except NoClustersFoundError:
            continue
    raise AssertionError(f"DBSCAN found no clusters with {scaling}, pca={pca}")


CASES = list(itertools.product(("sales", "mall"), ALGORITHMS, SCALINGS, (None, 2)))


@pytest.mark.parametrize(("data", "algorithm", "scaling", "pca"), CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_saved_model_scores_as_the_fitted_one(request, tmp_path, data, algorithm, scaling, pca):
    prepared = request.getfixturevalue(data)
    result = _fit(prepared, algorithm, scaling, pca)
    seg = result.segmentation
    loaded = _round_trip(saved.from_result(result), tmp_path / "model")
    customers = prepared.customers
    values = customers[list(seg.features)].to_numpy(dtype="float64")

    np.testing.assert_allclose(loaded.transform(values), seg.transform(customers),
                               rtol=1e-12, atol=1e-12)
    ours = loaded.predict_matrix(values)
    np.testing.assert_array_equal(ours, seg.predict(customers))
    if algorithm in ("kmeans", "minibatch", "gmm"):
        # These models assign by their own rule, so the training customers keep their labels.
        np.testing.assert_array_equal(ours, seg.labels)
    else:
        # Ward's tree and DBSCAN's border points are not nearest-centre rules: a few
        # training customers sit nearer another segment's centre, the same in memory.
        assert (ours == seg.labels).mean() > 0.8

    records = customers[["customer_id", *loaded.score_fields]].to_dict("records")
    scored = loaded.predict_features(records)
    assert [r["segment"] for r in scored] == ours.tolist()
    names = {p.segment: p.name for p in result.personas}
    names.setdefault(-1, "Unclustered")
    assert [r["persona"] for r in scored] == [names[s] for s in ours]
    assert [r["customer_id"] for r in scored] == customers["customer_id"].tolist()


def test_paper_kmeans_through_analyse_keeps_personas_and_facts(sales, tmp_path):
    analysis = analyse(sales, Controls(algorithm="kmeans", k=4))
    loaded = _round_trip(saved.from_analysis(sales, analysis), tmp_path / "m")
    seg = analysis.segmentation
    assert loaded.doc["format_version"] == 1
    assert loaded.kind == "rfm" and loaded.algorithm == "kmeans"
    assert loaded.features == ("recency", "frequency", "monetary")
    assert [(s["segment"], s["persona"], s["strategy"], s["size"]) for s in loaded.segments] \
        == [(p.segment, p.name, p.strategy, p.size) for p in analysis.personas]
    assert sorted(s["size"] for s in loaded.segments) == [2, 12, 29, 49]
    assert loaded.metrics["silhouette"] == pytest.approx(0.4945, abs=5e-5)
    assert loaded.reference_date.isoformat() == "2005-06-01"
    assert loaded.cuts == sales.cuts
    assert loaded.doc["dataset_hash"] == sales.content_hash
    np.testing.assert_array_equal(loaded.arrays["model_centers"],
                                  seg.pipeline[-1].cluster_centers_)
    np.testing.assert_array_equal(loaded.arrays["scale_mean"], seg.pipeline["scale"].mean_)
    np.testing.assert_array_equal(loaded.predict_matrix(
        sales.customers[list(seg.features)].to_numpy(float)), seg.labels)


def test_a_segmentation_without_its_silhouette_is_not_saved(mall):
    # The dashboard draws a new fit before its silhouette; what is saved keeps every metric.
    from dashapp.segment import segment, with_silhouette

    params = SegmentParams(features=mall.default_features, algorithm="minibatch", k=4)
    seg = segment(mall.customers, params, silhouette=False)
    personas = run(mall, params).personas
    with pytest.raises(ValueError, match="silhouette"):
        saved.from_segmentation(mall, seg, personas)
    done = replace(seg, metrics=with_silhouette(mall.customers, seg))
    metrics = saved.from_segmentation(mall, done, personas).metrics
    assert metrics["silhouette"] == segment(mall.customers, params).metrics.silhouette


@pytest.mark.parametrize("covariance", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_of_every_covariance_type(mall, tmp_path, covariance):
    base = run(mall, SegmentParams(features=mall.default_features, algorithm="gmm", k=4))
    seg = base.segmentation
    points = seg.transform(mall.customers)
    model = GaussianMixture(4, covariance_type=covariance, random_state=0).fit(points)
    seg = replace(seg, pipeline=Pipeline([*seg.pipeline.steps[:-1], ("model", model)]),
                  label_map={0: 0, 1: 1, 2: 2, 3: 3, -1: -1})
    loaded = _round_trip(saved.from_segmentation(mall, seg, base.personas), tmp_path / "g")
    assert loaded.doc["model"]["covariance_type"] == covariance
    values = mall.customers[list(seg.features)].to_numpy(float)
    np.testing.assert_array_equal(loaded.predict_matrix(values), model.predict(points))


def _raw_records(prepared) -> list[dict]:
    """The file's lines as an API client would send them: one record per customer."""
    lines = prepared.ingested.canonical().dropna(subset=["customer_id", "order_date", "amount"])
    records = []
    for customer, group in lines.groupby("customer_id", sort=True):
        transactions = []
        for row in group.itertuples():
            line = {"order_id": row.order_id, "order_date": row.order_date.isoformat(),
                    "amount": float(row.amount)}
            if not pd.isna(row.quantity):
                line["quantity"] = float(row.quantity)
            transactions.append(line)
        records.append({"customer_id": customer, "transactions": transactions})
    return records


@pytest.mark.parametrize("data", ["sales", "retail"])
def test_transactions_reproduce_the_training_rfm(request, tmp_path, data):
    prepared = request.getfixturevalue(data)
    result = run(prepared, SegmentParams(features=prepared.default_features, k=4))
    loaded = _round_trip(saved.from_result(result), tmp_path / "t")
    scored = pd.DataFrame(loaded.predict_transactions(_raw_records(prepared)))
    training = prepared.customers.assign(segment=result.segmentation.labels)
    assert scored["customer_id"].tolist() == training["customer_id"].tolist()
    for column in ("recency", "frequency", "monetary", "tenure", "avg_order_value"):
        np.testing.assert_array_equal(scored[column].to_numpy(float),
                                      training[column].to_numpy(float), err_msg=column)
    np.testing.assert_array_equal(scored["segment"], training["segment"])

    # Scores come from the kept cut points, the rule for any new customer.
    cuts = prepared.cuts
    by_cuts = [cuts.score(r, f, m) for r, f, m in
               training[["recency", "frequency", "monetary"]].itertuples(index=False)]
    assert list(zip(scored["r_score"], scored["f_score"], scored["m_score"])) == by_cuts
    assert scored["rfm_segment"].tolist() == [rfm_segment_of(f"{r}{f}{m}")
                                              for r, f, m in by_cuts]
    # They equal the training scores wherever the training score is a function of the value.
    # The quintiles break ties by rank, so customers with equal values can straddle an edge
    # (frequency 3 on the sales data); cut points then give the lower score of the two.
    for feature, letter in zip(("recency", "frequency", "monetary"), "rfm"):
        column = f"{letter}_score"
        spread = training.groupby(feature)[column].nunique()
        clear = training[feature].map(spread).eq(1).to_numpy()
        assert clear.any()
        np.testing.assert_array_equal(scored[column].to_numpy()[clear],
                                      training[column].to_numpy()[clear], err_msg=column)
        tied = ~clear
        if tied.any():
            lowest = training.groupby(feature)[column].min()
            np.testing.assert_array_equal(scored[column].to_numpy()[tied],
                                          training[feature].map(lowest).to_numpy()[tied])


@pytest.fixture(scope="module")
def sales_model(sales, tmp_path_factory):
    result = run(sales, SegmentParams(features=sales.default_features, k=4))
    return _round_trip(saved.from_result(result), tmp_path_factory.mktemp("s") / "m")


def test_transactions_follow_the_cleaning_rules(sales_model):
    """Hand-worked against the saved reference date 2005-06-01."""
    [got] = sales_model.predict_transactions([{"customer_id": "new", "transactions": [
        {"order_id": "1", "order_date": "2005-05-01T23:59:00", "amount": 100.0},
        {"order_id": "1", "order_date": "2005-05-01T08:00:00", "amount": 50.0},
        {"order_id": 2, "order_date": "2005-05-21", "amount": 30.0},
        {"order_id": "C3", "order_date": "2005-05-30", "amount": 20.0},      # cancellation
        {"order_id": "4", "order_date": "2005-05-31", "amount": -10.0},      # return
        {"order_id": "5", "order_date": "2005-05-31", "amount": 5.0, "quantity": -1},
        {"order_id": "6", "order_date": "2005-01-10 12:00", "amount": 0.5},
    ]}])
    assert got["customer_id"] == "new"
    assert got["recency"] == 11             # 2005-06-01 - 2005-05-21: returns are no orders
    assert got["frequency"] == 3            # orders 1, 2 and 6
    assert got["monetary"] == 145.5         # 100 + 50 + 30 - 20 - 10 - 5 + 0.5
    assert got["tenure"] == 142             # since 2005-01-10
    assert got["avg_order_value"] == 48.5
    assert (got["r_score"], got["f_score"], got["m_score"]) == sales_model.cuts.score(11, 3,
                                                                                     145.5)
    assert got["rfm_segment"] == rfm_segment_of(
        f"{got['r_score']}{got['f_score']}{got['m_score']}")
    assert got["persona"] in {s["persona"] for s in sales_model.segments}


def test_time_of_day_never_shifts_recency_and_later_orders_count_negative(sales_model):
    early, late, after = sales_model.predict_transactions([
        {"transactions": [{"order_id": "1", "order_date": "2005-05-31T00:00:00",
                           "amount": 10}]},
        {"transactions": [{"order_id": "1", "order_date": "2005-05-31T23:59:59+05:00",
                           "amount": 10}]},
        {"transactions": [{"order_id": "1", "order_date": "2005-06-11", "amount": 10}]},
    ])
    assert early["recency"] == late["recency"] == 1
    assert after["recency"] == -10 and after["r_score"] == 5
    assert "customer_id" not in early


def test_a_customer_with_only_returns_has_no_orders(sales_model):
    [got] = sales_model.predict_transactions([{"transactions": [
        {"order_id": "C1", "order_date": "2005-03-01", "amount": 40}]}])
    assert (got["frequency"], got["monetary"], got["recency"], got["avg_order_value"]) == \
        (0, -40, 92, 0)


def test_features_and_transactions_mix_in_one_call(sales_model):
    feature_row = {"customer_id": 7, "recency": 11, "frequency": 3, "monetary": 145.5}
    tx_row = {"customer_id": "t", "transactions": [
        {"order_id": "1", "order_date": "2005-05-21", "amount": 145.5},
        {"order_id": "2", "order_date": "2005-05-01", "amount": 0.0},
        {"order_id": "3", "order_date": "2005-01-10", "amount": 0.0}]}
    by_features, by_transactions = sales_model.predict([feature_row, tx_row])
    assert by_features["customer_id"] == 7
    for key in ("segment", "persona", "r_score", "f_score", "m_score", "rfm_segment"):
        assert by_features[key] == by_transactions[key]


GOOD = {"recency": 1, "frequency": 2, "monetary": 3}
BAD_VALUES = [
    ({"frequency": 2, "monetary": 3}, "customers[0].recency", "missing"),
    ({"recency": 1, "frequency": 2}, "customers[0].monetary", "missing"),
    ({**GOOD, "recency": "12"}, "customers[0].recency", "text"),
    ({**GOOD, "recency": True}, "customers[0].recency", "true/false"),
    ({**GOOD, "frequency": None}, "customers[0].frequency", "null"),
    ({**GOOD, "recency": math.nan}, "customers[0].recency", "finite"),
    ({**GOOD, "monetary": math.inf}, "customers[0].monetary", "finite"),
    ({**GOOD, "monetary": -math.inf}, "customers[0].monetary", "finite"),
    ({**GOOD, "monetary": 10 ** 400}, "customers[0].monetary", "finite"),
    ({**GOOD, "recency": -1}, "customers[0].recency", "between 0"),
    ({**GOOD, "monetary": 1e13}, "customers[0].monetary", "between"),
    ({**GOOD, "recency": [1]}, "customers[0].recency", "not list"),
    ({**GOOD, "customer_id": {"a": 1}}, "customers[0].customer_id", "text"),
]


@pytest.mark.parametrize(("record", "field", "words"), BAD_VALUES)
def test_bad_feature_values_name_their_field(sales_model, record, field, words):
    with pytest.raises(saved.ScoringInputError) as caught:
        sales_model.predict_features([record])
    assert caught.value.field == field
    assert words in caught.value.message
    assert isinstance(caught.value, PersonaError)


def test_the_index_of_the_bad_customer_is_named(sales_model):
    with pytest.raises(saved.ScoringInputError) as caught:
        sales_model.predict([GOOD, GOOD, GOOD, {**GOOD, "frequency": "x"}])
    assert caught.value.field == "customers[3].frequency"
    with pytest.raises(saved.ScoringInputError) as caught:
        sales_model.predict([GOOD, "not an object"])
    assert caught.value.field == "customers[1]"


BAD_TRANSACTIONS = [
    ({"transactions": []}, "customers[0].transactions"),
    ({"transactions": "x"}, "customers[0].transactions"),
    ({"transactions": [1]}, "customers[0].transactions[0]"),
    ({"transactions": [{"order_id": "1", "amount": 1}]}, "customers[0].transactions[0].order_date"),
    ({"transactions": [{"order_id": "1", "order_date": "31/05/2005", "amount": 1}]},
     "customers[0].transactions[0].order_date"),
    ({"transactions": [{"order_id": "1", "order_date": "2005-02-30", "amount": 1}]},
     "customers[0].transactions[0].order_date"),
    ({"transactions": [{"order_id": "1", "order_date": 20050530, "amount": 1}]},
     "customers[0].transactions[0].order_date"),
    ({"transactions": [{"order_id": "1", "order_date": "2005-05-30", "amount": "1"}]},
     "customers[0].transactions[0].amount"),
    ({"transactions": [{"order_id": "1", "order_date": "2005-05-30", "amount": math.nan}]},
     "customers[0].transactions[0].amount"),
    ({"transactions": [{"order_id": "1", "order_date": "2005-05-30", "amount": 1,
                        "quantity": math.inf}]}, "customers[0].transactions[0].quantity"),
    ({"transactions": [{"order_date": "2005-05-30", "amount": 1}]},
     "customers[0].transactions[0].order_id"),
    ({"transactions": [{"order_id": True, "order_date": "2005-05-30", "amount": 1}]},
     "customers[0].transactions[0].order_id"),
]


@pytest.mark.parametrize(("record", "field"), BAD_TRANSACTIONS)
def test_bad_transactions_name_their_field(sales_model, record, field):
    with pytest.raises(saved.ScoringInputError) as caught:
        sales_model.predict_transactions([record])
    assert caught.value.field == field


def test_a_customer_table_segmentation_takes_no_transactions(mall, tmp_path):
    model = saved.from_result(run(mall, SegmentParams(features=mall.default_features, k=5)))
    assert model.kind == "attributes" and model.cuts is None
    with pytest.raises(saved.ScoringInputError) as caught:
        model.predict([{"transactions": [{"order_id": 1, "order_date": "2020-01-01",
                                          "amount": 1}]}])
    assert caught.value.field == "customers[0].transactions"
    [got] = model.predict_features([{"Age": 23, "Annual Income (k$)": 120,
                                     "Spending Score (1-100)": 90}])
    assert set(got) == {"segment", "persona", "strategy", "Age", "Annual Income (k$)",
                        "Spending Score (1-100)"}


# ---- files -------------------------------------------------------------------------------


def test_files_are_json_and_plain_arrays(sales_model, tmp_path):
    sales_model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc == sales_model.doc
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        assert set(npz.files) == set(sales_model.arrays)
        assert all(npz[name].dtype == np.float64 for name in npz.files)
    # Saving again replaces the folder whole; no temporary folder is left behind.
    sales_model.save(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def _broken(folder: Path, model: saved.SavedModel, *, doc=None, arrays=None) -> Path:
    model.save(folder)
    if doc is not None:
        (folder / "model.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    if arrays is not None:
        with open(folder / "arrays.npz", "wb") as handle:
            np.savez(handle, **arrays)
    return folder


def test_broken_or_foreign_files_are_refused_clearly(sales_model, tmp_path):
    doc, arrays = sales_model.doc, sales_model.arrays
    cases = {
        "version": dict(doc=dict(doc, format_version=2)),
        "not json": dict(doc="{not json"),
        "nan": dict(doc=json.dumps(doc).replace('"silhouette": 0', '"silhouette": NaN, "x": 0')),
        "foreign json": dict(doc=json.dumps([1, 2, 3])),
        "kind": dict(doc=dict(doc, kind="other")),
        "algorithm": dict(doc=dict(doc, model=dict(doc["model"], algorithm="svm"))),
        "no features": dict(doc=dict(doc, features=[])),
        "label map": dict(doc=dict(doc, label_map={"0": 0, "1": 5})),
        "shape": dict(arrays=dict(arrays, scale_mean=np.zeros(2))),
        "missing array": dict(arrays={k: v for k, v in arrays.items() if k != "model_centers"}),
        "non-finite": dict(arrays=dict(arrays, scale_scale=np.array([1.0, np.nan, 1.0]))),
        "zero scale": dict(arrays=dict(arrays, scale_scale=np.array([1.0, 0.0, 1.0]))),
        "cuts": dict(doc=dict(doc, rfm=dict(doc["rfm"], cuts={"recency": [1]}))),
        "pickled object": dict(arrays=dict(arrays, model_centers=np.array([{"a": 1}],
                                                                          dtype=object))),
    }
    for name, change in cases.items():
        folder = _broken(tmp_path / name.replace(" ", "_"), sales_model, **change)
        with pytest.raises(saved.SavedModelError) as caught:
            saved.load(folder)
        assert "save" in caught.value.message, name
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(saved.SavedModelError, match="no model file"):
        saved.load(empty)
    (tmp_path / "no_arrays").mkdir()
    (tmp_path / "no_arrays" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(saved.SavedModelError, match="no arrays file"):
        saved.load(tmp_path / "no_arrays")
    (tmp_path / "zip").mkdir()
    (tmp_path / "zip" / "model.json").write_text(json.dumps(doc))
    (tmp_path / "zip" / "arrays.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(saved.SavedModelError, match="cannot be read"):
        saved.load(tmp_path / "zip")


# ---- the store ---------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'persona.db'}")
    database.create_all()
    return database


@pytest.fixture
def store(db, tmp_path) -> saved.SegmentationStore:
    return saved.SegmentationStore(db, tmp_path / "instance")


def _users(db):
    return (accounts.create_user(db, "ana@example.com", "a long password"),
            accounts.create_user(db, "bo@example.com", "another long password"))


def test_store_save_list_get_rename_delete(store, db, sales_model, tmp_path):
    ana, bo = _users(db)
    first = store.save(ana, None, "  Sales   k4 ", sales_model)
    second = store.save(ana, None, "Second", sales_model)
    folder = tmp_path / "instance" / "users" / str(ana) / "segmentations" / first
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "model.json"]
    listed = store.list(ana)
    assert {m["id"] for m in listed} == {first, second}
    entry = next(m for m in listed if m["id"] == first)
    assert entry["name"] == "Sales k4" and entry["kind"] == "rfm"
    assert entry["summary"]["features"] == ["recency", "frequency", "monetary"]
    assert entry["summary"]["personas"] == [s["persona"] for s in sales_model.segments]
    meta, model = store.get(ana, first)
    assert meta["id"] == first and model.doc["segments"] == sales_model.doc["segments"]
    np.testing.assert_array_equal(model.arrays["model_centers"],
                                  sales_model.arrays["model_centers"])
    assert store.rename(ana, first, "Renamed")["name"] == "Renamed"
    assert store.meta(ana, first)["name"] == "Renamed"
    store.delete(ana, first)
    assert not folder.exists()
    assert [m["id"] for m in store.list(ana)] == [second]
    assert store.list(bo) == []


def test_someone_elses_id_is_exactly_a_missing_one(store, db, sales_model):
    ana, bo = _users(db)
    mine = store.save(ana, None, "Ana's", sales_model)
    messages = set()
    for user, segmentation_id in ((bo, mine), (ana, "0" * 32), (bo, "../../1/segmentations"),
                                  (ana, "ABC"), (ana, None), (ana, 12)):
        for call in (lambda: store.get(user, segmentation_id),
                     lambda: store.meta(user, segmentation_id),
                     lambda: store.rename(user, segmentation_id, "x"),
                     lambda: store.delete(user, segmentation_id)):
            with pytest.raises(saved.SegmentationNotFoundError) as caught:
                call()
            messages.add(caught.value.message)
    assert messages == {saved.SegmentationStore.NOT_FOUND}
    assert store.meta(ana, mine)["name"] == "Ana's"


def test_names_and_datasets_are_checked(store, db, sales_model):
    ana, bo = _users(db)
    for name in ("", "   ", None, "x" * 201, "tab\x00"):
        with pytest.raises(PersonaError):
            store.save(ana, None, name, sales_model)
    with db.write() as s:
        s.add(Dataset(id="b" * 32, user_id=bo, name="Bo's", filename="f.csv",
                      content_hash="h"))
        s.add(Dataset(id="a" * 32, user_id=ana, name="Ana's", filename="f.csv",
                      content_hash="h"))
    with pytest.raises(PersonaError, match="dataset"):
        store.save(ana, "b" * 32, "With Bo's data", sales_model)
    saved_id = store.save(ana, "a" * 32, "With my data", sales_model)
    assert store.meta(ana, saved_id)["dataset_id"] == "a" * 32
    assert len(store.list(ana)) == 1


def test_a_broken_folder_is_an_error_not_a_crash(store, db, sales_model, tmp_path):
    ana, _ = _users(db)
    segmentation_id = store.save(ana, None, "Will break", sales_model)
    (store.folder(ana, segmentation_id) / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(saved.SavedModelError):
        store.get(ana, segmentation_id)
    store.delete(ana, segmentation_id)
    assert store.list(ana) == []
