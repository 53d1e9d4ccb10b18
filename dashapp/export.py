"""Customer tables as downloadable CSV and Excel files, safe to open in a spreadsheet."""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from collections.abc import Sequence

import pandas as pd

CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Excel, LibreOffice and Google Sheets start a formula (or DDE call) with any of these
# (OWASP "CSV Injection"); tab and carriage return can hide one behind whitespace.
DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

CONTACT_COLUMNS = ("customer_id", "name", "email", "segment", "persona", "rfm_segment")
_CONTACT_REQUIRED = ("customer_id", "segment", "persona")

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_MAX = 31
_FILENAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9._-]")
_FILENAME_PART_MAX = 64
_WIDTH_MIN, _WIDTH_MAX = 8, 60
# Widths come from a sample: a column's longest value rarely hides past the first rows,
# and measuring every cell of a large table costs more than the width is worth.
_WIDTH_SAMPLE = 1000


def _defuse(value: object) -> object:
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def _is_text(column: pd.Series) -> bool:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _is_text(pd.Series(dtype.categories))
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def _defuse_column(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        # Mapping the categories keeps the column categorical (or object when two collide).
        return column.map(_defuse)
    dangerous = column.map(
        lambda v: isinstance(v, str) and v.startswith(DANGEROUS_PREFIXES)
    ).astype(bool)
    if not dangerous.any():
        return column
    out = column.copy()
    out[dangerous] = "'" + column[dangerous]
    return out


def neutralize(frame: pd.DataFrame) -> pd.DataFrame:
    """Defuse spreadsheet formulas in text cells and column names, for CSV.

    Parameters
    ----------
    frame
        Any table, shape (n, m).

    Returns
    -------
    pd.DataFrame
        A new table of the same shape, dtypes and index: every text value (in an object,
        string or categorical-of-text column) and every column name that starts with one
        of :data:`DANGEROUS_PREFIXES` gets a leading ``'``, which spreadsheets read as
        "this is text" and hide. Numbers stay numbers (``-5.0`` is left alone, the text
        ``"-5"`` is prefixed) and missing values stay missing. ``frame`` is not modified.
    """
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if _is_text(column):
            out.isetitem(position, _defuse_column(column))
    return out.rename(columns=_defuse)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Neutralized CSV of ``frame``, without the index.

    Encoded as UTF-8 *with* a byte-order mark: Excel reads a CSV without one in the
    legacy code page and turns "Martín" into "MartÃ­n"; pandas, Python's ``csv``
    (``encoding="utf-8-sig"``) and Google Sheets skip the mark. Lines end in CRLF as
    RFC 4180 asks, which every spreadsheet and ``pandas.read_csv`` accept. Missing
    values are empty fields.

    Parameters
    ----------
    frame
        Any table, shape (n, m).

    Returns
    -------
    bytes
        One header line and n data lines.
    """
    text = neutralize(frame).to_csv(index=False, lineterminator="\r\n", na_rep="")
    return text.encode("utf-8-sig")


def safe_sheet_name(name: str, default: str = "customers") -> str:
    """A name Excel accepts for a worksheet.

    Characters ``[]:*?/\\`` and control characters become ``_``, leading and trailing
    apostrophes and spaces go, the name is cut to 31 UTF-16 units (Excel's count), and
    the reserved ``History`` or an empty result gives ``default``.
    """
    cleaned = _SHEET_FORBIDDEN.sub("_", str(name))
    cleaned = "".join("_" if unicodedata.category(c) == "Cc" else c for c in cleaned)
    cleaned = cleaned.strip(" '")
    while len(cleaned.encode("utf-16-le")) > 2 * _SHEET_MAX:
        cleaned = cleaned[:-1]
    cleaned = cleaned.rstrip(" '")
    if not cleaned or cleaned.lower() == "history":
        return default
    return cleaned


def _excel_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        # Excel has no time zones and xlsxwriter refuses aware values; the wall-clock time
        # is what the user saw in the app, so keep it rather than converting to UTC.
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            out.isetitem(position, column.dt.tz_localize(None))
    return out


def _has_times(frame: pd.DataFrame) -> bool:
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            values = column.dropna()
            if (values != values.dt.normalize()).any():
                return True
    return False


def _width(column: pd.Series, header: object, date_width: int) -> int:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        longest = date_width
    else:
        sample = column.head(_WIDTH_SAMPLE).dropna()
        longest = int(sample.astype(str).str.len().max()) if len(sample) else 0
    longest = max(longest, len(str(header)))
    # Two extra characters leave room for the bold header and the autofilter arrow.
    return min(max(longest + 2, _WIDTH_MIN), _WIDTH_MAX)


def to_excel_bytes(frame: pd.DataFrame, sheet_name: str = "customers") -> bytes:
    """An .xlsx workbook of ``frame`` on one sheet, without the index.

    Text is never prefixed with ``'`` here: the writer stores every string as a string
    cell (``strings_to_formulas``, ``strings_to_urls`` and ``strings_to_numbers`` are off),
    so ``=HYPERLINK(...)`` is inert text, ``http://...`` is not a link and ``00123`` keeps
    its zeros. The header row is bold, frozen and carries an autofilter; columns are sized
    to their content (8 to 60 characters). Datetimes are real Excel dates, shown as
    ``yyyy-mm-dd`` (with ``hh:mm:ss`` when any value has a time of day); time-zone-aware
    ones keep their wall-clock time.

    Parameters
    ----------
    frame
        Any table, shape (n, m).
    sheet_name
        Passed through :func:`safe_sheet_name`.

    Returns
    -------
    bytes
        The workbook: a header row and n data rows.
    """
    data = _excel_ready(frame)
    sheet = safe_sheet_name(sheet_name)
    has_times = _has_times(data)
    datetime_format = "yyyy-mm-dd hh:mm:ss" if has_times else "yyyy-mm-dd"
    buffer = io.BytesIO()
    with pd.ExcelWriter(
        buffer,
        engine="xlsxwriter",
        datetime_format=datetime_format,
        date_format="yyyy-mm-dd",
        engine_kwargs={"options": {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        }},
    ) as writer:
        # The header is written by hand: pandas' own header style adds borders and centring,
        # and writing it as plain strings keeps a hostile column name inert too.
        data.to_excel(writer, sheet_name=sheet, index=False, header=False, startrow=1)
        worksheet = writer.sheets[sheet]
        bold = writer.book.add_format({"bold": True})
        for position, name in enumerate(data.columns):
            worksheet.write_string(0, position, str(name), bold)
            column = data.iloc[:, position]
            worksheet.set_column(position, position, _width(column, name, len(datetime_format)))
        worksheet.freeze_panes(1, 0)
        if data.shape[1]:
            worksheet.autofilter(0, 0, len(data), data.shape[1] - 1)
    return buffer.getvalue()


def _id_order(ids: pd.Series) -> pd.Series:
    # Ids are text; when they are all numbers ("9999", "12346") sort them as numbers so
    # the list reads in the order people expect, not "12346" before "9999".
    numbers = pd.to_numeric(ids, errors="coerce")
    if numbers.notna().sum() == ids.notna().sum():
        return numbers
    return ids.astype("string")


def contact_list(customers: pd.DataFrame, segments: Sequence[int] | None) -> pd.DataFrame:
    """Who to contact in the chosen segments, for a campaign tool.

    Parameters
    ----------
    customers
        One row per customer, as :meth:`dashapp.pipeline.Result.customers` returns: at
        least ``customer_id``, ``segment`` and ``persona``; ``name``, ``email`` and
        ``rfm_segment`` are used when present.
    segments
        Segment numbers to keep; ``None`` or empty keeps every segment.

    Returns
    -------
    pd.DataFrame
        Shape (rows of those segments, 3 to 6): ``customer_id``, ``name``, ``email``,
        ``segment``, ``persona``, ``rfm_segment`` in that order, absent optional columns
        left out; sorted by segment then customer id, on a fresh 0..n-1 index.

    Raises
    ------
    KeyError
        When ``customer_id``, ``segment`` or ``persona`` is missing.
    """
    missing = [c for c in _CONTACT_REQUIRED if c not in customers.columns]
    if missing:
        raise KeyError(f"contact_list needs the columns {missing}")
    columns = [c for c in CONTACT_COLUMNS if c in customers.columns]
    rows = customers
    if segments:
        rows = rows[rows["segment"].isin(list(segments))]
    rows = rows[columns].reset_index(drop=True)
    keys = pd.DataFrame({"segment": rows["segment"], "id": _id_order(rows["customer_id"])})
    order = keys.sort_values(["segment", "id"], kind="stable", na_position="last").index
    return rows.take(order).reset_index(drop=True)


def _filename_part(text: str) -> str:
    # Accents fold to their base letter ("Martín" -> "Martin") rather than vanishing, and
    # spaces become dashes, before everything outside [A-Za-z0-9._-] is dropped.
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    dashed = _FILENAME_FORBIDDEN.sub("", re.sub(r"\s+", "-", ascii_text.strip()))
    return re.sub(r"-{2,}", "-", dashed)[:_FILENAME_PART_MAX].strip(".-")


def export_filename(base: str, kind: str, ext: str, today: dt.date | None = None) -> str:
    """A safe download name such as ``persona-engine_customers_2026-11-22.csv``.

    Parameters
    ----------
    base, kind
        The file's subject and what it holds; an empty ``kind`` is left out.
    ext
        The extension, with or without its dot.
    today
        The date in the name; the local date when ``None``.

    Returns
    -------
    str
        ``{base}_{kind}_{YYYY-MM-DD}.{ext}`` built only from ``[A-Za-z0-9._-]``: accents are
        folded, spaces become ``-``, other characters are dropped, and no part starts or
        ends with ``.`` or ``-`` (so never ``..`` or a hidden file). An empty ``base``
        becomes ``export``.
    """
    day = (today or dt.date.today()).isoformat()
    parts = [_filename_part(base) or "export", _filename_part(kind), day]
    stem = "_".join(p for p in parts if p)
    extension = _filename_part(ext.lstrip("."))
    return f"{stem}.{extension}" if extension else stem


__all__ = [
    "CSV_MIME", "XLSX_MIME", "DANGEROUS_PREFIXES", "CONTACT_COLUMNS", "neutralize",
    "to_csv_bytes", "to_excel_bytes", "safe_sheet_name", "contact_list", "export_filename",
]
