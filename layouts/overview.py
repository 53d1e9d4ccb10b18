"""The overview page: the bundled sample's personas as a table."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp.samples import SAMPLES
from layouts import ids


def layout(default_sample: str = "retail") -> html.Div:
    """The whole page; data is filled in by callbacks, never at import time."""
    return html.Div(
        [
            dbc.Navbar(
                dbc.Container(dbc.NavbarBrand("Persona Engine", className="fw-semibold")),
                color="dark", dark=True, className="mb-3",
            ),
            dbc.Container(
                [
                    dbc.Card(
                        dbc.Row(
                            [
                                dbc.Col(dbc.Label("Sample data", html_for=ids.SAMPLE), md=3),
                                dbc.Col(
                                    dcc.Dropdown(
                                        id=ids.SAMPLE,
                                        options=[{"label": s.label, "value": s.key}
                                                 for s in SAMPLES.values()],
                                        value=default_sample,
                                        clearable=False,
                                    ),
                                    md=9,
                                ),
                            ],
                            className="g-2 align-items-center",
                        ),
                        body=True,
                        className="mb-3",
                    ),
                    html.Div(id=ids.ERROR),
                    dcc.Loading(
                        [
                            html.P(id=ids.SUMMARY, className="lead"),
                            html.Div(id=ids.PERSONA_TABLE, className="persona-table"),
                        ],
                        type="default",
                    ),
                ],
                fluid="lg",
            ),
        ]
    )
