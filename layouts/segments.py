"""Segments: the controls (in the side panel) and the views of one segmentation."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.common import card, graph, labelled, section

ALGORITHM_OPTIONS = [
    {"label": "K-Means (k-means++)", "value": "kmeans"},
    {"label": "MiniBatch K-Means", "value": "minibatch"},
    {"label": "Gaussian mixture", "value": "gmm"},
    {"label": "Hierarchical (Ward)", "value": "hierarchical"},
    {"label": "DBSCAN (finds k itself)", "value": "dbscan"},
]
SCALING_OPTIONS = [
    {"label": "Standard (z-score)", "value": "standard"},
    {"label": "Log, then standard", "value": "log"},
    {"label": "Robust (median, IQR)", "value": "robust"},
    {"label": "Min-max", "value": "minmax"},
    {"label": "None", "value": "none"},
]
METRIC_NAMES = {
    "silhouette": ("Silhouette", "-1 to 1, higher is better"),
    "calinski_harabasz": ("Calinski-Harabasz", "higher is better"),
    "davies_bouldin": ("Davies-Bouldin", "lower is better"),
    "stability": ("Stability", "mean adjusted Rand index across seeds"),
}


def metric_id(name: str) -> str:
    return f"segments-metric-{name.replace('_', '-')}"


def controls() -> html.Div:
    """Segmentation controls; every section follows them."""
    return html.Div([
        labelled("Algorithm", dcc.Dropdown(id=ids.ALGORITHM, options=ALGORITHM_OPTIONS,
                                           value="kmeans", clearable=False, searchable=False),
                 ids.ALGORITHM),
        html.Div([
            html.Div([dbc.Label("Number of segments k", html_for=ids.K_SLIDER,
                                className="small mb-1"),
                      dbc.Switch(id=ids.K_AUTO, label="auto", value=True,
                                 className="small mb-0")],
                     className="d-flex justify-content-between align-items-center"),
            dcc.Slider(id=ids.K_SLIDER, min=2, max=10, step=1, value=4,
                       marks={k: str(k) for k in range(2, 11)}, disabled=True,
                       updatemode="mouseup"),
        ], className="mb-3"),
        labelled("Features", dbc.Checklist(id=ids.FEATURES, options=[], value=[],
                                           className="small"), ids.FEATURES),
        labelled("Scaling", dcc.Dropdown(id=ids.SCALING, options=SCALING_OPTIONS,
                                         value="standard", clearable=False, searchable=False),
                 ids.SCALING),
        dbc.Row([
            dbc.Col(dbc.Switch(id=ids.PCA, label="PCA first", value=False), xs=6,
                    className="small"),
            dbc.Col(dbc.InputGroup([dbc.InputGroupText("seed"),
                                    dbc.Input(id=ids.SEED, type="number", min=0, step=1,
                                              value=0, debounce=True)], size="sm"), xs=6),
        ], className="g-2 mb-2 align-items-center"),
        html.Div(id=ids.SEGMENT_ALERT),
        html.Div(id=ids.NOTICES, className="small text-muted"),
    ])


def _metric_card(name: str) -> dbc.Col:
    title, hint = METRIC_NAMES[name]
    running = None
    if name == "stability":
        # Refits take a while: the other views show first, this spinner meanwhile.
        running = dbc.Spinner(size="sm", id=ids.STABILITY_RUNNING, spinner_class_name="ms-1",
                              spinner_style={"visibility": "hidden"})
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div([title, running], className="small text-muted"),
        html.Div("-", id=metric_id(name), className="fs-4 fw-semibold pe-metric"),
        html.Div(hint, className="small text-muted"),
    ], className="p-2"), className="h-100"), xs=6, md=3, className="mb-2")


def axis_picker(picker_id: str, label: str) -> dbc.Col:
    return dbc.Col(labelled(label, dcc.Dropdown(id=picker_id, clearable=False, searchable=False),
                            picker_id, class_name="mb-2"), xs=4)


def layout() -> html.Section:
    cross = card(
        "Cross-section",
        dbc.Row([axis_picker(ids.X_AXIS, "x"), axis_picker(ids.Y_AXIS, "y")], className="g-2"),
        graph(ids.SCATTER_2D, 380),
    )
    bubbles = card(
        "Bubbles",
        dbc.Row([axis_picker(ids.BUBBLE_X, "x"), axis_picker(ids.BUBBLE_Y, "y"),
                 axis_picker(ids.BUBBLE_SIZE, "size")], className="g-2"),
        graph(ids.BUBBLE, 380),
    )
    return section(
        "segments", "Segments", "The learned segments; change the controls and every view follows.",
        dbc.Row([_metric_card(name) for name in METRIC_NAMES], className="g-2", id=ids.METRICS),
        dbc.Row([
            dbc.Col(card("Customers in three dimensions", graph(ids.SCATTER_3D, 480)), xl=6,
                    className="mb-3"),
            dbc.Col(card("Choosing k", graph(ids.K_CHART, 440),
                         html.P(id=ids.K_REASON, className="small text-muted mb-0")),
                    xl=6, className="mb-3"),
        ]),
        dbc.Row([dbc.Col(cross, lg=6, className="mb-3"), dbc.Col(bubbles, lg=6, className="mb-3")]),
        dbc.Row([
            dbc.Col(card("Size and revenue", graph(ids.BARS, 340)), lg=6, className="mb-3"),
            dbc.Col(card("Named RFM segments in each cluster", graph(ids.RFM_CLUSTER, 420)),
                    lg=6, className="mb-3"),
        ]),
    )
