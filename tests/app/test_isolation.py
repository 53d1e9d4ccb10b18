"""Two users, one app: B's callbacks, downloads and background jobs carrying A's ids get
nothing of A's, and identical background inputs at the same time give each their own result."""

from __future__ import annotations

import base64
import json
import time

import pytest

from app import create_app
from benchmarks.interactive import Client
from callbacks.customers import download
from callbacks.segments import request_of
from dashapp import accounts, auth
from dashapp.analysis import Controls
from dashapp.datasets import DatasetMissingError
from layouts import ids

SALES = ("sales_data_sample", "sales_data_sample.csv")
#: Customers of the sales file (A's); nothing of B's data (the mall sample) has them.
A_CUSTOMERS = ("Land of Toys Inc.", "Euro Shopping Channel", "Mini Gifts Distributors Ltd.")
B_EMAIL = "bea@example.com"


def _request(values: dict) -> dict:
    """The background job's input for these controls (ANALYSIS_REQUEST)."""
    return {f"{ids.ANALYSIS_REQUEST}.data": request_of(
        values[f"{ids.DATASET}.data"], *(values[f"{name}.value"] for name in (
            ids.ALGORITHM, ids.K_AUTO, ids.K_SLIDER, ids.FEATURES, ids.SCALING, ids.PCA,
            ids.SEED)))}


def _pattern(client: Client, output: str, kind: str, prop: str = "n_clicks") -> str:
    """The "id.prop" key under which Client.call takes a pattern (ALL) input's list."""
    _, entry = client._entry(output)
    spec = next(i for i in entry["inputs"] + entry["state"]
                if i["id"].startswith("{") and json.loads(i["id"])["type"] == kind
                and i["property"] == prop)
    return f"{spec['id']}.{prop}"


def _clicked(kind: str, dataset_id: str) -> str:
    return json.dumps({"index": dataset_id, "type": kind}, separators=(",", ":")) + ".n_clicks"


def _post(client: Client, output: str, values: dict, changed: str | None = None):
    """``(status, body)`` of a callback; 204 is PreventUpdate (nothing sent back)."""
    try:
        _, _, body = client.call(output, values, timeout=90, changed=changed)
    except RuntimeError as err:
        if "HTTP 204" in str(err):
            return 204, None
        raise
    return 200, body


@pytest.fixture
def two_users(settings, shared_data, login_client):
    app = create_app(settings)
    a_http, b_http = login_client(app), login_client(app, B_EMAIL)
    services = auth.services_of(app.server)
    a = accounts.user_id_of(services.db, "ana@example.com")
    b = accounts.user_id_of(services.db, B_EMAIL)
    sales = services.add_dataset(a, shared_data.joinpath(*SALES).read_bytes(),
                                 "sales_data_sample.csv")
    services.analysis(a, sales.id, None, Controls())
    return app, services, (a, Client(app, a_http)), (b, Client(app, b_http)), sales


def test_iso001_b_callbacks_with_a_dataset_id_get_nothing_of_a(two_users):
    app, services, (a, _), (b, client), sales = two_users
    missing = str(DatasetMissingError())
    store = {"dataset": sales.id, "mapping": None, "dayfirst": None}
    state = {**store, "controls": Controls().to_dict()}
    bodies = []

    def post(output, values, changed=None):
        status, body = _post(client, output, values, changed)
        bodies.append(json.dumps(body))
        return status, (body or {}).get("response", {})

    # Opening, re-mapping, renaming and deleting A's dataset: an alert, nothing changes.
    open_key = _pattern(client, ids.DATASET, "dataset-open")
    status, got = post(ids.DATASET, {open_key: [{"id": ids.dataset_open(sales.id),
                                                 "property": "n_clicks", "value": 1}]},
                       changed=_clicked("dataset-open", sales.id))
    assert status == 200 and ids.DATASET not in got
    assert missing in json.dumps(got[ids.DATASETS_ALERT])
    status, got = post(ids.DATASET, {f"{ids.MAPPING_APPLY}.n_clicks": 1,
                                     f"{ids.DATASET}.data": store},
                       changed=f"{ids.MAPPING_APPLY}.n_clicks")
    assert ids.DATASET not in got and missing in json.dumps(got[ids.MAPPING_ALERT])
    status, got = post(ids.DATASET, {f"{ids.DELETE_YES}.n_clicks": 1,
                                     f"{ids.DELETE_PENDING}.data": sales.id},
                       changed=f"{ids.DELETE_YES}.n_clicks")
    assert ids.DATASET not in got and missing in json.dumps(got[ids.DATASETS_ALERT])
    delete_key = _pattern(client, ids.DELETE_PENDING, "dataset-delete")
    status, _ = post(ids.DELETE_PENDING, {delete_key: [{"id": ids.dataset_delete(sales.id),
                                                        "property": "n_clicks", "value": 1}]},
                     changed=_clicked("dataset-delete", sales.id))
    assert status == 204
    status, got = post(ids.DATASETS_CHANGED, {f"{ids.RENAME_APPLY}.n_clicks": 1,
                                              f"{ids.RENAME_INPUT}.value": "mine now",
                                              f"{ids.DATASET}.data": store})
    assert ids.DATASETS_CHANGED not in got and missing in json.dumps(got)
    assert services.dataset(a, sales.id).name == "sales_data_sample.csv"
    assert services.datasets.path(a, sales.id).is_file()

    # Every view of A's dataset or analysis: an alert, an empty figure or PreventUpdate.
    status, got = post(ids.DATASET_INFO, {f"{ids.DATASET}.data": store})
    assert ids.REPORT not in got and missing in json.dumps(got[ids.DATASET_INFO])
    for output in (ids.FEATURES, ids.EXPLORE_FEATURE):
        status, got = post(output, {f"{ids.DATASET}.data": store})
        assert status == 204 or "recency" not in json.dumps(got)
    for output, extra in ((ids.HISTOGRAM, {f"{ids.EXPLORE_FEATURE}.value": "monetary"}),
                          (ids.RF_HEATMAP, {f"{ids.RF_VALUE}.value": "customers"})):
        status, got = post(output, {f"{ids.DATASET}.data": store, **extra})
        assert missing in json.dumps(got[output])
    follow = {f"{ids.ANALYSIS}.data": state, f"{ids.X_AXIS}.value": "recency",
              f"{ids.Y_AXIS}.value": "monetary", f"{ids.BUBBLE_X}.value": "recency",
              f"{ids.BUBBLE_Y}.value": "monetary", f"{ids.BUBBLE_SIZE}.value": "frequency",
              f"{ids.SELECTION}.data": []}
    for output in (ids.SUMMARY, ids.SCATTER_2D, ids.BUBBLE, ids.RADAR, ids.GRID_WRAP):
        status, _ = post(output, follow)
        assert status == 204, output
    status, got = post(ids.GRID, {f"{ids.GRID}.getRowsRequest": {"startRow": 0, "endRow": 100},
                                  f"{ids.ANALYSIS}.data": state})
    assert got[ids.GRID]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    for button in (ids.DOWNLOAD_CSV, ids.DOWNLOAD_XLSX, ids.DOWNLOAD_CONTACTS):
        status, got = post(ids.DOWNLOAD, {f"{button}.n_clicks": 1, f"{ids.ANALYSIS}.data": state,
                                          f"{ids.SELECTION}.data": [0, 1]},
                           changed=f"{button}.n_clicks")
        assert ids.DOWNLOAD not in got and missing in json.dumps(got[ids.CUSTOMERS_ALERT])

    # The background jobs, in their worker processes, refuse it too.
    controls = {f"{ids.DATASET}.data": store, f"{ids.ALGORITHM}.value": "kmeans",
                f"{ids.K_AUTO}.value": True, f"{ids.K_SLIDER}.value": 4,
                f"{ids.FEATURES}.value": [], f"{ids.SCALING}.value": "standard",
                f"{ids.PCA}.value": False, f"{ids.SEED}.value": 0}
    status, got = post(ids.ANALYSIS_REQUEST, controls)  # the cache-answering callback
    assert set(got) == {ids.SEGMENT_ALERT} and missing in json.dumps(got[ids.SEGMENT_ALERT])
    status, got = post(ids.ANALYSIS_JOB, _request(controls))
    answer = got[ids.ANALYSIS_JOB]["data"]
    assert answer["state"] is None and missing in json.dumps(answer["alert"])
    status, got = post("segments-metric-stability", {f"{ids.ANALYSIS}.data": state})
    assert got["segments-metric-stability"]["children"] == missing

    # B's own list shows B's first dataset (the default sample), not A's.
    status, got = post(ids.DATASET_LIST, {f"{ids.DATASET}.data": store})
    assert "sales_data_sample" not in json.dumps(got)
    text = "\n".join(bodies)
    for name in A_CUSTOMERS:
        assert name not in text
    assert "CUSTOMERNAME" not in text and "92 customers" not in text


def test_iso002_b_downloads_and_services_with_a_ids_raise_as_missing(two_users):
    _, services, (a, _), (b, _), sales = two_users
    state = {"dataset": sales.id, "mapping": None, "controls": Controls().to_dict()}
    nowhere = {**state, "dataset": "f" * 32}
    for target in (state, nowhere):
        for kind in ("csv", "xlsx", "contacts"):
            with pytest.raises(DatasetMissingError) as caught:
                download(services, b, target, kind, [{"customer_id": A_CUSTOMERS[0]}], [0])
            assert str(caught.value) == str(DatasetMissingError())
        for call in (lambda t=target: services.prepared(b, t["dataset"]),
                     lambda t=target: services.analysis(b, t["dataset"], None, Controls()),
                     lambda t=target: services.stability(b, t["dataset"], None, Controls()),
                     lambda t=target: services.from_state(b, t),
                     lambda t=target: services.grid_frame(b, t),
                     lambda t=target: services.delete_dataset(b, t["dataset"]),
                     lambda t=target: services.append_customers(b, t["dataset"],
                                                                [{"CUSTOMERNAME": "x"}])):
            with pytest.raises(DatasetMissingError):
                call()
    # A still has everything, and nothing of A's is under B's folder.
    assert len(services.grid_frame(a, state)) == 92
    assert not (services.datasets.user_dir(b) / "datasets").exists() or not any(
        p.name.startswith(sales.id) for p in (services.datasets.user_dir(b) / "datasets")
        .iterdir())


def _start(client: Client, output: str, values: dict) -> tuple[str, dict]:
    """Post a background callback without waiting: its poll URL and body."""
    key, entry = client._entry(output)
    outputs = []
    for part in key.strip(".").split("..."):
        name, prop = part.split("@")[0].rsplit(".", 1)
        outputs.append({"id": name, "property": prop})
    body = {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [{"id": s["id"], "property": s["property"],
                        "value": values.get(f"{s['id']}.{s['property']}")}
                       for s in entry["inputs"]],
            "state": [], "changedPropIds": [f"{ids.ANALYSIS_REQUEST}.data"]}
    url = f"/_dash-update-component?endId={client.end_id}"
    started = client.http.post(url, json=body)
    assert started.status_code == 200, started.get_data(as_text=True)
    handles = started.get_json()
    return f"{url}&cacheKey={handles['cacheKey']}&job={handles['job']}", body


def _answers(jobs: dict) -> dict:
    """Poll every started segmentation job until each has answered: their answers
    (``{"request", "state", "alert"}``)."""
    answers, deadline = {}, time.monotonic() + 120
    while len(answers) < len(jobs):
        assert time.monotonic() < deadline, "background jobs did not answer"
        for who, (client, url, body) in jobs.items():
            if who in answers:
                continue
            polled = client.http.post(url, json=body)
            assert polled.status_code in (200, 204)
            if polled.status_code == 200 and "response" in (polled.get_json() or {}):
                answers[who] = polled.get_json()["response"][ids.ANALYSIS_JOB]["data"]
        time.sleep(0.05)
    return answers


def _controls(store: dict) -> dict:
    return {f"{ids.DATASET}.data": store, f"{ids.ALGORITHM}.value": "kmeans",
            f"{ids.K_AUTO}.value": False, f"{ids.K_SLIDER}.value": 3,
            # A customer table without these segments on its own attributes instead.
            f"{ids.FEATURES}.value": ["recency", "frequency", "monetary"],
            f"{ids.SCALING}.value": "standard",
            f"{ids.PCA}.value": False, f"{ids.SEED}.value": 0}


def test_iso003_identical_background_inputs_at_once_give_each_user_their_own(two_users,
                                                                             shared_data):
    _, services, (a, a_client), (b, b_client), sales = two_users
    missing = str(DatasetMissingError())
    # Exactly the same payload from both at the same time: A's own dataset id. A gets the
    # analysis; B, whose job reads B's user from B's cookie, gets the alert, never A's result.
    same = _controls({"dataset": sales.id, "mapping": None, "dayfirst": None})
    for order in (("a", "b"), ("b", "a")):
        clients = {"a": a_client, "b": b_client}
        jobs = {}
        for who in order:
            url, body = _start(clients[who], ids.ANALYSIS_JOB, _request(same))
            jobs[who] = (clients[who], url, body)
        answers = _answers(jobs)
        assert answers["a"]["state"] is not None, answers["a"]
        assert answers["a"]["state"]["dataset"] == sales.id
        assert answers["b"]["state"] is None
        assert missing in json.dumps(answers["b"]["alert"])
    # Each with a dataset of their own, identical controls at once: each their own customers.
    mall = services.add_dataset(b, (shared_data / "mall_customers" / "Mall_Customers.csv")
                                .read_bytes(), "Mall_Customers.csv")
    stores = {"a": {"dataset": sales.id, "mapping": None, "dayfirst": None},
              "b": {"dataset": mall.id, "mapping": None, "dayfirst": None}}
    jobs = {}
    for who, client in (("a", a_client), ("b", b_client)):
        url, body = _start(client, ids.ANALYSIS_JOB, _request(_controls(stores[who])))
        jobs[who] = (client, url, body)
    answers = _answers(jobs)
    a_state, b_state = (answers[w]["state"] for w in ("a", "b"))
    a_prepared, a_analysis = services.from_state(a, a_state)
    b_prepared, b_analysis = services.from_state(b, b_state)
    assert (len(a_prepared.customers), a_analysis.segmentation.k) == (92, 3)
    assert (len(b_prepared.customers), b_analysis.segmentation.k) == (200, 3)
    assert a_analysis.segmentation.features == ("recency", "frequency", "monetary")
    assert "Age" in b_analysis.segmentation.features
    # And B's contact list holds B's customers only.
    sent = download(services, b, b_state, "contacts", None, [])
    text = base64.b64decode(sent["content"]).decode("utf-8-sig")
    assert not any(name in text for name in A_CUSTOMERS)
    assert len(text.strip().splitlines()) == 201
