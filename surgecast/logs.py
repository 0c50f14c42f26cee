"""Process-wide logging set-up, the same for every command and for the scheduler child."""

from __future__ import annotations

import logging

__all__ = ["setup_logging"]


def setup_logging(level: int = logging.INFO) -> None:
    """Timestamped ``level`` logging to stderr; Prophet's Stan backend kept quiet."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Prophet's Stan backend logs every chain start (CONVENTIONS.md §8)
    logging.getLogger("cmdstanpy").disabled = True
