"""Saved models: save the current segmentation, list, reopen, rename, delete; score a new
customer with the open one and, for a customer table, append that customer to its dataset."""

from __future__ import annotations

import logging
from datetime import datetime

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import alert, clicked, confirm_delete, current_user
from callbacks.data import dataset_version
from dashapp import saved
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids
from layouts.models import field_input

log = logging.getLogger(__name__)

NO_MODEL = "Open a saved model to score a new customer."


def _version(value: object) -> int:
    return value + 1 if isinstance(value, int) and not isinstance(value, bool) else 1


def _when(text: str | None) -> str:
    if not text:
        return ""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")


def fields_of(model: saved.SavedModel) -> list[dict]:
    """The form's fields: name, bounds and the range seen in training."""
    out = []
    for name in model.score_fields:
        low, high = model.bounds(name)
        seen = model.doc["feature_ranges"].get(name) or {}
        out.append({"name": name, "minimum": low, "maximum": high,
                    "training_min": seen.get("min"), "training_max": seen.get("max")})
    return out


def model_list(items: list[dict], open_id: str | None) -> html.Div:
    """One line per saved segmentation: name, what it is, when; reopen and delete."""
    if not items:
        return html.Div("No saved models yet: segment a dataset, then save it here.",
                        className="small text-muted")
    lines = []
    for meta in items:
        facts = meta.get("summary") or {}
        is_open = meta["id"] == open_id
        what = (f"{meta['kind'].upper() if meta['kind'] == 'rfm' else 'Attributes'} · "
                f"{facts.get('algorithm')} · k = {facts.get('k')} · "
                f"{', '.join(facts.get('features') or [])}")
        lines.append(dbc.ListGroupItem([
            html.Div([
                html.Div(meta["name"], className="fw-semibold text-break pe-model-name"),
                html.Div(f"{what} · {_when(meta.get('created_at'))}",
                         className="small text-muted text-break"),
            ], className="me-auto"),
            html.Div([
                dbc.Button("Open now" if is_open else "Reopen",
                           id=ids.model_reopen(meta["id"]), size="sm", color="primary",
                           outline=True, disabled=is_open, className="me-1"),
                dbc.Button("Delete", id=ids.model_delete(meta["id"]), size="sm",
                           color="danger", outline=True),
            ], className="text-nowrap"),
        ], className="d-flex flex-wrap align-items-center gap-2 py-2"
           + (" pe-model-open" if is_open else "")))
    return dbc.ListGroup(lines, flush=True)


def model_detail(meta: dict, model: saved.SavedModel) -> html.Div:
    """The open model's facts and personas, as saved."""
    facts = meta.get("summary") or {}
    silhouette = model.metrics.get("silhouette")
    head = (f"{meta['name']}: {facts.get('algorithm')}, k = {facts.get('k')}, "
            f"{model.doc.get('customers', 0):,} customers"
            + (f", silhouette {silhouette:.3f}" if silhouette is not None else ""))
    if model.is_rfm:
        head += f"; recency counted to {model.doc['rfm']['reference_date']}"
    personas = [
        html.Li([html.Strong(f"{s['segment']} · {s['persona']}"),
                 f" — {s.get('size', 0):,} customers ({s.get('customer_share') or 0:.0%}). ",
                 html.Span(s["strategy"], className="text-muted")],
                className="pe-model-persona")
        for s in model.segments
    ]
    return html.Div([html.Div(head, className="fw-semibold mb-1"),
                     html.Ul(personas, className="ps-3 mb-0")])


def score_view(result: dict, model: saved.SavedModel) -> dbc.Card:
    body = [
        html.Div("This customer is", className="small text-muted"),
        html.Div(f"{result['persona']}", className="fs-5 fw-semibold pe-score-persona"),
        html.Div(f"Segment {result['segment']}", className="small pe-score-segment"),
    ]
    if "r_score" in result:
        body.append(html.Div(
            f"R/F/M scores {result['r_score']} / {result['f_score']} / {result['m_score']}: "
            f"{result['rfm_segment']}", className="small pe-score-rfm"))
    body.append(html.Div(result["strategy"], className="small mt-1 pe-score-strategy"))
    return dbc.Card(dbc.CardBody(body, className="p-2"), color="success", outline=True)


def form_record(values: object, field_ids: object, fields: list[dict]) -> dict[str, object]:
    """The form's values by field name, from the inputs the browser sent (any of them may
    be missing, malformed or not a number: the model's checks say which)."""
    if not isinstance(values, list) or not isinstance(field_ids, list) \
            or len(values) != len(field_ids):
        raise PersonaError("The form arrived malformed; reopen the model.")
    record: dict[str, object] = {}
    for value, field_id in zip(values, field_ids):
        index = field_id.get("index") if isinstance(field_id, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) \
                or not 0 <= index < len(fields):
            raise PersonaError("The form arrived malformed; reopen the model.")
        if value is not None and value != "":
            record[fields[index]["name"]] = value
    return record


def score_one(model: saved.SavedModel, record: dict[str, object]) -> dict:
    """Score the form's customer; a bad value raises PersonaError naming the field."""
    try:
        [result] = model.predict_features([record], path="customer")
    except saved.ScoringInputError as err:
        name = err.field.split(".", 1)[-1]
        raise PersonaError(err.message.replace(err.field, name), column=name) from None
    return result


def register(app: Dash, services: Services) -> None:
    store = services.segmentations

    @app.callback(
        Output(ids.MODEL_ALERT, "children"),
        Output(ids.MODELS_CHANGED, "data"),
        Output(ids.MODEL_OPEN, "data"),
        Output(ids.MODEL_NAME, "value"),
        Input(ids.MODEL_SAVE, "n_clicks"),
        Input(ids.MODEL_NAME, "n_submit"),
        State(ids.MODEL_NAME, "value"),
        State(ids.ANALYSIS, "data"),
        State(ids.MODELS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def _save(_clicks, _submit, name, state, version):
        if not clicked():
            raise PreventUpdate
        user = current_user()
        try:
            if not isinstance(state, dict) or "dataset" not in state:
                raise PersonaError("Nothing to save yet: open a dataset and segment it.")
            prepared, analysis = services.complete_state(user, state)
            model = saved.from_analysis(prepared, analysis)
            if not (isinstance(name, str) and name.strip()):
                seg = analysis.segmentation
                dataset = services.dataset(user, state["dataset"]).name
                name = f"{dataset} · {seg.params.algorithm} k = {seg.k}"
            new_id = store.save(user, state["dataset"], name, model)
        except PersonaError as err:
            return alert(str(err)), no_update, no_update, no_update
        except Exception as err:  # a bug must not leave a traceback in the browser
            log.exception("saving a segmentation failed")
            return (alert(f"Saving failed ({type(err).__name__}); nothing was saved."),
                    no_update, no_update, no_update)
        saved_name = store.meta(user, new_id)["name"]
        return (alert(f"Saved as {saved_name}.", "success"), _version(version), new_id, "")

    @app.callback(
        Output(ids.MODEL_LIST, "children"),
        Output(ids.MODEL_RENAME_INPUT, "value"),
        Input(ids.MODELS_CHANGED, "data"),
        Input(ids.MODEL_OPEN, "data"),
    )
    def _list(_version, open_id):
        items = store.list(current_user())
        open_id = open_id if isinstance(open_id, str) else None
        name = next((m["name"] for m in items if m["id"] == open_id), "")
        return model_list(items, open_id), name

    @app.callback(
        Output(ids.MODEL_OPEN, "data", allow_duplicate=True),
        Input(ids.model_reopen(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def _reopen(_clicks):
        if not clicked() or not isinstance(ctx.triggered_id, dict):
            raise PreventUpdate
        try:
            return store.meta(current_user(), ctx.triggered_id.get("index"))["id"]
        except PersonaError:
            raise PreventUpdate from None

    def _describe(user: int, index: object):
        meta = store.meta(user, index)
        return meta["id"], html.P(["Delete ", html.Strong(meta["name"]), "? Its files are "
                                   "removed and API calls to it get 404."])

    confirm_delete(app, ids.model_delete, ids.MODEL_DELETE_NO, ids.MODEL_DELETE_YES,
                   ids.MODEL_DELETE_PENDING, ids.MODEL_DELETE_CONFIRM, ids.MODEL_DELETE_TEXT,
                   _describe)

    @app.callback(
        Output(ids.MODEL_ALERT, "children", allow_duplicate=True),
        Output(ids.MODELS_CHANGED, "data", allow_duplicate=True),
        Output(ids.MODEL_OPEN, "data", allow_duplicate=True),
        Input(ids.MODEL_DELETE_YES, "n_clicks"),
        State(ids.MODEL_DELETE_PENDING, "data"),
        State(ids.MODEL_OPEN, "data"),
        State(ids.MODELS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def _delete(_yes, pending, open_id, version):
        if not clicked():
            raise PreventUpdate
        user = current_user()
        try:
            meta = store.meta(user, pending)
            store.delete(user, meta["id"])
        except PersonaError as err:
            return alert(str(err)), no_update, no_update
        still_open = no_update if open_id != meta["id"] else None
        return alert(f"Deleted {meta['name']}.", "success"), _version(version), still_open

    @app.callback(
        Output(ids.MODEL_ALERT, "children", allow_duplicate=True),
        Output(ids.MODELS_CHANGED, "data", allow_duplicate=True),
        Input(ids.MODEL_RENAME_APPLY, "n_clicks"),
        Input(ids.MODEL_RENAME_INPUT, "n_submit"),
        State(ids.MODEL_RENAME_INPUT, "value"),
        State(ids.MODEL_OPEN, "data"),
        State(ids.MODELS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def _rename(_clicks, _submit, name, open_id, version):
        if not clicked():
            raise PreventUpdate
        if not isinstance(open_id, str):
            return alert("Reopen a saved model first, then rename it."), no_update
        try:
            meta = store.rename(current_user(), open_id, name)
        except PersonaError as err:
            return alert(str(err)), no_update
        return alert(f"Renamed to {meta['name']}.", "success"), _version(version)

    @app.callback(
        Output(ids.MODEL_DETAIL, "children"),
        Output(ids.SCORE_FIELDS, "children"),
        Output(ids.APPEND, "disabled"),
        Output(ids.APPEND, "title"),
        Input(ids.MODEL_OPEN, "data"),
        Input(ids.MODELS_CHANGED, "data"),
    )
    def _open(open_id, _version):
        if not isinstance(open_id, str):
            return NO_MODEL, [], True, "Open a saved model first."
        user = current_user()
        try:
            meta, model = store.get(user, open_id)
        except PersonaError as err:
            return alert(str(err)), [], True, ""
        inputs = dbc.Row([field_input(i, f) for i, f in enumerate(fields_of(model))],
                         className="g-2")
        disabled, why = _append_blocked(user, meta, model)
        return model_detail(meta, model), inputs, disabled, why or "Add this customer to "\
            "the dataset the model was fitted on."

    def _append_blocked(user: int, meta: dict, model: saved.SavedModel) -> tuple[bool, str]:
        if model.is_rfm:
            return True, ("This model was fitted on a transaction log: a new customer is "
                          "added there as transactions, not as R/F/M values.")
        if not meta.get("dataset_id"):
            return True, "The dataset this model was fitted on is no longer stored."
        try:
            services.dataset(user, meta["dataset_id"])
        except PersonaError:
            return True, "The dataset this model was fitted on is no longer stored."
        return False, ""

    app.clientside_callback(
        """function (values, mins, maxs) {
            return values.map(function (v, i) {
                if (v === null || v === undefined || v === '') { return false; }
                var x = Number(v);
                return !isFinite(x) || x < mins[i] || x > maxs[i];
            });
        }""",
        Output(ids.model_field(ALL), "invalid"),
        Input(ids.model_field(ALL), "value"),
        State(ids.model_field(ALL), "min"),
        State(ids.model_field(ALL), "max"),
    )

    @app.callback(
        Output(ids.SCORE_RESULT, "children"),
        Input(ids.model_field(ALL), "value"),
        State(ids.model_field(ALL), "id"),
        State(ids.MODEL_OPEN, "data"),
    )
    def _score(values, field_ids, open_id):
        if not isinstance(open_id, str) or not field_ids:
            return None
        try:
            _, model = store.get(current_user(), open_id)
            fields = fields_of(model)
            record = form_record(values, field_ids, fields)
            missing = [f["name"] for f in fields if f["name"] not in record]
            if missing:
                return html.Div(f"Fill in {', '.join(missing)} to see the persona.",
                                className="small text-muted")
            return score_view(score_one(model, record), model)
        except PersonaError as err:
            return alert(str(err), "warning")

    @app.callback(
        Output(ids.APPEND_ALERT, "children"),
        Output(ids.DATASET, "data", allow_duplicate=True),
        Output(ids.DATASETS_CHANGED, "data", allow_duplicate=True),
        Input(ids.APPEND, "n_clicks"),
        State(ids.model_field(ALL), "value"),
        State(ids.model_field(ALL), "id"),
        State(ids.SCORE_CUSTOMER_ID, "value"),
        State(ids.MODEL_OPEN, "data"),
        State(ids.DATASET, "data"),
        State(ids.DATASETS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def _append(_clicks, values, field_ids, customer_id, open_id, current, version):
        if not clicked():
            raise PreventUpdate
        user = current_user()
        try:
            if not isinstance(open_id, str):
                raise PersonaError(NO_MODEL)
            meta, model = store.get(user, open_id)
            blocked, why = _append_blocked(user, meta, model)
            if blocked:
                raise PersonaError(why)
            fields = fields_of(model)
            record = form_record(values, field_ids, fields)
            result = score_one(model, record)
            row = {f: record[f] for f in model.features}
            info = services.dataset(user, meta["dataset_id"])
            prepared = services.prepared(user, info.id, info.mapping, info.dayfirst)
            id_column = prepared.ingested.mapping.get("customer_id")
            if id_column and not prepared.ingested.id_synthesized:
                text = customer_id.strip() if isinstance(customer_id, str) else ""
                if not text:
                    raise PersonaError("Enter the customer's id: the dataset has a customer "
                                       f"id column ({id_column}).")
                if text in set(prepared.customers["customer_id"].astype(str)):
                    raise PersonaError(f"Customer {text} is already in {info.name}; choose "
                                       "another id.")
                row[id_column] = text
            updated = services.append_customers(user, info.id, [row])
        except PersonaError as err:
            return alert(str(err)), no_update, no_update
        is_open = isinstance(current, dict) and current.get("dataset") == updated.id
        note = (f"Added to {updated.name} ({updated.rows:,} rows) as {result['persona']}."
                + (" The dashboard segments it again." if is_open else ""))
        # The store with the dataset's new version makes the open dataset's views read it
        # anew (and keeps Dash from answering its background jobs with the old rows' results).
        shown = {**current, "version": dataset_version(updated)} if is_open else no_update
        return alert(note, "success"), shown, \
            _version(version)
