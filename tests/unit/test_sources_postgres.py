"""Database sources on a real PostgreSQL server (the session's ``postgres`` fixture, see
tests/postgres_server.py): the same lines give the same customers and cleaning report through
PostgreSQL, through SQLite and as a file, and every way a connection goes wrong is a message.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from test_sources import MALL, RETAIL, RFM, SALES, _dirty, _same, _sqlite, _typed

from dashapp import ingest
from dashapp.clean import CleaningOptions
from dashapp.errors import PersonaError
from dashapp.pipeline import PrepareOptions, prepare_path
from dashapp.settings import Settings
from dashapp.sources import Source, SourceError, SourcePolicy, parse_source, read_source

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shop(postgres, shared_data) -> str:
    """A database of this module's own; its URL as users write it (``postgresql://``, no
    driver named). ``shared_data`` first: a missing data folder fails, never skips."""
    return postgres.create_database("shop")


def _load(url: str, frame: pd.DataFrame, name: str, schema: str | None = None,
          dtype: dict | None = None) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as con:
        if schema:
            con.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    frame.to_sql(name, engine, index=False, schema=schema, if_exists="replace", dtype=dtype)
    engine.dispose()


def _column_type(url: str, table: str, column: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        found = con.execute(sa.text(
            "SELECT data_type FROM information_schema.columns WHERE table_name = :t AND "
            "column_name = :c"), {"t": table, "c": column}).scalar_one()
    engine.dispose()
    return found


def _ids_as(frame: pd.DataFrame, column: str, kind: str) -> tuple[pd.DataFrame, dict | None]:
    """``frame`` with its id column as text, BIGINT (NULLs kept) or double precision."""
    if kind == "text":
        return frame, None
    numbers = pd.to_numeric(frame[column])
    if kind == "bigint":
        return frame.assign(**{column: numbers.astype("Int64")}), {column: sa.BigInteger}
    return frame.assign(**{column: numbers.astype("float64")}), {column: sa.Float(53)}


# --------------------------------------------------------------------------- same customers


@pytest.mark.parametrize("csv", [RETAIL, SALES], ids=["online_retail", "sales_data_sample"])
def test_pg001_postgresql_equals_sqlite_and_file(tmp_path, shop, csv):
    """The shared samples loaded into a table: PostgreSQL, SQLite and the file agree on every
    customer's recency, frequency, monetary, dates and codes, and on the cleaning report."""
    frame = _typed(csv)
    _load(shop, frame, "lines")
    from_pg = read_source(Source("database", shop, "lines"))
    from_sqlite = read_source(Source("database", _sqlite(tmp_path, frame), "lines"))
    from_file = prepare_path(csv)
    _same(from_file, from_pg)
    _same(from_sqlite, from_pg)
    assert from_pg.shape == "transactions"
    assert from_pg.ingested.mapping == from_file.ingested.mapping
    assert "postgresql table" in from_pg.ingested.file_format
    if csv == RETAIL:
        report = from_pg.report
        assert report.rule("missing_customer_id").count == 5078
        assert report.customers == 3049
        assert report.rule("returns").count == 342
        assert len(report.rule("returns").examples) == 3
        # A country that changes within a customer's lines is the largest one in a database
        # (no row order: README), so compare it with SQLite's, not the file's last one.
        assert from_pg.customers["country"].tolist() == from_sqlite.customers["country"].tolist()


@pytest.mark.parametrize("kind", ["text", "bigint", "double"])
def test_pg002_integer_and_float_ids_read_as_the_file_reads_them(tmp_path, shop, kind):
    """Customer ids stored as text, as BIGINT beside NULLs, or as double precision (12346.0)
    are the ids the file gives ("12346"): once they came back as "12346.0" from both
    PostgreSQL and SQLite, because pandas made floats of integers beside a NULL."""
    frame, dtype = _ids_as(_typed(RETAIL), "CustomerID", kind)
    name = f"ids_{kind}"
    _load(shop, frame, name, dtype=dtype)
    stored = _column_type(shop, name, "CustomerID")
    assert stored == {"text": "text", "bigint": "bigint", "double": "double precision"}[kind]
    from_file = prepare_path(RETAIL)
    from_pg = read_source(Source("database", shop, name))
    _same(from_file, from_pg)
    _same(from_file, read_source(Source("database", _sqlite(tmp_path, frame, name), name)))
    assert from_pg.customers["customer_id"].iloc[0] == "12347"
    options = PrepareOptions(cleaning=CleaningOptions(drop_duplicates=True))
    _same(prepare_path(RETAIL, options), read_source(Source("database", shop, name), options))


def test_pg003_numeric_amounts_integer_orders_and_a_schema(shop):
    """Money as NUMERIC(12,2) (Decimal through the driver), order numbers as INTEGER, the
    table in another schema: still the file's customers."""
    frame = _typed(SALES)
    _load(shop, frame, "orders", schema="sales",
          dtype={"SALES": sa.Numeric(12, 2), "ORDERNUMBER": sa.Integer})
    from_pg = read_source(Source("database", shop, "sales.orders"))
    _same(prepare_path(SALES), from_pg)
    assert from_pg.report.customers == 92
    assert from_pg.customers["monetary"].dtype == "float64"


# Dates stored four ways; the times in _dirty() are late (23:59:59) and early (00:01) in the
# day, so a day taken from a timestamp in the wrong time zone or by truncating text shows.
_DATES = {
    "timestamp": lambda d: (d, None),
    "timestamptz": lambda d: (d.assign(Date=d["Date"].dt.tz_localize("UTC")), None),
    "iso-text": lambda d: (d.assign(Date=d["Date"].dt.strftime("%Y-%m-%d %H:%M:%S")), None),
    "date": lambda d: (d, {"Date": sa.Date}),
}


@pytest.mark.parametrize("dates", list(_DATES))
def test_pg004_dirty_log_by_hand(tmp_path, shop, dates):
    """The hand-made dirty log (missing ids as '', 'NA' and NULL, ids with spaces, a
    cancellation with a positive amount, a negative amount, NULL dates and amounts, a
    duplicate line, a customer with returns only): the numbers worked out by hand, and the
    CSV's."""
    frame = _dirty()
    csv = tmp_path / "dirty.csv"
    frame.to_csv(csv, index=False)
    stored, dtype = _DATES[dates](frame)
    name = f"dirty_{dates.replace('-', '_')}"
    _load(shop, stored, name, dtype=dtype)
    from_pg = read_source(Source("database", shop, name))
    _same(prepare_path(csv), from_pg)
    _same(read_source(Source("database", _sqlite(tmp_path, stored, name), name)), from_pg)
    # Reference date = the day after the latest order (2024-03-10 23:59:59): calendar days.
    assert from_pg.reference_date == pd.Timestamp("2024-03-11")
    by_id = from_pg.customers.set_index("customer_id")
    expected = {"A": [2, 2, 25.5], "B": [1, 1, -2.0], "C": [39, 0, -4.0], "D": [7, 1, 3.25]}
    assert {c: by_id.loc[c, ["recency", "frequency", "monetary"]].tolist()
            for c in expected} == expected
    assert by_id.loc["A", "last_order"] == pd.Timestamp("2024-03-09")  # 00:01 that day
    assert by_id.loc["B", "last_order"] == pd.Timestamp("2024-03-10")  # 23:59:59 that day
    report = from_pg.report
    assert [report.rule(r).count for r in ("missing_customer_id", "bad_order_date",
                                           "bad_amount", "duplicates", "returns")] == [
        3, 1, 1, 1, 3]
    assert (report.rows_read, report.customers) == (13, 4)


def test_pg005_no_order_id_counts_order_days(tmp_path, shop):
    """Without an order id, frequency is distinct order days: B's lines at 12:00 and
    23:59:59 on 2024-03-10 are one day; dropping duplicates agrees with the file too."""
    frame = _dirty().drop(columns=["Invoice"])
    csv = tmp_path / "dirty.csv"
    frame.to_csv(csv, index=False)
    _load(shop, frame, "no_invoice")
    from_pg = read_source(Source("database", shop, "no_invoice"))
    _same(prepare_path(csv), from_pg)
    by_id = from_pg.customers.set_index("customer_id")
    assert by_id.loc["B", ["frequency", "monetary"]].tolist() == [1, 12.0]
    assert by_id.loc["A", "frequency"] == 2  # 2024-03-01 (twice, a duplicate) and 03-09
    options = PrepareOptions(cleaning=CleaningOptions(drop_duplicates=True))
    deduped = read_source(Source("database", shop, "no_invoice"), options)
    _same(prepare_path(csv, options), deduped)
    assert deduped.customers.set_index("customer_id").loc["A", "monetary"] == 15.5


def test_pg006_customer_table(shop):
    """A customer table (one row per customer, income as NUMERIC) is read whole and gives the
    file's customers."""
    table = ingest.read_table(MALL.read_bytes(), MALL.name).table
    _load(shop, table, "mall", dtype={"Annual Income (k$)": sa.Numeric(10, 2)})
    prepared = read_source(Source("database", shop, "mall"))
    from_file = prepare_path(MALL)
    assert prepared.shape == "customers"
    assert len(prepared.customers) == 200
    pd.testing.assert_frame_equal(prepared.customers, from_file.customers, check_dtype=False)


# --------------------------------------------------------------------------- connecting


def test_pg007_url_spellings_socket_and_named_connections(postgres, shop):
    """postgresql://, postgresql+psycopg://, postgres:// and the unix socket all reach the
    server through psycopg 3; the app reads it only as an admin-named connection."""
    _load(shop, _dirty(), "lines")
    customers = {}
    spellings = {
        "plain": shop,
        "psycopg": shop.replace("postgresql://", "postgresql+psycopg://"),
        "heroku": shop.replace("postgresql://", "postgres://"),
        "socket": postgres.socket_url("shop"),
    }
    for key, url in spellings.items():
        source = parse_source(url, "lines")
        assert source.kind == "database"
        customers[key] = read_source(source).customers[RFM]
        pd.testing.assert_frame_equal(customers[key], customers["plain"])
    assert SourcePolicy().database_url(shop).drivername == "postgresql+psycopg"
    settings = Settings.from_env({"PERSONA_SOURCES": json.dumps({"shop": shop})})
    app = SourcePolicy.for_app(settings)
    named = read_source(Source("database", "shop", "lines"), policy=app)
    pd.testing.assert_frame_equal(named.customers[RFM], customers["plain"])
    with pytest.raises(SourceError, match="PERSONA_SOURCES"):
        read_source(Source("database", shop, "lines"), policy=app)
    assert postgres.password not in Source("database", shop, "lines").label()


def _message(source: Source) -> str:
    with pytest.raises(PersonaError) as caught:
        read_source(source)
    return str(caught.value)


def test_pg008_connection_errors_are_messages(postgres, shop):
    """Wrong password, missing database, missing table or schema, nothing listening, a URL
    that does not parse, and columns a query cannot use: one message each (SourceError or
    PersonaError, never a driver exception), and never the password."""
    _load(shop, _dirty(), "lines")
    wrong = postgres.url("shop", password="not-the-password")
    cases = [
        (wrong, "lines", "password authentication failed"),
        (postgres.url("no_such_db"), "lines", 'database "no_such_db" does not exist'),
        (shop, "orders", r"No table or view 'orders'.*found: .*lines"),
        (shop, "nowhere.lines", "No table or view 'nowhere.lines'"),
        (f"postgresql://{postgres.user}:pw@127.0.0.1:1/shop", "lines",
         r"could not be read \(connection failed: .*Connection refused"),
        (f"postgresql://{postgres.user}:pw@{postgres.host}:port/shop", "lines",
         "is not a database URL"),
    ]
    for url, table, needle in cases:
        message = _message(Source("database", url, table))
        assert re.search(needle, message), message
        assert postgres.password not in message
        assert "not-the-password" not in message
    text_amount = _dirty().astype({"Amount": str})
    _load(shop, text_amount, "text_amount")
    assert "number column" in _message(Source("database", shop, "text_amount"))
    us_dates = _dirty().assign(Date=lambda f: f["Date"].dt.strftime("%m/%d/%Y %H:%M"))
    _load(shop, us_dates, "us_dates")
    assert "year-month-day" in _message(Source("database", shop, "us_dates"))
    _load(shop, _dirty().head(0), "empty")
    assert "no rows" in _message(Source("database", shop, "empty"))


def test_pg009_cli_reads_postgresql(tmp_path, postgres, shop):
    """``--source postgresql://... --table`` writes the file's customers; a wrong password
    exits 2 with one line."""
    _load(shop, _typed(SALES), "orders")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dashapp", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    done = cli("rfm", "--source", shop, "--table", "orders", "--out", "db.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("92 customers")
    assert cli("rfm", str(SALES), "--out", "file.csv").returncode == 0
    read = {"dtype": {"customer_id": str}}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "file.csv", **read),
                                  pd.read_csv(tmp_path / "db.csv", **read))
    done = cli("rfm", "--source", postgres.url("shop", password="wrong"), "--table", "orders")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "password authentication failed" in lines[0], done.stderr
