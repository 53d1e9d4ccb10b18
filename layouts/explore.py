"""Explore section: each feature's distribution, correlations, summary statistics, R x F."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.common import card, graph, section


def layout() -> html.Section:
    distribution = card(
        "Distribution",
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.EXPLORE_FEATURE, clearable=False, searchable=False),
                    xs=8),
            dbc.Col(dbc.Switch(id=ids.EXPLORE_LOG, label="Log scale", value=False), xs=4,
                    className="d-flex align-items-center"),
        ], className="g-2 mb-2"),
        graph(ids.HISTOGRAM, 320),
    )
    rf = card(
        "Recency x frequency scores",
        dbc.RadioItems(id=ids.RF_VALUE, inline=True, value="customers",
                       options=[{"label": "Customers", "value": "customers"},
                                {"label": "Revenue", "value": "revenue"}]),
        graph(ids.RF_HEATMAP, 360),
    )
    return section(
        "explore", "Explore", "What the customers look like before any segmentation.",
        dbc.Row([dbc.Col(distribution, lg=6, className="mb-3"),
                 dbc.Col(card("Correlations", graph(ids.CORRELATION, 360)), lg=6,
                         className="mb-3")]),
        dbc.Row([dbc.Col(card("Summary statistics", html.Div(id=ids.STATS,
                                                             className="pe-scroll-x")),
                         lg=6, className="mb-3"),
                 dbc.Col(rf, lg=6, className="mb-3")]),
    )
