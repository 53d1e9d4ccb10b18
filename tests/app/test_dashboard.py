"""The dashboard without a browser: pages answer, ids match, each callback's handler works."""

from __future__ import annotations

import base64
import io
import json

import pandas as pd
import pytest
from dash.exceptions import PreventUpdate

import layouts.ids as ids
from app import SESSION_COOKIE, create_app, session_key
from callbacks.common import loaded
from callbacks.customers import download
from callbacks.data import load_dataset
from dashapp import views
from dashapp.analysis import Controls, segment_params
from dashapp.errors import PersonaError, TooLargeError
from dashapp.services import DatasetMissingError, Services
from dashapp.settings import Limits, Settings

SALES = ("sales_data_sample", "sales_data_sample.csv")


def _layout_ids(component) -> set[str]:
    found = set()
    if isinstance(component, dict):
        props = component.get("props", {})
        if "id" in props:
            found.add(props["id"] if isinstance(props["id"], str) else json.dumps(props["id"]))
        for value in props.values():
            found |= _layout_ids(value)
    elif isinstance(component, list):
        for item in component:
            found |= _layout_ids(item)
    return found


def _pattern_types() -> set[str]:
    return {ids.mapping_field(None)["type"], ids.persona_card(None)["type"],
            ids.range_filter(None)["type"]}


def test_app001_page_answers_and_every_callback_id_is_in_the_layout(settings):
    app = create_app(settings)
    client = app.server.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert SESSION_COOKIE in page.headers.get("Set-Cookie", "")
    assert "bootstrap.min.css" in page.get_data(as_text=True)
    assert "cdn" not in page.get_data(as_text=True).lower()
    present = _layout_ids(client.get("/_dash-layout").get_json())
    dependencies = client.get("/_dash-dependencies").get_json()
    assert len(dependencies) > 15
    for dependency in dependencies:
        items = dependency["inputs"] + dependency.get("state", [])
        outputs = dependency["output"].strip(".").split("...")
        names = [item["id"] for item in items] + [o.rsplit(".", 1)[0] for o in outputs]
        for name in names:
            if name.startswith("{"):
                assert json.loads(name)["type"] in _pattern_types(), name
            else:
                assert name in present, name


def test_app002_layout_is_a_function_and_loads_no_data_at_import(settings):
    app = create_app(settings)
    assert callable(app.layout)
    assert not (settings.instance_dir / "datasets").exists()


def test_app003_sample_loads_through_the_http_callback(settings):
    app = create_app(settings)
    client = app.server.test_client()
    client.get("/")
    body = {
        "output": f"..{ids.DATASET}.data...{ids.UPLOAD_ALERT}.children..."
                  f"{ids.MAPPING_ALERT}.children..",
        "outputs": [{"id": ids.DATASET, "property": "data"},
                    {"id": ids.UPLOAD_ALERT, "property": "children"},
                    {"id": ids.MAPPING_ALERT, "property": "children"}],
        "inputs": [{"id": ids.SAMPLE, "property": "value", "value": "mall"},
                   {"id": ids.UPLOAD, "property": "contents", "value": None},
                   {"id": ids.MAPPING_APPLY, "property": "n_clicks", "value": None}],
        "state": [{"id": ids.UPLOAD, "property": "filename", "value": None},
                  [], [], {"id": ids.DATE_ORDER, "property": "value", "value": "auto"},
                  {"id": ids.DATASET, "property": "data", "value": None}],
        "changedPropIds": [f"{ids.SAMPLE}.value"],
    }
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    store = answer.get_json()["response"][ids.DATASET]["data"]
    assert store["filename"] == "mall_style_customers.csv"
    assert Services(settings).prepared_for(store).shape == "customers"


def _upload(path) -> str:
    return "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()


def test_app004_upload_is_stored_and_prepared(settings, shared_data):
    services = Services(settings)
    store = load_dataset(services, ids.UPLOAD, None, _upload(shared_data.joinpath(*SALES)),
                         "sales_data_sample.csv", None, None)
    prepared = services.prepared_for(store)
    assert prepared.shape == "transactions"
    assert prepared.report.customers == 92
    assert services.dataset_bytes(store["key"])[1] == "sales_data_sample.csv"


def test_app005_broken_and_oversized_uploads_raise_messages(settings, tmp_path):
    services = Services(settings)
    png = tmp_path / "photo.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(PersonaError, match="(?i)png|image|not a table|binary"):
        load_dataset(services, ids.UPLOAD, None, _upload(png), "photo.csv", None, None)
    small = Services(Settings(instance_dir=settings.instance_dir,
                              limits=Limits(max_bytes=1000)))
    big = tmp_path / "big.csv"
    big.write_text("customer_id,age\n" + "".join(f"{i},{i % 70}\n" for i in range(500)))
    with pytest.raises(TooLargeError, match="limited to"):
        load_dataset(small, ids.UPLOAD, None, _upload(big), "big.csv", None, None)
    with pytest.raises(PersonaError, match="damaged"):
        load_dataset(services, ids.UPLOAD, None, "data:text/csv;base64,@@@", "x.csv", None,
                     None)
    with pytest.raises(DatasetMissingError):
        services.dataset_bytes("../../etc")


def test_app006_mapping_change_reads_the_file_again(settings, shared_data):
    services = Services(settings)
    first = load_dataset(services, ids.UPLOAD, None, _upload(shared_data.joinpath(*SALES)),
                         "sales_data_sample.csv", None, None)
    fields = {f["role"]: f for f in views.mapping_fields(services.prepared(first["key"]))}
    assert fields["customer_id"]["value"] == "CUSTOMERNAME"
    assert fields["order_date"]["value"] == "ORDERDATE"
    mapped = load_dataset(services, "mapping", None, None, None,
                          {"customer_id": "COUNTRY"}, first)
    assert services.prepared(mapped["key"], mapped["mapping"]).report.customers == 19


def test_app007_analysis_of_the_sales_data_matches_the_published_figures(settings,
                                                                         shared_data):
    services = Services(settings)
    key = services.store_dataset(shared_data.joinpath(*SALES).read_bytes(), "sales.csv")
    analysis = services.analysis(key, None, Controls())
    seg = analysis.segmentation
    assert seg.k == 4 and analysis.auto
    assert seg.metrics.silhouette == pytest.approx(0.4945, abs=5e-4)
    assert sorted(seg.sizes.tolist()) == [2, 12, 29, 49]
    assert views.metric_values(analysis)["silhouette"] == "0.494"
    found, note = services.stability(key, None, Controls())
    assert found.mean_ari == pytest.approx(1.0) and note == ""
    assert views.stability_value(found) == "1.000"
    five = services.analysis(key, None, Controls(k=5))
    assert five.segmentation.k == 5 and len(five.personas) == 5
    with pytest.raises(PersonaError, match="k|customers"):
        services.analysis(key, None, Controls(k=93))


def test_app008_controls_are_checked_against_the_dataset(settings):
    services = Services(settings)
    key, _ = services.sample_dataset("mall")
    prepared = services.prepared(key)
    with pytest.raises(PersonaError, match="no numeric feature 'recency'"):
        segment_params(prepared, Controls(features=("recency",)))
    with pytest.raises(PersonaError, match="Unknown algorithm"):
        segment_params(prepared, Controls(algorithm="magic"))
    params = segment_params(prepared, Controls(pca=True))
    assert params.pca == 2 and params.features == prepared.default_features


def test_app009_csv_download_holds_exactly_the_rows_shown(settings, shared_data):
    services = Services(settings)
    key = services.store_dataset(shared_data.joinpath(*SALES).read_bytes(), "sales.csv")
    analysis = services.analysis(key, None, Controls())
    prepared = services.prepared(key)
    frame = views.grid_frame(prepared, analysis)
    shown = views.grid_rows(frame[frame["segment"] == 1].sort_values("monetary"))
    state = {"dataset": key, "mapping": None, "controls": Controls().to_dict(),
             "filename": "sales.csv"}
    sent = download(services, state, "csv", shown, [1])
    text = base64.b64decode(sent["content"]).decode("utf-8-sig")
    got = pd.read_csv(io.StringIO(text))
    assert len(got) == 29 and set(got["segment"]) == {1}
    assert got["customer_id"].tolist() == [r["customer_id"] for r in shown]
    assert sent["filename"].endswith(".csv")
    contacts = download(services, state, "contacts", shown, [0])
    listed = pd.read_csv(io.StringIO(base64.b64decode(contacts["content"]).decode("utf-8-sig")))
    assert len(listed) == 2 and set(listed["segment"]) == {0}
    workbook = download(services, state, "xlsx", shown, [1])
    assert len(pd.read_excel(io.BytesIO(base64.b64decode(workbook["content"])))) == 29


def test_app010_background_results_are_cached_per_session(settings):
    app = create_app(settings)
    with app.server.test_request_context(headers={"Cookie": f"{SESSION_COOKIE}=abc"}):
        assert session_key() == "abc"
    with app.server.test_request_context():
        assert session_key() == ""


def test_app011_past_the_browser_limit_downloads_follow_the_filter_model(tmp_path,
                                                                        shared_data):
    services = Services(Settings(instance_dir=tmp_path / "instance", grid_client_rows=50))
    key = services.store_dataset(shared_data.joinpath(*SALES).read_bytes(), "sales.csv")
    state = {"dataset": key, "mapping": None, "controls": Controls().to_dict(),
             "filename": "sales.csv"}
    model = {"segment": {"filterType": "number", "type": "equals", "filter": 1}}
    order = [{"colId": "monetary", "sort": "desc", "sortIndex": 0}]
    sent = download(services, state, "csv", None, [1], model, order)
    got = pd.read_csv(io.StringIO(base64.b64decode(sent["content"]).decode("utf-8-sig")))
    assert len(got) == 29 and set(got["segment"]) == {1}
    assert got["monetary"].is_monotonic_decreasing
    with pytest.raises(PersonaError, match="does not have"):
        download(services, state, "csv", None, [], {"nope": {"filterType": "text"}}, None)


def test_app012_views_keep_their_figures_when_the_dataset_is_gone(settings):
    services = Services(settings)
    with pytest.raises(PreventUpdate):
        loaded(services, {"dataset": "0123456789abcdef", "controls": {}})
    with pytest.raises(PreventUpdate):
        loaded(services, None)


def test_app013_ambiguous_dates_follow_the_chosen_order(settings, tmp_path):
    services = Services(settings)
    log = tmp_path / "orders.csv"
    log.write_text("customer,order,date,amount\n"
                   "a,1,01/02/2024,10\nb,2,03/04/2024,20\na,3,12/01/2024,5\n"
                   "c,4,05/06/2024,7\nb,5,02/03/2024,8\n")
    first = load_dataset(services, ids.UPLOAD, None, _upload(log), "orders.csv", None, None)
    detected = services.prepared_for(first)
    assert detected.ingested.date_ambiguous
    month_first = detected.reference_date
    day = load_dataset(services, "mapping", None, None, None, {}, first, True)
    assert day["dayfirst"] is True
    day_first = services.prepared_for(day)
    assert {month_first.date().isoformat(), day_first.reference_date.date().isoformat()} == \
        {"2024-12-02", "2024-06-06"}
    dates = next(c for c in views.report_cards(day_first) if c.title == "Dates")
    assert "day first used" in dates.value
