"""Callbacks of the overview page: sample choice -> persona table."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from dashapp.errors import PersonaError
from dashapp.services import Services
from dashapp.tables import PERSONA_COLUMNS, persona_rows, result_headline
from layouts import ids


def _table(rows: list[dict[str, str]]) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(title) for title in PERSONA_COLUMNS.values()]))
    body = html.Tbody([
        html.Tr([html.Td(row[key]) for key in PERSONA_COLUMNS], id=f"persona-row-{row['segment']}")
        for row in rows
    ])
    return dbc.Table([head, body], striped=True, hover=True, size="sm", className="mb-0")


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.SUMMARY, "children"),
        Output(ids.PERSONA_TABLE, "children"),
        Output(ids.ERROR, "children"),
        Input(ids.SAMPLE, "value"),
    )
    def _show_sample(sample: str | None):
        try:
            result = services.sample_result(str(sample or ""))
        except PersonaError as err:
            return "", None, dbc.Alert(str(err), color="danger")
        return result_headline(result), _table(persona_rows(result)), None
