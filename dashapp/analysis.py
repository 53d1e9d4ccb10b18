"""From the dashboard's controls to a segmentation, its k sweep and stability (no Dash)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dashapp.errors import NoFeaturesError, SegmentationError
from dashapp.personas import Persona, build_personas
from dashapp.pipeline import Prepared, Result
from dashapp.segment import (
    ALGORITHMS,
    SCALINGS,
    KSweep,
    Segmentation,
    SegmentParams,
    Stability,
    segment,
    stability,
    sweep_k,
)

AUTO = "auto"
#: Refits for the stability score; each costs one fit, so big tables use fewer.
STABILITY_SEEDS = 5
#: Past this many customers the stability refits run on a random sample of this size.
STABILITY_MAX_ROWS = 50_000


@dataclass(frozen=True)
class Controls:
    """What the Segments controls say, as plain JSON-ready values.

    ``k`` is a number or ``"auto"`` (the k sweep's recommendation); ``features`` empty means
    the dataset's default features; ``pca`` switches on a projection to at most three
    components before fitting.
    """

    algorithm: str = "kmeans"
    k: int | str = AUTO
    features: tuple[str, ...] = ()
    scaling: str = "standard"
    pca: bool = False
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Controls:
        data = dict(data or {})
        k = data.get("k", AUTO)
        seed = data.get("seed", 0)
        return cls(
            algorithm=str(data.get("algorithm") or "kmeans"),
            k=AUTO if k in (None, "", AUTO) else int(k),
            features=tuple(data.get("features") or ()),
            scaling=str(data.get("scaling") or "standard"),
            pca=bool(data.get("pca")),
            seed=0 if seed in (None, "") else int(seed),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "k": self.k, "features": list(self.features),
                "scaling": self.scaling, "pca": self.pca, "seed": self.seed}


def segment_params(prepared: Prepared, controls: Controls) -> SegmentParams:
    """Check the controls against the dataset and turn them into :class:`SegmentParams`.

    Raises
    ------
    SegmentationError
        Unknown algorithm or scaling, a feature the dataset does not have, no features.
    """
    if controls.algorithm not in ALGORITHMS:
        raise SegmentationError(f"Unknown algorithm {controls.algorithm!r}: choose one of "
                                f"{', '.join(ALGORITHMS)}.")
    if controls.scaling not in SCALINGS:
        raise SegmentationError(f"Unknown scaling {controls.scaling!r}: choose one of "
                                f"{', '.join(SCALINGS)}.")
    features = controls.features or prepared.default_features
    unknown = [f for f in features if f not in prepared.numeric_features]
    if unknown:
        raise SegmentationError(
            f"This dataset has no numeric feature {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(prepared.numeric_features)}.")
    if not features:
        raise NoFeaturesError("No numeric features are chosen: tick at least one.")
    pca = None
    if controls.pca and len(features) >= 3:
        # A projection onto as many components as features only rotates the data.
        pca = min(3, len(features) - 1)
    k = 4 if controls.k == AUTO else int(controls.k)
    if k < 2 and controls.algorithm != "dbscan":
        raise SegmentationError("k must be at least 2.")
    return SegmentParams(features=tuple(features), algorithm=controls.algorithm, k=k,
                         scaling=controls.scaling, pca=pca, seed=controls.seed)


@dataclass(frozen=True)
class Analysis:
    """A segmentation with what the dashboard shows beside it.

    The prepared data is not part of it (it is cached once per dataset); :meth:`result`
    joins the two. Stability is computed apart (:func:`stability_of`): it costs several refits
    and the views need not wait for it.
    """

    controls: Controls
    segmentation: Segmentation
    personas: tuple[Persona, ...]
    sweep: KSweep | None
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def auto(self) -> bool:
        return self.controls.k == AUTO

    def result(self, prepared: Prepared) -> Result:
        return Result(prepared, self.segmentation, self.personas, self.sweep)


def sweep_params(params: SegmentParams) -> SegmentParams | None:
    """What the dashboard's k sweep depends on (not k, not the algorithm); ``None`` for
    DBSCAN, which has no k.

    The sweep is K-Means' for every k-based algorithm: one sweep per features and scaling,
    so a change of algorithm costs one fit (a Gaussian-mixture sweep of 2..10 took 100 s at
    50,000 customers). The batch path (:func:`dashapp.pipeline.run`) sweeps its own way.
    """
    return None if params.algorithm == "dbscan" else replace(params, k=2, algorithm="kmeans")


def sweep(prepared: Prepared, params: SegmentParams,
          fit: Callable[[SegmentParams], Segmentation] | None = None) -> KSweep:
    """The k sweep 2..10 of :func:`dashapp.segment.sweep_k` for these features and settings;
    ``fit`` fits one k (a memoized :func:`dashapp.segment.segment`)."""
    return sweep_k(prepared.customers, params, fit=fit)


def analyse(
    prepared: Prepared,
    controls: Controls,
    progress: Callable[[int, int, str], None] | None = None,
    ksweep: Callable[[SegmentParams], KSweep] | None = None,
    fit: Callable[[SegmentParams], Segmentation] | None = None,
) -> Analysis:
    """Sweep k (k-based algorithms), then fit the chosen or the recommended k.

    Parameters
    ----------
    prepared
        ``customers`` ``(n_customers, ...)`` with the numeric features.
    controls
        The dashboard's choices.
    progress
        Called as ``progress(step, steps, what)`` before each step.
    ksweep
        Returns the sweep for parameters (a memoized :func:`sweep`, so that changing k does
        not sweep again); by default :func:`sweep`.
    fit
        Fits one segmentation (a memoized :func:`dashapp.segment.segment`, so that a k the
        sweep fitted already is not fitted again); by default :func:`segment`.
    """
    report = progress or (lambda step, steps, what: None)
    params = segment_params(prepared, controls)
    notices: list[str] = []
    if controls.pca and params.pca is None:
        notices.append("PCA needs at least three features; fitted on the features as they are.")
    found = None
    base = sweep_params(params)
    if base is not None:
        report(0, 2, "Trying k = 2 to 10")
        found = (ksweep or (lambda p: sweep(prepared, p)))(base)
        if params.algorithm != "kmeans":
            what = "The k chart and the automatic k come" if controls.k == AUTO \
                else "The k chart comes"
            notices.append(f"{what} from K-Means' sweep; {params.algorithm} fits the k shown.")
        if controls.k == AUTO:
            params = replace(params, k=found.recommended)
    report(1, 2, f"Fitting {params.algorithm}")
    segmentation = fit(params) if fit is not None else segment(prepared.customers, params)
    personas = tuple(build_personas(prepared.customers, segmentation))
    report(2, 2, "Done")
    return Analysis(controls, segmentation, personas, found, tuple(notices))


def stability_of(prepared: Prepared, analysis: Analysis) -> tuple[Stability | None, str]:
    """Mean adjusted Rand index of refits with other seeds, and a note when it was sampled."""
    seg = analysis.segmentation
    if seg.k < 2:
        return None, ""
    customers, note = prepared.customers, ""
    if len(customers) > STABILITY_MAX_ROWS:
        customers = customers.sample(STABILITY_MAX_ROWS, random_state=seg.params.seed)
        note = f"Stability measured on a random sample of {STABILITY_MAX_ROWS:,} customers."
    params = replace(seg.params, k=seg.k) if seg.params.algorithm != "dbscan" else seg.params
    return stability(customers.reset_index(drop=True), params, n_seeds=STABILITY_SEEDS), note
