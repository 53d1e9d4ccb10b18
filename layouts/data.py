"""Data section: the user's datasets, a bundled sample or an upload, the column mapping, the
cleaning report."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp.ingest import ACCEPTED_FORMATS
from dashapp.samples import SAMPLES
from layouts import ids
from layouts.common import card, labelled, section


def datasets() -> html.Div:
    """The user's stored datasets (the list comes from a callback), rename and delete."""
    confirm = dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Delete this dataset?")),
        dbc.ModalBody(html.Div(id=ids.DELETE_TEXT)),
        dbc.ModalFooter([
            dbc.Button("Cancel", id=ids.DELETE_NO, color="secondary", size="sm"),
            dbc.Button("Delete", id=ids.DELETE_YES, color="danger", size="sm"),
        ]),
    ], id=ids.DELETE_CONFIRM, is_open=False, centered=True)
    rename = dbc.InputGroup([
        dbc.InputGroupText("Name"),
        dbc.Input(id=ids.RENAME_INPUT, type="text", maxLength=200, debounce=False),
        dbc.Button("Rename", id=ids.RENAME_APPLY, color="secondary"),
    ], size="sm", className="mt-2")
    return html.Div([
        card("Your datasets",
             html.Div(id=ids.DATASET_LIST),
             html.Div(rename, title="Rename the open dataset"),
             html.Div(id=ids.DATASETS_ALERT, className="mt-2")),
        dcc.Store(id=ids.DELETE_PENDING),
        dcc.Store(id=ids.DATASETS_CHANGED, data=0),
        confirm,
    ], className="mb-3")


def connect_dialog() -> dbc.Modal:
    """The Connect dialog: a server path or folder, a URL, or a database table."""
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Connect to data on the server")),
        dbc.ModalBody([
            dbc.RadioItems(id=ids.CONNECT_KIND, value="path", inline=True, className="mb-2",
                           options=[{"label": "Server path or folder", "value": "path"},
                                    {"label": "URL", "value": "url"},
                                    {"label": "Database table", "value": "database"}]),
            labelled("Path, URL or connection", dbc.Input(
                id=ids.CONNECT_LOCATION, type="text", maxLength=4096,
                placeholder="/data/orders.parquet, https://..., or a connection name"),
                ids.CONNECT_LOCATION),
            labelled("Table or view (database only)", dbc.Input(
                id=ids.CONNECT_TABLE, type="text", maxLength=300, placeholder="orders"),
                ids.CONNECT_TABLE),
            html.Div(id=ids.CONNECT_HINT, className="small text-muted mb-2"),
            html.Div(dbc.Spinner(size="sm"), id=ids.CONNECT_RUNNING,
                     style={"visibility": "hidden"}),
            html.Div(id=ids.CONNECT_ALERT),
        ]),
        dbc.ModalFooter([
            dbc.Button("Cancel", id=ids.CONNECT_CANCEL, color="secondary", size="sm"),
            dbc.Button("Connect", id=ids.CONNECT_GO, color="primary", size="sm"),
        ]),
    ], id=ids.CONNECT_DIALOG, is_open=False, centered=True)


def layout(default_sample: str, max_upload_mb: float) -> html.Section:
    source = card(
        "Source",
        labelled("Bundled sample", dcc.Dropdown(
            id=ids.SAMPLE, options=[{"label": s.label, "value": s.key} for s in SAMPLES.values()],
            value=None, placeholder="Add a sample to your datasets", clearable=False,
            searchable=False,
        ), ids.SAMPLE),
        dcc.Upload(
            id=ids.UPLOAD,
            children=html.Div([
                html.Div("Drop a file here or click to choose one", className="fw-semibold"),
                html.Div(f"{ACCEPTED_FORMATS}; up to {max_upload_mb:g} MB",
                         className="small text-muted"),
            ]),
            className="pe-upload", className_active="pe-upload pe-upload-active",
            multiple=False,
        ),
        html.Div(id=ids.UPLOAD_ALERT, className="mt-2"),
        html.Div([
            dbc.Button("Connect…", id=ids.CONNECT_SHOW, size="sm", color="secondary",
                       outline=True, className="me-2"),
            dbc.Button("Refresh from source", id=ids.REFRESH, size="sm", color="secondary",
                       outline=True),
            html.Div("Larger data: a file or folder on the server, a URL or a database table.",
                     className="small text-muted mt-1"),
        ], className="mt-2"),
        html.Div(id=ids.REFRESH_ALERT, className="mt-2"),
        html.Div(id=ids.DATASET_INFO, className="small mt-2"),
        connect_dialog(),
    )
    mapping = card(
        "Column mapping",
        html.P("Detected roles; change one and apply to read the file again.",
               className="small text-muted"),
        html.Div(id=ids.MAPPING_FIELDS),
        html.Div([
            dbc.Label("Dates like 03/04/2024 are", html_for=ids.DATE_ORDER,
                      className="small mb-0 me-2"),
            dbc.RadioItems(id=ids.DATE_ORDER, inline=True, value="auto", className="small",
                           options=[{"label": "as detected", "value": "auto"},
                                    {"label": "day first", "value": "day"},
                                    {"label": "month first", "value": "month"}]),
        ], className="mb-2"),
        dbc.Button("Apply mapping", id=ids.MAPPING_APPLY, size="sm", color="secondary",
                   className="mt-1"),
        html.Div(id=ids.MAPPING_ALERT, className="mt-2"),
    )
    return section(
        "data", "Data", "Load a sample or your own file: a transaction log or a customer table.",
        datasets(),
        dbc.Row([dbc.Col(source, md=6, className="mb-3"),
                 dbc.Col(mapping, md=6, className="mb-3")]),
        html.H3("Cleaning report", className="h6"),
        html.Div(id=ids.REPORT),
    )
