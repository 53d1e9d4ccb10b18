"""Small building blocks shared by the section layouts."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def graph(graph_id: str, height: int = 420, class_name: str = "") -> dcc.Graph:
    """A responsive chart; its figure comes from a callback."""
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": f"{height}px"},
                     className=f"pe-graph {class_name}".strip())


def card(title: str, *children, class_name: str = "") -> dbc.Card:
    """A titled card that fills its column."""
    return dbc.Card([dbc.CardHeader(title, className="fw-semibold"), dbc.CardBody(list(children))],
                    className=f"h-100 {class_name}".strip())


def section(anchor: str, title: str, lead: str, *children) -> html.Section:
    """One section of the page, reachable from the navbar at ``#anchor``."""
    return html.Section(
        [html.H2(title, className="h4 mt-2 mb-1"), html.P(lead, className="text-muted small"),
         *children],
        id=anchor, className="pe-section mb-4",
    )


def labelled(label: str, component, html_for: str | None = None, class_name: str = "mb-3"):
    """A form label above its control."""
    return html.Div([dbc.Label(label, html_for=html_for, className="small mb-1"), component],
                    className=class_name)
