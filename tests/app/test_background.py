"""Background callbacks over HTTP, the way the renderer runs them (post, then poll)."""

from __future__ import annotations

from app import create_app
from benchmarks.interactive import Client
from dashapp.analysis import Controls
from dashapp.services import Services
from layouts import ids


def _controls(store: dict, k: int) -> dict:
    return {f"{ids.DATASET}.data": store, f"{ids.ALGORITHM}.value": "kmeans",
            f"{ids.K_AUTO}.value": False, f"{ids.K_SLIDER}.value": k,
            f"{ids.FEATURES}.value": ["recency", "frequency", "monetary"],
            f"{ids.SCALING}.value": "standard", f"{ids.PCA}.value": False,
            f"{ids.SEED}.value": 0}


def test_bg001_worker_answers_after_kmeans_ran_in_the_web_process(settings):
    # GNU OpenMP hangs a forked child whose parent started its thread pool: the web process
    # computing an analysis itself (a cache miss) must not poison later background jobs.
    services = Services(settings)
    key, filename = services.sample_dataset("retail")
    services.analysis(key, None, Controls())
    client = Client(create_app(settings))
    store = {"key": key, "filename": filename, "mapping": None}
    for k in (5, 3):
        _, _, body = client.call(ids.ANALYSIS, _controls(store, k), timeout=60)
        state = body["response"][ids.ANALYSIS]["data"]
        assert services.from_state(state)[1].segmentation.k == k
    _, _, body = client.call("segments-metric-stability",
                             {f"{ids.ANALYSIS}.data": body["response"][ids.ANALYSIS]["data"]},
                             timeout=60)
    assert body["response"]["segments-metric-stability"]["children"] != "n/a"


def test_bg002_a_bad_k_comes_back_as_an_alert_not_an_error(settings):
    services = Services(settings)
    key, filename = services.sample_dataset("mall")
    client = Client(create_app(settings))
    store = {"key": key, "filename": filename, "mapping": None}
    values = _controls(store, 500)
    values[f"{ids.FEATURES}.value"] = []
    _, _, body = client.call(ids.ANALYSIS, values, timeout=60)
    alert = str(body["response"][ids.SEGMENT_ALERT]["children"])
    assert "No features are ticked" in alert
    assert ids.ANALYSIS not in body["response"]
