"""Shared fixtures: settings on a temporary instance folder, the real data, headless Chromium."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash.testing.application_runners import ThreadedRunner
from selenium.webdriver.chrome.options import Options

from dashapp.settings import Settings

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
