"""The paper's pipeline as it describes it: pandas, a Python lambda for recency, K-Means k=4."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler


def rfm(path: str | Path) -> pd.DataFrame:
    """``(n_customers, 3)`` ``Recency``, ``Frequency``, ``Monetary``, indexed by customer."""
    path = Path(path)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame["ORDERDATE"] = pd.to_datetime(frame["ORDERDATE"])
    snapshot = frame["ORDERDATE"].max() + pd.Timedelta(days=1)
    table = frame.groupby("CUSTOMERNAME").agg({
        "ORDERDATE": lambda x: (snapshot - x.max()).days,
        "ORDERNUMBER": "nunique",
        "SALES": "sum",
    })
    table.columns = ["Recency", "Frequency", "Monetary"]
    return table


def segment(table: pd.DataFrame, seed: int = 0) -> pd.Series:
    """K-Means (k=4, n_init=10) on the standardized RFM columns; labels by customer."""
    points = StandardScaler().fit_transform(table[["Recency", "Frequency", "Monetary"]])
    labels = KMeans(n_clusters=4, n_init=10, random_state=seed).fit_predict(points)
    return pd.Series(labels, index=table.index, name="Cluster")
