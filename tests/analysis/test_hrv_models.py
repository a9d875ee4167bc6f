"""HRV models: the validity filter, log transform, reactivity and fits checked against the same
steps done in R (lme4) from the raw rows; a simulated effect recovered; the GRAPH table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import GRAPH_ITEMS, HrvModelError, HrvModels, fit_hrv_models, graph_items

TIMEPOINTS = ["baseline", "week12", "week24"]
ARMS = ["control", "PS"]
WINDOWS = {"baseline": (0, 300), "session": (300, 2100), "recovery": (2100, 2400)}


def simulate_hrv(seed: int, n: int = 80, effect: float = 0.15) -> pd.DataFrame:
    """HRV result rows as the study derives them: ln RMSSD ~ 3.6 + person (SD 0.4) and a
    session drop of 0.3 (SD 0.1 between people) that the PS arm softens by ``effect`` per
    follow-up step; ln HF moves with twice the amplitude. About 8 % invalid windows, 3 %
    analysis errors, 3 % stale."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arm = ARMS[i % 2]
        person, reacts = rng.normal(0, 0.4), rng.normal(0, 0.1)
        for k, tp in enumerate(TIMEPOINTS):
            for label, (start, end) in WINDOWS.items():
                drop = -0.3 + reacts if label == "session" else 0.0
                if arm == "PS" and label == "session":
                    drop += effect * k
                ln_rmssd = 3.6 + person + drop + rng.normal(0, 0.2)
                ln_hf = 6.0 + 2 * person + 2 * drop + rng.normal(0, 0.4)
                u = rng.random()
                status, valid, reason = "ok", True, ""
                if u < 0.08:
                    valid, reason = False, "artifact rate above 0.05"
                elif u < 0.11:
                    status, valid, reason = "error", None, None
                derivation = "stale" if 0.11 <= u < 0.14 else "current"
                rows.append(
                    (f"P{i:03d}", arm, tp, label, status, valid, reason,
                     float(np.exp(ln_rmssd)), float(np.exp(ln_hf)), 0.01, start, end, "0.9.0",
                     derivation)
                )  # fmt: skip
    columns = ["participant", "arm", "timepoint", "label", "status", "valid", "reason",
               "rmssd_ms", "hf_ms2", "artifact_rate", "start_s", "end_s", "pipeline_version",
               "derivation"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame.loc[5, "hf_ms2"] = np.nan  # a window whose spectrum could not be computed
    return frame


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, HrvModels]:
    hrv = simulate_hrv(3)
    return hrv, fit_hrv_models(hrv, arms=ARMS, timepoints=TIMEPOINTS)


@pytest.mark.parametrize(
    ("key", "metric", "what"),
    [
        ("ln_rmssd@session", "rmssd_ms", "session"),
        ("ln_hf@baseline", "hf_ms2", "baseline"),
        ("reactivity_ln_rmssd", "rmssd_ms", "reactivity"),
    ],
)
def test_hrv_models_agree_with_the_same_steps_in_r(
    key: str,
    metric: str,
    what: str,
    fitted: tuple[pd.DataFrame, HrvModels],
    run_r: Callable[..., list[list[str]]],
    tmp_path: Path,
) -> None:
    hrv, models = fitted
    fit = models.fits[key]
    hrv.to_csv(tmp_path / "hrv.csv", index=False, float_format="%.17g")
    out = run_r("hrv_fit.R", str(tmp_path / "hrv.csv"), metric, what)
    fixed = {int(k): (float(e), float(s)) for kind, k, e, s in (r for r in out if r[0] == "fixed")}
    assert len(fixed) == len(fit.fixed)
    for k, fe in enumerate(fit.fixed):
        est, se = fixed[k]
        assert abs(fe.estimate - est) <= 1e-4 * max(abs(est), se), fe.term
        assert fe.se == pytest.approx(se, rel=1e-4), fe.term
    vc = {r[1]: float(r[2]) for r in out if r[0] == "vc"}
    assert fit.variance["participant_intercept"] == pytest.approx(vc["participant"], rel=1e-4)
    assert fit.variance["residual"] == pytest.approx(vc["Residual"], rel=1e-4)
    other = {r[0]: r[1] for r in out if r[0] in ("loglik", "nobs")}
    assert fit.loglik == pytest.approx(float(other["loglik"]), rel=1e-4)
    assert fit.n_obs == int(other["nobs"]) == models.used[key]


def test_exclusions_are_counted_by_window_and_reason(
    fitted: tuple[pd.DataFrame, HrvModels],
) -> None:
    hrv, models = fitted
    ex = models.exclusions
    session = hrv[hrv["label"] == "session"]
    n_error = int((session["status"] == "error").sum())
    n_invalid = int((session["valid"] == False).sum())  # noqa: E712
    n_stale = int(((session["derivation"] == "stale") & (session["status"] == "ok")).sum())
    by = ex[ex["window"] == "session"].groupby("reason")["n"].sum()
    assert by["analysis error"] == n_error
    assert by["invalid: artifact rate above 0.05"] == n_invalid
    assert by["stale derivation"] == n_stale
    kept = len(session) - n_error - n_invalid - n_stale
    assert models.used["ln_rmssd@session"] == kept
    hf_gone = ex[(ex["outcome"] == "ln_hf") & (ex["reason"] == "hf_ms2 missing or not positive")]
    assert hf_gone["n"].sum() == 1
    assert not models.not_fitted
    # Counted per arm, too.
    ps_invalid = session[(session["arm"] == "PS") & (session["valid"] == False)]  # noqa: E712
    by_arm = ex[(ex["window"] == "session") & (ex["reason"] == "invalid: artifact rate above 0.05")]
    assert by_arm.set_index("arm").loc["PS", "n"] == len(ps_invalid)


@pytest.mark.slow
def test_a_simulated_reactivity_effect_is_recovered() -> None:
    models = fit_hrv_models(simulate_hrv(8, n=300), arms=ARMS, timepoints=TIMEPOINTS)
    react = models.fits["reactivity_ln_rmssd"]
    for term, truth in (("arm[PS]:timepoint[week12]", 0.15), ("arm[PS]:timepoint[week24]", 0.3)):
        fe = react.effect(term)
        assert fe.ci_low < truth < fe.ci_high
    assert react.effect("(Intercept)").ci_low < -0.3 < react.effect("(Intercept)").ci_high
    base = models.fits["ln_rmssd@baseline"].effect("arm[PS]:timepoint[week24]")
    assert base.ci_low < 0 < base.ci_high  # nothing simulated at rest
    hf = models.fits["reactivity_ln_hf"].effect("arm[PS]:timepoint[week24]")
    assert hf.ci_low < 0.6 < hf.ci_high


def test_a_model_without_data_is_named_not_dropped() -> None:
    hrv = simulate_hrv(2, n=30)
    hrv = hrv[hrv["label"] != "recovery"]
    models = fit_hrv_models(hrv, arms=ARMS, timepoints=TIMEPOINTS)
    assert models.not_fitted == {
        "ln_rmssd@recovery": "no valid windows",
        "ln_hf@recovery": "no valid windows",
    }
    assert "ln_rmssd@session" in models.fits


def test_refused_input_names_what_is_wrong() -> None:
    hrv = simulate_hrv(2, n=10)
    with pytest.raises(HrvModelError, match="no column 'timepoint'"):
        fit_hrv_models(hrv.drop(columns="timepoint"))
    twice = pd.concat([hrv, hrv.head(1)])
    with pytest.raises(HrvModelError, match="'P000' has two 'baseline' windows at timepoint"):
        fit_hrv_models(twice)


def test_graph_table_fills_what_is_stored_and_says_not_recorded_otherwise() -> None:
    hrv = simulate_hrv(1, n=10)
    recordings = pd.DataFrame(
        {"device": ["Polar H10"] * 9 + ["Faros 180"], "sampling_rate_hz": [130.0] * 9 + [500.0],
         "kind": ["ecg"] * 10}
    )  # fmt: skip
    table = graph_items(hrv, recordings).set_index("item")
    assert table.loc["Recording device", "value"] == "Polar H10 (n=9); Faros 180 (n=1)"
    assert table.loc["Sampling rate (Hz)", "value"] == "130-500"
    assert table.loc["Signal type", "value"] == "ecg"
    assert table.loc["Recording length per window", "value"].startswith(
        "baseline: median 5.0 min (5.0-5.0)"
    )
    assert table.loc["Software", "value"] == "peerlens 0.9.0"
    for item in ("Posture during recording", "Respiration (rate, paced breathing or its control)"):
        assert table.loc[item, "value"] == "not recorded"
    assert set(GRAPH_ITEMS) <= set(table.index)
    bare = graph_items(hrv.drop(columns=["pipeline_version"])).set_index("item")
    assert bare.loc["Recording device", "source"] == "not recorded"
    assert bare.loc["Software", "value"] == "not recorded"
