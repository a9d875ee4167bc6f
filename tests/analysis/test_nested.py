"""The partially nested model (worker random effect in the PS arm only): checked against lme4 +
lmerTest on the same data, and against a simulation's truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import NestedModelError, fit_mixed_model, fit_nested_model

TIMEPOINTS = ["baseline", "week12", "week24"]
ARMS = ["control", "PS"]


def simulate_nested(
    seed: int,
    n: int = 120,
    n_workers: int = 8,
    worker_sd: float = 2.0,
    effect: float = 2.5,
    dropout: float = 0.1,
) -> pd.DataFrame:
    """Two arms; PS participants spread over ``n_workers`` workers whose effect (SD
    ``worker_sd``) adds to every follow-up score of their caseload; random intercepts SD 3,
    residual SD 2, an extra ``effect`` per step in the PS arm."""
    rng = np.random.default_rng(seed)
    worker_effect = rng.normal(0, worker_sd, n_workers)
    rows = []
    for i in range(n):
        arm = ARMS[i % 2]
        w = (i // 2) % n_workers if arm == "PS" else None
        intercept = rng.normal(0, 3)
        for k, tp in enumerate(TIMEPOINTS):
            if k and rng.random() < dropout:
                continue
            y = 40 + intercept + k
            if w is not None and k:
                y += effect * k + worker_effect[w]
            worker = None if w is None else f"W{w}"
            rows.append((f"P{i:03d}", arm, tp, worker, y + rng.normal(0, 2)))
    return pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "worker", "score"])


@pytest.mark.parametrize("ancova", [False, True], ids=["change", "ancova"])
def test_nested_model_agrees_with_lme4(
    ancova: bool, check_nested_against_r: Callable[[object, Path], None], tmp_path: Path
) -> None:
    fit = fit_nested_model(
        simulate_nested(4), "score", arms=ARMS, timepoints=TIMEPOINTS, ancova=ancova
    )
    assert fit.converged
    check_nested_against_r(fit, tmp_path)


@pytest.mark.slow
def test_worker_variance_is_recovered_and_ignoring_it_understates_the_se() -> None:
    data = simulate_nested(9, n=240, n_workers=16, worker_sd=2.0)
    fit = fit_nested_model(data, "score", arms=ARMS, timepoints=TIMEPOINTS)
    # True worker variance 4 (SD 2), residual 4, participant 9: ICC 4/17.
    assert 4 * 0.4 < fit.variance["worker"] < 4 * 2.5
    assert fit.variance["residual"] == pytest.approx(4, rel=0.2)
    assert fit.worker_icc == pytest.approx(
        fit.variance["worker"] / sum(fit.variance.values()), rel=1e-12
    )
    effect = fit.effect("arm[PS]:timepoint[week24]")
    assert effect.ci_low < 5.0 < effect.ci_high
    # With 16 workers the arm effect's df is near the worker count, not the participant count.
    assert effect.df < 40
    impact = {i.term: i for i in fit.ignoring}["arm[PS]:timepoint[week24]"]
    assert impact.se_ratio > 1.5
    assert impact.se_ignoring == pytest.approx(
        fit_mixed_model(data, "score", arms=ARMS, timepoints=TIMEPOINTS)
        .effect("arm[PS]:timepoint[week24]")
        .se
    )
    assert any("varIdent" in note for note in fit.notes)  # what is not fitted is said


def test_a_worker_variance_at_its_boundary_is_zero_and_agrees_with_lme4(
    check_nested_against_r: Callable[[object, Path], None], tmp_path: Path
) -> None:
    """Worker shifts that vary by participant, not by worker: the REML worker variance is 0
    (lme4's singular fit), and df treat it as known, as lmerTest does."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(60):
        w, u = (f"W{i % 6}", rng.normal()) if i % 2 else (None, 0.0)
        b = rng.normal()
        for k, t in enumerate(("pre", "post")):
            y = 10 + b + k * u + rng.normal(0, 0.5)
            rows.append((f"P{i}", "PS" if w else "control", t, w, y))
    data = pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "worker", "score"])
    fit = fit_nested_model(data, "score", arms=ARMS, timepoints=["pre", "post"])
    assert fit.variance["worker"] == 0.0
    assert fit.worker_icc == 0.0
    assert fit.converged
    check_nested_against_r(fit, tmp_path)


def test_no_worker_variance_leaves_the_arm_effect_as_the_plain_model() -> None:
    fit = fit_nested_model(
        simulate_nested(6, worker_sd=0.0), "score", arms=ARMS, timepoints=TIMEPOINTS
    )
    assert fit.worker_icc < 0.05
    for impact in fit.ignoring:
        assert impact.se_ratio == pytest.approx(1.0, abs=0.1)


def test_worker_columns_that_cannot_carry_the_model_are_refused() -> None:
    data = simulate_nested(1, n=40)
    with pytest.raises(NestedModelError, match="no column 'therapist'"):
        fit_nested_model(data, "score", worker="therapist")
    control = data.copy()
    control.loc[control["arm"] == "control", "worker"] = "W0"
    with pytest.raises(NestedModelError, match="exactly one arm"):
        fit_nested_model(control, "score", arms=ARMS, timepoints=TIMEPOINTS)
    two = data.copy()
    first_ps = two.index[two["arm"] == "PS"][1]
    two.loc[first_ps, "worker"] = "W99"
    with pytest.raises(NestedModelError, match="more than one worker"):
        fit_nested_model(two, "score", arms=ARMS, timepoints=TIMEPOINTS)
    lacking = data.copy()
    lacking.loc[lacking["participant"] == "P001", "worker"] = None
    with pytest.raises(NestedModelError, match="'P001' of arm 'PS' has no worker"):
        fit_nested_model(lacking, "score", arms=ARMS, timepoints=TIMEPOINTS)
    one = data.assign(worker=data["worker"].where(data["worker"].isna(), "W0"))
    with pytest.raises(NestedModelError, match="needs two or more"):
        fit_nested_model(one, "score", arms=ARMS, timepoints=TIMEPOINTS)
