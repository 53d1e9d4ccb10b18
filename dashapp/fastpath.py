"""Fast path: a transaction log on disk cleaned and aggregated to customers by DuckDB in one scan.

The general path (:func:`dashapp.pipeline.prepare`) turns every line into a typed pandas row;
at ten million lines that is most of its time and memory. Here DuckDB reads the file itself
and one query types each line, applies the line rules and aggregates to one row per
customer; detection (roles, date format, delimiter, encoding) runs on a sample of the file
with the general path's own code. A second, ordered read runs only when a rule fired, to
find the first few examples and the unreadable values with their row numbers, and it stops
as soon as it has them.

The result equals the general path's :class:`~dashapp.pipeline.Prepared` (except
``ingested.table``, which keeps the columns and no rows, as the app's cache keeps it). Files
it cannot read exactly return ``None`` from :func:`prepare_fast`, and the caller takes the
general path: customer tables, text that is neither UTF-8 nor Windows-1252 / Latin-1
(DuckDB reads those from a UTF-8 copy when the file holds bytes 0x80-0x9F), numbers other
than plain ones in a decimal-comma file (``1.234,50``), whitespace-aligned text, dates in
formats other than digits and separators, dates whose day/month order the sample cannot
settle, numbers the strict reader refuses (currency, grouping), infinite values, dropping
of duplicates, and more unreadable values than the limit allows. A contact column (e-mail,
name, country) keeps each customer's last value in file order among its kept lines, as the
general path does: the lines are numbered in file order (a Parquet line by its file's place
and its row in the file; a CSV line by its row in a table of the typed read, which DuckDB fills
in file order) and each grouping keeps the value of its latest line.

Two places where it is exact only up to the odds: duplicate lines are found by 64-bit row
hashes within each order (two different lines of one order would have to collide), and a
strict CSV read takes ``1_000`` in a number column as 1000 and ``+-1`` as -1 where the
general path finds them unreadable (the text read, used as soon as any value does not parse
or reads as NaN, counts those and falls back). Detection runs on a sample, as the general
path's does on its own sample of 2,000 values; where the two could disagree on the
day/month order the scan checks the whole column and falls back.

Scans: one for the customers and every count (for CSV, typed by DuckDB's reader; a file
with any value that reader refuses, a missing token or 02/30/2023, is read again as text,
each value typed on its own); a second only when a date or number column holds values that
do not read as they are (to split missing tokens from unreadable
values); the ordered read for examples, stopping early; and, only when ids differ by
surrounding spaces or missing-id spellings, the scan again with typed keys.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dashapp import ingest
from dashapp.clean import EXAMPLES, _examples, line_rules
from dashapp.errors import IngestError, PersonaError, TooLargeError
from dashapp.features import rfm_from_aggregates
from dashapp.ingest import TRANSACTIONS, Ingested
from dashapp.settings import Limits

if TYPE_CHECKING:
    from dashapp.pipeline import Prepared, PrepareOptions

#: Below this size :func:`dashapp.pipeline.prepare_path` takes the general path: it is fast
#: enough there, and its sample is the whole file.
FAST_MIN_BYTES = 8 * 1024 * 1024
_HEAD_BYTES = 1 << 18
_SPREAD_CHUNKS = 16
_SPREAD_BYTES = 1 << 14
_PARQUET_SAMPLE_ROWS = 50_000
_HASH_CHUNK = 1 << 24
# Rows of the first batches of the ordered read: the first examples are usually near the top.
_DETAIL_BATCH = 1 << 16
_BAD_LIST_CAP = 1000
# DuckDB's own memory during the scan (default: DuckDB's, 80% of RAM); past it the grouping
# spills to the temporary folder. Ten million lines group in about 850 MB; bounded to 300 MB
# the scan took 25-30% longer here.
_MEMORY_LIMIT = os.environ.get("PERSONA_DUCKDB_MEMORY")
# Python's str.strip() and pandas' .str.strip() remove exactly these characters.
_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(
    map(chr, range(0x2000, 0x200B))
) + "\u2028\u2029\u202f\u205f\u3000"
# The error a strict CSV read raises on a NaN, to be read again as text.
_NAN_MARK = "persona: NaN in a strict read"
# The error a float id that is not a whole number raises (the general path reads the file).
_FLOAT_ID_MARK = "persona: an id that is not a whole number"
# A missing token in any case, alone and between whitespace as Python strips it, for RE2.
_TOKEN_RE = "(?i:{})".format("|".join(re.escape(t) for t in sorted(ingest.MISSING_TOKENS) if t))
_MISSING_RE = "[{0}]*{1}?[{0}]*".format(
    "".join(f"\\x{{{ord(c):04x}}}" for c in _WHITESPACE), _TOKEN_RE)
# Dates DuckDB's strptime reads as Arrow's does: numeric fields and separators only.
_SAFE_DATE = re.compile(r"(%[YmdHMS]|[-/.: T])+")
# The Windows-1252 letters: a file without these bytes reads the same as Latin-1.
_CP1252_ONLY = re.compile(rb"[\x80-\x9f]")
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_NOT_ASCII = re.compile(rb"[\x80-\xff]")
_CONTACT_ROLES = ("email", "name", "country")


@dataclass
class _Plan:
    """What the sample says about the file, and how DuckDB is to read it."""

    path: Path
    sample: Ingested
    source: str
    kinds: dict[str, str]
    file_format: str
    encoding: str = "utf-8"
    twin: str | None = None
    names: list[str] = field(default_factory=list)
    #: A read that types the date and number columns in DuckDB's CSV reader, which fails on
    #: the first value it cannot read; the scan then reads all columns as text.
    strict: tuple[str, dict[str, str]] | None = None
    #: The files read, in order: ``(path,)``, or a folder's files (or their UTF-8 copies).
    files: tuple[Path, ...] = ()
    #: Temporary UTF-8 copies of Windows-1252 files, removed once the file is prepared.
    copies: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not self.files:
            self.files = (self.path,)


#: The file kinds a folder may hold (one kind per folder).
_FOLDER_KINDS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
                 ".pq": "parquet"}


def folder_files(folder: str | Path) -> tuple[str, tuple[Path, ...]]:
    """The data files of a folder, in the order they are read: ``(kind, files)``.

    Every file under ``folder`` (recursively, so a partitioned Parquet folder works; hidden
    files and folders and names starting with ``_`` such as ``_SUCCESS`` are skipped) sorted
    by its path relative to the folder. ``kind`` is ``"csv"`` or ``"parquet"``.

    Raises
    ------
    IngestError
        No data files, or CSV and Parquet files mixed.
    """
    folder = Path(folder)
    found: dict[str, list[Path]] = {}
    for item in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).parts):
        parts = item.relative_to(folder).parts
        if any(part.startswith((".", "_")) for part in parts) or not item.is_file():
            continue
        kind = _FOLDER_KINDS.get(item.suffix.lower())
        if kind is not None:
            found.setdefault(kind, []).append(item)
    if not found:
        raise IngestError(
            f"Folder {folder.name!r} holds no CSV, TSV, TXT or Parquet files.")
    if len(found) > 1:
        raise IngestError(
            f"Folder {folder.name!r} mixes CSV and Parquet files; keep one kind per folder.")
    (kind, files), = found.items()
    return kind, tuple(files)


def folder_parquet_schema(folder: str | Path, files: tuple[Path, ...]) -> pa.Schema:
    """The one schema a folder's Parquet files are read with (no metadata).

    Every file needs the same column names in the same order. A column's type may differ
    between files as daily exports make it differ: pandas writes an integer column as
    double on a day with an empty value, and a column that is empty all day as type null.
    Such a column takes the type all its values fit (pyarrow's permissive promotion:
    int32 and int64 as int64, integers and doubles as double, null as the others' type);
    a dictionary (categorical) column is read as its values.

    Raises
    ------
    IngestError
        A file with other columns, or a column whose types do not fit one type (text in
        one file, numbers in another), naming the files.
    """
    folder = Path(folder)
    try:
        schemas = [pq.read_schema(f).remove_metadata() for f in files]
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"A Parquet file in {folder.name!r} cannot be read ({exc}).") from None
    return _unified(folder, files, schemas)


def _unified(folder: Path, files: tuple[Path, ...], schemas: list[pa.Schema]) -> pa.Schema:
    def name(path: Path) -> str:
        return repr(path.relative_to(folder).as_posix())

    first = schemas[0]
    for path, schema in zip(files[1:], schemas[1:]):
        if schema.names != first.names:
            raise IngestError(
                f"{name(path)} has other columns than {name(files[0])} "
                f"({ingest._list_columns(schema.names)} against "
                f"{ingest._list_columns(first.names)}); every file in a folder needs the same "
                "columns in the same order.")
    fields = []
    for i, column in enumerate(first.names):
        types = [s.field(i).type for s in schemas]
        if all(t == types[0] for t in types):
            fields.append(first.field(i))
            continue
        plain = [t.value_type if pa.types.is_dictionary(t) else t for t in types]
        common = _common_type(plain)
        if common is None:
            a = next(j for j, t in enumerate(plain) if t != pa.null())
            b = next((j for j, t in enumerate(plain)
                      if t != pa.null() and _common_type([plain[a], t]) is None),
                     len(plain) - 1)
            raise IngestError(
                f"Column {column!r} holds {_values_word(plain[a])} in {name(files[a])} but "
                f"{_values_word(plain[b])} in {name(files[b])}; every file in a folder needs "
                "the same kind of values in a column.")
        fields.append(pa.field(column, common))
    return pa.schema(fields)


def _common_type(types: list[pa.DataType]) -> pa.DataType | None:
    """The type all of ``types`` fit (pyarrow's permissive promotion), or ``None``."""
    try:
        return pa.unify_schemas([pa.schema([pa.field("v", t)]) for t in types],
                                promote_options="permissive").field(0).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _values_word(dtype: pa.DataType) -> str:
    for test, word in ((pa.types.is_string, "text"), (pa.types.is_large_string, "text"),
                       (pa.types.is_integer, "whole numbers"), (pa.types.is_floating, "numbers"),
                       (pa.types.is_decimal, "numbers"), (pa.types.is_timestamp, "date-times"),
                       (pa.types.is_date, "dates"), (pa.types.is_boolean, "true/false values")):
        if test(dtype):
            return word
    return f"values of type {dtype}"


def prepare_fast(path: str | Path, options: PrepareOptions | None = None) -> Prepared | None:
    """:func:`dashapp.pipeline.prepare` of a file on disk through DuckDB, or ``None``.

    Parameters
    ----------
    path
        A CSV/TSV/TXT or Parquet file, or a folder of such files with the same columns
        (:func:`folder_files`), read as one table in the order of their names.
    options
        :class:`dashapp.pipeline.PrepareOptions`; the same caps apply as on the general path.

    Returns
    -------
    Prepared or None
        The same prepared customers the general path gives, or ``None`` when this file needs
        the general path (see the module's docstring).

    Raises
    ------
    TooLargeError
        The file is over the size or row cap, with the general path's message.
    """
    from dashapp.pipeline import PrepareOptions

    options = options or PrepareOptions()
    path = Path(path)
    files = folder_files(path)[1] if path.is_dir() else (path,)
    size = sum(f.stat().st_size for f in files)
    if size > options.limits.max_bytes:
        raise TooLargeError(
            f"{path.name!r} is {size / 1_048_576:.1f} MB; the limit is "
            f"{options.limits.max_bytes / 1_048_576:.0f} MB. Upload a smaller extract, or raise "
            "the limit (PERSONA_MAX_UPLOAD_MB)."
        )
    if options.cleaning.drop_duplicates or options.shape not in (None, TRANSACTIONS):
        return None
    plan = _plan(files, size, options)
    if plan is None:
        return None
    digest = _Digest(files, folder=path if path.is_dir() else None) \
        if options.content_hash else None
    try:
        con = _connect()
        try:
            if plan.file_format == "parquet" and _has_nan(con, plan):
                # Parquet writers leave NaN out of a column's min/max, and DuckDB's optimizer
                # then folds isnan() to false from those statistics.
                con.execute("SET disabled_optimizers = 'statistics_propagation'")
            scan = _scan(con, plan)
        finally:
            con.close()
        if scan is None:
            return None
        return _prepared(plan, scan, options, digest)
    finally:
        _remove(plan.copies)
        if digest is not None:
            digest.join()


def _connect() -> duckdb.DuckDBPyConnection:
    """The scan's connection: spills to the temporary folder, keeps insertion order (DuckDB's
    default, which :func:`_ordered_lines` relies on)."""
    config = {"temp_directory": tempfile.gettempdir(), "preserve_insertion_order": True}
    if _MEMORY_LIMIT:
        config["memory_limit"] = _MEMORY_LIMIT
    return duckdb.connect(config=config)


def _has_nan(con: duckdb.DuckDBPyConnection, plan: _Plan) -> bool:
    """Whether a float column of the Parquet data holds a NaN, read with the statistics off.

    Only then does the scan run without them: with them it took about 0.2 s less at 10M
    lines, this look about 0.07 s. An aggregate, not a WHERE: a filter would be pushed into
    the Parquet reader, which skips row groups by those same statistics.
    """
    floats = [_ident(name) for name, kind in plan.kinds.items() if kind == "float"]
    if not floats:
        return False
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    try:
        found = con.execute(
            f"SELECT coalesce(bool_or({' OR '.join(f'isnan({c})' for c in floats)}), false) "
            f"FROM {plan.source}"
        ).fetchone()[0]
    except duckdb.Error:
        found = 1  # the scan, without the statistics, finds what is wrong
    finally:
        con.execute("SET disabled_optimizers = ''")
    return bool(found)


class _Digest:
    """The general path's content hash of the file, computed in a thread beside the scan.

    For a folder: each file's relative path and bytes, in order. hashlib releases the GIL on
    large buffers, so this costs CPU time, not waiting time.
    """

    def __init__(self, files: tuple[Path, ...], folder: Path | None = None) -> None:
        self._hash = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, args=(files, folder), daemon=True)
        self._thread.start()

    def _run(self, files: tuple[Path, ...], folder: Path | None) -> None:
        for path in files:
            if folder is not None:
                self._hash.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with open(path, "rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    self._hash.update(chunk)

    def join(self) -> None:
        self._thread.join()

    def value(self) -> str:
        self.join()
        return self._hash.hexdigest()[:16]


# --------------------------------------------------------------------------- detection


def _plan(files: tuple[Path, ...], size: int, options: PrepareOptions) -> _Plan | None:
    magics = set()
    for path in files:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        magics.add("parquet" if magic == b"PAR1" else
                   "other" if magic.startswith(b"PK") or b"\x00" in magic else "csv")
    if magics == {"parquet"}:
        return _plan_parquet(files, options)
    if magics == {"csv"}:
        return _plan_csv(files, size, options)
    return None


def _read_sample(
    data: bytes, name: str, options: PrepareOptions, raw: ingest._Raw | None = None
) -> Ingested | None:
    uncapped = replace(options.limits, max_bytes=1 << 62, max_rows=1 << 62)
    try:
        if raw is not None:
            return ingest._build(raw, dict(options.mapping or {}), options.shape,
                                 options.dayfirst, uncapped)
        return ingest.read_table(
            data, name, mapping=options.mapping, shape=options.shape,
            dayfirst=options.dayfirst, limits=uncapped,
        )
    except PersonaError:
        # The general path gives the same error, or finds that the whole file reads.
        return None


def _csv_sample(files: tuple[Path, ...], size: int) -> bytes:
    """The head of the first file and whole lines from evenly spaced places after it, over
    all the files as if they were one."""
    with open(files[0], "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if size <= _HEAD_BYTES:
        return head if len(files) == 1 else b""
    parts = [head[: head.rfind(b"\n") + 1]]
    sizes = [f.stat().st_size for f in files]
    starts = np.cumsum([0, *sizes])
    for i in range(1, _SPREAD_CHUNKS + 1):
        at = _HEAD_BYTES + (size - _HEAD_BYTES) * i // (_SPREAD_CHUNKS + 1)
        which = min(int(np.searchsorted(starts, at, side="right")) - 1, len(files) - 1)
        with open(files[which], "rb") as handle:
            handle.seek(at - int(starts[which]))
            block = handle.read(_SPREAD_BYTES)
        start, end = block.find(b"\n") + 1, block.rfind(b"\n") + 1
        if 0 < start < end:
            parts.append(block[start:end])
    return b"".join(parts)


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as handle:
        line = handle.readline(1 << 20)
    return line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")


def _usable(sample: Ingested | None) -> bool:
    if sample is None or sample.shape != TRANSACTIONS or sample.id_synthesized:
        return False
    return not any(str(c).startswith("Unnamed: ") for c in sample.table.columns)


def _plan_csv(files: tuple[Path, ...], size: int, options: PrepareOptions) -> _Plan | None:
    path = files[0]
    if len({_first_line(f) for f in files}) > 1:
        return None  # the general path names the files whose header differs
    data = _csv_sample(files, size)
    if not data:
        return None
    sample = _read_sample(data, path.name, options)
    if not _usable(sample) or sample.file_format != "csv" or sample.decimal not in ".,":
        return None
    if sample.delimiter not in (",", ";", "\t", "|"):
        return None
    fmt = sample.date_format
    if fmt is None or fmt == "%Y%m%d" or not _SAFE_DATE.fullmatch(fmt):
        return None
    encoding, copy = "utf-8", None
    if sample.encoding in ("cp1252", "iso-8859-1"):
        # Latin-1 and Windows-1252 differ only in 0x80-0x9F; without those bytes DuckDB's
        # Latin-1 reads what the general path reads. With them the general path decodes
        # the whole file as Windows-1252 (the euro sign, curly quotes, dashes), or as
        # Latin-1 if it holds a byte Windows-1252 leaves undefined; DuckDB's Latin-1
        # refuses those bytes, so it reads a UTF-8 copy decoded the same way
        # (:func:`_utf8_copies`).
        letters, undefined = _high_bytes(files)
        if undefined and sample.encoding != "iso-8859-1":
            return None  # the sample saw none of those bytes; the report would differ
        encoding = "latin-1"
        if letters:
            encoding = copy = "latin-1" if undefined else "cp1252"
    elif sample.encoding not in ("utf-8", "utf-8-sig"):
        return None
    names = [str(c) for c in sample.table.columns]
    header = ingest._header_fields(data[:_HEAD_BYTES].decode(
        encoding, errors="replace").lstrip("\ufeff"),
        sample.delimiter)
    if len(header) != len(names):
        return None
    read, copies = files, ()
    if copy is not None:
        read = copies = _utf8_copies(files, copy)
        encoding = "utf-8"
    kinds = {n: "text" for n in names}
    strict = dict(kinds)
    strict[sample.mapping["order_date"]] = "timestamp"
    for role in ingest._NUMBER_ROLES:
        if role in sample.mapping and sample.decimal == ".":
            strict[sample.mapping[role]] = "float"
    types = {"text": "VARCHAR", "timestamp": "TIMESTAMP", "float": "DOUBLE"}

    def source(kinds: dict[str, str]) -> str:
        columns = ", ".join(f"{_literal(n)}: '{types[kinds[n]]}'" for n in names)
        return (
            f"read_csv({_files_sql(read)}, header = true, auto_detect = false, "
            f"delim = {_literal(sample.delimiter)}, quote = '\"', escape = '\"', "
            f"columns = {{{columns}}}, encoding = {_literal(encoding)}, null_padding = false, "
            f"timestampformat = {_literal(fmt)})"
        )

    return _Plan(path, sample, source(kinds), kinds, "csv", encoding, ingest._TWIN_OF.get(fmt),
                 names, (source(strict), strict), read, copies)


def _files_sql(files: tuple[Path, ...]) -> str:
    return "[" + ", ".join(_literal(str(f)) for f in files) + "]"


def _high_bytes(files: tuple[Path, ...]) -> tuple[bool, bool]:
    """Whether the files hold bytes 0x80-0x9F, and whether one of them is a byte that
    Windows-1252 leaves undefined."""
    letters = False
    for path in files:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                if _CP1252_ONLY.search(chunk):
                    letters = True
                    if _CP1252_UNDEFINED.search(chunk):
                        return True, True
    return letters, False


def _utf8_copies(files: tuple[Path, ...], codec: str) -> tuple[Path, ...]:
    """Each file decoded with ``codec`` (a one-byte encoding) as UTF-8 in the temporary
    folder, in the same order (the caller removes them: :attr:`_Plan.copies`). A block of
    plain ASCII is copied as it is; one byte is one character, so lines and row numbers stay
    where they were."""
    copies: list[Path] = []
    try:
        for path in files:
            handle, name = tempfile.mkstemp(prefix="persona-", suffix=".csv")
            copies.append(Path(name))
            with open(handle, "wb") as out, open(path, "rb") as source:
                while chunk := source.read(_HASH_CHUNK):
                    out.write(chunk.decode(codec).encode("utf-8")
                              if _NOT_ASCII.search(chunk) else chunk)
    except BaseException:
        _remove(tuple(copies))
        raise
    return tuple(copies)


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _plan_parquet(files: tuple[Path, ...], options: PrepareOptions) -> _Plan | None:
    path = files[0]
    try:
        parquet = pq.ParquetFile(path)
        # Footers only: a folder can hold thousands of files.
        footers = [parquet.metadata] + [pq.read_metadata(f) for f in files[1:]]
        schemas = [m.schema.to_arrow_schema() for m in footers]
        # The types every file's values fit (the general path's): ``drift`` names the
        # columns whose type differs between files.
        unified = _unified(path.parent, files, schemas)
    except (pa.ArrowException, OSError, PersonaError):
        return None  # the general path names the file or the column that differs
    schema = parquet.schema_arrow
    drift = [n for n in unified.names
             if any(s.field(n).type != unified.field(n).type for s in schemas)]
    if drift and not _union_reads_as(files, schemas, unified, drift):
        return None
    meta = schema.pandas_metadata or {}
    if any(not isinstance(i, dict) for i in meta.get("index_columns", [])):
        return None
    if any(n.startswith("__index_level_") for n in schema.names):
        return None
    if parquet.metadata.num_rows == 0:
        return None  # an empty first file: the general path says what it holds
    # The sample: the first rows of the joined files (a folder's first file can be a day
    # with a few lines), with the joined table's types and, as there, a folder's files
    # without their pandas metadata.
    parts, rows = [], 0
    for each, footer in zip(files, footers):
        if footer.num_rows:
            with pq.ParquetFile(each) as reader:
                batch = next(reader.iter_batches(batch_size=_PARQUET_SAMPLE_ROWS - rows))
            parts.append(pa.Table.from_batches([batch]).cast(unified, safe=False))
            rows += batch.num_rows
        if rows >= _PARQUET_SAMPLE_ROWS:
            break
    first = pa.concat_tables(parts)
    frame = (first if len(files) > 1 else first.replace_schema_metadata(schema.metadata)
             ).to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        return None
    # An upload the app stored as Parquet reads as its original did (its format, encoding,
    # delimiter, decimal mark and notices are in the schema's metadata), as on the general
    # path.
    stored = ingest._stored_reading(schema.metadata) or {"file_format": "parquet",
                                                          "encoding": "parquet"}
    raw = ingest._Raw(frame.reset_index(drop=True), **stored)
    sample = _read_sample(b"", path.name, options, raw=raw)
    if not _usable(sample):
        return None
    try:
        if ingest._column_names(list(schema.names), options.limits) != list(schema.names):
            return None  # the general path strips names (' customer ' is 'customer')
    except PersonaError:
        return None  # duplicate names once stripped: the general path says which
    kinds: dict[str, str] = {}
    for name in schema.names:
        kind = _parquet_kind(unified.field(name).type)
        if kind is None:
            return None
        kinds[name] = kind
    mapping = sample.mapping
    for role, column in mapping.items():
        kind = kinds[column]
        if role in ("customer_id", "order_id") and kind not in ("text", "int", "float"):
            return None  # float ids: pandas writes an integer column with gaps as double
        if role == "order_date" and kind not in ("text", "timestamp", "date"):
            return None
        if role in ingest._NUMBER_ROLES and kind not in ("int", "float", "text", "decimal"):
            return None
        if role in _CONTACT_ROLES and kind not in ("text", "int"):
            return None
    fmt = sample.date_format
    if kinds[mapping["order_date"]] == "text" and (
        fmt is None or fmt == "%Y%m%d" or not _SAFE_DATE.fullmatch(fmt)
    ):
        return None
    source = _parquet_source(files, bool(drift))
    if _filled_later(frame, mapping, kinds, source,
                     sum(m.num_rows for m in footers) > len(frame)):
        return None
    return _Plan(path, sample, source, kinds, "parquet", "parquet",
                 ingest._TWIN_OF.get(fmt) if fmt else None, list(schema.names), files=files)


def _filled_later(frame: pd.DataFrame, mapping: dict[str, str], kinds: dict[str, str],
                  source: str, more: bool) -> bool:
    """Whether a column the sample holds no value of has values past it (``more``: the data
    goes on past the sample). The general path detects roles on values spread over the whole
    column, so such a column (a day's file without any e-mail, say) could be a role there
    and not here. One read of those columns, only when the sample has one."""
    def empty(series: pd.Series) -> bool:
        # A column's first values nearly always show it has some: only then is it all typed.
        values = series.dropna()
        return not (ingest._as_text(values.iloc[:64]).notna().any()
                    or ingest._as_text(values.iloc[64:]).notna().any())

    def present(column: str) -> str:
        col = _ident(column)
        if kinds[column] == "text":
            return f"{_norm(col)} IS NOT NULL"
        if kinds[column] == "float":  # NaN is no value, as in the sample
            return f"coalesce(NOT isnan({col}), false)"
        return f"{col} IS NOT NULL"

    blank = [c for c in frame.columns if c not in mapping.values() and empty(frame[c])
             ] if more else []
    if not blank:
        return False
    con = duckdb.connect()
    try:
        found = con.execute(f"SELECT coalesce(bool_or({' OR '.join(map(present, blank))}), "
                            f"false) FROM {source}").fetchone()[0]
    except duckdb.Error:
        return True
    finally:
        con.close()
    return bool(found)


def _parquet_source(files: tuple[Path, ...], union: bool) -> str:
    # No hive partition columns: the general path reads each file's own columns. Files
    # whose types differ are read by name with DuckDB's union of their types.
    return (f"read_parquet({_files_sql(files)}, hive_partitioning = false"
            f"{', union_by_name = true' if union else ''})")


def _union_reads_as(files: tuple[Path, ...], schemas: list[pa.Schema], unified: pa.Schema,
                    drift: list[str]) -> bool:
    """Whether DuckDB's union of the files' types reads each drifting column with the
    values the general path's type holds. DuckDB's union can differ from pyarrow's (int32
    and float32 are FLOAT to DuckDB, double to pyarrow), so a column passes only when DuckDB
    gives it the type it gives a file that holds the general path's type."""
    def types(source: str) -> dict[str, str]:
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}

    con = duckdb.connect()
    try:
        union = types(_parquet_source(files, True))
        for column in drift:
            holder = next((f for f, s in zip(files, schemas)
                           if s.field(column).type == unified.field(column).type), None)
            if holder is None or union.get(column) != types(
                    _parquet_source((holder,), False)).get(column):
                return False
    except duckdb.Error:
        return False
    finally:
        con.close()
    return True


def _parquet_kind(dtype: pa.DataType) -> str | None:
    if pa.types.is_dictionary(dtype):
        # pandas writes a categorical column as a dictionary; DuckDB reads its values.
        return _parquet_kind(dtype.value_type)
    if pa.types.is_decimal(dtype):
        # Money from a database or Spark. pandas reads Decimal objects, which the general
        # path types through their text: the same double as DuckDB's cast while the
        # unscaled value and the power of ten are exact doubles (one correctly rounded
        # division).
        return "decimal" if dtype.precision <= 15 and dtype.scale <= 15 else None
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype):
        return "float"
    if pa.types.is_timestamp(dtype) and dtype.tz is None:
        return "timestamp"
    if pa.types.is_date(dtype):
        return "date"
    return None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- the scan


def _norm(expr: str) -> str:
    """SQL for ``ingest._as_text`` of one text value: stripped, missing tokens as NULL.

    DuckDB's ``trim`` with a list of characters is slow, so a value whose first and last
    characters are printable ASCII (so not whitespace) is not stripped: it is missing only
    when it is itself a token (one regular expression, on values no longer than a token).
    The others (few: empty, or spaces around) are matched once against the tokens between
    whitespace, and stripped once.
    """
    return (f"(CASE WHEN ord({expr}[1]) BETWEEN 33 AND 126 AND ord({expr}[-1]) BETWEEN 33 AND 126 "
            f"THEN (CASE WHEN strlen({expr}) <= {ingest._TOKEN_CHARS} "
            f"AND regexp_full_match({expr}, {_literal(_TOKEN_RE)}) THEN NULL ELSE {expr} END) "
            f"WHEN regexp_full_match({expr}, {_literal(_MISSING_RE)}) THEN NULL "
            f"ELSE trim({expr}, {_literal(_WHITESPACE)}) END)")


def _parse_sql(expr: str, role: str, fmt: str | None, decimal: str = ".") -> str:
    """A text value typed, NULL where it does not read. A number that reads as NaN ('nan',
    '-nan') does not: the general path takes 'nan' for missing and '-nan' for unreadable,
    and :func:`_dirty` tells the two apart."""
    if role == "order_date":
        return f"try_strptime({expr}, {_literal(fmt)})"
    # DuckDB takes NaN as equal to NaN, so nullif types the value once.
    return f"nullif({_parse_number_sql(expr, decimal)}, 'NaN'::DOUBLE)"


def _parse_number_sql(expr: str, decimal: str) -> str:
    if decimal == ",":
        # With a decimal comma only plain values are read here: digits, or digits, a comma
        # and digits. The general path reads the others its own way (1.234 is 1234 there,
        # 1.5 is 1.5), so they stay unread, and an unread number sends the file to it.
        return (f"(CASE WHEN regexp_full_match({expr}, '[+-]?[0-9]+,[0-9]+') "
                f"THEN TRY_CAST(replace({expr}, ',', '.') AS DOUBLE) "
                f"WHEN contains({expr}, '.') OR contains({expr}, ',') THEN NULL "
                f"ELSE TRY_CAST({expr} AS DOUBLE) END)")
    return f"TRY_CAST({expr} AS DOUBLE)"


def _typed(column: str, role: str, kind: str, fmt: str | None, decimal: str = ".",
           csv: bool = False) -> str:
    """SQL for one date or number value as the general path types it, whitespace and missing
    tokens aside: a value that does not parse as it is counts as unparsed, and
    :func:`_dirty` looks at those few rows again. In a strict CSV read (``csv``) a number
    DuckDB's reader took for NaN stops the read (:data:`_NAN_MARK`): only the text read can
    tell 'nan' (missing) from '-nan' (unreadable)."""
    col = _ident(column)
    if kind in ("timestamp", "date"):
        return f"CAST({col} AS TIMESTAMP)"
    if kind == "float" and csv:
        return f"(CASE WHEN isnan({col}) THEN error({_literal(_NAN_MARK)}) ELSE {col} END)"
    if kind == "decimal":
        return f"CAST({col} AS DOUBLE)"
    if kind in ("int", "float"):
        return f"(CASE WHEN isnan(CAST({col} AS DOUBLE)) THEN NULL ELSE CAST({col} AS DOUBLE) END)"
    return _parse_sql(col, role, fmt, decimal)


def _hash_part(column: str, kind: str, file_format: str) -> str:
    """A non-role column as the general path compares it: NaN is missing, -0.0 is 0.0, and
    an empty CSV field is missing (in Parquet an empty string is a value)."""
    col = _ident(column)
    if kind == "float":
        return f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} + 0.0 END)"
    if kind == "text" and file_format == "csv":
        return f"nullif({col}, '')"
    return col


@dataclass
class _Scan:
    """What the one query found: the customer aggregates and the counts of each rule."""

    customers: pd.DataFrame
    counts: dict[str, int]
    dup_customers: set[str]


def _scan(con: duckdb.DuckDBPyConnection, plan: _Plan, merge: bool = False) -> _Scan | None:
    """One read of the file: lines grouped by their raw customer and order, then customers.

    A CSV file is first read with typed dates and numbers; DuckDB's reader then parses them
    (strictly: 02/30/2023 is an error, not 2023-03-02), and a file with any value it cannot
    read, missing tokens included, is read again as text, where each value is typed on its
    own. Raw ids are typed per group, not per line. When typing makes two raw groups one
    (ids that differ only in spaces, or two spellings of a missing id) the query runs again
    with ``merge``, which groups the typed keys once more before customers.
    """
    try:
        if plan.strict is not None:
            source, kinds = plan.strict
            try:
                return _scan_once(con, replace(plan, source=source, kinds=kinds), merge)
            except duckdb.ConversionException:
                pass
            except duckdb.InvalidInputException as err:
                if _NAN_MARK not in str(err):
                    raise
        return _scan_once(con, plan, merge)
    except duckdb.Error:
        # Ragged rows, bytes that are not the expected encoding, a file that changed: the
        # general path reads it or explains what is wrong with it.
        return None


def _scan_once(
    con: duckdb.DuckDBPyConnection, plan: _Plan, merge: bool, split: bool = False
) -> _Scan | None:
    """The query; ``split`` groups lines by their state too (see ``l1`` below)."""
    sample = plan.sample
    roles = sample.mapping
    kinds = plan.kinds
    fmt = sample.date_format
    has_order = "order_id" in roles
    date_col = roles["order_date"]
    typed_roles = {"order_date": date_col}
    typed_roles.update({r: roles[r] for r in ingest._NUMBER_ROLES if r in roles})
    line = [f"{_text_key(roles['customer_id'], kinds)} AS c"]
    if has_order:
        line.append(f"{_text_key(roles['order_id'], kinds)} AS o")
    alias = {"order_date": "dt", "amount": "amount", "quantity": "quantity",
             "unit_price": "unit_price"}
    for role, column in typed_roles.items():
        typed = _typed(column, role, kinds[column], fmt, sample.decimal,
                       plan.file_format == "csv")
        line.append(f"{typed} AS {alias[role]}")
    # The other columns are hashed on the file's own columns; the typed role values are
    # added one step later, where their names cannot be taken for a column of the file.
    hashed, others = [], []
    contacts = [r for r in _CONTACT_ROLES if r in roles]
    for name in plan.names:
        if name == roles["customer_id"] or (has_order and name == roles["order_id"]):
            continue
        role = next((r for r, c in typed_roles.items() if c == name), None)
        if role is not None:
            hashed.append(alias[role] if role == "order_date" else f"{alias[role]} + 0.0")
        elif name not in roles.values():
            others.append(_hash_part(name, kinds[name], plan.file_format))
    # A contact column is compared as the general path types it (stripped, tokens missing).
    hashed += [f"k_{r}" for r in contacts]
    if others:
        line.append(f"hash({', '.join(others)}) AS others")
        hashed.append("others")
    numbers = [r for r in typed_roles if r != "order_date"]
    raw = {r: _ident(c) for r, c in typed_roles.items() if kinds[c] == "text"}
    for role, expr in raw.items():
        line.append(f"{expr} AS raw_{role}")
    # A contact column (e-mail, name, country) keeps each customer's last value in file
    # order among the lines the rules keep, as the general path's groupby().last() does:
    # each line's position goes with its value, and arg_max picks the latest at each grouping.
    for role in contacts:
        line.append(f"{_id_sql(_ident(roles[role]), kinds[roles[role]])} AS k_{role}")
    read = f"SELECT {', '.join(line)} FROM {plan.source}"
    if contacts:
        # Parquet numbers its lines itself (the file's place in the list, the line's in the
        # file); a CSV's lines are numbered by a table of the typed read (_ordered_lines).
        own = plan.file_format == "parquet" and not {"file_index", "file_row_number"} & {
            n.lower() for n in plan.names}  # a column of that name would hide DuckDB's
        read = (f"SELECT {', '.join(line)}, (CAST(file_index AS BIGINT) << 40) "
                f"+ file_row_number AS rn FROM {plan.source}") if own \
            else _ordered_lines(con, read)
    # Each line's state, made part of the group key so that every aggregate below is a plain
    # one (filtered aggregates cost several times more): two bits per date or number column
    # (0 read, 1 empty, 2 present but unread), then negative, then values DuckDB reads and
    # the general path does not (1_000 is 1000 to DuckDB) or that are infinite.
    shift = {r: 2 * i for i, r in enumerate(typed_roles)}
    parts = []
    for role, name in ((r, alias[r]) for r in typed_roles):
        unread = f"WHEN raw_{role} IS NULL THEN 1 ELSE 2" if role in raw else "ELSE 1"
        parts.append(f"((CASE WHEN {name} IS NOT NULL THEN 0 {unread} END) << {shift[role]})")
    amount = "amount" if "amount" in typed_roles else "(quantity * unit_price)"
    negative = f"{amount} < 0" + (" OR quantity < 0" if "quantity" in typed_roles else "")
    neg_bit, odd_bit = 1 << (2 * len(typed_roles)), 1 << (2 * len(typed_roles) + 1)
    # Ids typed per group: the raw values are the group key, typed once per group below.
    parts.append(f"(CASE WHEN {negative} THEN {neg_bit} ELSE 0 END)")
    # DuckDB reads 1_000 and +-1; the general path does not.
    odd = [f"(contains(raw_{r}, '_') OR contains(raw_{r}, '+-'))" for r in numbers if r in raw]
    if odd:
        parts.append(f"(CASE WHEN {' OR '.join(odd)} THEN {odd_bit} ELSE 0 END)")
    state = " + ".join(parts)
    key = "o" if has_order else "CAST(dt AS DATE)"
    aggregates = [
        "count(*) AS n", f"sum(abs({amount})) AS sa", "max(dt) AS maxa", "min(dt) AS mina",
        "bit_or(1::UBIGINT << (h & 63)) AS m1", "bit_or(1::UBIGINT << ((h >> 6) & 63)) AS m2",
        "list(h) AS hs",
    ]
    aggregates += [f"arg_max(k_{r}, q_{r}) AS v_{r}, max(q_{r}) AS p_{r}" for r in contacts]
    passed = "".join(f"v_{r}, p_{r}, " for r in contacts)
    # Infinite values are found per group, from sums of magnitudes, not per line.
    magnitudes = [f"mag_{r}" for r in numbers if r != "amount"]
    aggregates += [f"sum(abs({r})) AS mag_{r}" for r in numbers if r != "amount"]
    nonfinite = " OR ".join(f"coalesce(isinf({m}) OR isnan({m}), false)"
                            for m in ("sa", *magnitudes))
    ambiguous = plan.twin is not None and sample.date_ambiguous
    if ambiguous:
        aggregates.append("max(dayofmonth(dt)) AS top_day")
    flag = _flag_sql(typed_roles, shift, neg_bit)
    cid = _id_sql("c", kinds[roles["customer_id"]])
    # An integer order id needs no typing: its text never changes and never starts with
    # "C" (a cancellation), so the 2.5M casts to text of a 10M-line log are left out.
    typed_orders = has_order and kinds[roles["order_id"]] != "int"
    oid = _id_sql("okey", kinds[roles["order_id"]]) if typed_orders else "okey"
    # A line without an order id is no cancellation (and no order: see ``counted``).
    cancelled = ("coalesce(prefix(oid, 'C') OR prefix(oid, 'c'), false)" if typed_orders
                 else "false")
    changed = "okey IS DISTINCT FROM oid" if typed_orders else "false"
    top = "top_day, " if ambiguous else ""
    # Past the first grouping only the candidates' hash lists are read, once; carrying ten
    # million hashes through every later step would cost more than the grouping itself.
    distinct = ("CASE WHEN n <= 1 OR bit_count(m1) = n OR bit_count(m2) = n THEN 0 "
                "ELSE n - len(list_distinct(hs)) END")
    if merge:
        groups = f"""
        l2 AS (SELECT *, {cid} AS cid, {oid} AS oid FROM l1),
        typed AS (
            SELECT cid, oid, state, sum(n) AS n, sum(sa) AS sa, max(maxa) AS maxa,
                   min(mina) AS mina, {'max(top_day) AS top_day, ' if ambiguous else ''}
                   {''.join(f'sum({m}) AS {m}, ' for m in magnitudes)}
                   {''.join(f'arg_max(v_{r}, p_{r}) AS v_{r}, max(p_{r}) AS p_{r}, '
                            for r in contacts)}
                   sum(n) - len(list_distinct(flatten(list(hs)))) AS d, true AS changed
            FROM l2 GROUP BY cid, oid, state
        )"""
    else:
        # Customer ids are typed once per customer, after the last grouping (below), not
        # once per order: the groups keep their raw id ``c``.
        groups = f"""
        typed AS (
            SELECT c, state, n, sa, maxa, mina, {top}{''.join(m + ', ' for m in magnitudes)}
                   {passed}{distinct} AS d, oid, {changed} AS changed
            FROM (SELECT *, {oid} AS oid FROM l1)
        )"""
    # Groups that are not plain purchases get a category, which joins the customer in the
    # last grouping's key: the report's counts then come from the few such rows instead of
    # a dozen sums per customer (a second grouping set cost more than the sums).
    early = "coalesce(mina < TIMESTAMP '1000-01-01', false)"
    # Bit 2 (no customer id) and, past the merge, bit 4 for a changed customer id join the
    # category once the ids are typed.
    known_id, no_id = ("cid IS NOT NULL AND ",
                       "+ 2 * CAST(cid IS NULL AS INTEGER) ") if merge else ("", "")
    category = (
        f"CASE WHEN state = 0 AND NOT cancelled AND {known_id}NOT changed AND d = 0 "
        f"AND NOT {early} AND NOT ({nonfinite}) THEN NULL "
        f"ELSE state * 32 + CAST(cancelled AS INTEGER) "
        f"{no_id}+ 4 * CAST(changed AS INTEGER) "
        f"+ 8 * CAST({early} AS INTEGER) + 16 * CAST({nonfinite} AS INTEGER) END"
    )
    purchase = "flag = 0 AND NOT cancelled"
    # Frequency counts distinct orders, as count(DISTINCT order_id) on the general path: a
    # purchase without an order id counts for the dates and the amount but is no order, and
    # where one order's lines fell in several groups by their state (``split``, ``merge``:
    # a number column the amount does not use empty on one line, say) it counts once.
    counted = f"{purchase} AND oid IS NOT NULL"
    if split or merge:
        owner = "cid" if merge else "c"
        counted += (f" AND state = min(CASE WHEN {purchase} THEN state END) "
                    f"OVER (PARTITION BY {owner}, oid)")
    # Lines are grouped by customer and order. A group whose lines do not all share one
    # state (a bad or negative line inside an order) needs its lines apart by state; that
    # is rare, and grouping by a third key always would cost a quarter more, so such a
    # group is marked (state -1) and the query runs again with ``split``.
    if split:
        l1 = (f"l1 AS (SELECT c, {key} AS okey, {state} AS state, {', '.join(aggregates)} "
              "FROM line GROUP BY c, okey, state)")
    else:
        l1 = (f"l1 AS (SELECT c, okey, CASE WHEN bit_or(st) = bit_and(st) THEN bit_or(st) "
              f"ELSE -1 END AS state, {', '.join(aggregates)} "
              f"FROM (SELECT *, {key} AS okey, {state} AS st FROM line) GROUP BY c, okey)")
    positions = "".join(f", CASE WHEN k_{r} IS NOT NULL THEN rn END AS q_{r}" for r in contacts)
    kept = "CASE WHEN flag <= 1 THEN p_{0} END"
    last_contacts = "".join(f", arg_max(v_{r}, {kept.format(r)}) AS v_{r}, "
                            f"max({kept.format(r)}) AS p_{r}" for r in contacts)
    query = f"""
        WITH read AS ({read}),
        line AS (SELECT *, hash({', '.join(hashed)}) AS h{positions} FROM read),
        {l1},
        {groups},
        flagged AS (SELECT *, {flag} AS flag, {cancelled} AS cancelled FROM typed),
        final AS (
            SELECT *, CASE WHEN {'cid IS NULL OR ' if merge else ''}flag > 1 THEN 0 ELSE d END
                       AS dups,
                   {category} AS category, {counted} AS counted
            FROM flagged
        )
        SELECT {'cid AS customer_id' if merge else 'c'}, category,
               max(CASE WHEN {purchase} THEN maxa END) AS last_p,
               max(CASE WHEN flag <= 1 THEN maxa END) AS latest,
               min(CASE WHEN {purchase} THEN mina END) AS first_p,
               min(CASE WHEN flag <= 1 THEN mina END) AS first_k,
               CAST(sum(CASE WHEN counted THEN 1 ELSE 0 END) AS BIGINT) AS frequency,
               coalesce(sum(CASE WHEN {purchase} THEN sa WHEN flag <= 1 THEN -sa ELSE 0 END), 0)
                   AS monetary,
               CAST(sum(n) AS BIGINT) AS n, CAST(sum(dups) AS BIGINT) AS dups
               {', max(top_day) AS top_day' if ambiguous else ''}{last_contacts}
        FROM final GROUP BY {'cid' if merge else 'c'}, category
    """
    if not merge:
        # The raw ids typed; an id that typing changes (spaces around it, a spelling of
        # missing) marks its rows, and the scan runs again with ``merge``.
        query = f"""
        SELECT customer_id,
               CASE WHEN customer_id IS NULL THEN coalesce(category, 0) | 2
                    WHEN c IS DISTINCT FROM customer_id THEN coalesce(category, 0) | 4
                    ELSE category END AS category,
               last_p, latest, first_p, first_k, frequency, monetary, n,
               CASE WHEN customer_id IS NULL THEN 0 ELSE dups END AS dups
               {', top_day' if ambiguous else ''}{''.join(f', v_{r}, p_{r}' for r in contacts)}
        FROM (SELECT {cid} AS customer_id, * FROM ({query}))
        """
    # Rows come sorted by customer, so a customer whose groups fell in several categories
    # (few do) has neighbouring rows, combined below; the report's counts are the few rows
    # with a category.
    table = con.sql(query + " ORDER BY customer_id").to_arrow_table()
    flagged_rows = table.filter(pc.is_valid(table["category"])).select(["category", "n"])
    categories = flagged_rows.to_pandas().groupby("category", as_index=False, sort=True)["n"].sum()
    lines = int(pc.sum(table["n"]).as_py() or 0)
    known = _one_row_per_customer(table.filter(pc.is_valid(table["customer_id"])), ambiguous,
                                  contacts)
    if not split and (categories["category"] < 0).any():
        return _scan_once(con, plan, merge, split=True)
    totals = _category_totals(categories, typed_roles, shift, neg_bit, odd_bit)
    totals["n"] = int(lines or 0)
    if not merge and totals["changed"]:
        return _scan_once(con, plan, merge=True, split=split)
    totals["kept"] = totals["n"] - totals["missing_id"] - totals["bad_date"] - totals["bad_amount"]
    totals["dups"] = int(known["dups"].sum())
    totals["top_day"] = int(known["top_day"].max()) if ambiguous else 0
    for role in typed_roles:
        if totals[f"unparsed_{role}"] and not _dirty(con, plan, role, totals):
            return None
    customers = known.loc[known["latest"].notna()].reset_index(drop=True)
    customers["last_order"] = customers["last_p"].fillna(customers["latest"])
    customers["first_order"] = customers["first_p"].fillna(customers["first_k"])
    last = customers["last_order"].to_numpy(dtype="datetime64[D]")
    first = customers["first_order"].to_numpy(dtype="datetime64[D]")
    totals["decisive"] = int(np.count_nonzero(
        (last - last.astype("datetime64[M]")).astype(int) >= 12)
        + np.count_nonzero((first - first.astype("datetime64[M]")).astype(int) >= 12))
    totals["groups"] = 2 * len(customers)
    dup_customers = set(known.loc[known["dups"] > 0, "customer_id"])
    return _Scan(customers, totals, dup_customers)


def _ordered_lines(con: duckdb.DuckDBPyConnection, select: str) -> str:
    """``select`` (a read of the file) stored as a table in file order; a read of it with each
    line's position as ``rn``.

    DuckDB keeps insertion order (``preserve_insertion_order``, set in :func:`_connect`),
    so the table's rowid is the line's place in the file, while the read itself runs on every
    core. ``row_number() OVER ()`` gives the same numbers but runs the whole query on one
    thread after it: 6.9 -> 5.1 s on a 10M-line CSV with a Country column, for about 650 MB
    more held (spilled to the temporary folder past ``PERSONA_DUCKDB_MEMORY``). The scan's
    repeats (``split``, ``merge``) read the same table again.
    """
    name = "persona_lines_" + hashlib.sha1(select.encode()).hexdigest()[:16]
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS {select}")
    return f"SELECT *, rowid AS rn FROM {name}"


def _dirty(con: duckdb.DuckDBPyConnection, plan: _Plan, role: str, totals: dict) -> bool:
    """Split a column's values that did not parse as they are into missing tokens and
    unreadable values (a second read, filtered before any string work); ``False`` when a
    value reads once stripped of whitespace DuckDB keeps, which the scan counted as bad."""
    column = _ident(plan.sample.mapping[role])
    fmt, decimal = plan.sample.date_format, plan.sample.decimal
    parse = _parse_sql(column, role, fmt, decimal)
    extra = ""
    if role == "order_date" and plan.twin is not None:
        extra = f", count(*) FILTER ({_parse_sql('t', role, plan.twin)} IS NOT NULL)"
    query = f"""
        SELECT count(*) FILTER (t IS NULL),
               count(*) FILTER (t IS NOT NULL AND {_parse_sql('t', role, fmt, decimal)} IS NOT NULL)
               {extra}
        FROM (SELECT {_norm('v')} AS t
              FROM (SELECT {column} AS v FROM {plan.source}
                    WHERE {column} IS NOT NULL AND {parse} IS NULL))
    """
    try:
        found = con.execute(query).fetchall()[0]
    except duckdb.Error:
        return False
    tokens, recovered = int(found[0]), int(found[1])
    if recovered:
        return False
    totals[f"tokens_{role}"] = tokens
    if extra:
        totals["twin_only"] = int(found[2])
    return True


def _one_row_per_customer(rows: pa.Table, ambiguous: bool,
                          contacts: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per customer from the scan's rows, sorted by customer (one row per customer
    and category of the report). Most customers have one row; the few with several are
    neighbours, found by comparing each id with the next and combined with ``reduceat``
    over each run: no hash of every id, no second sort. A contact role's value ``v_ROLE``
    is the one of the run's row with the latest position ``p_ROLE``."""
    how = {"last_p": np.fmax, "latest": np.fmax, "first_p": np.fmin, "first_k": np.fmin,
           "frequency": np.add, "monetary": np.add, "n": np.add, "dups": np.add}
    if ambiguous:
        how["top_day"] = np.fmax
    ids = rows["customer_id"].combine_chunks()
    columns = {c: rows[c].to_numpy() for c in how}
    values = {r: rows[f"v_{r}"].combine_chunks() for r in contacts}
    if len(ids) > 1 and (same := pc.equal(ids[1:], ids[:-1]).to_numpy(
            zero_copy_only=False)).any():
        # Each run of equal ids starts where an id differs from the one before; fmax and
        # fmin skip a missing date (NaT) as pandas' max and min do.
        starts = np.flatnonzero(np.concatenate(([True], ~same)))
        ids = ids.take(pa.array(starts))
        columns = {c: ufunc.reduceat(columns[c], starts) for c, ufunc in how.items()}
        if contacts:
            run = np.cumsum(np.concatenate(([True], ~same))) - 1
            ends = np.append(starts[1:], len(run)) - 1
            for r in contacts:
                # Sorted by run, then by position (none first): each run's last row holds
                # its latest value.
                position = rows[f"p_{r}"].fill_null(-1).to_numpy()
                values[r] = values[r].take(pa.array(np.lexsort((position, run))[ends]))
    contact = {f"v_{r}": pd.Series(values[r], dtype="str") for r in contacts}
    return pd.DataFrame({"customer_id": pd.Series(ids, dtype="str"), **columns, **contact})


def _text_key(column: str, kinds: dict[str, str]) -> str:
    # Integer ids are grouped as integers and turned into text once per group; float ids
    # too, with -0.0 as 0.0 (both are "0" as text).
    return f"({_ident(column)} + 0.0)" if kinds[column] == "float" else _ident(column)


def _id_sql(expr: str, kind: str) -> str:
    """SQL for ``ingest._as_text`` of one id (or contact) value of the given kind."""
    if kind == "int":
        return f"CAST({expr} AS VARCHAR)"
    if kind == "float":
        # A whole float is its integer's text (17850.0 is "17850"), NaN is missing. Other
        # floats (12.5, inf) are text in pandas' own spelling, which DuckDB's does not
        # always match: the read stops (:data:`_FLOAT_ID_MARK`) and the general path reads
        # the file.
        return (f"(CASE WHEN {expr} IS NULL OR isnan({expr}) THEN NULL "
                f"WHEN floor({expr}) = {expr} AND abs({expr}) < 9223372036854775808.0 "
                f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) "
                f"ELSE error({_literal(_FLOAT_ID_MARK)}) END)")
    return _norm(expr)


def _flag_sql(typed_roles: dict[str, str], shift: dict[str, int], neg_bit: int) -> str:
    """A group's fate under the line rules: 0 purchase, 1 negative, 2 bad date, 3 bad amount."""
    date_bad = "(state & 3) <> 0"
    if "amount" in typed_roles:
        amount_bad = f"((state >> {shift['amount']}) & 3) <> 0"
    else:
        amount_bad = (f"((state >> {shift['quantity']}) & 3) <> 0 "
                      f"OR ((state >> {shift['unit_price']}) & 3) <> 0")
    return (f"CASE WHEN {date_bad} THEN 2 WHEN {amount_bad} THEN 3 "
            f"WHEN (state & {neg_bit}) <> 0 THEN 1 ELSE 0 END")


def _category_totals(
    categories: pd.DataFrame, typed_roles: dict[str, str], shift: dict[str, int],
    neg_bit: int, odd_bit: int,
) -> dict[str, int]:
    """The report's line counts from the categories of :func:`_scan_once`."""
    totals = dict.fromkeys(
        ("missing_id", "bad_date", "bad_amount", "odd", "cancelled", "negative", "returns",
         "changed", "early"), 0)
    for role in typed_roles:
        totals[f"empty_{role}"] = totals[f"unparsed_{role}"] = 0
    amount_roles = ["amount"] if "amount" in typed_roles else ["quantity", "unit_price"]
    for category, n in zip(categories["category"].astype("int64"), categories["n"]):
        n = int(n)
        state = category >> 5
        cancelled, no_id, changed, early, nonfinite = (
            bool(category >> b & 1) for b in range(5))
        for role in typed_roles:
            bits = state >> shift[role] & 3
            if bits == 1:
                totals[f"empty_{role}"] += n
            elif bits == 2:
                totals[f"unparsed_{role}"] += n
        totals["odd"] += n if state & odd_bit or nonfinite else 0
        totals["early"] += n if early else 0
        if no_id:
            totals["missing_id"] += n
            continue
        totals["changed"] += n if changed else 0
        if state & 3:
            totals["bad_date"] += n
        elif any(state >> shift[r] & 3 for r in amount_roles):
            totals["bad_amount"] += n
        else:
            negative = bool(state & neg_bit)
            totals["negative"] += n if negative else 0
            totals["cancelled"] += n if cancelled else 0
            totals["returns"] += n if negative or cancelled else 0
    return totals


# --------------------------------------------------------------------------- the result


def _prepared(
    plan: _Plan, scan: _Scan, options: PrepareOptions, digest: _Digest | None
) -> Prepared | None:
    from dashapp.pipeline import finish_transactions

    sample = plan.sample
    limits: Limits = options.limits
    counts = scan.counts
    if counts["early"] or counts["odd"]:
        return None
    if counts["n"] > limits.max_rows:
        raise ingest._too_many_rows(limits)
    roles = sample.mapping
    bad_counts = {}
    for role in ("order_date", *ingest._NUMBER_ROLES):
        if role not in roles:
            continue
        tokens = counts.get(f"tokens_{role}", 0)
        bad = counts[f"unparsed_{role}"] - tokens
        missing = counts[f"empty_{role}"] + tokens
        if bad and role != "order_date":
            # The general path reads some such numbers ("$1,234.50") and then parses the whole
            # column with pandas, not Arrow.
            return None
        if bad / max(counts["n"] - missing, 1) > limits.max_bad_share:
            return None
        if bad:
            bad_counts[roles[role]] = bad
        if role == "order_date" and plan.twin is not None:
            # A day above 12 settles the order; the general path decides it on a sample of
            # its own, which must see the same. Ambiguous: no value anywhere may settle it.
            if sample.date_ambiguous and (counts["top_day"] > 12 or counts.get("twin_only")):
                return None
            if not sample.date_ambiguous and counts["decisive"] < 0.05 * counts["groups"]:
                return None
    rules_counts = {
        "missing_customer_id": counts["missing_id"],
        "bad_order_date": counts["bad_date"],
        "bad_amount": counts["bad_amount"],
        "duplicates": counts["dups"],
        "returns": counts["returns"],
    }
    details = _details(plan, rules_counts, bad_counts, scan.dup_customers)
    if details is None:
        return None
    examples, bad_values = details
    rules = line_rules(sample.mapping, {**rules_counts, "cancelled": counts["cancelled"],
                                        "negative": counts["negative"]}, examples)
    customers = scan.customers
    if options.reference_date is None:
        reference = pd.Timestamp(customers["latest"].max()).normalize() + pd.Timedelta(days=1)
    else:
        reference = pd.Timestamp(options.reference_date).normalize()
    table = rfm_from_aggregates(customers, reference)
    ingested = _ingested(sample, counts["n"], bad_values)
    contacts = [r for r in _CONTACT_ROLES if r in sample.mapping]
    contact = None
    if contacts:
        contact = pd.DataFrame({"customer_id": customers["customer_id"].astype(object),
                                # typed in the scan; the general path's text dtype
                                **{r: customers[f"v_{r}"].astype("string") for r in contacts}})
    return finish_transactions(
        ingested, table, rules, counts["n"], counts["kept"],
        "" if digest is None else digest.value(), options.cleaning, contact,
    )


def _ingested(sample: Ingested, rows: int, bad_values: dict[str, list]) -> Ingested:
    """The sample's detection with the whole file's row count and unreadable values."""
    read = next(n for n in sample.notices if n.startswith("Read ") and " rows as a " in n)
    kept = [n for n in sample.notices if n != read and not (
        n.startswith("Column ") and "could not be read and are left empty" in n)]
    notices = [read.replace(read.split(" rows as a ")[0], f"Read {rows:,}", 1), *kept]
    for column, found in bad_values.items():
        notices.append(
            f"Column {column!r}: {len(found):,}{'+' if len(found) == _BAD_LIST_CAP else ''} "
            "value(s) could not be read and are left empty "
            f"(first in row {found[0][0]}); the cleaning report lists them."
        )
    return replace(sample, table=sample.table.head(0), bad_values=bad_values,
                   notices=tuple(notices))


# --------------------------------------------------------------------------- ordered details


def _batches(plan: _Plan):
    """The file's rows in order as pandas frames of raw values, as the general path reads them."""
    for path in plan.files:
        yield from _file_batches(plan, path)


def _file_batches(plan: _Plan, path: Path):
    if plan.file_format == "parquet":
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=_DETAIL_BATCH):
            yield pa.Table.from_batches([batch]).to_pandas()
        return
    names = plan.names
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=1, block_size=_DETAIL_BATCH * 16,
            encoding="latin1" if plan.encoding == "latin-1" else "utf8",
        ),
        parse_options=pacsv.ParseOptions(delimiter=plan.sample.delimiter,
                                          newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=True,
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch]).to_pandas()


def _details(
    plan: _Plan, rules: dict[str, int], bad_counts: dict[str, int], dup_customers: set
) -> tuple[dict, dict] | None:
    """Examples of each rule and the unreadable values, from a read in file order that stops
    as soon as it has them all; ``None`` if that read does not agree with the scan."""
    examples: dict[str, list] = {r: [] for r in
                                 ("missing_customer_id", "bad_order_date", "bad_amount",
                                  "duplicates", "returns")}
    bad_values: dict[str, list] = {c: [] for c in bad_counts}
    wanted = {r: min(n, EXAMPLES) for r, n in rules.items()}
    wanted_bad = {c: min(n, _BAD_LIST_CAP) for c, n in bad_counts.items()}

    def done_but_repeats() -> bool:
        return (all(len(examples[r]) >= wanted[r] for r in wanted if r != "duplicates")
                and all(len(bad_values[c]) >= wanted_bad[c] for c in wanted_bad))

    def done() -> bool:
        return done_but_repeats() and len(examples.get("duplicates", ())) >= wanted.get(
            "duplicates", 0)

    if done():
        return {r: () for r in examples}, {}
    sample = plan.sample
    roles = sample.mapping
    guess = ingest._DateGuess(sample.date_format, 1.0)
    candidates: list[pd.DataFrame] = []
    offset = 0
    for frame in _batches(plan):
        frame.columns = [str(c) for c in frame.columns]
        frame.index = pd.RangeIndex(offset, offset + len(frame))
        offset += len(frame)
        if dup_customers and done_but_repeats():
            # Only repeats are still wanted, and they are lines of the customers the scan
            # found repeated: the other lines are not typed at all (each line types on its
            # own), so rare repeats deep in a file do not cost a typed read of all of it.
            ids = ingest._as_text(frame[roles["customer_id"]])
            frame = frame.loc[ids.isin(dup_customers).to_numpy(dtype=bool, na_value=False)]
            if frame.empty:
                continue
        typed = frame.copy()
        masks = {}
        for role, column in roles.items():
            series = frame[column]
            if role in ingest._TEXT_ROLES:
                typed[column] = ingest._as_text(series)
            elif role == "order_date":
                values, _, bad = ingest._parse_dates(series, guess)
                typed[column] = values
                masks[column] = bad
            else:
                values, _, bad = ingest._parse_numbers(series, sample.decimal)
                typed[column] = values
                masks[column] = bad
        for column, bad in masks.items():
            if column in bad_values and len(bad_values[column]) < wanted_bad[column]:
                picked = np.flatnonzero(bad)[: wanted_bad[column] - len(bad_values[column])]
                bad_values[column].extend(
                    (int(frame.index[p]) + ingest._ROW_OFFSET, str(frame[column].iloc[p]))
                    for p in picked
                )
        ing = replace(sample, table=typed)
        lines = ing.canonical()
        keep = lines["customer_id"].notna().to_numpy(dtype=bool)
        found = {"missing_customer_id": ~keep}
        bad_date = lines["order_date"].isna().to_numpy() & keep
        found["bad_order_date"] = bad_date
        keep = keep & ~bad_date
        bad_amount = lines["amount"].isna().to_numpy() & keep
        found["bad_amount"] = bad_amount
        keep = keep & ~bad_amount
        negative = (lines["amount"] < 0).fillna(False).to_numpy(dtype=bool, copy=True)
        if "quantity" in lines:
            negative |= (lines["quantity"] < 0).fillna(False).to_numpy(dtype=bool)
        if "order_id" in lines:
            negative |= lines["order_id"].str.upper().str.startswith("C").fillna(
                False).to_numpy(dtype=bool)
        found["returns"] = negative & keep
        for rule, mask in found.items():
            if len(examples[rule]) < wanted[rule] and mask.any():
                examples[rule].extend(_examples(typed, mask)[: wanted[rule] - len(examples[rule])])
        if dup_customers and len(examples["duplicates"]) < wanted["duplicates"]:
            # Repeats are lines of the customers whose orders the scan found repeated.
            member = lines["customer_id"].isin(dup_customers).to_numpy(
                dtype=bool, na_value=False) & keep
            if member.any():
                candidates.append(typed.loc[member])
                pool = pd.concat(candidates)
                repeated = pool.duplicated(keep="first").to_numpy()
                examples["duplicates"] = list(_examples(pool, repeated)[: wanted["duplicates"]])
        if done():
            break
    if not done():
        return None
    return {r: tuple(v) for r, v in examples.items()}, bad_values
