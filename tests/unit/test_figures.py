"""Figures: the data each trace carries, sampling, size, colours and the shared layout.

The figure functions return plotly JSON (dicts); these tests read each through ``go.Figure``
(:class:`_Checked`), which validates it against plotly's schema on the way.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from dash._utils import to_json

from dashapp import figures as _figures
from dashapp.features import rfm, rfm_scores
from dashapp.personas import build_personas
from dashapp.rfm_segments import RFM_SEGMENT_ORDER
from dashapp.segment import NOISE, SegmentParams, label_groups, segment, sweep_k

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _decoded(value):
    """Plotly JSON with its typed arrays (``{"dtype", "bdata"}``) back as numpy arrays."""
    if isinstance(value, dict):
        if set(value) in ({"dtype", "bdata"}, {"dtype", "bdata", "shape"}):
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            if "shape" in value:
                array = array.reshape([int(n) for n in value["shape"].split(",")])
            return array
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


class _Checked:
    """``dashapp.figures`` whose figures come back as ``go.Figure``: each dict goes through
    plotly's validation (an unknown or ill-typed property raises), and the same JSON must
    come out as went in. A ``go.Figure`` argument (to :func:`highlight`) goes in as a dict."""

    def __getattr__(self, name):
        found = getattr(_figures, name)
        if not callable(found) or isinstance(found, type):
            return found

        def call(*args, **kwargs):
            args = [a.to_plotly_json() if isinstance(a, go.Figure) else a for a in args]
            out = found(*args, **kwargs)
            if not (isinstance(out, dict) and "layout" in out):
                return out
            fig = go.Figure(_decoded(out))
            # What Dash sends of each (plotly's own to_json leaves trace ids out).
            assert json.loads(to_json(fig)) == json.loads(to_json(out)), name
            return fig
        return call


figures = _Checked()
RFM = ("recency", "frequency", "monetary")


@pytest.fixture(scope="module")
def sales():
    raw = pd.read_csv(DATA / "sales_data_sample" / "sales_data_sample.csv",
                      encoding="ISO-8859-1")
    lines = pd.DataFrame({
        "customer_id": raw["CUSTOMERNAME"].astype("str"),
        "order_id": raw["ORDERNUMBER"].astype("str"),
        "order_date": pd.to_datetime(raw["ORDERDATE"], format="%m/%d/%Y %H:%M"),
        "amount": raw["SALES"].astype("float64"),
    })
    customers = rfm(lines)
    scores, _ = rfm_scores(customers)
    customers = pd.concat([customers, scores], axis=1)
    seg = segment(customers, SegmentParams(features=RFM, k=4))
    personas = build_personas(customers, seg)
    names = {p.segment: p.name for p in personas}
    return customers, seg, personas, names


def _synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": np.char.add("C", np.arange(n).astype("str")),
        "recency": rng.integers(1, 700, n),
        "frequency": rng.poisson(3, n),
        "monetary": rng.gamma(2.0, 500.0, n),
    })


def _by_segment(fig: go.Figure) -> dict[int, go.BaseTraceType]:
    return {t.meta["segment"]: t for t in fig.data}


def _sample_notes(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations if "stratified sample" in a.text]


def _all_figures(sales) -> dict[str, go.Figure]:
    customers, seg, personas, names = sales
    table = pd.DataFrame({"k": [2, 3, 4], "inertia": [9.0, 4.0, 3.0],
                          "silhouette": [0.5, 0.6, 0.4], "calinski_harabasz": [10.0, 20.0, 15.0],
                          "davies_bouldin": [0.9, 0.5, 0.7]})
    return {
        "k_selection": figures.k_selection(table, 3, 3),
        "scatter_3d": figures.scatter_3d(customers, seg.labels, names, RFM),
        "scatter_2d": figures.scatter_2d(customers, seg.labels, names, "recency", "monetary"),
        "bubble": figures.bubble(customers, seg.labels, names, "recency", "frequency",
                                 "monetary"),
        "segment_bars": figures.segment_bars(personas),
        "rfm_cluster_heatmap": figures.rfm_cluster_heatmap(customers["rfm_segment"],
                                                           seg.labels, names),
        "radar": figures.radar(personas),
        "histogram": figures.histogram(customers["monetary"], "Monetary"),
        "correlation_heatmap": figures.correlation_heatmap(customers, list(RFM)),
        "rf_heatmap": figures.rf_heatmap(customers["r_score"], customers["f_score"],
                                         customers["monetary"]),
        "empty_figure": figures.empty_figure("No data"),
    }


def test_fig001_every_figure_shares_the_layout(sales):
    revisions = set()
    for name, fig in _all_figures(sales).items():
        assert isinstance(fig, go.Figure), name
        assert fig.layout.template == pio.templates["plotly_white"], name
        assert fig.layout.autosize is True and fig.layout.width is None, name
        assert fig.layout.uirevision, name
        revisions.add(fig.layout.uirevision)
        for trace in fig.data:
            if "hovertemplate" in trace:
                assert trace.hovertemplate, (name, trace.name)
    assert len(revisions) == 11


def test_fig002_segment_colors_depend_on_the_segment_number_only():
    colors = figures.segment_colors([0, 1, 2, NOISE])
    assert colors[NOISE] == figures.NOISE_COLOR
    assert len({colors[0], colors[1], colors[2]}) == 3
    assert figures.segment_colors([2])[2] == colors[2]
    many = figures.segment_colors(list(range(len(figures.PALETTE))))
    assert len(set(many.values())) == len(figures.PALETTE) > 10
    assert figures.NOISE_COLOR not in many.values()


def test_fig003_same_segment_same_colour_in_scatter_bars_and_radar(sales):
    customers, seg, personas, names = sales
    scatter = _by_segment(figures.scatter_3d(customers, seg.labels, names, RFM))
    scatter_2d = _by_segment(figures.scatter_2d(customers, seg.labels, names, "recency",
                                                "frequency"))
    bars = _by_segment(figures.segment_bars(personas))
    polygons = _by_segment(figures.radar(personas))
    for p in personas:
        color = scatter[p.segment].marker.color
        assert color == scatter_2d[p.segment].marker.color
        assert color == bars[p.segment].marker.color
        assert color == polygons[p.segment].line.color
        assert scatter[p.segment].name == f"{p.segment} · {p.name}"
    assert len({scatter[s].marker.color for s in scatter}) == len(scatter)


def test_fig004_stratified_sample_is_deterministic_and_keeps_tiny_segments():
    rng = np.random.default_rng(1)
    labels = rng.choice([0, 1, 2], size=200_000, p=[0.6, 0.3, 0.1])
    labels[rng.choice(200_000, 3, replace=False)] = 7
    rows = figures.stratified_sample(labels, max_points=5000, seed=0)
    assert np.array_equal(rows, figures.stratified_sample(labels, max_points=5000, seed=0))
    assert not np.array_equal(rows, figures.stratified_sample(labels, 5000, seed=1))
    assert abs(len(rows) - 5000) <= 5
    assert len(np.unique(rows)) == len(rows) and np.all(np.diff(rows) > 0)
    kept = pd.Series(labels[rows]).value_counts()
    assert kept[7] == 3
    everyone = pd.Series(labels).value_counts()
    for s in (0, 1, 2):
        assert kept[s] / len(rows) == pytest.approx(everyone[s] / len(labels), abs=0.01)


def test_fig005_stratified_sample_floor_for_small_segments():
    labels = np.r_[np.zeros(100_000, dtype="int64"), np.ones(120, dtype="int64")]
    kept = np.bincount(labels[figures.stratified_sample(labels, max_points=1000)])
    # A proportional share would be one customer; the floor keeps fifty, plus at most its
    # proportional part of what is left.
    assert 50 <= kept[1] <= 52
    assert kept.sum() == 1000


def test_fig006_no_sampling_and_no_note_when_everyone_fits(sales):
    customers, seg, _, names = sales
    assert np.array_equal(figures.stratified_sample(seg.labels, 5000), np.arange(len(seg.labels)))
    fig = figures.scatter_2d(customers, seg.labels, names, "recency", "monetary")
    assert _sample_notes(fig) == []
    assert sum(len(t.x) for t in fig.data) == len(customers)


def test_fig007_scatter_3d_traces_carry_each_segments_customers(sales):
    customers, seg, _, names = sales
    fig = figures.scatter_3d(customers, seg.labels, names, RFM)
    assert all(isinstance(t, go.Scatter3d) for t in fig.data)
    traces = _by_segment(fig)
    assert sorted(traces) == sorted(np.unique(seg.labels).tolist())
    for s, trace in traces.items():
        members = customers.loc[seg.labels == s]
        assert trace.legendgroup == str(s)
        np.testing.assert_array_equal(trace.x, members["recency"].to_numpy(dtype="float64"))
        np.testing.assert_array_equal(trace.z, members["monetary"].to_numpy(dtype="float64"))
        assert list(trace.text) == members["customer_id"].tolist()
    assert fig.layout.scene.xaxis.title.text == "recency"
    assert fig.layout.scene.zaxis.title.text == "monetary"
    assert fig.layout.legend.orientation == "h"


def test_fig008_scatter_3d_of_500k_customers_stays_small():
    customers = _synthetic(500_000)
    labels = np.random.default_rng(2).integers(0, 6, len(customers))
    labels[:3] = 9
    fig = figures.scatter_3d(customers, labels, {9: "Tiny"}, RFM)
    size = len(fig.to_json())
    assert size < 1_500_000, size
    assert all(isinstance(t.x, np.ndarray) for t in fig.data)
    assert '"bdata"' in fig.to_json()
    assert sum(len(t.x) for t in fig.data) == pytest.approx(5000, abs=5)
    assert len(_by_segment(fig)[9].x) == 3
    assert _sample_notes(fig) == [
        "Showing 5,000 of 500,000 customers (stratified sample per segment)"]


def test_fig009_scatter_2d_is_webgl_with_log_axes(sales):
    customers, seg, _, names = sales
    fig = figures.scatter_2d(customers, seg.labels, names, "frequency", "monetary",
                             log_x=True, log_y=True)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "frequency"
    with pytest.raises(ValueError, match="same rows"):
        figures.scatter_2d(customers, seg.labels[:-1], names, "frequency", "monetary")


def test_fig010_bubble_sizes_clip_negatives_and_cap_the_largest():
    customers = _synthetic(300)
    customers.loc[:4, "monetary"] = -50.0
    labels = np.arange(300) % 3
    fig = figures.bubble(customers, labels, {}, "recency", "frequency", "monetary")
    sizes = np.concatenate([t.marker.size for t in fig.data])
    shown = np.concatenate([t.customdata for t in fig.data])
    assert sizes.min() == 0 and shown.min() == -50.0
    assert fig.data[0].marker.sizeref == pytest.approx(2 * customers["monetary"].max() / 40 ** 2)
    assert fig.data[0].marker.sizemode == "area"
    big = figures.bubble(_synthetic(50_000), np.arange(50_000) % 4, {}, "recency",
                         "frequency", "monetary")
    assert sum(len(t.x) for t in big.data) == 2000
    assert len(_sample_notes(big)) == 1


def test_fig011_k_selection_marks_recommended_k_and_elbow(sales):
    customers = sales[0]
    sweep = sweep_k(customers, SegmentParams(features=RFM), ks=range(2, 8))
    fig = figures.k_selection(sweep.table, sweep.recommended, sweep.elbow)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    for trace, column in zip(lines, ["inertia", "silhouette", "calinski_harabasz",
                                     "davies_bouldin"]):
        np.testing.assert_allclose(trace.y, sweep.table[column].to_numpy(dtype="float64"))
        np.testing.assert_array_equal(trace.x, sweep.table["k"].to_numpy())
    marks = [s for s in fig.layout.shapes if s.x0 == s.x1 == sweep.recommended]
    assert len(marks) == 4
    texts = [a.text for a in fig.layout.annotations]
    assert f"recommended k = {sweep.recommended}" in texts
    if sweep.elbow is not None:
        assert f"elbow k = {sweep.elbow}" in texts
    titles = " ".join(texts)
    assert "Silhouette ↑" in titles and "Calinski-Harabasz ↑" in titles
    assert "Davies-Bouldin ↓" in titles


def test_fig012_k_selection_tolerates_missing_metrics_and_no_elbow():
    table = pd.DataFrame({"k": [2, 3], "inertia": [5.0, 3.0], "silhouette": [None, 0.4],
                          "calinski_harabasz": [None, 9.0], "davies_bouldin": [None, 0.8]})
    fig = figures.k_selection(table, 3, None)
    assert not any(a.text.startswith("elbow") for a in fig.layout.annotations)
    assert isinstance(figures.k_selection(table.iloc[:0], 3, None), go.Figure)


def test_fig013_segment_bars_hold_shares_and_segment_numbers(sales):
    _, _, personas, _ = sales
    fig = figures.segment_bars(personas)
    customers_panel = [t for t in fig.data if t.xaxis == "x"]
    revenue_panel = [t for t in fig.data if t.xaxis == "x2"]
    assert len(customers_panel) == len(revenue_panel) == len(personas)
    for p, bar, rev in zip(sorted(personas, key=lambda p: p.segment), customers_panel,
                           revenue_panel):
        assert bar.x[0] == pytest.approx(p.customer_share)
        assert rev.x[0] == pytest.approx(p.revenue_share)
        assert bar.y[0] == f"{p.segment} · {p.name}"
        assert bar.customdata[0][0] == p.segment == bar.meta["segment"]
        assert bar.customdata[0][1] == p.size
    assert sum(t.x[0] for t in customers_panel) == pytest.approx(1.0)


def test_fig014_segment_bars_without_revenue_show_sizes_only():
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(60)],
                              "age": np.r_[np.full(30, 20.0), np.full(30, 60.0)]
                              + np.arange(60) % 5,
                              "income": np.r_[np.full(30, 30.0), np.full(30, 90.0)]})
    seg = segment(customers, SegmentParams(features=("age", "income"), k=2))
    personas = build_personas(customers, seg)
    assert all(p.revenue_share is None for p in personas)
    fig = figures.segment_bars(personas)
    assert {t.xaxis for t in fig.data} == {"x"}
    assert [a.text for a in fig.layout.annotations] == ["Share of customers"]
    assert sorted(t.customdata[0][1] for t in fig.data) == sorted(p.size for p in personas)


def test_fig015_rfm_cluster_heatmap_counts_match_crosstab(sales):
    customers, seg, _, names = sales
    fig = figures.rfm_cluster_heatmap(customers["rfm_segment"], seg.labels, names)
    heat = fig.data[0]
    counts = np.asarray(heat.customdata)
    assert counts.sum() == len(customers)
    assert list(heat.y) == list(RFM_SEGMENT_ORDER)
    assert list(heat.x) == [f"{s} · {names[s]}" for s in sorted(names)]
    expected = pd.crosstab(customers["rfm_segment"], seg.labels).reindex(
        index=list(RFM_SEGMENT_ORDER), fill_value=0)
    np.testing.assert_array_equal(counts, expected.to_numpy())
    np.testing.assert_allclose(np.asarray(heat.z).sum(axis=0), 1.0)
    assert "share of the cluster" in fig.layout.title.text


def test_fig016_radar_draws_each_profile_as_a_closed_polygon(sales):
    _, _, personas, _ = sales
    fig = figures.radar(personas)
    traces = _by_segment(fig)
    for p in personas:
        trace = traces[p.segment]
        features = list(p.profile)
        assert list(trace.theta) == features + features[:1]
        np.testing.assert_allclose(trace.r[:-1], list(p.profile.values()))
        assert trace.r[-1] == trace.r[0]
        assert trace.fill == "toself"
        assert "rgba" in trace.fillcolor and trace.fillcolor.endswith("0.15)")
    assert list(fig.layout.polar.radialaxis.range) == [0, 1]


def test_fig017_radar_leaves_noise_out():
    customers = _synthetic(400)
    seg = segment(customers, SegmentParams(features=RFM, algorithm="dbscan", eps=0.4,
                                           min_samples=8))
    personas = build_personas(customers, seg)
    assert any(p.segment == NOISE for p in personas)
    fig = figures.radar(personas)
    assert NOISE not in _by_segment(fig)
    bars = _by_segment(figures.segment_bars(personas))
    assert bars[NOISE].marker.color == figures.NOISE_COLOR


def test_fig018_histogram_counts_every_value_into_fixed_bins(sales):
    # Binned here rather than shipping raw values, so the figure's size does not grow with n.
    values = sales[0]["monetary"]
    fig = figures.histogram(values, "Monetary", log_y=True, bins=30)
    bar = fig.data[0]
    expected, edges = np.histogram(values.to_numpy(), bins=30)
    np.testing.assert_array_equal(bar.y, expected)
    np.testing.assert_allclose(bar.x, (edges[:-1] + edges[1:]) / 2)
    np.testing.assert_allclose(bar.customdata[:, 0], edges[:-1])
    assert bar.y.sum() == len(values)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.title.text == "Monetary"
    big = figures.histogram(pd.Series(np.random.default_rng(0).normal(size=1_000_000)), "x")
    assert len(big.to_json()) < 20_000 and big.data[0].y.sum() == 1_000_000


def test_fig019_histogram_of_small_whole_numbers_has_a_bar_per_value():
    values = pd.Series([1, 1, 2, 3, 3, 3, 7, np.nan], name="frequency")
    bar = figures.histogram(values, "Orders").data[0]
    np.testing.assert_array_equal(bar.x, np.arange(1, 8))
    np.testing.assert_array_equal(bar.y, [2, 1, 3, 0, 0, 0, 1])
    assert figures.histogram(pd.Series([], dtype="float64"), "x").data == ()


def test_fig020_correlation_heatmap_equals_pandas_corr(sales):
    customers = sales[0]
    columns = ["recency", "frequency", "monetary", "tenure"]
    heat = figures.correlation_heatmap(customers, columns).data[0]
    np.testing.assert_allclose(np.asarray(heat.z), customers[columns].corr().to_numpy())
    assert (heat.zmin, heat.zmax, heat.zmid) == (-1, 1, 0)
    assert heat.texttemplate == "%{z:.2f}"
    assert list(heat.x) == list(heat.y) == columns


def test_fig021_rf_heatmap_cells_count_customers_and_revenue(sales):
    customers = sales[0]
    fig = figures.rf_heatmap(customers["r_score"], customers["f_score"], customers["monetary"])
    heat = fig.data[0]
    z = np.asarray(heat.z)
    assert z.shape == (5, 5) and z.sum() == len(customers)
    expected = pd.crosstab(customers["f_score"], customers["r_score"]).reindex(
        index=range(1, 6), columns=range(1, 6), fill_value=0)
    np.testing.assert_array_equal(z, expected.to_numpy())
    r, f = 5, 5
    members = customers[(customers["r_score"] == r) & (customers["f_score"] == f)]
    assert heat.text[f - 1][r - 1].startswith(f"{len(members):,} customer")
    by_revenue = figures.rf_heatmap(customers["r_score"], customers["f_score"],
                                    customers["monetary"], value="revenue").data[0]
    assert np.asarray(by_revenue.z).sum() == pytest.approx(customers["monetary"].sum())
    with pytest.raises(ValueError, match="customers"):
        figures.rf_heatmap(customers["r_score"], customers["f_score"], customers["monetary"],
                           value="orders")


def test_fig022_pca_components_feed_scatter_3d(sales):
    customers, seg, _, names = sales
    pcs = figures.pca_components(customers[["recency", "frequency", "monetary", "tenure"]])
    assert pcs.shape == (len(customers), 3)
    assert all(c.startswith(f"PC{i + 1} (") for i, c in enumerate(pcs.columns))
    variances = pcs.var().to_numpy()
    assert np.all(np.diff(variances) <= 1e-9)
    np.testing.assert_allclose(np.corrcoef(pcs.to_numpy(), rowvar=False), np.eye(3), atol=1e-8)
    fig = figures.scatter_3d(pcs, seg.labels, names, tuple(pcs.columns))
    assert fig.layout.scene.yaxis.title.text == pcs.columns[1]
    assert fig.data[0].text is None


def test_fig023_empty_figure_says_why():
    fig = figures.empty_figure("No customers yet: upload a file.")
    assert fig.data == ()
    assert fig.layout.annotations[0].text == "No customers yet: upload a file."
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_fig024_every_segment_trace_follows_the_convention(sales):
    for name, fig in _all_figures(sales).items():
        if name not in {"scatter_3d", "scatter_2d", "bubble", "segment_bars", "radar"}:
            continue
        for trace in fig.data:
            assert isinstance(trace.meta["segment"], int), name
            assert trace.legendgroup == str(trace.meta["segment"]), name


def test_trace_uids_are_safe_in_css_selectors():
    frame = pd.DataFrame({"customer_id": ["1", "2", "3", "4"],
                          "Spending Score (1-100)": [1.0, 50.0, 99.0, 20.0],
                          "Annual Income (k$)": [15.0, 40.0, 80.0, 60.0],
                          "a|b": [1.0, 2.0, 3.0, 4.0]})
    labels = np.array([0, 1, 0, 1])
    figs = [figures.bubble(frame, labels, {}, "a|b", "Spending Score (1-100)",
                           "Annual Income (k$)"),
            figures.scatter_2d(frame, labels, {}, "a|b", "Annual Income (k$)"),
            figures.scatter_3d(frame, labels, {}, ("a|b", "Spending Score (1-100)",
                                                   "Annual Income (k$)"))]
    for fig in figs:
        uids = [t.uid for t in fig.data]
        assert len(set(uids)) == len(uids)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]+", uid) for uid in uids), uids


def test_fig030_k_selection_json_is_the_k_chart_kept_for_its_sweep(sales):
    customers, seg, _, _ = sales
    sweep = sweep_k(customers, seg.params)
    got = _figures.k_selection_json(sweep.table, sweep.recommended, sweep.elbow)
    built = _figures.k_selection(sweep.table, sweep.recommended, sweep.elbow)
    assert to_json(got) == to_json(built)
    # The same sweep (another copy of its table) is the kept figure; other values are not.
    assert _figures.k_selection_json(sweep.table.copy(), sweep.recommended, sweep.elbow) is got
    other = _figures.k_selection_json(sweep.table, sweep.recommended + 1, sweep.elbow)
    assert other is not got and f"recommended k = {sweep.recommended + 1}" in to_json(other)
    changed = sweep.table.assign(inertia=sweep.table["inertia"] * 2)
    assert _figures.k_selection_json(changed, sweep.recommended, sweep.elbow) is not got


def test_fig031_every_figure_has_the_white_template_however_it_was_set():
    # The dict-built figures carry plotly_white whatever the default; the charts built as
    # go.Figure take plotly's default (set once in dashapp.figures), and a default changed
    # elsewhere afterwards is overridden per figure.
    assert pio.templates.default == figures.TEMPLATE
    white = pio.templates[figures.TEMPLATE]
    assert figures.empty_figure("x").layout.template == white
    try:
        pio.templates.default = "plotly_dark"
        assert figures.empty_figure("x").layout.template == white
        assert figures.histogram(pd.Series([1.0, 2.0]), "x").layout.template == white
    finally:
        pio.templates.default = figures.TEMPLATE


def test_fig032_heatmap_counts_noise_and_unknown_names_as_crosstab_does():
    rng = np.random.default_rng(3)
    names = pd.Series(rng.choice(list(RFM_SEGMENT_ORDER) + ["Other"], 3_000),
                      dtype="string")
    names.iloc[:7] = pd.NA
    labels = rng.integers(-1, 4, 3_000)
    fig = figures.rfm_cluster_heatmap(names, labels, {})
    expected = pd.crosstab(names.to_numpy(dtype=object), labels).reindex(
        index=list(RFM_SEGMENT_ORDER), columns=[0, 1, 2, 3, -1], fill_value=0)
    np.testing.assert_array_equal(np.asarray(fig.data[0].customdata), expected.to_numpy())
    assert list(fig.data[0].x) == ["0", "1", "2", "3", "-1 · Unclustered"]


def test_fig033_segments_are_grouped_as_np_unique_does():
    rng = np.random.default_rng(5)
    for labels in (rng.integers(-1, 6, 40_000), np.repeat([7, 2, -1], [30, 9_000, 3_000]),
                   rng.integers(0, 3, 100).astype("int32"), np.array([10_000, 3, 3]),
                   np.array([5_000_000, 0])):
        got = label_groups(labels)
        want = np.unique(labels, return_inverse=True, return_counts=True)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype or a is got[1]
    floats = np.array([0.0, 1.0, 1.0])
    np.testing.assert_array_equal(label_groups(floats)[2], [1, 2])


def test_fig034_arrays_go_out_as_plotly_encodes_them(sales):
    # Each numeric array as plotly.py's own encoder writes it (an independent reference):
    # 64-bit integers narrowed to the smallest type that holds them, 2-D with its shape.
    from _plotly_utils.utils import to_typed_array_spec

    for values in (np.arange(5, dtype="int64"), np.array([-300, 2], dtype="int64"),
                   np.array([2**40, 1], dtype="int64"), np.array([7, 3], dtype="uint64"),
                   np.linspace(0, 1, 7), np.arange(6, dtype="float32").reshape(2, 3),
                   np.array([[1, 2], [3, 400]], dtype="int64"), np.array([], dtype="float64")):
        assert json.loads(to_json(_figures._typed(values))) == \
            json.loads(to_json(to_typed_array_spec(values))), values
    # What the views send: dicts with typed arrays, not go.Figure and not lists of numbers.
    customers, seg, personas, names = sales
    for fig in (_figures.scatter_3d(customers, seg.labels, names, RFM),
                _figures.bubble(customers, seg.labels, names, *RFM),
                _figures.radar(personas), _figures.segment_bars(personas),
                _figures.rfm_cluster_heatmap(customers["rfm_segment"], seg.labels, names)):
        assert type(fig) is dict
        for trace in fig["data"]:
            numeric = [trace[k] for k in ("x", "z", "r") if k in trace
                       and not isinstance(trace[k], list)]
            assert numeric and all(set(v) >= {"dtype", "bdata"} for v in numeric), trace["type"]
