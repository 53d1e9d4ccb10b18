"""Tables for the views: plain rows of text built from results (no Dash)."""

from __future__ import annotations

from dashapp.pipeline import Result

_UNITS = {
    "recency": "{:,.0f} days",
    "frequency": "{:,.1f} orders",
    "monetary": "{:,.0f}",
    "tenure": "{:,.0f} days",
    "avg_order_value": "{:,.0f} per order",
}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def persona_rows(result: Result) -> list[dict[str, str]]:
    """One row per persona: segment, name, size, shares, centroid in business units, strategy."""
    rows = []
    for p in result.personas:
        centroid = "; ".join(
            f"{feature} {_UNITS.get(feature, '{:,.1f}').format(value)}"
            for feature, value in p.centroid.items()
        )
        rows.append({
            "segment": str(p.segment),
            "persona": p.name,
            "customers": f"{p.size:,}",
            "customer_share": _percent(p.customer_share),
            "revenue_share": _percent(p.revenue_share),
            "centroid": centroid,
            "strategy": p.strategy,
        })
    return rows


PERSONA_COLUMNS = {
    "segment": "Segment",
    "persona": "Persona",
    "customers": "Customers",
    "customer_share": "Share of customers",
    "revenue_share": "Share of revenue",
    "centroid": "Typical customer",
    "strategy": "Strategy",
}


def result_headline(result: Result) -> str:
    """One sentence on what was segmented and how well."""
    seg = result.segmentation
    silhouette = seg.metrics.silhouette
    quality = "n/a" if silhouette is None else f"{silhouette:.3f}"
    return (f"{len(seg.labels):,} customers in {seg.k} segments "
            f"({seg.params.algorithm}, features: {', '.join(seg.features)}); "
            f"silhouette {quality}.")
