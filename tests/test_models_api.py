"""The public surface of ``models``: exports, leaf-package rule, runnable docstring examples."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import models
from models import InsufficientHistoryError, infer_step, season_length

PACKAGE_DIR = Path(models.__file__).parent
FORBIDDEN = {"surgecast", "simulator", "collectors", "actions", "dashboard"}


def test_exported_members():
    assert sorted(models.__all__) == sorted([
        "DETECTORS", "ETS", "FORECASTERS", "MSTLForecaster", "SeasonalEvents", "SeasonalMean",
        "Detector", "Forecaster", "FrameError",
        "InsufficientHistoryError", "ModelError", "NotFittedError", "Novelty", "RobustZScore",
        "SeasonalNaive", "infer_step", "season_length",
    ])
    for name in models.__all__:
        assert getattr(models, name) is not None
    assert models.FORECASTERS == {
        "ets": models.ETS, "mstl": models.MSTLForecaster, "seasonal_events": models.SeasonalEvents,
        "seasonal_naive": models.SeasonalNaive,
    }
    assert models.DETECTORS == {"novelty": models.Novelty, "robust_zscore": models.RobustZScore}


def test_error_tree():
    assert issubclass(models.NotFittedError, models.ModelError)
    assert issubclass(models.NotFittedError, RuntimeError)
    assert issubclass(models.InsufficientHistoryError, ValueError)
    assert issubclass(models.FrameError, ValueError)


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_models_is_a_leaf_package(path):
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert len(path.read_text().splitlines()) < 420  # small modules


def _modules():
    yield "models"
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="models."):
        yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_infer_step_is_the_median_gap_and_robust_to_gaps_and_order():
    ds = pd.to_datetime(["2026-03-02 00:03", "2026-03-02 00:00", "2026-03-02 00:01",
                         "2026-03-02 00:02", "2026-03-02 00:30", "2026-03-02 00:02"], utc=True)
    assert infer_step(ds) == pd.Timedelta("1min")
    assert infer_step(pd.Series(ds)) == pd.Timedelta("1min")
    jittered = pd.date_range("2026-03-02", periods=50, freq="15s", tz="UTC") + pd.to_timedelta(
        np.tile([0, 1, 0, -1, 0], 10), unit="ms")
    assert infer_step(jittered) == pd.Timedelta("15s")


@pytest.mark.parametrize("n", [0, 1])
def test_infer_step_needs_two_points(n):
    ds = pd.date_range("2026-03-02", periods=n, freq="min", tz="UTC")
    with pytest.raises(InsufficientHistoryError, match="two points"):
        infer_step(ds)
    with pytest.raises(InsufficientHistoryError):
        infer_step(ds.append(ds))  # duplicates are not a second point


@pytest.mark.parametrize(("step", "period", "expected"), [
    ("1min", "1D", 1440), ("5min", "1D", 288), ("1h", "7D", 168), ("1D", "1D", 1),
    ("15s", "1h", 240),
])
def test_season_length(step, period, expected):
    assert season_length(pd.Timedelta(step), period) == expected


@pytest.mark.parametrize(("step", "period", "match"), [
    ("7min", "1D", "whole number"), ("0s", "1D", "positive"), ("2D", "1D", "at least one step"),
])
def test_season_length_rejects(step, period, match):
    with pytest.raises(ValueError, match=match):
        season_length(step, period)
