"""Sources past the upload box: a server path or folder, an http(s) URL, or a database table.

Each is read into the same :class:`dashapp.pipeline.Prepared` an upload gives. A path (a CSV or
Parquet file, or a folder of them) goes to :func:`dashapp.pipeline.prepare_path`, which reads
large data with DuckDB out of core. A URL is streamed to a temporary file under a size cap and
read as a file. A database table (through SQLAlchemy) is aggregated in the database: one
``GROUP BY`` customer query returns one row per customer with the counts the cleaning report
needs, so the lines never leave the database.

What a caller may read is a :class:`SourcePolicy`: the command line (the admin's own machine)
reads anything; the multi-user app only paths under admin-configured roots, URLs only when
enabled (server-side request forgery), and databases only as admin-named connections or
SQLite files under the roots.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dashapp import ingest
from dashapp.clean import EXAMPLES, RuleResult, line_rules
from dashapp.errors import EmptyFileError, IngestError, ParseError, PersonaError, TooLargeError
from dashapp.features import rfm_from_aggregates
from dashapp.ingest import CUSTOMERS, MISSING_TOKENS
from dashapp.pipeline import Prepared, PrepareOptions, finish_transactions, prepare, prepare_path
from dashapp.settings import Settings

Kind = Literal["path", "url", "database"]
KINDS: tuple[Kind, ...] = ("path", "url", "database")
#: Rows of a table read to detect its column roles, as ingest samples a file.
SAMPLE_ROWS = 2000
_CHUNK = 1 << 20
_URL_TIMEOUT = 30
_DB_SCHEMES = ("sqlite", "postgresql", "postgres")
_PG_DRIVER = "postgresql+psycopg"
#: Seconds to wait for a PostgreSQL server to answer before the read fails with a message.
_PG_CONNECT_TIMEOUT = 10
_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".xlsx")
_CONTACT_ROLES = ("email", "name", "country")


class SourceError(PersonaError):
    """A source that cannot be reached or is not allowed, with what to do about it."""


@dataclass(frozen=True)
class Source:
    """Where data comes from: ``kind`` and ``location`` (a path, a URL, a database URL or the
    name of an admin-configured connection), and for a database the ``table``
    (``schema.table`` allowed)."""

    kind: Kind
    location: str
    table: str | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "location": self.location, "table": self.table}

    @classmethod
    def from_dict(cls, data: dict) -> Source:
        return checked_source(data.get("kind"), data.get("location"), data.get("table"))

    def label(self) -> str:
        """A short display name that never shows a password."""
        if self.kind == "database":
            where = _masked(self.location)
            return f"{self.table} @ {where}"
        if self.kind == "url":
            parts = urllib.parse.urlsplit(self.location)
            name = Path(parts.path).name or parts.netloc
            return name or self.location
        return Path(self.location).name or self.location


def _masked(url: str) -> str:
    if "://" not in url:
        return url
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return url.split("://", 1)[0] + "://..."


def checked_source(kind: object, location: object, table: object = None) -> Source:
    """A :class:`Source` from untrusted input (the browser, a sidecar file): kinds and types
    checked, text trimmed; whether it may be read is :meth:`SourcePolicy.check`'s job."""
    if kind not in KINDS:
        raise SourceError("Choose what to connect to: a server path, a URL or a database.")
    text = location.strip() if isinstance(location, str) else ""
    if not text or len(text) > 4096 or "\x00" in text:
        what = {"path": "a path on the server", "url": "a URL",
                "database": "a database connection"}[kind]
        raise SourceError(f"Enter {what}.")
    name = table.strip() if isinstance(table, str) else ""
    if kind == "database":
        if not name or len(name) > 300 or "\x00" in name:
            raise SourceError("Enter the table (or view) to read, e.g. orders or sales.orders.")
        return Source(kind, text, name)
    return Source(kind, text)


def parse_source(text: str, table: str | None = None) -> Source:
    """The source a command-line argument names: an http(s) URL, a database URL
    (``sqlite:///...``, ``postgresql://...``; needs ``table``) or else a path."""
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return checked_source("url", text)
    if scheme.split("+", 1)[0] in _DB_SCHEMES:
        if not table:
            raise SourceError(f"{_masked(text)} is a database: name the table with --table.")
        return checked_source("database", text, table)
    if scheme:
        raise SourceError(f"{scheme}:// sources are not supported: use a path, an http(s) "
                          "URL or a database URL (sqlite:///..., postgresql://...).")
    return checked_source("path", text)


@dataclass(frozen=True)
class SourcePolicy:
    """What one caller may read.

    ``roots``: folders server paths (and SQLite files) must lie in, ``None`` for any path.
    ``urls`` / ``private_urls``: whether http(s) URLs may be fetched, and whether to hosts
    on loopback, private or link-local addresses. ``connections``: named database URLs;
    ``database_urls``: whether other database URLs than those names are accepted (SQLite
    URLs then still obey ``roots``).
    """

    roots: tuple[Path, ...] | None = None
    urls: bool = True
    private_urls: bool = True
    url_max_bytes: int = 1 << 30
    connections: dict[str, str] = field(default_factory=dict)
    database_urls: bool = True

    @classmethod
    def for_cli(cls, settings: Settings) -> SourcePolicy:
        """The admin on their own machine: any path, URL or database."""
        return cls(url_max_bytes=settings.source_url_max_bytes,
                   connections=dict(settings.source_connections))

    @classmethod
    def for_app(cls, settings: Settings) -> SourcePolicy:
        """The multi-user app: only what the admin configured."""
        return cls(roots=tuple(settings.source_roots), urls=settings.source_urls,
                   private_urls=settings.source_url_private,
                   url_max_bytes=settings.source_url_max_bytes,
                   connections=dict(settings.source_connections), database_urls=False)

    # ---- checks -------------------------------------------------------------------------

    def check_path(self, location: str) -> Path:
        """``location`` resolved (symlinks and ``..``) if it lies under a root."""
        if self.roots is None:
            return Path(location).expanduser()
        if not self.roots:
            raise SourceError("Server paths are turned off on this server: the administrator "
                              "lists the folders users may read in PERSONA_SOURCE_ROOTS.")
        if not os.path.isabs(location):
            raise SourceError(f"Enter an absolute path under {self._roots_text()}.")
        resolved = Path(os.path.realpath(location))
        if not self._under_root(resolved):
            raise SourceError(f"{location} is outside the folders this server allows; use a "
                              f"path under {self._roots_text()}.")
        return resolved

    def _under_root(self, resolved: Path) -> bool:
        for root in self.roots or ():
            real = Path(os.path.realpath(root))
            if resolved == real or real in resolved.parents:
                return True
        return False

    def _roots_text(self) -> str:
        return ", ".join(str(r) for r in self.roots or ()) or "(none)"

    def check_url(self, url: str) -> str:
        """``url`` if it is http(s) and allowed to be fetched."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise SourceError(f"Only http:// and https:// URLs can be read, not "
                              f"{parts.scheme or 'this'}://; for a file on the server use a "
                              "server path.")
        if not self.urls:
            raise SourceError("Reading from URLs is turned off on this server (the "
                              "administrator enables it with PERSONA_SOURCE_URLS=1).")
        if not parts.hostname:
            raise SourceError(f"{url} names no host.")
        if not self.private_urls:
            for address in _addresses(parts.hostname, parts.port):
                if not address.is_global:
                    raise SourceError(
                        f"{parts.hostname} is a local or private address ({address}); this "
                        "server reads only public URLs (PERSONA_SOURCE_URL_PRIVATE=1 allows "
                        "others).")
        return url

    def database_url(self, location: str) -> sa.engine.URL:
        """The SQLAlchemy URL of a connection name or a database URL, if allowed."""
        if location in self.connections:
            text, named = self.connections[location], True
        elif "://" not in location:
            names = ", ".join(sorted(self.connections)) or "none are configured"
            raise SourceError(f"No database connection named {location!r} (connections: "
                              f"{names}; the administrator sets them in PERSONA_SOURCES).")
        else:
            text, named = location, False
        try:
            url = sa.engine.make_url(text)
        except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is no number
            raise SourceError(f"{_masked(text)} is not a database URL such as "
                              "sqlite:///path/to/file.db or postgresql://host/db.") from None
        if url.drivername in ("postgresql", "postgres"):
            # psycopg 3 (requirements.txt), whatever SQLAlchemy's default driver is (psycopg2
            # before 2.1); postgres:// is Heroku's spelling, which SQLAlchemy no longer reads.
            url = url.set(drivername=_PG_DRIVER)
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise SourceError(f"{backend} databases are not supported; use SQLite or "
                              "PostgreSQL.")
        if backend != "sqlite" and not named and not self.database_urls:
            raise SourceError("Database URLs with passwords do not go through the browser: ask "
                              "the administrator to add this database to PERSONA_SOURCES and "
                              "choose it by name.")
        if backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise SourceError("A SQLite source needs a database file: sqlite:///path.db.")
            path = self.check_path(url.database) if self.roots is not None else Path(
                url.database).expanduser()
            if not path.is_file():
                raise SourceError(f"No SQLite database at {url.database}.")
            url = url.set(database=str(path))
        return url


def _addresses(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise SourceError(f"The host {host} could not be found; check the URL.") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


# --------------------------------------------------------------------------- reading


def read_source(source: Source, options: PrepareOptions | None = None,
                policy: SourcePolicy | None = None) -> Prepared:
    """Read ``source`` into prepared customers, as :func:`dashapp.pipeline.prepare` does.

    Parameters
    ----------
    source
        What to read.
    options
        Mapping overrides, cleaning rules, reference date and caps (the caps apply to the
        lines read, wherever they are).
    policy
        What may be read; default: anything (the command line).

    Raises
    ------
    SourceError
        A source not allowed, missing or unreachable.
    PersonaError
        Whatever reading the data raises (missing columns, unreadable values, too large).
    """
    options = options or PrepareOptions()
    policy = policy or SourcePolicy()
    if source.kind == "path":
        return read_path(source.location, options, policy)
    if source.kind == "url":
        return read_url(source.location, options, policy)
    return read_database(source.location, source.table or "", options, policy)


def read_path(location: str, options: PrepareOptions, policy: SourcePolicy) -> Prepared:
    """A file or a folder of CSV or Parquet files on the server."""
    from dashapp.fastpath import folder_files

    path = policy.check_path(location)
    if not path.exists():
        raise SourceError(f"No such file or folder: {location}.")
    if path.is_dir():
        files = folder_files(path)[1]
        if policy.roots is not None:
            outside = [f for f in files if not policy._under_root(Path(os.path.realpath(f)))]
            if outside:
                raise SourceError(f"{outside[0].name} in {location} links outside the folders "
                                  "this server allows.")
    elif not path.is_file():
        raise SourceError(f"{location} is neither a file nor a folder.")
    try:
        return prepare_path(path, options)
    except PermissionError:
        raise SourceError(f"The server may not read {location} (permission denied).") from None


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Each redirect target is checked as the first URL was (a public URL must not redirect
    the server to an internal one)."""

    def __init__(self, policy: SourcePolicy) -> None:
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.policy.check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, folder: Path, policy: SourcePolicy) -> Path:
    """``url`` streamed into ``folder`` under ``policy.url_max_bytes``; the file's path."""
    policy.check_url(url)
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name.lower().endswith(_SUFFIXES):
        name = "download.csv"
    target = folder / name
    opener = urllib.request.build_opener(_CheckedRedirects(policy))
    request = urllib.request.Request(url, headers={"User-Agent": "persona-engine"})
    cap = policy.url_max_bytes
    try:
        with opener.open(request, timeout=_URL_TIMEOUT) as response, open(target, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise _too_large(url, int(declared), cap)
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _too_large(url, size, cap)
                out.write(chunk)
    except urllib.error.HTTPError as err:
        raise SourceError(f"{url} answered {err.code} {err.reason}.") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise SourceError(f"{url} could not be reached ({reason}).") from None
    if size == 0:
        raise EmptyFileError(f"{url} sent no data.")
    return target


def _too_large(url: str, size: int, cap: int) -> TooLargeError:
    return TooLargeError(f"{url} is over {cap / 2**20:.0f} MB (at least {size / 2**20:.1f} MB); "
                         "the limit is PERSONA_SOURCE_URL_MAX_MB.")


def read_url(url: str, options: PrepareOptions, policy: SourcePolicy) -> Prepared:
    """An http(s) URL downloaded to a temporary file, then read as a file; the file is
    removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="persona-url-"))
    try:
        return prepare_path(fetch_url(url, folder, policy), options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- databases


def _engine(url: sa.engine.URL) -> sa.engine.Engine:
    if url.get_backend_name() == "sqlite":
        import sqlite3

        # Read-only: a missing file is an error, not a new empty database.
        uri = Path(url.database).resolve().as_uri() + "?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True),
                                poolclass=sa.pool.NullPool)
    connect_args = {}
    if url.get_driver_name() == "psycopg" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)


def _reflect(engine: sa.engine.Engine, name: str) -> sa.Table:
    schema, _, table = name.rpartition(".")
    inspector = sa.inspect(engine)
    known = inspector.get_table_names(schema=schema or None) + inspector.get_view_names(
        schema=schema or None)
    if table not in known:
        shown = ", ".join(sorted(known)[:20]) or "none"
        raise SourceError(f"No table or view {name!r} in this database (found: {shown}).")
    return sa.Table(table, sa.MetaData(), schema=schema or None, autoload_with=engine)


def _frame(result: sa.engine.CursorResult, objects: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows of ``result``; the ``objects`` columns keep the driver's values as they are
    (pandas would turn integer ids beside a NULL into floats, 12346 into "12346.0")."""
    rows = result.fetchall()
    keys = list(result.keys())
    frame = pd.DataFrame(rows, columns=keys)
    for name in objects:
        at = keys.index(name)
        frame[name] = pd.Series([row[at] for row in rows], index=frame.index, dtype=object)
    return frame


def _is_text(column: sa.Column) -> bool:
    return isinstance(column.type, (sa.String, sa.Text, sa.Enum))


def _is_number(column: sa.Column) -> bool:
    return isinstance(column.type, (sa.Integer, sa.Numeric, sa.Float))


def _is_date(column: sa.Column) -> bool:
    return isinstance(column.type, (sa.Date, sa.DateTime))


def _missing_text(expr):
    """``expr`` trimmed, NULL where it is one of ingest's missing tokens ("", NA, null, ...)."""
    trimmed = sa.func.trim(expr)
    return sa.case((sa.func.lower(trimmed).in_(sorted(MISSING_TOKENS)), sa.null()),
                   else_=trimmed)


def _id_expr(column: sa.Column, sample: pd.Series):
    if _is_text(column):
        return _missing_text(column)
    if isinstance(column.type, (sa.Float, sa.Numeric)) and not isinstance(column.type,
                                                                            sa.Integer):
        values = pd.to_numeric(sample, errors="coerce").dropna()
        if (np.floor(values) == values).all():
            # As ingest reads 12346.0 as the id "12346".
            return sa.cast(column, sa.BigInteger)
    return column


def read_database(location: str, table: str, options: PrepareOptions,
                  policy: SourcePolicy) -> Prepared:
    """A transaction log (or customer table) in a database table or view.

    Roles are detected from a sample of the table's rows with ingest's own detection (names
    first, then content) and overridden by ``options.mapping``. A transaction log is
    aggregated in the database: one query groups by customer and returns last, first and
    latest order dates, distinct purchase orders, net amount and per customer the counts
    of the cleaning rules (missing id, missing date or amount, returns and cancellations);
    a second counts exact duplicate lines. A customer table is read whole (one row per
    customer already) and prepared like an upload.

    Rows that a table holds in no order: examples in the cleaning report carry no row
    numbers, and an e-mail, name or country that changes within a customer's lines is the
    largest value, not the last one.
    """
    url = policy.database_url(location)
    where = url.render_as_string(hide_password=True)
    try:
        engine = _engine(url)
    except (sa.exc.ArgumentError, ModuleNotFoundError) as err:
        raise SourceError(f"{where}: {err}") from None
    try:
        with engine.connect() as con:
            return _read_table(con, engine, _reflect(engine, table), table, where, options)
    except sa.exc.OperationalError as err:
        raise SourceError(f"The database {where} could not be read "
                          f"({str(err.orig).splitlines()[0]}).") from None
    except sa.exc.NoSuchTableError:
        raise SourceError(f"No table or view {table!r} in {where}.") from None
    except sa.exc.SQLAlchemyError as err:
        raise SourceError(f"The database {where} refused the query "
                          f"({type(err).__name__}: {str(err).splitlines()[0][:200]}).") from None
    finally:
        engine.dispose()


def _read_table(con, engine, table: sa.Table, name: str, where: str,
                options: PrepareOptions) -> Prepared:
    sample = _frame(con.execute(sa.select(table).limit(SAMPLE_ROWS)))
    if sample.empty:
        raise EmptyFileError(f"The table {name!r} has no rows.")
    label = f"{name}.{engine.dialect.name}"
    raw = ingest._Raw(sample, file_format=f"{engine.dialect.name} table", encoding="database")
    detected = ingest._build(raw, dict(options.mapping or {}), options.shape, options.dayfirst,
                             options.limits)
    if detected.shape == CUSTOMERS:
        return _customer_table(con, table, name, options)
    return _aggregated(con, engine, table, name, detected, sample, options, label)


def _customer_table(con, table: sa.Table, name: str, options: PrepareOptions) -> Prepared:
    """A customer table is small (one row per customer): read it whole, as an upload."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    cap = options.limits.max_rows
    frame = _frame(con.execute(sa.select(table).limit(cap + 1)))
    if len(frame) > cap:
        raise ingest._too_many_rows(options.limits)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return prepare(buffer.getvalue(), f"{name}.parquet", replace(options, shape=CUSTOMERS))


def _date_parts(column: sa.Column, detected: ingest.Ingested, dialect: str):
    """The date expression, its day (for distinct order days), and when it is unreadable."""
    fmt = detected.date_format or ""
    if _is_date(column):
        day = sa.func.substr(column, 1, 10) if dialect == "sqlite" else sa.cast(column, sa.Date)
        return column, day, column.is_(None)
    if not _is_text(column) or not fmt.startswith("%Y"):
        raise ParseError(
            f"Column {column.name!r} holds dates as {'text' if _is_text(column) else 'numbers'}"
            f"{' like ' + repr(fmt) if fmt else ''}; a database source needs a DATE or "
            "TIMESTAMP column, or text in year-month-day order (2024-03-31 ...), so the query "
            "can find each customer's latest order. A view that converts it works too.",
            column=column.name)
    sep = fmt[2]
    text = _missing_text(column)
    shape = f"____{sep}__{sep}__%"
    return text, sa.func.substr(text, 1, 10), sa.or_(text.is_(None), sa.not_(text.like(shape)))


@dataclass(frozen=True)
class _Query:
    """The per-customer query of a transaction log and the conditions of its rules."""

    select: sa.Select
    source: sa.FromClause
    kept: sa.ColumnElement
    conditions: dict[str, sa.ColumnElement]
    contact_roles: tuple[str, ...]


def aggregate_query(table: sa.Table, detected: ingest.Ingested, sample: pd.DataFrame,
                    dialect: str, drop_duplicates: bool = False) -> _Query:
    """The ``GROUP BY`` customer query of a transaction log in ``table`` (SQLAlchemy Core,
    the same for SQLite and PostgreSQL but for the day of a timestamp).

    One row per customer id (and one for lines without an id): ``lines``, ``kept``, the
    rule counts ``bad_date``, ``bad_amount``, ``returns``, ``negative``, ``cancelled``, the
    purchase dates ``last_buy`` / ``first_buy``, the dates of every kept line ``latest`` /
    ``earliest``, ``frequency`` (distinct purchase orders, or order days without an order
    id), ``monetary`` (net: returns as ``-abs(amount)``) and the largest e-mail, name or
    country. The rules are those of :func:`dashapp.clean.clean_transactions`.
    """
    source = sa.select(table).distinct().subquery("lines") if drop_duplicates else table
    roles = detected.mapping
    columns = {role: source.c[column] for role, column in roles.items()}
    for role in ("amount", "quantity", "unit_price"):
        if role in columns and not _is_number(columns[role]):
            raise ParseError(f"Column {roles[role]!r} ({role}) is {columns[role].type} in the "
                             "database; a database source needs a number column there.",
                             column=roles[role])
    cid = _id_expr(columns["customer_id"], sample[roles["customer_id"]])
    when, day, bad_date = _date_parts(columns["order_date"], detected, dialect)
    if "amount" in columns:
        amount = columns["amount"]
    else:
        amount = columns["quantity"] * columns["unit_price"]
    order = columns.get("order_id")
    if order is not None and _is_text(order):
        order = _missing_text(order)

    missing = cid.is_(None)
    kept = sa.and_(sa.not_(missing), sa.not_(bad_date), amount.is_not(None))
    negative = amount < 0
    if "quantity" in columns:
        negative = sa.or_(negative, columns["quantity"] < 0)
    negative = sa.and_(kept, sa.func.coalesce(negative, False))
    cancelled = sa.false()
    if order is not None:
        cancelled = sa.func.coalesce(sa.func.upper(sa.cast(order, sa.String)).like("C%"), False)
    cancelled = sa.and_(kept, cancelled)
    returned = sa.or_(negative, cancelled)
    bought = sa.and_(kept, sa.not_(returned))
    no_date = sa.and_(sa.not_(missing), bad_date)
    no_amount = sa.and_(sa.not_(missing), sa.not_(bad_date), amount.is_(None))

    def total(condition):
        return sa.func.sum(sa.case((condition, 1), else_=0))

    key = order if order is not None else day
    aggregates = [
        cid.label("customer_id"),
        sa.func.count().label("lines"),
        total(kept).label("kept"),
        total(no_date).label("bad_date"),
        total(no_amount).label("bad_amount"),
        total(returned).label("returns"),
        total(negative).label("negative"),
        total(cancelled).label("cancelled"),
        sa.func.max(sa.case((bought, when))).label("last_buy"),
        sa.func.min(sa.case((bought, when))).label("first_buy"),
        sa.func.max(sa.case((kept, when))).label("latest"),
        sa.func.min(sa.case((kept, when))).label("earliest"),
        sa.func.count(sa.distinct(sa.case((bought, key)))).label("frequency"),
        sa.func.sum(sa.case((returned, -sa.func.abs(amount)), (kept, amount))).label(
            "monetary"),
    ]
    contact_roles = tuple(r for r in _CONTACT_ROLES if r in columns)
    for role in contact_roles:
        value = _missing_text(columns[role]) if _is_text(columns[role]) else columns[role]
        aggregates.append(sa.func.max(sa.case((kept, value))).label(role))
    return _Query(sa.select(*aggregates).group_by(cid), source, kept,
                  {"missing_customer_id": missing, "bad_order_date": no_date,
                   "bad_amount": no_amount, "returns": returned}, contact_roles)


def _aggregated(con, engine, table: sa.Table, name: str, detected: ingest.Ingested,
                sample: pd.DataFrame, options: PrepareOptions, label: str) -> Prepared:
    dedupe = options.cleaning.drop_duplicates
    query = aggregate_query(table, detected, sample, engine.dialect.name)
    grouped = _frame(con.execute(query.select), ("customer_id",))
    dup_total = _duplicates(con, query.source, query.kept)
    counts = {c: int(grouped[c].fillna(0).sum()) for c in
              ("lines", "kept", "bad_date", "bad_amount", "returns", "negative", "cancelled")}
    missing_id = int(grouped.loc[grouped["customer_id"].isna(), "lines"].sum())
    if dedupe:
        # Lines without an id, date or amount are counted on every line, as clean.py does;
        # the customers and their returns on the distinct lines.
        query = aggregate_query(table, detected, sample, engine.dialect.name, True)
        grouped = _frame(con.execute(query.select), ("customer_id",))
        counts.update({c: int(grouped[c].fillna(0).sum()) for c in
                       ("kept", "returns", "negative", "cancelled")})
    limits = options.limits
    if counts["lines"] > limits.max_rows:
        raise ingest._too_many_rows(limits)
    no_id = grouped["customer_id"].isna()
    counts["missing_id"] = missing_id
    customers = grouped.loc[~no_id & (grouped["kept"] > 0)]
    if customers.empty:
        raise IngestError(f"No line of {name!r} has a customer id, a date and an amount.")
    table_out = _customer_frame(customers, detected, name, options)
    rules = _rules(con, query.source, detected, counts, dup_total, query.conditions, dedupe)
    contact = None
    if query.contact_roles:
        contact = customers[["customer_id", *query.contact_roles]].copy()
        contact["customer_id"] = contact["customer_id"].astype(str).to_numpy(dtype=object)
        contact = contact.sort_values("customer_id").reset_index(drop=True)
    ingested = _ingested(detected, sample, counts["lines"], label)
    digest = _digest(table_out, counts, dup_total, label)
    return finish_transactions(ingested, table_out, rules, counts["lines"], counts["kept"],
                               digest, options.cleaning, contact)


def _duplicates(con, source, kept) -> int:
    """Exact duplicate kept lines: kept lines minus distinct kept lines (every column)."""
    lines = sa.select(sa.func.count()).select_from(source).where(kept)
    distinct = sa.select(*source.c).where(kept).distinct().subquery("distinct_lines")
    unique = sa.select(sa.func.count()).select_from(distinct)
    return int(con.execute(lines).scalar_one()) - int(con.execute(unique).scalar_one())


def _dates(values: pd.Series, detected: ingest.Ingested, column: str) -> pd.Series:
    if values.map(lambda v: isinstance(v, str)).any():
        fmt = detected.date_format if detected.date_format else "ISO8601"
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        if parsed.isna().any() and fmt != "ISO8601":
            parsed = parsed.fillna(pd.to_datetime(values, format="ISO8601", errors="coerce"))
    else:
        parsed = pd.to_datetime(values, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise ParseError(f"Column {column!r} holds {values[bad].iloc[0]!r}, which is not a date; "
                         "fix the value in the database or convert the column in a view.",
                         column=column)
    return parsed


def _customer_frame(grouped: pd.DataFrame, detected: ingest.Ingested, name: str,
                    options: PrepareOptions) -> pd.DataFrame:
    """:func:`dashapp.features.rfm_from_aggregates` of the query's rows, sorted by id."""
    column = detected.mapping["order_date"]
    frame = pd.DataFrame({
        "customer_id": grouped["customer_id"].astype(str).to_numpy(dtype=object),
        "frequency": grouped["frequency"].fillna(0).astype("int64").to_numpy(),
        "monetary": pd.to_numeric(grouped["monetary"]).fillna(0).astype("float64").to_numpy(),
    })
    last = _dates(grouped["last_buy"].reset_index(drop=True), detected, column)
    first = _dates(grouped["first_buy"].reset_index(drop=True), detected, column)
    latest = _dates(grouped["latest"].reset_index(drop=True), detected, column)
    earliest = _dates(grouped["earliest"].reset_index(drop=True), detected, column)
    frame["last_order"] = last.fillna(latest).dt.normalize().to_numpy()
    frame["first_order"] = first.fillna(earliest).dt.normalize().to_numpy()
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if options.reference_date is None:
        reference = latest.max().normalize() + pd.Timedelta(days=1)
    else:
        reference = pd.Timestamp(options.reference_date).normalize()
    return rfm_from_aggregates(
        frame[["customer_id", "last_order", "first_order", "frequency", "monetary"]], reference)


def _example_rows(con, source, condition) -> tuple[dict[str, str], ...]:
    rows = con.execute(sa.select(*source.c).where(condition).limit(EXAMPLES)).mappings()
    return tuple({str(k): "" if v is None else str(v) for k, v in row.items()} for row in rows)


def _rules(con, source, detected: ingest.Ingested, counts: dict, dups: int,
           conditions: dict, dedupe: bool = False) -> list[RuleResult]:
    """The line rules of :func:`dashapp.clean.clean_transactions`, from the query's counts;
    examples come from one small query per rule that fired (exact duplicates have none)."""
    by_rule = {"missing_customer_id": counts["missing_id"], "bad_order_date": counts["bad_date"],
               "bad_amount": counts["bad_amount"], "duplicates": dups,
               "returns": counts["returns"]}
    examples = {rule: _example_rows(con, source, conditions[rule])
                for rule, n in by_rule.items() if n and rule in conditions}
    return line_rules(detected.mapping, {**by_rule, "cancelled": counts["cancelled"],
                                         "negative": counts["negative"]}, examples, dedupe)


def _ingested(detected: ingest.Ingested, sample: pd.DataFrame, rows: int,
              label: str) -> ingest.Ingested:
    notices = [n for n in detected.notices
               if not (n.startswith("Read ") and " rows as a " in n)
               and "could not be read and are left empty" not in n]
    notices.insert(0, f"Read {rows:,} rows as a transaction log from the database table "
                      f"{label.rsplit('.', 1)[0]!r}; the database grouped them by customer.")
    return replace(detected, table=detected.table.head(0), bad_values={},
                   notices=tuple(notices))


def _digest(customers: pd.DataFrame, counts: dict, dups: int, label: str) -> str:
    """A content key of what the query returned (the lines stay in the database)."""
    digest = hashlib.sha256(label.encode())
    digest.update(json.dumps([counts, dups], sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(
        customers[["customer_id", "recency", "frequency", "monetary"]], index=False
    ).to_numpy().tobytes())
    return digest.hexdigest()[:16]


__all__ = ["Source", "SourcePolicy", "SourceError", "KINDS", "checked_source", "parse_source",
           "read_source", "read_path", "read_url", "read_database", "fetch_url", "aggregate_query"]
