"""Configuration read once from the environment into frozen dataclasses."""

from __future__ import annotations

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
    grid_client_rows: int = 50_000
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
            grid_client_rows=int(env.get("PERSONA_GRID_CLIENT_ROWS", 50_000)),
            database_url=env.get("DATABASE_URL") or None,
            secret_key=env.get("SECRET_KEY") or None,
            api_rate_limit=env.get("PERSONA_API_RATE_LIMIT", cls.api_rate_limit),
            ratelimit_storage_uri=env.get("PERSONA_RATELIMIT_STORAGE", cls.ratelimit_storage_uri),
            proxy_fix=env.get("PERSONA_PROXY_FIX", "") in {"1", "true", "yes"},
        )
