"""Typed, user-facing errors of the core: each message names the column, the rows and the fix."""

from __future__ import annotations

from collections.abc import Sequence


class PersonaError(ValueError):
    """Base of every problem a user can cause; ``str(err)`` is the message to show.

    Parameters
    ----------
    message
        A sentence a marketer understands, ending with what to do about it.
    column
        The column concerned, when there is one.
    rows
        Row numbers of a few examples as a spreadsheet shows them (the header is row 1, the
        first data row is row 2), when there are any.
    """

    def __init__(
        self, message: str, *, column: str | None = None, rows: Sequence[int] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.rows = tuple(int(r) for r in rows)


class IngestError(PersonaError):
    """The file cannot be read into a table."""


class EmptyFileError(IngestError):
    """The file has no bytes, or only whitespace."""


class HeaderOnlyError(IngestError):
    """The file has a header line but no data rows."""


class UnsupportedFormatError(IngestError):
    """Binary or unknown content (decided from magic bytes, not the extension)."""


class RaggedRowsError(IngestError):
    """A row has more fields than the header."""


class DuplicateColumnsError(IngestError):
    """Two columns share one name."""


class TooLargeError(IngestError):
    """More rows, columns or bytes than the configured caps."""


class MappingError(PersonaError):
    """A column role cannot be found, or a mapping names a column that is not there."""


class MissingRoleError(MappingError):
    """A required role (customer id, order date, amount, ...) has no column."""


class ParseError(PersonaError):
    """Too many values of a date or number column do not parse."""


class NonFiniteError(PersonaError):
    """A numeric feature holds NaN or infinity."""


class SegmentationError(PersonaError):
    """The requested segmentation cannot be computed on this data."""


class TooFewCustomersError(SegmentationError):
    """Fewer customers than segments asked for."""


class NoFeaturesError(SegmentationError):
    """No usable numeric feature is left."""


class DegenerateDataError(SegmentationError):
    """All customers are identical in the chosen features."""


class NoClustersFoundError(SegmentationError):
    """DBSCAN labelled every customer as noise, or found a single cluster."""


class TooLargeForAlgorithmError(SegmentationError):
    """The algorithm's memory would not fit for this many customers."""


def format_examples(values: Sequence[object], rows: Sequence[int], limit: int = 3) -> str:
    """Render ``'x' in row 5, 'y' in row 9`` for the first ``limit`` examples."""
    parts = [f"{v!r} in row {r}" for v, r in list(zip(values, rows))[:limit]]
    return ", ".join(parts)
