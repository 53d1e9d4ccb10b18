"""Customers: a filterable grid, range filters and downloads of what is shown."""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.common import section


def grid(columns: list[dict] | None = None, rows: list[dict] | None = None,
         server: bool = False) -> dag.AgGrid:
    """The customer grid: every row in the browser, or (``server``) blocks on request."""
    options = {"pagination": True, "paginationPageSize": 25,
               "paginationPageSizeSelector": [25, 100, 500], "animateRows": False,
               "enableCellTextSelection": True}
    extra = {"rowData": rows or []}
    if server:
        options.update(cacheBlockSize=100, maxBlocksInCache=20, paginationPageSize=100,
                       paginationPageSizeSelector=False)
        extra = {"rowModelType": "infinite"}
    return dag.AgGrid(
        id=ids.GRID,
        columnDefs=columns or [],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "minWidth": 110,
                       "floatingFilter": True},
        dashGridOptions=options,
        columnSize="autoSize",
        className="pe-grid",
        style={"height": "520px", "width": "100%"},
        **extra,
    )


def layout() -> html.Section:
    filters = dbc.Row([
        dbc.Col(dcc.Dropdown(id=ids.SEGMENT_FILTER, multi=True, placeholder="All segments",
                             options=[], value=[]), md=6, className="mb-2"),
        dbc.Col(dbc.Input(id=ids.QUICK_SEARCH, type="search", placeholder="Search any column",
                          debounce=False), md=6, className="mb-2"),
    ], className="g-2")
    downloads = html.Div([
        dbc.Button("CSV", id=ids.DOWNLOAD_CSV, size="sm", color="primary", className="me-1 mb-1"),
        dbc.Button("Excel", id=ids.DOWNLOAD_XLSX, size="sm", color="primary",
                   className="me-1 mb-1"),
        dbc.Button("Contact list", id=ids.DOWNLOAD_CONTACTS, size="sm", color="secondary",
                   className="mb-1"),
        dcc.Download(id=ids.DOWNLOAD),
    ])
    return section(
        "customers", "Customers", "Filter, search and download exactly the rows shown.",
        filters,
        dbc.Accordion([dbc.AccordionItem(html.Div(id=ids.RANGES), title="Range filters")],
                      start_collapsed=True, className="mb-2"),
        html.Div([html.Div(id=ids.ROW_COUNT, className="small fw-semibold me-auto"), downloads],
                 className="d-flex flex-wrap align-items-center gap-2 mb-2"),
        html.Div(id=ids.CUSTOMERS_ALERT),
        html.Div(grid(), id=ids.GRID_WRAP),
    )
