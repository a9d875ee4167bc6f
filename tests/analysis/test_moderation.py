"""Moderation of the PS effect by the worker's connection index: checked against lme4 on the
same design, against a simulated moderation, and the pooled index against narrative's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import NestedModelError, fit_moderation, worker_connection_index
from peerlens.narrative import summarize

TIMEPOINTS = ["baseline", "week12", "week24"]
ARMS = ["control", "PS"]


def simulate_moderated(
    seed: int, n: int = 160, n_workers: int = 10, gamma: float = 6.0
) -> tuple[pd.DataFrame, dict[str, float]]:
    """A partially nested trial whose PS effect per step is ``2 + gamma (index - mean)``, the
    index spread evenly over 0.2-0.8 across workers; worker SD 1, intercept SD 3, residual 2."""
    rng = np.random.default_rng(seed)
    index = {f"W{w}": 0.2 + 0.6 * w / (n_workers - 1) for w in range(n_workers)}
    mean = float(np.mean(list(index.values())))
    shift = {w: rng.normal(0, 1) for w in index}
    rows = []
    for i in range(n):
        arm = ARMS[i % 2]
        w = f"W{(i // 2) % n_workers}" if arm == "PS" else None
        intercept = rng.normal(0, 3)
        for k, tp in enumerate(TIMEPOINTS):
            y = 30 + intercept + k
            if w is not None and k:
                y += k * (2 + gamma * (index[w] - mean)) + shift[w]
            rows.append((f"P{i:03d}", arm, tp, w, y + rng.normal(0, 2)))
    data = pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "worker", "score"])
    return data, index


def test_moderation_model_agrees_with_lme4(
    check_nested_against_r: Callable[[object, Path], None], tmp_path: Path
) -> None:
    data, index = simulate_moderated(3)
    fit = fit_moderation(data, "score", index, arms=ARMS, timepoints=TIMEPOINTS)
    assert fit.model.converged
    assert fit.model.terms[-1] == "arm[PS]:timepoint[week24]:connection_c"
    check_nested_against_r(fit.model, tmp_path)


@pytest.mark.slow
def test_a_simulated_moderation_is_recovered() -> None:
    data, index = simulate_moderated(7, n=320, n_workers=16)
    fit = fit_moderation(data, "score", index, arms=ARMS, timepoints=TIMEPOINTS)
    assert fit.centre == pytest.approx(0.5)
    week12, week24 = fit.interactions
    assert week12.term == "arm[PS]:timepoint[week12]:connection_c"
    assert week12.ci_low < 6.0 < week12.ci_high
    assert week24.ci_low < 12.0 < week24.ci_high
    assert week24.p < 0.01
    assert fit.baseline_term is not None
    assert fit.baseline_term.ci_low < 0 < fit.baseline_term.ci_high  # none at baseline
    assert fit.workers["n_participants"].sum() == 160
    assert any("not randomised" in note for note in fit.notes)


def test_ancova_moderation_reports_the_first_follow_up_term() -> None:
    data, index = simulate_moderated(5)
    fit = fit_moderation(data, "score", index, arms=ARMS, timepoints=TIMEPOINTS, ancova=True)
    assert fit.baseline_term is None
    assert [fe.term for fe in fit.interactions] == [
        "arm[PS]:connection_c",
        "arm[PS]:timepoint[week24]:connection_c",
    ]
    assert fit.model.data["d"].eq(fit.model.data["arm"].eq("PS").astype(float)).all()


def test_moderation_refuses_workers_without_an_index() -> None:
    data, index = simulate_moderated(2, n=40)
    del index["W3"]
    with pytest.raises(NestedModelError, match=r"worker\(s\) \['W3'\] have no connection index"):
        fit_moderation(data, "score", index, arms=ARMS, timepoints=TIMEPOINTS)
    flat = dict.fromkeys([f"W{w}" for w in range(10)], 0.5)
    with pytest.raises(NestedModelError, match="same connection index"):
        fit_moderation(data, "score", flat, arms=ARMS, timepoints=TIMEPOINTS)


def test_pooled_index_is_narratives_index_of_all_the_workers_sentences() -> None:
    stories = pd.DataFrame(
        {
            "participant": ["W1", "W1", "W2", "W2"],
            "status": ["ok", "ok", "ok", "error"],
            "n_connection": [12, 4, 2, 99],
            "n_upward": [3, 2, 9, 0],
            "n_downward": [1, 0, 2, 0],
            "n_neutral": [10, 5, 4, 0],
        }
    )
    out = worker_connection_index(stories, n_boot=500).set_index("worker")
    pooled = summarize(
        ["connection"] * 16 + ["upward"] * 5 + ["downward"] * 1 + ["neutral"] * 15, n_boot=500
    )
    assert out.loc["W1", "connection_index"] == pytest.approx(16 / 22)
    assert out.loc["W1", "ci_low"] == pytest.approx(pooled.ci_low)
    assert out.loc["W2", "n_transcripts"] == 1  # the error row is left out
    assert out.loc["W2", "connection_index"] == pytest.approx(2 / 13)
