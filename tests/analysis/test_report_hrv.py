"""The report's HRV and GRAPH sections on a stored trial with RR recordings, and the R export's
refit of every HRV model of the report (lme4/lmerTest: fixed effects, SEs, variance components
and REML log-likelihood to 1e-4 relative)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from peerlens.analysis import ReportOptions, build_report, render_html
from peerlens.analysis.report import arm_order, flow_section
from peerlens.analysis.report_hrv import (
    graph_section,
    hrv_section,
    hrv_timepoints,
    report_hrv_models,
)
from peerlens.analysis.stat_exports import write_export
from peerlens.study import AnalysisDataset, HrvTable

from ._hrv_trial import HrvTrial
from .conftest import _rscript

SECTIONS = [flow_section, hrv_section, graph_section]
OPTIONS = ReportOptions(outcomes=("scs_total",), seed=1)


def _models(dataset: AnalysisDataset, hrv: HrvTable) -> object:
    return report_hrv_models(
        hrv.windows, arms=arm_order(dataset.arms), timepoints=dataset.timepoints
    )


def test_sections_report_models_exclusions_and_graph_items(
    hrv_data: tuple[AnalysisDataset, HrvTable], hrv_stored: tuple[object, object, HrvTrial]
) -> None:
    dataset, hrv = hrv_data
    stored = hrv_stored[2]
    report = build_report(dataset, OPTIONS, sections=SECTIONS, hrv=hrv)
    assert [s.key for s in report.sections] == ["flow", "hrv", "graph"]
    section = report.sections[1]
    blocks = {b["key"]: b for b in section.data["blocks"]}
    assert set(blocks) == {
        *(f"{o}@{w}" for o in ("ln_rmssd", "ln_hf") for w in ("baseline", "session", "recovery")),
        "reactivity_ln_rmssd",
        "reactivity_ln_hf",
    }
    # The burst made one session window invalid; the untimed recording's three windows are
    # left out as such; every other window enters its model.
    excluded = {(r["window"], r["reason"]): r["n"] for r in section.data["excluded"]}
    arms = section.data["arms"]
    assert arms == ("usual_care", "peer_support")
    invalid = [k for k in excluded if k[0] == "session" and k[1].startswith("invalid")]
    assert len(invalid) == 1 and excluded[invalid[0]] == [0, 1]  # P000 is in peer support
    for w in ("baseline", "session", "recovery"):
        assert excluded[(w, "recording has no timepoint")] == [1, 0]  # P001: usual care
    n_people = dataset.participants["participant"].nunique()
    assert blocks["ln_rmssd@baseline"]["n_used"] == 2 * n_people
    assert blocks["ln_rmssd@session"]["n_used"] == 2 * n_people - 1
    assert blocks["reactivity_ln_rmssd"]["n_used"] == 2 * n_people - 1
    assert stored.n_recordings == 2 * n_people + 1
    # The simulated peer-support effect on session ln RMSSD at week12 (+0.2) is found.
    effect = blocks["reactivity_ln_rmssd"]["effects"][0]
    assert effect["term"] == "arm[peer_support]:timepoint[week12]"
    assert effect["ci_low"] < 0.2 < effect["ci_high"]
    graph = {r["item"]: r for r in report.sections[2].data["rows"]}
    assert graph["Recording device"]["value"] == "chest strap"
    assert graph["Signal type"]["value"] == "rr"
    # An RR list has no sampling rate, lead or placement: said so, never filled in.
    for item in ("Sampling rate (Hz)", "ECG lead or channel analysed", "Posture during recording"):
        assert graph[item]["value"] == "not recorded", item
    assert graph["Artefact correction method"]["source"] == "recordings"
    page = render_html(report)
    assert "Quintana" in page and "not recorded" in page and "ln RMSSD" in page


def test_methods_list_every_hrv_model_fitted(hrv_data: tuple[AnalysisDataset, HrvTable]) -> None:
    """The methods' "Models fitted" table names each of the 8 HRV models with its R call, beside
    the questionnaire outcome's mixed model."""
    dataset, hrv = hrv_data
    page = render_html(build_report(dataset, OPTIONS, sections=SECTIONS, hrv=hrv))
    methods = page[page.index('<section id="methods">') :]
    table = methods[methods.index("<h3>Models fitted</h3>") : methods.index("</table>")]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td[^>]*><code>([^<]+)</code>", table))
    outcomes = ("ln_rmssd", "ln_hf")
    expected = {f"hrv:{o}@{w}" for o in outcomes for w in ("baseline", "session", "recovery")}
    expected |= {f"hrv:reactivity_{o}" for o in outcomes}
    assert {k for k in rows if k.startswith("hrv:")} == expected
    assert "mixed:scs_total" in rows
    for key in expected:
        assert rows[key].startswith("lmer(") and "arm * timepoint + (1 | participant)" in rows[key]


def test_sections_are_absent_without_recordings(
    hrv_data: tuple[AnalysisDataset, HrvTable],
) -> None:
    dataset, hrv = hrv_data
    assert [s.key for s in build_report(dataset, OPTIONS, sections=SECTIONS).sections] == ["flow"]
    empty = HrvTable(hrv.study, hrv.windows.iloc[:0], hrv.sha256)
    report = build_report(dataset, OPTIONS, sections=SECTIONS, hrv=empty)
    assert [s.key for s in report.sections] == ["flow"]


def test_r_export_refits_every_hrv_model_of_the_report(
    hrv_data: tuple[AnalysisDataset, HrvTable], tmp_path: Path
) -> None:
    rscript = _rscript()
    dataset, hrv = hrv_data
    written = write_export(dataset, tmp_path / "trial.csv", format="r", hrv=hrv)
    assert [p.name for p in written] == ["trial.csv", "trial_hrv.csv", "trial.R"]
    table = pd.read_csv(tmp_path / "trial_hrv.csv")
    assert list(table.columns) == list(hrv.windows.columns)
    done = subprocess.run(
        [rscript, str(written[-1]), str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    r = pd.read_csv(tmp_path / "trial_hrv_models.csv")
    models = _models(dataset, hrv)
    fits = models.fits  # type: ignore[attr-defined]
    assert set(r["model"]) == set(fits) and len(fits) == 8
    for key, fit in fits.items():
        mine = r[r["model"] == key]
        fixed = mine[mine["kind"] == "fixed"].set_index("term")
        assert list(fixed.index) == list(fit.terms), key
        vc = mine[mine["kind"] == "variance"].set_index("term")["estimate"]
        tiny = 1e-8 * vc["residual"]  # a variance at its boundary: 0 here, ~1e-14 in lme4
        for fe in fit.fixed:
            est, se = fixed.loc[fe.term, "estimate"], fixed.loc[fe.term, "se"]
            assert abs(fe.estimate - est) <= 1e-4 * max(abs(est), se), (key, fe.term)
            assert fe.se == pytest.approx(se, rel=1e-4), (key, fe.term)
            # Also where the participant variance is at 0: df as lmerTest takes it there.
            assert fe.df == pytest.approx(fixed.loc[fe.term, "df"], rel=1e-3), (key, fe.term)
        for name in ("participant_intercept", "residual"):
            assert fit.variance[name] == pytest.approx(vc[name], rel=1e-4, abs=tiny), (key, name)
        loglik = mine[mine["kind"] == "loglik"].iloc[0]
        assert fit.loglik == pytest.approx(loglik["estimate"], rel=1e-4), key
        assert fit.n_obs == int(loglik["df"]), key


def test_hrv_timepoints_follow_the_schedule(hrv_data: tuple[AnalysisDataset, HrvTable]) -> None:
    dataset, hrv = hrv_data
    assert hrv_timepoints(hrv.windows, dataset.timepoints) == ("baseline", "week12")
    assert hrv_timepoints(hrv.windows, ("week12", "baseline")) == ("week12", "baseline")
