"""The one persistent store of surgecast: SQLite by default, PostgreSQL a URL away, same code.

SQLAlchemy Core over seven tables (``surgecast.store_schema``): ``points``, ``forecasts``,
``anomalies``, ``recommendations``, ``alerts`` (the outbox), ``model_registry`` and ``tick_runs``.

- Every timestamp is stored as BIGINT nanoseconds since the epoch, UTC, so it round-trips exactly
  on both backends; everything handed back is timezone-aware UTC (``datetime64[ns, UTC]`` in
  frames, ``pd.Timestamp`` in records). Arguments accept ``pd.Timestamp``, ``datetime`` (naive is
  taken as UTC) and ISO 8601 strings.
- Writes are idempotent upserts (``INSERT ... ON CONFLICT``), so a tick that is retried or a window
  that is collected twice changes nothing.
- One ``Store`` is shared by the scheduler thread and the API threads: each call checks a
  connection out of the engine's pool and returns it.
- Database failures raise :class:`~surgecast.errors.StoreError` naming the store with its password
  masked; bad input raises :class:`~surgecast.errors.DataError`; an unknown alert id raises
  :class:`~surgecast.errors.NotFound`.

The methods live in ``store_series`` (points, forecasts, anomalies) and ``store_records``
(recommendations, alerts, models, ticks) to keep modules small; import only ``Store`` from here.

Example:
    >>> import pandas as pd
    >>> store = Store("sqlite://")  # in memory
    >>> frame = pd.DataFrame({"unique_id": ["api:rps"] * 2, "y": [1.0, 2.0],
    ...     "ds": pd.to_datetime(["2026-01-01T00:00Z", "2026-01-01T00:01Z"])})
    >>> store.upsert_points(frame), store.upsert_points(frame)
    (2, 0)
    >>> store.watermarks()["api:rps"].isoformat()
    '2026-01-01T00:01:00+00:00'
    >>> store.close()
"""

from __future__ import annotations

from sqlalchemy import text

from surgecast.store_codec import mask_url
from surgecast.store_engine import DEFAULT_URL
from surgecast.store_records import RecordStore
from surgecast.store_series import SeriesStore

__all__ = ["DEFAULT_URL", "Store"]


class Store(SeriesStore, RecordStore):
    """Persistent store for series, forecasts, anomalies, recommendations, alerts, models, ticks.

    Args:
        url: a SQLAlchemy URL. ``sqlite:///path.db`` (the parent directory is created; WAL mode)
            or ``postgresql+psycopg://user:password@host:5432/db`` (a bare ``postgresql://`` is
            taken as psycopg 3). The schema is created if missing.

    Raises:
        StoreError: the URL is invalid, the driver is missing or the database is unreachable; the
            message shows the URL with its password masked and says what to check.
    """

    def __init__(self, url: str = DEFAULT_URL) -> None:
        super().__init__(url)

    @property
    def url(self) -> str:
        """The store URL with its password masked (safe to log)."""
        return mask_url(self._url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return str(self._engine.dialect.name)

    def ping(self) -> None:
        """Check the database answers (``SELECT 1``); raise ``StoreError`` if not."""
        with self._read("ping the database") as conn:
            conn.execute(text("SELECT 1")).scalar_one()

    def close(self) -> None:
        """Close every pooled connection; later calls raise ``StoreError``. Safe to call twice."""
        self._closed = True
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
