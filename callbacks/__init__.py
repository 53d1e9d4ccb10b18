"""Callbacks: each module's ``register(app, services)`` wires layout ids to the core."""

from dash import Dash

from callbacks import overview
from dashapp.services import Services


def register(app: Dash, services: Services) -> None:
    """Register every section's callbacks on ``app`` (never module-level ``@dash.callback``)."""
    overview.register(app, services)
