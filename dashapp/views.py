"""What the dashboard shows besides charts, as plain data: report cards, tables, grid setup."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashapp.analysis import Analysis
from dashapp.ingest import CUSTOMER_ROLES, TRANSACTION_ROLES, TRANSACTIONS
from dashapp.pipeline import Prepared, output_columns
from dashapp.segment import NOISE

ROLE_LABELS = {
    "customer_id": "Customer id",
    "order_id": "Order id",
    "order_date": "Order date",
    "amount": "Amount",
    "quantity": "Quantity",
    "unit_price": "Unit price",
    "email": "Email",
    "name": "Name",
    "country": "Country",
}
UNITS = {"recency": "days", "frequency": "orders", "tenure": "days"}


@dataclass(frozen=True)
class ReportCard:
    title: str
    value: str
    detail: str
    tone: str = "secondary"  # a Bootstrap colour: secondary, warning, info, success


def _count(n: int) -> str:
    return f"{n:,}"


def report_cards(prepared: Prepared) -> list[ReportCard]:
    """The cleaning report and what was detected, one card each, in the order they matter."""
    ing, report = prepared.ingested, prepared.report
    shape = "transaction log" if ing.shape == TRANSACTIONS else "customer table"
    cards = [
        ReportCard("Rows read", _count(report.rows_read),
                   f"{_count(report.rows_kept)} kept; {_count(report.customers)} customers",
                   "primary"),
        ReportCard("Detected", shape, f"{ing.file_format}, encoding {ing.encoding}"
                   + (f", delimiter {ing.delimiter!r}" if ing.delimiter else "")),
    ]
    if ing.shape == TRANSACTIONS:
        date = ing.date_format or "parsed per value"
        if ing.date_ambiguous:
            date += " (day/month ambiguous: " + ("day first" if ing.dayfirst else "month first") \
                + " used)"
        reference = prepared.reference_date
        cards.append(ReportCard(
            "Dates", date,
            f"reference date {reference.date().isoformat()}" if reference is not None else "",
            "warning" if ing.date_ambiguous else "secondary"))
    for rule in report.rules:
        tone = "warning" if rule.count and rule.action in {"dropped", "clipped"} else (
            "info" if rule.count else "success")
        cards.append(ReportCard(rule.title, _count(rule.count), f"{rule.action}: {rule.detail}",
                                tone))
    return cards


def dataset_line(prepared: Prepared, filename: str) -> str:
    shape = "transaction log" if prepared.shape == TRANSACTIONS else "customer table"
    return (f"{filename}: {shape}, {prepared.report.rows_read:,} rows, "
            f"{prepared.report.customers:,} customers.")


def mapping_fields(prepared: Prepared) -> list[dict]:
    """One entry per role a user may map: ``role``, ``label``, ``options`` and ``value``."""
    ing = prepared.ingested
    roles = TRANSACTION_ROLES if ing.shape == TRANSACTIONS else CUSTOMER_ROLES
    columns = [str(c) for c in ing.table.columns]
    if ing.id_synthesized:
        columns = [c for c in columns if c != ing.mapping.get("customer_id")]
    return [{"role": role, "label": ROLE_LABELS.get(role, role),
             "options": columns, "value": ing.mapping.get(role)} for role in roles]


def summary_stats(customers: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """count, mean, std, min, quartiles and max of each numeric feature (one row each)."""
    if not features:
        return pd.DataFrame()
    stats = customers.loc[:, list(features)].astype("float64").describe().T
    stats.index.name = "feature"
    return stats.reset_index()


def format_number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


#: The silhouette card while the silhouette is computed (after the figures).
PENDING = "…"


def silhouette_value(metrics) -> str:
    """The silhouette card's text: says when it was sampled, :data:`PENDING` when the
    silhouette is still to be computed."""
    if metrics.pending:
        return PENDING
    silhouette = format_number(metrics.silhouette)
    if metrics.silhouette_sample:
        silhouette += f" (sample of {metrics.silhouette_sample:,})"
    return silhouette


def metric_values(analysis: Analysis) -> dict[str, str]:
    """Each fit metric card's text (see :func:`silhouette_value`)."""
    m = analysis.segmentation.metrics
    return {
        "silhouette": silhouette_value(m),
        "calinski_harabasz": format_number(m.calinski_harabasz, 1),
        "davies_bouldin": format_number(m.davies_bouldin),
    }


def stability_value(stability) -> str:
    return "n/a" if stability is None else f"{stability.mean_ari:.3f}"


def headline(prepared: Prepared, analysis: Analysis, filename: str) -> str:
    seg = analysis.segmentation
    how = f"k = {seg.k}" + (" (auto)" if analysis.auto and seg.params.algorithm != "dbscan"
                            else "")
    noise = int((seg.labels == NOISE).sum())
    extra = f", {noise:,} unassigned (noise)" if noise else ""
    return (f"{filename}: {len(seg.labels):,} customers in {seg.k} segments{extra} "
            f"({seg.params.algorithm}, {how}, features: {', '.join(seg.features)}).")


def centroid_lines(centroid: dict[str, float], currency_features: set[str]) -> list[str]:
    """A persona's centroid in business units: days, orders, money."""
    lines = []
    for feature, value in centroid.items():
        if feature in currency_features:
            lines.append(f"{feature}: {value:,.0f}")
        elif feature in UNITS:
            lines.append(f"{feature}: {value:,.1f} {UNITS[feature]}")
        else:
            lines.append(f"{feature}: {value:,.1f}")
    return lines


def persona_cards(analysis: Analysis) -> list[dict]:
    """One card's content per persona, in segment order (noise last)."""
    money = {"monetary", "avg_order_value", "clv"}
    cards = []
    for p in sorted(analysis.personas, key=lambda p: (p.segment == NOISE, p.segment)):
        cards.append({
            "segment": p.segment,
            "name": p.name,
            "size": f"{p.size:,} customers ({p.customer_share:.1%})",
            "revenue": None if p.revenue_share is None else f"{p.revenue_share:.1%} of revenue",
            "centroid": centroid_lines(p.centroid, money),
            "strategy": p.strategy,
            "description": p.description,
        })
    return cards


def grid_frame(prepared: Prepared, analysis: Analysis) -> pd.DataFrame:
    """The customer table the grid shows: output columns, numbers rounded for reading."""
    result = analysis.result(prepared)
    frame = result.customers(output_columns(result))
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(2)
    return frame


def grid_columns(frame: pd.DataFrame) -> list[dict]:
    """AG Grid column definitions: numbers right-aligned with number filters, ids pinned."""
    defs = []
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and \
            not pd.api.types.is_bool_dtype(frame[column])
        spec = {"field": column, "headerName": column,
                "filter": "agNumberColumnFilter" if numeric else "agTextColumnFilter"}
        if numeric:
            spec["type"] = "numericColumn"
            spec["filterParams"] = {"inRangeInclusive": True, "maxNumConditions": 25}
        if column == "customer_id":
            spec["pinned"] = "left"
        defs.append(spec)
    return defs


def grid_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready records (missing values as null)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict(orient="records")


def range_bounds(frame: pd.DataFrame, features: tuple[str, ...]) -> list[dict]:
    """Slider bounds per feature: ``feature``, ``min``, ``max``, ``step`` (floor/ceil)."""
    out = []
    for feature in features:
        values = frame[feature].astype("float64")
        values = values[np.isfinite(values)]
        if values.empty:
            continue
        low, high = math.floor(values.min()), math.ceil(values.max())
        if low == high:
            continue
        span = high - low
        step = 1 if span >= 50 else span / 100
        out.append({"feature": feature, "min": low, "max": high, "step": step})
    return out


def rows_in_order(frame: pd.DataFrame, customer_ids: list) -> pd.DataFrame:
    """The rows of ``frame`` whose ``customer_id`` is listed, in the listed order."""
    wanted = pd.Series([str(c) for c in customer_ids], name="customer_id")
    indexed = frame.assign(customer_id=frame["customer_id"].astype(str))
    found = wanted.to_frame().merge(indexed, on="customer_id", how="inner")
    return found.loc[:, frame.columns]
