"""surgecast: predictive capacity and anomaly detection for online betting platforms.

The service core: configuration, errors, frames, store, pipeline (one tick), scheduler, API, CLI.
It composes the leaf packages ``collectors``, ``models`` and ``actions``, which never import it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
