"""Data section: the user's datasets (open, rename, delete), a sample, an upload or a new
mapping; the cleaning report."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import alert, clicked, confirm_delete, current_user
from dashapp import views
from dashapp.datasets import DatasetInfo, DatasetMissingError
from dashapp.errors import PersonaError
from dashapp.services import Services, checked_mapping
from layouts import ids

log = logging.getLogger(__name__)

DATE_ORDERS = {"auto": None, "day": True, "month": False}
NO_DATASET = "No dataset is open: load a sample or upload a file."


def _decode(contents: object) -> bytes:
    """The bytes of a ``data:...;base64,...`` URL from dcc.Upload."""
    try:
        _, payload = str(contents).split(",", 1)
        return base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as err:
        raise PersonaError("The upload arrived damaged; please try again.") from err


def store_of(info: DatasetInfo) -> dict:
    """The dataset store (ids and reading choices only) that opens ``info``.

    ``version`` (the start of the content hash) changes when rows are appended or a source
    is read again. It is in every state the store leads to (the segmentation's request,
    the analysis store), so a background result Dash keeps for identical inputs (an hour,
    ``cache_by`` in app.py: stability, the silhouette, a fit's answer) is never the one
    computed on the rows before. The server reads the data by id; it never trusts it."""
    return {"dataset": info.id, "mapping": info.mapping, "dayfirst": info.dayfirst,
            "version": dataset_version(info)}


def dataset_version(info: DatasetInfo) -> str:
    return info.content_hash[:16]


def open_dataset(services: Services, user_id: int, info: DatasetInfo) -> dict:
    """Open a dataset as it was last read; a remembered reading that no longer works (the
    code changed under it) falls back to the detected one."""
    try:
        services.prepared(user_id, info.id, info.mapping, info.dayfirst)
    except DatasetMissingError:
        raise
    except PersonaError:
        if info.mapping is None and info.dayfirst is None:
            raise
        info = services.datasets.set_reading(user_id, info.id, None, None)
        services.prepared(user_id, info.id)
    services.datasets.touch(user_id, info.id)
    return store_of(info)


def load_dataset(services: Services, user_id: int, trigger: object, *, sample: object = None,
                 contents: object = None, filename: object = None, mapping: object = None,
                 dayfirst: object = None, current: object = None,
                 dataset_id: object = None) -> dict:
    """The dataset store after a sample choice, an upload, a mapping change or opening one
    of the user's datasets (``trigger`` is ``ids.SAMPLE``, ``ids.UPLOAD``, ``"mapping"``,
    ``"open"``; anything else: the page's first load).

    Raises PersonaError with a message for the user; the caller keeps the old store then.
    """
    if trigger == ids.UPLOAD:
        if not contents or not isinstance(contents, str):
            raise PersonaError("No file arrived; choose a file to upload.")
        name = filename if isinstance(filename, str) and filename else "upload"
        info = services.add_dataset(user_id, _decode(contents), name)
        return open_dataset(services, user_id, info)
    if trigger == "mapping":
        if not isinstance(current, dict) or "dataset" not in current:
            raise PersonaError("Load a dataset before changing its mapping.")
        mapping = checked_mapping(mapping)
        services.apply_reading(user_id, current["dataset"], mapping, dayfirst)
        return {"dataset": current["dataset"], "mapping": mapping, "dayfirst": dayfirst,
                "version": current.get("version")}
    if trigger == "open":
        return open_dataset(services, user_id, services.dataset(user_id, dataset_id))
    if trigger == ids.SAMPLE:
        return open_dataset(services, user_id, services.add_sample(user_id, sample))
    return open_dataset(services, user_id, services.ensure_dataset(user_id))


def current_name(services: Services, user_id: int, store: object) -> str | None:
    """The open dataset's name, or ``None`` when nothing (of the user's) is open."""
    if not isinstance(store, dict):
        return None
    try:
        return services.dataset(user_id, store.get("dataset")).name
    except PersonaError:
        return None


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def dataset_list(items: list[DatasetInfo], open_id: str | None) -> html.Div:
    """One line per dataset: name, rows, stored size, date; open and delete buttons."""
    if not items:
        return html.Div("No datasets yet: load a sample or upload a file.",
                        className="small text-muted")
    lines = []
    for info in items:
        is_open = info.id == open_id
        lines.append(dbc.ListGroupItem([
            html.Div([
                html.Div(info.name, className="fw-semibold text-break pe-dataset-name"),
                html.Div(f"{info.rows:,} rows · {_size(info.size_bytes)} · "
                         f"{_when(info.updated_at)}", className="small text-muted"),
            ], className="me-auto"),
            html.Div([
                dbc.Button("Open" if not is_open else "Open now", id=ids.dataset_open(info.id),
                           size="sm", color="primary", outline=True, disabled=is_open,
                           className="me-1"),
                dbc.Button("Delete", id=ids.dataset_delete(info.id), size="sm",
                           color="danger", outline=True),
            ], className="text-nowrap"),
        ], active=False, className="d-flex flex-wrap align-items-center gap-2 py-2"
           + (" pe-dataset-open" if is_open else "")))
    return dbc.ListGroup(lines, flush=True)


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


def _mapping_of(values: object, fields: object) -> dict[str, object]:
    if not isinstance(values, list) or not isinstance(fields, list):
        return {}
    return {f["index"]: v for f, v in zip(fields, values)
            if isinstance(f, dict) and isinstance(f.get("index"), str) and v}


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.DATASET, "data"),
        Output(ids.UPLOAD_ALERT, "children"),
        Output(ids.MAPPING_ALERT, "children"),
        Output(ids.DATASETS_ALERT, "children"),
        Input(ids.SAMPLE, "value"),
        Input(ids.UPLOAD, "contents"),
        Input(ids.MAPPING_APPLY, "n_clicks"),
        Input(ids.dataset_open(ALL), "n_clicks"),
        Input(ids.DELETE_YES, "n_clicks"),
        State(ids.UPLOAD, "filename"),
        State(ids.mapping_field(ALL), "value"),
        State(ids.mapping_field(ALL), "id"),
        State(ids.DATE_ORDER, "value"),
        State(ids.DATASET, "data"),
        State(ids.DELETE_PENDING, "data"),
    )
    def _load(sample, contents, _apply, _opens, _yes, filename, values, fields, order, current,
              pending):
        user = current_user()
        triggered = ctx.triggered_id
        if isinstance(triggered, dict) or triggered == ids.DELETE_YES:
            if not clicked():
                raise PreventUpdate
        if triggered == ids.DELETE_YES:
            return _delete(user, pending, current)
        if isinstance(triggered, dict):
            trigger = "open"
        else:
            trigger = "mapping" if triggered == ids.MAPPING_APPLY else triggered
        if trigger == ids.SAMPLE and sample is None:
            raise PreventUpdate
        name = current_name(services, user, current)
        try:
            store = load_dataset(
                services, user, trigger, sample=sample, contents=contents, filename=filename,
                mapping=_mapping_of(values, fields),
                dayfirst=DATE_ORDERS.get(order) if isinstance(order, str) else None,
                current=current,
                dataset_id=triggered.get("index") if isinstance(triggered, dict) else None)
        except PersonaError as err:
            message = str(err)
            if trigger == "mapping":
                return no_update, None, alert(message), None
            if name:
                message += f" Still showing {name}."
            if trigger == "open":
                return no_update, None, None, alert(message)
            return no_update, alert(message), None, None
        return store, None, None, None

    def _delete(user: int, pending: object, current: object):
        try:
            gone = services.delete_dataset(user, pending)
        except PersonaError as err:
            return no_update, None, None, alert(str(err))
        note = f"Deleted {gone.name} and its cached results."
        if isinstance(current, dict) and current.get("dataset") != gone.id \
                and current_name(services, user, current):
            return no_update, None, None, alert(note, "success")
        for info in services.datasets.list(user):
            try:
                store = open_dataset(services, user, info)
            except PersonaError:
                continue
            return store, None, None, alert(f"{note} Now showing {info.name}.", "success")
        return None, None, None, alert(f"{note} {NO_DATASET}", "info")

    def _describe(user: int, index: object):
        info = services.dataset(user, index)
        return info.id, [
            html.P(["Delete ", html.Strong(info.name), f" ({info.rows:,} rows)?"]),
            html.P("Its stored file and every cached result of it are removed. Saved "
                   "segmentations made from it stay.", className="small text-muted mb-0")]

    confirm_delete(app, ids.dataset_delete, ids.DELETE_NO, ids.DELETE_YES,
                   ids.DELETE_PENDING, ids.DELETE_CONFIRM, ids.DELETE_TEXT, _describe)

    @app.callback(
        Output(ids.DATASETS_CHANGED, "data"),
        Output(ids.DATASETS_ALERT, "children", allow_duplicate=True),
        Input(ids.RENAME_APPLY, "n_clicks"),
        Input(ids.RENAME_INPUT, "n_submit"),
        State(ids.RENAME_INPUT, "value"),
        State(ids.DATASET, "data"),
        State(ids.DATASETS_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def _rename(_clicks, _submit, name, current, version):
        if not clicked():
            raise PreventUpdate
        if not isinstance(current, dict):
            return no_update, alert(NO_DATASET)
        try:
            info = services.datasets.rename(current_user(), current.get("dataset"), name)
        except PersonaError as err:
            return no_update, alert(str(err))
        version = version if isinstance(version, int) else 0
        return version + 1, alert(f"Renamed to {info.name}.", "success")

    @app.callback(
        Output(ids.DATASET_LIST, "children"),
        Output(ids.RENAME_INPUT, "value"),
        Input(ids.DATASET, "data"),
        Input(ids.DATASETS_CHANGED, "data"),
    )
    def _list(store, _version):
        user = current_user()
        items = services.datasets.list(user)
        open_id = store.get("dataset") if isinstance(store, dict) else None
        name = next((i.name for i in items if i.id == open_id), "")
        return dataset_list(items, open_id), name

    @app.callback(
        Output(ids.DATASET_INFO, "children"),
        Output(ids.MAPPING_FIELDS, "children"),
        Output(ids.REPORT, "children"),
        Output(ids.DATE_ORDER, "value"),
        Input(ids.DATASET, "data"),
        prevent_initial_call=True,
    )
    def _show(store):
        if store is None:
            return NO_DATASET, [], [], "auto"
        user = current_user()
        try:
            prepared = services.prepared_for(user, store)
            name = services.dataset(user, store.get("dataset")).name
        except PersonaError as err:
            return alert(str(err)), no_update, no_update, no_update
        order = {True: "day", False: "month"}.get(store.get("dayfirst"), "auto")
        return (views.dataset_line(prepared, name),
                mapping_view(views.mapping_fields(prepared)),
                report_view(views.report_cards(prepared)), order)

    @app.callback(
        Output(ids.CONNECT_DIALOG, "is_open"),
        Output(ids.CONNECT_HINT, "children"),
        Input(ids.CONNECT_SHOW, "n_clicks"),
        Input(ids.CONNECT_CANCEL, "n_clicks"),
        prevent_initial_call=True,
    )
    def _connect_dialog(_show, _cancel):
        if not clicked():
            raise PreventUpdate
        current_user()
        if ctx.triggered_id != ids.CONNECT_SHOW:
            return False, no_update
        return True, connect_hint(services.source_policy)

    @app.callback(
        Output(ids.DATASET, "data", allow_duplicate=True),
        Output(ids.CONNECT_ALERT, "children"),
        Output(ids.CONNECT_DIALOG, "is_open", allow_duplicate=True),
        Input(ids.CONNECT_GO, "n_clicks"),
        State(ids.CONNECT_KIND, "value"),
        State(ids.CONNECT_LOCATION, "value"),
        State(ids.CONNECT_TABLE, "value"),
        background=True,
        running=[(Output(ids.CONNECT_RUNNING, "style"), {"visibility": "visible"},
                  {"visibility": "hidden"}),
                 (Output(ids.CONNECT_GO, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def _connect(clicks, kind, location, table):
        if not clicks:
            raise PreventUpdate
        try:
            user = current_user()
            store = connect_source(services, user, kind, location, table)
        except PersonaError as err:
            return no_update, alert(str(err)), True
        except Exception as err:  # a bug must not leave a traceback in the browser
            log.exception("connecting a source failed")
            return no_update, alert(f"Connecting failed ({type(err).__name__}); nothing was "
                                    "stored."), True
        return store, None, False

    @app.callback(
        Output(ids.DATASET, "data", allow_duplicate=True),
        Output(ids.REFRESH_ALERT, "children"),
        Input(ids.REFRESH, "n_clicks"),
        State(ids.DATASET, "data"),
        background=True,
        running=[(Output(ids.REFRESH, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def _refresh(clicks, current):
        if not clicks:
            raise PreventUpdate
        try:
            if not isinstance(current, dict) or "dataset" not in current:
                raise PersonaError(NO_DATASET)
            info = services.refresh_source(current_user(), current["dataset"])
        except PersonaError as err:
            return no_update, alert(str(err))
        except Exception as err:
            log.exception("refreshing a source failed")
            return no_update, alert(f"Refreshing failed ({type(err).__name__}); the dataset "
                                    "is as it was.")
        return store_of(info), alert(f"Read {info.name} again: {info.rows:,} rows.", "success")


def connect_source(services: Services, user_id: int, kind: object, location: object,
                   table: object) -> dict:
    """The dataset store after connecting to a source (checked on the server: the browser
    can send any kind, path or URL)."""
    info = services.add_source(user_id, kind, location, table if kind == "database" else None)
    return open_dataset(services, user_id, info)


def connect_hint(policy) -> list:
    """What this server allows, in the dialog (never a connection's URL: it may hold a
    password)."""
    roots = ", ".join(str(r) for r in policy.roots or ()) or None
    names = ", ".join(sorted(policy.connections)) or None
    return [
        html.Div(f"Server paths: under {roots}." if roots else
                 "Server paths are turned off (PERSONA_SOURCE_ROOTS)."),
        html.Div(f"URLs: on, up to {policy.url_max_bytes / 2**20:,.0f} MB." if policy.urls
                 else "URLs are turned off (PERSONA_SOURCE_URLS)."),
        html.Div(f"Database connections: {names}; or sqlite:///FILE under the server paths."
                 if names else "Database: sqlite:///FILE under the server paths; named "
                 "connections come from PERSONA_SOURCES."),
    ]
