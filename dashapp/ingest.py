"""Ingest: bytes and a file name in, a typed table with its shape, column roles and encoding out."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dashapp.errors import (
    DuplicateColumnsError,
    EmptyFileError,
    HeaderOnlyError,
    MappingError,
    MissingRoleError,
    NonFiniteError,
    ParseError,
    RaggedRowsError,
    TooLargeError,
    UnsupportedFormatError,
    format_examples,
)
from dashapp.settings import Limits

Shape = Literal["transactions", "customers"]
TRANSACTIONS: Shape = "transactions"
CUSTOMERS: Shape = "customers"

#: Roles of a transaction log, in the order ``--map ROLE=COLUMN`` documents them.
TRANSACTION_ROLES = (
    "customer_id",
    "order_id",
    "order_date",
    "amount",
    "quantity",
    "unit_price",
    "email",
    "name",
    "country",
)
#: Roles of a customer table; its numeric attributes and categoricals are not roles.
CUSTOMER_ROLES = ("customer_id", "email", "name", "country")

#: Values that mean "no value" in a role column (compared case-insensitively, after stripping).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a"})
#: What the upload accepts, for the messages of :class:`UnsupportedFormatError`.
ACCEPTED_FORMATS = "CSV, TSV or TXT text, Excel .xlsx, Parquet or JSON"

_SHAPE_LABEL = {TRANSACTIONS: "transaction log", CUSTOMERS: "customer table"}
_TEXT_ROLES = ("customer_id", "order_id", "email", "name", "country")
_NUMBER_ROLES = ("amount", "quantity", "unit_price")
_ROLE_LABELS = {
    "customer_id": "the customer id",
    "order_id": "the order id",
    "order_date": "the order date",
    "amount": "the amount (or quantity and unit price)",
    "quantity": "the quantity",
    "unit_price": "the unit price",
    "email": "the e-mail address",
    "name": "the customer name",
    "country": "the country",
}
# Header row + 1: a data row's number as a spreadsheet shows it.
_ROW_OFFSET = 2
# Rows looked at to recognise dates, numbers and roles; enough to see a day above 12.
_SAMPLE = 2000
# Share of a sample that must parse for a column to be taken as dates or numbers.
_DETECT_SHARE = 0.9
# bad_values keeps at most this many (row, value) pairs per column: the cleaning report shows
# a few, and a million listed typos would only cost memory.
_BAD_LIST_CAP = 1000
# A text column with at most this many distinct values can describe a segment.
_MAX_CATEGORIES = 50
_HEAD_CHARS = 64 * 1024
_REPEAT_PROBE = 100_000
# Longest missing token: only values this short are lower-cased and looked up.
_TOKEN_CHARS = max(map(len, MISSING_TOKENS))
_SNIFF_LINES = 50

# Normalised names (lower case, alphanumerics only), best first. CUSTOMERNAME is the only
# customer key of the classic "sales_data_sample", so a customer's name may serve as the id.
_EXACT: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid", "customer", "custid", "customerno", "customernumber", "customernr",
        "customercode", "customerkey", "clientid", "client", "clientno", "clientnumber",
        "buyerid", "buyer", "userid", "memberid", "accountid", "shopperid", "kundennummer",
        "kunde", "customername", "clientname",
    ),
    "order_id": (
        "orderid", "ordernumber", "orderno", "ordernr", "order", "invoiceno", "invoice",
        "invoiceid", "invoicenumber", "invoicenr", "transactionid", "transaction",
        "transactionno", "transactionnumber", "txnid", "receiptid", "receiptno", "receipt",
        "basketid", "billno", "billnumber", "salesorder", "salesorderid",
    ),
    "order_date": (
        "orderdate", "invoicedate", "date", "orderdatetime", "purchasedate", "transactiondate",
        "transactiondatetime", "saledate", "salesdate", "datetime", "timestamp", "orderedat",
        "createdat", "purchasedat", "txndate", "billdate", "receiptdate", "day", "datum",
    ),
    "amount": (
        "amount", "sales", "sale", "revenue", "total", "totalamount", "totalprice", "value",
        "salesamount", "saleamount", "ordervalue", "ordertotal", "linetotal", "totalsales",
        "netamount", "grossamount", "spend", "spent", "monetary", "turnover", "subtotal",
        "umsatz", "betrag",
    ),
    "quantity": (
        "quantity", "qty", "quantityordered", "qtyordered", "units", "unitssold",
        "quantitysold", "pieces", "pcs", "items", "numitems", "itemcount", "menge",
    ),
    "unit_price": (
        "unitprice", "price", "priceeach", "priceperunit", "itemprice", "unitcost",
        "salesprice", "saleprice", "preis",
    ),
    "email": ("email", "emailaddress", "mail", "customeremail", "mailaddress"),
    "name": ("name", "customername", "clientname", "fullname", "contactname"),
    "country": ("country", "countryname", "countrycode", "nation", "land"),
}
# Second tier: the name contains one of these and none of the exclusions.
_CONTAINS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customer_id": (
        ("customer", "client", "cust"),
        ("mail", "phone", "address", "city", "country", "state", "zip", "postal", "type",
         "segment", "group", "since", "date", "age", "gender", "income", "score", "count",
         "status", "rating"),
    ),
    "order_id": (
        ("invoice", "order", "transaction", "receipt"),
        ("date", "time", "line", "qty", "quantity", "status", "value", "total", "amount",
         "price", "count"),
    ),
    "order_date": (("date", "timestamp", "datetime"), ("birth",)),
    "amount": (
        ("amount", "revenue", "sales", "total", "spend", "turnover"),
        ("qty", "quantity", "count", "unit", "each", "item", "discount", "tax", "ship"),
    ),
    "quantity": (("qty", "quantity"), ()),
    "unit_price": (("price",), ("total",)),
    "email": (("email", "mail"), ()),
    "country": (("country",), ()),
}
# Numbers that identify rather than measure; a customer table does not segment on them.
_NOT_ATTRIBUTES = ("phone", "zip", "postal", "postcode", "plz", "fax")

_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")
_YEAR_FIRST = tuple(f"%Y{s}%m{s}%d{t}" for s in "-/." for t in _TIMES[:3]) + (
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y%m%d",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
# (month first, day first) twins: a value whose first two parts are <= 12 fits both.
_DATE_TWINS = tuple(
    (f"%m{s}%d{s}{y}{t}", f"%d{s}%m{s}{y}{t}") for s in "/-." for y in ("%Y", "%y") for t in _TIMES
)
_DATE_FORMATS = _YEAR_FIRST + tuple(f for pair in _DATE_TWINS for f in pair)
_TWIN_OF = {a: b for a, b in _DATE_TWINS} | {b: a for a, b in _DATE_TWINS}
_DAY_FIRST = frozenset(b for _, b in _DATE_TWINS)

# Formats Arrow's strptime reads like pandas does (about 20 times faster on a big column);
# fractions of seconds and offsets stay with pandas.
_ARROW_DATE_FORMAT = re.compile(r"(%[YmdHMSyIpbB]|[-/.: ,T])+")

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_WHITESPACE = r"\s+"
_EXTENSION_DELIMITER = {"csv": ",", "tsv": "\t", "tab": "\t", "psv": "|"}
_BINARY_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an xz archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
#: Parquet key-value metadata entry holding what ingest detected about a stored upload.
RAW_METADATA_KEY = b"persona_engine.raw"


@dataclass(frozen=True)
class Ingested:
    """A table read from one file, with what was detected about it.

    ``table`` keeps the file's column names. Role columns are typed: ids and text roles
    are strings (missing = ``pd.NA``), ``order_date`` is ``datetime64``, ``amount``,
    ``quantity``, ``unit_price`` and a customer table's numeric attributes are ``float64``
    (``NaN`` where a value did not parse; those rows are listed in ``bad_values``).
    ``delimiter`` is ``r"\\s+"`` for whitespace-aligned text. ``id_synthesized`` says that
    the file had no customer id column, so a column of row numbers ("1", "2", ...) was added.
    """

    table: pd.DataFrame
    shape: Shape
    mapping: dict[str, str]
    encoding: str
    file_format: str
    delimiter: str | None = None
    decimal: str = "."
    date_format: str | None = None
    date_ambiguous: bool = False
    dayfirst: bool = False
    attributes: tuple[str, ...] = ()
    categoricals: tuple[str, ...] = ()
    bad_values: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    id_synthesized: bool = False

    def canonical(self) -> pd.DataFrame:
        """The role columns under their role names (plus ``amount`` derived from
        ``quantity`` x ``unit_price`` when the file has no amount), then a customer
        table's attributes and categoricals under their own names."""
        roles = TRANSACTION_ROLES if self.shape == TRANSACTIONS else CUSTOMER_ROLES
        columns: dict[str, pd.Series] = {}
        for role in roles:
            if role in self.mapping:
                columns[role] = self.table[self.mapping[role]]
            elif role == "amount" and {"quantity", "unit_price"} <= self.mapping.keys():
                columns[role] = (
                    self.table[self.mapping["quantity"]] * self.table[self.mapping["unit_price"]]
                )
        if self.shape == CUSTOMERS:
            for name in (*self.attributes, *self.categoricals):
                columns.setdefault(name, self.table[name])
        return pd.DataFrame(columns, index=self.table.index)


@dataclass
class _Raw:
    """A file read into a frame of raw values, before roles and types."""

    frame: pd.DataFrame
    file_format: str
    encoding: str
    delimiter: str | None = None
    decimal: str = "."
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _DateGuess:
    """The date format that fits a sample best, and how well."""

    fmt: str | None
    share: float
    ambiguous: bool = False
    dayfirst: bool = False
    example: str | None = None
    native: bool = False


def read_table(
    data: bytes,
    filename: str,
    *,
    mapping: dict[str, str] | None = None,
    shape: Shape | None = None,
    dayfirst: bool | None = None,
    limits: Limits | None = None,
) -> Ingested:
    """Read one uploaded or local file.

    Parameters
    ----------
    data
        The file's bytes; the format is decided from them, not from the name.
    filename
        The file's name, for messages and to break ties between text formats.
    mapping
        ``role -> column`` entries that override detection; a value of ``None`` or ``""``
        leaves that role unmapped.
    shape
        ``"transactions"`` or ``"customers"``; detected when ``None``.
    dayfirst
        How to read dates that fit both month-first and day-first (``None``: month first).
        Dates whose content decides the order are read as the content says.
    limits
        Caps on bytes, rows, columns and the share of unparsable values.

    Returns
    -------
    Ingested
        The typed table with its shape, role mapping, encoding and notices.

    Raises
    ------
    IngestError
        Empty, header-only, unsupported, ragged, duplicate-column or too large files.
    MappingError
        An unknown role, or a mapping that names a column not in the file.
    MissingRoleError
        A required role has no column.
    ParseError
        Too many values of a date or number column do not parse.
    NonFiniteError
        A number column holds infinity.
    """
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        raise TooLargeError(
            f"{filename!r} is {len(data) / 1_048_576:.1f} MB; the limit is "
            f"{limits.max_bytes / 1_048_576:.0f} MB. Upload a smaller extract, or raise the "
            "limit (PERSONA_MAX_UPLOAD_MB)."
        )
    if not data or data.isspace():
        raise EmptyFileError(_empty_message(filename))
    raw = _read_raw(data, filename, limits)
    return _build(raw, mapping or {}, shape, dayfirst, limits)


# --------------------------------------------------------------------------- formats


def _empty_message(filename: str) -> str:
    return (
        f"{filename!r} is empty. Choose a file with a header row (the column names) "
        "and at least one data row."
    )


def _unsupported(filename: str, what: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"{filename!r} is {what}, which cannot be read. Upload {ACCEPTED_FORMATS}."
    )


def _read_raw(data: bytes, filename: str, limits: Limits) -> _Raw:
    if data.startswith(b"PAR1"):
        return _read_parquet(data, filename, limits)
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _read_zip(data, filename, limits)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedFormatError(
            f"{filename!r} is an old Excel .xls workbook (or another old Office file), which "
            f"cannot be read: save it as .xlsx or CSV and upload that. Accepted: "
            f"{ACCEPTED_FORMATS}."
        )
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            raise _unsupported(filename, what)
    return _read_text(data, filename, limits)


def _read_zip(data: bytes, filename: str, limits: Limits) -> _Raw:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        raise _unsupported(filename, "a damaged zip archive") from None
    if any(n.startswith("xl/") for n in names):
        return _read_xlsx(data, filename, limits)
    if "mimetype" in names and any(n == "content.xml" for n in names):
        raise UnsupportedFormatError(
            f"{filename!r} is an OpenDocument file (.ods), which cannot be read: save it as "
            f".xlsx or CSV and upload that. Accepted: {ACCEPTED_FORMATS}."
        )
    kind = "a Word document" if any(n.startswith("word/") for n in names) else "a zip archive"
    raise _unsupported(filename, kind)


def _decode(data: bytes, notices: list[str]) -> tuple[str, str, bytes]:
    """The text, the encoding's name, and UTF-8 bytes for the parser.

    The rule: a BOM decides (UTF-8 or UTF-16); without one UTF-8 if the bytes are valid
    UTF-8, else Windows-1252 if every byte is defined there (Python's cp1252 leaves 0x81,
    0x8D, 0x8F, 0x90 and 0x9D undefined, and a file holding one of them is not cp1252),
    else ISO-8859-1, which maps every byte and so never fails.
    """
    if data.startswith(codecs.BOM_UTF8):
        body = data[len(codecs.BOM_UTF8):]
        try:
            return body.decode("utf-8"), "utf-8-sig", body
        except UnicodeDecodeError:
            text = body.decode("utf-8", errors="replace")
            notices.append("Some bytes are not valid UTF-8 despite the BOM; they show as '\ufffd'.")
            return text, "utf-8-sig", text.encode("utf-8")
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        text = data.decode("utf-16", errors="replace")
        notices.append("The file is UTF-16 text (it starts with a byte-order mark).")
        return text, "utf-16", text.encode("utf-8")
    try:
        return data.decode("utf-8"), "utf-8", data
    except UnicodeDecodeError:
        pass
    try:
        text, encoding, label = data.decode("cp1252"), "cp1252", "Windows-1252 (cp1252)"
    except UnicodeDecodeError:
        text, encoding, label = data.decode("iso-8859-1"), "iso-8859-1", "ISO-8859-1 (Latin-1)"
    notices.append(f"The file is not valid UTF-8; it was read as {label}.")
    return text, encoding, text.encode("utf-8")


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13, 26))
    return control > max(4, len(head) // 20)


def _read_text(data: bytes, filename: str, limits: Limits) -> _Raw:
    bom = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not bom and _looks_binary(data):
        raise _unsupported(filename, "binary content (not text)")
    notices: list[str] = []
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not bom and data.isascii() and extension not in ("json", "jsonl", "ndjson"):
        # ASCII is valid UTF-8: only the head is needed as text, unless it is JSON.
        first = re.search(rb"\S", data)
        if first is not None and data[first.start():first.start() + 1] not in (b"[", b"{"):
            head = data[:_HEAD_CHARS].decode("ascii")
            return _read_delimited(data, head, filename, extension, "utf-8", limits, notices)
    text, encoding, payload = _decode(data, notices)
    if not text or text.isspace():
        raise EmptyFileError(_empty_message(filename))
    first = re.search(r"\S", text)
    start = first.group() if first else ""
    if start in "[{" or extension in ("json", "jsonl", "ndjson"):
        frame = _read_json(text, filename, limits, strict=start == "{")
        if frame is not None:
            return _Raw(frame, "json", encoding, notices=notices)
    head = text[:_HEAD_CHARS]
    del text
    return _read_delimited(payload, head, filename, extension, encoding, limits, notices)


def _sniff_delimiter(head: str, extension: str) -> str:
    """The delimiter whose field count on the sampled lines agrees most with the header's."""
    lines = [line for line in head.splitlines() if line.strip()]
    if len(head) == _HEAD_CHARS and len(lines) > 1:
        lines = lines[:-1]
    lines = lines[: _SNIFF_LINES + 1]
    sample = "\n".join(lines)
    preferred = _EXTENSION_DELIMITER.get(extension)
    best: tuple | None = None
    for order, sep in enumerate(_DELIMITERS):
        records = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        body = records[1:] or records
        agree = sum(len(r) == width for r in body) / len(body)
        if agree < 0.5:
            continue
        score = (agree, width, sep == preferred, -order)
        if best is None or score > best[0]:
            best = (score, sep)
    if best is not None:
        return best[1]
    widths = [len(line.split()) for line in lines]
    if widths and widths[0] >= 2 and sum(w == widths[0] for w in widths) / len(widths) >= 0.8:
        return _WHITESPACE
    return preferred or ","


def _header_fields(head: str, sep: str) -> list[str]:
    if sep == _WHITESPACE:
        for line in head.splitlines():
            if line.strip():
                return line.split()
        return []
    for record in csv.reader(io.StringIO(head), delimiter=sep):
        if any(cell.strip() for cell in record):
            return record
    return []


def _column_names(header: list[object], limits: Limits) -> list[str]:
    """Header cells stripped, empty ones named ``Unnamed: i``; duplicates and caps refused."""
    if len(header) > limits.max_columns:
        raise TooLargeError(
            f"The file has {len(header)} columns; the limit is {limits.max_columns}. Remove "
            "the columns you do not need, or raise PERSONA_MAX_COLUMNS."
        )
    names = []
    for i, cell in enumerate(header):
        name = "" if cell is None else str(cell).strip()
        names.append(name or f"Unnamed: {i}")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DuplicateColumnsError(
                f"The column name {name!r} appears twice (columns {seen[name] + 1} and "
                f"{i + 1}). Rename one of them in the file, then upload it again.",
                column=name,
            )
        seen[name] = i
    return names


def _drop_unnamed_empty(frame: pd.DataFrame, notices: list[str]) -> pd.DataFrame:
    empty = [c for c in frame.columns if c.startswith("Unnamed: ") and frame[c].isna().all()]
    if empty:
        notices.append(
            f"Ignored {len(empty)} column(s) without a name and without values "
            "(often a delimiter at the end of each line)."
        )
        frame = frame.drop(columns=empty)
    return frame


def _read_delimited(
    payload: bytes,
    head: str,
    filename: str,
    extension: str,
    encoding: str,
    limits: Limits,
    notices: list[str],
) -> _Raw:
    sep = _sniff_delimiter(head, extension)
    names = _column_names(_header_fields(head, sep), limits)
    label = "runs of spaces" if sep == _WHITESPACE else _DELIMITERS.get(sep, repr(sep))
    notices.append(f"Read as delimited text: columns separated by {label}.")
    options = dict(
        sep=sep, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=True
    )
    # A newline count over-estimates rows (blank lines, quoted newlines), so it only decides
    # whether an exact count, bounded by nrows, is worth making before the full parse.
    if payload.count(b"\n") > limits.max_rows + 1:
        bounded = _read_c(payload, filename, sep, options, nrows=limits.max_rows + 2)
        if len(bounded) > limits.max_rows:
            raise _too_many_rows(limits)
    frame = None
    if sep != _WHITESPACE:
        try:
            frame = pd.read_csv(io.BytesIO(payload), engine="pyarrow", header=0, **options)
        except (pd.errors.ParserError, ValueError, pa.ArrowException) as err:
            # Arrow refuses short rows and quoted newlines; the C parser below takes both,
            # padding a short row's missing trailing fields (a common export quirk).
            found = re.search(r"Expected (\d+) columns, got (\d+)", str(err))
            if found and int(found.group(2)) < int(found.group(1)):
                notices.append(
                    "Some rows have fewer fields than the header; their missing fields "
                    "are read as empty."
                )
        if frame is not None and len(frame.columns) != len(names):
            frame = None
    if frame is None:
        frame = _read_c(payload, filename, sep, options)
    frame.columns = names
    if frame.empty:
        raise HeaderOnlyError(
            f"{filename!r} has a header ({_list_columns(names)}) but no data rows. "
            "Export the data rows too, then upload the file again."
        )
    if len(frame) > limits.max_rows:
        raise _too_many_rows(limits)
    frame = _drop_unnamed_empty(frame, notices)
    decimal = "."
    if sep == ";":
        decimal = _sniff_decimal(frame)
        if decimal == ",":
            notices.append(
                "Numbers use a decimal comma (the delimiter is ';'): '1.234,56' is read "
                "as 1234.56."
            )
    return _Raw(frame, "csv", encoding, sep, decimal, notices)


def _read_c(
    payload: bytes, filename: str, sep: str, options: dict, nrows: int | None = None
) -> pd.DataFrame:
    """The C parser, which pads short rows; a long row is an error naming its line.

    The header is read as a data row so that the parser's field count is the header's
    (``index_col=False`` would silently cut a long first data row instead).
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(payload), engine="c", header=None, nrows=nrows, on_bad_lines="error",
            **options,
        )
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if not found:
            raise _unsupported(filename, f"text that cannot be split into columns ({err})")
        expected, line, saw = (int(g) for g in found.groups())
        separator = "spaces" if sep == _WHITESPACE else _DELIMITERS.get(sep, repr(sep))
        raise RaggedRowsError(
            f"Line {line} of {filename!r} has {saw} fields but the header has {expected}: "
            f"a value probably contains the delimiter ({separator}) without quotes. Put that "
            "value in double quotes or remove the extra field, then upload the file again.",
            rows=(line,),
        ) from None
    return frame.iloc[1:].reset_index(drop=True)


def _too_many_rows(limits: Limits) -> TooLargeError:
    return TooLargeError(
        f"The file has more than {limits.max_rows:,} data rows, the limit. Upload a smaller "
        "extract (e.g. one period), or raise PERSONA_MAX_ROWS."
    )


def _sniff_decimal(frame: pd.DataFrame) -> str:
    """A decimal comma unless the numbers seen use a dot and none uses a comma."""
    comma = dot = 0
    for column in frame.columns:
        values = frame[column].head(200).dropna().astype(str).str.strip()
        comma += int(values.str.fullmatch(r"[-+]?[\d.]*\d,\d+").sum())
        dot += int(values.str.fullmatch(r"[-+]?\d+\.\d+").sum())
    return "." if comma == 0 and dot > 0 else ","


def _read_json(text: str, filename: str, limits: Limits, strict: bool) -> pd.DataFrame | None:
    """Records as a frame; ``None`` when the text is not JSON and ``strict`` is false."""
    body = text.strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as first:
        lines = [line for line in body.splitlines() if line.strip()]
        try:
            obj = json.loads("[" + ",".join(lines) + "]")
        except json.JSONDecodeError:
            if not strict:
                return None
            raise UnsupportedFormatError(
                f"{filename!r} looks like JSON but is not valid JSON ({first.msg} at line "
                f"{first.lineno}). Fix it, or upload {ACCEPTED_FORMATS}."
            ) from None
    records = _json_records(obj)
    if records is None:
        raise UnsupportedFormatError(
            f"{filename!r} is JSON but not a list of records. Upload a list of objects such "
            'as [{"customer_id": "A1", "amount": 12.5}, ...], JSON lines, or another format: '
            f"{ACCEPTED_FORMATS}."
        )
    if isinstance(records, pd.DataFrame):
        frame = records
    else:
        if not records:
            raise EmptyFileError(_empty_message(filename))
        if len(records) > limits.max_rows:
            raise _too_many_rows(limits)
        frame = pd.DataFrame(records, dtype=object)
    if frame.empty:
        raise EmptyFileError(_empty_message(filename))
    frame.columns = _column_names(list(frame.columns), limits)
    return _tidy_objects(frame.reset_index(drop=True))


def _json_records(obj: object) -> list | pd.DataFrame | None:
    if isinstance(obj, dict):
        for key in ("data", "records", "rows", "items", "results"):
            if isinstance(obj.get(key), list):
                return _json_records(obj[key])
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) == 1 and len(obj) > 1 and all(isinstance(v, dict) for v in lists[0]):
            return lists[0]
        if lists and len(lists) == len(obj) and len({len(v) for v in lists}) == 1:
            return pd.DataFrame(obj, dtype=object)
        return [obj]
    if isinstance(obj, list):
        if all(isinstance(v, dict) for v in obj):
            return obj
        if obj and all(isinstance(v, list) for v in obj) and all(
            isinstance(c, str) for c in obj[0]
        ):
            return [dict(zip(obj[0], row)) for row in obj[1:]]
    return None


def _tidy_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Give object columns (from Excel or JSON) a dtype when all their values share a type.

    Whole numbers with gaps become ``Int64`` rather than ``float64`` so that ids of 16 and
    more digits stay exact.
    """
    for column in frame.columns:
        series = frame[column]
        if not _is_object(series.dtype):
            continue
        values = series.dropna()
        kinds = set(map(type, values))
        try:
            if not kinds or kinds <= {str}:
                frame[column] = series.astype("str")
            elif kinds <= {bool}:
                frame[column] = series.astype("boolean")
            elif kinds <= {int}:
                frame[column] = series.astype("Int64" if len(values) < len(series) else "int64")
            elif kinds <= {int, float}:
                frame[column] = series.astype("float64")
            elif all(issubclass(k, datetime) for k in kinds):
                frame[column] = pd.to_datetime(series)
        except (OverflowError, TypeError, ValueError):
            continue
    return frame


def _read_xlsx(data: bytes, filename: str, limits: Limits) -> _Raw:
    # data_only=True returns the value Excel cached for a formula, never the formula text;
    # a workbook saved by a program that computes nothing (openpyxl) has None there.
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a broken workbook
        raise _unsupported(filename, f"an Excel workbook that cannot be opened ({err})") from None
    notices: list[str] = []
    try:
        header, rows, title = None, [], None
        for sheet in book.worksheets:
            header, rows = _sheet_rows(sheet, limits)
            if header is not None:
                title = sheet.title
                break
    finally:
        book.close()
    if header is None:
        raise EmptyFileError(_empty_message(filename))
    if len(book.sheetnames) > 1:
        notices.append(f"Read the sheet {title!r} (the workbook has {len(book.sheetnames)}).")
    width = max([len(header)] + [len(r) for r in rows])
    names = _column_names(list(header) + [None] * (width - len(header)), limits)
    if not rows:
        raise HeaderOnlyError(
            f"{filename!r} has a header ({_list_columns(names)}) but no data rows. "
            "Add the data rows, then upload the file again."
        )
    padded = [tuple(r) + (None,) * (width - len(r)) for r in rows]
    frame = pd.DataFrame(padded, columns=names, dtype=object)
    frame = _drop_unnamed_empty(_tidy_objects(frame), notices)
    return _Raw(frame, "xlsx", "xlsx", notices=notices)


def _sheet_rows(sheet, limits: Limits) -> tuple[tuple | None, list[tuple]]:
    """The first non-empty row as header and the non-empty rows after it, trailing cells cut."""
    header, rows = None, []
    for row in sheet.iter_rows(values_only=True):
        cells = list(row)
        while cells and (cells[-1] is None or cells[-1] == ""):
            cells.pop()
        if not cells:
            continue
        if header is None:
            header = tuple(cells)
            if len(header) > limits.max_columns:
                _column_names(list(header), limits)
            continue
        rows.append(tuple(cells))
        if len(rows) > limits.max_rows:
            raise _too_many_rows(limits)
    return header, rows


def _read_parquet(data: bytes, filename: str, limits: Limits) -> _Raw:
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
    except (pa.ArrowException, OSError) as err:
        raise _unsupported(filename, f"a Parquet file that cannot be read ({err})") from None
    names = [n for n in parquet.schema_arrow.names if not n.startswith("__index_level_")]
    if not names:
        raise EmptyFileError(_empty_message(filename))
    _column_names(names, limits)
    if meta.num_rows > limits.max_rows:
        raise _too_many_rows(limits)
    frame = parquet.read().to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    frame.columns = _column_names(list(frame.columns), limits)
    if frame.empty:
        raise HeaderOnlyError(
            f"{filename!r} has columns ({_list_columns(list(frame.columns))}) but no rows. "
            "Write the data rows too, then upload the file again."
        )
    detected = _stored_reading(parquet.schema_arrow.metadata)
    if detected is None:
        return _Raw(frame.reset_index(drop=True), "parquet", "parquet")
    return _Raw(frame.reset_index(drop=True), **detected)


def _stored_reading(metadata: dict[bytes, bytes] | None) -> dict | None:
    """What ingest detected about an upload stored as Parquet (``dashapp.datasets`` writes
    it under RAW_METADATA_KEY), so that the stored file reads exactly as the original did.

    Anything malformed is ignored: the file is then read as the plain Parquet it is.
    """
    found = (metadata or {}).get(RAW_METADATA_KEY)
    try:
        entry = json.loads(found) if found else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("version") != 1:
        return None
    fields = {"file_format": entry.get("file_format"), "encoding": entry.get("encoding"),
              "delimiter": entry.get("delimiter"), "decimal": entry.get("decimal"),
              "notices": entry.get("notices")}
    if not (isinstance(fields["file_format"], str) and isinstance(fields["encoding"], str)
            and isinstance(fields["delimiter"], (str, type(None)))
            and fields["decimal"] in (".", ",")
            and isinstance(fields["notices"], list)
            and all(isinstance(n, str) for n in fields["notices"])):
        return None
    return fields


# --------------------------------------------------------------------------- values


def _list_columns(columns: list[str], limit: int = 40) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    more = len(columns) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _is_object(dtype: object) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _scalar_text(value: object) -> object:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if np.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def _as_text(series: pd.Series) -> pd.Series:
    """Values as stripped strings (``string`` dtype); missing tokens become ``pd.NA``.

    Numbers lose no digits and whole floats lose their ``.0`` (12346.0 -> "12346").
    """
    dtype = series.dtype
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**63)
        whole = pd.Series(np.where(integral, values, 0).astype(np.int64), index=series.index)
        text = series.astype("string").where(~integral, whole.astype("string"))
    elif pd.api.types.is_string_dtype(dtype) and not _is_object(dtype):
        text = series.astype("string")
    elif _is_object(dtype):
        text = series.map(_scalar_text, na_action="ignore").astype("string")
    else:
        text = series.astype("string")
    text = text.str.strip()
    short = (text.str.len() <= _TOKEN_CHARS).to_numpy(dtype=bool, na_value=False)
    missing = np.zeros(len(text), dtype=bool)
    if short.any():
        missing[short] = text[short].str.lower().isin(MISSING_TOKENS).to_numpy(dtype=bool)
    return text.mask(missing) if missing.any() else text


def _spread(series: pd.Series, size: int = _SAMPLE) -> pd.Series:
    """Up to ``size`` non-missing raw values, spread over the whole column."""
    if len(series) > 4 * size:
        picked = series.iloc[np.linspace(0, len(series) - 1, 4 * size).astype(np.int64)]
        values = picked.dropna()
        if len(values) < size // 4:
            values = series.dropna()
    else:
        values = series.dropna()
    if len(values) > size:
        values = values.iloc[np.linspace(0, len(values) - 1, size).astype(np.int64)]
    return values


def _text_sample(series: pd.Series) -> pd.Series:
    return _as_text(_spread(series)).dropna()


def _is_number_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _clean_number_text(text: pd.Series, decimal: str) -> pd.Series:
    """Strip currency, spaces and grouping so that ``pd.to_numeric`` can read the rest."""
    text = text.str.replace("[\\s\u00a0\u202f'$€£¥]", "", regex=True)
    text = text.str.replace(r"(?i)^(usd|eur|gbp|jpy|chf)|(usd|eur|gbp|jpy|chf)$", "", regex=True)
    negative = text.str.fullmatch(r"\(.+\)").fillna(False).astype(bool)
    text = text.where(~negative, "-" + text.str.slice(1, -1))
    if decimal == ",":
        grouped = text.str.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+(,\d*)?").fillna(False).astype(bool)
        text = text.where(~grouped, text.str.replace(".", "", regex=False))
        return text.str.replace(",", ".", regex=False)
    grouped = text.str.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?").fillna(False).astype(bool)
    return text.where(~grouped, text.str.replace(",", "", regex=False))


def _parse_numbers(series: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """``float64`` values, the missing mask and the mask of values that did not parse."""
    if _is_number_dtype(series):
        values = series.astype("float64")
        missing = values.isna().to_numpy()
        return values, missing, np.zeros(len(series), dtype=bool)
    text = _as_text(series)
    missing = text.isna().to_numpy()
    direct = text
    if decimal == ",":
        # 1.234 means 1234 with a decimal comma, so only separator-free values go direct.
        direct = text.mask(text.str.contains(r"[.,]", regex=True).fillna(False).astype(bool))
    values = _arrow_floats(direct)
    if values is None:
        values = pd.to_numeric(direct, errors="coerce").astype("float64")
    failed = values.isna().to_numpy() & ~missing
    if failed.any():
        fixed = pd.to_numeric(_clean_number_text(text[failed], decimal), errors="coerce")
        values[failed] = fixed.astype("float64").to_numpy()
    bad = values.isna().to_numpy() & ~missing
    return values, missing, bad


def _arrow_floats(text: pd.Series) -> pd.Series | None:
    """Arrow's strict cast, many times faster than ``pd.to_numeric``; ``None`` if any value
    is not a plain number (then the slower, forgiving path runs)."""
    try:
        cast = pc.cast(pa.array(text, from_pandas=True), pa.float64())
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return pd.Series(cast.to_numpy(zero_copy_only=False), index=text.index, dtype="float64")


def _number_share(sample: pd.Series, decimal: str) -> float:
    if _is_number_dtype(sample):
        return 1.0
    values, missing, bad = _parse_numbers(sample, decimal)
    present = int((~missing).sum())
    return 0.0 if present == 0 else 1 - bad.sum() / present


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    if fmt == "%Y%m%d":
        text = text.where(text.str.fullmatch(r"\d{8}").fillna(False).astype(bool))
    if _ARROW_DATE_FORMAT.fullmatch(fmt):
        try:
            parsed = pc.strptime(
                pa.array(text, from_pandas=True), format=fmt, unit="us", error_is_null=True
            )
        except (pa.ArrowException, TypeError, ValueError):
            pass
        else:
            values = pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index)
            # Arrow's %Y also takes a two-digit year ("03" -> year 3), which pandas refuses.
            values = values.where(values.dt.year >= 1000)
            # Arrow also rolls impossible dates over (02/30/2023 -> 2023-03-02). Such a date
            # lands on day 1 to 3 of the next month, so only those rows are parsed again,
            # strictly, by pandas.
            suspect = (values.dt.day <= 3).fillna(False).to_numpy(dtype=bool)
            if suspect.any():
                values[suspect] = pd.to_datetime(text[suspect], format=fmt, errors="coerce")
            return values
    if "%z" in fmt:
        # Offsets may differ row to row; UTC is the one clock they all convert to.
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        return parsed.dt.tz_convert(None)
    return pd.to_datetime(text, format=fmt, errors="coerce")


def _guess_date_format(sample: pd.Series, dayfirst: bool | None) -> _DateGuess:
    """The format that parses most of ``sample`` (stripped strings, none missing)."""
    if sample.empty:
        return _DateGuess(None, 0.0)
    probe = sample.iloc[:20]
    counts: dict[str, int] = {}
    for fmt in _DATE_FORMATS:
        if _to_datetime(probe, fmt).notna().mean() < 0.5:
            continue
        parsed = _to_datetime(sample, fmt)
        plausible = parsed.notna() & parsed.dt.year.between(1900, 2100)
        counts[fmt] = int(plausible.sum())
    if not counts:
        return _DateGuess(None, 0.0)
    best = max(counts.values())
    winners = [f for f in _DATE_FORMATS if counts.get(f) == best]
    fmt = winners[0]
    ambiguous = fmt in _TWIN_OF and _TWIN_OF[fmt] in winners
    if ambiguous:
        month_first = fmt if fmt not in _DAY_FIRST else _TWIN_OF[fmt]
        fmt = _TWIN_OF[month_first] if dayfirst else month_first
    return _DateGuess(
        fmt, best / len(sample), ambiguous, fmt in _DAY_FIRST, str(sample.iloc[0])
    )


def _is_native_date(value: object) -> bool:
    return isinstance(value, (datetime, date))


def _date_guess(series: pd.Series, dayfirst: bool | None) -> _DateGuess:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _DateGuess(None, 1.0, native=True)
    raw = _spread(series)
    if raw.empty:
        return _DateGuess(None, 0.0)
    native = 0
    if _is_object(raw.dtype):
        is_native = raw.map(_is_native_date).to_numpy(dtype=bool)
        native, raw = int(is_native.sum()), raw[~is_native]
    text = _as_text(raw).dropna()
    guess = _guess_date_format(text, dayfirst)
    total = native + len(text)
    share = 0.0 if total == 0 else (native + guess.share * len(text)) / total
    return _DateGuess(
        guess.fmt, share, guess.ambiguous, guess.dayfirst, guess.example, native > 0
    )


def _parse_dates(
    series: pd.Series, guess: _DateGuess
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Naive ``datetime64`` values, the missing mask and the mask of values that did not parse."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series
        if getattr(series.dt, "tz", None) is not None:
            values = series.dt.tz_localize(None)
        missing = values.isna().to_numpy()
        return values, missing, np.zeros(len(series), dtype=bool)
    native = np.zeros(len(series), dtype=bool)
    if _is_object(series.dtype):
        native = series.map(_is_native_date).to_numpy(dtype=bool)
    text = _as_text(series.where(~native) if native.any() else series)
    missing = text.isna().to_numpy() & ~native
    if guess.fmt is None:
        values = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us]")
    else:
        values = _to_datetime(text, guess.fmt)
    if native.any():
        values = values.astype("datetime64[us]")
        natives = pd.to_datetime(series.where(native), errors="coerce").astype("datetime64[us]")
        values = values.where(~native, natives)
    bad = values.isna().to_numpy() & ~missing
    return values, missing, bad


def _collect_bad(
    column: str,
    raw: pd.Series,
    missing: np.ndarray,
    bad: np.ndarray,
    limits: Limits,
    what: str,
    fix: str,
) -> list[tuple[int, str]]:
    """The (row, raw value) pairs that did not parse; ``ParseError`` above the share cap."""
    count = int(bad.sum())
    if count == 0:
        return []
    positions = np.flatnonzero(bad)
    rows = positions + _ROW_OFFSET
    present = max(int((~missing).sum()), 1)
    share = count / present
    if share > limits.max_bad_share:
        examples = [str(v) for v in raw.iloc[positions[:3]]]
        raise ParseError(
            f"Column {column!r}: {count:,} of {present:,} values ({share:.1%}) are not {what}, "
            f"e.g. {format_examples(examples, rows[:3])}. {fix} Up to "
            f"{limits.max_bad_share:.0%} unreadable values are dropped and listed in the "
            "cleaning report; more mean the column is probably the wrong one.",
            column=column,
            rows=rows[:3],
        )
    capped = positions[:_BAD_LIST_CAP]
    return [(int(p) + _ROW_OFFSET, str(v)) for p, v in zip(capped, raw.iloc[capped])]


def _check_finite(column: str, values: pd.Series) -> None:
    infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
    if infinite.any():
        rows = np.flatnonzero(infinite) + _ROW_OFFSET
        shown = ", ".join(str(r) for r in rows[:5])
        raise NonFiniteError(
            f"Column {column!r} holds infinite values ({int(infinite.sum())}) in row(s) "
            f"{shown}. Replace them with numbers, or leave those cells empty.",
            column=column,
            rows=rows[:5],
        )


# --------------------------------------------------------------------------- roles


class _Detector:
    """Column roles from names first, content second, with per-column caches."""

    def __init__(self, frame: pd.DataFrame, decimal: str, dayfirst: bool | None) -> None:
        self.frame = frame
        self.decimal = decimal
        self.dayfirst = dayfirst
        self.norm = {c: _norm(c) for c in frame.columns}
        self._samples: dict[str, pd.Series] = {}
        self._dates: dict[str, _DateGuess] = {}

    def sample(self, column: str) -> pd.Series:
        if column not in self._samples:
            self._samples[column] = _text_sample(self.frame[column])
        return self._samples[column]

    def date(self, column: str) -> _DateGuess:
        if column not in self._dates:
            self._dates[column] = _date_guess(self.frame[column], self.dayfirst)
        return self._dates[column]

    def is_numeric(self, column: str) -> bool:
        series = self.frame[column]
        if _is_number_dtype(series):
            return True
        if pd.api.types.is_bool_dtype(series.dtype) or series.dtype.kind == "M":
            return False
        sample = self.sample(column)
        return not sample.empty and _number_share(sample, self.decimal) >= _DETECT_SHARE

    def fits(self, role: str, column: str) -> bool:
        if role == "order_date":
            return self.date(column).share >= _DETECT_SHARE
        if role in _NUMBER_ROLES:
            return self.is_numeric(column)
        sample = self.sample(column)
        if role == "email":
            return not sample.empty and sample.str.contains("@", regex=False).mean() >= 0.5
        return not sample.empty

    def pick(self, role: str, used: set[str]) -> str | None:
        free = [c for c in self.frame.columns if c not in used]
        synonyms = _EXACT.get(role, ())
        exact = sorted(
            (c for c in free if self.norm[c] in synonyms),
            key=lambda c: synonyms.index(self.norm[c]),
        )
        tokens, excluded = _CONTAINS.get(role, ((), ()))
        contains = [
            c for c in free
            if c not in exact
            and any(t in self.norm[c] for t in tokens)
            and not any(x in self.norm[c] for x in excluded)
        ]
        for column in exact + contains:
            if self.fits(role, column):
                return column
        if role == "order_date":
            return self._date_by_content(free)
        if role == "email":
            return self._email_by_content(free)
        return None

    def _date_by_content(self, free: list[str]) -> str | None:
        for column in free:
            series = self.frame[column]
            if series.dtype.kind == "M":
                return column
            if _is_number_dtype(series) or pd.api.types.is_bool_dtype(series.dtype):
                continue
            probe = self.sample(column).iloc[:20]
            looks = probe.str.contains(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True)
            if not probe.empty and looks.mean() >= 0.5 and self.fits("order_date", column):
                return column
        return None

    def _email_by_content(self, free: list[str]) -> str | None:
        for column in free:
            if _is_number_dtype(self.frame[column]):
                continue
            sample = self.sample(column)
            if not sample.empty and sample.str.fullmatch(_EMAIL).mean() >= _DETECT_SHARE:
                return column
        return None


def _resolve_mapping(
    mapping: dict[str, str | None], columns: list[str], shape: Shape | None
) -> dict[str, str | None]:
    """The user's mapping checked against the roles and the file's columns."""
    valid = TRANSACTION_ROLES if shape != CUSTOMERS else CUSTOMER_ROLES
    resolved: dict[str, str | None] = {}
    for role, column in mapping.items():
        if role not in valid:
            raise MappingError(
                f"Unknown role {role!r}. Valid roles: {', '.join(TRANSACTION_ROLES)} for a "
                f"transaction log; {', '.join(CUSTOMER_ROLES)} for a customer table."
            )
        if column is None or str(column).strip() == "":
            resolved[role] = None
            continue
        wanted = str(column)
        match = next((c for c in columns if c == wanted), None)
        match = match or next((c for c in columns if c == wanted.strip()), None)
        match = match or next((c for c in columns if c.lower() == wanted.strip().lower()), None)
        if match is None:
            raise MappingError(
                f"The mapping {role}={wanted} names a column that is not in the file. "
                f"Columns found: {_list_columns(columns)}.",
                column=wanted,
            )
        resolved[role] = match
    chosen = [c for c in resolved.values() if c is not None]
    for column in chosen:
        if chosen.count(column) > 1:
            roles = [r for r, c in resolved.items() if c == column]
            raise MappingError(
                f"The column {column!r} is mapped to {len(roles)} roles ({', '.join(roles)}); "
                "map each role to its own column.",
                column=column,
            )
    return resolved


def _missing_role(role: str, columns: list[str]) -> MissingRoleError:
    example = "amount" if role == "amount" else role
    return MissingRoleError(
        f"No column for {_ROLE_LABELS[role]} was found. Columns found: "
        f"{_list_columns(columns)}. Use --map {example}=COLUMN (command line) or the mapping "
        "dropdowns to choose it.",
    )


def _repeats(series: pd.Series) -> bool:
    # A transaction log repeats an id within its first lines; only a table that does not
    # needs the whole column.
    head = _as_text(series.iloc[:_REPEAT_PROBE]).dropna()
    if head.duplicated().any():
        return True
    if len(series) <= _REPEAT_PROBE:
        return False
    return bool(_as_text(series).dropna().duplicated().any())


def _customer_id_fallback(detector: _Detector, used: set[str]) -> str | None:
    """A column named like an id whose values are unique, for a customer table."""
    frame = detector.frame
    for column in frame.columns:
        name = detector.norm[column]
        if column in used or not (name == "id" or name.endswith("id")):
            continue
        ids = _as_text(frame[column])
        if ids.notna().all() and not ids.duplicated().any():
            return column
    return None


def _is_categorical(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.dropna().nunique() >= 2
    present = series.dropna()
    limit = min(_MAX_CATEGORIES, max(2, len(present) // 2))
    if _spread(present).nunique() > limit:
        return False
    return 2 <= present.nunique() <= limit


def _build(
    raw: _Raw,
    mapping: dict[str, str | None],
    shape: Shape | None,
    dayfirst: bool | None,
    limits: Limits,
) -> Ingested:
    frame = raw.frame
    notices = list(raw.notices)
    columns = list(frame.columns)
    if shape not in (None, TRANSACTIONS, CUSTOMERS):
        raise MappingError(f"Unknown shape {shape!r}; use 'transactions' or 'customers'.")
    user = _resolve_mapping(mapping, columns, shape)
    detector = _Detector(frame, raw.decimal, dayfirst)
    used = {c for c in user.values() if c is not None}
    roles = {r: c for r, c in user.items() if c is not None}
    for role in TRANSACTION_ROLES:
        if role in user:
            continue
        column = detector.pick(role, used)
        if column is not None:
            roles[role] = column
            used.add(column)

    money = "amount" in roles or {"quantity", "unit_price"} <= roles.keys()
    if shape is None:
        transaction_only = set(user) - set(CUSTOMER_ROLES)
        if transaction_only:
            shape = TRANSACTIONS
        elif "customer_id" in roles and "order_date" in roles and money:
            shape = TRANSACTIONS if _repeats(frame[roles["customer_id"]]) else CUSTOMERS
        elif "order_date" in roles and money and "order_id" in roles:
            # Orders with dates and amounts but no customer column are a log whose
            # customer column was not recognised, not a customer table.
            raise _missing_role("customer_id", columns)
        else:
            shape = CUSTOMERS

    attributes: list[str] = []
    categoricals: list[str] = []
    synthesized = False
    if shape == TRANSACTIONS:
        for role in ("customer_id", "order_date"):
            if role not in roles:
                raise _missing_role(role, columns)
        if not money:
            raise _missing_role("amount", columns)
    else:
        roles = {r: c for r, c in roles.items() if r in CUSTOMER_ROLES}
        used = set(roles.values())
        if "customer_id" not in roles and "customer_id" not in user:
            fallback = _customer_id_fallback(detector, used)
            if fallback is not None:
                roles["customer_id"] = fallback
                used.add(fallback)
        if "customer_id" not in roles:
            name = "customer_id"
            while name in frame.columns:
                name += "_"
            frame[name] = pd.Series(np.arange(1, len(frame) + 1), index=frame.index).astype(
                "string"
            )
            roles["customer_id"] = name
            synthesized = True
            notices.append(
                f"No customer id column was found, so customers are numbered 1 to "
                f"{len(frame):,} in file order (column {name!r}). To use a column of the file, "
                "choose it with --map customer_id=COLUMN or the mapping dropdowns."
            )
        for column in columns:
            if column in used or any(t in detector.norm[column] for t in _NOT_ATTRIBUTES):
                continue
            series = frame[column]
            if series.dtype.kind == "M":
                continue
            if detector.is_numeric(column):
                attributes.append(column)
            elif _is_categorical(series):
                categoricals.append(column)

    bad_values: dict[str, list[tuple[int, str]]] = {}
    guess: _DateGuess | None = None
    for role, column in roles.items():
        series = frame[column]
        if role in _TEXT_ROLES:
            if not (synthesized and role == "customer_id"):
                frame[column] = _as_text(series)
        elif role == "order_date":
            guess = detector.date(column)
            values, missing, bad = _parse_dates(series, guess)
            what = f"dates in the format {guess.fmt}" if guess.fmt else "recognisable dates"
            bad_values[column] = _collect_bad(
                column, series, missing, bad, limits, what,
                "Fix those values in the file, or map another date column with "
                "--map order_date=COLUMN (or the mapping dropdowns).",
            )
            frame[column] = values
        else:
            frame[column] = _numbers(column, series, raw.decimal, limits, bad_values, role)
    for column in attributes:
        frame[column] = _numbers(column, frame[column], raw.decimal, limits, bad_values, None)
    bad_values = {c: v for c, v in bad_values.items() if v}
    order = TRANSACTION_ROLES if shape == TRANSACTIONS else CUSTOMER_ROLES
    roles = {r: roles[r] for r in order if r in roles}

    if guess is not None:
        notices.extend(_date_notices(roles["order_date"], guess, dayfirst))
    described = ", ".join(f"{r}={c!r}" for r, c in roles.items())
    notices.insert(0, f"Read {len(frame):,} rows as a {_SHAPE_LABEL[shape]}; columns: {described}.")
    for column, found in bad_values.items():
        notices.append(
            f"Column {column!r}: {len(found):,}{'+' if len(found) == _BAD_LIST_CAP else ''} "
            "value(s) could not be read and are left empty "
            f"(first in row {found[0][0]}); the cleaning report lists them."
        )
    return Ingested(
        table=frame,
        shape=shape,
        mapping=roles,
        encoding=raw.encoding,
        file_format=raw.file_format,
        delimiter=raw.delimiter,
        decimal=raw.decimal,
        date_format=guess.fmt if guess else None,
        date_ambiguous=bool(guess and guess.ambiguous),
        dayfirst=bool(guess and guess.dayfirst),
        attributes=tuple(attributes),
        categoricals=tuple(categoricals),
        bad_values=bad_values,
        notices=tuple(notices),
        id_synthesized=synthesized,
    )


def _numbers(
    column: str,
    series: pd.Series,
    decimal: str,
    limits: Limits,
    bad_values: dict[str, list[tuple[int, str]]],
    role: str | None,
) -> pd.Series:
    values, missing, bad = _parse_numbers(series, decimal)
    fix = (
        f"Fix those values in the file, or map another column with --map {role}=COLUMN "
        "(or the mapping dropdowns)." if role else
        "Fix those values in the file, or remove the column."
    )
    bad_values[column] = _collect_bad(column, series, missing, bad, limits, "numbers", fix)
    _check_finite(column, values)
    return values


def _date_notices(column: str, guess: _DateGuess, dayfirst: bool | None) -> list[str]:
    if guess.fmt is None:
        return [f"Dates in {column!r} are stored as dates in the file; no format was needed."]
    notices = [f"Dates in {column!r} were read with the format {guess.fmt}."]
    if guess.ambiguous:
        order = "day first" if guess.dayfirst else "month first"
        change = (
            "turn off 'day first' in the date options (or run without --dayfirst)"
            if guess.dayfirst else
            "choose 'day first' in the date options, or pass --dayfirst on the command line"
        )
        notices.append(
            f"Dates in {column!r} are ambiguous: every value fits both month/day and day/month "
            f"(e.g. {guess.example!r}). They were read {order}; if that is wrong, {change}."
        )
    elif dayfirst is not None and guess.dayfirst != dayfirst and guess.fmt in _TWIN_OF:
        order = "day first" if guess.dayfirst else "month first"
        notices.append(
            f"Dates in {column!r} can only be {order} (some value has a part above 12), so "
            "the day-first setting was not used."
        )
    return notices
