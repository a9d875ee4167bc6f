"""Parallel mediation with percentile bootstrap intervals: checked against R's lm() on the same
data and the same resamples, against a simulated indirect effect, and the effect decomposition."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import MEDIATION_CAVEATS, MediationError, fit_mediation
from peerlens.analysis.mediation import _resamples, _wide

MEDIATORS = ["scs_common_humanity", "scs_isolation"]


def simulate_mediated(
    seed: int, n: int = 160, n_workers: int = 8, a: float = 0.8, b: float = 1.5
) -> pd.DataFrame:
    """PS raises common humanity by ``a``; each unit of its change raises the outcome's change by
    ``b``; isolation changes by noise only; direct effect 0.5; a worker shift in the PS arm."""
    rng = np.random.default_rng(seed)
    shift = rng.normal(0, 0.3, n_workers)
    rows = []
    for i in range(n):
        ps = i % 2
        w = (i // 2) % n_workers
        ch0, iso0, y0 = rng.normal(3, 0.7), rng.normal(3, 0.7), rng.normal(20, 4)
        ch1 = ch0 + a * ps + rng.normal(0, 0.5) + (shift[w] if ps else 0.0)
        iso1 = iso0 + rng.normal(0, 0.5)
        y1 = y0 + 0.5 * ps + b * (ch1 - ch0) + rng.normal(0, 1)
        arm, worker = ("PS", f"W{w}") if ps else ("control", None)
        rows.append((f"P{i:03d}", arm, "baseline", worker, ch0, iso0, y0))
        rows.append((f"P{i:03d}", arm, "week12", worker, ch1, iso1, y1))
    columns = ["participant", "arm", "timepoint", "worker", *MEDIATORS, "score"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize("worker", [None, "worker"], ids=["participants", "workers"])
def test_paths_and_bootstrap_intervals_agree_with_r(
    worker: str | None, run_r: Callable[..., list[list[str]]], tmp_path: Path
) -> None:
    data = simulate_mediated(3, n=80)
    fit = fit_mediation(data, "score", MEDIATORS, worker=worker, n_boot=300, seed=11)
    wide = fit.data.rename(columns={"d_score": "d_y", "score_0": "y_0"})
    wide.drop(columns=["worker"], errors="ignore").to_csv(
        tmp_path / "wide.csv", index=False, float_format="%.17g"
    )
    # The same resamples as the fit drew (same seed), as 1-based rows for R.
    _, strata, _ = _wide(
        data, "score", MEDIATORS, "participant", "arm", "timepoint",
        ("control", "PS"), ("baseline", "week12"), worker,
    )  # fmt: skip
    draws = [(k, int(r) + 1) for k, rows in enumerate(_resamples(strata, 300, 11)) for r in rows]
    pd.DataFrame(draws, columns=["resample", "row"]).to_csv(tmp_path / "rows.csv", index=False)
    out = run_r(
        "mediation_boot.R",
        str(tmp_path / "wide.csv"),
        str(tmp_path / "rows.csv"),
        ",".join(MEDIATORS),
        "0.95",
    )
    r = {name: tuple(float(v) if v != "NA" else math.nan for v in rest) for _, name, *rest in out}
    assert len(r) == len(fit.paths)
    for p in fit.paths:
        est, pval, low, high = r[p.name]
        assert p.estimate == pytest.approx(est, rel=1e-8, abs=1e-12), p.name
        assert p.ci_low == pytest.approx(low, rel=1e-8, abs=1e-12), p.name
        assert p.ci_high == pytest.approx(high, rel=1e-8, abs=1e-12), p.name
        if math.isnan(pval):
            assert math.isnan(p.p)
        else:
            assert p.p == pytest.approx(pval, rel=1e-6), p.name


@pytest.mark.slow
def test_a_simulated_indirect_effect_is_recovered() -> None:
    fit = fit_mediation(
        simulate_mediated(5, n=600, n_workers=30), "score", MEDIATORS, worker="worker",
        n_boot=400, seed=1,
    )  # fmt: skip
    ch = fit.path("indirect[scs_common_humanity]")
    assert ch.ci_low < 0.8 * 1.5 < ch.ci_high
    assert ch.ci_low > 0  # the indirect effect is detected
    iso = fit.path("indirect[scs_isolation]")
    assert iso.ci_low < 0 < iso.ci_high  # none through isolation was simulated
    direct = fit.path("direct")
    assert direct.ci_low < 0.5 < direct.ci_high
    # With the same covariates everywhere, total = direct + indirect exactly.
    assert fit.path("total").estimate == pytest.approx(
        direct.estimate + fit.path("indirect[total]").estimate, rel=1e-10
    )
    assert len(fit.draws) == 400
    assert fit.resampling.startswith("control participants, and PS workers")


def test_same_seed_same_intervals_and_caveats_are_printed() -> None:
    data = simulate_mediated(2, n=60)
    one = fit_mediation(data, "score", MEDIATORS, n_boot=100, seed=4)
    two = fit_mediation(data, "score", MEDIATORS, n_boot=100, seed=4)
    other = fit_mediation(data, "score", MEDIATORS, n_boot=100, seed=5)

    def cis(fit: object) -> list[tuple[float, float]]:
        return [(p.ci_low, p.ci_high) for p in fit.paths]  # type: ignore[attr-defined]

    assert cis(one) == cis(two)
    assert cis(one) != cis(other)
    text = one.summary()
    for caveat in MEDIATION_CAVEATS:
        assert caveat in text
    assert "Sequential ignorability" in text and "Temporal ordering" in text


def test_incomplete_participants_are_left_out_and_counted() -> None:
    data = simulate_mediated(6, n=60)
    gone = data.drop(data.index[(data["participant"] == "P004") & (data["timepoint"] == "week12")])
    gone.loc[gone["participant"] == "P007", "scs_isolation"] = np.nan
    fit = fit_mediation(gone, "score", MEDIATORS, n_boot=50)
    assert fit.n_participants == 58
    assert fit.n_excluded == 2


def test_data_that_cannot_carry_mediation_are_refused() -> None:
    data = simulate_mediated(1, n=40)
    with pytest.raises(MediationError, match="no column 'scs_self_kindness'"):
        fit_mediation(data, "score", ["scs_self_kindness"])
    with pytest.raises(MediationError, match="'P001' of arm 'PS' has no worker"):
        fit_mediation(
            data.assign(worker=data["worker"].where(data["participant"] != "P001")),
            "score",
            MEDIATORS,
            worker="worker",
        )
    one = data.assign(worker=data["worker"].where(data["worker"].isna(), "W0"))
    with pytest.raises(MediationError, match="fewer than two workers"):
        fit_mediation(one, "score", MEDIATORS, worker="worker")
