"""Customers: the grid's rows, its filters, and downloads of exactly what it shows."""

from __future__ import annotations

import logging

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import alert, current_user, kept, loaded, segments
from dashapp import export, figures, gridquery, views
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids
from layouts.customers import grid

log = logging.getLogger(__name__)

NO_DATASET = "No dataset is open: load a sample or upload a file."
_FILTER_TYPES = {"number", "text"}
_CONDITIONS_MAX = 25
_ROWS_MAX = 5_000_000
#: Past this many rows the grid pages from the server whatever ``grid_client_rows`` says:
#: 50,000 rows sent at once were a 10 MB response.
BROWSER_ROWS_MAX = 5_000


def pages_from_server(services: Services, rows: int) -> bool:
    """Whether a grid of ``rows`` customers asks the server for blocks."""
    return rows > min(services.settings.grid_client_rows, BROWSER_ROWS_MAX)


def _malformed(what: str) -> PersonaError:
    return PersonaError(f"The grid's {what} arrived malformed; reset the grid's filters or "
                        "reload the page.")


def _filter_value(value: object) -> object:
    if value is None or isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value if not isinstance(value, str) else value[:500]
    raise _malformed("filter")


def _filter_spec(spec: object, depth: int = 0) -> dict:
    if not isinstance(spec, dict) or depth > 1:
        raise _malformed("filter")
    if "conditions" in spec:
        conditions = spec.get("conditions") or []
        if not isinstance(conditions, list) or len(conditions) > _CONDITIONS_MAX:
            raise _malformed("filter")
        operator = spec.get("operator", "AND")
        if operator not in ("AND", "OR", "and", "or"):
            raise _malformed("filter")
        return {"filterType": spec.get("filterType"), "operator": operator,
                "conditions": [_filter_spec(c, depth + 1) for c in conditions]}
    kind = spec.get("filterType", "text")
    if kind not in _FILTER_TYPES or not isinstance(spec.get("type", ""), str):
        raise _malformed("filter")
    clean = {"filterType": kind, "type": spec.get("type") or
             ("equals" if kind == "number" else "contains")}
    for key in ("filter", "filterTo"):
        if key in spec:
            clean[key] = _filter_value(spec[key])
    return clean


def checked_filter_model(model: object, columns) -> dict:
    """AG Grid's filter model with only the table's columns and well-formed conditions.

    Raises
    ------
    PersonaError
        A column the table does not have, or a spec that is not the grid's shape.
    """
    if model in (None, {}):
        return {}
    if not isinstance(model, dict):
        raise _malformed("filter")
    allowed = set(columns)
    clean = {}
    for column, spec in model.items():
        if column not in allowed:
            raise PersonaError(f"The grid filtered on {str(column)[:60]!r}, which this table "
                               "does not have; reload the page.")
        clean[column] = _filter_spec(spec)
    return clean


def checked_sort_model(model: object, columns) -> list[dict]:
    """A sort model (``[{"colId", "sort"}]``) with only the table's columns."""
    if not isinstance(model, list):
        return []
    allowed = set(columns)
    return [{"colId": m["colId"], "sort": m["sort"]} for m in model[:50]
            if isinstance(m, dict) and m.get("colId") in allowed
            and m.get("sort") in ("asc", "desc")]


def column_sort_model(column_state: object, columns) -> list[dict]:
    """The sort model hidden in the grid's ``columnState``, checked."""
    if not isinstance(column_state, list):
        return []
    entries = [{"colId": c.get("colId"), "sort": c.get("sort"),
                "sortIndex": c.get("sortIndex") if isinstance(c.get("sortIndex"), int) else 0}
               for c in column_state[:500] if isinstance(c, dict)]
    return checked_sort_model(gridquery.sort_model_of(entries), columns)


def shown_ids(shown: object) -> list[str]:
    """The customer ids of the grid's rows as the browser lists them."""
    if not isinstance(shown, list):
        return []
    return [str(r.get("customer_id")) for r in shown[:_ROWS_MAX]
            if isinstance(r, dict) and isinstance(r.get("customer_id"), (str, int, float))]


def checked_request(request: object, columns) -> dict:
    """An infinite-row-model ``getRowsRequest`` with whole-number bounds and checked models."""
    if not isinstance(request, dict):
        raise _malformed("request")
    bounds = {}
    for key, default in (("startRow", 0), ("endRow", 100)):
        value = request.get(key, default)
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _ROWS_MAX:
            raise _malformed("request")
        bounds[key] = value
    return {**bounds, "filterModel": checked_filter_model(request.get("filterModel"), columns),
            "sortModel": checked_sort_model(request.get("sortModel"), columns)}


def range_slider(bound: dict) -> html.Div:
    return html.Div([
        html.Div(bound["feature"], className="small"),
        dcc.RangeSlider(id=ids.range_filter(bound["feature"]), min=bound["min"],
                        max=bound["max"], step=bound["step"],
                        value=[bound["min"], bound["max"]], marks=None, updatemode="mouseup",
                        tooltip={"placement": "bottom"}, allow_direct_input=True),
    ], className="mb-2")


def shown_rows(services: Services, user_id: int, state: dict, shown: object,
               filter_model: object, column_state: object):
    """The rows the grid shows: from the browser's list when it holds every row, else the
    grid's filter and sort models applied to the whole table on the server."""
    frame = services.grid_frame(user_id, state)
    if pages_from_server(services, len(frame)):
        return gridquery.query(frame, checked_filter_model(filter_model, frame.columns),
                               column_sort_model(column_state, frame.columns))
    return views.rows_in_order(frame, shown_ids(shown))


def download(services: Services, user_id: int, state: object, kind: str, shown: object,
             selected: object, filter_model: object = None, column_state: object = None) -> dict:
    """The file for one download button, as ``dcc.Download`` wants it.

    Everything comes from the user's own data: an id in ``state`` that is not theirs raises
    DatasetMissingError.
    """
    prepared, analysis = services.from_state(user_id, state)
    base = services.dataset(user_id, state["dataset"]).name
    if kind == "contacts":
        contacts = export.contact_list(analysis.result(prepared).customers(),
                                       segments(selected) or None)
        return dcc.send_bytes(export.to_csv_bytes(contacts),
                              export.export_filename(base, "contacts", "csv"))
    rows = shown_rows(services, user_id, state, shown, filter_model, column_state)
    if kind == "xlsx":
        return dcc.send_bytes(export.to_excel_bytes(rows),
                              export.export_filename(base, "customers", "xlsx"))
    return dcc.send_bytes(export.to_csv_bytes(rows),
                          export.export_filename(base, "customers", "csv"))


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.GRID_WRAP, "children"),
        Output(ids.SEGMENT_FILTER, "options"),
        Output(ids.SEGMENT_FILTER, "value", allow_duplicate=True),
        Output(ids.RANGES, "children"),
        Output(ids.QUICK_SEARCH, "disabled"),
        Output(ids.QUICK_SEARCH, "placeholder"),
        Input(ids.ANALYSIS, "data"),
        prevent_initial_call=True,
    )
    def _grid(state):
        if state is None:
            return grid(), [], [], [], True, NO_DATASET
        user = current_user()
        _, analysis = loaded(services, user, state)
        with kept():
            frame = services.grid_frame(user, state)
        names = {p.segment: p.name for p in analysis.personas}
        options = [{"label": figures.segment_label(s, names), "value": s}
                   for s in sorted(names)]
        ranges = [range_slider(b)
                  for b in views.range_bounds(frame, analysis.segmentation.features)]
        columns = views.grid_columns(frame)
        if pages_from_server(services, len(frame)):
            limit = min(services.settings.grid_client_rows, BROWSER_ROWS_MAX)
            return (grid(columns, server=True), options, [], ranges, True,
                    f"Search works up to {limit:,} customers; "
                    "use the column filters")
        return (grid(columns, views.grid_rows(frame)), options, [], ranges, False,
                "Search any column")

    @app.callback(
        Output(ids.GRID, "getRowsResponse"),
        Output(ids.ROW_COUNT, "children", allow_duplicate=True),
        Input(ids.GRID, "getRowsRequest"),
        State(ids.ANALYSIS, "data"),
        prevent_initial_call=True,
    )
    def _rows(request, state):
        if request is None:  # a grid drawn anew, before it asks for a block
            raise PreventUpdate
        try:
            frame = services.grid_frame(current_user(), state)
            rows, matched = gridquery.block(frame, checked_request(request, frame.columns))
        except PersonaError as err:
            log.warning("grid request refused: %s", err)
            return {"rowData": [], "rowCount": 0}, str(err)
        return ({"rowData": views.grid_rows(rows), "rowCount": matched},
                f"{matched:,} of {len(frame):,} customers shown")

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Output(ids.CUSTOMERS_ALERT, "children"),
        Input(ids.DOWNLOAD_CSV, "n_clicks"),
        Input(ids.DOWNLOAD_XLSX, "n_clicks"),
        Input(ids.DOWNLOAD_CONTACTS, "n_clicks"),
        State(ids.ANALYSIS, "data"),
        State(ids.GRID, "virtualRowData"),
        State(ids.SELECTION, "data"),
        State(ids.GRID, "filterModel"),
        State(ids.GRID, "columnState"),
        prevent_initial_call=True,
    )
    def _download(_csv, _xlsx, _contacts, state, shown, selected, filter_model, column_state):
        kind = {ids.DOWNLOAD_XLSX: "xlsx", ids.DOWNLOAD_CONTACTS: "contacts"}.get(
            ctx.triggered_id, "csv")
        try:
            return download(services, current_user(), state, kind, shown, selected,
                            filter_model, column_state), None
        except PersonaError as err:
            return no_update, alert(str(err))

    app.clientside_callback(
        "function (q, options) { return Object.assign({}, options, {quickFilterText: q || ''}); }",
        Output(ids.GRID, "dashGridOptions"),
        Input(ids.QUICK_SEARCH, "value"),
        State(ids.GRID, "dashGridOptions"),
        prevent_initial_call=True,
    )
    # The selection and the range sliders become the grid's filter model: the grid filters
    # in the browser, or sends the model with its block requests when it pages from the server.
    app.clientside_callback(
        ClientsideFunction("persona", "filterModel"),
        Output(ids.GRID, "filterModel"),
        Input(ids.SELECTION, "data"),
        Input(ids.range_filter(ALL), "value"),
        State(ids.range_filter(ALL), "id"),
        State(ids.range_filter(ALL), "min"),
        State(ids.range_filter(ALL), "max"),
        State(ids.GRID, "filterModel"),
    )
    app.clientside_callback(
        ClientsideFunction("persona", "rowCount"),
        Output(ids.ROW_COUNT, "children"),
        Input(ids.GRID, "virtualRowData"),
        State(ids.GRID, "rowData"),
        State(ids.GRID, "rowModelType"),
    )
