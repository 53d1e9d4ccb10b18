"""Server-side state of one app: stored datasets and memoized preparation and analyses.

The browser only ever holds a dataset key (its content hash), the column mapping and the
controls; everything computed from them lives here, on disk under the instance folder, so a
background job in another process and the web process see the same results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flask_caching.backends.filesystemcache import FileSystemCache
from multiprocess import current_process
from threadpoolctl import threadpool_limits

from dashapp import __version__, views
from dashapp.analysis import Analysis, Controls, analyse, stability_of, sweep
from dashapp.db import Database, database_url
from dashapp.errors import PersonaError, TooLargeError
from dashapp.pipeline import Prepared, PrepareOptions, content_hash, prepare
from dashapp.samples import SAMPLES
from dashapp.saved import SegmentationStore
from dashapp.settings import Settings

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()+-]")
#: Prepared datasets and analyses kept unpickled in the process, most recent first.
MEMORY_ITEMS = 8


class DatasetMissingError(PersonaError):
    """A key from the browser names no stored dataset (deleted, or a stale tab)."""


def _clean_mapping(mapping: dict[str, str] | None) -> dict[str, str] | None:
    return {k: v for k, v in (mapping or {}).items() if v} or None


def _key(*parts: Any) -> str:
    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Services:
    """What callbacks reach the core through; one per app, never module-level."""

    settings: Settings
    db: Database = field(init=False)
    cache: FileSystemCache = field(init=False)
    _memory: OrderedDict = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.settings.instance_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(database_url(self.settings.database_url, self.settings.instance_dir))
        self.db.create_all()
        self.segmentations = SegmentationStore(self.db, self.settings.instance_dir)
        cache_dir = self.settings.instance_dir / "cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        # flask-caching's file backend used directly: it needs no Flask app context, so the
        # background worker processes read and write the same entries as the web process.
        self.cache = FileSystemCache(str(cache_dir), threshold=500,
                                     default_timeout=7 * 24 * 3600)

    @property
    def datasets_dir(self) -> Path:
        return self.settings.instance_dir / "datasets"

    @property
    def background_dir(self) -> Path:
        return self.settings.instance_dir / "background"

    # ---- datasets -----------------------------------------------------------------------

    def store_dataset(self, data: bytes, filename: str) -> str:
        """Keep an uploaded file's bytes under its content hash; returns that key.

        Raises
        ------
        TooLargeError
            Past the configured upload size.
        """
        limit = self.settings.limits.max_bytes
        if len(data) > limit:
            raise TooLargeError(
                f"{filename} is {len(data) / 2**20:.1f} MB; uploads are limited to "
                f"{limit / 2**20:.0f} MB (PERSONA_MAX_UPLOAD_MB). Upload a smaller extract, "
                "or aggregate it to one row per customer first.")
        key = content_hash(data)
        folder = self.datasets_dir / key
        name = _SAFE_NAME.sub("_", Path(filename).name)[:120] or "upload"
        path = folder / name
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return key

    def sample_dataset(self, sample: str) -> tuple[str, str]:
        """Store a bundled sample like an upload; returns its key and file name."""
        found = SAMPLES.get(sample)
        if found is None:
            raise PersonaError(f"Unknown sample {sample!r}: choose one of {', '.join(SAMPLES)}.")
        return self.store_dataset(found.read_bytes(), found.filename), found.filename

    def dataset_bytes(self, key: str) -> tuple[bytes, str]:
        """The stored file of ``key``: its bytes and its name."""
        folder = self.datasets_dir / str(key)
        files = [p for p in folder.glob("*") if p.is_file() and not p.name.endswith(".part")] \
            if re.fullmatch(r"[0-9a-f]{16}", str(key)) and folder.is_dir() else []
        if not files:
            raise DatasetMissingError(
                "That dataset is no longer on the server; load a sample or upload the file "
                "again.")
        return files[0].read_bytes(), files[0].name

    # ---- memoized steps -----------------------------------------------------------------

    def _remember(self, key: str, value: Any) -> Any:
        with self._lock:
            self._memory[key] = value
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)
        return value

    def _recall(self, key: str) -> Any:
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                return value
        value = self.cache.get(key)
        return None if value is None else self._remember(key, value)

    def _compute_guard(self):
        """Single-threaded OpenMP when computing in the process that forks the workers.

        Background callbacks run in processes forked from the web process. GNU OpenMP (under
        scikit-learn's K-Means) is not fork-safe: once the parent has started its thread pool,
        a forked child's first parallel region can hang for ever (seen here: a benchmark that
        fitted K-Means before the first background job). One thread never starts the pool.
        """
        # Dash's DiskcacheManager starts its workers with ``multiprocess``; a web process
        # (gunicorn's workers included) is that library's main process.
        if current_process().name == "MainProcess":
            return threadpool_limits(limits=1, user_api="openmp")
        return contextlib.nullcontext()

    def _memoize(self, key: str, compute: Callable[[], Any]) -> Any:
        value = self._recall(key)
        if value is None:
            with self._compute_guard():
                value = compute()
            self.cache.set(key, value)
            self._remember(key, value)
        return value

    def prepared(self, key: str, mapping: dict[str, str] | None = None,
                 dayfirst: bool | None = None) -> Prepared:
        """Ingest and clean a stored dataset (memoized).

        ``mapping`` overrides detected column roles; ``dayfirst`` settles dates whose
        day/month order is ambiguous (``None``: as detected).
        """
        mapping = _clean_mapping(mapping)

        def compute() -> Prepared:
            data, filename = self.dataset_bytes(key)
            prepared = prepare(data, filename,
                               PrepareOptions(mapping=mapping, dayfirst=dayfirst,
                                              limits=self.settings.limits))
            # Past preparation the views need the file's columns, not its lines: keeping
            # every line would make each cache read cost as much as a parse of the file.
            light = replace(prepared.ingested, table=prepared.ingested.table.head(0))
            return replace(prepared, ingested=light)

        return self._memoize(_key("prepared", key, mapping, dayfirst), compute)

    def analysis(
        self,
        key: str,
        mapping: dict[str, str] | None,
        controls: Controls | dict | None,
        progress: Callable[[int, int, str], None] | None = None,
        dayfirst: bool | None = None,
    ) -> Analysis:
        """Segment a stored dataset as the controls say (memoized)."""
        if not isinstance(controls, Controls):
            controls = Controls.from_dict(controls)
        mapping = _clean_mapping(mapping)
        prepared = self.prepared(key, mapping, dayfirst)

        def ksweep(params):
            return self._memoize(_key("sweep", key, mapping, dayfirst, repr(params)),
                                 lambda: sweep(prepared, params))

        memo = _key("analysis", key, mapping, dayfirst, controls.to_dict())
        return self._memoize(memo, lambda: analyse(prepared, controls, progress, ksweep))

    def stability(self, key: str, mapping: dict[str, str] | None,
                  controls: Controls | dict | None, dayfirst: bool | None = None):
        """Stability of the analysis these controls give: ``(Stability | None, note)``."""
        if not isinstance(controls, Controls):
            controls = Controls.from_dict(controls)
        mapping = _clean_mapping(mapping)
        analysis = self.analysis(key, mapping, controls, dayfirst=dayfirst)
        prepared = self.prepared(key, mapping, dayfirst)
        params = analysis.segmentation.params
        return self._memoize(_key("stability", key, mapping, dayfirst, repr(params)),
                             lambda: stability_of(prepared, analysis))

    def from_state(self, state: dict) -> tuple[Prepared, Analysis]:
        """The prepared data and analysis an analysis store (``ids.ANALYSIS``) names."""
        if not state or "dataset" not in state:
            raise DatasetMissingError("No segmentation yet: load a dataset.")
        dayfirst = state.get("dayfirst")
        prepared = self.prepared(state["dataset"], state.get("mapping"), dayfirst)
        return prepared, self.analysis(state["dataset"], state.get("mapping"),
                                       state.get("controls"), dayfirst=dayfirst)

    def prepared_for(self, store: dict) -> Prepared:
        """The prepared data a dataset store (``ids.DATASET``) names."""
        if not store or "key" not in store:
            raise DatasetMissingError("No dataset loaded yet: load a sample or upload a file.")
        return self.prepared(store["key"], store.get("mapping"), store.get("dayfirst"))

    def grid_frame(self, state: dict):
        """The customer table the grid shows for an analysis store (kept in memory only: it is
        rebuilt cheaply from the cached analysis, and block requests come in bursts)."""
        prepared, analysis = self.from_state(state)
        key = _key("grid", state.get("dataset"), _clean_mapping(state.get("mapping")),
                   state.get("dayfirst"), Controls.from_dict(state.get("controls")).to_dict())
        with self._lock:
            found = self._memory.get(key)
        if found is None:
            found = self._remember(key, views.grid_frame(prepared, analysis))
        return found
