"""The command line end to end, in a real subprocess, on the paper's data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashapp", *args], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120,
    )


@pytest.fixture(scope="module")
def sales_run(tmp_path_factory, request):
    shared = request.config.rootpath.parent / "shared" / "data"
    out = tmp_path_factory.mktemp("cli")
    done = _cli("segment", str(shared / "sales_data_sample" / "sales_data_sample.csv"),
                "--k", "4", "--out", "customers.csv", "--summary", "summary.json", cwd=out)
    return done, out


def test_segment_reproduces_the_paper_figures(sales_run):
    done, out = sales_run
    assert done.returncode == 0, done.stderr
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert len(customers) == 92
    assert list(customers.columns[:4]) == ["customer_id", "recency", "frequency", "monetary"]
    for column in ("r_score", "f_score", "m_score", "rfm_segment", "segment", "persona"):
        assert column in customers.columns
    lyon = customers.set_index("customer_id").loc["Lyon Souveniers"]
    assert (lyon["recency"], lyon["frequency"]) == (76, 3)
    assert lyon["monetary"] == pytest.approx(78570.34)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shape"] == "transactions"
    assert summary["mapping"]["customer_id"] == "CUSTOMERNAME"
    assert summary["encoding"] in {"cp1252", "iso-8859-1"}
    assert summary["algorithm"] == "kmeans" and summary["k"] == 4
    assert round(summary["metrics"]["silhouette"], 3) == 0.494
    for key in ("calinski_harabasz", "davies_bouldin", "inertia"):
        assert summary["metrics"][key] > 0
    sizes = sorted((s["size"] for s in summary["segments"]), reverse=True)
    assert sizes == [49, 29, 12, 2]
    assert customers["segment"].value_counts().sort_index().tolist() == [
        s["size"] for s in summary["segments"]]
    segment = summary["segments"][0]
    assert set(segment) >= {"segment", "persona", "size", "centroid", "revenue_share"}
    assert set(segment["centroid"]) == {"recency", "frequency", "monetary"}
    assert sum(s["revenue_share"] for s in summary["segments"]) == pytest.approx(1.0)
    assert len({s["persona"] for s in summary["segments"]}) == 4
    assert summary["cleaning"]["rows_read"] == 2823


def test_rfm_command(tmp_path, shared_data):
    done = _cli("rfm", str(shared_data / "sales_data_sample" / "sales_data_sample.csv"),
                "--out", "rfm.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "rfm.csv").set_index("customer_id")
    assert table.loc["Land of Toys Inc.", ["recency", "frequency"]].tolist() == [198, 4]
    assert table.loc["Reims Collectables", "monetary"] == pytest.approx(135042.94)
    assert table["rfm_segment"].notna().all()


def test_auto_k_and_other_algorithms(tmp_path, shared_data):
    mall = shared_data / "mall_customers" / "Mall_Customers.csv"
    done = _cli("segment", str(mall), "--k", "auto", "--algorithm", "gmm",
                "--features", "Annual Income (k$),Spending Score (1-100)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["shape"] == "customers"
    assert summary["k_selection"]["recommended"] == summary["k"]
    customers = pd.read_csv(tmp_path / "customers.csv", dtype={"customer_id": str})
    assert customers["customer_id"].iloc[0] == "0001"
    assert "r_score" not in customers.columns


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["segment", "missing.csv"], "no such file"),
        (["segment", "{empty}"], "empty"),
        (["segment", "{sales}", "--k", "many"], "--k"),
        (["segment", "{sales}", "--k", "500"], "largest k allowed"),
        (["segment", "{sales}", "--map", "bogus=X"], "unknown role"),
        (["segment", "{sales}", "--map", "amount=NOPE"], "NOPE"),
        (["segment", "{sales}", "--features", "age"], "'age'"),
        (["segment", "{sales}", "--algorithm", "magic"], "invalid choice"),
        (["rfm", "{mall}"], "customer table"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, shared_data, args, needle):
    (tmp_path / "empty.csv").write_bytes(b"")
    paths = {
        "{empty}": str(tmp_path / "empty.csv"),
        "{sales}": str(shared_data / "sales_data_sample" / "sales_data_sample.csv"),
        "{mall}": str(shared_data / "mall_customers" / "Mall_Customers.csv"),
    }
    done = _cli(*[paths.get(a, a) for a in args], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in done.stderr


def test_source_database_and_folder_give_the_file_result(tmp_path, shared_data):
    """``--source`` reads a SQLite table (aggregated in the query) and a folder of CSV files,
    and writes the same customers as the file."""
    import sqlalchemy as sa

    from dashapp import ingest

    csv = shared_data / "online_retail" / "online_retail_sample_20000.csv"
    table = ingest.read_table(csv.read_bytes(), csv.name).table
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    table.to_sql("orders", engine, index=False)
    engine.dispose()
    folder = tmp_path / "parts"
    folder.mkdir()
    lines = csv.read_bytes().splitlines(keepends=True)
    (folder / "a.csv").write_bytes(b"".join(lines[:9000]))
    (folder / "b.csv").write_bytes(lines[0] + b"".join(lines[9000:]))
    runs = {
        "file": ["rfm", str(csv)],
        "db": ["rfm", "--source", f"sqlite:///{tmp_path / 'shop.db'}", "--table", "orders"],
        "folder": ["rfm", "--source", str(folder)],
    }
    frames = {}
    for key, args in runs.items():
        done = _cli(*args, "--out", f"{key}.csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("3,049 customers")
        frames[key] = pd.read_csv(tmp_path / f"{key}.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(frames["file"], frames["db"])
    pd.testing.assert_frame_equal(frames["file"], frames["folder"])
    done = _cli("segment", "--source", f"sqlite:///{tmp_path / 'shop.db'}", "--table", "orders",
                "--k", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3,049 customers, 3 segments" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rfm"], "either an INPUT file or --source"),
        (["rfm", "{sales}", "--source", "{sales}"], "either an INPUT file or --source"),
        (["rfm", "{sales}", "--table", "t"], "--table goes with --source"),
        (["rfm", "--source", "{db}"], "--table"),
        (["rfm", "--source", "{db}", "--table", "nope"], "no table or view 'nope'"),
        (["rfm", "--source", "ftp://example.com/a.csv"], "not supported"),
        (["rfm", "--source", "http://127.0.0.1:9/a.csv"], "could not be reached"),
        (["rfm", "--source", "{tmp}/nothing"], "no such file or folder"),
        (["rfm", "--source", "mysql://u@h/db", "--table", "t"], "not supported"),
    ],
)
def test_source_bad_input_exits_2_with_one_line(tmp_path, shared_data, args, needle):
    import sqlite3

    sqlite3.connect(tmp_path / "x.db").execute("CREATE TABLE t (a INTEGER)").connection.close()
    paths = {"{sales}": str(shared_data / "sales_data_sample" / "sales_data_sample.csv"),
             "{db}": f"sqlite:///{tmp_path / 'x.db'}"}
    args = [paths.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert needle.lower() in lines[0].lower()


def test_segment_hashes_no_file(tmp_path, shared_data, monkeypatch):
    # The command line keeps no cache, so it never hashes its input: not on the DuckDB path
    # (here from 0 bytes up), not on the general one.
    import dashapp.fastpath as fastpath_module
    import dashapp.pipeline as pipeline_module
    from benchmarks import generate
    from dashapp import cli

    def refuse(*args, **kwargs):
        raise AssertionError("the input was hashed")

    monkeypatch.setattr(fastpath_module, "_Digest", refuse)
    monkeypatch.setattr(pipeline_module, "content_hash", refuse)
    log = generate.ensure(100_000, tmp_path).parquet
    sales = shared_data / "sales_data_sample" / "sales_data_sample.csv"
    for path, fast in ((log, True), (sales, False)):
        monkeypatch.setattr(fastpath_module, "FAST_MIN_BYTES", 0 if fast else 10**12)
        out = tmp_path / f"{path.stem}.csv"
        assert cli.main(["segment", str(path), "--k", "4", "--out", str(out),
                         "--summary", str(tmp_path / "summary.json")]) == 0
        assert len(pd.read_csv(out)) == (5_000 if fast else 92)
