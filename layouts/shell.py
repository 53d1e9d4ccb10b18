"""The always-mounted shell: navbar, stores, the controls panel and the progress bar."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp.settings import Settings
from layouts import customers, data, explore, ids, models, personas, segments

NAV = (("data", "Data"), ("explore", "Explore"), ("segments", "Segments"),
       ("personas", "Personas"), ("customers", "Customers"), ("models", "Models"))


def _account_menu(account: dict | None) -> html.Div | None:
    """The user's email, the account page and a log-out form (a plain POST with the CSRF
    token: logging out must not be a link a third-party page could trigger)."""
    if not account:
        return None
    logout = html.Form([
        dcc.Input(type="hidden", name="csrf_token", value=account["csrf_token"]),
        html.Button("Log out", type="submit", id=ids.LOGOUT,
                    className="btn btn-sm btn-outline-light text-nowrap"),
    ], method="POST", action="/logout", className="m-0")
    return html.Div([
        html.Span(account["email"], id=ids.USER_EMAIL, title=account["email"],
                  style={"maxWidth": "14rem"},
                  className="small text-light text-truncate d-none d-md-inline"),
        html.A("Account", href="/account", className="btn btn-sm btn-link link-light px-1"),
        logout,
    ], className="pe-account d-flex align-items-center gap-1 ms-auto")


def _navbar(account: dict | None = None) -> dbc.Navbar:
    links = [dbc.NavLink(title, href=f"#{anchor}", external_link=True, className="px-2")
             for anchor, title in NAV]
    menu = _account_menu(account)
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand("Persona Engine", className="fw-semibold me-3"),
            dbc.Nav(links, className="pe-nav flex-nowrap", navbar=True),
            *([menu] if menu else []),
            dbc.Button("Controls", id=ids.CONTROLS_OPEN, size="sm", color="light",
                       outline=True, className="d-lg-none " + ("ms-2" if menu else "ms-auto")),
        ], fluid=True),
        color="dark", dark=True, sticky="top", className="pe-navbar py-1",
    )


def _controls_panel() -> html.Aside:
    """Beside the sections on wide screens; an offcanvas drawer below 992 px."""
    progress = html.Div([
        dbc.Progress(id=ids.PROGRESS, value=0, max=2, striped=True, animated=True,
                     className="mb-1"),
        dbc.Button("Cancel", id=ids.CANCEL, size="sm", color="link", className="p-0",
                   disabled=True),
    ], id=ids.PROGRESS_WRAP, style={"visibility": "hidden"}, className="mb-2")
    return html.Aside(
        [
            html.Div([
                html.H2("Segmentation", className="h6 mb-0"),
                dbc.Button("Close", id=ids.CONTROLS_CLOSE, size="sm", color="link",
                           className="d-lg-none"),
            ], className="offcanvas-header px-0 pt-0 pb-2"),
            html.Div([progress, segments.controls()], className="offcanvas-body p-0 d-block"),
        ],
        id=ids.CONTROLS_PANEL, className="offcanvas-lg offcanvas-start pe-controls",
        tabIndex="-1",
    )


def layout(settings: Settings, account: dict | None = None) -> html.Div:
    """The whole page; data arrives through callbacks, never at import time.

    ``account`` (``{"email", "csrf_token"}``) puts the logged-in user in the navbar.
    """
    return html.Div([
        dcc.Store(id=ids.DATASET),
        dcc.Store(id=ids.ANALYSIS),
        dcc.Store(id=ids.ANALYSIS_REQUEST),
        dcc.Store(id=ids.ANALYSIS_JOB),
        dcc.Store(id=ids.SILHOUETTE_REQUEST),
        dcc.Store(id=ids.SILHOUETTE_ANSWER),
        dcc.Store(id=ids.SELECTION, data=[]),
        _navbar(account),
        dbc.Container([
            html.P(id=ids.SUMMARY, className="pe-summary small mt-2 mb-2"),
            dbc.Row([
                dbc.Col(_controls_panel(), lg=3, className="pe-side"),
                dbc.Col([
                    data.layout(settings.sample, settings.limits.max_bytes / 2**20),
                    explore.layout(),
                    segments.layout(),
                    personas.layout(),
                    customers.layout(),
                    models.layout(),
                ], lg=9, className="pe-main"),
            ]),
        ], fluid=True),
    ])
