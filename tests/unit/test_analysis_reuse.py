"""A change of k after the k sweep reuses the sweep's fit: the same labels as a fresh fit
with the same seed, no second fit, and never another user's entry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dashapp import accounts, segment
from dashapp.analysis import Controls
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
