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
from dashapp.services import Services


def _counting(monkeypatch) -> list[int]:
    """Every fit's k, wherever segment() is called from."""
    calls: list[int] = []

    def counted(customers, params):
        calls.append(params.k)
        return fit_once(customers, params)

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
