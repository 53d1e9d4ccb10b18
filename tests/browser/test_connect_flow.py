"""Browser flow of the Connect dialog: a server path outside the roots is refused with a
message, one inside them becomes a dataset that opens and segments."""

from __future__ import annotations

import dataclasses
import shutil

from conftest import browser_login

from app import create_app
from layouts import ids


def test_con001_connect_a_server_file(dash_duo, settings, shared_data, tmp_path):
    root = tmp_path / "sources"
    root.mkdir()
    csv = shared_data / "sales_data_sample" / "sales_data_sample.csv"
    shutil.copy(csv, root / "sales.csv")
    browser_login(dash_duo, create_app(dataclasses.replace(settings, source_roots=(root,))))
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "segments", timeout=60)
    dash_duo.driver.execute_script("document.documentElement.style.scrollBehavior = 'auto';")
    dash_duo.find_element(f"#{ids.CONNECT_SHOW}").click()
    dash_duo.wait_for_contains_text(f"#{ids.CONNECT_HINT}", str(root), timeout=10)
    location = dash_duo.find_element(f"#{ids.CONNECT_LOCATION}")
    location.send_keys(str(csv))
    dash_duo.find_element(f"#{ids.CONNECT_GO}").click()
    dash_duo.wait_for_contains_text(f"#{ids.CONNECT_ALERT}", "outside the folders", timeout=30)
    location.clear()
    location.send_keys(str(root / "sales.csv"))
    dash_duo.find_element(f"#{ids.CONNECT_GO}").click()
    dash_duo.wait_for_contains_text(f"#{ids.DATASET_INFO}", "92 customers", timeout=60)
    dash_duo.wait_for_contains_text(f"#{ids.DATASET_LIST}", "sales.csv", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "92", timeout=60)
    assert dash_duo.get_logs() == []
