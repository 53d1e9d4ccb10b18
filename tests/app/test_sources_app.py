"""Connect in the app: a source dataset is stored as its customers and a sidecar, opens,
segments, refreshes, obeys the server's roots and stays its user's own."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from callbacks.data import connect_hint, connect_source
from dashapp import accounts, ingest
from dashapp.analysis import Controls
from dashapp.datasets import DatasetMissingError
from dashapp.errors import PersonaError
from dashapp.services import Services
from dashapp.sources import Source, SourcePolicy, read_source

RETAIL = ("online_retail", "online_retail_sample_20000.csv")
RFM = ["customer_id", "recency", "frequency", "monetary"]


@pytest.fixture
def root(tmp_path, shared_data):
    folder = tmp_path / "sources"
    folder.mkdir()
    csv = shared_data.joinpath(*RETAIL)
    table = ingest.read_table(csv.read_bytes(), csv.name).table
    engine = sa.create_engine(f"sqlite:///{folder / 'shop.db'}")
    table.to_sql("orders", engine, index=False)
    engine.dispose()
    shutil.copy(csv, folder / "retail.csv")
    return folder


@pytest.fixture
def services(settings, root):
    return Services(dataclasses.replace(settings, source_roots=(root,)))


def _user(services: Services, email: str = "ana@example.com") -> int:
    return accounts.create_user(services.db, email, "a long enough password")


def test_con001_database_source_opens_segments_and_refreshes(services, root):
    user = _user(services)
    url = f"sqlite:///{root / 'shop.db'}"
    store = connect_source(services, user, "database", url, "orders")
    info = services.dataset(user, store["dataset"])
    assert info.name == f"orders @ {url}" and info.rows == 20_000
    prepared = services.prepared_for(user, store)
    expected = read_source(Source("database", url, "orders"))
    pd.testing.assert_frame_equal(prepared.customers[RFM], expected.customers[RFM])
    assert prepared.report.rule("missing_customer_id").count == 5078
    # Stored: the customers (one row each) and a sidecar, never the lines.
    stored = pd.read_parquet(services.datasets.path(user, info.id))
    assert len(stored) == 3049
    assert services.datasets.source_of(user, info.id) == {
        "kind": "database", "location": url, "table": "orders"}
    # A fresh process with no cache opens it from those files, without the source.
    shutil.rmtree(services.datasets.cache_dir(user, info.id))
    (root / "shop.db").rename(root / "away.db")
    again = Services(services.settings).prepared_for(user, store)
    pd.testing.assert_frame_equal(again.customers, prepared.customers, check_dtype=False)
    assert again.report == prepared.report and again.cuts == prepared.cuts
    analysis = services.analysis(user, info.id, None, Controls(k=3))
    assert analysis.segmentation.k == 3
    # Refresh reads the source again: here it lost its last 10,000 lines.
    (root / "away.db").rename(root / "shop.db")
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("DELETE FROM orders WHERE rowid > 10000"))
    engine.dispose()
    refreshed = services.refresh_source(user, info.id)
    assert refreshed.rows == 10_000 and refreshed.content_hash != info.content_hash
    assert services.prepared_for(user, store).report.rows_read == 10_000
    with pytest.raises(PersonaError, match="add the rows there"):
        services.append_customers(user, info.id, [{"CustomerID": "1"}])
    services.delete_dataset(user, info.id)
    assert not services.datasets.source_path(user, info.id).exists()


def test_con002_paths_and_urls_follow_the_settings(services, root, tmp_path):
    user = _user(services)
    store = connect_source(services, user, "path", str(root / "retail.csv"), None)
    assert services.prepared_for(user, store).report.customers == 3049
    # Connecting the same data again finds it.
    assert connect_source(services, user, "path", str(root / "retail.csv"), None) == store
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(root / "retail.csv", outside)
    bad = [("path", str(outside), "outside the folders"),
           ("path", str(root / ".." / "elsewhere.csv"), "outside the folders"),
           ("path", "retail.csv", "absolute path"),
           ("url", "http://127.0.0.1:9/x.csv", "turned off"),
           ("url", "file:///etc/passwd", "Only http"),
           ("database", f"sqlite:///{outside}", "outside the folders"),
           ("database", "postgresql://u:pw@db/shop", "PERSONA_SOURCES"),
           ("database", f"sqlite:///{root / 'shop.db'}", "nope"),
           ("bogus", "x", "Choose what to connect to"),
           ("path", None, "Enter a path")]
    for kind, location, needle in bad:
        table = "nope" if kind == "database" else None
        with pytest.raises(PersonaError, match=needle):
            connect_source(services, user, kind, location, table)
    assert len(services.datasets.list(user)) == 1
    off = Services(dataclasses.replace(services.settings, source_roots=()))
    with pytest.raises(PersonaError, match="PERSONA_SOURCE_ROOTS"):
        connect_source(off, user, "path", str(root / "retail.csv"), None)
    hint = str(connect_hint(SourcePolicy.for_app(services.settings)))
    assert str(root) in hint and "URLs are turned off" in hint


def test_con003_a_source_dataset_is_its_users_alone(services, root):
    ana, bea = _user(services), _user(services, "bea@example.com")
    store = connect_source(services, ana, "path", str(root / "retail.csv"), None)
    for call in (lambda: services.prepared_for(bea, store),
                 lambda: services.datasets.source_of(bea, store["dataset"]),
                 lambda: services.refresh_source(bea, store["dataset"])):
        with pytest.raises(DatasetMissingError):
            call()
    assert services.datasets.list(bea) == []
    # Bea connecting the same file gets a copy of her own.
    own = connect_source(services, bea, "path", str(root / "retail.csv"), None)
    assert own["dataset"] != store["dataset"]
