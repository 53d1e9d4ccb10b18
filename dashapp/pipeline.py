"""The whole path from a file's bytes to personas, shared by the CLI and the app."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dashapp.clean import (
    CleaningOptions,
    CleaningReport,
    RuleResult,
    clean_customers,
    clean_transactions,
    flag_non_positive,
    handle_missing,
    handle_outliers,
)
from dashapp.features import RFM_FEATURES, RFMCuts, rfm, rfm_scores
from dashapp.ingest import TRANSACTIONS, Ingested, Shape, read_table
from dashapp.personas import Persona, build_personas
from dashapp.segment import KSweep, Segmentation, SegmentParams, segment, sweep_k
from dashapp.settings import Limits, Settings


@dataclass(frozen=True)
class PrepareOptions:
    """How to read and clean one file."""

    mapping: dict[str, str] | None = None
    shape: Shape | None = None
    dayfirst: bool | None = None
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)
    reference_date: str | None = None
    # The PERSONA_MAX_* caps apply to the command line as they do to the app.
    limits: Limits = field(default_factory=lambda: Settings.from_env().limits)
    #: Caps for the general path when :func:`prepare_path` falls back to it (it holds the
    #: whole file in memory, where DuckDB reads out of core); ``None``: ``limits``.
    fallback_limits: Limits | None = None
    #: ``False`` leaves ``Prepared.content_hash`` empty. The app keys its caches and finds
    #: a source connected twice by it; the command line keeps neither, and hashing a 400 MB
    #: CSV took 0.2-0.5 s of the two cores the DuckDB scan runs on.
    content_hash: bool = True


@dataclass(frozen=True)
class Prepared:
    """One row per customer, ready to segment, with what was done to get there.

    ``customers`` has ``customer_id``, the numeric features, and for a transaction log
    ``r_score``, ``f_score``, ``m_score``, ``rfm_code``, ``rfm_segment`` and the flag
    ``non_positive_spend``; every table has the flag ``outlier``.
    """

    ingested: Ingested
    customers: pd.DataFrame
    report: CleaningReport
    numeric_features: tuple[str, ...]
    default_features: tuple[str, ...]
    cuts: RFMCuts | None
    content_hash: str
    reference_date: pd.Timestamp | None = None

    @property
    def shape(self) -> Shape:
        return self.ingested.shape


@dataclass(frozen=True)
class Result:
    """A segmentation of prepared customers, read as personas."""

    prepared: Prepared
    segmentation: Segmentation
    personas: tuple[Persona, ...]
    sweep: KSweep | None = None

    @property
    def persona_names(self) -> dict[int, str]:
        return {p.segment: p.name for p in self.personas}

    def customers(self, columns: list[str] | None = None) -> pd.DataFrame:
        """``customer_id``, the features, scores, flags, ``segment`` and ``persona``; only
        ``columns`` (in that order) when given, copying no other column."""
        base = self.prepared.customers
        out = base.copy() if columns is None else \
            base.loc[:, [c for c in columns if c in base.columns]]
        out["segment"] = self.segmentation.labels
        out["persona"] = out["segment"].map(self.persona_names)
        if columns is not None and list(out.columns) != list(columns):
            out = out.loc[:, columns]
        return out


def content_hash(data: bytes) -> str:
    """A short, stable key for a file's content (used to cache and to name datasets)."""
    return hashlib.sha256(data).hexdigest()[:16]


def prepare(data: bytes, filename: str, options: PrepareOptions | None = None) -> Prepared:
    """Ingest, clean and build the customer table.

    Parameters
    ----------
    data, filename
        The file's bytes and its name (the name only breaks ties between text formats).
    options
        Mapping overrides, cleaning rules, reference date and size caps.
    """
    options = options or PrepareOptions()
    ingested = read_table(
        data, filename, mapping=options.mapping, shape=options.shape,
        dayfirst=options.dayfirst, limits=options.limits,
    )
    digest = content_hash(data) if options.content_hash else ""
    cleaning = options.cleaning
    if ingested.shape == TRANSACTIONS:
        lines, rules = clean_transactions(ingested, cleaning)
        customers = rfm(lines, options.reference_date)
        optional = [c for c in ("email", "name", "country") if c in lines]
        contact = None
        if optional:
            contact = lines.groupby("customer_id", sort=False)[optional].last().reset_index()
        return finish_transactions(
            ingested, customers, rules, len(ingested.table), len(lines), digest, cleaning,
            contact,
        )
    customers, rules = clean_customers(ingested, cleaning)
    numeric = tuple(ingested.attributes)
    customers, missing = handle_missing(customers, list(numeric), cleaning.missing)
    rules.append(missing)
    customers, outliers = handle_outliers(
        customers, list(numeric), cleaning.outliers, cleaning.iqr_factor
    )
    rules.append(outliers)
    customers = customers.reset_index(drop=True)
    report = CleaningReport(
        rows_read=len(ingested.table),
        rows_kept=len(customers),
        customers=len(customers),
        rules=tuple(rules),
    )
    return Prepared(
        ingested=ingested,
        customers=customers,
        report=report,
        numeric_features=numeric,
        default_features=numeric,
        cuts=None,
        content_hash=digest,
    )


def finish_transactions(
    ingested: Ingested,
    customers: pd.DataFrame,
    rules: list[RuleResult],
    rows_read: int,
    rows_kept: int,
    digest: str,
    cleaning: CleaningOptions,
    contact: pd.DataFrame | None = None,
) -> Prepared:
    """Scores, flags and outliers on top of the RFM table of a cleaned transaction log.

    Shared by :func:`prepare` and the DuckDB fast path, so both end in the same
    :class:`Prepared` from the same customer table and line-level rules. ``contact`` holds
    ``customer_id`` and the e-mail, name or country to attach, when the log has them.
    """
    reference = customers.attrs.get("reference_date")
    scores, cuts = rfm_scores(customers)
    customers = pd.concat([customers, scores], axis=1)
    rules = [*rules, flag_non_positive(customers)]
    customers["non_positive_spend"] = customers["monetary"] <= 0
    if contact is not None:
        customers = customers.merge(contact, on="customer_id", how="left")
    customers, outliers = handle_outliers(
        customers, list(RFM_FEATURES), cleaning.outliers, cleaning.iqr_factor
    )
    rules.append(outliers)
    report = CleaningReport(
        rows_read=rows_read,
        rows_kept=rows_kept,
        customers=len(customers),
        rules=tuple(rules),
    )
    return Prepared(
        ingested=ingested,
        customers=customers.reset_index(drop=True),
        report=report,
        numeric_features=("recency", "frequency", "monetary", "tenure", "avg_order_value"),
        default_features=RFM_FEATURES,
        cuts=cuts,
        content_hash=digest,
        reference_date=reference,
    )


def prepare_file(path: str | Path, options: PrepareOptions | None = None) -> Prepared:
    """:func:`prepare` on a local file (always the general path)."""
    path = Path(path)
    return prepare(path.read_bytes(), path.name, options)


def prepare_path(
    path: str | Path, options: PrepareOptions | None = None, *, min_bytes: int | None = None
) -> Prepared:
    """:func:`prepare` on a file or folder on disk, through DuckDB when the data is large.

    Past ``min_bytes`` (default :data:`dashapp.fastpath.FAST_MIN_BYTES`) a transaction log
    that DuckDB can read exactly is read, cleaned and aggregated there
    (:func:`dashapp.fastpath.prepare_fast`); any other file takes :func:`prepare_file`.
    Both give the same customers and cleaning report.

    A folder of CSV (or of Parquet) files with the same columns is one table: its files in
    the order of their paths (:func:`dashapp.fastpath.folder_files`). DuckDB reads it out
    of core; where the fast path cannot, the files are joined in memory and read as one.
    """
    from dashapp.errors import TooLargeError
    from dashapp.fastpath import FAST_MIN_BYTES, folder_files, prepare_fast

    path = Path(path)
    threshold = FAST_MIN_BYTES if min_bytes is None else min_bytes
    kind, files = folder_files(path) if path.is_dir() else (None, (path,))
    size = sum(f.stat().st_size for f in files)
    if size >= threshold:
        prepared = prepare_fast(path, options)
        if prepared is not None:
            return prepared
    if options is not None and options.fallback_limits is not None:
        fallback = options.fallback_limits
        if size > fallback.max_bytes:
            raise TooLargeError(
                f"{path.name!r} is {size / 1_048_576:,.0f} MB and holds something the DuckDB "
                "path does not read exactly (e.g. Windows-1252 text, decimal commas, "
                "currency signs, e-mail/name/country columns, a customer table, dropping "
                f"duplicates); the in-memory path takes up to "
                f"{fallback.max_bytes / 1_048_576:,.0f} MB (PERSONA_MAX_UPLOAD_MB). Export "
                "the transaction lines as UTF-8 CSV or Parquet, or raise that limit.")
        options = replace(options, limits=fallback, fallback_limits=None)
    if kind is not None:
        return _prepare_folder(path, kind, files, size, options)
    return prepare_file(path, options)


def _prepare_folder(folder: Path, kind: str, files: tuple[Path, ...], size: int,
                    options: PrepareOptions | None) -> Prepared:
    """The general path on a folder's files joined into one (the fast path's fallback)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dashapp.errors import IngestError, TooLargeError
    from dashapp.fastpath import folder_parquet_schema

    options = options or PrepareOptions()
    if size > options.limits.max_bytes:
        raise TooLargeError(
            f"Folder {folder.name!r} holds {size / 1_048_576:.1f} MB; the limit is "
            f"{options.limits.max_bytes / 1_048_576:.0f} MB (PERSONA_MAX_UPLOAD_MB)."
        )
    if kind == "parquet":
        schema = folder_parquet_schema(folder, files)
        try:
            # safe=False: an integer past 2**53 becomes the nearest double, as in DuckDB.
            joined = pa.concat_tables([pq.read_table(f).replace_schema_metadata(None)
                                       .cast(schema, safe=False) for f in files])
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(
                f"The Parquet files in {folder.name!r} cannot be joined into one table "
                f"({exc}).") from None
        buffer = io.BytesIO()
        pq.write_table(joined, buffer)
        return prepare(buffer.getvalue(), files[0].name, options)
    parts, header = [], None
    for path in files:
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
        first, newline, rest = data.partition(b"\n")
        if header is None:
            header = first.rstrip(b"\r")
            parts.append(data if data.endswith(b"\n") else data + b"\n")
        elif first.rstrip(b"\r") != header:
            raise IngestError(
                f"{path.relative_to(folder).as_posix()!r} has other columns than "
                f"{files[0].relative_to(folder).as_posix()!r}; every file in a folder needs "
                "the same header line.")
        elif rest:
            parts.append(rest if rest.endswith(b"\n") else rest + b"\n")
    return prepare(b"".join(parts), files[0].name, options)


def run(
    prepared: Prepared,
    params: SegmentParams | None = None,
    *,
    auto_k: bool = False,
) -> Result:
    """Segment prepared customers and name the personas.

    With ``auto_k`` the k of ``params`` is replaced by the sweep's recommendation.
    """
    params = params or SegmentParams(features=prepared.default_features)
    if not params.features:
        params = replace(params, features=prepared.default_features)
    sweep = None
    if auto_k:
        sweep = sweep_k(prepared.customers, params)
        params = replace(params, k=sweep.recommended)
    segmentation = segment(prepared.customers, params)
    personas = tuple(build_personas(prepared.customers, segmentation))
    return Result(prepared, segmentation, personas, sweep)


def summary(result: Result) -> dict:
    """The JSON-ready summary the CLI writes and the API will serve."""
    prepared, seg = result.prepared, result.segmentation
    ingested = prepared.ingested
    return {
        "shape": ingested.shape,
        "mapping": dict(ingested.mapping),
        "encoding": ingested.encoding,
        "file_format": ingested.file_format,
        "date_format": ingested.date_format,
        "date_ambiguous": ingested.date_ambiguous,
        "reference_date": (prepared.reference_date.date().isoformat()
                           if prepared.reference_date is not None else None),
        "notices": list(ingested.notices) + list(seg.notices),
        "cleaning": prepared.report.to_dict(),
        "algorithm": seg.params.algorithm,
        "k": seg.k,
        "features": list(seg.features),
        "scaling": seg.params.scaling,
        "pca": seg.params.pca,
        "seed": seg.params.seed,
        "metrics": seg.metrics.to_dict(),
        "k_selection": None if result.sweep is None else {
            "recommended": result.sweep.recommended,
            "elbow": result.sweep.elbow,
            "reason": result.sweep.reason,
            "table": result.sweep.table.replace({np.nan: None}).to_dict(orient="records"),
        },
        "segments": [
            {
                "segment": p.segment,
                "persona": p.name,
                "size": p.size,
                "customer_share": p.customer_share,
                "revenue_share": p.revenue_share,
                "centroid": p.centroid,
                "profile": p.profile,
                "strategy": p.strategy,
            }
            for p in result.personas
        ],
    }


def output_columns(result: Result) -> list[str]:
    """Columns of ``customers.csv``: id, features, RFM scores and segment, segment, persona."""
    frame = pd.Index([*result.prepared.customers.columns, "segment", "persona"])
    columns = ["customer_id", *result.prepared.numeric_features]
    columns += [c for c in ("r_score", "f_score", "m_score", "rfm_segment") if c in frame]
    columns += [c for c in ("email", "name", "country") if c in frame]
    columns += list(result.prepared.ingested.categoricals)
    columns += ["segment", "persona"]
    return list(dict.fromkeys(c for c in columns if c in frame))


__all__ = [
    "Prepared", "PrepareOptions", "Result", "RuleResult", "prepare", "prepare_file",
    "prepare_path", "run", "finish_transactions",
    "summary", "output_columns", "content_hash",
]
