"""Browser flow: the page opens on the bundled sample and shows its personas."""

from __future__ import annotations

from app import create_app
from layouts import ids


def test_flow001_page_opens_with_the_sample_personas(dash_duo, settings):
    dash_duo.start_server(create_app(settings))
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "customers in 5 segments", timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.PERSONA_TABLE}", "Champions")
    rows = dash_duo.find_elements(f"#{ids.PERSONA_TABLE} tbody tr")
    assert len(rows) == 5
    dash_duo.select_dcc_dropdown(f"#{ids.SAMPLE}", index=1)
    dash_duo.wait_for_contains_text(f"#{ids.SUMMARY}", "Age", timeout=30)
    assert dash_duo.get_logs() == []
