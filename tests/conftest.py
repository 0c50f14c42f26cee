"""Shared fixtures. PostgreSQL fixtures live in ``pg_fixture.py`` (a real private cluster)."""

pytest_plugins = ["pg_fixture"]
