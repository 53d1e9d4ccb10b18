"""The shared segment selection: bars, persona cards, legend entries and the multi-select all
write it, and every chart follows it. Pure UI, so it all runs in the browser
(``assets/selection.js``)."""

from __future__ import annotations

from dash import ALL, ClientsideFunction, Dash, Input, Output, State

from layouts import ids


def register(app: Dash) -> None:
    app.clientside_callback(
        ClientsideFunction("persona", "choose"),
        Output(ids.SEGMENT_FILTER, "value"),
        Input(ids.BARS, "clickData"),
        Input(ids.persona_card(ALL), "n_clicks"),
        *(Input(figure, "restyleData") for figure in ids.LEGEND_FIGURES),
        State(ids.SEGMENT_FILTER, "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("persona", "selection"),
        Output(ids.SELECTION, "data"),
        Input(ids.SEGMENT_FILTER, "value"),
    )
    for figure in ids.HIGHLIGHTED_FIGURES:
        app.clientside_callback(
            ClientsideFunction("persona", "highlight"),
            Output(figure, "figure", allow_duplicate=True),
            Input(ids.SELECTION, "data"),
            State(figure, "figure"),
            prevent_initial_call=True,
        )
    app.clientside_callback(
        ClientsideFunction("persona", "cardClasses"),
        Output(ids.persona_card(ALL), "className"),
        Input(ids.SELECTION, "data"),
        State(ids.persona_card(ALL), "id"),
    )
    app.clientside_callback(
        ClientsideFunction("persona", "toggleControls"),
        Output(ids.CONTROLS_PANEL, "className"),
        Input(ids.CONTROLS_OPEN, "n_clicks"),
        Input(ids.CONTROLS_CLOSE, "n_clicks"),
        State(ids.CONTROLS_PANEL, "className"),
        prevent_initial_call=True,
    )
