"""Mixed models of an outcome by arm over time: checked against lme4 + lmerTest fitted in R on the
same data, against exact degrees of freedom of a balanced design, and against a simulation's
truth."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import MixedModelError, MixedModelFit, fit_mixed_model

TIMEPOINTS = ["baseline", "week12", "week24"]
ARMS = ["control", "PS"]
R_SCRIPT = Path(__file__).with_name("lmer_fit.R")


def simulate(
    seed: int, n: int = 120, effect: float = 2.5, dropout: float = 0.15, slope_sd: float = 0.8
) -> pd.DataFrame:
    """A two-arm trial: random intercepts (SD 3) and slopes, a common time trend of 1 per step,
    and an extra ``effect`` per step in the PS arm; follow-up rows missing at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arm = ARMS[i % 2]
        intercept, slope = rng.normal(0, 3), rng.normal(0, slope_sd)
        for k, tp in enumerate(TIMEPOINTS):
            if k and rng.random() < dropout:
                continue
            y = 40 + intercept + slope * k + k + (effect * k if arm == "PS" else 0.0)
            rows.append((f"P{i:03d}", arm, tp, 0.5 * k, y + rng.normal(0, 2)))
    return pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "years", "score"])


def _rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Rscript is not installed: .ci/run installs r-cran-lmertest")
        pytest.skip("R with lme4 and lmerTest is not installed (Debian: r-cran-lmertest)")
    return found


def _fit_in_r(fit: object, tmp_path: Path, slope: str | None) -> dict[str, object]:
    terms = [f"c{k}" for k in range(len(fit.terms))]  # type: ignore[attr-defined]
    frame = pd.DataFrame(fit.design, columns=terms)  # type: ignore[attr-defined]
    frame.insert(0, "participant", fit.data["participant"].to_numpy())  # type: ignore[attr-defined]
    frame.insert(0, "y", fit.data[fit.outcome].to_numpy())  # type: ignore[attr-defined]
    if slope:
        frame[slope] = fit.data[slope].to_numpy()  # type: ignore[attr-defined]
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    args = [_rscript(), str(R_SCRIPT), str(path), ",".join(terms)] + ([slope] if slope else [])
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = {"fixed": {}, "vc": {}}
    for line in done.stdout.splitlines():
        kind, *rest = line.split("\t")
        if kind == "fixed":
            out["fixed"][rest[0]] = tuple(map(float, rest[1:]))  # type: ignore[index]
        elif kind == "vc":
            out["vc"][(rest[0], rest[1], rest[2])] = float(rest[3])  # type: ignore[index]
        else:
            out[kind] = rest[0]
    return out


def _assert_fixed_effects_match_r(fit: MixedModelFit, r: dict[str, object]) -> None:
    """Hold every fixed effect, SE and Satterthwaite df of ``fit`` to lmerTest's (``r``, from
    ``_fit_in_r``) to 1e-4 relative (estimates near 0 relative to their SE)."""
    fixed_r = r["fixed"]
    assert isinstance(fixed_r, dict)
    for k, fe in enumerate(fit.fixed):
        est, se, df = fixed_r[f"c{k}"]
        assert abs(fe.estimate - est) <= 1e-4 * max(abs(est), se), fe.term
        assert fe.se == pytest.approx(se, rel=1e-4), fe.term
        assert fe.df == pytest.approx(df, rel=1e-4), fe.term


@pytest.mark.parametrize(
    ("ancova", "slope"),
    [(False, None), (True, None), (False, "years")],
    ids=["change", "ancova", "slope"],
)
def test_estimates_agree_with_lme4_and_lmertest(
    ancova: bool, slope: str | None, tmp_path: Path
) -> None:
    data = simulate(3)
    fit = fit_mixed_model(
        data, "score", arms=ARMS, timepoints=TIMEPOINTS, ancova=ancova, random_slope=slope
    )
    assert fit.converged
    r = _fit_in_r(fit, tmp_path, slope)
    _assert_fixed_effects_match_r(fit, r)
    vc = r["vc"]
    assert isinstance(vc, dict)
    assert fit.variance["residual"] == pytest.approx(vc[("Residual", "", "")], rel=1e-4)
    assert fit.variance["participant_intercept"] == pytest.approx(
        vc[("participant", "(Intercept)", "")], rel=1e-4
    )
    if slope:
        assert fit.variance["participant_slope"] == pytest.approx(
            vc[("participant", slope, "")], rel=1e-4
        )
        assert fit.variance["participant_cov"] == pytest.approx(
            vc[("participant", "(Intercept)", slope)], rel=1e-4
        )
    assert fit.loglik == pytest.approx(float(str(r["loglik"])), rel=1e-4)


def test_within_participant_df_of_a_balanced_design_is_exact() -> None:
    """Balanced, complete data and a random intercept: a contrast within participants has
    (participants - arms) x (timepoints - 1) degrees of freedom, exactly (the split-plot ANOVA)."""
    data = simulate(11, n=40, dropout=0.0, slope_sd=0.0)
    fit = fit_mixed_model(data, "score", arms=ARMS, timepoints=TIMEPOINTS)
    for term in ("timepoint[week12]", "arm[PS]:timepoint[week24]"):
        assert fit.effect(term).df == pytest.approx((40 - 2) * (3 - 1), rel=1e-3)


def test_the_simulated_effect_is_recovered_within_its_interval() -> None:
    fit = fit_mixed_model(simulate(5, n=600), "score", arms=ARMS, timepoints=TIMEPOINTS)
    for term, truth in (("arm[PS]:timepoint[week12]", 2.5), ("arm[PS]:timepoint[week24]", 5.0)):
        fe = fit.effect(term)
        assert fe.ci_low < truth < fe.ci_high
        assert fe.p < 1e-6
    assert fit.effect("arm[PS]").p > 0.001  # no difference at baseline was simulated
    means = fit.means.set_index(["arm", "timepoint"])["mean"]
    assert means[("PS", "week24")] - means[("control", "week24")] == pytest.approx(
        fit.effect("arm[PS]").estimate + fit.effect("arm[PS]:timepoint[week24]").estimate
    )


def test_ancova_uses_follow_up_only_with_centred_baseline() -> None:
    data = simulate(8)
    fit = fit_mixed_model(data, "score", arms=ARMS, timepoints=TIMEPOINTS, ancova=True)
    assert set(fit.data["timepoint"]) == {"week12", "week24"}
    assert fit.data["baseline"].mean() == pytest.approx(0.0, abs=1e-9)
    assert fit.terms[:2] == ("(Intercept)", "baseline")
    assert fit.effect("baseline").estimate > 0  # people keep their level


def test_data_that_cannot_carry_the_model_are_refused_by_name() -> None:
    data = simulate(2, n=20)
    with pytest.raises(MixedModelError, match="no column 'phq9'"):
        fit_mixed_model(data, "phq9")
    with pytest.raises(MixedModelError, match=r"arm level\(s\) \['waitlist'\]"):
        fit_mixed_model(data, "score", arms=["control", "PS", "waitlist"], timepoints=TIMEPOINTS)
    one_each = data[data["timepoint"] == "baseline"]
    with pytest.raises(MixedModelError, match="repeated measures"):
        fit_mixed_model(one_each, "score", timepoints=["baseline"])
    twice = pd.concat([data, data.head(1)])
    with pytest.raises(MixedModelError, match="two rows at one timepoint"):
        fit_mixed_model(twice, "score", timepoints=TIMEPOINTS)
    text = data.assign(score=data["score"].astype(object))
    text.loc[3, "score"] = "n/a"
    with pytest.raises(MixedModelError, match=r"row 3 holds 'n/a'"):
        fit_mixed_model(text, "score", timepoints=TIMEPOINTS)


def _no_between_variation() -> pd.DataFrame:
    """Two timepoints whose deviations cancel within each participant: their means vary less
    than the residual alone would make them, so the REML estimate of the between variance is 0."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(40):
        u = rng.normal()
        for tp, e in (("pre", u), ("post", -u)):
            rows.append((f"P{i}", ARMS[i % 2], tp, 10 + 2 * (i % 2) * (tp == "post") + e))
    return pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "score"])


def test_a_random_intercept_variance_at_its_boundary_is_fitted_as_zero() -> None:
    """No between-participant variation at all: the variance is estimated at 0 (lme4's
    singular fit), not an error."""
    fit = fit_mixed_model(_no_between_variation(), "score", arms=ARMS, timepoints=["pre", "post"])
    assert fit.variance["participant_intercept"] < 1e-4 * fit.variance["residual"]
    effect = fit.effect("arm[PS]:timepoint[post]")
    assert effect.ci_low < 2 < effect.ci_high


def test_df_at_a_zero_variance_agree_with_lmertest(tmp_path: Path) -> None:
    """At a variance estimated at 0, Satterthwaite's df depends on the parameterisation; lmerTest
    takes it in (theta, sigma), where the zero variance's uncertainty drops out (here every df
    is n - p = 76). Held to lmerTest's to 1e-4 (the variance parameters' scale changes nothing
    elsewhere)."""
    fit = fit_mixed_model(_no_between_variation(), "score", arms=ARMS, timepoints=["pre", "post"])
    r = _fit_in_r(fit, tmp_path, None)
    _assert_fixed_effects_match_r(fit, r)
    assert fit.loglik == pytest.approx(float(str(r["loglik"])), rel=1e-4)


def test_a_singular_fit_has_the_variance_at_zero_and_lmertest_df(tmp_path: Path) -> None:
    """No variance between participants beyond what the fixed effects explain: the REML optimum
    is on the boundary (lme4's "singular fit"), the variance is 0 and the df are lmerTest's."""
    data = simulate(8, n=120, dropout=0.2, slope_sd=0.0)
    noise = np.random.default_rng(0).normal(0, 1, len(data))
    centred = data["score"] - data.groupby("participant")["score"].transform("mean")
    effect = 2.0 * ((data["timepoint"] != "baseline") & (data["arm"] == "PS"))
    data["score"] = 40 + centred + effect + noise
    fit = fit_mixed_model(data, "score", arms=ARMS, timepoints=TIMEPOINTS)
    assert fit.variance["participant_intercept"] == 0.0
    r = _fit_in_r(fit, tmp_path, None)
    _assert_fixed_effects_match_r(fit, r)
