"""Engine construction and error translation for :mod:`surgecast.store`.

One place knows the differences between the backends: SQLite gets WAL, a busy timeout and
cross-thread connections; PostgreSQL gets psycopg 3, a connect timeout and pre-ping so a restarted
server costs one retry, not an error. Every database error leaves as a ``StoreError`` whose message
names the store with its password masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool

from surgecast.errors import StoreError
from surgecast.store_codec import mask_url

__all__ = ["DEFAULT_URL", "SQLITE_BUSY_TIMEOUT_MS", "build_engine", "guard"]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///./var/surgecast.db"
# a bulk upsert holds SQLite's single write lock for a few seconds; writers queue rather than fail
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
_URL_HINT = (
    "use e.g. sqlite:///./var/surgecast.db or postgresql+psycopg://user:password@host:5432/db"
)


def parse_url(url: str | URL) -> URL:
    """Parse ``url`` or raise ``StoreError`` (masked) saying what a valid store URL looks like."""
    try:
        return url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(
            f"store URL {mask_url(url)} is not a valid database URL; {_URL_HINT}"
        ) from exc


def build_engine(url: URL) -> Engine:
    """Create the engine for ``url`` (SQLite or PostgreSQL) without connecting yet.

    Raises:
        StoreError: unsupported backend, missing driver, or a SQLite directory that cannot be made.
    """
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url)
        if backend == "postgresql":
            return _postgres_engine(url)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(
            f"no database driver for {mask_url(url)} ({exc}); for PostgreSQL install "
            "'surgecast[postgres]' (psycopg 3) and use a postgresql+psycopg:// URL"
        ) from exc
    raise StoreError(
        f"store URL {mask_url(url)}: backend {backend!r} is not supported; {_URL_HINT}"
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory and not database.startswith("file:"):
        parent = Path(database).expanduser().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory {parent} for the SQLite store {mask_url(url)}: "
                f"{exc}; choose a writable path in the store URL"
            ) from exc
    kwargs: dict[str, Any] = {
        # the scheduler thread and API threads share the pool; SQLite itself serialises writers
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    }
    if in_memory:
        # every new connection to :memory: would be a new, empty database: share one. Threads
        # that use it at once share its transactions too, so :memory: is for one thread at a
        # time (tests, notebooks); a service that writes from several threads needs a file
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers (API) never block the writer (scheduler) and vice versa
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # NORMAL is durable against application crashes in WAL mode; FULL would fsync every commit
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _postgres_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        # SQLAlchemy's default driver for a bare postgresql:// is psycopg2, which we do not ship
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # libpq waits forever on a black-holed host; the scheduler must not hang on start
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def guard(url: URL, action: str, driver_error: type[Exception] | None = None) -> Iterator[None]:
    """Translate any SQLAlchemy (or raw driver) error raised inside the block into a StoreError.

    Args:
        url: the store URL, shown with its password masked.
        action: what was being done, completing "could not ...".
        driver_error: the DBAPI's base ``Error``, for code that uses the driver directly
            (PostgreSQL ``COPY``, raw row fetches).
    """
    caught: tuple[type[Exception], ...] = (SQLAlchemyError,)
    if driver_error is not None:
        caught += (driver_error,)
    try:
        yield
    except caught as exc:
        raise StoreError(describe(url, action, exc)) from exc


def describe(url: URL, action: str, exc: BaseException) -> str:
    """A one-line, password-free explanation of ``exc`` with a hint on what to check."""
    original = getattr(exc, "orig", None) or exc
    detail = " ".join(str(original).split())  # drivers put SQL and hints on several lines
    if len(detail) > 500:
        detail = detail[:500] + "..."
    if url.password:
        detail = detail.replace(str(url.password), "***")
    kind = type(original).__name__
    message = f"could not {action} in the store {mask_url(url)}: {kind}: {detail}"
    if isinstance(exc, OperationalError):
        message += (
            "; is the database running and reachable, and are the host, port, user, password and "
            "database in the store URL right?"
        )
    elif isinstance(exc, IntegrityError):
        message += "; the data conflicts with what is already stored"
    return message
