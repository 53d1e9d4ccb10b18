"""Saved models in the dashboard through Dash's HTTP callbacks: save the current
segmentation, list, reopen, rename, delete, score a new customer, append it; and nothing of
one user's reaches another through a callback payload."""

from __future__ import annotations

import json

import pytest

import layouts.ids as ids
from app import create_app
from dashapp import accounts, auth, saved
from dashapp.analysis import Controls

EMAIL_B = "bo@example.com"
PASSWORD_B = "bo's long password"


class Callbacks:
    """Posts one callback of ``app``, found by an input it listens to, as the renderer does."""

    def __init__(self, app, http) -> None:
        self.app, self.http = app, http
        http.get("/")

    def _entry(self, input_id: str, output: str | None) -> tuple[str, dict]:
        for key, entry in self.app.callback_map.items():
            if output and f"{output}." not in key:
                continue
            for spec in entry["inputs"]:
                name = spec["id"]
                if name == input_id or (name.startswith("{")
                                        and json.loads(name)["type"] == input_id):
                    return key, entry
        raise KeyError(input_id)

    def post(self, input_id: str, values: dict[str, object], fired: str | None = None,
             output: str | None = None):
        """``values``: "id.prop" -> value; a pattern's "type.prop" -> its list of
        ``{"id", "property", "value"}``; ``output`` picks among callbacks of one input.
        Returns (status, response by output id)."""
        key, entry = self._entry(input_id, output)
        outputs = []
        for part in key.strip(".").split("..."):
            name, prop = part.split("@")[0].rsplit(".", 1)
            outputs.append({"id": json.loads(name) if name.startswith("{") else name,
                            "property": prop})

        def item(spec):
            name = spec["id"]
            if name.startswith("{"):
                return values.get(f"{json.loads(name)['type']}.{spec['property']}", [])
            return {"id": name, "property": spec["property"],
                    "value": values.get(f"{name}.{spec['property']}")}

        first = entry["inputs"][0]
        body = {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": [item(i) for i in entry["inputs"]],
                "state": [item(s) for s in entry["state"]],
                "changedPropIds": [fired or f"{first['id']}.{first['property']}"]}
        answer = self.http.post("/_dash-update-component", json=body)
        if answer.status_code == 204:
            return 204, {}
        assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
        return 200, answer.get_json()["response"]


def _fields(values: list) -> list[dict]:
    return [{"id": ids.model_field(i), "property": "value", "value": v}
            for i, v in enumerate(values)]


def _field_ids(n: int) -> list[dict]:
    return [{"id": ids.model_field(i), "property": "id", "value": ids.model_field(i)}
            for i in range(n)]


def _prop(pattern_id: dict, prop: str) -> str:
    """A pattern-matched prop as the renderer names it in ``changedPropIds``."""
    return json.dumps(pattern_id, sort_keys=True, separators=(",", ":")) + "." + prop


def _text(component) -> str:
    return json.dumps(component)


@pytest.fixture
def app(settings):
    return create_app(settings)


def _analysed(services, user: int, sample: str) -> dict:
    info = services.add_sample(user, sample)
    state = {"dataset": info.id, "mapping": None, "dayfirst": None,
             "controls": Controls(k=4).to_dict()}
    services.analysis(user, info.id, None, state["controls"])
    return state


def _save(calls: Callbacks, state: dict, name: str = "") -> tuple[dict, str | None]:
    _, out = calls.post(ids.MODEL_SAVE, {f"{ids.MODEL_SAVE}.n_clicks": 1,
                                         f"{ids.MODEL_NAME}.value": name,
                                         f"{ids.ANALYSIS}.data": state,
                                         f"{ids.MODELS_CHANGED}.data": 0})
    return out, out.get(ids.MODEL_OPEN, {}).get("data")


def test_mod001_save_list_reopen_rename_delete(app, login_client):
    calls = Callbacks(app, login_client(app))
    services = auth.services_of(app.server)
    user = accounts.user_id_of(services.db, "ana@example.com")
    state = _analysed(services, user, "retail")
    out, first = _save(calls, state, "  Retail RFM ")
    assert "Saved as Retail RFM." in _text(out[ids.MODEL_ALERT]["children"])
    assert out[ids.MODELS_CHANGED]["data"] == 1
    meta, model = services.segmentations.get(user, first)
    assert meta["dataset_id"] == state["dataset"] and model.kind == "rfm"
    analysis = services.analysis(user, state["dataset"], None, state["controls"])
    assert [s["persona"] for s in model.segments] == [p.name for p in analysis.personas]
    # Without a name it gets one from the dataset and the model.
    _, second = _save(calls, state)
    assert services.segmentations.meta(user, second)["name"].endswith("kmeans k = 4")

    _, out = calls.post(ids.MODELS_CHANGED, {f"{ids.MODELS_CHANGED}.data": 2,
                                             f"{ids.MODEL_OPEN}.data": first},
                        output=ids.MODEL_LIST)
    listed = _text(out[ids.MODEL_LIST]["children"])
    assert "Retail RFM" in listed and "kmeans k = 4" in listed
    assert out[ids.MODEL_RENAME_INPUT]["value"] == "Retail RFM"

    status, out = calls.post(ids.model_reopen(None)["type"], {
        "models-reopen.n_clicks": [{"id": ids.model_reopen(second), "property": "n_clicks",
                                    "value": 1}]},
        fired=_prop(ids.model_reopen(second), "n_clicks"))
    assert status == 200 and out[ids.MODEL_OPEN]["data"] == second

    # Reopening shows the same personas with the same names and strategies.
    _, out = calls.post(ids.MODEL_OPEN, {f"{ids.MODEL_OPEN}.data": first,
                                         f"{ids.MODELS_CHANGED}.data": 2},
                        output=ids.MODEL_DETAIL)
    detail = _text(out[ids.MODEL_DETAIL]["children"])
    for persona in analysis.personas:
        assert persona.name in detail and persona.strategy in detail
    assert out[ids.APPEND]["disabled"] is True  # a transaction log takes transactions
    assert detail.count("pe-model-persona") == len(analysis.personas)

    _, out = calls.post(ids.MODEL_RENAME_APPLY, {f"{ids.MODEL_RENAME_APPLY}.n_clicks": 1,
                                                 f"{ids.MODEL_RENAME_INPUT}.value": "Kept",
                                                 f"{ids.MODEL_OPEN}.data": first,
                                                 f"{ids.MODELS_CHANGED}.data": 2})
    assert "Renamed to Kept." in _text(out[ids.MODEL_ALERT]["children"])
    assert services.segmentations.meta(user, first)["name"] == "Kept"
    _, out = calls.post(ids.MODEL_RENAME_APPLY, {f"{ids.MODEL_RENAME_APPLY}.n_clicks": 1,
                                                 f"{ids.MODEL_RENAME_INPUT}.value": " ",
                                                 f"{ids.MODEL_OPEN}.data": first})
    assert out[ids.MODEL_ALERT]["children"]["props"]["color"] == "danger"

    _, out = calls.post(ids.MODEL_DELETE_YES, {f"{ids.MODEL_DELETE_YES}.n_clicks": 1,
                                               f"{ids.MODEL_DELETE_PENDING}.data": first,
                                               f"{ids.MODEL_OPEN}.data": first,
                                               f"{ids.MODELS_CHANGED}.data": 3},
                        output=ids.MODEL_ALERT)
    assert "Deleted Kept." in _text(out[ids.MODEL_ALERT]["children"])
    assert out[ids.MODEL_OPEN]["data"] is None
    assert [m["id"] for m in services.segmentations.list(user)] == [second]
    assert not services.segmentations.folder(user, first).exists()


def test_mod005_a_model_saved_before_its_silhouette_was_shown_carries_it(app, login_client):
    # A fit the sweep did not make is drawn before its silhouette; saving it then computes
    # the silhouette rather than keeping none.
    from dashapp.segment import segment

    calls = Callbacks(app, login_client(app))
    services = auth.services_of(app.server)
    user = accounts.user_id_of(services.db, "ana@example.com")
    state = _analysed(services, user, "retail")
    state["controls"] = Controls(k=4, algorithm="minibatch").to_dict()
    prepared, analysis = services.from_state(user, state)
    assert analysis.segmentation.metrics.pending
    _, model_id = _save(calls, state)
    metrics = services.segmentations.get(user, model_id)[1].metrics
    full = segment(prepared.customers, analysis.segmentation.params).metrics
    assert metrics["silhouette"] == pytest.approx(full.silhouette, abs=1e-12)
    assert metrics["silhouette_sample"] == full.silhouette_sample


def test_mod002_the_form_scores_live_and_checks_every_value(app, login_client):
    calls = Callbacks(app, login_client(app))
    services = auth.services_of(app.server)
    user = accounts.user_id_of(services.db, "ana@example.com")
    state = _analysed(services, user, "mall")
    _, model_id = _save(calls, state, "Mall")
    _, model = services.segmentations.get(user, model_id)
    names = list(model.score_fields)

    _, out = calls.post(ids.MODEL_OPEN, {f"{ids.MODEL_OPEN}.data": model_id},
                        output=ids.MODEL_DETAIL)
    form = out[ids.SCORE_FIELDS]["children"]
    inputs = [c["props"]["children"]["props"]["children"][1]["props"]
              for c in form["props"]["children"]]
    assert [(i["type"], i["required"], i["min"]) for i in inputs] == \
        [("number", True, 0.0)] * len(names)
    assert out[ids.APPEND]["disabled"] is False

    def score(values):
        _, out = calls.post(ids.model_field(None)["type"], {
            "models-field.value": _fields(values), "models-field.id": _field_ids(len(values)),
            f"{ids.MODEL_OPEN}.data": model_id}, output=ids.SCORE_RESULT)
        return _text(out[ids.SCORE_RESULT]["children"])

    customer = dict(zip(names, (23, 120, 90)))
    expected = model.predict_features([customer])[0]
    shown = score(list(customer.values()))
    assert expected["persona"] in shown and expected["strategy"] in shown
    assert "Fill in" in score([23, None, 90]) and names[1] in score([23, None, 90])
    for bad, words in (("abc", "not text"), (-5, "between 0"), (1e13, "between"),
                       (True, "true/false")):
        shown = score([23, bad, 90])
        assert f"{names[1]} must be" in shown and words.split()[-1] in shown, (bad, shown)
        assert expected["persona"] not in shown
    # A form with an index that is not one of the model's fields is refused.
    _, out = calls.post(ids.model_field(None)["type"], {
        "models-field.value": _fields([1, 2, 3]),
        "models-field.id": [{"id": ids.model_field(i), "property": "id",
                             "value": ids.model_field(i)} for i in (0, 1, 7)],
        f"{ids.MODEL_OPEN}.data": model_id}, output=ids.SCORE_RESULT)
    assert "malformed" in _text(out[ids.SCORE_RESULT]["children"])


def test_mod003_append_the_new_customer_to_its_dataset(app, login_client):
    calls = Callbacks(app, login_client(app))
    services = auth.services_of(app.server)
    user = accounts.user_id_of(services.db, "ana@example.com")
    state = _analysed(services, user, "mall")
    _, model_id = _save(calls, state, "Mall")
    before = services.dataset(user, state["dataset"])
    current = {"dataset": before.id, "mapping": None, "dayfirst": None}

    def append(customer_id, values=(23, 120, 90)):
        return calls.post(ids.APPEND, {
            f"{ids.APPEND}.n_clicks": 1, "models-field.value": _fields(list(values)),
            "models-field.id": _field_ids(len(values)),
            f"{ids.SCORE_CUSTOMER_ID}.value": customer_id, f"{ids.MODEL_OPEN}.data": model_id,
            f"{ids.DATASET}.data": current, f"{ids.DATASETS_CHANGED}.data": 4})[1]

    out = append("N-1")
    assert "Added to" in _text(out[ids.APPEND_ALERT]["children"])
    after = services.dataset(user, before.id)
    assert after.rows == before.rows + 1 and after.content_hash != before.content_hash
    # The open dataset's store again, with its new version (see test_bg007).
    assert out[ids.DATASET]["data"] == {**current, "version": after.content_hash[:16]}
    assert out[ids.DATASETS_CHANGED]["data"] == 5
    prepared = services.prepared(user, before.id)
    row = prepared.customers.set_index("customer_id").loc["N-1"]
    assert (row["Age"], row["Annual Income (k$)"], row["Spending Score (1-100)"]) == \
        (23, 120, 90)
    for customer_id, values, words in (("N-1", (23, 120, 90), "already in"),
                                       ("", (23, 120, 90), "Enter the customer's id"),
                                       ("N-2", (23, "x", 90), "must be a number")):
        out = append(customer_id, values)
        assert words in _text(out[ids.APPEND_ALERT]["children"])
        assert ids.DATASET not in out
    assert services.dataset(user, before.id).rows == before.rows + 1


def test_mod004_another_users_ids_reach_nothing(app, login_client):
    ana = Callbacks(app, login_client(app))
    services = auth.services_of(app.server)
    user = accounts.user_id_of(services.db, "ana@example.com")
    state = _analysed(services, user, "mall")
    _, model_id = _save(ana, state, "Ana's secret model")
    rows = services.dataset(user, state["dataset"]).rows
    bo = Callbacks(app, login_client(app, EMAIL_B, PASSWORD_B))

    _, out = bo.post(ids.MODELS_CHANGED, {f"{ids.MODELS_CHANGED}.data": 1,
                                          f"{ids.MODEL_OPEN}.data": model_id},
                     output=ids.MODEL_LIST)
    assert "Ana's secret model" not in _text(out) and out[ids.MODEL_RENAME_INPUT]["value"] == ""
    _, out = bo.post(ids.MODEL_OPEN, {f"{ids.MODEL_OPEN}.data": model_id},
                     output=ids.MODEL_DETAIL)
    assert "does not exist" in _text(out[ids.MODEL_DETAIL]["children"])
    assert out[ids.SCORE_FIELDS]["children"] == []
    _, out = bo.post(ids.model_field(None)["type"], {
        "models-field.value": _fields([23, 120, 90]), "models-field.id": _field_ids(3),
        f"{ids.MODEL_OPEN}.data": model_id}, output=ids.SCORE_RESULT)
    assert "does not exist" in _text(out[ids.SCORE_RESULT]["children"])
    status, _ = bo.post(ids.model_reopen(None)["type"], {
        "models-reopen.n_clicks": [{"id": ids.model_reopen(model_id), "property": "n_clicks",
                                    "value": 1}]},
        fired=_prop(ids.model_reopen(model_id), "n_clicks"))
    assert status == 204
    for trigger, values in (
            (ids.MODEL_RENAME_APPLY, {f"{ids.MODEL_RENAME_APPLY}.n_clicks": 1,
                                      f"{ids.MODEL_RENAME_INPUT}.value": "Bo's now",
                                      f"{ids.MODEL_OPEN}.data": model_id}),
            (ids.MODEL_DELETE_YES, {f"{ids.MODEL_DELETE_YES}.n_clicks": 1,
                                    f"{ids.MODEL_DELETE_PENDING}.data": model_id}),
            (ids.APPEND, {f"{ids.APPEND}.n_clicks": 1, "models-field.value": _fields([1, 2, 3]),
                          "models-field.id": _field_ids(3),
                          f"{ids.SCORE_CUSTOMER_ID}.value": "x",
                          f"{ids.MODEL_OPEN}.data": model_id})):
        _, out = bo.post(trigger, values, output=ids.APPEND_ALERT if trigger == ids.APPEND
                         else ids.MODEL_ALERT)
        assert "does not exist" in _text(out)
    # Bo's save of Ana's analysis store names Ana's dataset: refused, nothing saved.
    out, saved_id = _save(bo, state, "Stolen")
    assert saved_id is None and out[ids.MODEL_ALERT]["children"]["props"]["color"] == "danger"
    bo_id = accounts.user_id_of(services.db, EMAIL_B)
    assert services.segmentations.list(bo_id) == []
    meta = services.segmentations.meta(user, model_id)
    assert meta["name"] == "Ana's secret model"
    assert services.dataset(user, state["dataset"]).rows == rows
    assert isinstance(services.segmentations.get(user, model_id)[1], saved.SavedModel)
