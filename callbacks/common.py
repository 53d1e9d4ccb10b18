"""What several sections' callbacks share."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash.exceptions import PreventUpdate

from dashapp.analysis import Analysis
from dashapp.errors import PersonaError
from dashapp.pipeline import Prepared
from dashapp.services import Services


def alert(message: str, color: str = "danger") -> dbc.Alert:
    """A message beside the control that caused it."""
    return dbc.Alert(message, color=color, className="py-2 small mb-2", dismissable=True)


def loaded(services: Services, state: dict | None) -> tuple[Prepared, Analysis]:
    """The data an analysis store names; when it is gone (a stale tab, a cleared cache that
    cannot be rebuilt) the views keep what they show instead of failing."""
    try:
        return services.from_state(state or {})
    except PersonaError as err:
        raise PreventUpdate from err
