"""Browser flow of saved models: save the segmentation, see it listed with its personas, score
a new customer live, and the browser's own check of a value out of range."""

from __future__ import annotations

from pathlib import Path

from conftest import browser_login
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from app import create_app
from layouts import ids

ARTIFACTS = Path("/tmp/dash_artifacts")


def _field(dash_duo, index: int):
    return dash_duo.find_element(f"#{ids.SCORE_FIELDS} input[id*='\"index\":{index}']")


def _type(element, text: str) -> None:
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def test_models001_save_then_score_a_new_customer(dash_duo, settings):
    browser_login(dash_duo, create_app(settings))
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "segments", timeout=60)
    dash_duo.driver.execute_script("document.documentElement.style.scrollBehavior = 'auto';")
    name = dash_duo.find_element(f"#{ids.MODEL_NAME}")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", name)
    name.send_keys("Retail, first try")
    dash_duo.find_element(f"#{ids.MODEL_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.MODEL_ALERT}", "Saved as Retail, first try.",
                                    timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.MODEL_LIST}", "Retail, first try")
    dash_duo.wait_for_contains_text(f"#{ids.MODEL_DETAIL}", "recency counted to")
    personas = dash_duo.find_elements(f"#{ids.MODEL_DETAIL} .pe-model-persona")
    assert len(personas) >= 2

    dash_duo.wait_for_element(f"#{ids.SCORE_FIELDS} input[type=number]")
    for index, value in enumerate(("12", "6", "2500")):
        _type(_field(dash_duo, index), value)
    dash_duo.wait_for_contains_text(f"#{ids.SCORE_RESULT}", "This customer is", timeout=20)
    persona = dash_duo.find_element(f"#{ids.SCORE_RESULT} .pe-score-persona").text
    assert persona in {p.text.split(" — ")[0].split(" · ", 1)[1] for p in personas}
    dash_duo.wait_for_contains_text(f"#{ids.SCORE_RESULT}", "R/F/M scores")

    # Out of range: the browser marks the field and sends no value, so no persona shows.
    recency = _field(dash_duo, 0)
    _type(recency, "-3")
    dash_duo.wait_for_element(f"#{ids.SCORE_FIELDS} input.is-invalid[id*='\"index\":0']")
    dash_duo.wait_for_contains_text(f"#{ids.SCORE_RESULT}", "Fill in recency", timeout=20)
    _type(recency, "30")
    dash_duo.wait_for_contains_text(f"#{ids.SCORE_RESULT}", "This customer is", timeout=20)
    assert not dash_duo.find_elements(f"#{ids.SCORE_FIELDS} input.is-invalid")
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "models001.png"))

    # On a phone the section fits the screen: once the charts have followed the resize,
    # nothing scrolls sideways.
    dash_duo.driver.set_window_size(390, 844)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});",
                                   dash_duo.find_element(f"#{ids.SCORE_FIELDS}"))
    fits = "return document.documentElement.scrollWidth <= window.innerWidth;"
    WebDriverWait(dash_duo.driver, 10).until(lambda driver: driver.execute_script(fits))
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "models001-phone.png"))
    assert dash_duo.get_logs() == []
