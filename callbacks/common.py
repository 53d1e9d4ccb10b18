"""What several sections' callbacks share: the user of the request, alerts, input checks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, ctx, no_update
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


def clicked() -> bool:
    """Whether the trigger was a real click (a redrawn pattern-matched button fires with
    ``n_clicks`` None)."""
    return bool(ctx.triggered and ctx.triggered[0].get("value"))


def confirm_delete(app: Dash, button, no: str, yes: str, pending: str, dialog: str,
                   text: str, describe: Callable[[int, object], tuple[str, object]]) -> None:
    """The confirm dialog of a list's delete buttons (``button(ALL)`` pattern ids).

    A click opens ``dialog`` with ``describe(user, index)``'s text and keeps the item's id in
    the ``pending`` store for the "yes" callback; an item that is not the user's (or gone)
    opens nothing: ``describe`` raises PersonaError then.
    """
    @app.callback(
        Output(pending, "data"),
        Output(dialog, "is_open"),
        Output(text, "children"),
        Input(button(ALL), "n_clicks"),
        Input(no, "n_clicks"),
        Input(yes, "n_clicks"),
        prevent_initial_call=True,
    )
    def _ask_delete(_deletes, _no, _yes):
        if not clicked():
            raise PreventUpdate
        triggered = ctx.triggered_id
        if not isinstance(triggered, dict):
            return no_update, False, no_update
        try:
            item_id, body = describe(current_user(), triggered.get("index"))
        except PersonaError:
            raise PreventUpdate from None
        return item_id, True, body


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
