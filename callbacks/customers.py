"""Customers: the grid's rows, its filters, and downloads of exactly what it shows."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashapp import export, figures, views
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids


def range_slider(bound: dict) -> html.Div:
    return html.Div([
        html.Div(bound["feature"], className="small"),
        dcc.RangeSlider(id=ids.range_filter(bound["feature"]), min=bound["min"],
                        max=bound["max"], step=bound["step"],
                        value=[bound["min"], bound["max"]], marks=None, updatemode="mouseup",
                        tooltip={"placement": "bottom"}, allow_direct_input=True),
    ], className="mb-2")


def download(services: Services, state: dict, kind: str, shown: list[dict] | None,
             selected: list[int] | None) -> dict:
    """The file for one download button, as ``dcc.Download`` wants it."""
    prepared, analysis = services.from_state(state)
    frame = views.grid_frame(prepared, analysis)
    base = state.get("filename", "customers")
    if kind == "contacts":
        contacts = export.contact_list(analysis.result(prepared).customers(), selected or None)
        return dcc.send_bytes(export.to_csv_bytes(contacts),
                              export.export_filename(base, "contacts", "csv"))
    rows = views.rows_in_order(frame, [r.get("customer_id") for r in shown or []])
    if kind == "xlsx":
        return dcc.send_bytes(export.to_excel_bytes(rows),
                              export.export_filename(base, "customers", "xlsx"))
    return dcc.send_bytes(export.to_csv_bytes(rows), export.export_filename(base, "customers",
                                                                             "csv"))


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.GRID, "rowData"),
        Output(ids.GRID, "columnDefs"),
        Output(ids.SEGMENT_FILTER, "options"),
        Output(ids.SEGMENT_FILTER, "value", allow_duplicate=True),
        Output(ids.RANGES, "children"),
        Output(ids.CUSTOMERS_ALERT, "children"),
        Input(ids.ANALYSIS, "data"),
        prevent_initial_call=True,
    )
    def _grid(state):
        prepared, analysis = services.from_state(state)
        frame = views.grid_frame(prepared, analysis)
        names = {p.segment: p.name for p in analysis.personas}
        options = [{"label": figures.segment_label(s, names), "value": s}
                   for s in sorted(names)]
        ranges = [range_slider(b)
                  for b in views.range_bounds(frame, analysis.segmentation.features)]
        alert = None
        if len(frame) > views.CLIENT_SIDE_ROWS:
            alert = dbc.Alert(f"{len(frame):,} customers: the grid holds the first "
                              f"{views.CLIENT_SIDE_ROWS:,} (highest spend segments first); "
                              "filters and downloads work on those. The full table is in the "
                              "command line's customers.csv.", color="warning",
                              className="py-2 small")
            frame = frame.head(views.CLIENT_SIDE_ROWS)
        return (views.grid_rows(frame), views.grid_columns(frame), options, [], ranges, alert)

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Output(ids.CUSTOMERS_ALERT, "children", allow_duplicate=True),
        Input(ids.DOWNLOAD_CSV, "n_clicks"),
        Input(ids.DOWNLOAD_XLSX, "n_clicks"),
        Input(ids.DOWNLOAD_CONTACTS, "n_clicks"),
        State(ids.ANALYSIS, "data"),
        State(ids.GRID, "virtualRowData"),
        State(ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def _download(_csv, _xlsx, _contacts, state, shown, selected):
        kind = {ids.DOWNLOAD_XLSX: "xlsx", ids.DOWNLOAD_CONTACTS: "contacts"}.get(
            ctx.triggered_id, "csv")
        try:
            return download(services, state, kind, shown, selected), None
        except PersonaError as err:
            return no_update, dbc.Alert(str(err), color="danger", className="py-2 small")

    app.clientside_callback(
        "function (q, options) { return Object.assign({}, options, {quickFilterText: q || ''}); }",
        Output(ids.GRID, "dashGridOptions"),
        Input(ids.QUICK_SEARCH, "value"),
        State(ids.GRID, "dashGridOptions"),
        prevent_initial_call=True,
    )
    # Filtering happens in the browser: the selection and the range sliders become the grid's
    # filter model, and the row count follows the rows the grid shows.
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
    )
