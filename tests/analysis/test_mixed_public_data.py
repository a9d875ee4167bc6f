"""Mixed models fitted to real longitudinal data nobody on the team collected, shipped with R's
packages, and checked against lme4 + lmerTest on the same data: fixed effects, their SEs and
Satterthwaite df, variance components and the REML log-likelihood, all to 1e-4 relative.

- ``sleepstudy`` (lme4): reaction times of 18 sleep-deprived participants over 10 days
  (Belenky et al. 2003, J Sleep Res 12, 1-12); the day as the timepoint, one arm.
- ``Orthodont`` (nlme): the distance from pituitary to pterygomaxillary fissure of 27 children
  at ages 8, 10, 12 and 14 (Potthoff & Roy 1964, Biometrika 51, 313-326); sex as the arm.

R writes each data set to a CSV here (nothing is copied into the repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from peerlens.analysis import MixedModelFit, fit_mixed_model

from .test_mixed import _assert_fixed_effects_match_r, _fit_in_r, _rscript

#: How R gives each data set, in the columns peerlens reads.
_R_DATA = {
    "sleepstudy": (
        "d <- lme4::sleepstudy; data.frame(participant = d$Subject, arm = 'all', "
        "timepoint = paste0('day', d$Days), days = d$Days, y = d$Reaction)"
    ),
    "Orthodont": (
        "d <- as.data.frame(nlme::Orthodont); data.frame(participant = as.character(d$Subject), "
        "arm = as.character(d$Sex), timepoint = paste0('age', d$age), years = d$age - 8, "
        "y = d$distance)"
    ),
}


def _r_data(name: str, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / f"{name}.csv"
    code = f"write.csv({{ {_R_DATA[name]} }}, {str(path)!r}, row.names = FALSE)"
    done = subprocess.run(
        [_rscript(), "-e", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return pd.read_csv(path, dtype={"participant": str})


def _assert_matches_lmertest(fit: MixedModelFit, tmp_path: Path, slope: str | None) -> None:
    r = _fit_in_r(fit, tmp_path, slope)
    _assert_fixed_effects_match_r(fit, r)
    vc = r["vc"]
    assert isinstance(vc, dict)
    names = {
        ("Residual", "", ""): "residual",
        ("participant", "(Intercept)", ""): "participant_intercept",
    }
    if slope:
        names[("participant", slope, "")] = "participant_slope"
        names[("participant", "(Intercept)", slope)] = "participant_cov"
    assert len(vc) == len(fit.variance)
    for key, name in names.items():
        assert fit.variance[name] == pytest.approx(vc[key], rel=1e-4), name
    assert fit.loglik == pytest.approx(float(str(r["loglik"])), rel=1e-4)


@pytest.mark.parametrize("slope", [None, "days"], ids=["intercept", "intercept+slope"])
def test_sleepstudy_agrees_with_lme4_and_lmertest(slope: str | None, tmp_path: Path) -> None:
    data = _r_data("sleepstudy", tmp_path)
    assert len(data) == 180 and data["participant"].nunique() == 18
    days = [f"day{k}" for k in range(10)]
    fit = fit_mixed_model(data, "y", timepoints=days, random_slope=slope)
    assert fit.converged and fit.terms[0] == "(Intercept)" and len(fit.terms) == 10
    _assert_matches_lmertest(fit, tmp_path, slope)


@pytest.mark.parametrize("slope", [None, "years"], ids=["intercept", "intercept+slope"])
def test_orthodont_agrees_with_lme4_and_lmertest(slope: str | None, tmp_path: Path) -> None:
    data = _r_data("Orthodont", tmp_path)
    assert len(data) == 108 and data["participant"].nunique() == 27
    ages = [f"age{a}" for a in (8, 10, 12, 14)]
    fit = fit_mixed_model(data, "y", arms=["Female", "Male"], timepoints=ages, random_slope=slope)
    assert fit.converged and "arm[Male]:timepoint[age14]" in fit.terms
    _assert_matches_lmertest(fit, tmp_path, slope)
