"""Pytest plugin: a private, real PostgreSQL 15 server, and store fixtures over SQLite and it.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["pg_fixture"]``.

- ``postgres_url`` (session): starts a throwaway cluster with ``initdb``/``pg_ctl`` in a temporary
  directory, listening only on 127.0.0.1 at a free port (its unix socket stays in that directory),
  trust auth, a database ``surgecast``; stopped (``pg_ctl stop -m fast``) and deleted afterwards.
  PostgreSQL refuses to run as root, so under root (CI) the directory is given to the ``postgres``
  system user and the binaries run through ``runuser -u postgres --``.
- ``store_url`` (function): parametrised over ``sqlite`` (a file in ``tmp_path``) and
  ``postgresql`` (a fresh database per test, dropped after), the latter marked ``postgres``.
- ``store``: a :class:`surgecast.store.Store` on ``store_url``, closed after the test.

Missing binaries fail the tests (CI installs the Debian ``postgresql`` package) rather than
skipping them: a silently skipped backend is an untested backend. ``SURGECAST_PG_BIN`` overrides
the binary directory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import free_port

from surgecast.store import Store

PG_BIN = Path(os.environ.get("SURGECAST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # the Debian package's system user and the cluster's superuser
START_TIMEOUT_S = 30
_database_numbers = itertools.count()


def _as_cluster_owner(args: list[str]) -> list[str]:
    """Prefix ``args`` so they run as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *args]
    return args


def _run(args: list[str], what: str) -> None:
    proc = subprocess.run(
        _as_cluster_owner(args), capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")


def _admin_execute(port: int, *statements: str) -> None:
    """Run statements on the ``postgres`` database in autocommit (CREATE/DROP DATABASE need it)."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement.encode())  # our own literal SQL, no parameters


class _Cluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "data"

    def start(self) -> None:
        _run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )
        # throwaway data: durability settings off make startup and every commit much faster
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        _run(
            [str(PG_BIN / "pg_ctl"), "start", "-D", str(self.data), "-w",
             "-t", str(START_TIMEOUT_S), "-l", str(self.root / "postgres.log"), "-o", options],
            f"pg_ctl start (log: {self.root / 'postgres.log'})",
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_cluster_owner([str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data),
                                   "-m", "fast", "-w"]),
                capture_output=True, timeout=60, check=False,
            )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL 15 on 127.0.0.1; yields the URL of its ``surgecast`` database."""
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / b).is_file()]
    if missing:
        pytest.fail(
            f"PostgreSQL binaries {missing} not found in {PG_BIN}; install PostgreSQL 15 "
            "(apt-get install postgresql-15, or the 'postgresql' package on Debian bookworm) or "
            "point SURGECAST_PG_BIN at its bin directory"
        )
    root = Path(tempfile.mkdtemp(prefix="surgecast-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=PG_USER, group=PG_USER)
    cluster = _Cluster(root, free_port())
    try:
        cluster.start()
        _admin_execute(cluster.port, "CREATE DATABASE surgecast")
        yield cluster.url("surgecast")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'surgecast.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    port = int(base.rsplit(":", 1)[1].split("/", 1)[0])
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    # a fresh database per test: independent tests without knowing which tables exist
    _admin_execute(port, f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        # FORCE: a test that failed mid-way may still hold pooled connections
        _admin_execute(port, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A :class:`surgecast.store.Store` on ``store_url``, closed after the test."""
    opened = Store(store_url)
    try:
        yield opened
    finally:
        opened.close()
