"""Metadata in a relational database: users, login sessions and failures, API tokens, datasets
and saved segmentations (SQLAlchemy; embedded SQLite by default, PostgreSQL via DATABASE_URL).

Files (a dataset's Parquet, a saved segmentation's JSON and arrays) live under the instance
folder at paths derived from these rows' ids, never from anything a browser sends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from dashapp.threads import FORK_LOCK

#: How long a SQLite connection waits for another writer before "database is locked".
BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    """Now, timezone-aware UTC (what every timestamp column stores)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random, unguessable row id (32 hex characters) for datasets and segmentations."""
    return secrets.token_hex(16)


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` as aware UTC: SQLite hands timestamps back naive."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginSession(Base):
    """One logged-in browser: the cookie carries a random token, this row its SHA-256.

    Logging out deletes the row, so a copied cookie stops working at once.
    """

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """A failed login for one (normalized) email; counted to throttle, shared by workers."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is kept (shown once at creation)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Dataset(Base):
    """A user's stored dataset: ``users/<user_id>/datasets/<id>.parquet`` under the instance."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    #: The column mapping and date order last applied, so reopening reads it the same way.
    mapping: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    dayfirst: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


class SavedSegmentation(Base):
    """A saved model: ``users/<user_id>/segmentations/<id>/`` holds its JSON and arrays."""

    __tablename__ = "saved_segmentations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: ``"rfm"`` (scores transactions too) or ``"attributes"``.
    kind: Mapped[str] = mapped_column(String(20))
    format_version: Mapped[int] = mapped_column(Integer)
    dataset_hash: Mapped[str] = mapped_column(String(64))
    #: Small facts for lists: algorithm, k, features, metrics.
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


def database_url(env_url: str | None, instance_dir: Path) -> str:
    """The SQLAlchemy URL: ``DATABASE_URL`` when set (``postgres://`` and ``postgresql://``
    use psycopg 3), else SQLite in the instance folder."""
    if not env_url:
        return f"sqlite:///{(instance_dir / 'persona.db').resolve()}"
    for prefix in ("postgres://", "postgresql://"):
        if env_url.startswith(prefix):
            return "postgresql+psycopg://" + env_url[len(prefix):]
    return env_url


def _sqlite_engine(url: str) -> Engine:
    # A connection per checkout: SQLite connections are cheap, and a pooled one must never
    # cross the fork into a background worker.
    engine = create_engine(url, poolclass=NullPool,
                           connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                         "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # pysqlite's own BEGIN is deferred and emitted late; take over transaction control.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A deferred transaction that reads then writes cannot wait for the lock: SQLite
        # fails it with "database is locked" at once. Writers take the lock up front.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


class Database:
    """The engine and two kinds of transaction: :meth:`read` and :meth:`write`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url)
            writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            writer = self.engine
            # A forked background worker must not share the parent's pooled connections:
            # it starts a pool of its own and leaves the parent's sockets alone.
            engine = weakref.ref(self.engine)
            os.register_at_fork(after_in_child=lambda: engine() and engine().dispose(close=False))
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)
        # Counts the starts and ends of write transactions (itertools.count: atomic).
        self._write_marks = itertools.count()
        self.writes = 0

    def create_all(self) -> None:
        """Create missing tables (a new instance folder or database)."""
        Base.metadata.create_all(self.engine)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing it changes is committed."""
        with FORK_LOCK, self._reader() as session:
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on an exception.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``.
        """
        self.writes = next(self._write_marks) + 1
        try:
            with FORK_LOCK, self._writer() as session, session.begin():
                yield session
        finally:
            self.writes = next(self._write_marks) + 1

    #: Marks of write transactions begun or ended in this process: what was read before a
    #: change of it may be out of date after (see :meth:`dashapp.datasets.DatasetStore.get`).
    writes: int

    def dispose(self) -> None:
        self.engine.dispose()
