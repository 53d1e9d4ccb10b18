"""What several sections' callbacks share: the user of the request, alerts, input checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dash_bootstrap_components as dbc
from dash.exceptions import PreventUpdate

from dashapp.analysis import Analysis
from dashapp.auth import current_user_id
from dashapp.errors import PersonaError
from dashapp.pipeline import Prepared
from dashapp.services import Services

#: The most segments a selection store or a contact list may name.
_SEGMENTS_MAX = 1000


def current_user() -> int:
    """The logged-in user of this request or background job, from the server session.

    Never from a store: the browser can send any id. Raises ``NotAuthenticatedError``.
    """
    return current_user_id()


def user_cache_key() -> str:
    """For background callbacks' ``cache_by``: two users' identical inputs never share a
    result."""
    return str(current_user())


def alert(message: str, color: str = "danger") -> dbc.Alert:
    """A message beside the control that caused it."""
    return dbc.Alert(message, color=color, className="py-2 small mb-2", dismissable=True)


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Inside it, data that is gone (a stale tab, a dataset deleted meanwhile, an id that is
    not the user's) leaves the view as it is (PreventUpdate) instead of failing."""
    try:
        yield
    except PersonaError as err:
        raise PreventUpdate from err


def loaded(services: Services, user_id: int, state: dict | None) -> tuple[Prepared, Analysis]:
    """The data an analysis store names; when it is gone the views keep what they show."""
    with kept():
        return services.from_state(user_id, state or {})


def segments(selected: object) -> list[int]:
    """A selection store's segment numbers; anything else is no selection."""
    if not isinstance(selected, list):
        return []
    return [s for s in selected[:_SEGMENTS_MAX]
            if isinstance(s, int) and not isinstance(s, bool)]


def column_choice(value: object, allowed) -> str | None:
    """``value`` when it is one of ``allowed`` column names, else ``None``."""
    return value if isinstance(value, str) and value in set(allowed) else None
