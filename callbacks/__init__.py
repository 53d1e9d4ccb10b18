"""Callbacks: each module's ``register(app, services)`` wires layout ids to the core."""

from __future__ import annotations

from collections.abc import Callable

from dash import Dash

from callbacks import customers, data, explore, models, personas, segments, selection
from dashapp.services import Services


def register(app: Dash, services: Services, session_key: Callable[[], str]) -> None:
    """Register every section's callbacks on ``app`` (never module-level ``@dash.callback``).

    ``session_key`` names the browser session; background results are cached by it, so two
    sessions with the same inputs never receive each other's results.
    """
    data.register(app, services)
    explore.register(app, services)
    segments.register(app, services, session_key)
    personas.register(app, services)
    customers.register(app, services)
    models.register(app, services)
    selection.register(app)
