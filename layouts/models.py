"""Saved models: save the current segmentation, list, reopen, rename and delete the user's
saved ones, and score a new customer with the one that is open."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.common import card, section


def _saved() -> dbc.Card:
    save = dbc.InputGroup([
        dbc.InputGroupText("Name"),
        dbc.Input(id=ids.MODEL_NAME, type="text", maxLength=200,
                  placeholder="e.g. Retail RFM, 4 segments"),
        dbc.Button("Save current segmentation", id=ids.MODEL_SAVE, color="primary"),
    ], size="sm")
    rename = dbc.InputGroup([
        dbc.InputGroupText("Rename"),
        dbc.Input(id=ids.MODEL_RENAME_INPUT, type="text", maxLength=200),
        dbc.Button("Rename", id=ids.MODEL_RENAME_APPLY, color="secondary"),
    ], size="sm", className="mt-2")
    return card(
        "Saved models",
        html.P("Saving keeps what scoring needs (scaler, PCA, the model, RFM cut points, "
               "personas); reopening shows the same personas.", className="small text-muted"),
        save,
        html.Div(id=ids.MODEL_ALERT, className="mt-2"),
        html.Div(id=ids.MODEL_LIST, className="mt-2"),
        html.Div(rename, title="Rename the open saved model"),
    )


def _confirm() -> dbc.Modal:
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Delete this saved model?")),
        dbc.ModalBody(html.Div(id=ids.MODEL_DELETE_TEXT)),
        dbc.ModalFooter([
            dbc.Button("Cancel", id=ids.MODEL_DELETE_NO, color="secondary", size="sm"),
            dbc.Button("Delete", id=ids.MODEL_DELETE_YES, color="danger", size="sm"),
        ]),
    ], id=ids.MODEL_DELETE_CONFIRM, is_open=False, centered=True)


def _scoring() -> dbc.Card:
    return card(
        "Score a new customer",
        html.Div(id=ids.MODEL_DETAIL, className="small mb-2"),
        html.Div(id=ids.SCORE_FIELDS),
        html.Div(id=ids.SCORE_RESULT, className="mt-2", **{"aria-live": "polite"}),
        html.Div([
            dbc.InputGroup([
                dbc.InputGroupText("Customer id"),
                dbc.Input(id=ids.SCORE_CUSTOMER_ID, type="text", maxLength=100,
                          placeholder="optional"),
                dbc.Button("Append to dataset", id=ids.APPEND, color="secondary",
                           disabled=True),
            ], size="sm"),
            html.Div(id=ids.APPEND_ALERT, className="mt-2"),
        ], className="mt-2"),
    )


def field_input(index: int, field: dict) -> dbc.Col:
    """One number input of the new-customer form, with the browser's own checks."""
    hint = ""
    if field.get("training_min") is not None:
        hint = f"seen {field['training_min']:,.6g} to {field['training_max']:,.6g}"
    return dbc.Col(html.Div([
        dbc.Label(field["name"], className="small mb-0"),
        dbc.Input(id=ids.model_field(index), type="number", required=True, step="any",
                  min=field["minimum"], max=field["maximum"], debounce=0.4,
                  inputmode="decimal", size="sm"),
        dbc.FormFeedback("A number, 0 or more." if field["minimum"] == 0 else "A number.",
                         type="invalid"),
        html.Div(hint, className="form-text small"),
    ]), xs=12, sm=6, xl=4, className="mb-2")


def layout() -> html.Section:
    return section(
        "models", "Saved models", "Keep a segmentation to reuse: score new customers here "
        "or through the JSON API (/api/v1, tokens on your account page).",
        dbc.Row([
            dbc.Col(_saved(), lg=6, className="mb-3"),
            dbc.Col(_scoring(), lg=6, className="mb-3"),
        ]),
        dcc.Store(id=ids.MODEL_OPEN),
        dcc.Store(id=ids.MODELS_CHANGED, data=0),
        dcc.Store(id=ids.MODEL_DELETE_PENDING),
        _confirm(),
    )
