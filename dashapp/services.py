"""Server-side state of one app: each user's stored datasets and memoized preparation and
analyses.

The browser only ever holds ids (a dataset id), the column mapping and the controls; the
user comes from the server session and is passed in explicitly. Everything computed lives
here, on disk under ``instance/users/<user_id>/cache/<dataset_id>/``, so a background job in
another process and the web process see the same results, and deleting a dataset deletes
its results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flask_caching.backends.filesystemcache import FileSystemCache
from threadpoolctl import threadpool_limits

from dashapp import __version__, views
from dashapp.analysis import AUTO, Analysis, Controls, analyse, stability_of, sweep
from dashapp.datasets import (
    DatasetInfo,
    DatasetMissingError,
    DatasetStore,
    check_dataset_id,
    check_user_id,
)
from dashapp.db import Database, database_url
from dashapp.errors import PersonaError
from dashapp.ingest import TRANSACTION_ROLES
from dashapp.pipeline import Prepared, PrepareOptions, prepare
from dashapp.saved import SegmentationStore
from dashapp.segment import ALGORITHMS, SCALINGS, Metrics, segment, with_silhouette
from dashapp.settings import Settings
from dashapp.threads import is_web_process, worker_openmp

#: Prepared datasets and analyses kept unpickled in the process, most recent first.
MEMORY_ITEMS = 8
#: Largest k the server accepts from a browser or a client (the slider stops at 10).
K_MAX = 100
SEED_MAX = 2**32 - 1
_FEATURES_MAX = 500

__all__ = ["Services", "DatasetMissingError", "checked_controls", "checked_mapping",
           "checked_dayfirst"]


def checked_mapping(mapping: object) -> dict[str, str] | None:
    """A column mapping from the browser: ``role -> column`` text, empty entries dropped."""
    if mapping is None:
        return None
    if not isinstance(mapping, dict):
        raise PersonaError("The column mapping arrived malformed; reload the page.")
    clean = {}
    for role, column in mapping.items():
        if role not in TRANSACTION_ROLES:
            raise PersonaError(f"Unknown role {str(role)[:40]!r}. Valid roles: "
                               f"{', '.join(TRANSACTION_ROLES)}.")
        if column is None or column == "":
            continue
        if not isinstance(column, str) or len(column) > 300:
            raise PersonaError(f"The mapping for {role} is not a column name; choose one "
                               "from the dropdown.")
        clean[role] = column
    return clean or None


def checked_dayfirst(dayfirst: object) -> bool | None:
    if dayfirst is None or isinstance(dayfirst, bool):
        return dayfirst
    raise PersonaError("The date order arrived malformed; choose it again.")


def _whole(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PersonaError(f"{what} must be a whole number from {low} to {high:,}.")
    return value


def checked_controls(controls: object) -> Controls:
    """The segmentation controls, checked as the browser can send anything.

    Raises
    ------
    PersonaError
        An algorithm or scaling not offered, k or seed out of range or not whole numbers,
        features that are not a list of names.
    """
    if controls is None:
        return Controls()
    if isinstance(controls, Controls):
        data = controls.to_dict()
    elif isinstance(controls, dict):
        data = controls
    else:
        raise PersonaError("The segmentation controls arrived malformed; reload the page.")
    algorithm = data.get("algorithm") or "kmeans"
    if algorithm not in ALGORITHMS:
        raise PersonaError(f"Unknown algorithm {str(algorithm)[:40]!r}: choose one of "
                           f"{', '.join(ALGORITHMS)}.")
    scaling = data.get("scaling") or "standard"
    if scaling not in SCALINGS:
        raise PersonaError(f"Unknown scaling {str(scaling)[:40]!r}: choose one of "
                           f"{', '.join(SCALINGS)}.")
    k = data.get("k", AUTO)
    k = AUTO if k in (None, "", AUTO) else _whole(k, "k", 2, K_MAX)
    seed = data.get("seed")
    seed = 0 if seed in (None, "") else _whole(seed, "The seed", 0, SEED_MAX)
    features = data.get("features") or ()
    if not isinstance(features, (list, tuple)) or len(features) > _FEATURES_MAX or not all(
            isinstance(f, str) and len(f) <= 300 for f in features):
        raise PersonaError("The features arrived malformed; tick them again.")
    pca = data.get("pca")
    if pca not in (None, True, False, 0, 1):
        raise PersonaError("The PCA switch arrived malformed; set it again.")
    return Controls(algorithm=algorithm, k=k, features=tuple(dict.fromkeys(features)),
                    scaling=scaling, pca=bool(pca), seed=seed)


class _NotFitted(Exception):
    """A fit that is not memoized, met by :meth:`Services.cached_analysis`."""


#: Algorithms whose fit costs about the same at any size (their starts run on a sample):
#: K-Means and MiniBatch K-Means 50-100 ms, the Gaussian mixture about 0.2 s at 50,000
#: customers. DBSCAN's neighbour search and Ward's O(n^2) linkage grow with the data.
QUICK_ALGORITHMS = ("kmeans", "minibatch", "gmm")


def quick_fit(algorithm: str, customers: int, limit: int) -> bool:
    """Whether one fit of ``algorithm`` on ``customers`` is quick enough for the request
    that asks for it (a few hundred milliseconds): a background job costs 60-120 ms of
    its own to start and answer, and the browser polls it every 250 ms."""
    return algorithm in QUICK_ALGORITHMS and customers <= limit


def _digest(*parts: Any) -> str:
    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Services:
    """What callbacks reach the core through; one per app, never module-level.

    Every method that touches data takes the user id first (from the server session, never
    from the browser) and a dataset id; a dataset that is not that user's raises
    :class:`DatasetMissingError` exactly as one that does not exist.
    """

    settings: Settings
    db: Database = field(init=False)
    datasets: DatasetStore = field(init=False)
    _memory: OrderedDict = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.settings.instance_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(database_url(self.settings.database_url, self.settings.instance_dir))
        self.db.create_all()
        self.datasets = DatasetStore(self.db, self.settings.instance_dir, self.settings.limits)
        self.segmentations = SegmentationStore(self.db, self.settings.instance_dir)

    @property
    def background_dir(self) -> Path:
        return self.settings.instance_dir / "background"

    # ---- datasets -----------------------------------------------------------------------

    def add_dataset(self, user_id: int, data: bytes, filename: str) -> DatasetInfo:
        """Store an upload as the user's dataset (or find it stored already).

        Raises PersonaError (too large, unreadable, ...) before anything is written.
        """
        with self._compute_guard():  # it prepares the file in this (web) process
            added = self.datasets.add(user_id, data, filename)
        if added.prepared is not None:
            self._store(user_id, added.info.id,
                        self._prepared_key(added.info, None, None),
                        self._light(added.prepared, added.info))
        return added.info

    def add_sample(self, user_id: int, sample: str) -> DatasetInfo:
        """A bundled sample as the user's dataset (stored once per user)."""
        with self._compute_guard():
            added = self.datasets.add_sample(user_id, sample)
        if added.prepared is not None:
            self._store(user_id, added.info.id, self._prepared_key(added.info, None, None),
                        self._light(added.prepared, added.info))
        return added.info

    def dataset(self, user_id: int, dataset_id: object) -> DatasetInfo:
        """The user's dataset row (its name, file name, mapping last applied, ...)."""
        return self.datasets.get(user_id, dataset_id)

    def ensure_dataset(self, user_id: int) -> DatasetInfo:
        """The user's most recently used dataset; a user with none gets the default sample."""
        return self.datasets.latest(user_id) or self.add_sample(user_id, self.settings.sample)

    def apply_reading(self, user_id: int, dataset_id: object, mapping: object,
                      dayfirst: object) -> Prepared:
        """Read the dataset with this mapping and date order; remembered when it works."""
        mapping, dayfirst = checked_mapping(mapping), checked_dayfirst(dayfirst)
        prepared = self.prepared(user_id, dataset_id, mapping, dayfirst)
        self.datasets.set_reading(user_id, dataset_id, mapping, dayfirst)
        return prepared

    def delete_dataset(self, user_id: int, dataset_id: object) -> DatasetInfo:
        """Delete the dataset, its file and every cached result of it, on disk and here."""
        info = self.datasets.delete(user_id, dataset_id)
        self._forget(user_id, info.id)
        return info

    def append_customers(self, user_id: int, dataset_id: object,
                         rows: list[dict[str, object]]) -> DatasetInfo:
        """Append rows to the dataset (see :meth:`DatasetStore.append_customers`); its
        cached results are dropped."""
        with self._compute_guard():
            info = self.datasets.append_customers(user_id, check_dataset_id(dataset_id), rows)
        self._forget(user_id, info.id)
        return info

    # ---- memoized steps -----------------------------------------------------------------

    def _cache(self, user_id: int, dataset_id: str) -> FileSystemCache:
        # flask-caching's file backend used directly: it needs no Flask app context, so the
        # background worker processes read and write the same entries as the web process.
        return FileSystemCache(str(self.datasets.cache_dir(user_id, dataset_id)),
                               threshold=500, default_timeout=7 * 24 * 3600)

    def _store(self, user_id: int, dataset_id: str, digest: str, value: Any,
               disk: bool = True) -> Any:
        if disk:
            self._cache(user_id, dataset_id).set(digest, value)
        return self._remember((user_id, dataset_id, digest), value)

    def _remember(self, key: tuple, value: Any) -> Any:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)
        return value

    def _recall(self, user_id: int, dataset_id: str, digest: str, disk: bool = True) -> Any:
        key = (user_id, dataset_id, digest)
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                return value
        if not disk:
            return None
        value = self._cache(user_id, dataset_id).get(digest)
        return None if value is None else self._remember(key, value)

    def _forget(self, user_id: int, dataset_id: str) -> None:
        with self._lock:
            for key in [k for k in self._memory if k[:2] == (user_id, dataset_id)]:
                del self._memory[key]
        shutil.rmtree(self.datasets.cache_dir(user_id, dataset_id), ignore_errors=True)

    def _compute_guard(self):
        """Single-threaded OpenMP in the web process, every core in a background worker.

        See :mod:`dashapp.threads`: the web process must never start an OpenMP pool, or the
        workers it forks can hang; a worker inherits the one-thread limit and lifts it.
        """
        if is_web_process():
            return threadpool_limits(limits=1, user_api="openmp")
        return worker_openmp()

    def _memoize(self, user_id: int, dataset_id: str, digest: str,
                 compute: Callable[[], Any]) -> Any:
        value = self._recall(user_id, dataset_id, digest)
        if value is None:
            with self._compute_guard():
                value = compute()
            # Deleted meanwhile (another tab, another worker): its cache folder stays gone.
            self.datasets.get(user_id, dataset_id)
            self._store(user_id, dataset_id, digest, value)
        return value

    @staticmethod
    def _prepared_key(info: DatasetInfo, mapping, dayfirst) -> str:
        return _digest("prepared", info.content_hash, mapping, dayfirst)

    @staticmethod
    def _light(prepared: Prepared, info: DatasetInfo) -> Prepared:
        # Past preparation the views need the file's columns, not its lines: keeping every
        # line would make each cache read cost as much as a parse of the file. The hash is
        # the upload's, not the stored Parquet file's.
        light = replace(prepared.ingested, table=prepared.ingested.table.head(0))
        return replace(prepared, ingested=light, content_hash=info.content_hash)

    def prepared(self, user_id: int, dataset_id: object, mapping: object = None,
                 dayfirst: object = None) -> Prepared:
        """Ingest and clean one of the user's datasets (memoized).

        ``mapping`` overrides detected column roles; ``dayfirst`` settles dates whose
        day/month order is ambiguous (``None``: as detected).
        """
        check_user_id(user_id)
        info = self.datasets.get(user_id, dataset_id)
        mapping, dayfirst = checked_mapping(mapping), checked_dayfirst(dayfirst)

        def compute() -> Prepared:
            if self.datasets.source_of(user_id, info.id) is not None:
                return self._light(self._source_prepared(user_id, info, mapping, dayfirst), info)
            data, _ = self.datasets.read_bytes(user_id, info.id)
            prepared = prepare(data, info.filename,
                               PrepareOptions(mapping=mapping, dayfirst=dayfirst,
                                              limits=self.settings.limits))
            return self._light(prepared, info)

        return self._memoize(user_id, info.id, self._prepared_key(info, mapping, dayfirst),
                             compute)

    def analysis(
        self,
        user_id: int,
        dataset_id: object,
        mapping: object,
        controls: Controls | dict | None,
        progress: Callable[[int, int, str], None] | None = None,
        dayfirst: object = None,
    ) -> Analysis:
        """Segment one of the user's datasets as the controls say (memoized)."""
        return self._analysis(user_id, dataset_id, mapping, controls, progress, dayfirst,
                              fitted_only=False)

    def cached_analysis(self, user_id: int, dataset_id: object, mapping: object,
                        controls: Controls | dict | None,
                        dayfirst: object = None, quick: bool = False) -> Analysis | None:
        """The analysis when nothing needs fitting, else ``None``.

        Found when it is memoized, or built from the memoized preparation, k sweep and fit
        (a change of k to one the sweep fitted: only the personas are computed, and the
        result is memoized as :meth:`analysis` would). With ``quick``, also when the only
        thing to fit is one quick fit (:func:`quick_fit`: K-Means, MiniBatch or the mixture
        on at most ``settings.inline_fit_customers``), fitted here. ``None`` when a
        preparation, a sweep or any other fit would have to run: that is a background job's
        work. Raises PersonaError as :meth:`analysis` does (controls out of range, a dataset
        not the user's).
        """
        if not self._has_prepared(user_id, dataset_id, mapping, dayfirst):
            return None
        try:
            return self._analysis(user_id, dataset_id, mapping, controls, None, dayfirst,
                                  fitted_only=True, quick=quick)
        except _NotFitted:
            return None

    def _analysis(self, user_id, dataset_id, mapping, controls, progress, dayfirst,
                  fitted_only: bool, quick: bool = False) -> Analysis:
        controls = checked_controls(controls)
        mapping, dayfirst = checked_mapping(mapping), checked_dayfirst(dayfirst)
        prepared = self.prepared(user_id, dataset_id, mapping, dayfirst)
        info = self.datasets.get(user_id, dataset_id)
        base = (info.content_hash, mapping, dayfirst)

        def fit(params, silhouette=True, inline=False):
            # Keyed by user and dataset like every entry here: the sweep's fit of each k is
            # the fit a later change to that k needs (same params, same seed). The sweep
            # needs each fit's silhouette; the fit the dashboard shows leaves it for later
            # (:meth:`metrics`), so that its figures do not wait for it.
            digest = _digest("segment", *base, repr(params))
            found = self._recall(user_id, info.id, digest)
            if found is None or (silhouette and found.metrics.pending):
                if fitted_only and not (inline and found is None):
                    raise _NotFitted
                if found is None:
                    return self._memoize(user_id, info.id, digest, lambda: segment(
                        prepared.customers, params, silhouette=silhouette))
                with self._compute_guard():
                    found = replace(found, metrics=with_silhouette(prepared.customers, found))
                self._store(user_id, info.id, digest, found)
            return found

        def ksweep(params):
            return self._memoize(user_id, info.id, _digest("sweep", *base, repr(params)),
                                 lambda: sweep(prepared, params, fit))

        memo = _digest("analysis", *base, controls.to_dict())
        inline = quick and quick_fit(controls.algorithm, len(prepared.customers),
                                     self.settings.inline_fit_customers)
        return self._memoize(user_id, info.id, memo, lambda: analyse(
            prepared, controls, progress, ksweep,
            lambda params: fit(params, silhouette=False, inline=inline)))

    def metrics(self, user_id: int, dataset_id: object, mapping: object,
                controls: Controls | dict | None, dayfirst: object = None) -> Metrics:
        """The metrics of the analysis these controls give, its silhouette included: a fit
        the sweep did not make leaves it out (``pending``), and it is computed (and memoized)
        here, the value :func:`dashapp.segment.segment` would have given."""
        controls = checked_controls(controls)
        mapping, dayfirst = checked_mapping(mapping), checked_dayfirst(dayfirst)
        seg = self.analysis(user_id, dataset_id, mapping, controls,
                            dayfirst=dayfirst).segmentation
        return self._silhouette(user_id, dataset_id, mapping, dayfirst, seg, compute=True)

    def completed(self, user_id: int, state: object, analysis: Analysis,
                  compute: bool = True) -> Analysis:
        """``analysis`` (the one the analysis store ``state`` names) with its silhouette:
        computed and memoized, or with ``compute=False`` only when it was memoized already
        (else still pending)."""
        seg = analysis.segmentation
        if not seg.metrics.pending:
            return analysis
        metrics = self._silhouette(user_id, state["dataset"], checked_mapping(state.get(
            "mapping")), checked_dayfirst(state.get("dayfirst")), seg, compute)
        return replace(analysis, segmentation=replace(seg, metrics=metrics))

    def _silhouette(self, user_id: int, dataset_id: object, mapping, dayfirst,
                    seg, compute: bool) -> Metrics:
        if not seg.metrics.pending:
            return seg.metrics
        info = self.datasets.get(user_id, dataset_id)
        memo = _digest("silhouette", info.content_hash, mapping, dayfirst, repr(seg.params))
        if not compute:
            return self._recall(user_id, info.id, memo) or seg.metrics
        prepared = self.prepared(user_id, dataset_id, mapping, dayfirst)
        return self._memoize(user_id, info.id, memo,
                             lambda: with_silhouette(prepared.customers, seg))

    def complete_state(self, user_id: int, state: object) -> tuple[Prepared, Analysis]:
        """:meth:`from_state` with every metric computed (for what is kept: a saved model)."""
        prepared, analysis = self.from_state(user_id, state)
        return prepared, self.completed(user_id, state, analysis)

    def stability(self, user_id: int, dataset_id: object, mapping: object,
                  controls: Controls | dict | None, dayfirst: object = None):
        """Stability of the analysis these controls give: ``(Stability | None, note)``."""
        controls = checked_controls(controls)
        mapping, dayfirst = checked_mapping(mapping), checked_dayfirst(dayfirst)
        analysis = self.analysis(user_id, dataset_id, mapping, controls, dayfirst=dayfirst)
        prepared = self.prepared(user_id, dataset_id, mapping, dayfirst)
        info = self.datasets.get(user_id, dataset_id)
        params = analysis.segmentation.params
        memo = _digest("stability", info.content_hash, mapping, dayfirst, repr(params))
        return self._memoize(user_id, info.id, memo, lambda: stability_of(prepared, analysis))

    def from_state(self, user_id: int, state: object) -> tuple[Prepared, Analysis]:
        """The prepared data and analysis an analysis store (``ids.ANALYSIS``) names."""
        if not isinstance(state, dict) or "dataset" not in state:
            raise DatasetMissingError("No segmentation yet: load a dataset.")
        dataset_id, mapping, dayfirst = (state["dataset"], state.get("mapping"),
                                         state.get("dayfirst"))
        prepared = self.prepared(user_id, dataset_id, mapping, dayfirst)
        return prepared, self.analysis(user_id, dataset_id, mapping, state.get("controls"),
                                       dayfirst=dayfirst)

    def is_prepared(self, user_id: int, store: object) -> bool:
        """Whether the data a dataset store names is prepared already (nothing is computed;
        PersonaError as :meth:`prepared_for`)."""
        if not isinstance(store, dict) or "dataset" not in store:
            raise DatasetMissingError("No dataset loaded yet: load a sample or upload a file.")
        return self._has_prepared(user_id, store["dataset"], store.get("mapping"),
                                  store.get("dayfirst"))

    def _has_prepared(self, user_id: int, dataset_id: object, mapping: object,
                      dayfirst: object) -> bool:
        info = self.datasets.get(user_id, dataset_id)
        key = self._prepared_key(info, checked_mapping(mapping), checked_dayfirst(dayfirst))
        return self._recall(user_id, info.id, key) is not None

    def prepared_for(self, user_id: int, store: object) -> Prepared:
        """The prepared data a dataset store (``ids.DATASET``) names."""
        if not isinstance(store, dict) or "dataset" not in store:
            raise DatasetMissingError("No dataset loaded yet: load a sample or upload a file.")
        return self.prepared(user_id, store["dataset"], store.get("mapping"),
                             store.get("dayfirst"))

    def grid_frame(self, user_id: int, state: object):
        """The customer table the grid shows for an analysis store (kept in memory only: it is
        rebuilt cheaply from the cached analysis, and block requests come in bursts)."""
        prepared, analysis = self.from_state(user_id, state)
        info = self.datasets.get(user_id, state["dataset"])
        digest = _digest("grid", info.content_hash, checked_mapping(state.get("mapping")),
                         state.get("dayfirst"), analysis.controls.to_dict())
        found = self._recall(user_id, info.id, digest, disk=False)
        if found is None:
            found = self._store(user_id, info.id, digest, views.grid_frame(prepared, analysis),
                                disk=False)
        return found

    # ---- sources (server paths, URLs, databases) -----------------------------------------

    @property
    def source_policy(self):
        """What this app's users may connect to (PERSONA_SOURCE_* settings)."""
        from dashapp.sources import SourcePolicy

        return SourcePolicy.for_app(self.settings)

    def add_source(self, user_id: int, kind: object, location: object,
                   table: object = None) -> DatasetInfo:
        """Read a source the policy allows and store its customers as the user's dataset.

        Raises PersonaError (not allowed, unreachable, no such table, missing columns, ...)
        before anything is stored.
        """
        from dashapp.sources import checked_source, read_source

        check_user_id(user_id)
        source = checked_source(kind, location, table)
        with self._compute_guard():
            options = PrepareOptions(limits=self.settings.source_limits,
                                     fallback_limits=self.settings.limits)
            prepared = read_source(source, options, self.source_policy)
        added = self.datasets.add_source(user_id, source.to_dict(), prepared, source.label())
        if added.prepared is not None:
            self._store(user_id, added.info.id, self._prepared_key(added.info, None, None),
                        self._light(added.prepared, added.info))
        return added.info

    def refresh_source(self, user_id: int, dataset_id: object) -> DatasetInfo:
        """Read a source dataset again (with its remembered mapping); its results are reset."""
        info = self.datasets.get(user_id, dataset_id)
        if self.datasets.source_of(user_id, info.id) is None:
            raise PersonaError("Only datasets connected to a source can be refreshed; upload "
                               "the file again instead.")
        prepared = self._read_source(user_id, info, info.mapping, info.dayfirst)
        updated = self.datasets.replace_source(user_id, info.id, prepared)
        self._forget(user_id, info.id)
        return updated

    def _read_source(self, user_id: int, info: DatasetInfo, mapping, dayfirst) -> Prepared:
        from dashapp.sources import Source, read_source

        source = Source.from_dict(self.datasets.source_of(user_id, info.id))
        options = PrepareOptions(mapping=mapping, dayfirst=dayfirst,
                                 limits=self.settings.source_limits,
                                 fallback_limits=self.settings.limits)
        with self._compute_guard():
            return read_source(source, options, self.source_policy)

    def _source_prepared(self, user_id: int, info: DatasetInfo, mapping, dayfirst) -> Prepared:
        """The stored preparation; another mapping or date order reads the source again
        (the policy is checked again then)."""
        stored = self.datasets.source_prepared(user_id, info.id)
        if (mapping is None or mapping == stored.ingested.mapping) and dayfirst is None:
            return stored
        return self._read_source(user_id, info, mapping, dayfirst)
