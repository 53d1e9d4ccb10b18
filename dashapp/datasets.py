"""Each user's stored datasets: Parquet files under the instance folder, rows in the database.

An upload is read once as ingest reads any file (``_read_raw``: the raw table, text columns
still text) and kept as Parquet at ``users/<user_id>/datasets/<dataset_id>.parquet``, with
what the Parquet file itself would lose (encoding, file format, delimiter, decimal comma,
notices) in its schema's key-value metadata, which ingest restores. Reading the stored file
with any column mapping or date order therefore gives exactly what the original bytes give.
Paths come only from the server's own ids (validated by regex), never from a browser.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from dashapp import ingest
from dashapp.clean import CleaningReport, RuleResult
from dashapp.db import Database, Dataset, aware, new_id, utcnow
from dashapp.errors import EmptyFileError, PersonaError, TooLargeError
from dashapp.features import RFMCuts
from dashapp.pipeline import Prepared, PrepareOptions, content_hash, prepare
from dashapp.samples import SAMPLES
from dashapp.settings import Limits

DATASET_ID = re.compile(r"[0-9a-f]{32}")
NAME_MAX = 200
#: Rows one call of :meth:`DatasetStore.append_customers` may add.
APPEND_MAX = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MISSING = ("That dataset is not among your datasets (it was deleted, or the link is stale). "
            "Choose one of your datasets, load a sample or upload a file.")


class DatasetMissingError(PersonaError):
    """A dataset id names nothing of the caller's: missing, deleted, or someone else's.

    The message is the same in every case, so an id never tells whether it exists.
    """

    def __init__(self, message: str = _MISSING) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class DatasetInfo:
    """A stored dataset's metadata row, detached from the database session."""

    id: str
    user_id: int
    name: str
    filename: str
    content_hash: str
    rows: int
    size_bytes: int
    mapping: dict[str, str] | None
    dayfirst: bool | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Dataset) -> DatasetInfo:
        return cls(row.id, row.user_id, row.name, row.filename, row.content_hash, row.rows,
                   row.size_bytes, dict(row.mapping) if row.mapping else None, row.dayfirst,
                   aware(row.created_at), aware(row.updated_at))


@dataclass(frozen=True)
class Added:
    """What :meth:`DatasetStore.add` did: the dataset, whether it is new, and the file as
    prepared with the detected mapping (the check that it can be read), to cache."""

    info: DatasetInfo
    created: bool
    prepared: Prepared | None


def check_dataset_id(dataset_id: object) -> str:
    """``dataset_id`` if it has the shape of a server id, else :class:`DatasetMissingError`."""
    if not isinstance(dataset_id, str) or not DATASET_ID.fullmatch(dataset_id):
        raise DatasetMissingError()
    return dataset_id


def check_user_id(user_id: object) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise PersonaError("Log in to reach your datasets.")
    return user_id


def check_name(name: object) -> str:
    """A dataset name: text of 1 to NAME_MAX characters without control characters."""
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise PersonaError("Give the dataset a name (1 to 200 characters).")
    if len(text) > NAME_MAX:
        raise PersonaError(f"Dataset names are limited to {NAME_MAX} characters; this one has "
                           f"{len(text)}.")
    if _CONTROL.search(text):
        raise PersonaError("A dataset name cannot contain line breaks or control characters.")
    return text


def _display_filename(filename: str) -> str:
    # Only for display and messages: the path on disk is the dataset's id.
    name = _CONTROL.sub("", Path(str(filename).replace("\\", "/")).name).strip()
    return name[:255] or "upload"


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns Arrow cannot hold as one type (text mixed with numbers, from Excel or
    JSON) as the text ingest reads them as (``_scalar_text``, which ``_as_text`` applies)."""
    mixed = []
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            mixed.append(column)
    if not mixed:
        return frame
    frame = frame.copy()
    for column in mixed:
        frame[column] = frame[column].map(ingest._scalar_text, na_action="ignore").astype("str")
    return frame


def _reading_metadata(raw) -> bytes:
    return json.dumps({"version": 1, "file_format": raw.file_format, "encoding": raw.encoding,
                       "delimiter": raw.delimiter, "decimal": raw.decimal,
                       "notices": list(raw.notices)}).encode()


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def to_parquet(data: bytes, filename: str, limits: Limits) -> tuple[bytes, int]:
    """An uploaded file's raw table as Parquet bytes, and its number of rows.

    Raises
    ------
    IngestError
        Whatever ingest refuses to read (empty, unsupported, ragged, too large, ...).
    """
    if not data or data.isspace():
        raise EmptyFileError(ingest._empty_message(filename))
    raw = ingest._read_raw(data, filename, limits)
    table = pa.Table.from_pandas(_arrow_safe(raw.frame), preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[ingest.RAW_METADATA_KEY] = _reading_metadata(raw)
    return _parquet_bytes(table.replace_schema_metadata(metadata)), len(raw.frame)


def _write_atomic(path: Path, data: bytes) -> Path:
    """``data`` in a temporary file beside ``path`` (same folder, so the rename is atomic);
    returns the temporary file, which the caller moves into place with ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _owned(session, user_id: object, dataset_id: object) -> Dataset:
    """The row of ``dataset_id`` if ``user_id`` owns it; a missing dataset and someone else's
    raise the same :class:`DatasetMissingError`."""
    row = session.scalar(select(Dataset).where(Dataset.id == check_dataset_id(dataset_id),
                                               Dataset.user_id == check_user_id(user_id)))
    if row is None:
        raise DatasetMissingError()
    return row


class DatasetStore:
    """Add, list, open, rename, delete and append to one user's datasets.

    Every method takes the user id first; a dataset id that is not that user's raises
    :class:`DatasetMissingError`, exactly as an id that does not exist.
    """

    def __init__(self, db: Database, instance_dir: Path, limits: Limits) -> None:
        self.db = db
        self.instance_dir = Path(instance_dir)
        self.limits = limits
        #: Returns a dict that lives as long as one web request (``None`` outside one), where
        #: :meth:`get` keeps what it read; the app sets it, the core knows no requests.
        self.scope: Callable[[], dict | None] | None = None

    # ---- paths ---------------------------------------------------------------------------

    def user_dir(self, user_id: int) -> Path:
        return self.instance_dir / "users" / str(check_user_id(user_id))

    def path(self, user_id: int, dataset_id: str) -> Path:
        return self.user_dir(user_id) / "datasets" / f"{check_dataset_id(dataset_id)}.parquet"

    def source_path(self, user_id: int, dataset_id: str) -> Path:
        """The sidecar of a dataset read from a source: the source and how it was prepared.

        A sidecar file rather than a database column: instance databases made by
        ``create_all`` before sources existed have no such column.
        """
        return self.path(user_id, dataset_id).with_suffix(".source.json")

    def cache_dir(self, user_id: int, dataset_id: str) -> Path:
        """The folder of this dataset's cached preparations and analyses."""
        return self.user_dir(user_id) / "cache" / check_dataset_id(dataset_id)

    # ---- reading -------------------------------------------------------------------------

    def list(self, user_id: int) -> list[DatasetInfo]:
        """The user's datasets, most recently used first."""
        with self.db.read() as s:
            rows = s.scalars(select(Dataset).where(Dataset.user_id == check_user_id(user_id))
                             .order_by(Dataset.updated_at.desc(), Dataset.created_at.desc()))
            return [DatasetInfo.of(r) for r in rows]

    def latest(self, user_id: int) -> DatasetInfo | None:
        found = self.list(user_id)
        return found[0] if found else None

    def get(self, user_id: int, dataset_id: object) -> DatasetInfo:
        """The user's dataset ``dataset_id``; :class:`DatasetMissingError` otherwise.

        Within one request (:attr:`scope`) the row is read once, until a write: a dashboard
        callback asks for its dataset three or four times, each a query of its own.
        """
        memo = self.scope() if self.scope is not None else None
        key = ("dataset", check_user_id(user_id), check_dataset_id(dataset_id), self.db.writes)
        if memo is not None and key in memo:
            return memo[key]
        with self.db.read() as s:
            info = DatasetInfo.of(_owned(s, user_id, dataset_id))
        if memo is not None:
            memo[key] = info
        return info

    def read_bytes(self, user_id: int, dataset_id: str) -> tuple[bytes, DatasetInfo]:
        """The stored Parquet file's bytes and the dataset's row."""
        info = self.get(user_id, dataset_id)
        try:
            return self.path(user_id, info.id).read_bytes(), info
        except FileNotFoundError:
            raise DatasetMissingError() from None

    def columns(self, user_id: int, dataset_id: str) -> list[str]:
        """The stored table's column names (what :meth:`append_customers` rows are keyed by)."""
        info = self.get(user_id, dataset_id)
        return list(pq.read_schema(self.path(user_id, info.id)).names)

    def find(self, user_id: int, digest: str) -> DatasetInfo | None:
        """The user's dataset with this content hash, if any."""
        with self.db.read() as s:
            row = s.scalar(select(Dataset).where(Dataset.user_id == check_user_id(user_id),
                                                 Dataset.content_hash == digest).limit(1))
            return None if row is None else DatasetInfo.of(row)

    # ---- writing -------------------------------------------------------------------------

    def check_size(self, data: bytes, filename: str) -> None:
        limit = self.limits.max_bytes
        if len(data) > limit:
            raise TooLargeError(
                f"{filename} is {len(data) / 2**20:.1f} MB; uploads are limited to "
                f"{limit / 2**20:.0f} MB (PERSONA_MAX_UPLOAD_MB). Upload a smaller extract, "
                "or aggregate it to one row per customer first.")

    def add(self, user_id: int, data: bytes, filename: str, name: str | None = None) -> Added:
        """Store an upload for the user, or find the same content already stored.

        The file is read and prepared with the detected mapping before anything is written:
        a file that cannot be read raises its :class:`PersonaError` and leaves the user's
        datasets as they were.
        """
        check_user_id(user_id)
        filename = _display_filename(filename)
        self.check_size(data, filename)
        digest = content_hash(data)
        found = self.find(user_id, digest)
        if found is not None:
            return Added(self.touch(user_id, found.id), False, None)
        stored, rows = to_parquet(data, filename, self.limits)
        prepared = prepare(stored, filename, PrepareOptions(limits=self.limits))
        info, created = self._insert(user_id, stored, Dataset(
            user_id=user_id, name=check_name(name or filename), filename=filename,
            content_hash=digest, rows=rows, size_bytes=len(stored)))
        return Added(info, created, prepared if created else None)

    def add_sample(self, user_id: int, sample: str) -> Added:
        """A bundled sample stored as the user's dataset (once: found again by content)."""
        found = SAMPLES.get(sample) if isinstance(sample, str) else None
        if found is None:
            raise PersonaError(f"Unknown sample: choose one of {', '.join(SAMPLES)}.")
        return self.add(user_id, found.read_bytes(), found.filename)

    def _insert(self, user_id: int, stored: bytes, row: Dataset) -> tuple[DatasetInfo, bool]:
        row.id = row.id or new_id()
        target = self.path(user_id, row.id)
        part = _write_atomic(target, stored)
        try:
            with self.db.write() as s:
                # Under the write lock: two identical uploads at once keep one dataset.
                twin = s.scalar(select(Dataset).where(Dataset.user_id == user_id,
                                                      Dataset.content_hash == row.content_hash)
                                .limit(1))
                if twin is not None:
                    return DatasetInfo.of(twin), False
                s.add(row)
                s.flush()
                os.replace(part, target)
                return DatasetInfo.of(row), True
        finally:
            part.unlink(missing_ok=True)

    def touch(self, user_id: int, dataset_id: str) -> DatasetInfo:
        """Mark the dataset as just used (it then comes first in :meth:`list`)."""
        return self._update(user_id, dataset_id, lambda row: None)

    def rename(self, user_id: int, dataset_id: str, name: object) -> DatasetInfo:
        name = check_name(name)
        return self._update(user_id, dataset_id, lambda row: setattr(row, "name", name))

    def set_reading(self, user_id: int, dataset_id: str, mapping: dict[str, str] | None,
                    dayfirst: bool | None) -> DatasetInfo:
        """Remember the column mapping and date order last applied to the dataset."""
        def apply(row: Dataset) -> None:
            row.mapping = dict(mapping) if mapping else None
            row.dayfirst = dayfirst
        return self._update(user_id, dataset_id, apply)

    def _update(self, user_id: int, dataset_id: object, change) -> DatasetInfo:
        with self.db.write() as s:
            row = _owned(s, user_id, dataset_id)
            change(row)
            row.updated_at = utcnow()
            s.flush()
            return DatasetInfo.of(row)

    def delete(self, user_id: int, dataset_id: object) -> DatasetInfo:
        """Remove the dataset's row, its Parquet file and its cached results."""
        dataset_id = check_dataset_id(dataset_id)
        with self.db.write() as s:
            row = _owned(s, user_id, dataset_id)
            info = DatasetInfo.of(row)
            s.delete(row)
        self.path(user_id, dataset_id).unlink(missing_ok=True)
        self.source_path(user_id, dataset_id).unlink(missing_ok=True)
        shutil.rmtree(self.cache_dir(user_id, dataset_id), ignore_errors=True)
        return info

    # ---- sources ---------------------------------------------------------------------------

    def source_of(self, user_id: int, dataset_id: object) -> dict | None:
        """The source description (``kind``, ``location``, ``table``) of the user's dataset,
        or ``None`` for an upload or a sample."""
        info = self.get(user_id, dataset_id)
        try:
            data = json.loads(self.source_path(user_id, info.id).read_text())
        except FileNotFoundError:
            return None
        return data["source"]

    def add_source(self, user_id: int, source: dict, prepared: Prepared,
                   name: str) -> Added:
        """Store a source's prepared customers (not its lines) as the user's dataset.

        ``<id>.parquet`` holds the customer table, ``<id>.source.json`` the source and the
        rest of the :class:`Prepared` (report, detection, RFM cuts, reference date), so the
        dataset opens without reading the source again. The same content already stored is
        found again, as an upload is.
        """
        check_user_id(user_id)
        found = self.find(user_id, prepared.content_hash)
        if found is not None and self.source_of(user_id, found.id) is not None:
            return Added(self.touch(user_id, found.id), False, None)
        stored = _parquet_bytes(pa.Table.from_pandas(prepared.customers, preserve_index=False))
        row = Dataset(user_id=user_id, name=check_name(name),
                      filename=_display_filename(name), content_hash=prepared.content_hash,
                      rows=prepared.report.rows_read, size_bytes=len(stored))
        row.id = new_id()
        sidecar = _write_atomic(self.source_path(user_id, row.id),
                                _sidecar(source, prepared).encode())
        os.replace(sidecar, self.source_path(user_id, row.id))
        try:
            info, created = self._insert(user_id, stored, row)
        finally:
            if not (self.path(user_id, row.id).exists()):
                self.source_path(user_id, row.id).unlink(missing_ok=True)
        return Added(info, created, prepared if created else None)

    def replace_source(self, user_id: int, dataset_id: str, prepared: Prepared) -> DatasetInfo:
        """The dataset's prepared customers read again from its source (a refresh)."""
        source = self.source_of(user_id, dataset_id)
        if source is None:
            raise PersonaError("Only datasets connected to a source can be refreshed.")
        stored = _parquet_bytes(pa.Table.from_pandas(prepared.customers, preserve_index=False))
        target = self.path(user_id, dataset_id)
        part = _write_atomic(target, stored)
        side = _write_atomic(self.source_path(user_id, dataset_id),
                             _sidecar(source, prepared).encode())
        try:
            def apply(row: Dataset) -> None:
                row.content_hash = prepared.content_hash
                row.rows = prepared.report.rows_read
                row.size_bytes = len(stored)
                os.replace(part, target)
                os.replace(side, self.source_path(user_id, dataset_id))
            updated = self._update(user_id, dataset_id, apply)
        finally:
            part.unlink(missing_ok=True)
            side.unlink(missing_ok=True)
        shutil.rmtree(self.cache_dir(user_id, dataset_id), ignore_errors=True)
        return updated

    def source_prepared(self, user_id: int, dataset_id: object) -> Prepared:
        """The :class:`Prepared` a source dataset was stored with."""
        info = self.get(user_id, dataset_id)
        try:
            data = json.loads(self.source_path(user_id, info.id).read_text())
            customers = pq.read_table(self.path(user_id, info.id)).to_pandas()
        except FileNotFoundError:
            raise DatasetMissingError() from None
        return _prepared_of(data["prepared"], customers)

    def append_customers(self, user_id: int, dataset_id: str,
                         rows: Sequence[dict[str, object]]) -> DatasetInfo:
        """Append rows (keyed by the stored table's column names) to the dataset.

        Missing columns are left empty; text columns take the value's text. The result is
        read again with the dataset's last mapping and date order before it replaces the
        stored file, so a row that would break the dataset is refused and nothing changes.
        The dataset's content hash changes and its cached results are removed.

        Raises
        ------
        PersonaError
            No rows or more than APPEND_MAX, an unknown column, a value that is not a
            finite number, text, a boolean or empty, or a table that no longer reads.
        """
        if self.source_of(user_id, dataset_id) is not None:
            raise PersonaError("This dataset is read from a source (a server path, URL or "
                               "database): add the rows there and refresh it.")
        data, info = self.read_bytes(user_id, dataset_id)
        table = pq.read_table(io.BytesIO(data))
        new = _rows_table(rows, table.schema)
        combined = pa.concat_tables([table, new]).replace_schema_metadata(table.schema.metadata)
        stored = _parquet_bytes(combined)
        options = PrepareOptions(mapping=info.mapping, dayfirst=info.dayfirst,
                                 limits=self.limits)
        before, after = prepare(data, info.filename, options), prepare(stored, info.filename,
                                                                       options)
        if (after.shape, after.ingested.mapping, after.numeric_features) != \
                (before.shape, before.ingested.mapping, before.numeric_features):
            raise PersonaError(
                "The new rows would change how the dataset reads (its shape, column roles or "
                f"numeric features: {', '.join(after.numeric_features) or 'none'} instead of "
                f"{', '.join(before.numeric_features)}); check the values, e.g. numbers in "
                "number columns.")
        target = self.path(user_id, info.id)
        part = _write_atomic(target, stored)
        try:
            def apply(row: Dataset) -> None:
                row.content_hash = content_hash(stored)
                row.rows = combined.num_rows
                row.size_bytes = len(stored)
                os.replace(part, target)
            updated = self._update(user_id, info.id, apply)
        finally:
            part.unlink(missing_ok=True)
        shutil.rmtree(self.cache_dir(user_id, info.id), ignore_errors=True)
        return updated

    def delete_user_files(self, user_id: int) -> None:
        """Every file of the user (their rows go by the database's cascade)."""
        shutil.rmtree(self.user_dir(user_id), ignore_errors=True)


def _sidecar(source: dict, prepared: Prepared) -> str:
    ing = prepared.ingested
    ingested = {
        "shape": ing.shape, "mapping": dict(ing.mapping), "encoding": ing.encoding,
        "file_format": ing.file_format, "delimiter": ing.delimiter, "decimal": ing.decimal,
        "date_format": ing.date_format, "date_ambiguous": ing.date_ambiguous,
        "dayfirst": ing.dayfirst, "attributes": list(ing.attributes),
        "categoricals": list(ing.categoricals),
        "bad_values": {c: [list(v) for v in vs] for c, vs in ing.bad_values.items()},
        "notices": list(ing.notices), "id_synthesized": ing.id_synthesized,
        "columns": [str(c) for c in ing.table.columns],
        "dtypes": [str(d) for d in ing.table.dtypes],
    }
    return json.dumps({
        "version": 1,
        "source": source,
        "prepared": {
            "ingested": ingested,
            "report": prepared.report.to_dict(),
            "numeric_features": list(prepared.numeric_features),
            "default_features": list(prepared.default_features),
            "cuts": None if prepared.cuts is None else prepared.cuts.to_dict(),
            "content_hash": prepared.content_hash,
            "reference_date": (None if prepared.reference_date is None
                               else prepared.reference_date.isoformat()),
        },
    }, default=str)


def _empty_column(dtype: str) -> pd.Series:
    try:
        return pd.Series(dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(dtype=object)


def _prepared_of(data: dict, customers: pd.DataFrame) -> Prepared:
    ing = dict(data["ingested"])
    table = pd.DataFrame({c: _empty_column(d) for c, d in zip(ing.pop("columns"),
                                                              ing.pop("dtypes"))})
    ing["attributes"] = tuple(ing["attributes"])
    ing["categoricals"] = tuple(ing["categoricals"])
    ing["notices"] = tuple(ing["notices"])
    ing["bad_values"] = {c: [(int(r), str(v)) for r, v in vs]
                         for c, vs in ing["bad_values"].items()}
    report = dict(data["report"])
    report["rules"] = tuple(
        RuleResult(**{**r, "examples": tuple(r["examples"])}) for r in report["rules"])
    reference = data["reference_date"]
    return Prepared(
        ingested=ingest.Ingested(table=table, **ing),
        customers=customers,
        report=CleaningReport(**report),
        numeric_features=tuple(data["numeric_features"]),
        default_features=tuple(data["default_features"]),
        cuts=None if data["cuts"] is None else RFMCuts.from_dict(data["cuts"]),
        content_hash=data["content_hash"],
        reference_date=None if reference is None else pd.Timestamp(reference),
    )


def _cell(column: str, value: object, kind: pa.DataType) -> object:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise PersonaError(f"Column {column!r}: {value} is not a number; enter a finite "
                           "number or leave it empty.", column=column)
    if not isinstance(value, (str, int, float, bool)):
        raise PersonaError(f"Column {column!r}: enter a number or text, not "
                           f"{type(value).__name__}.", column=column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ingest._scalar_text(value)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        try:
            return pd.Timestamp(value).to_pydatetime()
        except (TypeError, ValueError):
            raise PersonaError(f"Column {column!r}: {value!r} is not a date.",
                               column=column) from None
    return value


def _rows_table(rows: Sequence[dict[str, object]], schema: pa.Schema) -> pa.Table:
    if not isinstance(rows, (list, tuple)) or not rows:
        raise PersonaError("No rows to append.")
    if len(rows) > APPEND_MAX:
        raise PersonaError(f"Append at most {APPEND_MAX} rows at once; got {len(rows)}.")
    names = set(schema.names)
    for row in rows:
        if not isinstance(row, dict):
            raise PersonaError("Each row to append is an object of column: value.")
        unknown = [c for c in row if c not in names]
        if unknown:
            raise PersonaError(f"The dataset has no column {unknown[0]!r}; its columns are "
                               f"{', '.join(schema.names)}.", column=str(unknown[0]))
    arrays = []
    for field in schema:
        values = [_cell(field.name, row.get(field.name), field.type) for row in rows]
        try:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            raise PersonaError(f"Column {field.name!r} holds {field.type} values; "
                               f"{next(v for v in values if v is not None)!r} is not one.",
                               column=field.name) from None
    return pa.Table.from_arrays(arrays, schema=schema.remove_metadata())
