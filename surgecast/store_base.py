"""Plumbing shared by every part of :class:`surgecast.store.Store`: engine, connections, helpers."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Column, Connection, MetaData, Select, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from surgecast.errors import DataError, StoreError
from surgecast.store_codec import TimestampLike, mask_url, ns_to_series, optional_ns
from surgecast.store_engine import DEFAULT_URL, build_engine, guard, parse_url
from surgecast.store_schema import metadata

__all__ = ["StoreBase"]

_Select = TypeVar("_Select", bound=Select)

# pg_advisory_xact_lock key held while creating the schema ("SURGE" in ASCII)
SCHEMA_LOCK = 0x5355524745
# rows per executemany call: big enough to amortise the round trip, small enough to bound memory
CHUNK_ROWS = 20_000


class StoreBase:
    """Owns the engine and the schema; subclasses add the table-specific methods."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self._url = parse_url(url)
        self._engine = build_engine(self._url)
        self._closed = False
        try:
            with self._guard("connect and create the schema"), self._engine.begin() as conn:
                if self._engine.dialect.name == "postgresql":
                    # replicas starting together would race on CREATE TABLE; serialise them
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                metadata.create_all(conn)
        except StoreError:
            self._engine.dispose()
            raise

    # -- connections -------------------------------------------------------------------------
    def _guard(self, action: str) -> Any:
        return guard(self._url, action, self._engine.dialect.loaded_dbapi.Error)

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success; errors become StoreError."""
        self._check_open()
        with self._guard(action), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        self._check_open()
        with self._guard(action), self._engine.connect() as conn:
            yield conn

    def _fetch(self, stmt: Any, action: str) -> list[tuple[Any, ...]]:
        """Run a SELECT and return the driver's own row tuples.

        Skips SQLAlchemy's ``Row`` objects (about 1 s per 600k rows): the columns we read are
        plain numbers and strings that :func:`to_frame` converts anyway.
        """
        with self._read(action) as conn:
            result = conn.execute(stmt)
            try:
                return list(result.cursor.fetchall())
            finally:
                result.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {mask_url(self._url)} is closed; create a new Store")

    def _insert(self, table: Table) -> Any:
        """The dialect's own ``insert`` (the one with ``on_conflict_*``), for single rows."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _bulk_insert(self, table: Table, names: Sequence[str]) -> Any:
        """An ``insert`` of the columns ``names`` meant for :meth:`_bulk`; add ``on_conflict_*``.

        On PostgreSQL it reads from a per-connection temporary staging table that :meth:`_bulk`
        fills with ``COPY``: psycopg's ``executemany`` sends one statement per row and array
        parameters are dumped in pure Python, both several times slower. Rows of one call must
        have distinct keys (PostgreSQL refuses to update a row twice in one statement); callers
        deduplicate or reject duplicates first.
        """
        if self._engine.dialect.name != "postgresql":
            return sqlite.insert(table)
        stage = Table(_stage_name(table), MetaData(), *(Column(n) for n in names))
        return postgresql.insert(table).from_select(list(names), select(*stage.c))

    def _bulk(self, stmt: Any, columns: Mapping[str, Sequence[Any]], action: str) -> int:
        """Write the rows held in ``columns`` with ``stmt`` (from :meth:`_bulk_insert`) in one
        transaction; return the rows affected (inserted or changed)."""
        n_rows = len(next(iter(columns.values())))
        if self._engine.dialect.name == "postgresql":
            return self._pg_bulk(stmt, columns, action)
        # SQLite: compile once and hand plain tuples to the driver's executemany in chunks;
        # SQLAlchemy's per-row parameter processing would triple the time of a 600k-row upsert
        compiled = stmt.compile(dialect=self._engine.dialect)
        names = list(compiled.positiontup) if compiled.positional else list(compiled.params)
        tuples = list(zip(*(columns[n] for n in names), strict=True))
        sql = str(compiled)
        written = 0
        with self._write(action) as conn:
            for start in range(0, n_rows, CHUNK_ROWS):
                result = conn.exec_driver_sql(sql, tuples[start : start + CHUNK_ROWS])
                written += max(result.rowcount, 0)
        return written

    def _pg_bulk(self, stmt: Any, columns: Mapping[str, Sequence[Any]], action: str) -> int:
        table: Table = stmt.table
        stage, names = _stage_name(table), list(columns)
        with self._write(action) as conn:
            # the driver's own connection, inside the same transaction as `conn`
            raw = conn.connection.driver_connection
            with raw.cursor() as cursor:  # type: ignore[union-attr]
                # LIKE copies types, collation and NOT NULL; ON COMMIT empties it for the next call
                cursor.execute(
                    f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}") '
                    "ON COMMIT DELETE ROWS"
                )
                column_list = ", ".join(f'"{n}"' for n in names)
                with cursor.copy(f'COPY "{stage}" ({column_list}) FROM STDIN') as copy:
                    for row in zip(*(columns[n] for n in names), strict=True):
                        copy.write_row(row)
            result = conn.execute(stmt, execution_options={"preserve_rowcount": True})
            return max(result.rowcount, 0)


def _stage_name(table: Table) -> str:
    return f"stage_{table.name}"


def where_range(
    stmt: _Select, column: Any, start: TimestampLike | None, end: TimestampLike | None
) -> _Select:
    """Restrict ``stmt`` to ``start <= column < end`` (either bound may be open)."""
    start_ns = optional_ns(start, field="start")
    end_ns = optional_ns(end, field="end")
    if start_ns is not None:
        stmt = stmt.where(column >= start_ns)
    if end_ns is not None:
        stmt = stmt.where(column < end_ns)
    return stmt


def check_limit(limit: int | None, *, field: str = "limit") -> int | None:
    """Return a valid row limit or raise ``DataError``."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0:
        raise DataError(f"{field}: expected a non-negative integer or None, got {limit!r}")
    return int(limit)


def to_frame(rows: Sequence[Sequence[Any]], spec: Mapping[str, str]) -> pd.DataFrame:
    """Build a frame from result tuples; ``spec`` maps column name to kind.

    Kinds: ``time`` (stored nanoseconds to ``datetime64[ns, UTC]``), ``float`` (NULL to NaN),
    ``bool``, ``int``, ``str`` (pandas' string dtype) and ``object`` (keeps ``None``).
    """
    # one C-level pass to a 2-D object array, then a vectorised cast per column: several times
    # faster than zip(*rows) on 600k rows
    table = np.empty((len(rows), len(spec)), dtype=object)
    if rows:
        table[:] = rows
    data: dict[str, pd.Series] = {}
    for i, (name, kind) in enumerate(spec.items()):
        values = table[:, i]
        if kind == "time":
            data[name] = ns_to_series(values.astype("int64"))
        elif kind == "float":
            data[name] = pd.Series(values.astype(float))
        elif kind == "bool":
            data[name] = pd.Series(values.astype(bool))
        elif kind == "int":
            data[name] = pd.Series(values.astype("int64"))
        elif kind == "str":
            data[name] = pd.Series(values, dtype="str")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def require_columns(frame: Any, required: Sequence[str], *, source: str) -> None:
    """Raise ``DataError`` unless ``frame`` is a DataFrame holding every ``required`` column."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; the frame needs {list(required)}")


def float_column(frame: pd.DataFrame, column: str, *, source: str) -> list[float | None]:
    """The column as Python floats with NaN as ``None`` (stored as NULL on both backends)."""
    try:
        values = pd.to_numeric(frame[column], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: column {column!r} must be numeric ({exc})") from exc
    return [None if math.isnan(v) else v for v in values.tolist()]


def text_column(
    frame: pd.DataFrame, column: str, *, source: str, nullable: bool = False
) -> list[str | None]:
    """The column as Python strings; missing values are ``None`` if allowed, else ``DataError``."""
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any() and not nullable:
        rows = list(frame.index[missing][:5])
        raise DataError(f"{source}: column {column!r} is empty at rows {rows}")
    return [None if m else str(v) for v, m in zip(values.tolist(), missing.tolist(), strict=True)]


def reject_duplicates(frame: pd.DataFrame, key: list[str], *, source: str) -> None:
    """Raise ``DataError`` if two rows share ``key`` (the database would keep one at random)."""
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        first = frame.loc[dup, key].iloc[0].to_dict()
        raise DataError(
            f"{source}: {int(dup.sum())} rows share the key {key}, first {first}; "
            "keep one row per key"
        )
