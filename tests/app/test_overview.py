"""The app without a browser: pages answer, every callback id is in the layout."""

from __future__ import annotations

import json

from app import create_app
from layouts import ids


def _layout_ids(component) -> set[str]:
    found = set()
    if isinstance(component, dict):
        props = component.get("props", {})
        if "id" in props:
            found.add(props["id"] if isinstance(props["id"], str) else json.dumps(props["id"]))
        for value in props.values():
            found |= _layout_ids(value)
    elif isinstance(component, list):
        for item in component:
            found |= _layout_ids(item)
    return found


def test_pages_answer_and_callbacks_match_the_layout(settings):
    app = create_app(settings)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    present = _layout_ids(layout)
    dependencies = client.get("/_dash-dependencies").get_json()
    assert dependencies
    for dependency in dependencies:
        for item in dependency["inputs"] + dependency.get("state", []):
            assert item["id"] in present, item
        for output in dependency["output"].strip(".").split("..."):
            assert output.split(".")[0] in present, output


def test_sample_callback_returns_a_persona_table(settings):
    app = create_app(settings)
    client = app.server.test_client()
    body = {
        "output": f"..{ids.SUMMARY}.children...{ids.PERSONA_TABLE}.children..."
                  f"{ids.ERROR}.children..",
        "outputs": [{"id": ids.SUMMARY, "property": "children"},
                    {"id": ids.PERSONA_TABLE, "property": "children"},
                    {"id": ids.ERROR, "property": "children"}],
        "inputs": [{"id": ids.SAMPLE, "property": "value", "value": "retail"}],
        "changedPropIds": [f"{ids.SAMPLE}.value"],
    }
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    assert "customers in 5 segments" in response[ids.SUMMARY]["children"]
    text = json.dumps(response[ids.PERSONA_TABLE]["children"])
    assert "Champions" in text
    body["inputs"][0]["value"] = "no-such-sample"
    response = client.post("/_dash-update-component", json=body).get_json()["response"]
    assert "Unknown sample" in json.dumps(response[ids.ERROR]["children"])
