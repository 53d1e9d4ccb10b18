"""Browser flows of the dashboard (headless Chromium through dash_duo, a fresh app each)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import browser_login
from selenium.webdriver.common.keys import Keys

from app import create_app
from dashapp.settings import Settings
from layouts import ids
from layouts.segments import metric_id

ARTIFACTS = Path("/tmp/dash_artifacts")


def _start(dash_duo, settings):
    browser_login(dash_duo, create_app(settings))
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "segments", timeout=60)
    # Bootstrap scrolls smoothly; selenium would click while the page is still moving.
    dash_duo.driver.execute_script("document.documentElement.style.scrollBehavior = 'auto';")


def _cards(dash_duo) -> list:
    return dash_duo.find_elements(f"#{ids.PERSONA_CARDS} .pe-persona-card")


def _wait_cards(dash_duo, n: int, timeout: float = 60) -> None:
    dash_duo.wait_for_element(f"#{ids.PERSONA_CARDS} .pe-persona-card", timeout=timeout)
    deadline = time.monotonic() + timeout
    while len(_cards(dash_duo)) != n:
        assert time.monotonic() < deadline, f"{len(_cards(dash_duo))} persona cards, not {n}"
        time.sleep(0.2)


def _radar_traces(dash_duo) -> int:
    return dash_duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.RADAR} .js-plotly-plot');"
        "return g && g.data ? g.data.length : -1;")


def _select_card(dash_duo, index: int) -> int:
    """Click a persona card; returns its segment's size as the card states it."""
    card = _cards(dash_duo)[index]
    size = int(card.text.split("\n")[1].split(" customers")[0].replace(",", ""))
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    card.click()
    return size


def _download_csv(dash_duo) -> list[dict]:
    """Click the CSV download and read the file the browser saved."""
    dash_duo.find_element(f"#{ids.DOWNLOAD_CSV}").click()
    folder = Path(dash_duo.download_path)
    deadline = time.monotonic() + 20
    while not list(folder.glob("*.csv")):
        assert time.monotonic() < deadline, "no CSV downloaded"
        time.sleep(0.2)
    time.sleep(0.5)  # the file appears before Chrome has finished writing it
    with next(folder.glob("*.csv")).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _upload(dash_duo, path: Path) -> None:
    dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]").send_keys(str(path))


def test_flow001_opens_with_the_sample_scatter_and_radar(dash_duo, settings):
    _start(dash_duo, settings)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "retail_transactions.csv")
    dash_duo.wait_for_element(f"#{ids.SCATTER_3D} .gl-container, #{ids.SCATTER_3D} canvas",
                              timeout=30)
    dash_duo.wait_for_element(f"#{ids.RADAR} .polarlayer path", timeout=30)
    cards = len(_cards(dash_duo))
    assert cards >= 2
    assert _radar_traces(dash_duo) == cards
    dash_duo.wait_for_contains_text(f"#{ids.REPORT}", "Rows read")
    # Hiding a segment in the radar's legend selects the others everywhere.
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", "customers shown")
    total = _row_count(dash_duo)
    entry = dash_duo.find_elements(f"#{ids.RADAR} .legend .traces .legendtoggle")[0]
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", entry)
    entry.click()
    dash_duo.wait_for_element(f"#{ids.PERSONA_CARDS} .pe-dimmed")
    assert len(dash_duo.find_elements(f"#{ids.PERSONA_CARDS} .pe-selected")) == cards - 1
    deadline = time.monotonic() + 10
    while _row_count(dash_duo) == total:
        assert time.monotonic() < deadline, "the grid did not follow the legend"
        time.sleep(0.2)
    assert dash_duo.get_logs() == []


def test_flow002_upload_sales_data_gives_92_customers_in_4_personas(dash_duo, settings,
                                                                    shared_data):
    _start(dash_duo, settings)
    _upload(dash_duo, shared_data / "sales_data_sample" / "sales_data_sample.csv")
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "sales_data_sample.csv: 92 customers",
                                    timeout=60)
    _wait_cards(dash_duo, 4)
    dash_duo.wait_for_contains_text(f"#{metric_id('silhouette')}", "0.49")
    dash_duo.wait_for_text_to_equal(f"#{metric_id('stability')}", "1.000", timeout=60)
    dash_duo.wait_for_contains_text(f"#{ids.REPORT}", "cp1252")
    assert dash_duo.get_logs() == []


def test_flow003_k_of_5_gives_5_cards_and_5_radar_traces(dash_duo, settings, shared_data):
    _start(dash_duo, settings)
    _upload(dash_duo, shared_data / "sales_data_sample" / "sales_data_sample.csv")
    # The sample shows 4 cards too: wait for the upload's own segmentation, or the clicks
    # below land while its fit still runs.
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "sales_data_sample.csv: 92 customers",
                                    timeout=60)
    _wait_cards(dash_duo, 4)
    dash_duo.find_element(f"label[for={ids.K_AUTO}]").click()
    dash_duo.wait_for_no_elements(f"#{ids.K_SLIDER} [data-disabled]")
    thumb = dash_duo.find_element(f"#{ids.K_SLIDER} [role=slider]")
    assert thumb.get_attribute("aria-valuenow") == "4"
    thumb.click()
    thumb.send_keys(Keys.ARROW_RIGHT)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "in 5 segments", timeout=60)
    _wait_cards(dash_duo, 5)
    assert _radar_traces(dash_duo) == 5
    assert dash_duo.get_logs() == []


# A component's prop as the renderer holds it (the layout in its store, found by id).
_PROP = """
const state = window.dash_stores[0].getState();
let node = state.layout;
for (const step of state.paths.strs[arguments[0]]) { node = node[step]; }
return node.props[arguments[1]];
"""


def test_flow011_a_segmentation_answer_is_shown_only_for_the_controls_it_answered(dash_duo,
                                                                                   settings):
    # The background job's answer goes through persona.jobAnswer: an answer to older controls
    # (a job that ended just before a later change was answered from the cache) is dropped;
    # one to the controls shown is applied, its alert too.
    _start(dash_duo, settings)
    _wait_cards(dash_duo, len(_cards(dash_duo)))
    summary = dash_duo.find_element(f"#{ids.SUMMARY}").text
    store = dash_duo.driver.execute_script(_PROP, ids.DATASET, "data")
    now = {"store": store, "algorithm": "kmeans", "auto": True, "k": 4,
           "features": ["recency", "frequency", "monetary"], "scaling": "standard",
           "pca": False, "seed": 0}
    values = [dash_duo.driver.execute_script(_PROP, name, "value") for name in (
        ids.ALGORITHM, ids.K_AUTO, ids.K_SLIDER, ids.FEATURES, ids.SCALING, ids.PCA, ids.SEED)]
    assert values == [now[key] for key in list(now)[1:]], values

    def answer(request, text):
        alert = {"type": "Alert", "namespace": "dash_bootstrap_components",
                 "props": {"children": text, "color": "danger"}}
        dash_duo.driver.execute_script(
            "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});",
            ids.ANALYSIS_JOB, {"request": request, "state": None, "alert": alert})

    for older in ({**now, "k": 6}, {**now, "auto": False}, {**now, "seed": 1},
                  {**now, "store": {**store, "dataset": "another"}}):
        answer(older, "an older answer")
    time.sleep(1.5)
    assert "an older answer" not in dash_duo.find_element(f"#{ids.SEGMENT_ALERT}").text
    answer({**now, "store": {**store, "mapping": None}}, "this answer")
    dash_duo.wait_for_contains_text(f"#{ids.SEGMENT_ALERT} .alert-danger", "this answer")
    # An answer without a state keeps the segmentation shown.
    assert dash_duo.find_element(f"#{ids.SUMMARY}").text == summary
    assert dash_duo.get_logs() == []


def test_flow012_a_new_fit_shows_its_figures_then_its_silhouette(dash_duo, settings):
    # MiniBatch is not in K-Means' sweep: its figures come first, the silhouette card says
    # "…" until its own job answers; an answer for another analysis is not shown.
    _start(dash_duo, settings)
    _wait_cards(dash_duo, len(_cards(dash_duo)))
    card = f"#{metric_id('silhouette')}"
    dash_duo.wait_for_contains_text(card, "0.")
    dash_duo.select_dcc_dropdown(f"#{ids.ALGORITHM}", index=1)  # MiniBatch K-Means
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "(minibatch, k = ", timeout=60)
    deadline = time.monotonic() + 60
    while not dash_duo.find_element(card).text[:1].isdigit():
        assert time.monotonic() < deadline, dash_duo.find_element(card).text
        time.sleep(0.2)
    shown = dash_duo.find_element(card).text
    state = dash_duo.driver.execute_script(_PROP, ids.ANALYSIS, "data")
    assert state["controls"]["algorithm"] == "minibatch"

    def answer(state, text):
        dash_duo.driver.execute_script(
            "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});",
            ids.SILHOUETTE_ANSWER, {"state": state, "text": text})

    answer({**state, "controls": {**state["controls"], "algorithm": "gmm"}}, "-0.999")
    time.sleep(1.0)
    assert dash_duo.find_element(card).text == shown
    answer(state, "0.123 (this analysis)")
    dash_duo.wait_for_text_to_equal(card, "0.123 (this analysis)")
    assert dash_duo.get_logs() == []


def _row_count(dash_duo) -> int:
    text = dash_duo.find_element(f"#{ids.ROW_COUNT}").text
    return int(text.split(" of ")[0].replace(",", ""))


def test_flow004_one_segment_filters_the_grid_and_the_csv(dash_duo, settings, shared_data):
    _start(dash_duo, settings)
    _upload(dash_duo, shared_data / "sales_data_sample" / "sales_data_sample.csv")
    _wait_cards(dash_duo, 4)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", "92 of 92")
    size = _select_card(dash_duo, 1)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", f"{size} of 92")
    assert _row_count(dash_duo) == size
    rows = _download_csv(dash_duo)
    assert len(rows) == size
    assert {row["segment"] for row in rows} == {"1"}
    assert dash_duo.get_logs() == []


def test_flow005_broken_upload_alerts_and_keeps_the_data(dash_duo, settings, tmp_path):
    _start(dash_duo, settings)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "retail_transactions.csv")
    before = dash_duo.find_element(f"#{ids.SUMMARY}").text
    broken = tmp_path / "customers.csv"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    _upload(dash_duo, broken)
    dash_duo.wait_for_element(f"#{ids.UPLOAD_ALERT} .alert-danger", timeout=30)
    assert "Still showing retail_transactions.csv" in \
        dash_duo.find_element(f"#{ids.UPLOAD_ALERT}").text
    assert dash_duo.find_element(f"#{ids.SUMMARY}").text == before
    assert len(_cards(dash_duo)) >= 2
    assert dash_duo.get_logs() == []


def test_flow006_phone_width_has_no_horizontal_scroll(dash_duo, settings):
    dash_duo.driver.set_window_size(390, 844)
    _start(dash_duo, settings)
    dash_duo.wait_for_element(f"#{ids.RADAR} .polarlayer path", timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", "customers shown")
    width, viewport = dash_duo.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];")
    assert width <= viewport, (width, viewport)
    assert not dash_duo.find_element(f"#{ids.CONTROLS_PANEL}").is_displayed() or \
        "show" not in dash_duo.find_element(f"#{ids.CONTROLS_PANEL}").get_attribute("class")
    dash_duo.find_element(f"#{ids.CONTROLS_OPEN}").click()
    dash_duo.wait_for_class_to_equal(f"#{ids.CONTROLS_PANEL}",
                                     "offcanvas-lg offcanvas-start pe-controls show")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.6)  # the drawer slides in for 0.3 s
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "phone-390x844.png"))
    width = dash_duo.driver.execute_script("return document.documentElement.scrollWidth;")
    assert width <= viewport
    assert dash_duo.get_logs() == []


def test_flow007_large_tables_page_from_the_server(dash_duo, tmp_path, shared_data):
    # The threshold is lowered so that the paper's 92 customers take the server path.
    settings = Settings(instance_dir=tmp_path / "instance", grid_client_rows=50)
    _start(dash_duo, settings)
    _upload(dash_duo, shared_data / "sales_data_sample" / "sales_data_sample.csv")
    _wait_cards(dash_duo, 4)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", "92 of 92")
    assert dash_duo.find_element(f"#{ids.QUICK_SEARCH}").get_attribute("disabled")
    size = _select_card(dash_duo, 1)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", f"{size} of 92")
    rows = _download_csv(dash_duo)
    assert len(rows) == size and {row["segment"] for row in rows} == {"1"}
    assert dash_duo.get_logs() == []


def test_flow008_cancel_stops_a_running_segmentation(dash_duo, settings, tmp_path):
    # A k sweep over 20,000 customers takes seconds (9 K-Means fits with 10 starts each):
    # long enough to cancel. Only a new scaling needs a new sweep.
    rng = np.random.default_rng(0)
    n = 20_000
    table = tmp_path / "many_customers.csv"
    pd.DataFrame({
        "customer_id": [f"K{i:06d}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "annual_income": rng.lognormal(10, 0.5, n).round(0),
        "spending_score": rng.integers(1, 101, n),
    }).to_csv(table, index=False)
    _start(dash_duo, settings)
    _upload(dash_duo, table)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "many_customers.csv: 20,000 customers",
                                    timeout=120)
    dash_duo.wait_for_style_to_equal(f"#{ids.PROGRESS_WRAP}", "visibility", "hidden",
                                     timeout=60)
    before = dash_duo.find_element(f"#{ids.SUMMARY}").text
    dash_duo.select_dcc_dropdown(f"#{ids.SCALING}", index=2)  # robust: a new sweep
    dash_duo.wait_for_style_to_equal(f"#{ids.PROGRESS_WRAP}", "visibility", "visible")
    cancel = dash_duo.find_element(f"#{ids.CANCEL}")
    dash_duo.wait_for_no_elements(f"#{ids.CANCEL}[disabled]")
    cancel.click()
    dash_duo.wait_for_style_to_equal(f"#{ids.PROGRESS_WRAP}", "visibility", "hidden",
                                     timeout=20)
    time.sleep(3)
    assert dash_duo.find_element(f"#{ids.SUMMARY}").text == before
    assert dash_duo.get_logs() == []


def test_flow009_the_customer_table_sample_segments_on_its_attributes(dash_duo, settings):
    _start(dash_duo, settings)
    dash_duo.select_dcc_dropdown(f"#{ids.SAMPLE}", index=1)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "mall_style_customers.csv: 400 customers",
                                    timeout=60)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "Spending Score (1-100)")
    dash_duo.wait_for_contains_text(f"#{ids.REPORT}", "customer table")
    dash_duo.wait_for_element(f"#{ids.RADAR} .polarlayer path", timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.ROW_COUNT}", "400 of 400")
    assert len(_cards(dash_duo)) >= 2
    assert dash_duo.get_logs() == []


def _dataset_names(dash_duo) -> list[str]:
    # Read in one script: the list is redrawn while a loop of element look-ups would run.
    return dash_duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{ids.DATASET_LIST} .pe-dataset-name'))"
        ".map(e => e.textContent);")


def _wait_names(dash_duo, names: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sorted(_dataset_names(dash_duo)) != sorted(names):
        assert time.monotonic() < deadline, f"datasets {_dataset_names(dash_duo)}, not {names}"
        time.sleep(0.2)


def _click(dash_duo, element) -> None:
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _press(dash_duo, button: str) -> None:
    """Click a button of the confirmation dialog, which may still be fading in."""
    dash_duo.driver.execute_script("arguments[0].click();", dash_duo.find_element(f"#{button}"))


def _click_line(dash_duo, kind: str, name: str) -> None:
    """Click the open or delete button on the list line of the dataset called ``name``."""
    found = dash_duo.driver.execute_script(
        f"const lines = document.querySelectorAll('#{ids.DATASET_LIST} .list-group-item');"
        "for (const line of lines) {"
        "  if (line.querySelector('.pe-dataset-name').textContent === arguments[0]) {"
        "    const b = line.querySelector(`button[id*='${arguments[1]}']`);"
        "    b.scrollIntoView({block: 'center'}); b.click(); return true; } }"
        "return false;", name, kind)
    assert found, f"no dataset {name!r} in the list"


def test_flow010_datasets_list_open_rename_delete(dash_duo, settings, shared_data):
    _start(dash_duo, settings)
    _wait_names(dash_duo, ["retail_transactions.csv"])
    _upload(dash_duo, shared_data / "sales_data_sample" / "sales_data_sample.csv")
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "sales_data_sample.csv: 92 customers",
                                    timeout=60)
    _wait_names(dash_duo, ["retail_transactions.csv", "sales_data_sample.csv"])
    assert "2,823 rows" in dash_duo.find_element(f"#{ids.DATASET_LIST}").text
    # Open the sample again from the list.
    _click_line(dash_duo, "open", "retail_transactions.csv")
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "retail_transactions.csv:", timeout=60)
    # Rename the open dataset; an empty name is refused with a message.
    rename = dash_duo.find_element(f"#{ids.RENAME_INPUT}")
    rename.send_keys(Keys.CONTROL, "a")
    rename.send_keys(Keys.BACKSPACE)
    _click(dash_duo, dash_duo.find_element(f"#{ids.RENAME_APPLY}"))
    dash_duo.wait_for_contains_text(f"#{ids.DATASETS_ALERT}", "Give the dataset a name",
                                    timeout=30)
    rename.send_keys("Retail 2024")
    _click(dash_duo, dash_duo.find_element(f"#{ids.RENAME_APPLY}"))
    _wait_names(dash_duo, ["Retail 2024", "sales_data_sample.csv"])
    # Delete the open dataset (after confirming): the dashboard moves to the other one.
    _click_line(dash_duo, "delete", "Retail 2024")
    dash_duo.wait_for_contains_text(f"#{ids.DELETE_TEXT}", "Retail 2024", timeout=30)
    _press(dash_duo, ids.DELETE_YES)
    dash_duo.wait_for_contains_text(f"#{ids.DATASETS_ALERT}", "Deleted Retail 2024",
                                    timeout=30)
    _wait_names(dash_duo, ["sales_data_sample.csv"])
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "sales_data_sample.csv: 92 customers",
                                    timeout=60)
    # Cancelling keeps it; deleting the last one leaves an empty dashboard with a message.
    _click_line(dash_duo, "delete", "sales_data_sample.csv")
    dash_duo.wait_for_contains_text(f"#{ids.DELETE_TEXT}", "sales_data_sample.csv", timeout=30)
    _press(dash_duo, ids.DELETE_NO)
    dash_duo.wait_for_no_elements(f"#{ids.DELETE_CONFIRM}.show", timeout=10)
    assert _dataset_names(dash_duo) == ["sales_data_sample.csv"]
    _click_line(dash_duo, "delete", "sales_data_sample.csv")
    dash_duo.wait_for_contains_text(f"#{ids.DELETE_TEXT}", "sales_data_sample.csv", timeout=30)
    _press(dash_duo, ids.DELETE_YES)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "No dataset is open", timeout=60)
    dash_duo.wait_for_contains_text(f"#{ids.DATASET_INFO}", "No dataset is open")
    _wait_names(dash_duo, [])
    assert _cards(dash_duo) == []
    assert dash_duo.get_logs() == []
