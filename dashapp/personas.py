"""Personas: a name, a profile, shares and a marketing strategy for each segment."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from dashapp.segment import NOISE, Segmentation

HIGHER_IS_WORSE = ("recency",)

#: RFM archetypes: where a typical member sits among all customers, as percentiles of
#: (recency inverted so that 1 = most recent, frequency, monetary), with the strategy.
RFM_ARCHETYPES: dict[str, tuple[tuple[float, float, float], str]] = {
    "Champions": ((0.9, 0.9, 0.9),
                  "Reward them: loyalty tiers, early access and exclusive offers; ask for "
                  "reviews and referrals. No discounts needed."),
    "Loyal": ((0.65, 0.75, 0.7),
              "Upsell and bundles: recommend higher-value products, membership or "
              "subscription offers."),
    "Cannot Lose Them": ((0.15, 0.8, 0.85),
                         "Big spenders going quiet: personal outreach, a win-back offer on "
                         "what they bought most, a survey on what changed."),
    "At Risk": ((0.3, 0.6, 0.6),
                "Reactivate with personalised reminders and time-limited offers before "
                "they lapse."),
    "Potential Loyalist": ((0.75, 0.5, 0.5),
                           "Nurture: membership or loyalty programme invitations, "
                           "recommendations based on past orders."),
    "Promising": ((0.85, 0.15, 0.4),
                  "Onboarding and welcome offers: a second-purchase incentive, product "
                  "education, free shipping threshold."),
    "Need Attention": ((0.5, 0.45, 0.45),
                       "Limited-time offers and recommendations to lift frequency before "
                       "they slide."),
    "About To Sleep": ((0.4, 0.2, 0.2),
                       "Share popular products and modest discounts; reconnect before "
                       "they are lost."),
    "Hibernating": ((0.2, 0.3, 0.3),
                    "Low-cost win-back: relevant content and capped discounts; suppress "
                    "from expensive campaigns."),
    "Lost": ((0.05, 0.1, 0.1),
             "Win-back with capped spend, one or two attempts; otherwise suppress to save "
             "budget."),
}


@dataclass(frozen=True)
class Persona:
    """One segment read as a persona; ``centroid`` is in the features' original units."""

    segment: int
    name: str
    size: int
    customer_share: float
    revenue_share: float | None
    centroid: dict[str, float]
    profile: dict[str, float]
    strategy: str
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


def profiles(segmentation: Segmentation) -> pd.DataFrame:
    """Min-max normalized centroids, 0-1 per feature across segments (the radar chart).

    Recency is inverted so that higher is always better. A feature on which every segment
    has the same centroid gets 0.5. Noise is left out.
    """
    centroids = segmentation.centroids.loc[segmentation.centroids.index != NOISE]
    low, high = centroids.min(), centroids.max()
    span = (high - low).replace(0, np.nan)
    normalized = ((centroids - low) / span).fillna(0.5)
    for feature in HIGHER_IS_WORSE:
        if feature in normalized:
            normalized[feature] = 1 - normalized[feature]
    return normalized


def _percentiles(customers: pd.DataFrame, segmentation: Segmentation) -> pd.DataFrame:
    """Where each segment's median member stands among all customers, 0-1 per feature.

    Medians, not means, so that one whale does not make a whole segment look rich.
    """
    frame = customers.loc[:, list(segmentation.features)].reset_index(drop=True)
    medians = frame.groupby(segmentation.labels).median()
    medians = medians.loc[medians.index != NOISE]
    out = pd.DataFrame(index=medians.index)
    for feature in segmentation.features:
        ordered = np.sort(frame[feature].to_numpy(dtype="float64"))
        below = np.searchsorted(ordered, medians[feature].to_numpy(), side="left")
        upto = np.searchsorted(ordered, medians[feature].to_numpy(), side="right")
        out[feature] = (below + upto) / 2 / len(ordered)
    return out


def _rfm_names(pct: pd.DataFrame) -> dict[int, str]:
    """Assign archetype names by the least total distance, one archetype per segment."""
    dims = [f for f in ("recency", "frequency", "monetary") if f in pct]
    index = {"recency": 0, "frequency": 1, "monetary": 2}
    points = pct[dims].to_numpy().copy()
    if "recency" in dims:
        points[:, dims.index("recency")] = 1 - points[:, dims.index("recency")]
    names = list(RFM_ARCHETYPES)
    targets = np.array([[RFM_ARCHETYPES[n][0][index[d]] for d in dims] for n in names])
    cost = ((points[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    assigned = {int(pct.index[r]): names[c] for r, c in zip(rows, cols)}
    for extra, segment in enumerate(s for s in pct.index if int(s) not in assigned):
        nearest = names[int(np.argmin(cost[list(pct.index).index(segment)]))]
        assigned[int(segment)] = f"{nearest} {extra + 2}"
    return assigned


_LEVELS = {
    "age": ("Young", "Middle-aged", "Older"),
    "income": ("low-income", "mid-income", "high-income"),
    "spend": ("low spenders", "moderate spenders", "high spenders"),
}


def _attribute_word(feature: str, level: int) -> str:
    lowered = feature.lower()
    for key, words in _LEVELS.items():
        if key in lowered or (key == "spend" and "score" in lowered):
            return words[level]
    short = feature.split("(")[0].strip()
    return f"{('low', 'mid', 'high')[level]} {short}"


def _attribute_names(pct: pd.DataFrame) -> dict[int, str]:
    """Descriptive names from each segment's two most distinctive attributes.

    A feature is "low" below the 33rd percentile, "high" above the 67th; the two features
    furthest from the middle name the segment ("Young, high spenders"); a third is added
    when two segments would share a name.
    """
    names: dict[int, str] = {}
    for segment, row in pct.iterrows():
        ranked = (row - 0.5).abs().sort_values(ascending=False, kind="stable").index.tolist()
        words = []
        for feature in ranked:
            level = 0 if row[feature] < 1 / 3 else (2 if row[feature] > 2 / 3 else 1)
            words.append((feature, _attribute_word(feature, level)))
        names[int(segment)] = words
    taken: dict[str, int] = {}
    result = {}
    for segment, words in names.items():
        for count in range(2, len(words) + 1):
            chosen = sorted(words[:count], key=lambda w: _noun_last(w[0]))
            name = ", ".join(w for _, w in chosen)
            name = name[0].upper() + name[1:]
            if name not in taken:
                break
        if name in taken:
            name = f"{name} ({segment})"
        taken[name] = segment
        result[segment] = name
    return result


def _noun_last(feature: str) -> int:
    """Word order in a name: age first, spending last ("Young, high-income, high spenders")."""
    lowered = feature.lower()
    if "age" in lowered.split():
        return 0
    return 2 if ("spend" in lowered or "score" in lowered) else 1


def _attribute_strategy(pct: pd.Series) -> str:
    spend = next((f for f in pct.index if "spend" in f.lower() or "score" in f.lower()), None)
    income = next((f for f in pct.index if "income" in f.lower()), None)
    high_spend = spend is not None and pct[spend] > 2 / 3
    low_spend = spend is not None and pct[spend] < 1 / 3
    if income is not None:
        if high_spend and pct[income] > 2 / 3:
            return ("Loyalty and exclusivity: premium ranges, VIP events, early access; keep "
                    "them delighted rather than discounted.")
        if low_spend and pct[income] > 2 / 3:
            return ("Untapped potential: upsell premium products with quality-led messaging "
                    "and personal recommendations.")
        if high_spend and pct[income] < 1 / 3:
            return ("Value-conscious enthusiasts: loyalty points, bundles and payment plans; "
                    "avoid pushing beyond their budget.")
        if low_spend and pct[income] < 1 / 3:
            return "Budget shoppers: price-led offers and essentials; keep acquisition cost low."
    if high_spend:
        return "Loyalty and exclusivity: rewards, early access and referral incentives."
    if low_spend:
        return "Activation: welcome offers, bundles and reminders to lift spending."
    return ("Nurture with regular, relevant content and seasonal offers; test which "
            "incentives move them.")


def build_personas(
    customers: pd.DataFrame,
    segmentation: Segmentation,
    revenue: str | None = None,
) -> list[Persona]:
    """Name and describe every segment.

    Rule: when the features include recency, frequency or monetary, each segment is matched
    to the RFM archetype (Champions, Loyal, Cannot Lose Them, At Risk, Potential Loyalist,
    Promising, Need Attention, About To Sleep, Hibernating, Lost) nearest to where its
    median customer stands among all customers, one archetype per segment (least total
    distance). Otherwise names come from the dominant attributes ("Young, high spenders").
    Names are unique within a segmentation. DBSCAN noise becomes "Unclustered".

    Parameters
    ----------
    customers
        ``(n_customers, ...)`` in the row order of ``segmentation.labels``.
    revenue
        Column summed for the revenue share; default ``monetary`` when present, else none.
    """
    if revenue is None and "monetary" in customers:
        revenue = "monetary"
    pct = _percentiles(customers, segmentation)
    is_rfm = any(f in segmentation.features for f in ("recency", "frequency", "monetary"))
    names = _rfm_names(pct) if is_rfm else _attribute_names(pct)
    shape = profiles(segmentation)
    labels = segmentation.labels
    total = len(labels)
    revenue_values = (customers[revenue].to_numpy(dtype="float64") if revenue else None)
    total_revenue = float(revenue_values.sum()) if revenue_values is not None else 0.0
    personas = []
    for segment, size in segmentation.sizes.items():
        segment = int(segment)
        members = labels == segment
        share = None
        if revenue_values is not None and total_revenue:
            share = float(revenue_values[members].sum() / total_revenue)
        centroid = {f: float(v) for f, v in segmentation.centroids.loc[segment].items()}
        if segment == NOISE:
            name, strategy = "Unclustered", ("Customers DBSCAN could not place in any dense "
                                             "group: review them one by one.")
            profile = {}
        else:
            name = names[segment]
            base = name.rsplit(" ", 1)[0] if name not in RFM_ARCHETYPES and is_rfm else name
            strategy = (RFM_ARCHETYPES[base][1] if is_rfm and base in RFM_ARCHETYPES
                        else _attribute_strategy(pct.loc[segment]))
            profile = {f: float(v) for f, v in shape.loc[segment].items()}
        personas.append(Persona(
            segment=segment,
            name=name,
            size=int(size),
            customer_share=float(size) / total,
            revenue_share=share,
            centroid=centroid,
            profile=profile,
            strategy=strategy,
            description=_describe(centroid),
        ))
    return personas


def _describe(centroid: dict[str, float]) -> str:
    units = {"recency": "last order {:,.0f} day(s) ago", "frequency": "{:,.1f} orders",
             "monetary": "{:,.2f} spent", "tenure": "customer for {:,.0f} days",
             "avg_order_value": "{:,.2f} per order"}
    parts = []
    for feature, value in centroid.items():
        template = units.get(feature)
        parts.append(template.format(value) if template else f"{feature} {value:,.1f}")
    return "Typically " + ", ".join(parts) + "."
