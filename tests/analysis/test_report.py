"""The study report on a simulated trial stored through the study API: counts checked against
what the test stored, statistics against independent computations, the page byte-identical
across builds, and bad input refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import ReportError, ReportOptions, build_report, render_html
from peerlens.analysis.report import arm_order
from peerlens.instruments import load_spec
from peerlens.study import AnalysisDataset, Store, analysis_dataset, create_study
from peerlens.study.errors import StudyError

from ..conftest import ADMIN
from ._trial import CONFIG, Trial

OPTIONS = ReportOptions(outcomes=("scs_total", "scs_isolation"), n_imputations=4, n_boot=200)


@pytest.fixture(scope="module")
def page(dataset: AnalysisDataset) -> str:
    return render_html(build_report(dataset, OPTIONS))


def _keyed_total(items: pd.DataFrame) -> pd.Series:
    """SCS total by hand: the mean of the 26 items after reversing the negative ones (6 - x);
    a coded-missing item (-9) is left out of the mean."""
    reverse = set(load_spec("scs").reverse_items)
    cols = {i: items[f"scs_{i}"].where(items[f"scs_{i}"] != -9) for i in range(1, 27)}
    keyed = pd.DataFrame({i: (6 - c if i in reverse else c) for i, c in cols.items()})
    return keyed.mean(axis=1)


def _table(page: str, section: str, caption: str | None = None) -> list[list[str]]:
    """The cells of the first table in ``section`` (after ``caption`` when given)."""
    body = page[page.index(f'<section id="{section}">') :]
    body = body[: body.index("</section>")]
    if caption:
        body = body[body.index(caption) :]
    table = body[body.index("<tbody>") : body.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)
        ]
        for r in rows
    ]


def test_two_builds_are_byte_identical_and_the_seed_matters(
    dataset: AnalysisDataset, page: str
) -> None:
    again = render_html(build_report(dataset, OPTIONS))
    assert again == page
    other = render_html(build_report(dataset, ReportOptions(**{**OPTIONS.__dict__, "seed": 1})))
    assert other != page
    assert dataset.sha256 in page


def test_the_page_is_self_contained(page: str) -> None:
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "@media print" in page
    assert page.count("<svg") == 2  # one means plot per outcome


def test_flow_counts_what_was_stored(page: str, stored: tuple[Store, Trial]) -> None:
    trial = stored[1]
    rows = {r[0]: r[1:] for r in _table(page, "flow")}
    # Reference arm first: usual_care, then peer_support.
    assert rows["enrolled"] == ["20", "20", "40"]
    assert rows["withdrawn"] == ["2", "2", "4"]
    for t in ("baseline", "week12", "week24"):
        seen = trial.items[trial.items["timepoint"] == t]
        counts = seen.groupby("arm").size()
        assert rows[f"assessed: {t}"] == [
            str(counts["usual_care"]),
            str(counts["peer_support"]),
            str(len(seen)),
        ]


def test_baseline_table_matches_a_hand_computed_scs_total(
    page: str, stored: tuple[Store, Trial]
) -> None:
    items = stored[1].items
    base = items[items["timepoint"] == "baseline"].assign(total=lambda d: _keyed_total(d))
    rows = {r[0]: r[2:] for r in _table(page, "baseline")}
    expected = [
        f"{g['total'].mean():.2f} ({g['total'].std(ddof=1):.2f})"
        for _, g in (
            ("usual_care", base[base["arm"] == "usual_care"]),
            ("peer_support", base[base["arm"] == "peer_support"]),
            ("total", base),
        )
    ]
    assert rows["SCS Total (mean of keyed items)"] == expected
    assert rows["site: north"] == ["10 (50.0%)", "10 (50.0%)", "20 (50.0%)"]


def test_missing_table_counts_the_follow_ups_never_stored(
    page: str, stored: tuple[Store, Trial]
) -> None:
    dropped = stored[1].dropped.merge(
        stored[1].items[["participant", "arm"]].drop_duplicates(), on="participant"
    )
    rows = _table(page, "missing")
    for arm, t, allocated, observed, missing, _ in rows:
        gone = int(((dropped["arm"] == arm) & (dropped["timepoint"] == t)).sum())
        assert (int(allocated), int(missing)) == (20, gone)
        assert int(observed) == 20 - gone


def test_models_show_the_mixed_model_of_the_stored_scores(
    page: str, stored: tuple[Store, Trial]
) -> None:
    """The interaction at week 24 equals the difference in change between arms of the cell
    means when the model is fitted to complete cases only; here, with dropout, it must at least
    be the model's estimate printed with its Satterthwaite CI, and recover the simulated
    effect (0.5 on the item scale: 0.25 per step) inside its interval."""
    rows = {r[0]: r for r in _table(page, "models", "Fixed effects")}
    row = rows["arm[peer_support]:timepoint[week24]"]
    low, high = (float(x) for x in row[6].strip("[]").split(","))
    assert low < 0.5 < high
    assert low < float(row[1]) < high


def test_within_arm_d_z_matches_a_hand_computation(page: str, stored: tuple[Store, Trial]) -> None:
    items = stored[1].items.assign(total=lambda d: _keyed_total(d))
    wide = items.pivot(index="participant", columns="timepoint", values="total")
    arms = items.drop_duplicates("participant").set_index("participant")["arm"]
    rows = {(r[0], r[1]): r for r in _table(page, "change")}
    for arm in ("usual_care", "peer_support"):
        pairs = wide[arms.reindex(wide.index) == arm][["baseline", "week24"]].dropna()
        diff = pairs["week24"] - pairs["baseline"]
        assert rows[(arm, "week24")][2] == str(len(pairs))
        d_z = diff.mean() / diff.std(ddof=1)
        assert rows[(arm, "week24")][4].startswith(f"{d_z:.2f} ")


def test_sensitivity_sits_beside_the_main_estimate(page: str) -> None:
    rows = _table(page, "sensitivity")
    assert rows[0][0] == "main (MAR, likelihood)"
    assert [r[0] for r in rows[1:4]] == [
        "MI, delta 0.00 SD",
        "MI, delta 0.20 SD",
        "MI, delta 0.50 SD",
    ]
    # Worse imputed values in the peer support arm can only lower its (positive) effect.
    estimates = [float(r[3]) for r in rows[1:4]]
    assert estimates[0] > estimates[1] > estimates[2]


def test_methods_name_what_was_run(page: str) -> None:
    methods = page[page.index('<section id="methods">') :]
    for name in ("statsmodels", "numpy", "pandas", "peerlens"):
        assert f"<td>{name}</td>" in methods
    assert "lmer(scs_total ~ arm * timepoint + (1 | participant), REML = TRUE)" in methods
    assert "Satterthwaite" in methods and "missing at random" in page
    assert "4 imputations per delta, seed 0" in methods


def test_unknown_outcome_is_named(dataset: AnalysisDataset) -> None:
    with pytest.raises(ReportError, match=r"unknown outcome.*scs_totl.*scs_total"):
        build_report(dataset, ReportOptions(outcomes=("scs_totl",)))


def test_unknown_reference_arm_is_named(dataset: AnalysisDataset) -> None:
    with pytest.raises(ReportError, match="reference arm 'placebo'"):
        build_report(dataset, ReportOptions(outcomes=("scs_total",), reference_arm="placebo"))
    assert arm_order(["intervention", "control"]) == ("control", "intervention")


def test_an_empty_study_is_refused(stored: tuple[Store, Trial], tmp_path: Path) -> None:
    store = stored[0]
    (tmp_path / "empty.yaml").write_text(CONFIG, encoding="utf-8")
    create_study(store, "empty", tmp_path / "empty.yaml", caller=ADMIN)
    with pytest.raises(ReportError, match="no participants"):
        build_report(analysis_dataset(store, "empty", caller=ADMIN))
    with pytest.raises(StudyError, match="nosuch"):
        analysis_dataset(store, "nosuch", caller=ADMIN)


def test_the_dataset_keeps_coded_missing_items(dataset: AnalysisDataset) -> None:
    first = (dataset.item_codes["participant"] == "P000") & (
        dataset.item_codes["timepoint"] == "baseline"
    )
    assert dataset.item_codes.loc[first, "scs_3"].tolist() == [-9.0]
    assert np.isnan(dataset.items.loc[first, "scs_3"]).all()
    assert (
        int(dataset.item_codes.drop(columns=["participant", "timepoint"]).notna().sum().sum()) == 1
    )


def test_the_worker_level_appears_only_when_workers_are_recorded(
    dataset: AnalysisDataset,
) -> None:
    """Without PS worker assignments the report has no worker section; with them (four workers
    over the PS arm) each outcome is refitted with the worker level, and the section shows the
    same ICC and the same with/without comparison as a direct fit."""
    from dataclasses import replace

    from peerlens.analysis import fit_nested_model
    from peerlens.analysis.report import ReportContext, _context
    from peerlens.analysis.report_worker import nested_section

    assert dataset.participants["worker"].isna().all()
    assert "The PS worker level" not in render_html(build_report(dataset, ReportOptions()))
    people = dataset.participants.copy()
    ps = people["arm"] == "peer_support"
    people.loc[ps, "worker"] = [f"W{i % 4}" for i in range(int(ps.sum()))]
    with_workers = replace(dataset, participants=people)
    ctx: ReportContext = _context(with_workers, ReportOptions())
    section = nested_section(ctx)
    assert section is not None and not section.data["not_fitted"]
    data = with_workers.scores.merge(people[["participant", "worker"]], on="participant")
    for shown in section.data["outcomes"]:
        direct = fit_nested_model(
            data, shown["name"], arms=list(ctx.arms), timepoints=list(ctx.timepoints)
        )
        assert shown["n_workers"] == 4
        assert shown["icc"] == direct.worker_icc
        assert [i["term"] for i in shown["ignoring"]] == [
            i.term for i in direct.ignoring if i.term in ctx.effect_terms
        ]
    page = render_html(build_report(with_workers, ReportOptions()))
    assert "The PS worker level (partially nested design)" in page
    assert "worker ICC" in page
