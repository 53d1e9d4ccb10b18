"""Background callbacks over HTTP, the way the renderer runs them (post, then poll)."""

from __future__ import annotations

from app import create_app
from benchmarks.interactive import Client
from dashapp import accounts, auth
from dashapp.analysis import Controls
from dashapp.services import Services
from layouts import ids


def _controls(store: dict, k: int) -> dict:
    return {f"{ids.DATASET}.data": store, f"{ids.ALGORITHM}.value": "kmeans",
            f"{ids.K_AUTO}.value": False, f"{ids.K_SLIDER}.value": k,
            f"{ids.FEATURES}.value": ["recency", "frequency", "monetary"],
            f"{ids.SCALING}.value": "standard", f"{ids.PCA}.value": False,
            f"{ids.SEED}.value": 0}


def _logged_in(settings, login_client) -> tuple[Client, Services, int]:
    app = create_app(settings)
    http = login_client(app)
    services = auth.services_of(app.server)
    return Client(app, http), services, accounts.user_id_of(services.db, "ana@example.com")


def test_bg001_worker_answers_after_kmeans_ran_in_the_web_process(settings, login_client):
    # GNU OpenMP hangs a forked child whose parent started its thread pool: the web process
    # computing an analysis itself (a cache miss) must not poison later background jobs.
    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "retail").id
    services.analysis(user, key, None, Controls())
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    for k in (5, 3):
        _, _, body = client.call(ids.ANALYSIS, _controls(store, k), timeout=60)
        state = body["response"][ids.ANALYSIS]["data"]
        assert state["dataset"] == key
        assert services.from_state(user, state)[1].segmentation.k == k
    _, _, body = client.call("segments-metric-stability",
                             {f"{ids.ANALYSIS}.data": body["response"][ids.ANALYSIS]["data"]},
                             timeout=60)
    assert body["response"]["segments-metric-stability"]["children"] != "n/a"


def test_bg002_bad_controls_come_back_as_alerts_not_errors(settings, login_client):
    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "mall").id
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    values = _controls(store, 5)
    values[f"{ids.FEATURES}.value"] = []
    _, _, body = client.call(ids.ANALYSIS, values, timeout=60)
    alert = str(body["response"][ids.SEGMENT_ALERT]["children"])
    assert "No features are ticked" in alert
    assert ids.ANALYSIS not in body["response"]
    # What the browser can send but the controls never would: checked in the worker.
    for name, value, message in ((ids.K_SLIDER, 500, "k must be"),
                                 (ids.K_SLIDER, "4; drop", "k must be"),
                                 (ids.ALGORITHM, "__import__('os')", "Unknown algorithm"),
                                 (ids.SEED, -3, "seed must be"),
                                 (ids.FEATURES, {"$ne": 1}, "features arrived")):
        bad = {**_controls(store, 5), f"{name}.value": value}
        _, _, body = client.call(ids.ANALYSIS, bad, timeout=60)
        assert message in str(body["response"][ids.SEGMENT_ALERT]["children"]), name
        assert ids.ANALYSIS not in body["response"]
