"""Per-user dataset storage: Parquet that reads exactly as the original upload, atomic writes,
ownership, rename, delete, reuse by content, appending rows."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from dashapp import accounts, ingest
from dashapp.datasets import DatasetMissingError, DatasetStore, to_parquet
from dashapp.db import Database
from dashapp.errors import PersonaError, TooLargeError, UnsupportedFormatError
from dashapp.pipeline import PrepareOptions, prepare
from dashapp.samples import SAMPLES
from dashapp.settings import Limits

SHARED_FILES = (
    ("sales_data_sample", "sales_data_sample.csv"),
    ("online_retail", "online_retail_sample_20000.csv"),
    ("mall_customers", "Mall_Customers.csv"),
)


@pytest.fixture
def db(metadata_url: str) -> Iterator[Database]:
    """SQLite, then PostgreSQL (``metadata_url`` in tests/postgres_server.py)."""
    database = Database(metadata_url)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def store(db: Database, tmp_path: Path) -> DatasetStore:
    return DatasetStore(db, tmp_path / "instance", Limits())


@pytest.fixture
def users(db: Database) -> tuple[int, int]:
    return (accounts.create_user(db, "a@example.com", "a password long"),
            accounts.create_user(db, "b@example.com", "b password long"))


def _decimal_comma_csv() -> bytes:
    lines = ["kunde;bestellung;datum;betrag"]
    for i in range(240):
        cents = f"{i % 100:02d}"
        # Some with a thousands dot: 1.234,56 is 1234.56.
        amount = f"{1 + i % 9}.{(i * 37) % 1000:03d},{cents}" if i % 9 == 0 \
            else f"{(i * 13) % 900},{cents}"
        lines.append(f"K{i % 25};B{i};{(i % 28) + 1:02d}.{(i % 12) + 1:02d}.2024;{amount}")
    lines.append("K3;B999;13.03.2024;-12,50")
    return ("\n".join(lines) + "\n").encode("cp1252")


def _workbook() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Customer", "Invoice", "Date", "Amount", "Qty", "Channel", "Code"])
    start = dt.datetime(2023, 3, 1, 9, 30)
    for i in range(180):
        sheet.append([f"C{i % 23:03d}", 5000 + i, start + dt.timedelta(days=i * 2, hours=i % 7),
                      round(((i * 7919) % 500) / 3 - 20, 2), (i % 6) or None,
                      ("web", "shop", None)[i % 3], i if i % 4 else f"X{i}"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cases(shared: Path) -> list[tuple[str, bytes, str]]:
    cases = [(name, (shared / folder / name).read_bytes(), name)
             for folder, name in SHARED_FILES]
    cases.append(("orders.csv", _decimal_comma_csv(), "orders.csv"))
    cases.append(("orders.xlsx", _workbook(), "orders.xlsx"))
    return cases


def _equivalent(data: bytes, filename: str, options: PrepareOptions) -> None:
    stored, rows = to_parquet(data, filename, Limits())
    assert stored.startswith(b"PAR1")
    original = prepare(data, filename, options)
    again = prepare(stored, filename, options)
    assert rows == original.report.rows_read
    assert_frame_equal(again.customers, original.customers)
    assert again.report == original.report
    assert again.ingested.encoding == original.ingested.encoding
    assert again.ingested.file_format == original.ingested.file_format
    assert again.ingested.delimiter == original.ingested.delimiter
    assert again.ingested.decimal == original.ingested.decimal
    assert again.ingested.notices == original.ingested.notices
    assert again.ingested.mapping == original.ingested.mapping
    assert again.numeric_features == original.numeric_features
    assert again.reference_date == original.reference_date


def test_ds001_stored_parquet_reads_exactly_as_the_original(shared_data):
    seen = {}
    for label, data, filename in _cases(shared_data):
        _equivalent(data, filename, PrepareOptions(limits=Limits()))
        seen[label] = prepare(data, filename, PrepareOptions(limits=Limits())).ingested
    assert seen["sales_data_sample.csv"].encoding == "cp1252"
    assert seen["orders.csv"].decimal == "," and seen["orders.csv"].delimiter == ";"
    assert seen["orders.xlsx"].file_format == "xlsx"
    assert seen["Mall_Customers.csv"].shape == "customers"


def test_ds002_other_mappings_and_date_orders_read_as_the_original(shared_data):
    sales = (shared_data / "sales_data_sample" / "sales_data_sample.csv").read_bytes()
    _equivalent(sales, "sales.csv", PrepareOptions(mapping={"customer_id": "COUNTRY"},
                                                   limits=Limits()))
    _equivalent(_decimal_comma_csv(), "orders.csv",
                PrepareOptions(dayfirst=False, limits=Limits()))
    _equivalent(_decimal_comma_csv(), "orders.csv",
                PrepareOptions(mapping={"order_id": ""}, dayfirst=True, limits=Limits()))
    mall = (shared_data / "mall_customers" / "Mall_Customers.csv").read_bytes()
    _equivalent(mall, "mall.csv", PrepareOptions(mapping={"customer_id": "CustomerID"},
                                                 limits=Limits()))
    ambiguous = b"customer,order,date,amount\na,1,01/02/2024,10\nb,2,03/04/2024,20\n" \
                b"a,3,12/01/2024,5\nc,4,05/06/2024,7\nb,5,02/03/2024,8\n"
    for dayfirst in (None, True, False):
        _equivalent(ambiguous, "a.csv", PrepareOptions(dayfirst=dayfirst, limits=Limits()))


def test_ds003_text_columns_stay_text_and_the_metadata_is_in_the_schema(shared_data):
    sales = (shared_data / "sales_data_sample" / "sales_data_sample.csv").read_bytes()
    stored, _ = to_parquet(sales, "sales.csv", Limits())
    schema = pq.read_schema(io.BytesIO(stored))
    assert all(str(t) in ("string", "large_string") for t in schema.types)
    assert ingest.RAW_METADATA_KEY in schema.metadata
    # A Parquet file with a malformed entry is read as the plain Parquet it is.
    table = pq.read_table(io.BytesIO(stored))
    broken = table.replace_schema_metadata({ingest.RAW_METADATA_KEY: b'{"version": 1}'})
    out = io.BytesIO()
    pq.write_table(broken, out)
    assert prepare(out.getvalue(), "x.parquet").ingested.encoding == "parquet"


def test_ds004_datasets_are_per_user_and_someone_elses_id_is_missing(store, users,
                                                                     shared_data):
    a, b = users
    mall = (shared_data / "mall_customers" / "Mall_Customers.csv").read_bytes()
    added = store.add(a, mall, "Mall_Customers.csv")
    assert added.created and added.prepared.report.customers == 200
    info = added.info
    assert store.path(a, info.id) == store.instance_dir / "users" / str(a) / "datasets" / \
        f"{info.id}.parquet"
    assert store.path(a, info.id).is_file()
    assert [d.id for d in store.list(a)] == [info.id] and store.list(b) == []
    assert (info.rows, info.name, info.filename) == (200, "Mall_Customers.csv",
                                                    "Mall_Customers.csv")
    assert info.size_bytes == store.path(a, info.id).stat().st_size
    with pytest.raises(DatasetMissingError) as theirs:
        store.get(b, info.id)
    with pytest.raises(DatasetMissingError) as missing:
        store.get(b, "0" * 32)
    assert str(theirs.value) == str(missing.value)
    for bad in ("../../etc/passwd", "0" * 31, "A" * 32, None, 12, ["x"]):
        with pytest.raises(DatasetMissingError):
            store.get(a, bad)
    for action in (lambda: store.rename(b, info.id, "mine"), lambda: store.delete(b, info.id),
                   lambda: store.read_bytes(b, info.id),
                   lambda: store.append_customers(b, info.id, [{"Age": 30}])):
        with pytest.raises(DatasetMissingError):
            action()
    assert store.get(a, info.id).name == "Mall_Customers.csv"
    assert store.path(a, info.id).is_file()
    # The same content is stored once per user; another user gets their own copy.
    again = store.add(a, mall, "copy.csv")
    assert not again.created and again.info.id == info.id and len(store.list(a)) == 1
    theirs_too = store.add(b, mall, "Mall_Customers.csv")
    assert theirs_too.created and theirs_too.info.id != info.id


def test_ds005_bad_uploads_are_refused_before_anything_is_written(store, users, tmp_path):
    a, _ = users
    good = store.add(a, SAMPLES["mall"].read_bytes(), "mall.csv").info
    before = sorted(p.name for p in store.user_dir(a).rglob("*"))
    with pytest.raises(UnsupportedFormatError):
        store.add(a, b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "photo.csv")
    with pytest.raises(PersonaError, match="customer id|order date"):
        store.add(a, b"order,date,amount\n1,2024-01-02,5\n2,2024-01-03,7\n", "orders.csv")
    with pytest.raises(PersonaError, match="empty"):
        store.add(a, b"  \n", "empty.csv")
    small = DatasetStore(store.db, store.instance_dir, Limits(max_bytes=1000))
    with pytest.raises(TooLargeError, match="limited to"):
        small.add(a, b"customer_id,age\n" + b"".join(b"%d,%d\n" % (i, i % 70)
                                                      for i in range(500)), "big.csv")
    assert sorted(p.name for p in store.user_dir(a).rglob("*")) == before
    assert [d.id for d in store.list(a)] == [good.id]


def test_ds006_rename_validates_and_delete_removes_file_and_cache(store, users):
    a, _ = users
    info = store.add(a, SAMPLES["mall"].read_bytes(), "mall.csv").info
    assert store.rename(a, info.id, "  Spring mall  ").name == "Spring mall"
    for bad in ("", "   ", "x" * 201, "two\nlines", None, 42):
        with pytest.raises(PersonaError):
            store.rename(a, info.id, bad)
    assert store.get(a, info.id).name == "Spring mall"
    cache = store.cache_dir(a, info.id)
    cache.mkdir(parents=True)
    (cache / "entry").write_bytes(b"cached")
    gone = store.delete(a, info.id)
    assert gone.name == "Spring mall"
    assert not store.path(a, info.id).exists() and not cache.exists()
    assert store.list(a) == []
    with pytest.raises(DatasetMissingError):
        store.delete(a, info.id)


def test_ds007_a_sample_is_stored_once_and_the_latest_used_comes_first(store, users):
    a, _ = users
    retail = store.add_sample(a, "retail")
    mall = store.add_sample(a, "mall")
    assert retail.created and mall.created
    again = store.add_sample(a, "retail")
    assert not again.created and again.info.id == retail.info.id
    assert [d.id for d in store.list(a)] == [retail.info.id, mall.info.id]
    assert store.latest(a).id == retail.info.id
    with pytest.raises(PersonaError, match="Unknown sample"):
        store.add_sample(a, "../../etc/passwd")


def test_ds008_writes_are_atomic_and_leave_no_temporary_files(store, users, shared_data):
    a, _ = users
    sales = (shared_data / "sales_data_sample" / "sales_data_sample.csv").read_bytes()
    info = store.add(a, sales, "sales.csv").info
    folder = store.path(a, info.id).parent
    assert [p.name for p in folder.iterdir()] == [f"{info.id}.parquet"]
    stored, _ = store.read_bytes(a, info.id)
    assert stored == to_parquet(sales, "sales.csv", Limits())[0]


def test_ds009_appended_customers_are_read_back_and_bad_rows_change_nothing(store, users):
    a, _ = users
    info = store.add(a, SAMPLES["mall"].read_bytes(), "mall_style_customers.csv").info
    columns = store.columns(a, info.id)
    assert "Age" in columns
    first = prepare(store.read_bytes(a, info.id)[0], info.filename)
    new = {"CustomerID": "N-1", "Gender": "Female", "Age": 31,
           "Annual Income (k$)": 72.5, "Spending Score (1-100)": 64}
    cache = store.cache_dir(a, info.id)
    cache.mkdir(parents=True)
    updated = store.append_customers(a, info.id, [new])
    assert updated.rows == info.rows + 1 and updated.content_hash != info.content_hash
    assert not cache.exists()
    after = prepare(store.read_bytes(a, info.id)[0], info.filename)
    assert after.report.customers == first.report.customers + 1
    row = after.customers.set_index("customer_id").loc["N-1"]
    assert (row["Age"], row["Annual Income (k$)"], row["Spending Score (1-100)"]) == \
        (31.0, 72.5, 64.0)
    assert_frame_equal(after.customers.iloc[:-1].drop(columns="outlier"),
                       first.customers.drop(columns="outlier"))
    stored = store.read_bytes(a, info.id)[0]
    for rows in ([], [{"Nope": 1}], [{"Age": float("nan")}], [{"Age": [1]}],
                 [{"Age": "old"}] * 200, [new] * 1001, "rows"):
        with pytest.raises(PersonaError):
            store.append_customers(a, info.id, rows)
    assert store.read_bytes(a, info.id)[0] == stored
    assert store.get(a, info.id).rows == updated.rows


def test_ds010_a_typed_excel_table_takes_appended_rows_in_its_types(store, users):
    a, _ = users
    info = store.add(a, _workbook(), "orders.xlsx").info
    updated = store.append_customers(a, info.id, [
        {"Customer": "C999", "Invoice": 9999, "Date": "2024-01-05 10:00", "Amount": 12.5,
         "Qty": 2, "Channel": "web", "Code": 7}])
    table = pd.read_parquet(store.path(a, info.id))
    assert updated.rows == 181 and table["Date"].iloc[-1] == pd.Timestamp("2024-01-05 10:00")
    prepared = prepare(store.read_bytes(a, info.id)[0], info.filename)
    assert "C999" in set(prepared.customers["customer_id"])


def test_ds011_a_request_reads_its_dataset_once_until_a_write(store, users, db, monkeypatch):
    a, b = users
    info = store.add(a, SAMPLES["mall"].read_bytes(), "mall.csv").info
    reads = []
    real = db.read

    def counted():
        reads.append(1)
        return real()

    monkeypatch.setattr(db, "read", counted)
    memo: dict = {}
    store.scope = lambda: memo
    assert store.get(a, info.id) == store.get(a, info.id) == store.get(a, info.id)
    assert len(reads) == 1
    # A write in between (here a rename) and the next read is fresh.
    store.rename(a, info.id, "Renamed")
    assert store.get(a, info.id).name == "Renamed"
    # Someone else's id and a missing one still raise every time, never kept.
    for _ in range(2):
        with pytest.raises(DatasetMissingError):
            store.get(b, info.id)
    # Outside a request (scope gives None) every call reads.
    store.scope = lambda: None
    before = len(reads)
    store.get(a, info.id), store.get(a, info.id)
    assert len(reads) == before + 2
