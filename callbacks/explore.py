"""Explore section: distributions, correlations, summary statistics and the R x F grid."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Input, Output, no_update

from callbacks.common import column_choice, current_user
from dashapp import figures, views
from dashapp.errors import PersonaError
from dashapp.services import Services
from layouts import ids

NO_DATASET = "No dataset is open: load a sample or upload a file."
RF_VALUES = ("customers", "revenue")


def stats_table(frame) -> dbc.Table:
    if frame.empty:
        return dbc.Table()
    header = ["feature", "count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    rows = [[row["feature"]] + [views.format_number(row[c], 2) for c in header[1:]]
            for _, row in frame.iterrows()]
    return dbc.Table.from_dataframe(
        pd.DataFrame(rows, columns=header),
        striped=True, size="sm", className="small mb-0 text-nowrap")


def register(app: Dash, services: Services) -> None:
    @app.callback(
        Output(ids.EXPLORE_FEATURE, "options"),
        Output(ids.EXPLORE_FEATURE, "value"),
        Output(ids.CORRELATION, "figure"),
        Output(ids.STATS, "children"),
        Input(ids.DATASET, "data"),
        prevent_initial_call=True,
    )
    def _dataset(store):
        if store is None:
            return [], None, figures.empty_figure(NO_DATASET), dbc.Table()
        try:
            prepared = services.prepared_for(current_user(), store)
        except PersonaError:
            return no_update, no_update, no_update, no_update
        features = list(prepared.numeric_features)
        return (features, features[0] if features else None,
                figures.correlation_heatmap(prepared.customers, features),
                stats_table(views.summary_stats(prepared.customers, prepared.numeric_features)))

    @app.callback(
        Output(ids.HISTOGRAM, "figure"),
        Input(ids.DATASET, "data"),
        Input(ids.EXPLORE_FEATURE, "value"),
        Input(ids.EXPLORE_LOG, "value"),
        prevent_initial_call=True,
    )
    def _histogram(store, feature, log_y):
        try:
            prepared = services.prepared_for(current_user(), store)
        except PersonaError as err:
            return figures.empty_figure(str(err))
        feature = column_choice(feature, prepared.numeric_features)
        if feature is None:
            return figures.empty_figure("Choose a feature.")
        return figures.histogram(prepared.customers[feature], feature, log_y=log_y is True)

    @app.callback(
        Output(ids.RF_HEATMAP, "figure"),
        Input(ids.DATASET, "data"),
        Input(ids.RF_VALUE, "value"),
        prevent_initial_call=True,
    )
    def _rf(store, value):
        try:
            prepared = services.prepared_for(current_user(), store)
        except PersonaError as err:
            return figures.empty_figure(str(err))
        customers = prepared.customers
        if "r_score" not in customers:
            return figures.empty_figure("R x F scores need a transaction log; this is a "
                                        "customer table.")
        return figures.rf_heatmap(customers["r_score"], customers["f_score"],
                                  customers["monetary"],
                                  value=value if value in RF_VALUES else "customers")
