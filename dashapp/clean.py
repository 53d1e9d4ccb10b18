"""Cleaning: every rule that drops, nets, flags or changes data, and a report of each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dashapp.ingest import Ingested

OutlierAction = Literal["keep", "clip", "drop"]
MissingAction = Literal["impute", "drop"]
EXAMPLES = 3
#: An example's row number as a spreadsheet shows it: the header is row 1.
ROW_OFFSET = 2
# Below this many rows pandas' own ``duplicated`` is as fast as hashing first.
_HASHED_DUPLICATES = 50_000


@dataclass(frozen=True)
class CleaningOptions:
    """What the rules do; the defaults keep as much of the user's data as is sound.

    Returns and cancellations (negative quantity or amount, or an order id starting with
    ``C``) never count as orders; their amounts net against the customer's monetary value
    as ``-abs(amount)``, so a cancellation exported with a positive amount still subtracts.
    """

    drop_duplicates: bool = False
    outliers: OutlierAction = "keep"
    missing: MissingAction = "impute"
    iqr_factor: float = 1.5


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome: how many rows or customers it touched and a few examples."""

    rule: str
    title: str
    count: int
    action: str
    detail: str
    examples: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class CleaningReport:
    """All rules applied to one dataset, in the order they ran."""

    rows_read: int
    rows_kept: int
    customers: int
    rules: tuple[RuleResult, ...] = field(default_factory=tuple)

    def rule(self, key: str) -> RuleResult:
        """The result of rule ``key``; ``KeyError`` when that rule did not run."""
        for result in self.rules:
            if result.rule == key:
                return result
        raise KeyError(key)

    def to_dict(self) -> dict:
        return asdict(self)


def _examples(
    frame: pd.DataFrame, mask: np.ndarray | pd.Series, *, file_rows: bool = True
) -> tuple[dict[str, str], ...]:
    """The first few masked rows as text, with their spreadsheet row number for file lines."""
    picked = frame.loc[np.asarray(mask)].head(EXAMPLES)
    out = []
    for index, row in picked.iterrows():
        example = {"row": str(index + ROW_OFFSET)} if file_rows else {}
        example.update({str(k): "" if pd.isna(v) else str(v) for k, v in row.items()})
        out.append(example)
    return tuple(out)


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated(keep="first")``, comparing full rows only where row hashes collide.

    Equal rows have equal hashes, so every repeat is among the rows whose hash repeats;
    on a big log those are few and hashing is several times faster than factorizing
    every column. ``-0.0`` is hashed as ``0.0``, which ``duplicated`` takes as equal.
    """
    if len(frame) < _HASHED_DUPLICATES:
        return frame.duplicated(keep="first").to_numpy()
    hashable = frame.copy(deep=False)
    for column in hashable.columns:
        if pd.api.types.is_float_dtype(hashable[column].dtype):
            hashable[column] = hashable[column] + 0.0
    hashes = pd.util.hash_pandas_object(hashable, index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    found = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        found[candidates] = frame.loc[candidates].duplicated(keep="first").to_numpy()
    return found


def line_rules(
    mapping: dict[str, str], counts: dict[str, int], examples: dict[str, tuple],
    drop_duplicates: bool = False,
) -> list[RuleResult]:
    """The five line rules of a transaction log, from their counts and examples.

    One wording for every path that cleans lines: :func:`clean_transactions`, the DuckDB
    fast path and database sources. ``counts`` holds each rule's count under its key
    (``missing_customer_id``, ``bad_order_date``, ``bad_amount``, ``duplicates``,
    ``returns``) and the two kinds of returns (``cancelled``, ``negative``); ``examples``
    the rows to show per rule (a missing key: none).
    """
    def shown(rule: str) -> tuple:
        return tuple(examples.get(rule, ()))

    rules = [RuleResult(
        "missing_customer_id", "Rows without a customer id", counts["missing_customer_id"],
        "dropped", "Lines with an empty customer id cannot be attributed to anyone.",
        shown("missing_customer_id"),
    )]
    for role, title in (("order_date", "dates"), ("amount", "amounts")):
        column = mapping.get(role, role)
        rules.append(RuleResult(
            f"bad_{role}", f"Rows with missing or unreadable {title}", counts[f"bad_{role}"],
            "dropped", f"Column {column!r}: values that are empty or do not parse.",
            shown(f"bad_{role}"),
        ))
    rules.append(RuleResult(
        "duplicates", "Exact duplicate lines", counts["duplicates"],
        "dropped" if drop_duplicates else "kept",
        "Identical lines (every column equal). Two identical purchases on one day are common, "
        "so they are kept unless you choose to drop them.",
        shown("duplicates"),
    ))
    rules.append(RuleResult(
        "returns", "Returns and cancellations", counts["returns"], "netted",
        f"{counts['cancelled']} lines on invoices starting with 'C' and "
        f"{counts['negative']} with a negative quantity or amount: they do not count "
        "as orders, and their amounts are subtracted from the customer's monetary value.",
        shown("returns"),
    ))
    return rules


def clean_transactions(
    ingested: Ingested, options: CleaningOptions | None = None
) -> tuple[pd.DataFrame, list[RuleResult]]:
    """Apply the line-level rules to a transaction log.

    Parameters
    ----------
    ingested
        A transaction log from :func:`dashapp.ingest.read_table`.
    options
        The rules' settings.

    Returns
    -------
    lines
        One row per kept line: ``customer_id``, ``order_id`` (when mapped), ``order_date``,
        ``amount`` (signed: returns negative), ``is_return`` (bool), and the optional roles.
    rules
        One :class:`RuleResult` per rule, in the order applied.
    """
    options = options or CleaningOptions()
    original = ingested.table
    lines = ingested.canonical()
    rules: list[RuleResult] = []
    keep = np.ones(len(lines), dtype=bool)

    found: dict[str, np.ndarray] = {}
    missing_id = lines["customer_id"].isna().to_numpy(dtype=bool, copy=True)
    found["missing_customer_id"] = missing_id
    keep &= ~missing_id
    for role in ("order_date", "amount"):
        bad = lines[role].isna().to_numpy() & keep
        found[f"bad_{role}"] = bad
        keep &= ~bad
    duplicated = _duplicated(original) & keep
    found["duplicates"] = duplicated
    if options.drop_duplicates:
        keep &= ~duplicated
    negative = (lines["amount"] < 0).fillna(False).to_numpy(dtype=bool, copy=True)
    if "quantity" in lines:
        negative |= (lines["quantity"] < 0).fillna(False).to_numpy(dtype=bool, copy=True)
    cancelled = np.zeros(len(lines), dtype=bool)
    if "order_id" in lines:
        starts_c = lines["order_id"].str.upper().str.startswith("C").fillna(False)
        cancelled = starts_c.to_numpy(dtype=bool, copy=True)
    is_return = (negative | cancelled) & keep
    found["returns"] = is_return
    counts = {rule: int(mask.sum()) for rule, mask in found.items()}
    counts["cancelled"] = int((cancelled & keep).sum())
    counts["negative"] = int((negative & keep).sum())
    rules.extend(line_rules(ingested.mapping, counts,
                            {rule: _examples(original, mask) for rule, mask in found.items()},
                            options.drop_duplicates))

    out = lines if keep.all() else lines.loc[keep]
    out["is_return"] = is_return[keep]
    out["amount"] = np.where(out["is_return"], -out["amount"].abs(), out["amount"])
    return out, rules


def clean_customers(
    ingested: Ingested, options: CleaningOptions | None = None
) -> tuple[pd.DataFrame, list[RuleResult]]:
    """Apply the row-level rules to a customer table (one row per customer).

    Rows without an id are dropped; exact duplicate rows are counted and kept (or dropped);
    a later row repeating an earlier row's id with other values is dropped, since a
    customer can only be one point. Missing values and outliers are handled afterwards
    by :func:`handle_missing` and :func:`handle_outliers`.

    Returns
    -------
    customers
        ``customer_id``, the numeric attributes and the categoricals, one row per id.
    rules
        One :class:`RuleResult` per rule.
    """
    options = options or CleaningOptions()
    original = ingested.table
    frame = ingested.canonical()
    rules: list[RuleResult] = []
    missing_id = frame["customer_id"].isna().to_numpy(dtype=bool, copy=True)
    rules.append(RuleResult(
        "missing_customer_id", "Rows without a customer id", int(missing_id.sum()), "dropped",
        "Rows with an empty id cannot be told apart.", _examples(original, missing_id),
    ))
    keep = ~missing_id
    duplicated = _duplicated(original) & keep
    rules.append(RuleResult(
        "duplicates", "Exact duplicate rows", int(duplicated.sum()),
        "dropped" if options.drop_duplicates else "kept",
        "Identical rows (every column equal)." + (
            "" if options.drop_duplicates else
            " Kept as they are; repeated ids are handled by the next rule."),
        _examples(original, duplicated),
    ))
    if options.drop_duplicates:
        keep &= ~duplicated
    repeated = frame["customer_id"].duplicated(keep="first").to_numpy() & keep
    rules.append(RuleResult(
        "repeated_ids", "Rows repeating a customer id", int(repeated.sum()), "dropped",
        "A customer table has one row per customer: the first row of each id is used.",
        _examples(original, repeated),
    ))
    keep &= ~repeated
    return frame.loc[keep].reset_index(drop=True), rules


def flag_non_positive(customers: pd.DataFrame, column: str = "monetary") -> RuleResult:
    """Count customers whose net spend is zero or negative; they are kept, not dropped."""
    mask = (customers[column] <= 0).to_numpy()
    return RuleResult(
        "non_positive_spend", "Customers with no positive net spend", int(mask.sum()), "flagged",
        "Their returns cancel or exceed their purchases. They stay in the data; "
        "the column 'non_positive_spend' marks them.",
        _examples(customers, mask, file_rows=False),
    )


def handle_missing(
    customers: pd.DataFrame, columns: list[str], action: MissingAction = "impute"
) -> tuple[pd.DataFrame, RuleResult]:
    """Impute missing numeric attributes with the column median, or drop those customers."""
    missing = customers[columns].isna()
    rows = missing.any(axis=1).to_numpy()
    per_column = {c: int(n) for c, n in missing.sum().items() if n}
    out = customers.copy()
    if action == "drop":
        out = out.loc[~rows]
        detail = "Customers with a missing value in a numeric attribute were dropped."
    else:
        for column in per_column:
            out[column] = out[column].fillna(out[column].median())
        detail = "Missing numeric values were replaced by the column's median."
    if per_column:
        detail += " Per column: " + ", ".join(f"{c} {n}" for c, n in per_column.items()) + "."
    result = RuleResult(
        "missing_values", "Missing numeric values", int(rows.sum()),
        "dropped" if action == "drop" else "imputed", detail,
        _examples(customers, rows, file_rows=False),
    )
    return out, result


def handle_outliers(
    customers: pd.DataFrame,
    columns: list[str],
    action: OutlierAction = "keep",
    factor: float = 1.5,
) -> tuple[pd.DataFrame, RuleResult]:
    """Flag values outside ``[Q1 - factor*IQR, Q3 + factor*IQR]`` per column; keep, clip or drop.

    The output has a boolean column ``outlier`` (any column outside its fence).
    """
    values = customers[columns].astype("float64")
    q1 = values.quantile(0.25)
    q3 = values.quantile(0.75)
    iqr = q3 - q1
    low, high = q1 - factor * iqr, q3 + factor * iqr
    outside = (values.lt(low, axis=1) | values.gt(high, axis=1))
    rows = outside.any(axis=1).to_numpy()
    per_column = {c: int(n) for c, n in outside.sum().items() if n}
    out = customers.copy(deep=False)  # copy-on-write: the caller's frame stays as it is
    out["outlier"] = rows
    if action == "clip":
        out[columns] = values.clip(lower=low, upper=high, axis=1)
    elif action == "drop":
        out = out.loc[~rows]
    detail = f"Outside {factor:g} x IQR beyond the quartiles"
    detail += (": " + ", ".join(f"{c} {n}" for c, n in per_column.items())) if per_column else ""
    detail += {
        "keep": ". Kept as they are and marked in the column 'outlier'.",
        "clip": ". Values clipped to the fences.",
        "drop": ". Those customers were dropped.",
    }[action]
    result = RuleResult(
        "outliers", "Outliers (IQR rule)", int(rows.sum()),
        {"keep": "flagged", "clip": "clipped", "drop": "dropped"}[action], detail,
        _examples(customers, rows, file_rows=False),
    )
    return out, result
