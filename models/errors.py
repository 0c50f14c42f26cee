"""The exceptions of the ``models`` package.

``models`` is a leaf package (it never imports ``surgecast``), so it has its own small tree; the
service maps it onto ``surgecast.errors`` at its boundary::

    ModelError                     anything a model raises on purpose
    ├── NotFittedError             predict/score before fit          (also a RuntimeError)
    ├── InsufficientHistoryError   too little history to fit         (also a ValueError)
    └── FrameError                 the input frame breaks the contract (also a ValueError)

Example:
    >>> issubclass(InsufficientHistoryError, ValueError)
    True
"""

from __future__ import annotations

__all__ = [
    "FrameError", "InsufficientHistoryError", "ModelError", "NotFittedError", "check_saved",
]


class ModelError(Exception):
    """Base of every error a model raises on purpose."""


class NotFittedError(ModelError, RuntimeError):
    """A model was used before ``fit``; the message names the model and the call to make."""


class InsufficientHistoryError(ModelError, ValueError):
    """A series is too short to fit; the message names the series and how much is needed."""


class FrameError(ModelError, ValueError):
    """The input frame breaks the canonical contract (missing column, naive ``ds``, duplicates)."""


def check_saved(saved: dict, *, key: str, name: str, fmt: int) -> None:
    """Refuse a saved model that is not ``name`` in format ``fmt`` (``saved[key]`` names it).

    Raises:
        ModelError: the message says what was expected and what was found.
    """
    if saved.get(key) != name or saved.get("format") != fmt:
        raise ModelError(
            f"not a saved {name} (format {fmt}): {key}={saved.get(key)!r}, "
            f"format={saved.get('format')!r}"
        )
