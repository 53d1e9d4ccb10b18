"""Saved segmentations: a fitted model kept as data (JSON + ``.npz``), scoring, a per-user store.

A :class:`SavedModel` holds everything needed to score a new customer later — features,
the scaler's fitted parameters, PCA, the model's centroids or parameters, the ordered
segment numbers, RFM cut points and reference date, personas — as plain numbers. On disk it
is ``model.json`` plus ``arrays.npz`` read with ``allow_pickle=False``: nothing is ever
unpickled, so a saved file can at worst be refused, never run.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler
from sqlalchemy import select

from dashapp.db import Database, Dataset, SavedSegmentation, aware, new_id, utcnow
from dashapp.errors import PersonaError
from dashapp.features import RFM_FEATURES, RFMCuts, rfm_segment_of
from dashapp.ingest import TRANSACTIONS
from dashapp.personas import Persona
from dashapp.segment import ALGORITHMS, NOISE, SCALINGS, Segmentation

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
RFM_KIND = "rfm"
ATTRIBUTES_KIND = "attributes"
#: Features an RFM segmentation computes from a customer's transactions.
TRANSACTION_FEATURES = ("recency", "frequency", "monetary", "tenure", "avg_order_value")
#: Largest magnitude a feature value may have: past it squared distances overflow to inf and
#: the nearest segment becomes arbitrary. No real count, age or amount comes near it.
MAX_MAGNITUDE = 1e12
NAME_MAX = 200
_ID = re.compile(r"[0-9a-f]{32}")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
UNCLUSTERED = ("Unclustered", "Customers DBSCAN could not place in any dense group: review "
                             "them one by one.")


class SavedModelError(PersonaError):
    """A saved segmentation's files are missing, broken or of another format."""


class SegmentationNotFoundError(PersonaError):
    """No saved segmentation of this user has that id (missing, or someone else's)."""


class ScoringInputError(PersonaError):
    """A customer to score is malformed; ``field`` names where (``customers[3].frequency``)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# ---- the model as data ---------------------------------------------------------------------


@dataclass(frozen=True)
class SavedModel:
    """A fitted segmentation kept as numbers; scores new customers without scikit-learn's
    fitted objects.

    ``doc`` is what ``model.json`` holds (JSON-ready); ``arrays`` the named float64 arrays of
    ``arrays.npz``. The accessors below read ``doc``.
    """

    doc: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)

    # -- facts --

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def is_rfm(self) -> bool:
        return self.kind == RFM_KIND

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.doc["features"])

    @property
    def algorithm(self) -> str:
        return self.doc["model"]["algorithm"]

    @property
    def scaling(self) -> str:
        return self.doc["scaling"]["method"]

    @property
    def segments(self) -> list[dict[str, Any]]:
        """One entry per segment (noise ``-1`` included when there was any): ``segment``,
        ``persona``, ``strategy``, ``description``, ``size``, ``customer_share``,
        ``revenue_share``, ``centroid``, ``profile``."""
        return self.doc["segments"]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.doc["metrics"]

    @property
    def cuts(self) -> RFMCuts | None:
        rfm = self.doc.get("rfm")
        return RFMCuts.from_dict(rfm["cuts"]) if rfm else None

    @property
    def reference_date(self) -> date | None:
        rfm = self.doc.get("rfm")
        return date.fromisoformat(rfm["reference_date"]) if rfm else None

    @property
    def score_fields(self) -> tuple[str, ...]:
        """The fields a customer given as feature values must have."""
        if self.is_rfm:
            return tuple(dict.fromkeys((*self.features, *RFM_FEATURES)))
        return self.features

    def bounds(self, feature: str) -> tuple[float, float]:
        """The range a value of ``feature`` may take: never below 0 when no training customer
        was below 0 (counts, days, ages, money), and within :data:`MAX_MAGNITUDE`."""
        seen = self.doc["feature_ranges"].get(feature)
        low = 0.0 if seen is not None and seen["min"] >= 0 else -MAX_MAGNITUDE
        return low, MAX_MAGNITUDE

    def persona_of(self, segment: int) -> dict[str, Any]:
        for entry in self.segments:
            if entry["segment"] == segment:
                return entry
        name, strategy = UNCLUSTERED
        return {"segment": segment, "persona": name, "strategy": strategy}

    # -- scoring --

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Customers ``(m, n_features)`` into the space the model was fitted in
        ``(m, n_transformed)``, with the scaler's and PCA's own arithmetic."""
        x = np.array(values, dtype="float64", copy=True)
        a = self.arrays
        method = self.scaling
        if method == "log":
            x = np.sign(x) * np.log1p(np.abs(x))
        if method in ("standard", "log"):
            x -= a["scale_mean"]
            x /= a["scale_scale"]
        elif method == "robust":
            x -= a["scale_center"]
            x /= a["scale_scale"]
        elif method == "minmax":
            x *= a["scale_scale"]
            x += a["scale_min"]
        if self.doc["pca"] is not None:
            components = a["pca_components"]
            projected = x @ components.T
            projected -= a["pca_mean"].reshape(1, -1) @ components.T
            if self.doc["pca"]["whiten"]:
                projected /= np.sqrt(a["pca_explained_variance"])
            x = projected
        return x

    def predict_matrix(self, values: np.ndarray) -> np.ndarray:
        """Ordered segment numbers ``(m,)`` of customers ``(m, n_features)``; ``-1`` is noise."""
        points = self.transform(values)
        a = self.arrays
        label_map = {int(k): int(v) for k, v in self.doc["label_map"].items()}
        algorithm = self.algorithm
        if algorithm in ("kmeans", "minibatch", "gmm"):
            if algorithm == "gmm":
                raw = np.argmax(_gmm_weighted_log_prob(points, a, self.doc["model"]), axis=1)
            else:
                centers = a["model_centers"]
                distances = (centers ** 2).sum(axis=1)[None, :] - 2.0 * (points @ centers.T)
                raw = np.argmin(distances, axis=1)
            return np.array([label_map.get(int(r), NOISE) for r in raw], dtype="int64")
        centers = a["segment_centers"]
        distances = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
        ordered = np.argmin(distances, axis=1).astype("int64")
        if algorithm == "dbscan":
            nearest_core = NearestNeighbors(n_neighbors=1).fit(a["dbscan_components"])
            gap, _ = nearest_core.kneighbors(points)
            ordered[gap[:, 0] > self.doc["model"]["eps"]] = NOISE
        return ordered

    def predict_features(self, records: Sequence[Any], path: str = "customers") -> list[dict]:
        """Score customers given as feature values, in order.

        Parameters
        ----------
        records
            ``[{"customer_id"?: str | int, <feature>: number, ...}, ...]``; an RFM
            segmentation also needs ``recency``, ``frequency`` and ``monetary``.
        path
            How the list is named in error messages (``customers[3].frequency``).

        Returns
        -------
        list of dict
            Per customer: ``customer_id`` (when given), ``segment``, ``persona``,
            ``strategy``, the features, and for RFM segmentations ``r_score``, ``f_score``,
            ``m_score``, ``rfm_segment``.

        Raises
        ------
        ScoringInputError
            A missing field, or a value that is not a finite number within its bounds.
        """
        rows = [self._feature_row(record, f"{path}[{i}]") for i, record in enumerate(records)]
        return self._score_rows(rows)

    def predict_transactions(self, records: Sequence[Any], path: str = "customers") -> list[dict]:
        """Score customers given as their transactions (RFM segmentations only), in order.

        Each record is ``{"customer_id"?: ..., "transactions": [{"order_id", "order_date",
        "amount", "quantity"?}, ...]}``. As in cleaning and :func:`dashapp.features.rfm`:
        recency counts calendar days from the customer's last purchase date to the saved
        reference date (the time of day is ignored; an order after the reference date gives
        a negative recency); frequency counts distinct orders (distinct purchase days when
        the training data had no order ids); returns — a negative amount or quantity, or an
        order id starting with ``C`` — do not count as orders and subtract ``|amount|``
        from monetary, the net sum.
        """
        rows = []
        for i, record in enumerate(records):
            where = f"{path}[{i}]"
            record = _record(record, where)
            rows.append({**_customer_id(record, where),
                         **self._transaction_features(record, where)})
        return self._score_rows(rows)

    def predict(self, records: Sequence[Any], path: str = "customers") -> list[dict]:
        """Score a mix: a record with ``transactions`` by them, any other by feature values."""
        rows = []
        for i, record in enumerate(records):
            where = f"{path}[{i}]"
            record = _record(record, where)
            if "transactions" in record:
                rows.append({**_customer_id(record, where),
                             **self._transaction_features(record, where)})
            else:
                rows.append(self._feature_row(record, where))
        return self._score_rows(rows)

    def _feature_row(self, record: Any, where: str) -> dict[str, Any]:
        record = _record(record, where)
        row = _customer_id(record, where)
        for feature in self.score_fields:
            low, high = self.bounds(feature)
            row[feature] = _number(record, feature, where, low, high)
        return row

    def _transaction_features(self, record: Mapping[str, Any], where: str) -> dict[str, float]:
        if not self.is_rfm:
            raise ScoringInputError(
                f"{where}.transactions: this segmentation was fitted on a customer table; "
                f"send the customer's {', '.join(self.features)} instead.",
                field=f"{where}.transactions")
        lines = record.get("transactions")
        if not isinstance(lines, list) or not lines:
            raise ScoringInputError(
                f"{where}.transactions must be a list of at least one transaction "
                '({"order_id", "order_date", "amount"}).', field=f"{where}.transactions")
        with_order_id = self.doc["rfm"]["order_ids"]
        purchases: list[tuple[date, str]] = []
        returns: list[date] = []
        amounts: list[float] = []
        for j, line in enumerate(lines):
            at = f"{where}.transactions[{j}]"
            if not isinstance(line, Mapping):
                raise ScoringInputError(f"{at} must be an object with order_id, order_date and "
                                        "amount.", field=at)
            day = _order_day(line, at)
            amount = _number(line, "amount", at, -MAX_MAGNITUDE, MAX_MAGNITUDE)
            quantity = (_number(line, "quantity", at, -MAX_MAGNITUDE, MAX_MAGNITUDE)
                        if line.get("quantity") is not None else None)
            order = _order_id(line, at) if with_order_id else None
            is_return = amount < 0 or (quantity is not None and quantity < 0) or (
                order is not None and order.upper().startswith("C"))
            if is_return:
                amount = -abs(amount)
                returns.append(day)
            else:
                purchases.append((day, order if order is not None else day.isoformat()))
            amounts.append(amount)
        days = [d for d, _ in purchases] or returns
        reference = self.reference_date
        frequency = len({key for _, key in purchases})
        monetary = float(np.round(math.fsum(amounts), 2))
        average = float(np.round(monetary / frequency, 2)) if frequency else 0.0
        return {
            "recency": float((reference - max(days)).days),
            "frequency": float(frequency),
            "monetary": monetary,
            "tenure": float((reference - min(days)).days),
            "avg_order_value": average,
        }

    def _score_rows(self, rows: list[dict[str, Any]]) -> list[dict]:
        if not rows:
            return []
        values = np.array([[row[f] for f in self.features] for row in rows], dtype="float64")
        labels = self.predict_matrix(values)
        cuts = self.cuts
        results = []
        for row, label in zip(rows, labels):
            persona = self.persona_of(int(label))
            result = {k: v for k, v in row.items() if k == "customer_id"}
            result.update({"segment": int(label), "persona": persona["persona"],
                           "strategy": persona["strategy"]})
            result.update({k: _plain(v) for k, v in row.items() if k != "customer_id"})
            if cuts is not None:
                r, f, m = cuts.score(row["recency"], row["frequency"], row["monetary"])
                result.update({"r_score": r, "f_score": f, "m_score": m,
                               "rfm_segment": rfm_segment_of(f"{r}{f}{m}")})
            results.append(result)
        return results

    # -- (de)serialization --

    def save(self, folder: Path) -> None:
        """Write ``model.json`` and ``arrays.npz`` into ``folder`` atomically: both land in a
        temporary sibling folder that then replaces ``folder`` in one rename."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            text = json.dumps(self.doc, allow_nan=False, indent=1, sort_keys=True)
            (staging / MODEL_FILE).write_text(text, encoding="utf-8")
            with open(staging / ARRAYS_FILE, "wb") as handle:
                np.savez(handle, **self.arrays)
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(folder, old)
                os.replace(staging, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def load(folder: Path) -> SavedModel:
    """Read a saved segmentation, checking its format version, fields and array shapes.

    Raises
    ------
    SavedModelError
        Missing or unreadable files, another format version, a field or array that does not
        fit (a broken or foreign file).
    """
    folder = Path(folder)
    try:
        doc = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"),
                         parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise SavedModelError("This saved segmentation has no model file on the server; "
                              "delete it and save the segmentation again.") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise SavedModelError(f"This saved segmentation's model file is not valid JSON "
                              f"({err}); delete it and save again.") from None
    if not isinstance(doc, dict):
        raise SavedModelError("This saved segmentation's model file is not a Persona Engine "
                              "model.")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise SavedModelError(
            f"This saved segmentation has format version {version!r}; this Persona Engine "
            f"reads version {FORMAT_VERSION}. Save the segmentation again.")
    try:
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: np.asarray(npz[name]) for name in npz.files}
    except FileNotFoundError:
        raise SavedModelError("This saved segmentation has no arrays file on the server; "
                              "delete it and save the segmentation again.") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise SavedModelError(f"This saved segmentation's arrays file cannot be read "
                              f"({err}); delete it and save again.") from None
    model = SavedModel(doc, arrays)
    _validate(model)
    return model


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _validate(model: SavedModel) -> None:
    """Check every field and shape the scoring code relies on."""
    doc, arrays = model.doc, model.arrays

    def fail(what: str) -> SavedModelError:
        return SavedModelError(f"This saved segmentation is broken ({what}); delete it and "
                               "save the segmentation again.")

    try:
        kind, features = doc["kind"], doc["features"]
        scaling, pca, spec = doc["scaling"]["method"], doc["pca"], doc["model"]
        algorithm, label_map, segments = spec["algorithm"], doc["label_map"], doc["segments"]
        ranges = doc["feature_ranges"]
    except (KeyError, TypeError) as err:
        raise fail(f"field {err} missing") from None
    for key in ("segments", "metrics", "dataset_hash", "created_at", "updated_at"):
        if key not in doc:
            raise fail(f"field {key!r} missing")
    if kind not in (RFM_KIND, ATTRIBUTES_KIND):
        raise fail(f"unknown kind {kind!r}")
    if (not isinstance(features, list) or not features
            or not all(isinstance(f, str) for f in features)):
        raise fail("features")
    if scaling not in SCALINGS:
        raise fail(f"unknown scaling {scaling!r}")
    if algorithm not in ALGORITHMS:
        raise fail(f"unknown algorithm {algorithm!r}")
    if not isinstance(ranges, dict) or not all(
            isinstance(ranges.get(f), dict) and _is_number(ranges[f].get("min"))
            for f in features):
        raise fail("feature ranges")
    for name, array in arrays.items():
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise fail(f"array {name} is not finite floating point")
    n = len(features)

    def need(name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        array = arrays.get(name)
        if array is None:
            raise fail(f"array {name} missing")
        if array.ndim != len(shape) or any(s is not None and s != d
                                           for s, d in zip(shape, array.shape)):
            raise fail(f"array {name} has shape {array.shape}, expected {shape}")
        return array

    if scaling in ("standard", "log"):
        need("scale_mean", (n,))
        _positive(need("scale_scale", (n,)), fail)
    elif scaling == "robust":
        need("scale_center", (n,))
        _positive(need("scale_scale", (n,)), fail)
    elif scaling == "minmax":
        need("scale_min", (n,))
        need("scale_scale", (n,))
    width = n
    if pca is not None:
        if not isinstance(pca, dict) or not isinstance(pca.get("whiten"), bool):
            raise fail("pca")
        width = need("pca_components", (None, n)).shape[0]
        need("pca_mean", (n,))
        if pca["whiten"]:
            _positive(need("pca_explained_variance", (width,)), fail)
    if not isinstance(label_map, dict):
        raise fail("label map")
    try:
        mapping = {int(k): int(v) for k, v in label_map.items()}
    except (TypeError, ValueError):
        raise fail("label map") from None
    ordered = sorted(v for v in mapping.values() if v != NOISE)
    k = len(ordered)
    if k < 1 or ordered != list(range(k)):
        raise fail("label map")
    if algorithm in ("kmeans", "minibatch"):
        if need("model_centers", (None, width)).shape[0] <= max(mapping):
            raise fail("label map")
    elif algorithm == "gmm":
        covariance = spec.get("covariance_type")
        if covariance not in _COVARIANCE_TYPES:
            raise fail(f"covariance type {covariance!r}")
        c = need("gmm_weights", (None,)).shape[0]
        if c <= max(mapping):
            raise fail("label map")
        need("gmm_means", (c, width))
        chol = {"full": (c, width, width), "tied": (width, width), "diag": (c, width),
                "spherical": (c,)}[covariance]
        need("gmm_precisions_cholesky", chol)
        _positive(need("gmm_weights", (c,)), fail)
    else:
        need("segment_centers", (k, width))
        if algorithm == "dbscan":
            need("dbscan_components", (None, width))
            if arrays["dbscan_components"].shape[0] < 1 or not _is_number(spec.get("eps")):
                raise fail("DBSCAN core customers or eps")
    if not isinstance(segments, list) or not all(
            isinstance(s, dict) and isinstance(s.get("segment"), int)
            and isinstance(s.get("persona"), str) and isinstance(s.get("strategy"), str)
            for s in segments):
        raise fail("segments")
    if not set(range(k)) <= {s["segment"] for s in segments}:
        raise fail("segments")
    if kind == RFM_KIND:
        rfm = doc.get("rfm")
        try:
            cuts = RFMCuts.from_dict(rfm["cuts"])
            date.fromisoformat(rfm["reference_date"])
            if not isinstance(rfm["order_ids"], bool):
                raise TypeError("order_ids")
        except (KeyError, TypeError, ValueError):
            raise fail("RFM cut points or reference date") from None
        if any(len(getattr(cuts, f)) != 5 for f in RFM_FEATURES):
            raise fail("RFM cut points")


def _positive(array: np.ndarray, fail) -> None:
    if (array <= 0).any():
        raise fail("a scale that is not positive")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _gmm_weighted_log_prob(points: np.ndarray, a: Mapping[str, np.ndarray],
                           spec: Mapping[str, Any]) -> np.ndarray:
    """log P(x | component) + log weight ``(m, n_components)``, as scikit-learn's
    ``GaussianMixture`` computes it from its Cholesky factors of the precisions."""
    means, chol = a["gmm_means"], a["gmm_precisions_cholesky"]
    covariance = spec["covariance_type"]
    n_features = points.shape[1]
    if covariance == "full":
        log_det = np.log(chol.reshape(len(chol), -1)[:, :: n_features + 1]).sum(axis=1)
        log_prob = np.empty((len(points), len(means)))
        for k, (mu, factor) in enumerate(zip(means, chol)):
            y = points @ factor - mu @ factor
            log_prob[:, k] = np.square(y).sum(axis=1)
    elif covariance == "tied":
        log_det = np.log(np.diagonal(chol)).sum()
        log_prob = np.empty((len(points), len(means)))
        for k, mu in enumerate(means):
            y = points @ chol - mu @ chol
            log_prob[:, k] = np.square(y).sum(axis=1)
    elif covariance == "diag":
        log_det = np.log(chol).sum(axis=1)
        precisions = chol ** 2
        log_prob = ((means ** 2 * precisions).sum(axis=1) - 2.0 * (points @ (means * precisions).T)
                    + (points ** 2 @ precisions.T))
    else:
        log_det = n_features * np.log(chol)
        precisions = chol ** 2
        log_prob = ((means ** 2).sum(axis=1) * precisions - 2 * (points @ means.T * precisions)
                    + np.outer((points ** 2).sum(axis=1), precisions))
    return -0.5 * (n_features * math.log(2 * math.pi) + log_prob) + log_det + np.log(
        a["gmm_weights"])


# ---- input checks --------------------------------------------------------------------------


def _record(record: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise ScoringInputError(f"{where} must be an object of field names and values.",
                                field=where)
    return record


def _customer_id(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "customer_id" not in record or record["customer_id"] is None:
        return {}
    value = record["customer_id"]
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 200:
        raise ScoringInputError(f"{where}.customer_id must be a text or a whole number of at "
                                "most 200 characters.", field=f"{where}.customer_id")
    return {"customer_id": value}


def _number(record: Mapping[str, Any], name: str, where: str, low: float, high: float) -> float:
    at = f"{where}.{name}"
    if name not in record:
        raise ScoringInputError(f"{at} is missing.", field=at)
    value = record[name]
    if value is None:
        raise ScoringInputError(f"{at} is null; it must be a number.", field=at)
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "true/false" if isinstance(value, bool) else type(value).__name__
        if isinstance(value, str):
            kind = "text"
        raise ScoringInputError(f"{at} must be a number, not {kind}.", field=at)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ScoringInputError(f"{at} must be a finite number (not NaN or Infinity).",
                                field=at)
    if not low <= number <= high:
        raise ScoringInputError(f"{at} must be between {low:g} and {high:g}.", field=at)
    return number


def _order_day(line: Mapping[str, Any], at: str) -> date:
    where = f"{at}.order_date"
    if "order_date" not in line:
        raise ScoringInputError(f"{where} is missing.", field=where)
    value = line["order_date"]
    if not isinstance(value, str) or not 8 <= len(value) <= 40:
        raise ScoringInputError(f"{where} must be an ISO 8601 date such as \"2005-05-31\".",
                                field=where)
    try:
        # The date as written: a time of day or an offset never moves it to another day.
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise ScoringInputError(f"{where} {value!r} is not a date; use ISO 8601 such as "
                                "\"2005-05-31\".", field=where) from None


def _order_id(line: Mapping[str, Any], at: str) -> str:
    where = f"{at}.order_id"
    value = line.get("order_id")
    if value is None:
        raise ScoringInputError(f"{where} is missing: this segmentation counts orders by "
                                "their id.", field=where)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip() \
            or len(str(value)) > 100:
        raise ScoringInputError(f"{where} must be a text or a whole number.", field=where)
    return str(value).strip()


# ---- from a fitted segmentation ------------------------------------------------------------


def from_analysis(prepared, analysis) -> SavedModel:
    """The saved form of an :class:`dashapp.analysis.Analysis` of ``prepared`` data."""
    return from_segmentation(prepared, analysis.segmentation, analysis.personas)


def from_result(result) -> SavedModel:
    """The saved form of a :class:`dashapp.pipeline.Result` (``pipeline.run``)."""
    return from_segmentation(result.prepared, result.segmentation, result.personas)


def from_segmentation(prepared, segmentation: Segmentation,
                      personas: Sequence[Persona]) -> SavedModel:
    """Keep what scoring needs of a fitted segmentation of ``prepared`` (a
    :class:`dashapp.pipeline.Prepared`) and its personas, as JSON-ready values and arrays."""
    seg = segmentation
    if seg.metrics.pending:  # a saved model keeps every metric (Services.complete_state)
        raise ValueError("the segmentation's silhouette is not computed yet")
    arrays: dict[str, np.ndarray] = {}
    steps = dict(seg.pipeline.steps)
    scaling = seg.params.scaling
    scaler = steps.get("scale")
    if scaling in ("standard", "log"):
        _expect(scaler, StandardScaler)
        if scaling == "log":
            _expect(steps.get("log"), FunctionTransformer)
        arrays["scale_mean"] = scaler.mean_
        arrays["scale_scale"] = scaler.scale_
    elif scaling == "robust":
        _expect(scaler, RobustScaler)
        arrays["scale_center"] = scaler.center_
        arrays["scale_scale"] = scaler.scale_
    elif scaling == "minmax":
        _expect(scaler, MinMaxScaler)
        arrays["scale_min"] = scaler.min_
        arrays["scale_scale"] = scaler.scale_
    pca = steps.get("pca")
    pca_doc = None
    if pca is not None:
        _expect(pca, PCA)
        arrays["pca_components"] = pca.components_
        arrays["pca_mean"] = pca.mean_
        if pca.whiten:
            arrays["pca_explained_variance"] = pca.explained_variance_
        pca_doc = {"n_components": int(pca.n_components_), "whiten": bool(pca.whiten),
                   "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_]}
    model = steps["model"]
    algorithm = seg.params.algorithm
    spec: dict[str, Any] = {"algorithm": algorithm, "k": seg.k}
    if algorithm in ("kmeans", "minibatch"):
        _expect(model, (KMeans, MiniBatchKMeans))
        arrays["model_centers"] = model.cluster_centers_
    elif algorithm == "gmm":
        _expect(model, GaussianMixture)
        spec["covariance_type"] = model.covariance_type
        arrays["gmm_weights"] = model.weights_
        arrays["gmm_means"] = model.means_
        arrays["gmm_covariances"] = model.covariances_
        arrays["gmm_precisions_cholesky"] = model.precisions_cholesky_
    elif algorithm == "hierarchical":
        _expect(model, AgglomerativeClustering)
        spec["linkage"] = model.linkage
        arrays["segment_centers"] = seg.centers_transformed
    else:
        _expect(model, DBSCAN)
        spec["eps"] = float(model.eps)
        spec["min_samples"] = int(model.min_samples)
        arrays["dbscan_components"] = model.components_
        arrays["segment_centers"] = seg.centers_transformed
    arrays = {name: np.ascontiguousarray(value, dtype="float64") for name, value in arrays.items()}
    customers = prepared.customers
    ranges = {f: {"min": float(customers[f].min()), "max": float(customers[f].max())}
              for f in seg.features}
    is_rfm = prepared.shape == TRANSACTIONS and prepared.cuts is not None
    rfm = None
    if is_rfm:
        reference = prepared.reference_date
        rfm = {"cuts": prepared.cuts.to_dict(),
               "reference_date": reference.date().isoformat(),
               "order_ids": "order_id" in prepared.ingested.mapping}
    now = utcnow().isoformat()
    doc = {
        "format_version": FORMAT_VERSION,
        "kind": RFM_KIND if is_rfm else ATTRIBUTES_KIND,
        "features": list(seg.features),
        "feature_ranges": ranges,
        "scaling": {"method": scaling},
        "pca": pca_doc,
        "model": spec,
        "params": {"algorithm": algorithm, "k": seg.params.k, "scaling": scaling,
                   "pca": seg.params.pca, "seed": seg.params.seed, "eps": seg.params.eps,
                   "min_samples": seg.params.min_samples},
        "label_map": {str(raw): int(ordered) for raw, ordered in seg.label_map.items()},
        "segments": [_segment_entry(p) for p in personas],
        "rfm": rfm,
        "metrics": {k: _finite(v) for k, v in seg.metrics.to_dict().items()},
        "customers": int(len(seg.labels)),
        "dataset_hash": str(prepared.content_hash),
        "notices": list(seg.notices),
        "created_at": now,
        "updated_at": now,
    }
    saved = SavedModel(doc, arrays)
    _validate(saved)
    return saved


def _expect(step: Any, kinds) -> None:
    if not isinstance(step, kinds):
        raise SavedModelError(f"Cannot save a pipeline step of type {type(step).__name__}.")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return _plain(value)


def _segment_entry(persona: Persona) -> dict[str, Any]:
    return {
        "segment": int(persona.segment),
        "persona": persona.name,
        "strategy": persona.strategy,
        "description": persona.description,
        "size": int(persona.size),
        "customer_share": _finite(float(persona.customer_share)),
        "revenue_share": None if persona.revenue_share is None
        else _finite(float(persona.revenue_share)),
        "centroid": {k: _finite(float(v)) for k, v in persona.centroid.items()},
        "profile": {k: _finite(float(v)) for k, v in persona.profile.items()},
    }


# ---- the per-user store --------------------------------------------------------------------


def check_name(name: Any) -> str:
    """A segmentation's display name: 1 to NAME_MAX characters of printable text."""
    if not isinstance(name, str):
        raise PersonaError("Give the segmentation a name.")
    text = " ".join(name.split())
    if not text:
        raise PersonaError("Give the segmentation a name.")
    if len(text) > NAME_MAX:
        raise PersonaError(f"Names are limited to {NAME_MAX} characters.")
    if any(not ch.isprintable() for ch in text):
        raise PersonaError("A name cannot hold control characters.")
    return text


def _user(user_id: Any) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise SegmentationNotFoundError("No such saved segmentation.")
    return user_id


class SegmentationStore:
    """Saved segmentations of each user: a row in ``saved_segmentations`` and the files in
    ``users/<user_id>/segmentations/<id>/`` under the instance folder.

    Every method takes the user id from the server session: an id of someone else's
    segmentation raises the same :class:`SegmentationNotFoundError` as one that never existed.
    """

    NOT_FOUND = "That saved segmentation does not exist (it may have been deleted)."

    def __init__(self, db: Database, instance_dir: Path) -> None:
        self.db = db
        self.instance_dir = Path(instance_dir)

    def folder(self, user_id: int, segmentation_id: str) -> Path:
        """Where the files of one segmentation live; ids are checked before any path."""
        user_id = _user(user_id)
        if not isinstance(segmentation_id, str) or not _ID.fullmatch(segmentation_id):
            raise SegmentationNotFoundError(self.NOT_FOUND)
        return (self.instance_dir / "users" / str(user_id) / "segmentations"
                / segmentation_id)

    def save(self, user_id: int, dataset_id: str | None, name: str, model: SavedModel) -> str:
        """Store ``model`` under ``name`` for ``user_id``; returns the new id.

        ``dataset_id`` (optional) must name one of the user's own stored datasets.
        """
        user_id = _user(user_id)
        name = check_name(name)
        segmentation_id = new_id()
        folder = self.folder(user_id, segmentation_id)
        with self.db.read() as s:
            if dataset_id is not None and s.scalar(
                    select(Dataset.id).where(Dataset.id == str(dataset_id),
                                             Dataset.user_id == user_id)) is None:
                raise PersonaError("That dataset is no longer on the server; save the "
                                   "segmentation without it or load the dataset again.")
        now = utcnow()
        doc = dict(model.doc, updated_at=now.isoformat())
        replace(model, doc=doc).save(folder)
        summary = {
            "algorithm": model.algorithm, "k": model.doc["model"]["k"],
            "features": list(model.features), "scaling": model.scaling,
            "pca": model.doc["pca"]["n_components"] if model.doc["pca"] else None,
            "customers": model.doc.get("customers"), "metrics": model.metrics,
            "personas": [s["persona"] for s in model.segments],
        }
        try:
            with self.db.write() as s:
                s.add(SavedSegmentation(
                    id=segmentation_id, user_id=user_id, dataset_id=dataset_id, name=name,
                    kind=model.kind, format_version=FORMAT_VERSION,
                    dataset_hash=model.doc["dataset_hash"], summary=summary,
                    created_at=now, updated_at=now))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return segmentation_id

    def _row(self, session, user_id: int, segmentation_id: str) -> SavedSegmentation:
        self.folder(user_id, segmentation_id)
        row = session.get(SavedSegmentation, segmentation_id)
        if row is None or row.user_id != user_id:
            raise SegmentationNotFoundError(self.NOT_FOUND)
        return row

    def list(self, user_id: int) -> list[dict[str, Any]]:
        """The user's saved segmentations, newest first, as JSON-ready dicts."""
        user_id = _user(user_id)
        with self.db.read() as s:
            rows = s.scalars(select(SavedSegmentation)
                             .where(SavedSegmentation.user_id == user_id)
                             .order_by(SavedSegmentation.created_at.desc(),
                                       SavedSegmentation.id)).all()
        return [_meta(row) for row in rows]

    def get(self, user_id: int, segmentation_id: str) -> tuple[dict[str, Any], SavedModel]:
        """``(meta, model)`` of one of the user's segmentations."""
        user_id = _user(user_id)
        with self.db.read() as s:
            meta = _meta(self._row(s, user_id, segmentation_id))
        return meta, load(self.folder(user_id, segmentation_id))

    def meta(self, user_id: int, segmentation_id: str) -> dict[str, Any]:
        """The row of one of the user's segmentations, without reading its files."""
        user_id = _user(user_id)
        with self.db.read() as s:
            return _meta(self._row(s, user_id, segmentation_id))

    def rename(self, user_id: int, segmentation_id: str, name: str) -> dict[str, Any]:
        user_id = _user(user_id)
        name = check_name(name)
        with self.db.write() as s:
            row = self._row(s, user_id, segmentation_id)
            row.name = name
            row.updated_at = utcnow()
            s.flush()
            return _meta(row)

    def delete(self, user_id: int, segmentation_id: str) -> None:
        """Remove the row, then the files."""
        user_id = _user(user_id)
        folder = self.folder(user_id, segmentation_id)
        with self.db.write() as s:
            s.delete(self._row(s, user_id, segmentation_id))
        shutil.rmtree(folder, ignore_errors=True)


def _meta(row: SavedSegmentation) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "dataset_id": row.dataset_id,
        "dataset_hash": row.dataset_hash,
        "format_version": row.format_version,
        "summary": dict(row.summary or {}),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _iso(moment: datetime | None) -> str | None:
    moment = aware(moment)
    return None if moment is None else moment.astimezone(UTC).isoformat()
