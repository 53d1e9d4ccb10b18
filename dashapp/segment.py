"""Segmentation: scaling, optional PCA, five algorithms, metrics, the choice of k, stability."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import (
    adjusted_rand_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from dashapp import mixture
from dashapp.errors import (
    DegenerateDataError,
    NoClustersFoundError,
    NoFeaturesError,
    NonFiniteError,
    SegmentationError,
    TooFewCustomersError,
    TooLargeForAlgorithmError,
)

Algorithm = Literal["kmeans", "minibatch", "dbscan", "hierarchical", "gmm"]
Scaling = Literal["standard", "robust", "log", "minmax", "none"]
ALGORITHMS: tuple[str, ...] = ("kmeans", "minibatch", "dbscan", "hierarchical", "gmm")
SCALINGS: tuple[str, ...] = ("standard", "robust", "log", "minmax", "none")
NOISE = -1
SILHOUETTE_SAMPLE = 10_000
#: Ward linkage keeps an O(n^2) distance structure: about 8 bytes x n^2 / 2.
HIERARCHICAL_MAX = 20_000
K_RANGE = range(2, 11)
N_INIT = 10
#: Past this many customers K-Means runs its N_INIT k-means++ starts on a random sample of
#: this size and refines the best on all customers. On the benchmark's 500k customers the
#: inertia is that of N_INIT starts on everyone within 0.002% at k = 4 and 6 and 1.8% above
#: it at k = 8, the same with a sample of 50,000, 20,000 or 10,000; 10,000 takes about half
#: the time of 20,000 (over three sample draws at k = 4, 6, 8 the final inertia was within
#: 0.14% of the 20,000 sample's, four times of nine lower).
KMEANS_SAMPLE = 10_000
#: Past this many customers the Gaussian mixture is fitted (its GMM_STARTS starts, EM to
#: convergence) on a random sample of this size, then refined on all customers by at most
#: GMM_FULL_STEPS EM steps; each customer is then in its most likely component. At 500,000
#: customers sklearn's full EM took 85 s, its EM to convergence on all from a 50,000 sample
#: 7 s; one step of :mod:`dashapp.mixture`'s on all costs about 80 ms there (sklearn's 0.5 s).
GMM_SAMPLE = 20_000
GMM_STARTS = 3
GMM_FULL_STEPS = 1
#: Past this many customers DBSCAN runs on a random sample of this size, the one its
#: automatic eps is chosen on, and every other customer joins the cluster of its nearest core
#: customer within eps (else noise). On all 50,000 customers of a heavy-tailed log the eps
#: chosen on 5,000 gave 23,000 neighbours a customer: 9 GB, a MemoryError.
DBSCAN_SAMPLE = 5_000
# Rows of the silhouette's distance matrix computed at once: 128 x 10,000 float64 is 10 MB,
# small enough to stay in cache through the passes over it (sklearn's default is up to 1 GB).
_SILHOUETTE_CHUNK = 128


@dataclass(frozen=True)
class SegmentParams:
    """What to fit: the features by name, scaling, PCA, algorithm and its settings."""

    features: tuple[str, ...]
    algorithm: Algorithm = "kmeans"
    k: int = 4
    scaling: Scaling = "standard"
    pca: int | None = None
    seed: int = 0
    eps: float | None = None
    min_samples: int = 5


@dataclass(frozen=True)
class Metrics:
    """Cluster quality; ``None`` where a metric is undefined (one cluster, all noise)."""

    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    inertia: float | None
    silhouette_sample: int | None = None
    #: The silhouette is not computed yet (``segment(..., silhouette=False)``; see
    #: :func:`with_silhouette`), so ``silhouette`` says nothing.
    pending: bool = False

    @property
    def silhouette_note(self) -> str:
        if self.silhouette_sample:
            return f"silhouette on a random sample of {self.silhouette_sample:,} customers"
        return "silhouette on all customers"

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "silhouette": self.silhouette,
            "calinski_harabasz": self.calinski_harabasz,
            "davies_bouldin": self.davies_bouldin,
            "inertia": self.inertia,
            "silhouette_sample": self.silhouette_sample,
        }


@dataclass(frozen=True)
class Segmentation:
    """A fitted segmentation of ``n`` customers.

    ``labels`` are ordered segment numbers: segment 0 has the highest value centroid
    (``monetary`` when present, else the first feature whose name speaks of spend, else the
    first feature), so it means the same thing run after run; DBSCAN noise is ``-1``.
    ``centroids`` holds the mean of each segment's members in the features' original units.
    """

    params: SegmentParams
    features: tuple[str, ...]
    labels: np.ndarray
    centroids: pd.DataFrame
    sizes: pd.Series
    metrics: Metrics
    pipeline: Pipeline
    label_map: dict[int, int]
    centers_transformed: np.ndarray
    notices: tuple[str, ...] = ()
    dropped_features: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return int(len(self.sizes[self.sizes.index != NOISE]))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Customers ``(m, features)`` into the space the model was fitted in."""
        values = _matrix(frame, self.features)
        steps = self.pipeline[:-1]
        return steps.transform(values) if len(steps) else values

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Ordered segment numbers for new customers ``(m, features)``.

        K-Means, MiniBatch and Gaussian mixture use their own ``predict``; hierarchical
        assigns the nearest segment centre, DBSCAN the nearest centre within ``eps`` of a
        core customer, else noise.
        """
        points = self.transform(frame)
        model = self.pipeline[-1]
        if hasattr(model, "predict"):
            raw = model.predict(points)
            return np.array([self.label_map.get(int(r), NOISE) for r in raw], dtype="int64")
        distances = ((points[:, None, :] - self.centers_transformed[None, :, :]) ** 2).sum(-1)
        ordered = np.argmin(distances, axis=1).astype("int64")
        if isinstance(model, DBSCAN):
            nearest_core = NearestNeighbors(n_neighbors=1).fit(model.components_)
            gap, _ = nearest_core.kneighbors(points)
            ordered[gap[:, 0] > model.eps] = NOISE
        return ordered


def _matrix(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    return frame.loc[:, list(features)].to_numpy(dtype="float64")


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _inverse_signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.expm1(np.abs(values))


def scaler_for(scaling: Scaling) -> list[tuple[str, object]]:
    """Pipeline steps for one scaling choice.

    ``log`` is a signed log1p (``sign(x) log(1 + |x|)``) followed by standardization, so that
    a negative net spend stays defined and ordered.
    """
    if scaling == "standard":
        return [("scale", StandardScaler())]
    if scaling == "robust":
        return [("scale", RobustScaler())]
    if scaling == "minmax":
        return [("scale", MinMaxScaler())]
    if scaling == "log":
        log = FunctionTransformer(_signed_log, inverse_func=_inverse_signed_log)
        return [("log", log), ("scale", StandardScaler())]
    if scaling == "none":
        return [("scale", FunctionTransformer())]
    raise SegmentationError(f"Unknown scaling {scaling!r}: choose one of {', '.join(SCALINGS)}.")


def check_features(
    customers: pd.DataFrame, features: tuple[str, ...] | list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Validate the chosen features: present, numeric, finite; drop constant ones.

    Returns the usable features, the dropped constant ones and notices about them.
    """
    features = tuple(dict.fromkeys(features))
    if not features:
        raise NoFeaturesError("No feature is chosen: pick at least one numeric column.")
    missing = [f for f in features if f not in customers.columns]
    if missing:
        raise NoFeaturesError(
            f"Unknown feature(s) {', '.join(map(repr, missing))}. "
            f"Available: {', '.join(map(str, customers.columns))}."
        )
    constant = []
    for feature in features:
        column = customers[feature]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise NoFeaturesError(
                f"Feature {feature!r} is not numeric: choose numeric columns only.",
                column=feature,
            )
        values = column.to_numpy(dtype="float64")
        bad = ~np.isfinite(values)
        if bad.any():
            where = np.flatnonzero(bad)[:3]
            ids = customers["customer_id"].iloc[where].tolist() if "customer_id" in customers \
                else where.tolist()
            raise NonFiniteError(
                f"Feature {feature!r} has {int(bad.sum())} missing or infinite values "
                f"(customers {', '.join(map(str, ids))}): impute or drop them in cleaning.",
                column=feature, rows=where,
            )
        # Every value is finite here, so one value throughout is min == max (nunique hashed
        # every value: 30 ms for three features at 500,000 customers).
        if not len(values) or values.min() == values.max():
            constant.append(feature)
    constant = tuple(constant)
    usable = tuple(f for f in features if f not in constant)
    notices = [f"Feature {f!r} is the same for every customer and was left out." for f in constant]
    if not usable:
        raise DegenerateDataError(
            "Every chosen feature is constant: all customers are identical in "
            f"{', '.join(features)}. Choose features that vary."
        )
    return usable, constant, notices


def _distinct_rows(values: np.ndarray, enough: int) -> int:
    """How many distinct rows ``values`` has; once that is at least ``enough``, possibly only
    a lower bound that is.

    Rows differ wherever one column does, so one column with ``enough`` distinct values
    settles it: a hashed pass over a column or two instead of sorting every row (the sort
    took 40 ms of each fit at 50,000 customers, which is why it was once skipped past
    200,000, leaving a k above the number of profiles unnoticed there).
    """
    for column in values.T:
        found = len(pd.unique(column + 0.0))  # + 0.0: -0.0 is 0.0, as it is to np.unique
        if found >= enough:
            return found
    return len(np.unique(values, axis=0))


def _check_k(n: int, distinct: int, k: int) -> None:
    largest = min(n - 1, distinct)
    if k < 2:
        raise SegmentationError("k must be at least 2 segments.")
    if largest < 2:
        raise DegenerateDataError(
            f"Only {distinct} distinct customer profile(s) among {n}: there is nothing to "
            "segment. Add data or features that vary."
        )
    if k > largest:
        raise TooFewCustomersError(
            f"k = {k} segments needs more customers: there are {n} customers and {distinct} "
            f"distinct profiles. The largest k allowed here is {largest}."
        )


def _auto_eps(points: np.ndarray, min_samples: int, seed: int) -> float:
    """The knee of the sorted distances to the ``min_samples``-th neighbour."""
    from kneed import KneeLocator

    sample = points if len(points) <= DBSCAN_SAMPLE else points[_dbscan_rows(len(points), seed)]
    k = min(min_samples, len(sample) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(sample).kneighbors(sample)
    curve = np.sort(distances[:, -1])
    knee = KneeLocator(np.arange(len(curve)), curve, curve="convex", direction="increasing")
    eps = float(knee.knee_y) if knee.knee_y is not None else float(np.quantile(curve, 0.9))
    return max(eps, 1e-6)


def _model(params: SegmentParams, points: np.ndarray):
    if params.algorithm == "kmeans":
        return KMeans(params.k, init="k-means++", n_init=N_INIT, random_state=params.seed)
    if params.algorithm == "minibatch":
        return MiniBatchKMeans(
            params.k, init="k-means++", n_init=N_INIT, random_state=params.seed,
            batch_size=min(4096, len(points)),
        )
    if params.algorithm == "hierarchical":
        if len(points) > HIERARCHICAL_MAX:
            raise TooLargeForAlgorithmError(
                f"Hierarchical clustering keeps all pairwise distances: {len(points):,} "
                f"customers would need about {len(points) ** 2 * 8 / 2 / 1e9:.0f} GB. It is "
                f"limited to {HIERARCHICAL_MAX:,} customers; use K-Means or MiniBatch K-Means."
            )
        return AgglomerativeClustering(params.k, linkage="ward")
    if params.algorithm == "dbscan":
        eps = params.eps if params.eps is not None else _auto_eps(
            points, params.min_samples, params.seed
        )
        return DBSCAN(eps=eps, min_samples=params.min_samples)
    raise SegmentationError(
        f"Unknown algorithm {params.algorithm!r}: choose one of {', '.join(ALGORITHMS)}."
    )


def _kmeans_on_sample(model: KMeans, points: np.ndarray, seed: int) -> KMeans:
    """An unfitted K-Means that starts from the best of ``model``'s starts on a sample."""
    rng = np.random.default_rng(seed)
    sample = points[np.sort(rng.choice(len(points), KMEANS_SAMPLE, replace=False))]
    centers = model.fit(sample).cluster_centers_
    return KMeans(model.n_clusters, init=centers, n_init=1, random_state=seed)


def _gmm(params: SegmentParams, points: np.ndarray) -> tuple[GaussianMixture, np.ndarray]:
    """The Gaussian mixture and each point's most likely component.

    GMM_STARTS starts run EM to convergence (:mod:`dashapp.mixture`: sklearn's EM,
    vectorized); past GMM_SAMPLE points on a random sample of that size, and the best is
    then refined by at most GMM_FULL_STEPS EM steps on every point. From the sample's
    optimum one step on all points moves the mixture to nearly the full fit's (the tests
    compare them)."""
    fit_on = points
    if len(points) > GMM_SAMPLE:
        rng = np.random.default_rng(params.seed)
        fit_on = points[np.sort(rng.choice(len(points), GMM_SAMPLE, replace=False))]
    fitted = mixture.fit(fit_on, params.k, GMM_STARTS, params.seed)
    if fit_on is not points:
        fitted = mixture.refine(points, fitted, GMM_FULL_STEPS)
    model = mixture.estimator(fitted, GMM_STARTS, params.seed, points.shape[1])
    return model, mixture.predict(points, fitted)


def _dbscan_rows(n: int, seed: int) -> np.ndarray:
    """The DBSCAN_SAMPLE rows of ``n`` that eps is chosen on and, past that size, DBSCAN runs
    on (one draw for both)."""
    return np.random.default_rng(seed).choice(n, DBSCAN_SAMPLE, False)


def _dbscan_on_sample(model: DBSCAN, points: np.ndarray, seed: int) -> np.ndarray:
    """DBSCAN's raw labels for all points from a fit on DBSCAN_SAMPLE of them.

    The sample is :func:`_auto_eps`'s (the same draw), so eps fits its density; a point
    outside it takes the cluster of its nearest core point when that is within eps (as a
    border point would), else it is noise.
    """
    picked = _dbscan_rows(len(points), seed)
    sample_labels = np.asarray(model.fit_predict(points[picked]), dtype="int64")
    raw = np.full(len(points), NOISE, dtype="int64")
    cores = model.core_sample_indices_
    if len(cores):
        gap, nearest = NearestNeighbors(n_neighbors=1).fit(model.components_).kneighbors(points)
        near = gap[:, 0] <= model.eps
        raw[near] = sample_labels[cores[nearest[near, 0]]]
    raw[picked] = sample_labels
    return raw


def _value_feature(features: tuple[str, ...]) -> str:
    if "monetary" in features:
        return "monetary"
    for feature in features:
        if any(word in feature.lower() for word in ("spend", "revenue", "sales", "amount")):
            return feature
    return features[0]


def compute_metrics(points: np.ndarray, labels: np.ndarray, seed: int = 0,
                    silhouette: bool = True) -> Metrics:
    """Silhouette (sampled past 10k customers), Calinski-Harabasz, Davies-Bouldin, inertia.

    Noise (``-1``) is left out. Inertia is the sum of squared distances to each cluster's mean.
    ``silhouette=False`` leaves the silhouette out (``pending``; :func:`silhouette_metric`
    gives it later).
    """
    mask = labels != NOISE
    points, labels = points[mask], labels[mask]
    _, codes, counts = label_groups(labels)
    n_clusters = len(counts)
    if n_clusters < 2 or n_clusters >= len(points):
        return Metrics(None, None, None, None)
    score, sample = silhouette_metric(points, labels, seed) if silhouette else (None, None)
    inertia, calinski_harabasz, davies_bouldin = _dispersion_scores(points, codes, counts)
    return Metrics(
        silhouette=score,
        calinski_harabasz=calinski_harabasz,
        davies_bouldin=davies_bouldin,
        inertia=inertia,
        silhouette_sample=sample,
        pending=not silhouette,
    )


def silhouette_metric(points: np.ndarray, labels: np.ndarray,
                      seed: int = 0) -> tuple[float, int | None]:
    """The silhouette of clustered points (no noise, 2 to n - 1 clusters) and the size of
    its sample (``None``: all points), as :func:`compute_metrics` reports it."""
    rows = _silhouette_rows(labels, SILHOUETTE_SAMPLE, seed) \
        if len(points) > SILHOUETTE_SAMPLE else None
    return float(_silhouette(points, labels, rows)), None if rows is None else len(rows)


def with_silhouette(customers: pd.DataFrame, seg: Segmentation) -> Metrics:
    """``seg``'s metrics with the silhouette that ``segment(..., silhouette=False)`` left out:
    the value :func:`segment` would have given (the same points, sample and seed)."""
    if not seg.metrics.pending:
        return seg.metrics
    points = _matrix(customers, seg.features)
    for _, step in seg.pipeline.steps[:-1]:  # the fitted scaling (and PCA)
        points = step.transform(points)
    mask = seg.labels != NOISE
    score, sample = silhouette_metric(points[mask], seg.labels[mask], seg.params.seed)
    return replace(seg.metrics, silhouette=score, silhouette_sample=sample, pending=False)


def label_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True, return_counts=True)``; integer labels in a
    small range (segment numbers) are counted instead of sorted (40 ms -> 5 ms at 500,000)."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu" and len(labels):
        low = int(labels.min())
        if int(labels.max()) - low < 1_000_000:
            shifted = labels.astype("int64") - low
            tally = np.bincount(shifted)
            present = np.flatnonzero(tally)
            rank = np.zeros(len(tally), dtype="int64")
            rank[present] = np.arange(len(present))
            return (present + low).astype(labels.dtype), rank[shifted], tally[present]
    values, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return values, codes.reshape(-1), counts


def _dispersion_scores(points: np.ndarray, codes: np.ndarray,
                       counts: np.ndarray) -> tuple[float, float, float]:
    """Inertia, ``sklearn.metrics.calinski_harabasz_score`` and ``davies_bouldin_score``
    from one pass over the points (``codes``, ``counts``: :func:`label_groups`): each
    point's distance to its cluster's mean.

    The same definitions as sklearn's (the tests compare them); sklearn's two functions and
    the inertia loop each found the clusters and their means again, cluster by cluster
    (about 230 ms at 500,000 customers against 40).
    """
    points = np.asarray(points, dtype="float64")
    k, n = len(counts), len(points)
    centroids = _cluster_means(points, codes, counts)
    apart = points - centroids[codes]
    squared = np.einsum("ij,ij->i", apart, apart)
    inertia = float(squared.sum())
    spread = centroids - points.mean(axis=0)
    between = float((counts * np.einsum("ij,ij->i", spread, spread)).sum())
    calinski_harabasz = 1.0 if inertia == 0.0 else between * (n - k) / (inertia * (k - 1.0))
    within = np.bincount(codes, weights=np.sqrt(squared), minlength=k) / counts
    norms = np.einsum("ij,ij->i", centroids, centroids)
    gaps = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2.0 * centroids @ centroids.T,
                              0.0))
    np.fill_diagonal(gaps, 0.0)
    if np.allclose(within, 0) or np.allclose(gaps, 0):
        return inertia, float(calinski_harabasz), 0.0
    gaps[gaps == 0] = np.inf
    davies_bouldin = float(np.mean(np.max((within[:, None] + within) / gaps, axis=1)))
    return inertia, float(calinski_harabasz), davies_bouldin


def _cluster_means(points: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(len(counts), n_features)``: the mean point of each group of :func:`label_groups`,
    from one bincount per feature (a mask per cluster cost 30 ms at 500,000)."""
    return np.column_stack([np.bincount(codes, weights=points[:, j], minlength=len(counts))
                            for j in range(points.shape[1])]) / counts[:, None]


def _silhouette(points: np.ndarray, labels: np.ndarray, rows: np.ndarray | None) -> float:
    """``sklearn.metrics.silhouette_score`` of the points in ``rows`` (all when ``None``), in
    small blocks.

    ``rows`` from :func:`_silhouette_rows` are sklearn's own sample unless it missed a
    cluster; the same definition. The distances come in blocks of rows that stay in cache,
    which on 10,000 points is about 5 times faster and takes 10 MB instead of up to 1 GB.
    """
    if rows is not None:
        points, labels = points[rows], labels[rows]
    names, codes, _ = label_groups(labels)
    if not 2 <= len(names) <= len(points) - 1:
        return float(silhouette_score(points, labels))  # raises sklearn's own error
    members = np.zeros((len(points), len(names)))
    members[np.arange(len(points)), codes] = 1.0
    counts = members.sum(axis=0)
    scores = np.empty(len(points))
    squares = np.einsum("ij,ij->i", points, points)
    # |x - y|^2 = -2 x.y + |x|^2 + |y|^2 as one product: [-2x, |x|^2, 1] . [y, 1, |y|^2],
    # one pass over each block instead of four.
    ones = np.ones((len(points), 1))
    left = np.hstack([-2.0 * points, squares[:, None], ones])
    across = np.ascontiguousarray(np.hstack([points, ones, squares[:, None]]).T)
    # The rows are split between the cores: numpy lets go of the GIL in every step below.
    parts = max(1, min(_cores(), len(points) // (8 * _SILHOUETTE_CHUNK)))
    bounds = [_SILHOUETTE_CHUNK * round(i * len(points) / parts / _SILHOUETTE_CHUNK)
              for i in range(parts)] + [len(points)]

    def score_part(part: int) -> None:
        _silhouette_blocks(left, across, codes, members, counts,
                           range(bounds[part], bounds[part + 1], _SILHOUETTE_CHUNK), scores)

    # Each product is small: BLAS threads would spend more time meeting than multiplying,
    # and on a busy machine far more.
    with threadpool_limits(1, user_api="blas"):
        if parts == 1:
            score_part(0)
        else:
            with ThreadPoolExecutor(parts) as pool:
                list(pool.map(score_part, range(parts)))
    # A cluster of one has an undefined score, which sklearn counts as 0.
    return float(np.mean(np.nan_to_num(scores)))


def _silhouette_rows(labels: np.ndarray, sample: int, seed: int) -> np.ndarray:
    """The rows :func:`_silhouette` scores: sklearn's sample (``permutation(n)[:sample]`` of
    a seeded ``RandomState``) and every member of a cluster it missed.

    Only small clusters can be missed (one of m customers is missed with probability
    ``(1 - sample / n) ** m``), but then sklearn's score is of the other clusters alone, and
    a sample with one cluster left raised: a K-Means of two on heavy-tailed spend often puts
    a handful of customers apart.
    """
    picked = check_random_state(seed).permutation(len(labels))[:sample]
    missed = np.setdiff1d(label_groups(labels)[0], label_groups(labels[picked])[0])
    if len(missed):
        picked = np.concatenate([picked, np.flatnonzero(np.isin(labels, missed))])
    return picked


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _silhouette_blocks(
    left: np.ndarray,
    across: np.ndarray,
    codes: np.ndarray,
    members: np.ndarray,
    counts: np.ndarray,
    starts: range,
    scores: np.ndarray,
) -> None:
    """The scores of the rows from each of ``starts``, ``_SILHOUETTE_CHUNK`` at a time
    (``left . across`` is the matrix of squared distances)."""
    block = np.empty((_SILHOUETTE_CHUNK, len(left)))
    for start in starts:
        rows = slice(start, min(start + _SILHOUETTE_CHUNK, len(left)))
        own = codes[rows]
        distances = block[: len(own)]
        np.matmul(left[rows], across, out=distances)
        np.maximum(distances, 0.0, out=distances)
        np.sqrt(distances, out=distances)
        sums = distances @ members
        at = np.arange(len(own))
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = sums[at, own] / (counts[own] - 1)
            means = sums / counts
            means[at, own] = np.inf
            nearest = means.min(axis=1)
            scores[rows] = (nearest - inside) / np.maximum(inside, nearest)


def segment(customers: pd.DataFrame, params: SegmentParams,
            silhouette: bool = True) -> Segmentation:
    """Fit one segmentation.

    Parameters
    ----------
    customers
        ``(n_customers, n_columns)``, one row per customer, with the numeric ``params.features``.
    params
        The features, scaling, PCA, algorithm, k and seed.
    silhouette
        ``False`` leaves the silhouette for later (``metrics.pending``, then
        :func:`with_silhouette`): the dashboard draws a new fit before its silhouette, which
        takes longer than most fits (0.15-0.2 s on a 10,000 sample).

    Returns
    -------
    Segmentation
        Ordered labels ``(n_customers,)``, centroids in original units, sizes, metrics and
        the fitted pipeline.
    """
    features, dropped, notices = check_features(customers, params.features)
    values = _matrix(customers, features)
    n = len(values)
    distinct = _distinct_rows(values, 2 if params.algorithm == "dbscan" else max(params.k, 2))
    if params.algorithm != "dbscan":
        _check_k(n, distinct, params.k)
    elif distinct < 2:
        _check_k(n, distinct, 2)
    steps = scaler_for(params.scaling)
    if params.pca:
        n_components = min(params.pca, len(features))
        steps.append(("pca", PCA(n_components=n_components, random_state=params.seed)))
    prep = Pipeline(steps)
    points = prep.fit_transform(values)
    model = None if params.algorithm == "gmm" else _model(params, points)
    # The mixture's and MiniBatch's products are of a few columns or small batches: threads
    # spend more time meeting than computing (on 2 busy cores MiniBatch K-Means at 500,000
    # customers took 1.5 s with them, 0.3 s without; a Gaussian mixture 6 times longer).
    single = threadpool_limits(1) if params.algorithm in ("gmm", "minibatch") \
        else contextlib.nullcontext()
    with warnings.catch_warnings(), single:
        warnings.simplefilter("ignore", category=UserWarning)
        if params.algorithm == "kmeans" and n > KMEANS_SAMPLE:
            model = _kmeans_on_sample(model, points, params.seed)
            notices.append(
                f"K-Means ran its {N_INIT} k-means++ starts on a random sample of "
                f"{KMEANS_SAMPLE:,} of {n:,} customers and refined the best on all of them."
            )
        raw = None
        if params.algorithm == "gmm":
            model, raw = _gmm(params, points)
            if n > GMM_SAMPLE:
                steps = "one EM step" if GMM_FULL_STEPS == 1 else \
                    f"at most {GMM_FULL_STEPS} EM steps"
                notices.append(
                    f"The Gaussian mixture was fitted ({GMM_STARTS} starts) on a random sample "
                    f"of {GMM_SAMPLE:,} of {n:,} customers, then refined by {steps} on all of "
                    "them; each customer is in its most likely component."
                )
        elif params.algorithm == "dbscan" and n > DBSCAN_SAMPLE:
            raw = _dbscan_on_sample(model, points, params.seed)
            notices.append(
                f"DBSCAN ran on a random sample of {DBSCAN_SAMPLE:,} of {n:,} customers (the "
                "one its eps was chosen on); every other customer joined the cluster of its "
                "nearest core customer within eps, or is noise."
            )
        if raw is None:
            raw = model.fit_predict(points)
    raw = np.asarray(raw, dtype="int64")
    found = sorted(set(np.unique(raw)) - {NOISE})
    if params.algorithm == "dbscan":
        if len(found) < 2:
            noise = int((raw == NOISE).sum())
            raise NoClustersFoundError(
                f"DBSCAN (eps={model.eps:.3g}, min_samples={params.min_samples}) found "
                f"{len(found)} cluster(s) and {noise:,} noise points out of {n:,} customers. "
                "Increase eps or lower min_samples, or use K-Means."
            )
        notices.append(
            f"DBSCAN used eps = {model.eps:.3g} and found {len(found)} clusters; "
            f"{int((raw == NOISE).sum()):,} customers are noise (segment -1)."
        )
    value = _value_feature(features)
    frame = pd.DataFrame(values, columns=list(features))
    means = frame.groupby(raw).mean()
    sizes_raw = pd.Series(raw).value_counts()
    order = sorted(found, key=lambda r: (-means.loc[r, value], -sizes_raw[r], r))
    label_map = {int(r): i for i, r in enumerate(order)}
    label_map[NOISE] = NOISE
    lookup = np.array([label_map.get(r, NOISE) for r in range(raw.max() + 1)] + [NOISE])
    labels = lookup[raw]
    groups, codes, counts = label_groups(raw)
    where = {int(g): i for i, g in enumerate(groups)}
    centers = _cluster_means(points, codes, counts)[[where[int(r)] for r in order]]
    centroids = frame.groupby(labels).mean()
    centroids.index.name = "segment"
    sizes = pd.Series(labels).value_counts().sort_index()
    sizes.index.name = "segment"
    metrics = compute_metrics(points, labels, params.seed, silhouette=silhouette)
    if metrics.silhouette_sample:
        notices.append(f"Silhouette computed on a random sample of {SILHOUETTE_SAMPLE:,} "
                       f"of {n:,} customers.")
    pipeline = Pipeline([*prep.steps, ("model", model)])
    return Segmentation(
        params=replace(params, features=features),
        features=features,
        labels=labels.astype("int64"),
        centroids=centroids,
        sizes=sizes,
        metrics=metrics,
        pipeline=pipeline,
        label_map=label_map,
        centers_transformed=centers,
        notices=tuple(notices),
        dropped_features=dropped,
    )


@dataclass(frozen=True)
class KSweep:
    """Metrics for each k and the recommendation."""

    table: pd.DataFrame
    elbow: int | None
    recommended: int
    reason: str


def sweep_k(
    customers: pd.DataFrame, params: SegmentParams, ks: range | list[int] = K_RANGE,
    fit: Callable[[SegmentParams], Segmentation] | None = None,
) -> KSweep:
    """Fit K-Means (or the chosen k-based algorithm) for each k and score it four ways.

    The elbow is the knee of inertia against k (kneed's Kneedle). The recommended k is the
    elbow when there is one, else the k with the best silhouette.

    ``fit(params)`` fits one k (by default :func:`segment` on ``customers``); a memoized one
    lets a later change of k reuse the sweep's fit instead of fitting again.

    Returns
    -------
    KSweep
        ``table``: ``(len(ks), 5)`` with ``k``, ``inertia``, ``silhouette``,
        ``calinski_harabasz``, ``davies_bouldin``.
    """
    from kneed import KneeLocator

    algorithm = params.algorithm if params.algorithm in {"kmeans", "minibatch", "gmm",
                                                         "hierarchical"} else "kmeans"
    features, _, _ = check_features(customers, params.features)
    values = _matrix(customers, features)
    distinct = _distinct_rows(values, max([*ks, 2]))
    largest = min(len(values) - 1, distinct)
    ks = [k for k in ks if 2 <= k <= largest]
    if not ks:
        _check_k(len(values), distinct, 2)
    rows = []
    for k in ks:
        one = replace(params, algorithm=algorithm, k=k, features=features)
        result = fit(one) if fit is not None else segment(customers, one)
        m = result.metrics
        rows.append({"k": k, "inertia": m.inertia, "silhouette": m.silhouette,
                     "calinski_harabasz": m.calinski_harabasz,
                     "davies_bouldin": m.davies_bouldin})
    table = pd.DataFrame(rows)
    elbow = None
    if len(table) >= 3:
        knee = KneeLocator(table["k"], table["inertia"], curve="convex", direction="decreasing")
        elbow = int(knee.knee) if knee.knee is not None else None
    best_sil = table.loc[table["silhouette"].idxmax()]
    if elbow is not None:
        at = table.set_index("k").loc[elbow]
        reason = (
            f"k = {elbow} is the elbow of inertia (adding segments past it gains little); "
            f"silhouette there is {at['silhouette']:.3f}, the best silhouette is "
            f"{best_sil['silhouette']:.3f} at k = {int(best_sil['k'])}."
        )
        return KSweep(table, elbow, elbow, reason)
    best = int(best_sil["k"])
    reason = f"No clear elbow; k = {best} has the best silhouette ({best_sil['silhouette']:.3f})."
    return KSweep(table, None, best, reason)


@dataclass(frozen=True)
class Stability:
    """Agreement of refits with other seeds: adjusted Rand index against the first fit."""

    mean_ari: float
    scores: tuple[float, ...] = field(default_factory=tuple)
    seeds: tuple[int, ...] = field(default_factory=tuple)


def stability(
    customers: pd.DataFrame, params: SegmentParams, n_seeds: int = 5
) -> Stability:
    """Refit with ``n_seeds`` other seeds and report the mean adjusted Rand index.

    Hierarchical clustering ignores the seed, so its refits are on random 90% subsamples
    (without replacement), compared on the customers they share. Only labels are compared:
    no fit here computes a silhouette (with them, stability at 50,000 customers took 1.4 s
    for K-Means, without them 0.4 s).
    """
    base = segment(customers, params, silhouette=False)
    scores, seeds = [], []
    rng = np.random.default_rng(params.seed)
    for i in range(1, n_seeds + 1):
        seed = params.seed + i
        if params.algorithm == "hierarchical":
            keep = np.sort(rng.choice(len(customers), int(len(customers) * 0.9), replace=False))
            refit = segment(customers.iloc[keep], replace(params, seed=seed), silhouette=False)
            scores.append(adjusted_rand_score(base.labels[keep], refit.labels))
        else:
            refit = segment(customers, replace(params, seed=seed), silhouette=False)
            scores.append(adjusted_rand_score(base.labels, refit.labels))
        seeds.append(seed)
    return Stability(float(np.mean(scores)), tuple(float(s) for s in scores), tuple(seeds))
