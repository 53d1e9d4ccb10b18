"""Background callbacks over HTTP, the way the renderer runs them (post, then poll)."""

from __future__ import annotations

from app import create_app
from benchmarks.interactive import Client
from callbacks.segments import request_of
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


def _request(values: dict) -> dict:
    """The ANALYSIS_REQUEST the cache-answering callback hands over for these controls."""
    return {f"{ids.ANALYSIS_REQUEST}.data": request_of(
        values[f"{ids.DATASET}.data"], *(values[f"{name}.value"] for name in (
            ids.ALGORITHM, ids.K_AUTO, ids.K_SLIDER, ids.FEATURES, ids.SCALING, ids.PCA,
            ids.SEED)))}


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
        # The background job itself (k = 5 and 3 are cached: the page would not start one).
        request = _request(_controls(store, k))[f"{ids.ANALYSIS_REQUEST}.data"]
        _, _, answer = client.job(request, timeout=60)
        state = answer["state"]
        assert answer["request"] == request and answer["alert"] is None
        assert state["dataset"] == key
        assert services.from_state(user, state)[1].segmentation.k == k
    _, _, body = client.call("segments-metric-stability", {f"{ids.ANALYSIS}.data": state},
                             timeout=60)
    assert body["response"]["segments-metric-stability"]["children"] != "n/a"


def test_bg002_bad_controls_come_back_as_alerts_not_errors(settings, login_client):
    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "mall").id
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    values = _controls(store, 5)
    values[f"{ids.FEATURES}.value"] = []
    def job(values, **kw):
        request = _request(values)[f"{ids.ANALYSIS_REQUEST}.data"]
        return client.applied(client.job(request, **kw)[2], request)

    for how in (lambda v, **kw: client.segment(v, **kw)[2], job):
        body = how(values, timeout=60)
        alert = str(body["response"][ids.SEGMENT_ALERT]["children"])
        assert "No features are ticked" in alert
        assert ids.ANALYSIS not in body["response"]
    # What the browser can send but the controls never would: checked in the web process
    # (the cache-answering callback) and in the worker (a request posted to it directly).
    for name, value, message in ((ids.K_SLIDER, 500, "k must be"),
                                 (ids.K_SLIDER, "4; drop", "k must be"),
                                 (ids.ALGORITHM, "__import__('os')", "Unknown algorithm"),
                                 (ids.SEED, -3, "seed must be"),
                                 (ids.FEATURES, {"$ne": 1}, "features arrived")):
        bad = {**_controls(store, 5), f"{name}.value": value}
        for body in (client.segment(bad, timeout=60)[2], job(bad, timeout=60)):
            assert message in str(body["response"][ids.SEGMENT_ALERT]["children"]), name
            assert ids.ANALYSIS not in body["response"]
    _, _, answer = client.job("junk", timeout=60)
    assert answer["state"] is None and "No dataset loaded" in str(answer["alert"])


def test_bg003_a_cached_change_is_answered_without_a_background_job(settings, login_client):
    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "retail").id
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    # Nothing fitted yet: the change is handed over to the background job, which sweeps k.
    _, _, body = client.call(ids.ANALYSIS_REQUEST, _controls(store, 5))
    handed = body["response"]
    assert set(handed) == {ids.ANALYSIS_REQUEST}
    assert handed[ids.ANALYSIS_REQUEST]["data"] == _request(_controls(store, 5))[
        f"{ids.ANALYSIS_REQUEST}.data"]
    _, _, body = client.segment(_controls(store, 5), timeout=60)
    assert body["response"][ids.ANALYSIS]["data"]["controls"]["k"] == 5
    # k = 3 was fitted by the sweep: answered in the web process, no job handle, the same
    # analysis the job would have made (the numbers of a K-Means fit of k = 3).
    _, _, body = client.call(ids.ANALYSIS_REQUEST, _controls(store, 3))
    assert "cacheKey" not in body and ids.ANALYSIS_REQUEST not in body["response"]
    state = body["response"][ids.ANALYSIS]["data"]
    assert body["response"][ids.SEGMENT_ALERT]["children"] is None
    prepared, analysis = services.from_state(user, state)
    assert analysis.segmentation.k == 3 and analysis.controls.k == 3
    from dashapp.analysis import segment_params
    from dashapp.segment import segment
    fresh = segment(prepared.customers, segment_params(prepared, analysis.controls))
    assert (fresh.labels == analysis.segmentation.labels).all()
    # DBSCAN needs a fit that grows with the data: handed over again.
    other = {**_controls(store, 3), f"{ids.ALGORITHM}.value": "dbscan"}
    _, _, body = client.call(ids.ANALYSIS_REQUEST, other)
    assert set(body["response"]) == {ids.ANALYSIS_REQUEST}
    # No dataset (the last one deleted): every view empties, no job.
    _, _, body = client.call(ids.ANALYSIS_REQUEST, _controls(None, 3))
    assert body["response"][ids.ANALYSIS]["data"] is None


def test_bg004_a_change_of_the_controls_cancels_a_fit_still_running(settings, login_client):
    # A fit still running when the next change is answered from the cache would overwrite
    # it when it ends: every input of the cache-answering callback cancels the job.
    client, _, _ = _logged_in(settings, login_client)
    _, job = client._entry(ids.ANALYSIS_JOB)
    _, quick = client._entry(ids.ANALYSIS_REQUEST)
    assert job.get("background") and not quick.get("background")
    assert [i["id"] for i in job["inputs"]] == [ids.ANALYSIS_REQUEST]
    cancels = {(c["id"], c["property"]) for c in job["background"]["cancel"]}
    assert {(i["id"], i["property"]) for i in quick["inputs"]} <= cancels
    assert (ids.CANCEL, "n_clicks") in cancels


def test_bg005_a_new_fit_is_drawn_first_and_its_silhouette_follows(settings, login_client):
    # MiniBatch is not in the (K-Means) sweep: its figures come without the silhouette
    # (the card says PENDING and the views ask for it), and the silhouette job answers with
    # segment()'s own value for the analysis it was asked about.
    from dashapp import views
    from dashapp.segment import segment

    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "retail").id
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    client.segment(_controls(store, 4), timeout=60)  # the sweep
    values = {**_controls(store, 4), f"{ids.ALGORITHM}.value": "minibatch"}
    _, _, body = client.segment(values, timeout=60)
    state = body["response"][ids.ANALYSIS]["data"]
    _, _, body = client.call(ids.SUMMARY, {f"{ids.ANALYSIS}.data": state})
    shown = body["response"]
    assert shown["segments-metric-silhouette"]["children"] == views.PENDING
    assert shown[ids.SILHOUETTE_REQUEST]["data"] == state
    _, _, body = client.call(ids.SILHOUETTE_ANSWER, {f"{ids.SILHOUETTE_REQUEST}.data": state},
                             timeout=60)
    answer = body["response"][ids.SILHOUETTE_ANSWER]["data"]
    prepared, analysis = services.from_state(user, state)
    full = segment(prepared.customers, analysis.segmentation.params)
    assert answer == {"state": state, "text": views.silhouette_value(full.metrics)}
    assert answer["text"][0].isdigit() or answer["text"].startswith("-")
    # Shown again (back to MiniBatch later): the silhouette computed then, at once.
    _, _, body = client.call(ids.SUMMARY, {f"{ids.ANALYSIS}.data": state})
    assert body["response"]["segments-metric-silhouette"]["children"] == answer["text"]
    assert ids.SILHOUETTE_REQUEST not in body["response"]
    # A K-Means k the sweep fitted: its silhouette is shown at once, nothing is asked.
    _, _, body = client.segment(_controls(store, 5), timeout=60)
    _, _, body = client.call(ids.SUMMARY, {f"{ids.ANALYSIS}.data":
                                           body["response"][ids.ANALYSIS]["data"]})
    assert body["response"]["segments-metric-silhouette"]["children"][0].isdigit()
    assert ids.SILHOUETTE_REQUEST not in body["response"]


def test_bg006_one_quick_fit_is_made_in_the_request_a_sweep_or_a_large_one_in_a_job(
        settings, login_client):
    # Another algorithm at the same k needs one fit and no sweep: K-Means, MiniBatch and the
    # mixture on up to inline_fit_customers are fitted in the callback (no job handle), the
    # analysis the job would have made; past the limit, or with it at 0, a job fits them.
    from dataclasses import replace

    from dashapp.analysis import segment_params
    from dashapp.segment import segment

    client, services, user = _logged_in(settings, login_client)
    key = services.add_sample(user, "retail").id
    store = {"dataset": key, "mapping": None, "dayfirst": None}
    client.segment(_controls(store, 4), timeout=60)  # the sweep: always a job
    customers = len(services.prepared(user, key).customers)
    assert 1_000 < customers <= settings.inline_fit_customers
    for algorithm in ("minibatch", "gmm"):
        values = {**_controls(store, 4), f"{ids.ALGORITHM}.value": algorithm}
        _, _, body = client.call(ids.ANALYSIS_REQUEST, values)
        assert "cacheKey" not in body and ids.ANALYSIS_REQUEST not in body["response"]
        state = body["response"][ids.ANALYSIS]["data"]
        assert state["controls"]["algorithm"] == algorithm
        prepared, analysis = services.from_state(user, state)
        fresh = segment(prepared.customers, segment_params(prepared, analysis.controls))
        assert (fresh.labels == analysis.segmentation.labels).all()
        assert analysis.segmentation.metrics.pending  # its silhouette follows, as from a job
    # Auto k on another scaling needs that scaling's sweep: a job.
    swept = {**_controls(store, 4), f"{ids.SCALING}.value": "robust",
             f"{ids.K_AUTO}.value": True}
    _, _, body = client.call(ids.ANALYSIS_REQUEST, swept)
    assert set(body["response"]) == {ids.ANALYSIS_REQUEST}
    # The same quick fit past the limit: a job.
    for limit in (0, customers - 1):
        services.settings = replace(services.settings, inline_fit_customers=limit)
        values = {**_controls(store, 4), f"{ids.ALGORITHM}.value": "minibatch",
                  f"{ids.SEED}.value": 7 + limit}
        _, _, body = client.call(ids.ANALYSIS_REQUEST, values)
        assert set(body["response"]) == {ids.ANALYSIS_REQUEST}


def test_bg007_rows_appended_are_never_answered_with_the_old_rows_results(settings,
                                                                          login_client):
    # Dash keeps a background result for an hour and answers identical inputs with it
    # (cache_by in app.py). The inputs name the dataset by id, which appending rows keeps:
    # the store's version (its content hash) is what makes the stability job's input, the
    # segmentation request and the analysis store differ for the new rows.
    from callbacks.data import store_of
    from dashapp import views

    client, services, user = _logged_in(settings, login_client)
    info = services.add_sample(user, "mall")
    features = list(services.prepared(user, info.id).default_features)
    store = store_of(info)
    values = {**_controls(store, 4), f"{ids.FEATURES}.value": features}

    def stability_shown(state):
        _, _, body = client.call("segments-metric-stability", {f"{ids.ANALYSIS}.data": state},
                                 timeout=60)
        return body["response"]["segments-metric-stability"]["children"]

    _, _, body = client.segment(values, timeout=60)
    state = body["response"][ids.ANALYSIS]["data"]
    assert state["version"] == store["version"] == info.content_hash[:16]
    before = stability_shown(state)
    assert before == views.stability_value(services.stability(
        user, info.id, None, state["controls"])[0])
    # 300 new customers, high incomes and spread scores: another segmentation.
    rows = [{"CustomerID": f"N{i:04d}", "Gender": "Male", "Age": 20 + i % 50,
             "Annual Income (k$)": 150 + i % 37, "Spending Score (1-100)": i * 7 % 100}
            for i in range(300)]
    updated = services.append_customers(user, info.id, rows)
    store = store_of(updated)
    assert store["version"] != state["version"]
    _, _, body = client.segment({**values, f"{ids.DATASET}.data": store}, timeout=60)
    state = body["response"][ids.ANALYSIS]["data"]
    assert state["version"] == store["version"]
    expected = views.stability_value(services.stability(user, info.id, None,
                                                        state["controls"])[0])
    assert expected != before  # else this test could not tell the old answer from the new
    assert stability_shown(state) == expected
