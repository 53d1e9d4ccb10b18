"""The Gaussian mixture's EM (full covariances), vectorized over its components.

scikit-learn's ``GaussianMixture`` stays the model the app keeps, saves and scores with
(:func:`estimator` hands back one, fitted with these parameters); this module only runs its
fit faster. Its EM computes each component's densities and covariance in a Python loop,
its log-sum-exp through the array-API layer, and a fit on the dashboard runs a hundred or
so such iterations (three starts to convergence on a 20,000-customer sample): 7-10 ms an
iteration there. Here both steps take their sums from one design matrix of each point's
pairwise products, features and a one (:func:`_design`): the E-step is one matrix product of
it with every component's log density written out as coefficients (the quadratic form
expanded; a component where the expansion would round, a spike far from the origin, is
computed centered, as sklearn does), the M-step one product with the responsibilities for
every component's weight, mean and second moments, in blocks of points that stay in cache.
About 0.9 ms an iteration on the same sample (k = 5, 3 features), the same fit 6-8x faster
(``python -m benchmarks.gmm`` measures both side by side).

The steps are scikit-learn's own, in its order: the starts ("kmeans" initialisation: one
K-Means with ``n_init=1`` per start, drawn from one ``RandomState(seed)`` as sklearn draws
them), an E-step and an M-step per iteration, the mean log-likelihood as the lower bound,
stop when it changes by less than ``tol``, keep the start with the highest bound. From the
same data and seed the fit equals ``GaussianMixture(k, n_init=starts, random_state=seed)``
to rounding (the tests compare them on real customers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from dashapp.errors import SegmentationError

#: scikit-learn's defaults.
TOL = 1e-3
MAX_ITER = 100
REG_COVAR = 1e-6
_EPS = 10 * np.finfo(np.float64).eps
#: A component whose variance is at most this share of its second moment along some feature
#: has its covariance computed from differences (see :func:`_m_step`).
_CANCELS = 1e-3
#: The rounding a component's log density may take from its expanded form, at most (see
#: :func:`_coefficients`; a spike far from the origin takes more and is computed centered).
_EXPANSION_ERROR = 1e-7
#: The bytes of responsibilities (or densities) and design rows one block of a product
#: between them holds (:func:`_block`).
_BLOCK_BYTES = 256 * 1024
#: Points whose component densities are computed at once (a few MB of products).
_CHUNK = 65_536


@dataclass(frozen=True)
class Mixture:
    """A fitted mixture: ``weights (k,)``, ``means (k, d)``, ``covariances (k, d, d)``,
    ``precisions_cholesky (k, d, d)`` (sklearn's: ``precision = P @ P.T``), the mean
    log-likelihood it reached, its iterations and whether EM converged."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    lower_bound: float
    n_iter: int
    converged: bool


def _block(k: int, design: np.ndarray) -> int:
    """Points per block of a product between ``k`` rows of densities or responsibilities and
    the design's rows: _BLOCK_BYTES of both."""
    return max(512, _BLOCK_BYTES // (8 * (k + len(design))))


def _sums(resp: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``resp @ design.T``, ``(k, d * d + d + 1)``, a block of points at a time.

    The product's result is small and its inner dimension every point; OpenBLAS takes it
    whole at half the speed or less once the blocks it reads outgrow the core's cache
    (20,000 points, 3 features, k = 5: 0.32 ms whole, 0.13 ms in blocks of 2,048, about
    2x from k = 3 to 10 and 2 to 5 features, measured single-threaded)."""
    step = _block(len(resp), design)
    sums = resp[:, :step] @ design[:, :step].T
    for start in range(step, design.shape[1], step):
        sums += resp[:, start:start + step] @ design[:, start:start + step].T
    return sums


def _m_step(design: np.ndarray, resp: np.ndarray, reg_covar: float):
    """Weights, means, covariances and precisions' Cholesky factors from responsibilities.

    ``design`` is :func:`_design`'s ``(d * d + d + 1, n)``: each point's pairwise products,
    its features and a one. Responsibilities are ``(k, n)``, so one matrix product gives
    every component's weighted second moments, weighted sums and total weight, each sum
    along rows of n contiguous values (numpy's reductions over a short last axis were most
    of the time). Covariances are second moments less the means' products where that loses
    no digits that count (see below)."""
    d = _features(design)
    k = len(resp)
    sums = _sums(resp, design)
    nk = sums[:, -1] + _EPS
    means = sums[:, d * d:d * d + d] / nk[:, None]
    second = (sums[:, :d * d] / nk[:, None]).reshape(k, d, d)
    covariances = second - means[:, :, None] * means[:, None, :]
    # The difference cancels where a variance is small next to its second moment: a spike
    # (a component whose customers share one value, as integer features make) or a tight
    # component far from the origin. Those components are computed from their differences
    # from the mean, as sklearn computes every one; elsewhere the rounding of the difference
    # is at most a thousand times that of the second moment.
    variances = np.diagonal(covariances, axis1=1, axis2=2)
    moments = np.diagonal(second, axis1=1, axis2=2)
    columns = design[d * d:d * d + d]
    for j in np.flatnonzero((variances <= _CANCELS * moments).any(axis=1)):
        diff = columns - means[j][:, None]
        covariances[j] = ((diff * resp[j]) @ diff.T) / nk[j]
    covariances[:, np.arange(d), np.arange(d)] += reg_covar
    try:
        lower = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise SegmentationError(
            "The Gaussian mixture failed: a component's customers all share nearly one "
            f"profile, so its covariance is singular. Lower k (now {k}), choose other "
            "features or another scaling, or use K-Means."
        ) from None
    # sklearn's factor: the transposed inverse of the covariance's lower Cholesky factor.
    precisions_cholesky = np.linalg.inv(lower).transpose(0, 2, 1)
    return nk / nk.sum(), means, covariances, precisions_cholesky


def _log_prob(columns: np.ndarray, weights: np.ndarray, means: np.ndarray,
              precisions_cholesky: np.ndarray) -> np.ndarray:
    """``log P(x | component) + log weight``, ``(k, n)``, from ``columns`` ``(d, n)``."""
    k, d, _ = precisions_cholesky.shape
    # Rows j*d .. j*d+d-1 of ``y`` are (points @ P_j - mean_j @ P_j).T (sklearn's ``y``).
    factors = precisions_cholesky.transpose(0, 2, 1).reshape(k * d, d)
    offsets = np.einsum("kd,kde->ke", means, precisions_cholesky).reshape(k * d, 1)
    y = factors @ columns
    y -= offsets
    np.square(y, out=y)
    squared = y.reshape(k, d, -1).sum(axis=1)
    log_det = np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    squared += d * math.log(2 * math.pi)
    squared *= -0.5
    squared += (log_det + np.log(weights))[:, None]
    return squared


def weighted_log_prob(points: np.ndarray, weights: np.ndarray, means: np.ndarray,
                      precisions_cholesky: np.ndarray) -> np.ndarray:
    """``log P(x | component) + log weight``, ``(n, k)``, as sklearn's
    ``GaussianMixture._estimate_weighted_log_prob`` gives it."""
    columns = np.ascontiguousarray(np.asarray(points, dtype=np.float64).T)
    return _log_prob(columns, weights, means, precisions_cholesky).T


def _coefficients(weights, means, precisions_cholesky, radius: float):
    """``log P(x | component) + log weight`` as coefficients of :func:`_design`'s rows,
    ``(k, d * d + d + 1)``, and the components to compute from their differences instead.

    With the precision ``L = P P^T``, ``-0.5 (x - m)^T L (x - m)`` is
    ``-0.5 x^T L x + (L m)^T x - 0.5 m^T L m``: one matrix product with the design gives
    every component's log density, with no k * d * n products to square and sum. The
    expanded form rounds to about eps * |L| (|x| + |m|)^2, where the centered one rounds to
    eps times the distance; a component where that bound (points within ``radius`` of the
    origin) passes _EXPANSION_ERROR, a spike (a variance at ``reg_covar``, as integer
    features make) far from the origin, is left to :func:`_log_prob`."""
    k, d, _ = precisions_cholesky.shape
    precisions = precisions_cholesky @ precisions_cholesky.transpose(0, 2, 1)
    linear = np.einsum("kde,ke->kd", precisions, means)
    log_det = np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    constant = (-0.5 * np.einsum("kd,kd->k", linear, means) + log_det + np.log(weights)
                - 0.5 * d * math.log(2 * math.pi))
    coefficients = np.hstack([-0.5 * precisions.reshape(k, d * d), linear, constant[:, None]])
    size = (precisions_cholesky ** 2).sum(axis=(1, 2))  # |P|_F^2 >= |L|_2
    rounding = 16 * np.finfo(np.float64).eps * size * (radius + np.linalg.norm(means, axis=1)) ** 2
    return coefficients, np.flatnonzero(rounding > _EXPANSION_ERROR)


def _e_step(design: np.ndarray, radius: float, weights, means, precisions_cholesky):
    """The mean log-likelihood and the responsibilities ``(k, n)``, _CHUNK points at a
    time (a few MB of densities each) from :func:`_design`'s rows; ``radius`` bounds the
    points' distance from the origin (:func:`_coefficients`)."""
    d = _features(design)
    n = design.shape[1]
    coefficients, centered = _coefficients(weights, means, precisions_cholesky, radius)
    resp = np.empty((len(weights), n))
    step = _block(len(weights), design)
    total_log = 0.0
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        part = resp[:, start:stop]
        for first in range(start, stop, step):
            last = min(first + step, stop)
            np.matmul(coefficients, design[:, first:last], out=resp[:, first:last])
        for j in centered:
            part[j] = _log_prob(design[d * d:d * d + d, start:stop], weights[j:j + 1],
                                means[j:j + 1], precisions_cholesky[j:j + 1])[0]
        top = part.max(axis=0)
        part -= top
        # exp takes a slow path where it underflows (below -708; the degenerate components
        # of integer features put most customers there, 4 times the cost): below -700 it is
        # computed at -700, a responsibility of 1e-304 for 0, which changes no sum.
        np.maximum(part, -700.0, out=part)
        np.exp(part, out=part)
        total = part.sum(axis=0)
        part /= total
        # log-sum-exp: log p(x) = log sum_j exp(log_prob_j - top) + top.
        total_log += float((np.log(total) + top).sum())
    return total_log / n, resp


def _em(design: np.ndarray, radius: float, params, tol: float, max_iter: int,
        reg_covar: float) -> Mixture:
    """EM from ``params`` on :func:`_design`'s rows; ``radius`` is :func:`_radius` of them."""
    converged, n_iter, lower_bound = False, 0, -np.inf
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        lower_bound, resp = _e_step(design, radius, params[0], params[1], params[3])
        params = _m_step(design, resp, reg_covar)
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    weights, means, covariances, precisions_cholesky = params
    return Mixture(weights, means, covariances, precisions_cholesky, lower_bound, n_iter,
                   converged)


def _columns(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(points, dtype=np.float64).T)


def _design(columns: np.ndarray) -> np.ndarray:
    """The rows EM's steps take their sums from, ``(d * d + d + 1, n)``: row ``a * d + b``
    is each point's x_a x_b, rows ``d * d ..`` its features, the last row ones."""
    d, n = columns.shape
    design = np.empty((d * d + d + 1, n))
    np.multiply(columns[:, None, :], columns[None, :, :],
                out=design[:d * d].reshape(d, d, n))
    design[d * d:d * d + d] = columns
    design[-1] = 1.0
    return design


def _features(design: np.ndarray) -> int:
    """d from the design's d * d + d + 1 rows."""
    return math.isqrt(len(design) - 1)


def _radius(design: np.ndarray) -> float:
    """The largest distance of a point from the origin (its squares are design rows)."""
    d = _features(design)
    return math.sqrt(float(design[0:d * d:d + 1].sum(axis=0).max()))


def fit(points: np.ndarray, k: int, starts: int, seed: int, tol: float = TOL,
        max_iter: int = MAX_ITER, reg_covar: float = REG_COVAR) -> Mixture:
    """``GaussianMixture(k, n_init=starts, random_state=seed).fit(points)``, vectorized."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    if len(points) < k:
        raise SegmentationError(f"A mixture of {k} components needs at least {k} customers.")
    design = _design(_columns(points))
    radius = _radius(design)
    random_state = np.random.RandomState(seed)
    best: Mixture | None = None
    rows = np.arange(len(points))
    for _ in range(starts):
        labels = KMeans(k, n_init=1, random_state=random_state).fit(points).labels_
        resp = np.zeros((k, len(points)))
        resp[labels, rows] = 1.0
        start = _m_step(design, resp, reg_covar)
        found = _em(design, radius, start, tol, max_iter, reg_covar)
        if best is None or found.lower_bound > best.lower_bound:
            best = found
    return best


def refine(points: np.ndarray, mixture: Mixture, steps: int,
           reg_covar: float = REG_COVAR) -> Mixture:
    """At most ``steps`` EM steps on ``points`` from ``mixture`` (sklearn's fit with all
    three ``*_init`` given and ``max_iter=steps``)."""
    params = (mixture.weights, mixture.means, mixture.covariances, mixture.precisions_cholesky)
    design = _design(_columns(points))
    return _em(design, _radius(design), params, TOL, steps, reg_covar)


def predict(points: np.ndarray, mixture: Mixture) -> np.ndarray:
    """Each point's most likely component (sklearn's ``predict``)."""
    columns = _columns(points)
    return np.concatenate([
        _log_prob(columns[:, start:start + _CHUNK], mixture.weights, mixture.means,
                  mixture.precisions_cholesky).argmax(axis=0)
        for start in range(0, columns.shape[1], _CHUNK)] or [np.empty(0, dtype=np.intp)])


def estimator(mixture: Mixture, starts: int, seed: int, n_features: int) -> GaussianMixture:
    """A fitted ``GaussianMixture`` with these parameters: what ``fit`` would leave on it
    (its ``predict``, ``score``, ``predict_proba`` and the saved model read them)."""
    model = GaussianMixture(len(mixture.weights), covariance_type="full", n_init=starts,
                            random_state=seed)
    model.weights_ = mixture.weights
    model.means_ = mixture.means
    model.covariances_ = mixture.covariances
    model.precisions_cholesky_ = mixture.precisions_cholesky
    model.precisions_ = np.matmul(mixture.precisions_cholesky,
                                  mixture.precisions_cholesky.transpose(0, 2, 1))
    model.converged_ = mixture.converged
    model.n_iter_ = mixture.n_iter
    model.lower_bound_ = mixture.lower_bound
    model.n_features_in_ = n_features
    return model
