"""Personas: the radar of profiles and one card per persona."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, html

from callbacks.common import current_user, loaded, segments
from dashapp import figures, views
from dashapp.services import Services
from layouts import ids


def persona_card(card: dict, color: str) -> html.Div:
    body = [
        html.Div([html.Span(className="pe-swatch", style={"backgroundColor": color}),
                  html.Span(f"{card['segment']} · {card['name']}", className="fw-semibold")],
                 className="d-flex align-items-center gap-2 mb-1"),
        html.Div(card["size"], className="small"),
        html.Div(card["revenue"], className="small") if card["revenue"] else None,
        html.Ul([html.Li(line) for line in card["centroid"]], className="small mb-1 ps-3"),
        html.Div(card["strategy"], className="small text-muted"),
    ]
    return html.Div(
        dbc.Card(dbc.CardBody([b for b in body if b is not None], className="p-2"),
                 className="h-100"),
        id=ids.persona_card(card["segment"]), n_clicks=0, role="button", tabIndex="0",
        className="pe-persona-card mb-2", title="Select this segment's customers",
    )


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.RADAR, "figure"),
        Output(ids.PERSONA_CARDS, "children"),
        Input(ids.ANALYSIS, "data"),
        State(ids.SELECTION, "data"),
        prevent_initial_call=True,
    )
    def _personas(state, selected):
        if state is None:
            return figures.empty_figure("No dataset is open: load a sample or upload a "
                                        "file."), []
        _, analysis = loaded(services, current_user(), state)
        cards = views.persona_cards(analysis)
        colors = figures.segment_colors([c["segment"] for c in cards])
        radar = figures.highlight(figures.radar(analysis.personas), segments(selected))
        return radar, dbc.Row([dbc.Col(persona_card(c, colors[c["segment"]]), sm=6)
                               for c in cards], className="g-2")
