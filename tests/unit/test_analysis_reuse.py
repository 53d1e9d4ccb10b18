"""A change of k after the k sweep reuses the sweep's fit: the same labels as a fresh fit
with the same seed, no second fit, and never another user's entry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dashapp import accounts, segment
from dashapp.analysis import Controls
from dashapp.datasets import DatasetMissingError
from dashapp.segment import segment as fit_once
from dashapp.services import Services, _digest


def _counting(monkeypatch) -> list[int]:
    """Every fit's k, wherever segment() is called from."""
    calls: list[int] = []

    def counted(customers, params, **options):
        calls.append(params.k)
        return fit_once(customers, params, **options)

    for target in ("dashapp.services.segment", "dashapp.analysis.segment",
                   "dashapp.segment.segment"):
        monkeypatch.setattr(target, counted)
    return calls


def _user(services: Services, email: str) -> int:
    return accounts.create_user(services.db, email, "a long password")


def test_reuse001_change_of_k_is_the_sweeps_fit(settings, monkeypatch):
    services = Services(settings)
    user = _user(services, "a@example.com")
    key = services.add_sample(user, "retail").id
    calls = _counting(monkeypatch)
    first = services.analysis(user, key, None, Controls())
    assert sorted(calls) == sorted(first.sweep.table["k"])  # the recommended k is reused too
    swept = len(calls)
    later = services.analysis(user, key, None, Controls(k=6))
    assert len(calls) == swept
    assert later.segmentation.k == 6
    prepared = services.prepared(user, key)
    fresh = fit_once(prepared.customers, replace(later.segmentation.params, k=6))
    np.testing.assert_array_equal(later.segmentation.labels, fresh.labels)
    assert later.segmentation.metrics == fresh.metrics


def test_reuse002_a_fresh_services_reads_the_fit_from_disk(settings, monkeypatch):
    services = Services(settings)
    user = _user(services, "a@example.com")
    key = services.add_sample(user, "retail").id
    services.analysis(user, key, None, Controls())
    calls = _counting(monkeypatch)
    # Another process (a background worker) with the same instance folder.
    Services(settings).analysis(user, key, None, Controls(k=7))
    assert calls == []


def test_reuse003_another_user_fits_for_itself(settings, monkeypatch):
    services = Services(settings)
    a, b = _user(services, "a@example.com"), _user(services, "b@example.com")
    services.analysis(a, services.add_sample(a, "retail").id, None, Controls())
    key_b = services.add_sample(b, "retail").id
    calls = _counting(monkeypatch)
    services.analysis(b, key_b, None, Controls(k=6))
    assert 6 in calls and len(calls) >= 9


def test_reuse004_sweep_calls_the_given_fit():
    rng = np.random.default_rng(0)
    customers = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    seen = []

    def fit(params):
        seen.append(params.k)
        return fit_once(customers, params)

    swept = segment.sweep_k(customers, segment.SegmentParams(features=("a", "b", "c")),
                            ks=[2, 3, 4], fit=fit)
    assert seen == [2, 3, 4] and list(swept.table["k"]) == [2, 3, 4]


def test_reuse003_cached_analysis_fits_nothing_and_says_when_a_fit_is_needed(settings,
                                                                              monkeypatch):
    # What the page's cache-answering callback relies on: an answer only when no fit runs.
    services = Services(settings)
    user = _user(services, "a@example.com")
    key = services.add_sample(user, "retail").id
    assert services.cached_analysis(user, key, None, Controls()) is None  # nothing swept
    services.analysis(user, key, None, Controls())
    calls = _counting(monkeypatch)
    found = services.cached_analysis(user, key, None, Controls(k=6))
    assert calls == [] and found.segmentation.k == 6
    # The same analysis analysis() gives (and memoized: analysis() fits nothing either).
    again = services.analysis(user, key, None, Controls(k=6))
    assert calls == []
    np.testing.assert_array_equal(found.segmentation.labels, again.segmentation.labels)
    assert [p.name for p in found.personas] == [p.name for p in again.personas]
    # Another algorithm or a k the sweep did not fit: None, and still nothing fitted.
    assert services.cached_analysis(user, key, None, Controls(k=6, algorithm="gmm")) is None
    assert services.cached_analysis(user, key, None, Controls(k=12)) is None
    assert services.cached_analysis(user, key, None, Controls(k=6, seed=3)) is None
    assert calls == []
    # Never another user's entry: B gets the missing-dataset error, as analysis() gives.
    other = _user(services, "b@example.com")
    with pytest.raises(DatasetMissingError):
        services.cached_analysis(other, key, None, Controls(k=6))


def test_reuse006_a_fit_the_sweep_did_not_make_has_its_silhouette_computed_after(
        settings, monkeypatch):
    # The dashboard draws a new fit before its silhouette (metrics.pending); metrics()
    # completes it with segment()'s own value, once, and what is saved carries it.
    services = Services(settings)
    user = _user(services, "a@example.com")
    key = services.add_sample(user, "retail").id

    def full_silhouette(params):
        return fit_once(services.prepared(user, key).customers, params).metrics.silhouette

    swept = services.analysis(user, key, None, Controls(k=4))
    assert not swept.segmentation.metrics.pending  # the sweep's fit: complete already
    assert services.metrics(user, key, None, Controls(k=4)) is swept.segmentation.metrics
    controls = Controls(k=4, algorithm="minibatch")
    quick = services.analysis(user, key, None, controls)
    assert quick.segmentation.metrics.pending
    prepared = services.prepared(user, key)
    full = fit_once(prepared.customers, quick.segmentation.params)
    np.testing.assert_array_equal(quick.segmentation.labels, full.labels)
    assert services.metrics(user, key, None, controls) == full.metrics
    computed = []
    monkeypatch.setattr("dashapp.services.with_silhouette",
                        lambda *args: computed.append(1) or full.metrics)
    # Memoized, on disk too (another process, a background worker).
    assert Services(settings).metrics(user, key, None, controls) == full.metrics
    state = {"dataset": key, "mapping": None, "dayfirst": None,
             "controls": controls.to_dict()}
    _, complete = services.complete_state(user, state)
    assert complete.segmentation.metrics == full.metrics and computed == []
    monkeypatch.undo()
    # The sweep needs every silhouette: a pending fit it finds in the cache is completed,
    # not taken as it is (and not fitted again).
    params = replace(swept.segmentation.params, k=3, seed=2)
    pending = fit_once(prepared.customers, params, silhouette=False)
    info = services.dataset(user, key)
    services._store(user, info.id, _digest("segment", info.content_hash, None, None,
                                           repr(params)), pending)
    calls = _counting(monkeypatch)
    again = services.analysis(user, key, None, Controls(k=5, seed=2))
    assert 3 not in calls and 5 in calls
    assert again.sweep.table.set_index("k").loc[3, "silhouette"] == full_silhouette(params)
