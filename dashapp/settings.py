"""Configuration read once from the environment into frozen dataclasses."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """Caps on what one ingest may read; past them a :class:`TooLargeError` says which."""

    max_bytes: int = 50 * 1024 * 1024
    max_rows: int = 5_000_000
    max_columns: int = 500
    # Share of a date or number column that may fail to parse before ingest refuses the file;
    # below it the bad rows are dropped and listed in the cleaning report.
    max_bad_share: float = 0.02


@dataclass(frozen=True)
class Settings:
    """Everything the app and the CLI need to know about their environment."""

    instance_dir: Path = PROJECT_ROOT / "instance"
    limits: Limits = field(default_factory=Limits)
    sample: str = "retail"
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    #: Up to this many customers the grid filters in the browser; past it, it pages from the
    #: server.
    grid_client_rows: int = 5_000
    #: Up to this many customers a change that needs one K-Means, MiniBatch K-Means or
    #: Gaussian mixture fit (no k sweep) is fitted in the request that asked for it; past it,
    #: and for every sweep, in a background job with a progress bar and a cancel button.
    #: 0: always in a job.
    inline_fit_customers: int = 100_000
    #: SQLAlchemy URL of the metadata database; ``None``: SQLite in the instance folder.
    database_url: str | None = None
    #: Signs session cookies; ``None``: generated once into the instance folder (mode 0600).
    secret_key: str | None = None
    #: Calls one API token may make (Flask-Limiter syntax), and where the counts live.
    api_rate_limit: str = "120 per minute"
    ratelimit_storage_uri: str = "memory://"
    #: Trust one proxy's X-Forwarded-For/-Proto/-Host/-Prefix (werkzeug's ProxyFix), so a
    #: TLS-terminating proxy gets Secure cookies and the client's address.
    proxy_fix: bool = False
    #: Folders whose files and sub-folders the app may read as sources (and SQLite files in
    #: them); empty: server paths are turned off in the app. The CLI reads any path.
    source_roots: tuple[Path, ...] = ()
    #: Whether the app may fetch http(s) URLs (off: the server would fetch what any user
    #: names), and whether from loopback, private and link-local addresses too.
    source_urls: bool = False
    source_url_private: bool = False
    source_url_max_bytes: int = 1024 * 1024 * 1024
    #: Named database connections (name -> SQLAlchemy URL) users choose by name, so
    #: passwords never go through the browser.
    source_connections: dict[str, str] = field(default_factory=dict)
    #: Caps on what one source (path, URL or database) may hold: larger than an upload's,
    #: since the lines never go through the browser.
    source_limits: Limits = field(default_factory=lambda: Limits(
        max_bytes=100 * 1024**3, max_rows=2_000_000_000))

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        """Read ``PERSONA_*`` variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        limits = Limits(
            max_bytes=int(env.get("PERSONA_MAX_UPLOAD_MB", 50)) * 1024 * 1024,
            max_rows=int(env.get("PERSONA_MAX_ROWS", Limits.max_rows)),
            max_columns=int(env.get("PERSONA_MAX_COLUMNS", Limits.max_columns)),
        )
        return cls(
            instance_dir=Path(env.get("PERSONA_INSTANCE_DIR", PROJECT_ROOT / "instance")),
            limits=limits,
            sample=env.get("PERSONA_SAMPLE", "retail"),
            host=env.get("PERSONA_HOST", "127.0.0.1"),
            port=int(env.get("PERSONA_PORT", 8050)),
            debug=env.get("PERSONA_DEBUG", "") in {"1", "true", "yes"},
            grid_client_rows=int(env.get("PERSONA_GRID_CLIENT_ROWS", 5_000)),
            inline_fit_customers=int(env.get("PERSONA_INLINE_FIT_CUSTOMERS",
                                             cls.inline_fit_customers)),
            database_url=env.get("DATABASE_URL") or None,
            secret_key=env.get("SECRET_KEY") or None,
            api_rate_limit=env.get("PERSONA_API_RATE_LIMIT", cls.api_rate_limit),
            ratelimit_storage_uri=env.get("PERSONA_RATELIMIT_STORAGE", cls.ratelimit_storage_uri),
            proxy_fix=env.get("PERSONA_PROXY_FIX", "") in {"1", "true", "yes"},
            source_roots=tuple(Path(p) for p in env.get("PERSONA_SOURCE_ROOTS", "").split(
                os.pathsep) if p.strip()),
            source_urls=env.get("PERSONA_SOURCE_URLS", "") in {"1", "true", "yes"},
            source_url_private=env.get("PERSONA_SOURCE_URL_PRIVATE", "") in {"1", "true", "yes"},
            source_url_max_bytes=int(env.get("PERSONA_SOURCE_URL_MAX_MB", 1024)) * 1024 * 1024,
            source_connections=_connections(env.get("PERSONA_SOURCES", "")),
            source_limits=Limits(
                max_bytes=int(env.get("PERSONA_SOURCE_MAX_MB", 100 * 1024)) * 1024 * 1024,
                max_rows=int(env.get("PERSONA_SOURCE_MAX_ROWS", 2_000_000_000)),
                max_columns=limits.max_columns,
            ),
        )


def _connections(text: str) -> dict[str, str]:
    """``PERSONA_SOURCES``: a JSON object of connection name -> SQLAlchemy URL."""
    if not text.strip():
        return {}
    try:
        found = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"PERSONA_SOURCES is not JSON ({err.msg}); set it to an object such "
                         'as {"shop": "postgresql+psycopg://user:pass@host/db"}.') from None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise ValueError("PERSONA_SOURCES must be a JSON object of name: URL strings.")
    return found
