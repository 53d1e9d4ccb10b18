"""The same-run check: both pipelines give the same RFM per customer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Monetary values are compared to the cent: ours rounds the net sum to two decimals.
MONEY_TOLERANCE = 0.005 + 1e-9


@dataclass(frozen=True)
class Agreement:
    """How the two RFM tables compare, customer by customer."""

    customers: int
    only_baseline: int
    only_ours: int
    frequency_differs: int
    monetary_differs: int
    recency_equal: int
    recency_one_day: int
    recency_other: int

    @property
    def ok(self) -> bool:
        """Same customers, same frequency and monetary; recency equal or ours one day more.

        The baseline counts whole 24-hour periods from the latest timestamp plus a day, ours
        counts calendar days, so ours is one more exactly when a customer's last order
        was earlier in its day than the latest order in its own day.
        """
        return (
            self.only_baseline == self.only_ours == 0
            and self.frequency_differs == self.monetary_differs == self.recency_other == 0
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}

    def describe(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        return (
            f"{verdict}: {self.customers:,} customers; frequency differs for "
            f"{self.frequency_differs}, monetary for {self.monetary_differs}; recency equal "
            f"for {self.recency_equal:,}, one day more for {self.recency_one_day:,}, "
            f"otherwise for {self.recency_other}"
            + (f"; ids only in one: {self.only_baseline} / {self.only_ours}"
               if self.only_baseline or self.only_ours else "")
        )


def read_rfm(path: str | Path) -> pd.DataFrame:
    """``customer_id``-indexed ``recency``, ``frequency``, ``monetary`` from a result CSV."""
    frame = pd.read_csv(path, dtype={"customer_id": str},
                        usecols=["customer_id", "recency", "frequency", "monetary"])
    return frame.set_index("customer_id")


def compare(baseline: pd.DataFrame, ours: pd.DataFrame) -> Agreement:
    """Compare two ``customer_id``-indexed RFM tables (``recency``, ``frequency``,
    ``monetary``)."""
    shared = baseline.index.intersection(ours.index)
    a, b = baseline.loc[shared], ours.loc[shared]
    frequency = a["frequency"].to_numpy(dtype=np.int64) != b["frequency"].to_numpy(np.int64)
    money = np.abs(a["monetary"].to_numpy(float) - b["monetary"].to_numpy(float))
    gap = b["recency"].to_numpy(np.int64) - a["recency"].to_numpy(np.int64)
    return Agreement(
        customers=len(shared),
        only_baseline=len(baseline.index.difference(shared)),
        only_ours=len(ours.index.difference(shared)),
        frequency_differs=int(frequency.sum()),
        monetary_differs=int((money > MONEY_TOLERANCE).sum()),
        recency_equal=int((gap == 0).sum()),
        recency_one_day=int((gap == 1).sum()),
        recency_other=int(((gap != 0) & (gap != 1)).sum()),
    )
