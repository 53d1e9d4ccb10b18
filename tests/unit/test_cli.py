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
