"""Data section: load a sample, an upload or a new mapping; show the cleaning report."""

from __future__ import annotations

import base64
import binascii

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from callbacks.common import alert
from dashapp import views
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids


def _decode(contents: str) -> bytes:
    """The bytes of a ``data:...;base64,...`` URL from dcc.Upload."""
    try:
        _, payload = contents.split(",", 1)
        return base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as err:
        raise PersonaError("The upload arrived damaged; please try again.") from err


DATE_ORDERS = {"auto": None, "day": True, "month": False}


def load_dataset(services: Services, trigger: str | None, sample: str | None,
                 contents: str | None, filename: str | None,
                 mapping: dict[str, str] | None, current: dict | None,
                 dayfirst: bool | None = None) -> dict:
    """The dataset store after a sample choice, an upload or a mapping change.

    ``mapping`` and ``dayfirst`` (the date order for ambiguous dates) apply to a mapping
    change; a new file or sample starts from what is detected.

    Raises PersonaError with a message for the user; the caller keeps the old store then.
    """
    if trigger == ids.UPLOAD:
        if not contents:
            raise PersonaError("No file arrived; choose a file to upload.")
        data = _decode(contents)
        name = filename or "upload"
        key = services.store_dataset(data, name)
        mapping, dayfirst = None, None
    elif trigger == "mapping":
        if not current:
            raise PersonaError("Load a dataset before changing its mapping.")
        key, name = current["key"], current["filename"]
    else:
        key, name = services.sample_dataset(str(sample or ""))
        mapping, dayfirst = None, None
    services.prepared(key, mapping, dayfirst)  # refuses a file it cannot read, here
    return {"key": key, "filename": name, "mapping": mapping, "dayfirst": dayfirst}


def report_view(cards: list[views.ReportCard]) -> dbc.Row:
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(c.title, className="small text-muted"),
            html.Div(c.value, className="fs-5 fw-semibold text-break"),
            html.Div(c.detail, className="small pe-report-detail"),
        ], className="p-2"), color=c.tone, outline=True, className="h-100"),
            xs=12, sm=6, xl=4, className="mb-2")
        for c in cards
    ], className="g-2")


def mapping_view(fields: list[dict]) -> dbc.Row:
    return dbc.Row([
        dbc.Col(html.Div([
            dbc.Label(f["label"], className="small mb-0"),
            dcc.Dropdown(id=ids.mapping_field(f["role"]), options=f["options"], value=f["value"],
                         placeholder="(none)", clearable=f["role"] != "customer_id"),
        ]), xs=6, md=4, className="mb-2")
        for f in fields
    ], className="g-2")


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.DATASET, "data"),
        Output(ids.UPLOAD_ALERT, "children"),
        Output(ids.MAPPING_ALERT, "children"),
        Input(ids.SAMPLE, "value"),
        Input(ids.UPLOAD, "contents"),
        Input(ids.MAPPING_APPLY, "n_clicks"),
        State(ids.UPLOAD, "filename"),
        State(ids.mapping_field(ALL), "value"),
        State(ids.mapping_field(ALL), "id"),
        State(ids.DATE_ORDER, "value"),
        State(ids.DATASET, "data"),
    )
    def _load(sample, contents, _apply, filename, values, fields, order, current):
        trigger = "mapping" if ctx.triggered_id == ids.MAPPING_APPLY else ctx.triggered_id
        mapping = {f["index"]: v for f, v in zip(fields, values) if v}
        try:
            store = load_dataset(services, trigger, sample, contents, filename, mapping, current,
                                 DATE_ORDERS.get(order))
        except PersonaError as err:
            message = str(err)
            if trigger == "mapping":
                return no_update, None, alert(message)
            if current:
                message += f" Still showing {current['filename']}."
            return no_update, alert(message), None
        return store, None, None

    @app.callback(
        Output(ids.DATASET_INFO, "children"),
        Output(ids.MAPPING_FIELDS, "children"),
        Output(ids.REPORT, "children"),
        Output(ids.DATE_ORDER, "value"),
        Input(ids.DATASET, "data"),
        prevent_initial_call=True,
    )
    def _show(store):
        try:
            prepared = services.prepared_for(store)
        except PersonaError as err:
            return alert(str(err)), no_update, no_update, no_update
        order = {True: "day", False: "month"}.get(store.get("dayfirst"), "auto")
        return (views.dataset_line(prepared, store["filename"]),
                mapping_view(views.mapping_fields(prepared)),
                report_view(views.report_cards(prepared)), order)
