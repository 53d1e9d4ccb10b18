"""Entry point: ``python app.py`` serves Persona Engine; ``gunicorn app:server`` too."""

from __future__ import annotations

import secrets

from dash import Dash, DiskcacheManager
from flask import g, has_request_context, request

import callbacks
from dashapp import api, auth
from dashapp.services import Services
from dashapp.settings import PROJECT_ROOT, Settings
from dashapp.threads import ForkSafeCache, web_process_openmp
from layouts import shell

SESSION_COOKIE = "persona_session"


def session_key() -> str:
    """The browser session of the current request (set on the first page load)."""
    return request.cookies.get(SESSION_COOKIE, "")


def _set_session_cookie(response):
    if SESSION_COOKIE not in request.cookies:
        response.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(24), httponly=True,
                            samesite="Lax")
    return response


def _request_memo() -> dict | None:
    """A dict for the current request only (what its callbacks read once), else ``None``."""
    if not has_request_context():
        return None
    if "persona_memo" not in g:
        g.persona_memo = {}
    return g.persona_memo


def create_app(settings: Settings | None = None) -> Dash:
    """Build one app with its own services and callbacks (safe to call many times)."""
    settings = settings or Settings.from_env()
    web_process_openmp()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    services = Services(settings)
    services.datasets.scope = _request_memo
    # Background jobs run in worker processes; their results travel through this disk cache.
    # Dash 4 takes cache_by on the manager (a callback's own cache_by is silently ignored).
    # Keyed by user and browser session, two users' identical inputs never share a job or
    # its result; without it the first to poll takes (and deletes) the other's result.
    manager = DiskcacheManager(ForkSafeCache(str(services.background_dir)), expire=3600,
                               cache_by=[auth.background_scope, session_key])
    app = Dash(
        __name__,
        title="Persona Engine",
        assets_folder=str(PROJECT_ROOT / "assets"),
        serve_locally=True,
        background_callback_manager=manager,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    csrf = auth.init_auth(app, services)
    api.init_api(app.server, services, csrf)
    app.server.after_request(_set_session_cookie)

    def page():
        # A function, so each page load shows its own user and CSRF token in the navbar.
        return shell.layout(settings, account=auth.page_account())

    app.layout = page
    callbacks.register(app, services, session_key)
    return app


def __getattr__(name: str):
    # gunicorn's ``app:server`` reads this attribute; building on demand keeps imports free
    # of side effects (tests import create_app without starting anything).
    if name == "server":
        return create_app().server
    raise AttributeError(name)


if __name__ == "__main__":
    settings = Settings.from_env()
    create_app(settings).run(host=settings.host, port=settings.port, debug=settings.debug)
