"""The bundled samples the project generates itself (``data/generate_samples.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dashapp.settings import PROJECT_ROOT

SAMPLE_DIR = PROJECT_ROOT / "data" / "samples"


@dataclass(frozen=True)
class Sample:
    key: str
    label: str
    filename: str

    @property
    def path(self) -> Path:
        return SAMPLE_DIR / self.filename

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


SAMPLES: dict[str, Sample] = {
    s.key: s
    for s in (
        Sample("retail", "Retail transactions (two years, planted personas)",
               "retail_transactions.csv"),
        Sample("mall", "Customer table (age, income, spending score)",
               "mall_style_customers.csv"),
    )
}
