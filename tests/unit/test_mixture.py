"""The vectorized Gaussian mixture EM against scikit-learn's ``GaussianMixture`` on real
customers: the same fit from the same seed (bound, weights, means, covariances, labels), the
same refinement, a fitted sklearn estimator that scores as sklearn's own, and the
covariances that would lose digits to cancellation computed as sklearn computes them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from dashapp import mixture
from dashapp.pipeline import prepare_file

RFM = ["recency", "frequency", "monetary"]


@pytest.fixture(scope="module")
def retail(shared_data) -> pd.DataFrame:
    """The Online Retail sample's customers: integer frequencies, heavy-tailed spend."""
    return prepare_file(shared_data / "online_retail" / "online_retail_sample_20000.csv").customers


@pytest.fixture(scope="module")
def mall(shared_data) -> np.ndarray:
    raw = pd.read_csv(shared_data / "mall_customers" / "Mall_Customers.csv")
    return raw[["Age", "Annual Income (k$)", "Spending Score (1-100)"]].to_numpy(float)


def _sklearn(points: np.ndarray, k: int, seed: int, **kwargs) -> GaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(k, n_init=3, random_state=seed, **kwargs).fit(points)


def _assert_same(ours: mixture.Mixture, theirs: GaussianMixture, points: np.ndarray) -> None:
    assert ours.lower_bound == pytest.approx(theirs.lower_bound_, rel=1e-9, abs=1e-9)
    assert ours.n_iter == theirs.n_iter_
    np.testing.assert_allclose(ours.weights, theirs.weights_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.means, theirs.means_, rtol=1e-7, atol=1e-9)
    scale = np.abs(theirs.covariances_).max()
    np.testing.assert_allclose(ours.covariances, theirs.covariances_, rtol=1e-6,
                               atol=1e-9 * scale)
    np.testing.assert_array_equal(mixture.predict(points, ours), theirs.predict(points))


@pytest.mark.parametrize("k", [2, 4, 5, 7])
@pytest.mark.parametrize("seed", [0, 3])
def test_fit_equals_sklearn_on_standardized_rfm(retail, k, seed):
    points = StandardScaler().fit_transform(retail[RFM].to_numpy(float))
    ours = mixture.fit(points, k, 3, seed)
    _assert_same(ours, _sklearn(points, k, seed), points)


@pytest.mark.parametrize("k", [3, 5, 6])
def test_fit_equals_sklearn_on_raw_units(retail, mall, k):
    # Unscaled: spend in the thousands next to one-order spikes (frequency 1, variance 0),
    # where second moments less squared means would cancel; those components take the
    # differences, as sklearn does.
    for points in (retail[RFM].to_numpy(float), mall):
        ours = mixture.fit(points, k, 3, 1)
        _assert_same(ours, _sklearn(points, k, 1), points)


def test_a_tight_component_far_from_zero_is_computed_from_its_differences():
    # 600 customers at spend 1,000,000 give or take 0.01, beside two broad groups: the
    # second moment 1e12 less the squared mean leaves nothing of the variance 1e-4 with a
    # plain difference; the result is sklearn's.
    rng = np.random.default_rng(5)
    points = np.vstack([
        np.column_stack([rng.normal(1e6, 0.01, 600), rng.normal(3, 1, 600)]),
        np.column_stack([rng.normal(0, 50, 900), rng.normal(0, 1, 900)]),
        np.column_stack([rng.normal(400, 30, 500), rng.normal(9, 2, 500)]),
    ])
    ours = mixture.fit(points, 3, 3, 0)
    theirs = _sklearn(points, 3, 0)
    _assert_same(ours, theirs, points)
    spike = int(np.argmax(ours.means[:, 0]))
    assert ours.covariances[spike, 0, 0] == pytest.approx(1e-4 + mixture.REG_COVAR, rel=0.2)


def test_refine_is_sklearns_em_from_the_given_parameters(retail):
    points = StandardScaler().fit_transform(retail[RFM].to_numpy(float))
    start = mixture.fit(points[::4], 4, 3, 0)
    for steps in (1, 3):
        ours = mixture.refine(points, start, steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = GaussianMixture(
                4, n_init=1, max_iter=steps, weights_init=start.weights, means_init=start.means,
                precisions_init=np.linalg.inv(start.covariances),
                init_params="random_from_data", random_state=0,
            ).fit(points)
        _assert_same(ours, theirs, points)


def test_the_estimator_scores_as_sklearns_fitted_mixture(retail):
    points = StandardScaler().fit_transform(retail[RFM].to_numpy(float))
    theirs = _sklearn(points, 5, 2)
    model = mixture.estimator(mixture.fit(points, 5, 3, 2), 3, 2, points.shape[1])
    assert isinstance(model, GaussianMixture)
    np.testing.assert_array_equal(model.predict(points), theirs.predict(points))
    np.testing.assert_allclose(model.predict_proba(points), theirs.predict_proba(points),
                               atol=1e-8)
    assert model.score(points) == pytest.approx(theirs.score(points), rel=1e-9)
    np.testing.assert_allclose(model.precisions_, theirs.precisions_, rtol=1e-6,
                               atol=1e-9 * np.abs(theirs.precisions_).max())
    assert model.get_params() == theirs.get_params()


def test_weighted_log_prob_is_sklearns(mall):
    theirs = _sklearn(mall, 4, 0)
    ours = mixture.weighted_log_prob(mall, theirs.weights_, theirs.means_,
                                     theirs.precisions_cholesky_)
    np.testing.assert_allclose(ours, theirs._estimate_weighted_log_prob(mall), rtol=1e-10)


def test_points_in_chunks_give_the_same_fit(retail, monkeypatch):
    # Past _CHUNK points the densities are computed a chunk at a time (memory): with chunks
    # of 700, which do not divide the customers evenly, the fit, the refinement and the
    # labels are sklearn's still.
    points = StandardScaler().fit_transform(retail[RFM].to_numpy(float))
    assert len(points) % 700
    whole = mixture.fit(points, 4, 3, 0)
    monkeypatch.setattr(mixture, "_CHUNK", 700)
    chunked = mixture.fit(points, 4, 3, 0)
    _assert_same(chunked, _sklearn(points, 4, 0), points)
    assert chunked.lower_bound == pytest.approx(whole.lower_bound, rel=1e-12)
    refined = mixture.refine(points, chunked, 2)
    np.testing.assert_array_equal(mixture.predict(points, refined),
                                  mixture.estimator(refined, 3, 0, 3).predict(points))
