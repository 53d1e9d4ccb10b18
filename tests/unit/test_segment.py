"""Segmentation: the paper's figures, every algorithm, metrics against scikit-learn, guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from dashapp import errors
from dashapp.features import rfm
from dashapp.segment import (
    ALGORITHMS,
    KMEANS_SAMPLE,
    NOISE,
    SCALINGS,
    SILHOUETTE_SAMPLE,
    SegmentParams,
    compute_metrics,
    segment,
    stability,
    sweep_k,
)

RFM = ("recency", "frequency", "monetary")


@pytest.fixture(scope="module")
def sales_rfm(request):
    data = request.config.rootpath.parent / "shared" / "data" / "sales_data_sample"
    raw = pd.read_csv(data / "sales_data_sample.csv", encoding="ISO-8859-1")
    lines = pd.DataFrame({
        "customer_id": raw["CUSTOMERNAME"].astype("str"),
        "order_id": raw["ORDERNUMBER"].astype("str"),
        "order_date": pd.to_datetime(raw["ORDERDATE"], format="%m/%d/%Y %H:%M"),
        "amount": raw["SALES"].astype("float64"),
    })
    return rfm(lines)


def _blobs(n_per=40, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0], [10, 0], [0, 10]])
    points = np.vstack([c + rng.normal(size=(n_per, 2)) for c in centers])
    frame = pd.DataFrame(points, columns=["x", "spend"])
    frame.insert(0, "customer_id", [f"c{i:03d}" for i in range(len(frame))])
    return frame


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_paper_kmeans_k4_on_standard_scaled_rfm(sales_rfm, seed):
    result = segment(sales_rfm, SegmentParams(features=RFM, k=4, seed=seed))
    assert round(result.metrics.silhouette, 3) == 0.494
    assert result.metrics.silhouette == pytest.approx(0.4945, abs=5e-5)
    assert sorted(result.sizes.tolist(), reverse=True) == [49, 29, 12, 2]
    # Segment 0 is the highest-monetary centroid, whatever the seed.
    assert result.sizes[0] == 2
    monetary = result.centroids["monetary"].tolist()
    assert monetary == sorted(monetary, reverse=True)


def test_metrics_agree_with_scikit_learn(sales_rfm):
    result = segment(sales_rfm, SegmentParams(features=RFM, k=4, seed=0))
    scaled = StandardScaler().fit_transform(sales_rfm[list(RFM)].to_numpy(float))
    reference = KMeans(4, n_init=10, random_state=0).fit(scaled)
    assert result.metrics.silhouette == pytest.approx(silhouette_score(scaled, reference.labels_))
    assert result.metrics.inertia == pytest.approx(reference.inertia_, rel=1e-9)
    centroid_means = sales_rfm.groupby(result.labels)[list(RFM)].mean()
    np.testing.assert_allclose(result.centroids.to_numpy(), centroid_means.to_numpy())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_separates_clear_blobs_and_predicts(algorithm):
    frame = _blobs()
    result = segment(frame, SegmentParams(features=("x", "spend"), algorithm=algorithm, k=3))
    assert result.k == 3
    # DBSCAN may call a stray point of a blob noise.
    assert all(38 <= size <= 40 for size in result.sizes[result.sizes.index >= 0])
    assert result.metrics.silhouette > 0.7
    # Segment 0 is the highest "spend" centroid.
    assert result.centroids.loc[0, "spend"] == result.centroids["spend"].max()
    agreement = (result.predict(frame) == result.labels).mean()
    assert agreement >= 0.97
    again = segment(frame, SegmentParams(features=("x", "spend"), algorithm=algorithm, k=3))
    assert (again.labels == result.labels).all()


@pytest.mark.parametrize("scaling", SCALINGS)
def test_every_scaling_runs_and_pca_reduces(scaling, sales_rfm):
    result = segment(sales_rfm, SegmentParams(features=RFM, k=3, scaling=scaling, pca=2))
    assert result.k == 3
    assert result.centers_transformed.shape == (3, 2)
    assert len(result.predict(sales_rfm.head(5))) == 5


def test_log_scaling_keeps_negative_spend_defined():
    frame = _blobs()
    frame["spend"] = frame["spend"] - 5
    result = segment(frame, SegmentParams(features=("x", "spend"), k=3, scaling="log"))
    assert np.isfinite(result.transform(frame)).all()


def test_silhouette_is_sampled_past_ten_thousand_customers():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(12_000, 2)), columns=["a", "b"])
    frame.insert(0, "customer_id", np.arange(12_000).astype(str))
    result = segment(frame, SegmentParams(features=("a", "b"), k=3))
    assert result.metrics.silhouette_sample == 10_000
    assert any("sample" in n for n in result.notices)


def test_sweep_finds_the_elbow_with_a_reason(sales_rfm):
    sweep = sweep_k(sales_rfm, SegmentParams(features=RFM))
    assert sweep.table["k"].tolist() == list(range(2, 11))
    assert sweep.table["silhouette"].iloc[0] == pytest.approx(0.849, abs=5e-4)
    assert sweep.table["inertia"].is_monotonic_decreasing
    assert sweep.elbow == 4 and sweep.recommended == 4
    assert "elbow" in sweep.reason


def test_stability_is_one_for_well_separated_data():
    result = stability(_blobs(), SegmentParams(features=("x", "spend"), k=3), n_seeds=3)
    assert result.mean_ari == pytest.approx(1.0)
    assert len(result.scores) == 3


def test_stability_compares_labels_only_and_agrees_with_sklearns_ari(monkeypatch):
    # Overlapping data (the refits disagree somewhat): the mean ARI of segment()'s own fits
    # with seeds 1-3 against seed 0, and no silhouette computed on the way.
    from sklearn.metrics import adjusted_rand_score

    import dashapp.segment as segment_module

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(600, 2)), columns=["x", "spend"])
    params = SegmentParams(features=("x", "spend"), k=5, algorithm="minibatch")
    fits = [segment(frame, SegmentParams(**{**params.__dict__, "seed": s})).labels
            for s in range(4)]
    expected = [adjusted_rand_score(fits[0], f) for f in fits[1:]]
    assert min(expected) < 0.99

    def refuse(*args, **kwargs):
        raise AssertionError("stability computed a silhouette")

    monkeypatch.setattr(segment_module, "silhouette_metric", refuse)
    result = stability(frame, params, n_seeds=3)
    assert result.scores == pytest.approx(expected)
    assert result.mean_ari == pytest.approx(np.mean(expected))


def test_guards_fewer_customers_than_k():
    frame = _blobs(n_per=2)
    with pytest.raises(errors.TooFewCustomersError, match="largest k allowed here is 5"):
        segment(frame, SegmentParams(features=("x", "spend"), k=8))


def test_distinct_rows_is_exact_below_enough_and_a_true_lower_bound_past_it():
    from dashapp.segment import _distinct_rows

    rng = np.random.default_rng(3)
    for trial in range(40):
        rows = rng.integers(1, 30, size=3)
        # Few values per column, rows repeated, a -0.0 beside a 0.0 now and then.
        values = rng.integers(0, rows, size=(int(rng.integers(2, 400)), 3)).astype(float)
        values[rng.random(len(values)) < 0.05, 0] *= -1.0
        true = len(np.unique(values, axis=0))
        for enough in (2, 4, 10, 50, 500):
            found = _distinct_rows(values, enough)
            assert found == true if true < enough else enough <= found <= true, (trial, enough)


def test_guards_fewer_profiles_than_k_past_200k_customers():
    # Counting distinct profiles used to be skipped past 200,000 customers.
    frame = pd.DataFrame({"a": np.tile([0.0, 1.0, 5.0], 70_000),
                          "b": np.tile([2.0, 2.0, 9.0], 70_000)})
    with pytest.raises(errors.TooFewCustomersError, match="3 distinct profiles"):
        segment(frame, SegmentParams(features=("a", "b"), k=4))
    assert segment(frame, SegmentParams(features=("a", "b"), k=3)).k == 3


def test_guards_constant_feature_dropped_with_notice():
    frame = _blobs()
    frame["flat"] = 3.0
    result = segment(frame, SegmentParams(features=("x", "spend", "flat"), k=3))
    assert result.features == ("x", "spend")
    assert result.dropped_features == ("flat",)
    assert any("'flat'" in n for n in result.notices)


def test_guards_all_identical_and_no_features():
    frame = pd.DataFrame({"customer_id": list("abcd"), "a": [1.0] * 4, "b": [2.0] * 4})
    with pytest.raises(errors.DegenerateDataError):
        segment(frame, SegmentParams(features=("a", "b"), k=2))
    with pytest.raises(errors.NoFeaturesError):
        segment(frame, SegmentParams(features=(), k=2))
    with pytest.raises(errors.NoFeaturesError, match="'zzz'"):
        segment(frame, SegmentParams(features=("zzz",), k=2))


def test_guards_non_finite_feature_names_customer():
    frame = _blobs()
    frame.loc[5, "spend"] = np.inf
    with pytest.raises(errors.NonFiniteError, match="c005"):
        segment(frame, SegmentParams(features=("x", "spend"), k=3))


def test_guards_dbscan_only_noise():
    frame = _blobs()
    with pytest.raises(errors.NoClustersFoundError, match="eps"):
        segment(frame, SegmentParams(features=("x", "spend"), algorithm="dbscan", eps=1e-4))


def test_guards_hierarchical_refuses_past_its_memory(monkeypatch):
    import dashapp.segment as module

    monkeypatch.setattr(module, "HIERARCHICAL_MAX", 100)
    with pytest.raises(errors.TooLargeForAlgorithmError, match="K-Means"):
        segment(_blobs(), SegmentParams(features=("x", "spend"), algorithm="hierarchical", k=3))


def test_blockwise_silhouette_equals_sklearns_on_the_same_sample():
    rng = np.random.default_rng(3)
    small = rng.normal(size=(700, 3))
    labels = (small[:, 0] > 0).astype(int) + 2 * (small[:, 1] > 1)
    assert compute_metrics(small, labels).silhouette == pytest.approx(
        silhouette_score(small, labels), abs=1e-10)
    big = np.vstack([rng.normal(loc, 1.0, size=(6000, 2)) for loc in (0, 4)])
    big_labels = np.repeat([0, 1], 6000)
    got = compute_metrics(big, big_labels, seed=7)
    assert got.silhouette_sample == SILHOUETTE_SAMPLE
    assert got.silhouette == pytest.approx(
        silhouette_score(big, big_labels, sample_size=SILHOUETTE_SAMPLE, random_state=7),
        abs=1e-10)


def test_dispersion_metrics_equal_sklearns(sales_rfm):
    # Calinski-Harabasz, Davies-Bouldin and inertia from one pass, against sklearn's own
    # functions (and a cluster-by-cluster inertia): real RFM data, labels with gaps and
    # noise, a cluster of one point, and clusters whose points coincide.
    scaled = StandardScaler().fit_transform(sales_rfm[list(RFM)].to_numpy(float))
    labels = KMeans(4, n_init=10, random_state=0).fit(scaled).labels_
    rng = np.random.default_rng(2)
    spread = rng.gamma(2.0, 3.0, (20_000, 3))
    gappy = rng.integers(0, 6, 20_000) * 7 + 3
    gappy[:40] = NOISE
    gappy[40] = 10_000  # a cluster of one
    same = np.repeat([[1.0, 2.0], [1.0, 2.0], [5.0, 1.0], [5.0, 1.0]], 10, axis=0)
    for points, given in ((scaled, labels), (spread, gappy), (same, np.repeat([0, 1], 20)),
                          (scaled, labels.astype("float64"))):
        got = compute_metrics(points, given)
        kept = given != NOISE
        p, g = points[kept], given[kept]
        assert got.calinski_harabasz == pytest.approx(calinski_harabasz_score(p, g), rel=1e-9)
        assert got.davies_bouldin == pytest.approx(davies_bouldin_score(p, g), rel=1e-9,
                                                   abs=1e-12)
        inertia = sum(((p[g == c] - p[g == c].mean(axis=0)) ** 2).sum() for c in np.unique(g))
        assert got.inertia == pytest.approx(inertia, rel=1e-9, abs=1e-12)


def test_silhouette_sample_keeps_every_cluster():
    # Two clusters, one of three customers: sklearn's 10,000-of-50,000 sample misses all
    # three about half the time and then raises. The sample takes the missed members in;
    # the score is sklearn's on exactly those rows.
    rng = np.random.default_rng(4)
    points = np.vstack([rng.normal(size=(49_997, 2)), rng.normal(60.0, 1.0, size=(3, 2))])
    labels = np.repeat([0, 1], [49_997, 3])
    seeds = [s for s in range(40) if not np.isin(
        np.random.RandomState(s).permutation(50_000)[:SILHOUETTE_SAMPLE], [49_997, 49_998,
                                                                          49_999]).any()]
    assert seeds, "no seed whose sample misses the small cluster"
    got = compute_metrics(points, labels, seed=seeds[0])
    rows = np.concatenate([np.random.RandomState(seeds[0]).permutation(50_000)
                           [:SILHOUETTE_SAMPLE], [49_997, 49_998, 49_999]])
    assert got.silhouette == pytest.approx(silhouette_score(points[rows], labels[rows]),
                                           abs=1e-10)
    assert got.silhouette_sample == SILHOUETTE_SAMPLE + 3
    # A sample that has every cluster is sklearn's own.
    kept = next(s for s in range(40) if s not in seeds)
    assert compute_metrics(points, labels, seed=kept).silhouette == pytest.approx(
        silhouette_score(points, labels, sample_size=SILHOUETTE_SAMPLE, random_state=kept),
        abs=1e-10)


def test_kmeans_past_the_sample_size_fits_as_well_as_full_kmeans():
    rng = np.random.default_rng(11)
    n = KMEANS_SAMPLE + 10_000
    frame = pd.DataFrame({"recency": rng.exponential(90, n), "frequency": rng.pareto(2.5, n),
                          "monetary": rng.lognormal(6, 1.2, n)})
    params = SegmentParams(features=("recency", "frequency", "monetary"), k=4,
                           scaling="log")
    seg = segment(frame, params)
    assert any("sample" in note for note in seg.notices)
    full = KMeans(4, n_init=10, random_state=0).fit(seg.transform(frame))
    assert seg.metrics.inertia <= full.inertia_ * 1.005


def test_gmm_past_its_sample_size_fits_on_a_sample_then_on_everyone(monkeypatch):
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture

    import dashapp.segment as segment_module

    rng = np.random.default_rng(4)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]], dtype=float)
    points = np.vstack([c + rng.normal(0, 1.0, (3_000, 3)) for c in centres])
    customers = pd.DataFrame(points, columns=["a", "b", "c"])
    customers.insert(0, "customer_id", [f"x{i}" for i in range(len(customers))])
    params = SegmentParams(features=("a", "b", "c"), k=4, algorithm="gmm", scaling="none")
    monkeypatch.setattr(segment_module, "GMM_SAMPLE", 2_000)
    sampled = segment(customers, params)
    assert any("sample of 2,000 of 12,000" in n for n in sampled.notices)
    model = sampled.pipeline.named_steps["model"]
    # At most GMM_FULL_STEPS EM steps on everyone (it used to run them to convergence).
    assert isinstance(model, GaussianMixture)
    assert 1 <= model.n_iter_ <= segment_module.GMM_FULL_STEPS
    full = GaussianMixture(4, n_init=3, random_state=0).fit(points)
    assert adjusted_rand_score(full.predict(points), sampled.labels) > 0.99
    assert np.allclose(np.sort(model.means_, axis=0), np.sort(full.means_, axis=0), atol=0.05)


def test_gmm_on_a_sample_scores_as_well_as_a_full_fit_on_everyone(monkeypatch):
    # Overlapping segments of unequal sizes and shapes: the sampled fit (GMM_SAMPLE points,
    # then GMM_FULL_STEPS EM steps on all 15,000) against sklearn's full fit on all.
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture

    import dashapp.segment as segment_module

    rng = np.random.default_rng(9)
    points = np.vstack([
        rng.multivariate_normal([0, 0, 0], [[1, 0.6, 0], [0.6, 1, 0], [0, 0, 0.5]], 9_000),
        rng.multivariate_normal([4, 1, 0], np.diag([0.5, 2.0, 1.0]), 4_000),
        rng.multivariate_normal([0, 5, 3], np.diag([1.5, 0.7, 0.7]), 2_000),
    ])
    customers = pd.DataFrame(points, columns=["a", "b", "c"])
    params = SegmentParams(features=("a", "b", "c"), k=3, algorithm="gmm", scaling="none")
    monkeypatch.setattr(segment_module, "GMM_SAMPLE", 3_000)
    sampled = segment(customers, params)
    assert any("sample of 3,000 of 15,000" in n and "EM step" in n and "on all of them" in n
               for n in sampled.notices)
    model = sampled.pipeline.named_steps["model"]
    full = GaussianMixture(3, n_init=3, random_state=0).fit(points)
    # Mean log-likelihood per customer within 0.002 of the full fit's (the sample's own fit
    # is 0.004 below here: the steps on everyone count), the same segments.
    assert model.score(points) >= full.score(points) - 0.002
    assert adjusted_rand_score(full.predict(points), sampled.labels) > 0.97
    # Every customer is in its most likely component of the final mixture.
    np.testing.assert_array_equal(sampled.predict(customers), sampled.labels)


def test_dbscan_past_its_sample_size_runs_on_a_sample_and_extends_it(monkeypatch):
    # The sample is the one eps is chosen on; the others join their nearest core's cluster
    # within eps. Against sklearn's DBSCAN on every point with that eps: the same clusters.
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import adjusted_rand_score

    import dashapp.segment as segment_module

    rng = np.random.default_rng(8)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    points = np.vstack([c + rng.normal(0, 1.0, (4_000, 2)) for c in centres]
                       + [rng.uniform(-30, 40, (60, 2))])
    customers = pd.DataFrame(points, columns=["a", "b"])
    monkeypatch.setattr(segment_module, "DBSCAN_SAMPLE", 2_000)
    seg = segment(customers, SegmentParams(features=("a", "b"), algorithm="dbscan",
                                           scaling="none", eps=1.5, min_samples=5))
    assert any("sample of 2,000 of 12,060" in n for n in seg.notices)
    assert seg.k == 3
    full = DBSCAN(eps=1.5, min_samples=5).fit_predict(points)
    assert adjusted_rand_score(full, seg.labels) > 0.98
    # Noise stays noise: the scattered points far from every cluster.
    assert (seg.labels[-60:] == -1).sum() >= (full[-60:] == -1).sum() - 3
    model = seg.pipeline.named_steps["model"]
    assert len(model.components_) <= 2_000


@pytest.mark.parametrize("algorithm, scaling, pca", [
    ("kmeans", "standard", None), ("minibatch", "log", 2), ("gmm", "robust", None),
    ("dbscan", "standard", None), ("hierarchical", "minmax", 2),
])
def test_a_silhouette_left_for_later_is_the_one_segment_gives(monkeypatch, algorithm,
                                                               scaling, pca):
    # What the dashboard draws first (silhouette=False) and completes afterwards: the same
    # fit, and the same silhouette on the same sample as segment's own.
    import dashapp.segment as segment_module
    from dashapp.segment import with_silhouette

    monkeypatch.setattr(segment_module, "SILHOUETTE_SAMPLE", 400)
    rng = np.random.default_rng(5)
    centres = np.array([[0, 0, 0], [6, 1, 0], [1, 7, 2]], dtype=float)
    points = np.vstack([c + rng.normal(0, 1.0, (500, 3)) for c in centres]
                       + [rng.uniform(-8, 14, (40, 3))])  # DBSCAN's noise
    frame = pd.DataFrame(np.abs(points), columns=["a", "b", "c"])
    params = SegmentParams(features=("a", "b", "c"), algorithm=algorithm, k=4,
                           scaling=scaling, pca=pca)
    full = segment(frame, params)
    later = segment(frame, params, silhouette=False)
    assert later.metrics.pending and later.metrics.silhouette is None
    assert not full.metrics.pending and full.metrics.silhouette_sample >= 400
    np.testing.assert_array_equal(later.labels, full.labels)
    assert later.metrics.calinski_harabasz == full.metrics.calinski_harabasz
    assert with_silhouette(frame, later) == full.metrics
    assert with_silhouette(frame, full) is full.metrics  # nothing left to compute

