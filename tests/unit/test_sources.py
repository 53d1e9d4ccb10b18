"""Sources: server paths under roots, URLs, and database tables aggregated in the query give
what the same data gives as a file."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from dashapp import ingest
from dashapp.clean import CleaningOptions
from dashapp.errors import MissingRoleError, PersonaError, TooLargeError
from dashapp.pipeline import PrepareOptions, prepare_path
from dashapp.settings import Settings
from dashapp.sources import (
    Source,
    SourceError,
    SourcePolicy,
    aggregate_query,
    parse_source,
    read_source,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
RETAIL = DATA / "online_retail" / "online_retail_sample_20000.csv"
SALES = DATA / "sales_data_sample" / "sales_data_sample.csv"
MALL = DATA / "mall_customers" / "Mall_Customers.csv"
RFM = ["customer_id", "recency", "frequency", "monetary", "first_order", "last_order",
       "tenure"]

pytestmark = pytest.mark.skipif(not RETAIL.exists(), reason="shared data not found")


def _sqlite(tmp_path: Path, frame: pd.DataFrame, name: str = "lines") -> str:
    path = tmp_path / f"{name}.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    frame.to_sql(name, engine, index=False)
    engine.dispose()
    return f"sqlite:///{path}"


def _typed(csv: Path) -> pd.DataFrame:
    """The file's table as ingest types it (ids text, dates datetime, numbers float)."""
    return ingest.read_table(csv.read_bytes(), csv.name).table


def _same(file_prepared, db_prepared) -> None:
    a = file_prepared.customers[RFM].reset_index(drop=True)
    b = db_prepared.customers[RFM].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert file_prepared.reference_date == db_prepared.reference_date
    ra, rb = file_prepared.report, db_prepared.report
    assert (ra.rows_read, ra.rows_kept, ra.customers) == (rb.rows_read, rb.rows_kept,
                                                          rb.customers)
    assert [(r.rule, r.count, r.action) for r in ra.rules] == [
        (r.rule, r.count, r.action) for r in rb.rules]
    assert ra.rule("returns").detail == rb.rule("returns").detail
    assert list(file_prepared.customers["rfm_code"]) == list(db_prepared.customers["rfm_code"])


@pytest.mark.parametrize("csv", [RETAIL, SALES], ids=["online_retail", "sales_data_sample"])
def test_src001_database_equals_file(tmp_path, csv):
    url = _sqlite(tmp_path, _typed(csv))
    from_file = prepare_path(csv)
    from_db = read_source(Source("database", url, "lines"))
    _same(from_file, from_db)
    assert from_db.shape == "transactions"
    assert from_db.ingested.mapping == from_file.ingested.mapping


def test_src002_online_retail_dirt_is_counted_in_the_query(tmp_path):
    prepared = read_source(Source("database", _sqlite(tmp_path, _typed(RETAIL)), "lines"))
    report = prepared.report
    assert report.rule("missing_customer_id").count == 5078
    assert report.customers == 3049
    assert report.rule("returns").count == 342  # 350 C-invoices, 398 negative quantities, kept
    assert len(report.rule("returns").examples) == 3
    assert "country" in prepared.customers


def _dirty() -> pd.DataFrame:
    """A hand-made log: missing ids in three spellings, ids with spaces, a cancellation with
    a positive amount, a negative amount, missing dates and amounts, a duplicate line, a
    customer with returns only, and times late and early in the day."""
    rows = [
        ("A", "1", "2024-03-01 23:59:00", 10.0),
        ("A", "1", "2024-03-01 23:59:00", 10.0),
        (" A ", "2", "2024-03-09 00:01:00", 5.5),
        ("B", "3", "2024-03-10 23:59:59", 7.0),
        ("B", "C3", "2024-03-10 12:00:00", 7.0),
        ("B", "4", "2024-03-05 08:00:00", -2.0),
        ("C", "C9", "2024-02-01 10:00:00", 4.0),
        ("", "5", "2024-03-02 10:00:00", 1.0),
        ("NA", "6", "2024-03-02 10:00:00", 1.0),
        (None, "7", "2024-03-02 10:00:00", 1.0),
        ("D", "8", None, 3.0),
        ("D", "9", "2024-03-03 10:00:00", None),
        ("D", "10", "2024-03-04 00:00:00", 3.25),
    ]
    frame = pd.DataFrame(rows, columns=["Customer", "Invoice", "Date", "Amount"])
    frame["Date"] = pd.to_datetime(frame["Date"])
    return frame


@pytest.mark.parametrize("dates_as_text", [False, True], ids=["timestamp", "iso-text"])
def test_src003_dirty_log_equals_csv(tmp_path, dates_as_text):
    frame = _dirty()
    csv = tmp_path / "dirty.csv"
    frame.to_csv(csv, index=False)
    stored = frame.copy()
    if dates_as_text:
        stored["Date"] = stored["Date"].dt.strftime("%Y-%m-%d %H:%M:%S")
    from_db = read_source(Source("database", _sqlite(tmp_path, stored), "lines"))
    from_file = prepare_path(csv)
    _same(from_file, from_db)
    by_id = from_db.customers.set_index("customer_id")
    # Reference date = the day after 2024-03-10 23:59:59; calendar days only.
    assert from_db.reference_date == pd.Timestamp("2024-03-11")
    assert by_id.loc["A", ["recency", "frequency", "monetary"]].tolist() == [2, 2, 25.5]
    assert by_id.loc["B", ["recency", "frequency", "monetary"]].tolist() == [1, 1, -2.0]
    assert by_id.loc["C", ["recency", "frequency", "monetary"]].tolist() == [39, 0, -4.0]
    report = from_db.report
    assert [report.rule(r).count for r in ("missing_customer_id", "bad_order_date",
                                           "bad_amount", "duplicates", "returns")] == [
        3, 1, 1, 1, 3]


def test_src004_drop_duplicates_and_no_order_id(tmp_path):
    frame = _dirty().drop(columns=["Invoice"])
    csv = tmp_path / "dirty.csv"
    frame.to_csv(csv, index=False)
    url = _sqlite(tmp_path, frame)
    options = PrepareOptions(cleaning=CleaningOptions(drop_duplicates=True))
    _same(prepare_path(csv, options), read_source(Source("database", url, "lines"), options))
    # Without an order id, frequency counts distinct order days.
    _same(prepare_path(csv), read_source(Source("database", url, "lines")))


def test_src005_mapping_overrides_detection(tmp_path):
    frame = _dirty().rename(columns={"Customer": "who", "Invoice": "ref", "Date": "at",
                                     "Amount": "eur"})
    url = _sqlite(tmp_path, frame)
    no_amount = _sqlite(tmp_path, _dirty().drop(columns=["Amount"]), "no_amount")
    with pytest.raises(MissingRoleError, match="amount"):
        read_source(Source("database", no_amount, "no_amount"), PrepareOptions(
            shape="transactions"))
    mapping = {"customer_id": "who", "order_id": "ref", "order_date": "at", "amount": "eur"}
    prepared = read_source(Source("database", url, "lines"), PrepareOptions(mapping=mapping))
    assert prepared.report.customers == 4
    assert prepared.ingested.mapping == mapping


def test_src006_customer_table_in_a_database(tmp_path):
    table = ingest.read_table(MALL.read_bytes(), MALL.name).table
    prepared = read_source(Source("database", _sqlite(tmp_path, table, "mall"), "mall"))
    from_file = prepare_path(MALL)
    assert prepared.shape == "customers"
    pd.testing.assert_frame_equal(prepared.customers, from_file.customers, check_dtype=False)
    assert prepared.customers["customer_id"].iloc[0] == from_file.customers["customer_id"].iloc[0]


def test_src007_database_errors_are_messages(tmp_path):
    url = _sqlite(tmp_path, _dirty())
    with pytest.raises(SourceError, match="No table or view 'orders'.*found: lines"):
        read_source(Source("database", url, "orders"))
    with pytest.raises(SourceError, match="No SQLite database"):
        read_source(Source("database", f"sqlite:///{tmp_path}/missing.db", "lines"))
    assert not (tmp_path / "missing.db").exists()  # opened read-only: never created
    with pytest.raises(SourceError, match="not supported"):
        parse_source("ftp://example.com/x.csv")
    with pytest.raises(SourceError, match="--table"):
        parse_source(url)
    text_amount = _dirty().astype({"Amount": str})
    with pytest.raises(PersonaError, match="number column"):
        read_source(Source("database", _sqlite(tmp_path, text_amount, "t"), "t"))
    us_dates = _dirty().assign(Date=lambda f: f["Date"].dt.strftime("%m/%d/%Y %H:%M"))
    with pytest.raises(PersonaError, match="year-month-day"):
        read_source(Source("database", _sqlite(tmp_path, us_dates, "u"), "u"))


def test_src008_query_compiles_for_postgresql(tmp_path):
    """The Core query compiles for PostgreSQL without a server (test_sources_postgres.py
    runs it on one)."""
    frame = _typed(RETAIL)
    url = _sqlite(tmp_path, frame)
    engine = sa.create_engine(url)
    table = sa.Table("lines", sa.MetaData(), autoload_with=engine)
    detected = ingest.read_table(RETAIL.read_bytes(), RETAIL.name)
    query = aggregate_query(table, detected, frame.head(100), "postgresql")
    sql = str(query.select.compile(dialect=postgresql.dialect()))
    assert "GROUP BY" in sql and "count(DISTINCT CASE WHEN" in sql
    assert "lower(trim(" in sql
    engine.dispose()


# --------------------------------------------------------------------------- paths


def test_src009_paths_only_under_roots(tmp_path):
    root = tmp_path / "root"
    (root / "logs").mkdir(parents=True)
    outside = tmp_path / "secret.csv"
    outside.write_bytes(SALES.read_bytes())
    (root / "logs" / "sales.csv").write_bytes(SALES.read_bytes())
    (root / "link.csv").symlink_to(outside)
    policy = SourcePolicy(roots=(root,))
    prepared = read_source(Source("path", str(root / "logs" / "sales.csv")), policy=policy)
    assert prepared.report.customers == 92
    for bad in (str(outside), str(root / "logs" / ".." / ".." / "secret.csv"),
                str(root / "link.csv")):
        with pytest.raises(SourceError, match="outside the folders"):
            read_source(Source("path", bad), policy=policy)
    with pytest.raises(SourceError, match="absolute path"):
        read_source(Source("path", "logs/sales.csv"), policy=policy)
    with pytest.raises(SourceError, match="No such file"):
        read_source(Source("path", str(root / "nope.csv")), policy=policy)
    with pytest.raises(SourceError, match="PERSONA_SOURCE_ROOTS"):
        read_source(Source("path", str(root / "logs" / "sales.csv")),
                    policy=SourcePolicy(roots=()))
    (root / "logs" / "z.csv").symlink_to(outside)
    with pytest.raises(SourceError, match="links outside"):
        read_source(Source("path", str(root / "logs")), policy=policy)


def test_src010_folder_of_csv_slices_equals_whole_file(tmp_path):
    lines = RETAIL.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    folder = tmp_path / "root" / "retail"
    folder.mkdir(parents=True)
    step = len(body) // 3 + 1
    for i in range(3):
        (folder / f"part-{i}.csv").write_bytes(header + b"".join(body[i * step:(i + 1) * step]))
    policy = SourcePolicy(roots=(tmp_path / "root",))
    whole = prepare_path(RETAIL)
    parts = read_source(Source("path", str(folder)), policy=policy)
    pd.testing.assert_frame_equal(whole.customers[RFM], parts.customers[RFM])
    assert parts.report.rule("missing_customer_id").count == 5078


def test_src011_sqlite_urls_obey_the_roots(tmp_path):
    url = _sqlite(tmp_path, _dirty())
    app = SourcePolicy(roots=(tmp_path / "elsewhere",), database_urls=False)
    with pytest.raises(SourceError, match="outside the folders"):
        read_source(Source("database", url, "lines"), policy=app)
    inside = SourcePolicy(roots=(tmp_path,), database_urls=False)
    assert read_source(Source("database", url, "lines"), policy=inside).report.customers == 4
    with pytest.raises(SourceError, match="PERSONA_SOURCES"):
        inside.database_url("postgresql+psycopg://u:secret@db.example/shop")
    named = SourcePolicy(roots=(tmp_path,), database_urls=False, connections={"shop": url})
    assert read_source(Source("database", "shop", "lines"), policy=named).report.customers == 4
    with pytest.raises(SourceError, match="No database connection named 'crm'"):
        named.database_url("crm")
    label = Source("database", "postgresql://u:secret@db.example/shop", "orders").label()
    assert "secret" not in label and "orders" in label


def test_src012_settings_from_env(tmp_path):
    settings = Settings.from_env({
        "PERSONA_SOURCE_ROOTS": f"{tmp_path}/a{__import__('os').pathsep}{tmp_path}/b",
        "PERSONA_SOURCE_URLS": "1",
        "PERSONA_SOURCES": '{"shop": "sqlite:///x.db"}',
        "PERSONA_SOURCE_URL_MAX_MB": "5",
    })
    assert settings.source_roots == (tmp_path / "a", tmp_path / "b")
    assert settings.source_urls and not settings.source_url_private
    assert settings.source_connections == {"shop": "sqlite:///x.db"}
    assert settings.source_url_max_bytes == 5 * 2**20
    default = Settings.from_env({})
    assert default.source_roots == () and not default.source_urls
    with pytest.raises(ValueError, match="PERSONA_SOURCES"):
        Settings.from_env({"PERSONA_SOURCES": "shop=sqlite:///x.db"})


# --------------------------------------------------------------------------- URLs


@pytest.fixture
def served(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www`` (there is no internet)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_src013_url_is_read_as_the_file(served):
    www, base = served
    (www / "sales.csv").write_bytes(SALES.read_bytes())
    prepared = read_source(parse_source(f"{base}/sales.csv"))
    _same(prepare_path(SALES), prepared)
    with pytest.raises(SourceError, match="404"):
        read_source(parse_source(f"{base}/missing.csv"))
    with pytest.raises(TooLargeError, match="PERSONA_SOURCE_URL_MAX_MB"):
        read_source(parse_source(f"{base}/sales.csv"), policy=SourcePolicy(url_max_bytes=1000))


def test_src014_app_policy_guards_urls(served, tmp_path):
    www, base = served
    (www / "sales.csv").write_bytes(SALES.read_bytes())
    off = SourcePolicy.for_app(Settings.from_env({}))
    with pytest.raises(SourceError, match="PERSONA_SOURCE_URLS=1"):
        read_source(Source("url", f"{base}/sales.csv"), policy=off)
    public_only = SourcePolicy.for_app(Settings.from_env({"PERSONA_SOURCE_URLS": "1"}))
    with pytest.raises(SourceError, match="local or private address"):
        read_source(Source("url", f"{base}/sales.csv"), policy=public_only)
    for scheme in ("file:///etc/passwd", "ftp://example.com/a.csv"):
        with pytest.raises(SourceError, match="Only http:// and https://"):
            read_source(Source("url", scheme), policy=public_only)
    allowed = SourcePolicy.for_app(Settings.from_env(
        {"PERSONA_SOURCE_URLS": "1", "PERSONA_SOURCE_URL_PRIVATE": "1"}))
    assert read_source(Source("url", f"{base}/sales.csv"),
                       policy=allowed).report.customers == 92
    with pytest.raises(SourceError, match="could not be reached"):
        read_source(Source("url", "http://127.0.0.1:9/x.csv"), policy=allowed)
