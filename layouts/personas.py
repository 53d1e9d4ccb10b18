"""Personas: the radar of normalized centroids and a card per persona."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from layouts import ids
from layouts.common import card, graph, section


def layout() -> html.Section:
    return section(
        "personas", "Personas", "Each segment read as a persona, with what to do about it. "
        "Tap a card to select its customers.",
        dbc.Row([
            dbc.Col(card("Profiles (0 = lowest segment, 1 = highest; recency inverted)",
                         graph(ids.RADAR, 440)), lg=5, className="mb-3"),
            dbc.Col(html.Div(id=ids.PERSONA_CARDS, className="pe-persona-cards"), lg=7,
                    className="mb-3"),
        ]),
    )
