"""Figures: customers, segments and personas in, plotly figure JSON out (no Dash here).

Each function returns the figure as plotly.js takes it, a dict ``{"data": [...],
"layout": {...}}`` with numeric arrays as base64 typed arrays, which is what plotly.py's
``go.Figure`` would send. The charts that change with every segmentation are built as such
dicts directly: ``go.Figure`` checks every property on the way in and copies every array on
the way out, 20-40 ms a chart at 50,000 customers against 1-3 ms. ``go.Figure(fig)`` takes
any of them back (the tests do, which checks each against plotly's schema).

Segment-trace convention: every trace that draws one segment (scatter points, a persona's
bar, a radar polygon) carries ``meta={"segment": <int>}`` and ``legendgroup=str(segment)``,
is named ``"<segment> · <persona>"`` and uses the colour :func:`segment_colors` gives that
segment number, the same in every chart. Selecting a segment is done in the browser: a
clientside callback reads ``trace.meta.segment`` and lowers the opacity of the other traces
(``Plotly.restyle``), so no figure is rebuilt on the server for a click. Bars also hold the
segment number in ``customdata[0]`` so that ``clickData`` says which segment was clicked.
Every figure has a ``uirevision`` that changes only when what is plotted changes (other
axes, another metric), so a user's zoom, camera and legend toggles survive a new k.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from dashapp.personas import Persona
from dashapp.rfm_segments import RFM_SEGMENT_ORDER
from dashapp.segment import NOISE, label_groups

TEMPLATE = "plotly_white"
NOISE_COLOR = "#9e9e9e"
MIN_PER_SEGMENT = 50
MARGIN = {"l": 50, "r": 20, "t": 50, "b": 40}
#: Past this many legend entries the legend moves below the plot, in rows.
LEGEND_BOTTOM_AFTER = 3
# Every figure starts from plotly's default template, taken as it is registered; setting
# ``template=`` on a figure validates the whole template again (20-36 ms a figure, most of
# a chart's cost at 50,000 customers).
pio.templates.default = TEMPLATE


def _is_grey(color: str) -> bool:
    rgb = pc.hex_to_rgb(color) if color.startswith("#") else pc.unlabel_rgb(color)
    return max(rgb) - min(rgb) < 12


# Greys are left out so that no segment can be mistaken for DBSCAN noise.
PALETTE: tuple[str, ...] = tuple(
    c for c in dict.fromkeys(pc.qualitative.Plotly + pc.qualitative.D3 + pc.qualitative.Safe)
    if not _is_grey(c)
)


def segment_colors(segments: Sequence[int]) -> dict[int, str]:
    """One colour per segment number, the same in every chart.

    The colour depends on the segment number only (not on its position in ``segments``), so a
    chart that shows a subset of segments still agrees with the others. Past the palette's
    length (29 colours) colours repeat; noise (``-1``) is grey.
    """
    return {
        int(s): NOISE_COLOR if int(s) == NOISE else PALETTE[int(s) % len(PALETTE)]
        for s in segments
    }


def segment_label(segment: int, names: dict[int, str] | None = None) -> str:
    """``"0 · Champions"``; the bare number when the segment has no name."""
    name = (names or {}).get(int(segment))
    if name is None and int(segment) == NOISE:
        name = "Unclustered"
    return f"{int(segment)} · {name}" if name else str(int(segment))


def _with_alpha(color: str, alpha: float) -> str:
    rgb = pc.hex_to_rgb(color) if color.startswith("#") else pc.unlabel_rgb(color)
    return f"rgba({int(rgb[0])}, {int(rgb[1])}, {int(rgb[2])}, {alpha})"


def _style(fig: go.Figure, uirevision: str, legend_entries: int = 0) -> go.Figure:
    """The house style of a chart built as a ``go.Figure`` (see :func:`_layout`)."""
    if pio.templates.default != TEMPLATE:  # changed elsewhere since import
        fig.update_layout(template=TEMPLATE)
    fig.update_layout(margin=MARGIN, autosize=True, uirevision=uirevision)
    if legend_entries > LEGEND_BOTTOM_AFTER:
        fig.update_layout(legend=_LEGEND_BELOW)
    return fig


_LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "center",
                 "x": 0.5}


@functools.lru_cache(maxsize=1)
def _template_json() -> dict:
    """The plotly_white template as plotly.js takes it (every figure carries it, as
    ``go.Figure`` does; shared between figures, so never changed in place)."""
    return pio.templates[TEMPLATE].to_plotly_json()


def _layout(uirevision: str, legend_entries: int = 0, **extra) -> dict:
    """The house style of a dict figure: what :func:`_style` gives a ``go.Figure``."""
    layout = {"template": _template_json(), "margin": dict(MARGIN), "autosize": True,
              "uirevision": uirevision}
    if legend_entries > LEGEND_BOTTOM_AFTER:
        layout["legend"] = dict(_LEGEND_BELOW)
    layout.update(extra)
    return layout


def _json(fig: go.Figure) -> dict:
    """A ``go.Figure`` as the same plotly JSON the dict-built charts return."""
    return fig.to_plotly_json()


_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4",
          "uint32": "u4", "float32": "f4", "float64": "f8"}


def _typed(values) -> dict | list:
    """A numeric array as plotly.js's typed array (``{"dtype", "bdata"[, "shape"]}``), as
    plotly.py encodes it: 64-bit integers in the smallest type that holds them (plotly.js
    has none of 64 bits; past 32 bits a list), other numbers as float64; empty: ``[]``."""
    array = np.asarray(values)
    if not array.size:
        return []
    if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        low, high = int(array.min()), int(array.max())
        kinds = (np.int8, np.int16, np.int32) if array.dtype.kind == "i" else \
            (np.uint8, np.uint16, np.uint32)
        fits = [t for t in kinds if np.iinfo(t).min <= low and high <= np.iinfo(t).max]
        if not fits:
            return array.tolist()  # as plotly.py: exact numbers, not rounded to float64
        array = array.astype(fits[0])
    elif str(array.dtype) not in _TYPED:
        array = array.astype("float64")
    array = np.ascontiguousarray(array)
    spec = {"dtype": _TYPED[str(array.dtype)], "bdata": base64.b64encode(array).decode("ascii")}
    if array.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in array.shape)
    return spec


def _sample_note(layout: dict, shown: int, total: int) -> None:
    if shown < total:
        layout.setdefault("annotations", []).append({
            "text": f"Showing {shown:,} of {total:,} customers (stratified sample per segment)",
            "xref": "paper", "yref": "paper", "x": 0, "y": 1.0, "xanchor": "left",
            "yanchor": "bottom", "showarrow": False, "font": {"size": 11, "color": "#666666"},
        })


def _trace_uid(view: str, segment: int) -> str:
    """A trace id plotly.js can use in a CSS selector: column names such as
    ``Spending Score (1-100)`` or ``a|b`` made it throw on the next redraw."""
    digest = hashlib.sha1(view.encode()).hexdigest()[:10]
    return f"{view.split(':', 1)[0]}-{digest}-{int(segment)}"


def _number_format(column: pd.Series) -> str:
    """d3 format for hover: counts and days stay whole, money and scores get two decimals."""
    if pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
        return ",.0f"
    return ",.2f"


def _segment_order(labels: np.ndarray) -> list[int]:
    """Segments present, noise first so that its grey points are drawn underneath."""
    present = [int(s) for s in np.unique(labels)]
    return sorted(present, key=lambda s: (s != NOISE, s))


def _segment_trace_keys(segment: int, names: dict[int, str] | None) -> dict:
    return {
        "name": segment_label(segment, names),
        "legendgroup": str(segment),
        "meta": {"segment": int(segment)},
        # Noise is listed last in the legend though it is drawn first.
        "legendrank": 2000 if segment == NOISE else 1000 + segment,
    }


def empty_figure(message: str) -> dict:
    """A blank figure with ``message`` in the middle, for "no data" and errors."""
    return {"data": [], "layout": _layout(
        "empty", annotations=[{"text": message, "xref": "paper", "yref": "paper", "x": 0.5,
                               "y": 0.5, "showarrow": False,
                               "font": {"size": 15, "color": "#666666"}}],
        xaxis={"visible": False}, yaxis={"visible": False})}


def stratified_sample(labels: np.ndarray, max_points: int = 5000, seed: int = 0) -> np.ndarray:
    """Row indices of a per-segment sample small enough to draw.

    Each segment keeps at least ``min(size, 50)`` customers, so a segment of three among
    200,000 still shows; the rest of the budget is shared in proportion to what each segment
    has beyond that floor (largest remainders, so the total is exactly ``max_points`` unless
    the floors alone exceed it: with more than ``max_points / 50`` segments).

    Parameters
    ----------
    labels
        ``(n,)`` segment numbers.
    max_points
        The most rows to keep.
    seed
        Seeds the draw: the same labels and seed give the same rows.

    Returns
    -------
    numpy.ndarray
        ``(m,)`` sorted int64 row positions, ``m <= max_points`` (``arange(n)`` when
        ``n <= max_points``).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n <= max_points:
        return np.arange(n, dtype="int64")
    segments, inverse, counts = label_groups(labels)
    floor = np.minimum(counts, MIN_PER_SEGMENT)
    extra = counts - floor
    budget = max(max_points - int(floor.sum()), 0)
    quota = extra * (budget / extra.sum()) if extra.sum() else np.zeros(len(counts))
    take = np.floor(quota).astype("int64")
    short = budget - int(take.sum())
    if short > 0:
        # Stable sort: ties go to the lower segment number, so the draw is reproducible.
        order = np.argsort(-(quota - take), kind="stable")[:short]
        take[order] += 1
    take = np.minimum(floor + take, counts)
    rng = np.random.default_rng(seed)
    # Group numbers fit in 16 bits: numpy's stable sort of them is a radix sort.
    small = inverse.astype("int16") if len(segments) < 2**15 else inverse
    by_segment = np.argsort(small, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [
        rng.choice(by_segment[start:start + count], size=k, replace=False)
        for start, count, k in zip(starts, counts, take)
    ]
    return np.sort(np.concatenate(chosen)).astype("int64")


def _check_rows(customers: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if len(labels) != len(customers):
        raise ValueError(
            f"{len(labels):,} segment labels for {len(customers):,} customers: they must be "
            "in the same rows."
        )
    return labels


def _hover_rows(columns: list[tuple[str, str, pd.Series]], has_id: bool) -> str:
    lines = ["<b>%{text}</b>"] if has_id else []
    lines += [f"{title}: %{{{ref}:{_number_format(col)}}}" for title, ref, col in columns]
    return "<br>".join(lines)


def pca_components(points: pd.DataFrame | np.ndarray, n: int = 3) -> pd.DataFrame:
    """Principal components of standardized features, for a 3-D or 2-D view.

    Parameters
    ----------
    points
        ``(n_customers, n_features)`` numeric values.
    n
        How many components (at most ``n_features``).

    Returns
    -------
    pandas.DataFrame
        ``(n_customers, n)``, columns ``"PC1 (52%)"``, ... with each component's share of the
        variance; signs fixed so that each component's largest loading is positive, so the
        picture does not flip between runs.
    """
    values = np.asarray(points, dtype="float64")
    std = values.std(axis=0)
    scaled = (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)
    n = min(n, scaled.shape[1])
    # Eigenvectors of the small covariance matrix: cheap however many customers there are.
    eigenvalues, vectors = np.linalg.eigh(np.cov(scaled, rowvar=False).reshape(
        scaled.shape[1], scaled.shape[1]))
    order = np.argsort(eigenvalues)[::-1][:n]
    vectors = vectors[:, order]
    vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(n)])
    total = eigenvalues.clip(min=0).sum()
    ratios = eigenvalues[order].clip(min=0) / total if total > 0 else np.zeros(n)
    index = points.index if isinstance(points, pd.DataFrame) else None
    return pd.DataFrame(scaled @ vectors, index=index,
                        columns=[f"PC{i + 1} ({r:.0%})" for i, r in enumerate(ratios)])


def _points_figure(
    customers: pd.DataFrame,
    labels: np.ndarray,
    names: dict[int, str],
    axes: tuple[str, ...],
    max_points: int,
    trace: str,
    uirevision: str,
    marker: dict,
    size: str | None = None,
    **layout,
) -> dict:
    labels = _check_rows(customers, labels)
    missing = [a for a in (*axes, *([size] if size else [])) if a not in customers]
    if missing:
        raise ValueError(f"Unknown column(s) {', '.join(map(repr, missing))} to plot.")
    if not len(customers):
        return empty_figure("No customers to show.")
    rows = stratified_sample(labels, max_points)
    sample = customers.iloc[rows]
    labels = labels[rows]
    colors = segment_colors(_segment_order(labels))
    coords = {a: sample[a].to_numpy(dtype="float64") for a in axes}
    has_id = "customer_id" in sample
    ids = sample["customer_id"].astype("str").to_numpy() if has_id else None
    refs = ["x", "y", "z"][:len(axes)]
    hover = [(a, r, customers[a]) for a, r in zip(axes, refs)]
    sizes = sizeref = None
    if size:
        shown = sample[size].to_numpy(dtype="float64")
        sizes = np.clip(np.nan_to_num(shown, nan=0.0), 0, None)
        # Area sizing: the largest bubble is about 40 px across.
        sizeref = 2.0 * sizes.max() / 40 ** 2 if sizes.max() > 0 else 1.0
        hover.append((size, "customdata", customers[size]))
    template = _hover_rows(hover, has_id)
    traces = []
    segments = _segment_order(labels)
    for segment in segments:
        mask = labels == segment
        color = colors[segment]
        mark = {**marker, "color": color}
        if segment == NOISE:
            mark["opacity"] = 0.35
        points = {"type": trace, **{r: _typed(coords[a][mask]) for r, a in zip(refs, axes)},
                  "mode": "markers", "marker": mark}
        if size:
            mark.update(size=_typed(sizes[mask]), sizemode="area", sizeref=float(sizeref),
                        sizemin=2, line={"width": 0.5, "color": "white"})
            points["customdata"] = _typed(shown[mask])
        if has_id:
            points["text"] = ids[mask].tolist()
        label = segment_label(segment, names)
        points.update(hovertemplate=template + f"<extra>{label}</extra>",
                      uid=_trace_uid(uirevision, segment),
                      **_segment_trace_keys(segment, names))
        traces.append(points)
    fig = {"data": traces, "layout": _layout(uirevision, len(segments), **layout)}
    _sample_note(fig["layout"], len(rows), len(customers))
    return fig


def scatter_3d(
    customers: pd.DataFrame,
    labels: np.ndarray,
    names: dict[int, str],
    axes: tuple[str, str, str],
    max_points: int = 5000,
) -> dict:
    """Customers as points in three features (or principal components), one trace a segment.

    Parameters
    ----------
    customers
        ``(n_customers, ...)`` with the three ``axes`` columns (e.g. RFM features, or the
        frame :func:`pca_components` returns) and optionally ``customer_id`` for the hover.
    labels
        ``(n_customers,)`` segment numbers in the rows of ``customers``.
    names
        Persona name of each segment, for the legend.
    max_points
        Past this, a stratified sample (:func:`stratified_sample`) is drawn and said so.
    """
    scene = {f"{ref}axis": {"title": {"text": axis}} for ref, axis in zip("xyz", axes)}
    return _points_figure(customers, labels, names, axes, max_points, "scatter3d",
                          f"scatter-3d:{'|'.join(axes)}", {"size": 3, "opacity": 0.75},
                          scene=scene)


def scatter_2d(
    customers: pd.DataFrame,
    labels: np.ndarray,
    names: dict[int, str],
    x: str,
    y: str,
    max_points: int = 5000,
    log_x: bool = False,
    log_y: bool = False,
) -> dict:
    """Customers in two features, one WebGL trace a segment.

    Parameters
    ----------
    customers
        ``(n_customers, ...)`` with columns ``x`` and ``y`` (``customer_id`` is shown on hover).
    labels
        ``(n_customers,)`` segment numbers in the rows of ``customers``.
    log_x, log_y
        Log axes; values <= 0 cannot be drawn on them and are left out by plotly.
    """
    return _points_figure(
        customers, labels, names, (x, y), max_points, "scattergl",
        f"scatter-2d:{x}|{y}|{log_x}|{log_y}", {"size": 5, "opacity": 0.7},
        xaxis={"title": {"text": x}, "type": "log" if log_x else "linear"},
        yaxis={"title": {"text": y}, "type": "log" if log_y else "linear"})


def bubble(
    customers: pd.DataFrame,
    labels: np.ndarray,
    names: dict[int, str],
    x: str,
    y: str,
    size: str,
    max_points: int = 2000,
) -> dict:
    """Customers in two features with a third as the bubble's area.

    Parameters
    ----------
    customers
        ``(n_customers, ...)`` with columns ``x``, ``y`` and ``size``.
    size
        Column whose value sets the bubble's area; negatives (net returns) are drawn as the
        smallest bubble, and the hover shows the true value.
    """
    return _points_figure(customers, labels, names, (x, y), max_points, "scatter",
                          f"bubble:{x}|{y}|{size}", {"opacity": 0.6}, size=size,
                          xaxis={"title": {"text": x}}, yaxis={"title": {"text": y}})


def k_selection(table: pd.DataFrame, recommended: int, elbow: int | None) -> dict:
    """The four metrics of a k sweep against k, the recommended k and the elbow marked.

    Parameters
    ----------
    table
        ``(n_k, 5)`` as :attr:`dashapp.segment.KSweep.table`: ``k``, ``inertia``,
        ``silhouette``, ``calinski_harabasz``, ``davies_bouldin`` (missing values allowed).
    recommended
        The k drawn as a dashed vertical line on every panel.
    elbow
        The knee of inertia, marked on the inertia panel; ``None`` when there is none.
    """
    if table is None or not len(table):
        return empty_figure("No k sweep to show.")
    panels = [
        ("inertia", "Inertia ↓ (look for the elbow)", ",.1f"),
        ("silhouette", "Silhouette ↑ (higher is better)", ".3f"),
        ("calinski_harabasz", "Calinski-Harabasz ↑ (higher is better)", ",.1f"),
        ("davies_bouldin", "Davies-Bouldin ↓ (lower is better)", ".3f"),
    ]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[p[1] for p in panels],
                        horizontal_spacing=0.1, vertical_spacing=0.16)
    ks = table["k"].to_numpy(dtype="int64")
    for i, (column, title, fmt) in enumerate(panels):
        row, col = divmod(i, 2)
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64")
        fig.add_trace(go.Scatter(
            x=ks, y=values, mode="lines+markers", name=column, showlegend=False,
            line={"color": "#4c72b0"}, marker={"size": 7},
            hovertemplate=f"k = %{{x}}<br>{column} = %{{y:{fmt}}}<extra></extra>",
        ), row=row + 1, col=col + 1)
        at = values[ks == recommended]
        if len(at) and np.isfinite(at[0]):
            fig.add_trace(go.Scatter(
                x=np.array([recommended]), y=at, mode="markers", showlegend=False,
                name="recommended", marker={"size": 13, "color": "#dd8452", "symbol": "star"},
                hovertemplate=(f"recommended k = %{{x}}<br>{column} = %{{y:{fmt}}}"
                               "<extra></extra>"),
            ), row=row + 1, col=col + 1)
        fig.add_vline(x=recommended, line={"dash": "dash", "color": "#dd8452", "width": 1.5},
                      row=row + 1, col=col + 1)
    fig.add_annotation(text=f"recommended k = {recommended}", x=recommended, xref="x",
                       y=1, yref="y domain", yanchor="top", xanchor="left", xshift=4,
                       showarrow=False, font={"color": "#dd8452", "size": 11})
    if elbow is not None:
        inertia = pd.to_numeric(table["inertia"], errors="coerce").to_numpy(dtype="float64")
        at = inertia[ks == elbow]
        if len(at) and np.isfinite(at[0]):
            fig.add_annotation(text=f"elbow k = {elbow}", x=elbow, y=at[0], xref="x", yref="y",
                               showarrow=True, arrowhead=2, ax=30, ay=-30,
                               font={"size": 11})
    fig.update_xaxes(dtick=1, title_text="k")
    return _json(_style(fig, "k-selection"))


#: k charts kept as plotly JSON, most recent last (one sweep serves every k and algorithm).
_K_CHARTS: OrderedDict[tuple, dict] = OrderedDict()
_K_CHARTS_MAX = 16
_K_CHARTS_LOCK = threading.Lock()


def k_selection_json(table: pd.DataFrame, recommended: int, elbow: int | None) -> dict:
    """:func:`k_selection`, memoized by the sweep's values: a change of k or of algorithm
    keeps the sweep, and building the chart costs about 60 ms of the views' time."""
    if table is None or not len(table):
        return k_selection(table, recommended, elbow)
    values = pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes()
    key = (hashlib.sha1(values).hexdigest(), tuple(map(str, table.columns)),
           int(recommended), elbow)
    with _K_CHARTS_LOCK:
        found = _K_CHARTS.get(key)
        if found is not None:
            _K_CHARTS.move_to_end(key)
            return found
    found = k_selection(table, recommended, elbow)
    with _K_CHARTS_LOCK:
        _K_CHARTS[key] = found
        while len(_K_CHARTS) > _K_CHARTS_MAX:
            _K_CHARTS.popitem(last=False)
    return found


@functools.lru_cache(maxsize=4)
def _bars_grid(titles: tuple[str, ...]) -> dict:
    """The layout ``make_subplots`` gives side-by-side panels with a shared y axis (axes'
    domains, titles as annotations), made once per set of titles."""
    layout = make_subplots(rows=1, cols=len(titles), shared_yaxes=True,
                           subplot_titles=list(titles),
                           horizontal_spacing=0.04).to_plotly_json()["layout"]
    layout.pop("template", None)
    return layout


def segment_bars(personas: Sequence[Persona]) -> dict:
    """Each persona's share of customers and, when known, of revenue, as horizontal bars.

    Parameters
    ----------
    personas
        One per segment (noise included when present), as :func:`build_personas` returns.
        When any ``revenue_share`` is ``None`` (customer tables) only customer shares show.
    """
    if not personas:
        return empty_figure("No segments to show.")
    personas = sorted(personas, key=lambda p: (p.segment == NOISE, p.segment))
    has_revenue = all(p.revenue_share is not None for p in personas)
    titles = ("Share of customers", "Share of revenue") if has_revenue else \
        ("Share of customers",)
    colors = segment_colors([p.segment for p in personas])
    names = {p.segment: p.name for p in personas}
    categories = [segment_label(p.segment, names) for p in personas]
    bars = []
    for col, what in enumerate(["customers", "revenue"][:len(titles)], start=1):
        axis = "" if col == 1 else str(col)
        for p in personas:
            share = p.customer_share if what == "customers" else p.revenue_share
            bars.append({
                "type": "bar",
                "x": _typed(np.array([share], dtype="float64")),
                "y": [segment_label(p.segment, names)],
                "orientation": "h",
                "marker": {"color": colors[p.segment]},
                "customdata": _typed(np.array([[p.segment, p.size]], dtype="int64")),
                "texttemplate": "%{x:.1%}",
                "textposition": "outside",
                "cliponaxis": False,
                "hovertemplate": (f"%{{y}}<br>%{{x:.1%}} of {what}<br>"
                                  "%{customdata[1]:,} customers<extra></extra>"),
                "showlegend": False,
                "uid": f"bars-{what}-{p.segment}",
                **_segment_trace_keys(p.segment, names),
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
            })
    top = max([p.customer_share for p in personas]
              + ([p.revenue_share for p in personas] if has_revenue else []))
    layout = copy.deepcopy(_bars_grid(titles))
    for name in [k for k in layout if k.startswith("xaxis")]:
        # Room on the right for the percentage printed outside the longest bar.
        layout[name].update(tickformat=".0%",
                            range=[min(0.0, top * -0.05), max(top, 0.01) * 1.2])
    for name in [k for k in layout if k.startswith("yaxis")]:
        layout[name].update(categoryorder="array", categoryarray=categories,
                            autorange="reversed")
    return {"data": bars, "layout": {**layout, **_layout("segment-bars"),
                                     "barmode": "relative"}}


def rfm_cluster_heatmap(
    rfm_segment: pd.Series,
    labels: np.ndarray,
    names: dict[int, str],
) -> dict:
    """Customers of each named RFM segment in each cluster; colour = share of the cluster.

    Columns are normalized (each cluster's column sums to 100%) because the question a
    marketer asks of a persona is "what are its customers, in RFM terms?".

    Parameters
    ----------
    rfm_segment
        ``(n_customers,)`` one of the 11 names of ``RFM_SEGMENT_ORDER`` per customer.
    labels
        ``(n_customers,)`` segment numbers, same rows.

    Returns
    -------
    dict
        One heatmap ``(11, n_clusters)``: ``z`` the shares, ``customdata`` the counts.
    """
    labels = np.asarray(labels)
    if len(labels) != len(rfm_segment):
        raise ValueError(f"{len(labels):,} segment labels for {len(rfm_segment):,} RFM "
                         "segments: they must be in the same rows.")
    if not len(labels):
        return empty_figure("No customers to show.")
    # pd.crosstab reindexed to the 11 names and the clusters, counted from codes instead
    # (names outside the 11 are left out, as the reindex left them): at 500,000 customers
    # 1.2 s became about 60 ms.
    shifted = labels.astype("int64") - NOISE  # segment numbers from -1: 0, 1, ...
    present = np.flatnonzero(np.bincount(shifted)) + NOISE
    clusters = sorted((int(s) for s in present), key=lambda s: (s == NOISE, s))
    column_of = np.zeros(int(shifted.max()) + 1, dtype="int64")
    column_of[np.asarray(clusters) - NOISE] = np.arange(len(clusters))
    codes, uniques = pd.factorize(rfm_segment)  # missing: -1
    position = pd.Index(list(RFM_SEGMENT_ORDER)).get_indexer(uniques)
    rows = np.append(position, -1)[codes]
    known = rows >= 0
    values = np.bincount(rows[known] * len(clusters) + column_of[shifted[known]],
                         minlength=len(RFM_SEGMENT_ORDER) * len(clusters)).reshape(
        len(RFM_SEGMENT_ORDER), len(clusters)).astype("int64")
    totals = values.sum(axis=0, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros(values.shape), where=totals > 0)
    heat = {
        "type": "heatmap", "z": _typed(shares),
        "x": [segment_label(c, names) for c in clusters], "y": list(RFM_SEGMENT_ORDER),
        "customdata": _typed(values), "text": [[f"{v:,}" for v in row] for row in values],
        "texttemplate": "%{text}", "zmin": 0, "zmax": 1, "colorscale": _blues(),
        "colorbar": {"title": {"text": "share of<br>cluster"}, "tickformat": ".0%"},
        "xgap": 1, "ygap": 1,
        "hovertemplate": ("RFM segment: %{y}<br>Cluster: %{x}<br>%{text} customers<br>"
                          "%{z:.1%} of the cluster<extra></extra>"),
    }
    # The long title and the cluster names on the top axis need the extra room.
    return {"data": [heat], "layout": _layout(
        "rfm-cluster-heatmap", yaxis={"autorange": "reversed"}, xaxis={"side": "top"},
        title={"text": "RFM segments in each cluster (colour = share of the cluster's "
                       "customers, text = customers)", "font": {"size": 13}},
        margin={**MARGIN, "t": 110})}


@functools.lru_cache(maxsize=1)
def _blues() -> list:
    """plotly.py's "Blues" as the explicit scale it sends (plotly.js has its own Blues)."""
    return [[float(at), color] for at, color in pc.get_colorscale("Blues")]


def radar(personas: Sequence[Persona]) -> dict:
    """Each persona's profile as a closed polygon, 0 to 1 per feature.

    Parameters
    ----------
    personas
        As :func:`build_personas` returns; ``profile`` is the min-max normalized centroid
        with recency inverted (so outward is always better), ``centroid`` the raw means shown
        on hover. Noise has no profile and is left out.
    """
    drawn = [p for p in personas if p.profile]
    if not drawn:
        return empty_figure("No segment profiles to show.")
    colors = segment_colors([p.segment for p in drawn])
    names = {p.segment: p.name for p in drawn}
    traces = []
    for p in sorted(drawn, key=lambda p: p.segment):
        features = list(p.profile)
        closed = features + features[:1]
        raw = np.array([p.centroid.get(f, np.nan) for f in closed], dtype="float64")
        traces.append({
            "type": "scatterpolar",
            "r": _typed(np.array([p.profile[f] for f in closed], dtype="float64")),
            "theta": [str(f) for f in closed],
            "customdata": _typed(raw),
            "fill": "toself",
            "fillcolor": _with_alpha(colors[p.segment], 0.15),
            "line": {"color": colors[p.segment], "width": 2},
            "marker": {"color": colors[p.segment], "size": 5},
            "hovertemplate": "%{theta}: %{r:.2f} (average %{customdata:,.2f})"
                             f"<extra>{segment_label(p.segment, names)}</extra>",
            "uid": f"radar-{p.segment}",
            **_segment_trace_keys(p.segment, names),
        })
    return {"data": traces, "layout": _layout(
        "radar", len(drawn),
        polar={"radialaxis": {"range": [0, 1], "tickvals": [0, 0.5, 1]}},
        title={"text": "Segment profiles (0 = lowest segment, 1 = highest; recency "
                       "inverted: 1 = most recent)", "font": {"size": 13}})}


def _bin_edges(values: np.ndarray, bins: int) -> tuple[np.ndarray, bool]:
    """Equal-width edges, or one bin per value for whole numbers with a small range."""
    low, high = float(values.min()), float(values.max())
    if high - low < bins and np.all(values == np.round(values)):
        # Orders or scores binned at 2.6-3.9 would read as nonsense; 3 is a bar of its own.
        return np.arange(low - 0.5, high + 1.5), True
    return np.histogram_bin_edges(values, bins=bins), False


def histogram(values: pd.Series, title: str, log_y: bool = False, bins: int = 40) -> dict:
    """The distribution of one feature, binned here so the figure's size is fixed.

    Parameters
    ----------
    values
        ``(n_customers,)`` numbers; missing and infinite values are left out.
    title
        Shown above the chart; the axis takes ``values.name``.
    bins
        Number of equal-width bins; whole numbers spanning fewer values get one bar each.

    Returns
    -------
    dict
        One bar trace: ``x`` the bins' centres, ``width`` their widths, ``y`` the counts
        (summing to the finite values' count), ``customdata`` the ``(lower, upper)`` edges.
    """
    data = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    data = data[np.isfinite(data)]
    if not len(data):
        return empty_figure(f"No values of {values.name or 'this feature'} to show.")
    edges, whole = _bin_edges(data, bins)
    counts, edges = np.histogram(data, bins=edges)
    name = str(values.name) if values.name is not None else "value"
    where = (f"{name} = %{{x:,.0f}}" if whole
             else f"{name} %{{customdata[0]:,.2f}} to %{{customdata[1]:,.2f}}")
    fig = go.Figure(go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
        customdata=np.column_stack([edges[:-1], edges[1:]]),
        marker={"color": "#4c72b0", "line": {"color": "white", "width": 0.5}},
        hovertemplate=where + "<br>%{y:,} customers<extra></extra>",
        name=name,
    ))
    fig.update_xaxes(title_text=name)
    fig.update_yaxes(title_text="customers", type="log" if log_y else "linear")
    fig.update_layout(title={"text": title, "font": {"size": 14}}, bargap=0)
    return _json(_style(fig, f"histogram:{name}|{log_y}"))


def correlation_heatmap(frame: pd.DataFrame, columns: Sequence[str]) -> dict:
    """Pearson correlations between ``columns``, annotated, on a diverging scale.

    Parameters
    ----------
    frame
        ``(n_customers, ...)`` with the numeric ``columns``.

    Returns
    -------
    dict
        One heatmap ``(len(columns), len(columns))`` equal to ``frame[columns].corr()``
        (a constant column gives blank cells).
    """
    columns = list(columns)
    if len(columns) < 2:
        return empty_figure("Choose at least two numeric columns to correlate.")
    matrix = frame.loc[:, columns].astype("float64").corr(method="pearson")
    fig = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=columns, y=columns, zmin=-1, zmax=1, zmid=0,
        colorscale="RdBu_r", texttemplate="%{z:.2f}", xgap=1, ygap=1,
        colorbar={"title": {"text": "Pearson r"}},
        hovertemplate="%{y} and %{x}<br>r = %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _json(_style(fig, f"correlation:{'|'.join(columns)}"))


def rf_heatmap(
    r_score: pd.Series,
    f_score: pd.Series,
    monetary: pd.Series,
    value: Literal["customers", "revenue"] = "customers",
) -> dict:
    """The 5 x 5 grid of recency score (x) by frequency score (y).

    Parameters
    ----------
    r_score, f_score
        ``(n_customers,)`` scores 1-5 (5 = best).
    monetary
        ``(n_customers,)`` each customer's net spend, summed per cell.
    value
        What colours the cells: the number of ``"customers"`` or their ``"revenue"``; the
        text shows both.

    Returns
    -------
    dict
        One heatmap: ``z[f - 1][r - 1]`` the count or revenue of the customers scored
        ``(r, f)``.
    """
    if value not in ("customers", "revenue"):
        raise ValueError(f"value must be 'customers' or 'revenue', not {value!r}.")
    r = pd.to_numeric(r_score, errors="coerce").to_numpy(dtype="float64")
    f = pd.to_numeric(f_score, errors="coerce").to_numpy(dtype="float64")
    spend = pd.to_numeric(monetary, errors="coerce").to_numpy(dtype="float64")
    keep = np.isin(r, np.arange(1, 6)) & np.isin(f, np.arange(1, 6))
    if not keep.any():
        return empty_figure("No RFM scores to show.")
    cell = (f[keep].astype("int64") - 1) * 5 + (r[keep].astype("int64") - 1)
    counts = np.bincount(cell, minlength=25).reshape(5, 5)
    revenue = np.bincount(cell, weights=np.nan_to_num(spend[keep]), minlength=25).reshape(5, 5)
    text = np.array([[f"{n:,} customer{'' if n == 1 else 's'}<br>{v:,.0f}"
                      for n, v in zip(cr, vr)]
                     for cr, vr in zip(counts, revenue)])
    scores = np.arange(1, 6)
    fig = go.Figure(go.Heatmap(
        z=counts if value == "customers" else revenue, x=scores, y=scores,
        text=text, texttemplate="%{text}", colorscale="Blues", xgap=1, ygap=1,
        colorbar={"title": {"text": value}},
        hovertemplate="R %{x} · F %{y}<br>%{text}<extra></extra>",
    ))
    fig.update_xaxes(title_text="Recency score (5 = most recent)", dtick=1)
    fig.update_yaxes(title_text="Frequency score (5 = most orders)", dtick=1)
    fig.update_layout(title={"text": f"{value.capitalize()} by recency and frequency score",
                             "font": {"size": 14}})
    return _json(_style(fig, f"rf-heatmap:{value}"))


__all__ = [
    "PALETTE", "bubble", "correlation_heatmap", "empty_figure", "histogram", "k_selection",
    "pca_components", "radar", "rf_heatmap", "rfm_cluster_heatmap", "scatter_2d",
    "scatter_3d", "segment_bars", "segment_colors", "segment_label", "stratified_sample",
]


#: Opacity of the traces of segments that are not chosen while some are.
DIMMED = 0.15


def highlight(fig: dict, selected: Sequence[int] | None) -> dict:
    """Dim the traces of segments not in ``selected`` (none selected: every trace full), in
    place; returns ``fig``.

    The same rule runs in the browser (``assets/selection.js``) when the selection changes
    without a new figure.
    """
    chosen = {int(s) for s in selected or ()}
    for trace in fig.get("data", ()):
        meta = trace.get("meta")
        if not isinstance(meta, dict) or "segment" not in meta:
            continue
        trace["opacity"] = 1.0 if not chosen or int(meta["segment"]) in chosen else DIMMED
    return fig
