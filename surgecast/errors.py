"""The one exception tree of surgecast.

Every error the service raises on purpose is a ``SurgecastError``; messages name the offending
field, column or file and say how to fix it. The API maps the tree to HTTP codes in one handler
(``surgecast.api``)::

    SurgecastError
    ├── ConfigError          bad or missing configuration            -> 500 at start, exit 2 in the CLI
    ├── DataError            bad input data (schema, values, history) -> 422
    │   └── InsufficientHistory
    ├── NotFittedError       a model used before ``fit``              -> 500
    ├── SourceUnavailable    a metrics source could not be reached     -> 503
    ├── StoreError           the store failed or is unreachable        -> 503
    └── NotFound             unknown service or series                 -> 404
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "InsufficientHistory",
    "NotFittedError",
    "NotFound",
    "SourceUnavailable",
    "StoreError",
    "SurgecastError",
]


class SurgecastError(Exception):
    """Base of every error surgecast raises on purpose."""


class ConfigError(SurgecastError):
    """The configuration is invalid: the message names the file, the key and what was expected."""


class DataError(SurgecastError, ValueError):
    """Input data does not fit the contract (column, dtype, duplicate, non-numeric value)."""


class InsufficientHistory(DataError):
    """Not enough history to fit a model; the caller should fall back or wait."""


class NotFittedError(SurgecastError, RuntimeError):
    """A model was used before ``fit``."""


class SourceUnavailable(SurgecastError):
    """A metrics source (Prometheus, file, simulator) could not be reached or read."""


class StoreError(SurgecastError):
    """The store failed (connection, schema, constraint)."""


class NotFound(SurgecastError, KeyError):
    """An unknown service, series or object was asked for."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else "not found"


class Gone(NotFound):
    """The object existed but was ended on purpose (a cancelled override): HTTP 410."""
