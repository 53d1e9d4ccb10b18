"""The Gaussian mixture's EM, scikit-learn's against ``dashapp.mixture``'s, side by side:

    .venv/bin/python -m benchmarks.gmm --customers 50k,500k --rounds 5

On the benchmark's generated logs (``benchmarks/generate.py``, ~20 lines per customer) made
into customers by the app's own preparation, standardized RFM as the dashboard fits it: the
three starts to convergence on the 20,000-customer sample (sklearn's ``GaussianMixture(k,
n_init=3, random_state=0).fit``, ours ``mixture.fit``), then one EM step on every customer
with the labels after it (sklearn's fit from the three ``*_init`` with ``max_iter=1`` and
its ``predict``; ours ``refine`` and ``predict``). Both alternate within each round, in one
process, one thread for BLAS as the app runs them; medians over the rounds, the median of
the per-round ratios, whether both starts reach the same lower bound (to 1e-9) and the
share of customers with the same label after the step (the lowest over the rounds; sklearn
rebuilds the precisions' factors from the precisions, so a customer on a border can differ).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmarks import generate
from benchmarks.run import DEFAULT_DATA
from dashapp import mixture
from dashapp.pipeline import PrepareOptions, prepare_path
from dashapp.segment import GMM_SAMPLE, GMM_STARTS
from dashapp.settings import Limits

KS = (4, 5, 6, 8)


def _points(customers: int, data_dir: Path) -> np.ndarray:
    dataset = generate.ensure(customers * generate.LINES_PER_CUSTOMER, data_dir)
    prepared = prepare_path(dataset.parquet, PrepareOptions(
        limits=Limits(max_bytes=1 << 40, max_rows=1 << 40), content_hash=False))
    values = prepared.customers[["recency", "frequency", "monetary"]].to_numpy(float)
    return StandardScaler().fit_transform(values)


def _sklearn(points: np.ndarray, sample: np.ndarray, k: int):
    started = time.perf_counter()
    fitted = GaussianMixture(k, n_init=GMM_STARTS, random_state=0).fit(sample)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    step = GaussianMixture(k, n_init=1, random_state=0, max_iter=1, weights_init=fitted.weights_,
                           means_init=fitted.means_, precisions_init=fitted.precisions_,
                           init_params="random_from_data").fit(points)
    labels = step.predict(points)
    return fit_s, time.perf_counter() - started, fitted.lower_bound_, labels


def _ours(points: np.ndarray, sample: np.ndarray, k: int):
    started = time.perf_counter()
    fitted = mixture.fit(sample, k, GMM_STARTS, 0)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    labels = mixture.predict(points, mixture.refine(points, fitted, 1))
    return fit_s, time.perf_counter() - started, fitted.lower_bound, labels


def run(customers: int, rounds: int, data_dir: Path) -> list[dict]:
    points = _points(customers, data_dir)
    rng = np.random.default_rng(0)
    sample = points[np.sort(rng.choice(len(points), min(GMM_SAMPLE, len(points)), False))]
    rows = []
    for k in KS:
        times: dict[str, list[tuple[float, float]]] = {"sklearn": [], "ours": []}
        bounds, agree = True, 1.0
        for _ in range(rounds):
            found = {}
            for name, method in (("sklearn", _sklearn), ("ours", _ours)):
                fit_s, step_s, bound, labels = method(points, sample, k)
                times[name].append((fit_s, step_s))
                found[name] = (bound, labels)
            bounds &= bool(np.isclose(found["sklearn"][0], found["ours"][0], rtol=1e-9))
            agree = min(agree, float(np.mean(found["sklearn"][1] == found["ours"][1])))
        row = {"customers": len(points), "k": k, "same_bound": bounds, "same_labels": agree}
        for part, index in (("fit", 0), ("step", 1)):
            theirs = [t[index] for t in times["sklearn"]]
            ours = [t[index] for t in times["ours"]]
            row[f"{part}_sklearn_ms"] = 1000 * statistics.median(theirs)
            row[f"{part}_ours_ms"] = 1000 * statistics.median(ours)
            row[f"{part}_ratio"] = statistics.median(a / b for a, b in zip(theirs, ours))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gmm")
    parser.add_argument("--customers", default="50k,500k")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    print("| customers | k | starts on the sample: sklearn / ours ms | ratio "
          "| one step on all + labels: sklearn / ours ms | ratio | same bound | same labels |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        for size in args.customers.split(","):
            for r in run(generate.parse_size(size), args.rounds, args.data):
                print(f"| {r['customers']:,} | {r['k']} | {r['fit_sklearn_ms']:,.0f} / "
                      f"{r['fit_ours_ms']:,.0f} | {r['fit_ratio']:.1f}x | "
                      f"{r['step_sklearn_ms']:,.0f} / {r['step_ours_ms']:,.0f} | "
                      f"{r['step_ratio']:.1f}x | {'yes' if r['same_bound'] else 'NO'} | "
                      f"{100 * r['same_labels']:.3f}% |", flush=True)


if __name__ == "__main__":
    main()
