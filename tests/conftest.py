"""Shared fixtures: settings on a temporary instance folder, the real data, headless Chromium,
accounts and logged-in clients (Flask test client and browser)."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from dash.testing.application_runners import ThreadedRunner
from flask.testing import FlaskClient
from postgres_server import metadata_url, postgres  # noqa: F401  (fixtures: tests/postgres_server.py)
from selenium.webdriver.chrome.options import Options

from dashapp import accounts, auth
from dashapp.db import Database
from dashapp.settings import Settings
from dashapp.threads import web_process_openmp

CHROMIUM = Path("/usr/lib/chromium/chromium")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BROWSER_TESTS = Path(__file__).resolve().parent / "browser"

# Chromium otherwise makes dozens of DNS look-ups per start (updates, sync, translate, ...);
# offline each one waits for a timeout. Only the test server on localhost is reachable.
OFFLINE_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=OptimizationHints,NetworkTimeServiceQuerying,MediaRouter,Translate",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
)


def pytest_configure(config: pytest.Config) -> None:
    # This process plays the web process: tests fit K-Means in it and then fork background
    # workers from it, exactly the case dashapp/threads.py guards against.
    web_process_openmp()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Background jobs are this process's children, and multiprocess joins them at exit: one
    # that never ends (a job a test left running, or a hang) would keep the run from ever
    # finishing. Whatever a test still needed of it has already passed or failed by now.
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


def pytest_setup_options() -> Options:
    """Chrome options for dash's fixtures; dash adds --no-sandbox and friends itself.

    Called once per browser, and dash appends to what it gets, so build a fresh object.
    """
    options = Options()
    # Without a display Chrome exits at once and dash retries for 30 s before failing.
    options.add_argument("--headless=new")
    # /usr/bin/chromium is a wrapper script that prints noise; point at the real binary.
    if CHROMIUM.exists():
        options.binary_location = str(CHROMIUM)
    for flag in OFFLINE_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    return options


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FreePortRunner(ThreadedRunner):
    """dash's threaded runner, on a port the OS says is free instead of 58050, 58051, ...

    Two test runs on one machine (two checkouts, CI and a developer) would otherwise collide.
    """

    def start(self, app, start_timeout=3, **kwargs):
        kwargs.setdefault("port", _free_port())
        super().start(app, start_timeout=start_timeout, **kwargs)


@pytest.fixture
def dash_thread_server() -> Iterator[FreePortRunner]:
    """Replaces dash's fixture of the same name, which ``dash_duo`` requests."""
    with FreePortRunner() as runner:
        yield runner


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with runtime files in a folder of this test's own."""
    return Settings(instance_dir=tmp_path / "instance")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data in ``../shared/data`` beside the repository (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"Real test data not found at {SHARED_DATA}: these tests expect the shared data "
            "folder beside the repository (../shared/data with sales_data_sample/, "
            "online_retail/, mall_customers/).",
            pytrace=False,
        )
    return SHARED_DATA


# ---- accounts ---------------------------------------------------------------------------

EMAIL = "ana@example.com"
PASSWORD = "correct horse battery"
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _database(target) -> Database:
    if isinstance(target, Database):
        return target
    if hasattr(target, "db"):
        return target.db
    server = getattr(target, "server", target)
    return auth.services_of(server).db


def create_account(target, email: str = EMAIL, password: str = PASSWORD) -> int:
    """The id of the account ``email`` (created with ``password`` unless it exists).

    ``target``: a Dash app from ``create_app``, its Flask server, a ``Services`` or a
    ``Database``.
    """
    db = _database(target)
    user_id = accounts.create_user(db, email, password)
    return user_id if user_id is not None else accounts.user_id_of(db, email)


class AuthClient(FlaskClient):
    """Flask's test client that sends the CSRF header as Dash's renderer does: the
    ``_csrf_token`` cookie's value as ``X-CSRFToken`` on every POST, PUT, PATCH and DELETE
    (``csrf=False`` leaves it out)."""

    def csrf_headers(self) -> dict[str, str]:
        cookie = self.get_cookie(auth.CSRF_COOKIE)
        return {"X-CSRFToken": cookie.value} if cookie else {}

    def open(self, *args, csrf: bool = True, **kwargs):
        if csrf and str(kwargs.get("method", "GET")).upper() in {"POST", "PUT", "PATCH",
                                                                 "DELETE"}:
            headers = dict(kwargs.get("headers") or {})
            for name, value in self.csrf_headers().items():
                headers.setdefault(name, value)
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def form_token(self, path: str = "/login") -> str:
        """The CSRF token of the form on ``path`` (for posting forms)."""
        page = self.get(path).get_data(as_text=True)
        found = _FORM_CSRF.search(page)
        assert found, f"no CSRF token in the form of {path}"
        return found.group(1)


def http_login(app, email: str = EMAIL, password: str = PASSWORD, create: bool = True,
               **client_kwargs) -> AuthClient:
    """A test client of ``app`` logged in as ``email`` through the real login form."""
    if create:
        create_account(app, email, password)
    server = getattr(app, "server", app)
    client = AuthClient(server, server.response_class, use_cookies=True, **client_kwargs)
    answer = client.post("/login", data={"email": email, "password": password,
                                         "csrf_token": client.form_token("/login")})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def browser_login(dash_duo, app, email: str = EMAIL, password: str = PASSWORD,
                  create: bool = True) -> None:
    """Start ``app`` under dash_duo, log in through the login form, open the dashboard."""
    if create:
        create_account(app, email, password)
    dash_duo.start_server(app, navigate=False)
    url = dash_duo.server.url.rstrip("/")
    # Log in towards the account page (no Dash there), then open the dashboard once.
    dash_duo.driver.get(f"{url}/login?next=/account")
    dash_duo.wait_for_element("#login-email").send_keys(email)
    dash_duo.find_element("#login-password").send_keys(password)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#account-email", timeout=20)
    dash_duo.server_url = url


@pytest.fixture
def make_user() -> Callable[..., int]:
    """``make_user(app_or_services, email=EMAIL, password=PASSWORD) -> user id``."""
    return create_account


@pytest.fixture
def login_client() -> Callable[..., AuthClient]:
    """``login_client(app, email=EMAIL, password=PASSWORD) -> AuthClient``, logged in, its
    POSTs carrying the CSRF header; ``client.csrf_headers()`` gives the header itself."""
    return http_login


@pytest.fixture
def login() -> Callable[..., None]:
    """``login(dash_duo, app, email=EMAIL, password=PASSWORD)``: the browser, logged in,
    on the dashboard."""
    return browser_login
