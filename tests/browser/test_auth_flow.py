"""The account flow in headless Chromium: register, log in, the dashboard, log out."""

from __future__ import annotations

from pathlib import Path

from conftest import EMAIL, PASSWORD

from app import create_app
from layouts import ids

ARTIFACTS = Path("/tmp/dash_artifacts")


def _fill(dash_duo, values: dict[str, str], submit: str) -> None:
    for selector, value in values.items():
        field = dash_duo.wait_for_element(selector)
        field.clear()
        field.send_keys(value)
    dash_duo.find_element(submit).click()


def _page_width(dash_duo) -> int:
    return dash_duo.driver.execute_script("return document.documentElement.scrollWidth;")


def test_auth_flow001_register_log_in_dashboard_log_out(dash_duo, settings):
    app = create_app(settings)
    dash_duo.start_server(app, navigate=False)
    url = dash_duo.server.url.rstrip("/")

    # Phone width throughout: the account pages and the navbar fit 360 px.
    dash_duo.driver.set_window_size(360, 800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # A new server has nobody: the first visit offers registration.
    dash_duo.driver.get(f"{url}/")
    dash_duo.wait_for_element("#register-form")
    assert _page_width(dash_duo) <= 360
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "auth_flow001_register_360.png"))
    _fill(dash_duo, {"#register-email": EMAIL, "#register-password": PASSWORD,
                     "#register-confirm": PASSWORD}, "#register-submit")
    dash_duo.wait_for_contains_text(".alert", "the account is ready: log in")
    assert dash_duo.driver.current_url.endswith("/login")

    _fill(dash_duo, {"#login-email": EMAIL, "#login-password": PASSWORD}, "#login-submit")
    dash_duo.wait_for_element(dash_duo.dash_entry_locator, timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "segments", timeout=60)
    # The email shows from 768 px up; on a phone it is the title of the hidden span.
    assert dash_duo.find_element(f"#{ids.USER_EMAIL}").get_attribute("title") == EMAIL

    dash_duo.driver.save_screenshot(str(ARTIFACTS / "auth_flow001_navbar_360.png"))
    assert _page_width(dash_duo) <= 360
    assert dash_duo.find_element(f"#{ids.LOGOUT}").is_displayed()

    dash_duo.find_element(f"#{ids.LOGOUT}").click()
    dash_duo.wait_for_contains_text(".alert", "You are logged out.")
    dash_duo.driver.get(f"{url}/")
    dash_duo.wait_for_element("#login-form")
    assert "/login?next=/" in dash_duo.driver.current_url
    dash_duo.driver.get(f"{url}/account")
    dash_duo.wait_for_element("#login-form")
    assert dash_duo.get_logs() == []
