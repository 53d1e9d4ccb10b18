"""Customers: the grid's rows, its filters, and downloads of exactly what it shows."""

from __future__ import annotations

import logging

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update

from callbacks.common import alert, loaded
from dashapp import export, figures, gridquery, views
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids
from layouts.customers import grid

log = logging.getLogger(__name__)


def range_slider(bound: dict) -> html.Div:
    return html.Div([
        html.Div(bound["feature"], className="small"),
        dcc.RangeSlider(id=ids.range_filter(bound["feature"]), min=bound["min"],
                        max=bound["max"], step=bound["step"],
                        value=[bound["min"], bound["max"]], marks=None, updatemode="mouseup",
                        tooltip={"placement": "bottom"}, allow_direct_input=True),
    ], className="mb-2")


def shown_rows(services: Services, state: dict, shown: list[dict] | None,
               filter_model: dict | None, column_state: list[dict] | None):
    """The rows the grid shows: from the browser's list when it holds every row, else the
    grid's filter and sort models applied to the whole table on the server."""
    frame = services.grid_frame(state)
    if len(frame) > services.settings.grid_client_rows:
        return gridquery.query(frame, filter_model, gridquery.sort_model_of(column_state))
    return views.rows_in_order(frame, [r.get("customer_id") for r in shown or []])


def download(services: Services, state: dict, kind: str, shown: list[dict] | None,
             selected: list[int] | None, filter_model: dict | None = None,
             column_state: list[dict] | None = None) -> dict:
    """The file for one download button, as ``dcc.Download`` wants it."""
    base = state.get("filename", "customers")
    if kind == "contacts":
        prepared, analysis = services.from_state(state)
        contacts = export.contact_list(analysis.result(prepared).customers(), selected or None)
        return dcc.send_bytes(export.to_csv_bytes(contacts),
                              export.export_filename(base, "contacts", "csv"))
    rows = shown_rows(services, state, shown, filter_model, column_state)
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
        _, analysis = loaded(services, state)
        frame = services.grid_frame(state)
        names = {p.segment: p.name for p in analysis.personas}
        options = [{"label": figures.segment_label(s, names), "value": s}
                   for s in sorted(names)]
        ranges = [range_slider(b)
                  for b in views.range_bounds(frame, analysis.segmentation.features)]
        columns = views.grid_columns(frame)
        if len(frame) > services.settings.grid_client_rows:
            return (grid(columns, server=True), options, [], ranges, True,
                    f"Search works up to {services.settings.grid_client_rows:,} customers; "
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
        try:
            frame = services.grid_frame(state)
            rows, matched = gridquery.block(frame, request or {})
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
            return download(services, state, kind, shown, selected, filter_model,
                            column_state), None
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
