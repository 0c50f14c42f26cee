"""Notebooks are executed for real, committed without outputs, parameterised for papermill, and a
model registered by ``02_retrain_forecaster`` is what the service's next tick uses."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from nbclient import NotebookClient

from surgecast.config import Settings
from surgecast.registry import rollback
from surgecast.store import Store
from surgecast.wiring import build_pipeline

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {
    "01_explore.ipynb",
    "02_retrain_forecaster.ipynb",
    "03_tune_detector.ipynb",
    "04_capacity_what_if.ipynb",
}


def test_every_notebook_of_the_workflow_is_there():
    assert {p.name for p in NOTEBOOKS} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: strip outputs"
            )


def test_nbstripout_verify_passes():
    nbstripout = Path(sys.executable).with_name("nbstripout")
    result = subprocess.run(
        [str(nbstripout), "--verify", *map(str, NOTEBOOKS)], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_papermill_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    expected_text = {
        "01_explore.ipynb": "90% interval coverage",
        "02_retrain_forecaster.ipynb": "chosen for bet-placement:requests_per_second",
        "03_tune_detector.ipynb": "false alarms/day",
        "04_capacity_what_if.ipynb": "cheapest policy per startup delay",
    }[path.name]
    assert expected_text in text
    if path.name == "03_tune_detector.ipynb":
        overlay = (tmp_path / "detect.yaml").read_text()
        assert "threshold" in overlay


NOW = pd.Timestamp("2026-11-20 18:00", tz="UTC")
UID = "bet-placement:requests_per_second"


def _choice_in_use(pipeline, report) -> str:
    assert not [e for e in report.errors if e["stage"] == "forecast"], report.errors
    rec = next(r for r in report.recommendations if r["service"] == "bet-placement")
    return rec["model"]


def test_a_model_registered_by_the_notebook_is_used_by_the_next_tick_and_can_be_rolled_back(
    tmp_path,
):
    settings = Settings(
        backfill_days=10,
        stale_after_seconds=900,
        sources={"simulator": {"type": "simulator", "seed": 7, "step": "5min"}},
        store={"url": f"sqlite:///{tmp_path / 'service.db'}"},
        models_dir=str(tmp_path / "models"),
        forecast={"history_days": 10, "event_model": "none", "model": "seasonal_naive"},
        detect={"history_days": 1},
        services={"bet-placement": {"capacity_per_replica": 60, "max_replicas": 60}},
    )
    store = Store(settings.store.url)
    try:
        pipeline = build_pipeline(settings, store)
        assert _choice_in_use(pipeline, pipeline.tick(NOW)) == "seasonal_naive"

        def run_notebook(choice: str) -> None:
            papermill.execute_notebook(
                str(NOTEBOOK_DIR / "02_retrain_forecaster.ipynb"),
                str(tmp_path / f"02_{choice}.ipynb"),
                parameters={
                    "store_url": settings.store.url, "models_dir": settings.models_dir,
                    "series": UID, "days": 9, "end_at": str(NOW.tz_localize(None)),
                    "choice": choice, "register": True,
                },
                kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
            )  # fmt: skip

        run_notebook("seasonal_mean_1d")
        assert store.latest_model(UID)["model"] == "seasonal_mean_1d"
        assert _choice_in_use(pipeline, pipeline.tick(NOW + pd.Timedelta("5min"))) == (
            "seasonal_mean_1d"
        )
        run_notebook("seasonal_mean_7d")
        assert _choice_in_use(pipeline, pipeline.tick(NOW + pd.Timedelta("10min"))) == (
            "seasonal_mean_7d"
        )
        restored = rollback(store, UID)
        assert restored["model"] == "seasonal_mean_1d"
        assert restored["metadata"]["restores"] in restored["version"]
        assert _choice_in_use(pipeline, pipeline.tick(NOW + pd.Timedelta("15min"))) == (
            "seasonal_mean_1d"
        )
    finally:
        store.close()
