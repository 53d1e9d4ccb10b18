"""Generate the bundled samples in ``data/samples/`` deterministically from a seed.

``python data/generate_samples.py`` rewrites ``retail_transactions.csv`` (a two-year order-line
export with planted RFM personas) and ``mall_style_customers.csv`` (a customer table with five
planted groups). With the pinned numpy and pandas the output is byte-identical on every run.
``make_retail(n_customers=...)`` also makes bigger logs of the same shape for benchmarks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240101
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
RETAIL_FILE = "retail_transactions.csv"
MALL_FILE = "mall_style_customers.csv"

START = pd.Timestamp("2023-01-01")
N_DAYS = 731  # 2023-01-01 .. 2024-12-31 (2024 is a leap year)

RETAIL_COLUMNS = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Email", "Country",
]

# Persona: share of customers, order count range, first/last order day windows (days since
# START), extra lines per order (Poisson mean), and the lognormal quantity per line.
# Windows are chosen so RFM tells them apart: recency from the last window, frequency from
# the order count, monetary from quantity x lines x orders.
PERSONAS: dict[str, dict] = {
    "champions": dict(share=0.08, orders=(14, 26), first=(0, 200), last=(700, 730),
                      lines=2.2, qty_median=10.0, qty_sigma=0.7),
    "loyal": dict(share=0.20, orders=(7, 14), first=(0, 300), last=(610, 725),
                  lines=1.6, qty_median=6.0, qty_sigma=0.7),
    "promising": dict(share=0.17, orders=(1, 2), first=(640, 728), last=None,
                      lines=1.4, qty_median=5.0, qty_sigma=0.7),
    "at_risk": dict(share=0.20, orders=(6, 13), first=(0, 120), last=(350, 540),
                    lines=1.6, qty_median=6.0, qty_sigma=0.7),
    "hibernating": dict(share=0.35, orders=(1, 2), first=(0, 400), last=None,
                        lines=0.9, qty_median=2.5, qty_sigma=0.6),
}

COUNTRIES = {
    "United Kingdom": 0.80, "Germany": 0.045, "France": 0.04, "EIRE": 0.03,
    "Netherlands": 0.02, "Spain": 0.015, "Belgium": 0.015, "Switzerland": 0.01,
    "Portugal": 0.01, "Norway": 0.008, "Italy": 0.007,
}

COLOURS = [
    "WHITE", "RED", "BLUE", "PINK", "GREEN", "IVORY", "BLACK", "VINTAGE", "RETRO", "PAISLEY",
    "JUMBO", "SMALL",
]
ITEMS = {  # item: typical unit price in pounds
    "HANGING HEART T-LIGHT HOLDER": 2.95, "LUNCH BAG": 1.65, "CAKE STAND": 10.95,
    "TEA CUP AND SAUCER": 2.95, "DOORMAT": 7.95, "NOTEBOOK": 1.65, "PARTY BUNTING": 4.95,
    "WATER BOTTLE": 4.25, "CANDLE": 1.25, "ALARM CLOCK": 3.75, "SHOPPING BAG": 2.10,
    "PHOTO FRAME": 2.55, "CHRISTMAS BAUBLE": 0.85, "STORAGE TIN": 3.25, "CUSHION COVER": 3.75,
    "WALL CLOCK": 8.50, "PAPER NAPKINS": 0.85, "GIFT WRAP": 0.42, "LANTERN": 4.95,
    "DRAWER KNOB": 1.25,
}


def _products(rng: np.random.Generator, n: int = 120) -> pd.DataFrame:
    """A catalogue of ``n`` products: StockCode, Description, UnitPrice, popularity weight."""
    names = [f"{c} {i}" for c in COLOURS for i in ITEMS]
    picked = rng.choice(len(names), size=n, replace=False)
    descriptions = [names[k] for k in picked]
    base = np.array([ITEMS[names[k].split(" ", 1)[1]] for k in picked])
    price = np.round(base * rng.lognormal(0.0, 0.15, n), 2).clip(0.19)
    codes = rng.choice(np.arange(20000, 90000), size=n, replace=False)
    suffix = np.where(rng.random(n) < 0.2, rng.choice(list("ABCDE"), n), "")
    popularity = 1.0 / np.arange(1, n + 1) ** 0.8  # Zipf-like: a few best sellers
    return pd.DataFrame({
        "StockCode": [f"{c}{s}" for c, s in zip(codes, suffix)],
        "Description": descriptions,
        "UnitPrice": price,
        "weight": popularity / popularity.sum(),
    })


def _uniform_int(rng: np.random.Generator, bounds: np.ndarray) -> np.ndarray:
    """One integer per row of ``bounds`` (shape (n, 2)), uniform on [low, high]."""
    low, high = bounds[:, 0], bounds[:, 1]
    return low + np.floor(rng.random(len(bounds)) * (high - low + 1)).astype(int)


def _customers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One row per customer: id, email, country, persona, order count, first and last day."""
    names = list(PERSONAS)
    shares = np.array([PERSONAS[p]["share"] for p in names])
    counts = np.floor(shares / shares.sum() * n).astype(int)
    counts[-1] += n - counts.sum()
    persona = rng.permutation(np.repeat(np.arange(len(names)), counts))

    def per_persona(key: str) -> np.ndarray:
        return np.array([PERSONAS[names[p]][key] for p in persona])

    n_orders = _uniform_int(rng, per_persona("orders"))
    first = _uniform_int(rng, per_persona("first"))
    has_last = np.array([PERSONAS[names[p]]["last"] is not None for p in persona])
    last = first.copy()
    last_bounds = np.array([PERSONAS[names[p]]["last"] or (0, 0) for p in persona])
    last[has_last] = _uniform_int(rng, last_bounds[has_last])
    # Promising: the second order (if any) follows the first within the remaining days.
    # Hibernating: a second small order within two months, then nothing.
    promising = persona == names.index("promising")
    last[promising] = first[promising] + np.floor(
        rng.random(promising.sum()) * (N_DAYS - first[promising])).astype(int)
    hibernating = persona == names.index("hibernating")
    last[hibernating] = first[hibernating] + rng.integers(0, 61, hibernating.sum())
    n_orders = np.where(last == first, 1, n_orders)

    ids = np.array([f"C{i:05d}" for i in range(1, n + 1)])
    country_names = list(COUNTRIES)
    weights = np.array(list(COUNTRIES.values()))
    country = rng.choice(country_names, size=n, p=weights / weights.sum())
    return pd.DataFrame({
        "CustomerID": ids,
        "Email": np.char.add(np.char.lower(ids), "@example.com"),
        "Country": country,
        "persona": np.array(names)[persona],
        "n_orders": n_orders,
        "first": first,
        "last": np.minimum(last, N_DAYS - 1),
    })


def _order_days(rng: np.random.Generator, customers: pd.DataFrame) -> pd.DataFrame:
    """One row per order: customer row, day; the first and last order sit on the window ends."""
    owner = np.repeat(np.arange(len(customers)), customers["n_orders"].to_numpy())
    first = customers["first"].to_numpy()[owner]
    last = customers["last"].to_numpy()[owner]
    day = first + np.floor(rng.random(len(owner)) * (last - first + 1)).astype(int)
    starts = np.r_[0, np.cumsum(customers["n_orders"].to_numpy())[:-1]]
    ends = starts + customers["n_orders"].to_numpy() - 1
    day[starts] = first[starts]
    day[ends] = last[ends]
    return pd.DataFrame({"customer": owner, "day": day})


def _timestamps(rng: np.random.Generator, day: np.ndarray) -> pd.Series:
    """Shop hours 08:00-19:59 on the given days, to the minute."""
    minutes = rng.integers(8 * 60, 20 * 60, len(day))
    return START + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minutes, unit="min")


def _lines(rng: np.random.Generator, orders: pd.DataFrame, products: pd.DataFrame,
           extra_lines: np.ndarray, qty_median: np.ndarray, qty_sigma: np.ndarray
           ) -> pd.DataFrame:
    """Order lines: per order 1 + Poisson(extra_lines) distinct products, lognormal quantities."""
    n_lines = 1 + rng.poisson(extra_lines)
    order = np.repeat(np.arange(len(orders)), n_lines)
    product = rng.choice(len(products), size=len(order), p=products["weight"].to_numpy())
    keep = ~pd.DataFrame({"o": order, "p": product}).duplicated().to_numpy()
    order, product = order[keep], product[keep]
    quantity = np.ceil(rng.lognormal(np.log(qty_median[order]), qty_sigma[order])).astype(int)
    price = products["UnitPrice"].to_numpy()[product]
    # Bulk lines get the trade price, as in a wholesale shop's export.
    price = np.where(quantity >= 24, np.round(price * 0.85, 2), price)
    return pd.DataFrame({
        "order": order,
        "StockCode": products["StockCode"].to_numpy()[product],
        "Description": products["Description"].to_numpy()[product],
        "Quantity": quantity,
        "UnitPrice": price,
    })


def make_retail(n_customers: int = 1500, seed: int = SEED) -> pd.DataFrame:
    """A two-year retail order-line log with planted RFM personas.

    Parameters
    ----------
    n_customers : int
        Customers with an id; about 1% more lines belong to guest orders without one.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same frame.

    Returns
    -------
    pandas.DataFrame
        One row per invoice line, columns ``RETAIL_COLUMNS``, all as text as a CSV export
        would have them (``Quantity`` and ``UnitPrice`` formatted numbers, missing
        ``CustomerID``/``Email`` as ``""``). About 1.5% of lines are cancellations (invoice
        ``C…``, negative quantity) and 0.3% are exact duplicates of the line before them.
    """
    rng = np.random.default_rng(seed)
    products = _products(rng)
    customers = _customers(rng, n_customers)
    orders = _order_days(rng, customers)
    persona = customers["persona"].to_numpy()[orders["customer"].to_numpy()]
    spec = {key: np.array([PERSONAS[p][key] for p in persona])
            for key in ("lines", "qty_median", "qty_sigma")}

    # Guest checkouts: one order each, no customer id, sized to about 1% of the lines.
    n_guest = max(1, round(len(orders) * 0.012))
    guest_day = rng.integers(0, N_DAYS, n_guest)
    orders = pd.concat([
        orders,
        pd.DataFrame({"customer": np.full(n_guest, -1), "day": guest_day}),
    ], ignore_index=True)
    for key, value in (("lines", 1.5), ("qty_median", 4.0), ("qty_sigma", 0.7)):
        spec[key] = np.r_[spec[key], np.full(n_guest, value)]
    orders["at"] = _timestamps(rng, orders["day"].to_numpy())

    lines = _lines(rng, orders, products, spec["lines"], spec["qty_median"], spec["qty_sigma"])
    lines["cancel"] = False

    # Cancellations: ~1.5% of identified lines returned, some or all of the quantity, within
    # ten days, one C-invoice per original order.
    owner = orders["customer"].to_numpy()[lines["order"].to_numpy()]
    candidates = np.flatnonzero(owner >= 0)
    picked = np.sort(rng.choice(candidates, size=round(len(lines) * 0.015), replace=False))
    returns = lines.iloc[picked].copy()
    returns["Quantity"] = -(1 + np.floor(rng.random(len(returns)) * returns["Quantity"]))
    returns["Quantity"] = returns["Quantity"].astype(int)
    returns["cancel"] = True
    cancelled_orders = np.unique(returns["order"].to_numpy())
    sold_at = orders["at"].to_numpy()[cancelled_orders]
    end = (START + pd.Timedelta(days=N_DAYS)).to_datetime64()
    room = np.minimum((end - sold_at) // np.timedelta64(1, "m") - 1, 10 * 24 * 60)
    delay = 60 + np.floor(rng.random(len(cancelled_orders)) * (room - 60)).astype(int)
    cancel_at = sold_at + delay.astype("timedelta64[m]")
    cancel_ids = np.arange(len(orders), len(orders) + len(cancelled_orders))
    returns["order"] = pd.Series(cancel_ids, index=cancelled_orders).loc[returns["order"]].values
    invoices = pd.concat([
        orders[["customer", "at"]].assign(cancel=False),
        pd.DataFrame({"customer": orders["customer"].to_numpy()[cancelled_orders],
                      "at": cancel_at, "cancel": True}),
    ], ignore_index=True)

    # Invoice numbers run in time order across sales and cancellations, as in a real till.
    order_of_time = np.argsort(invoices["at"].to_numpy(), kind="stable")
    number = np.empty(len(invoices), dtype=int)
    number[order_of_time] = 100001 + np.arange(len(invoices))
    invoices["InvoiceNo"] = np.where(invoices["cancel"], "C", "") + number.astype(str)

    all_lines = pd.concat([lines, returns], ignore_index=True)
    all_lines["line"] = np.arange(len(all_lines))
    # A double-scanned line: the same row twice, next to each other.
    dupes = all_lines.iloc[np.sort(rng.choice(len(all_lines), round(len(all_lines) * 0.003),
                                              replace=False))]
    all_lines = pd.concat([all_lines, dupes], ignore_index=True)

    inv = invoices.loc[all_lines["order"].to_numpy()].reset_index(drop=True)
    cust = customers.reindex(inv["customer"].to_numpy()).reset_index(drop=True)
    out = pd.DataFrame({
        "InvoiceNo": inv["InvoiceNo"],
        "StockCode": all_lines["StockCode"],
        "Description": all_lines["Description"],
        "Quantity": all_lines["Quantity"].astype(int).astype(str),
        "InvoiceDate": inv["at"].dt.strftime("%Y-%m-%d %H:%M"),
        "UnitPrice": all_lines["UnitPrice"].map("{:.2f}".format),
        "CustomerID": cust["CustomerID"].fillna(""),
        "Email": cust["Email"].fillna(""),
        "Country": cust["Country"].fillna(""),
        "_number": number[all_lines["order"].to_numpy()],
        "_line": all_lines["line"],
    })
    guests = inv["customer"].to_numpy() < 0
    out.loc[guests, "Country"] = rng.choice(list(COUNTRIES)[:4], guests.sum())
    out = out.sort_values(["_number", "_line"], kind="stable")
    return out[RETAIL_COLUMNS].reset_index(drop=True)


# Group: share, age (mean, sd), income k$ (mean, sd), spending score (mean, sd), share female.
MALL_GROUPS: dict[str, tuple] = {
    "average": (0.40, (43, 13), (55, 8), (50, 6), 0.58),
    "rich_spenders": (0.20, (32, 3.5), (87, 14), (82, 9), 0.54),
    "rich_frugal": (0.18, (41, 11), (88, 15), (17, 9), 0.46),
    "young_spenders": (0.11, (25, 5), (26, 7), (79, 10), 0.59),
    "careful": (0.11, (45, 13), (26, 7), (20, 11), 0.60),
}


def make_mall(n_customers: int = 400, seed: int = SEED) -> pd.DataFrame:
    """A mall-style customer table with five planted groups.

    Returns
    -------
    pandas.DataFrame
        ``n_customers`` rows, columns ``CustomerID`` (zero-padded text, "0001", ...),
        ``Gender``, ``Age``, ``Annual Income (k$)``, ``Spending Score (1-100)`` (integers),
        ordered by income as in the classic data set.
    """
    rng = np.random.default_rng(seed)
    shares = np.array([g[0] for g in MALL_GROUPS.values()])
    counts = np.floor(shares * n_customers).astype(int)
    counts[0] += n_customers - counts.sum()
    frames = []
    for (_, age, income, score, female), size in zip(MALL_GROUPS.values(), counts):
        frames.append(pd.DataFrame({
            "Gender": np.where(rng.random(size) < female, "Female", "Male"),
            "Age": np.clip(np.round(rng.normal(*age, size)), 18, 70).astype(int),
            "Annual Income (k$)": np.clip(np.round(rng.normal(*income, size)), 15, 140)
            .astype(int),
            "Spending Score (1-100)": np.clip(np.round(rng.normal(*score, size)), 1, 99)
            .astype(int),
        }))
    table = pd.concat(frames, ignore_index=True)
    table = table.iloc[rng.permutation(len(table))]
    table = table.sort_values("Annual Income (k$)", kind="stable").reset_index(drop=True)
    width = max(4, len(str(n_customers)))
    table.insert(0, "CustomerID", [f"{i:0{width}d}" for i in range(1, len(table) + 1)])
    return table


def write_samples(out_dir: Path = SAMPLES_DIR, seed: int = SEED) -> list[Path]:
    """Write both samples as UTF-8 CSV with ``\\n`` line ends; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in ((RETAIL_FILE, make_retail(seed=seed)), (MALL_FILE, make_mall(seed=seed))):
        path = out_dir / name
        frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="output folder")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    for path in write_samples(args.out, args.seed):
        print(f"{path}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
