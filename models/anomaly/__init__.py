"""Detectors: score points of a long series frame into an anomaly frame."""

from models.anomaly.novelty import Novelty
from models.anomaly.robust_zscore import RobustZScore

__all__ = ["Novelty", "RobustZScore"]
