"""NAB scoring: exact small cases and the published reference numbers of two NAB detectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.evaluation_nab import file_geometry, load_corpus, probation_length, score_corpus

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def test_probation_length():
    assert probation_length(1000) == 150
    assert probation_length(4032) == 604
    assert probation_length(10320) == 750.0  # capped at 0.15 * 5000


def test_null_perfect_and_window_edges():
    g = file_geometry(100, [(40, 59)], probation=0.0)
    zeros = np.zeros(100)
    early = zeros.copy()
    early[40] = 1.0
    res = score_corpus([g], [zeros])["standard"]
    assert res.score == 0.0 and res.null == -1.0 and res.perfect == 1.0
    assert score_corpus([g], [early])["standard"].score == pytest.approx(100.0)
    late = zeros.copy()
    late[59] = 1.0  # right edge: y = -1/20, worth (2 sigmoid(0.25) - 1) / (2 sigmoid(5) - 1)
    value = (2 / (1 + np.exp(-0.25)) - 1) / (2 / (1 + np.exp(-5)) - 1)
    assert score_corpus([g], [late])["standard"].raw == pytest.approx(value)


def test_false_positives_cost_fp_weight_each_and_threshold_is_swept():
    g = file_geometry(100, [(40, 59)], probation=0.0)
    s = np.zeros(100)
    s[40] = 0.9
    s[[5, 6]] = 1.0  # two FPs far from any window, above the hit
    res = score_corpus([g], [s])
    # best: threshold 0.9 hits the window (+1) and pays 2 FPs
    assert res["standard"].threshold == 0.9
    assert res["standard"].raw == pytest.approx(1.0 - 2 * 0.11)
    assert res["reward_low_FP_rate"].raw == pytest.approx(1.0 - 2 * 0.22)


def test_probation_rows_are_not_scored():
    g = file_geometry(100, [(40, 59)])  # probation 15 rows
    s = np.zeros(100)
    s[3] = 1.0
    assert score_corpus([g], [s])["standard"].raw == pytest.approx(-1.0)


def _reference_scores(detector: str, rels: list[str]) -> list[np.ndarray]:
    out = []
    for rel in rels:
        cat, name = rel.split("/")
        path = NAB / "reference_outputs" / detector / cat / name
        if not path.exists():
            path = path.with_name(f"{detector}_{name}")
        out.append(pd.read_csv(path)["anomaly_score"].to_numpy(float))
    return out


@pytest.mark.parametrize(
    ("detector", "expected"),
    [("knncad", (56.513, 46.779, 61.253)), ("windowedGaussian", (23.284, 1.963, 32.596))],
)
def test_reproduces_the_published_reference_numbers(detector, expected):
    if not (NAB / "dev_files.txt").is_file():
        pytest.fail(f"NAB development data not found at {NAB}: the sibling shared/ folder "
                    "(shared/data/nab) must be checked out next to the repository")
    rels = [ln.strip() for ln in (NAB / "dev_files.txt").read_text().splitlines() if ln.strip()]
    rels, _, geoms = load_corpus(NAB, rels)
    res = score_corpus(geoms, _reference_scores(detector, rels))
    got = tuple(round(res[p].score, 3) for p in
                ("standard", "reward_low_FP_rate", "reward_low_FN_rate"))
    assert got == expected
    assert res["standard"].threshold == pytest.approx(1.0, abs=1e-9)
