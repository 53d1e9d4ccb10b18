"""Entry point: ``python app.py`` serves Persona Engine; ``gunicorn app:server`` too."""

from __future__ import annotations

from functools import partial

from dash import Dash

import callbacks
from dashapp.services import Services
from dashapp.settings import PROJECT_ROOT, Settings
from layouts import overview


def create_app(settings: Settings | None = None) -> Dash:
    """Build one app with its own services and callbacks (safe to call many times)."""
    settings = settings or Settings.from_env()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    app = Dash(
        __name__,
        title="Persona Engine",
        assets_folder=str(PROJECT_ROOT / "assets"),
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    services = Services(settings)
    services.init_app(app.server)
    app.layout = partial(overview.layout, settings.sample)
    callbacks.register(app, services)
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
