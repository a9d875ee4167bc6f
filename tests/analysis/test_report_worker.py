"""The report's PS worker sections (``peerlens.analysis.report_worker``): the moderation and
mediation sections show what the models give when fitted directly, print their caveats and
methods (with the bootstrap's resamples and seed), and build to the same bytes twice."""

from __future__ import annotations

from dataclasses import replace

from peerlens.analysis import (
    ReportOptions,
    build_report,
    fit_mediation,
    fit_moderation,
    render_html,
    worker_connection_index,
)
from peerlens.analysis.report import _context
from peerlens.analysis.report_worker import (
    MEDIATORS,
    mediation_section,
    moderation_section,
    nested_section,
)
from peerlens.study import AnalysisDataset

OPTIONS = ReportOptions(n_boot=300, seed=5)
WORKER_SECTIONS = (nested_section, moderation_section, mediation_section)


def test_moderation_section_shows_the_direct_fit(worker_dataset: AnalysisDataset) -> None:
    ctx = _context(worker_dataset, OPTIONS)
    section = moderation_section(ctx)
    assert section is not None and not section.data["not_fitted"]
    index = worker_connection_index(worker_dataset.worker_stories, worker="worker", n_boot=300)
    assert [w["worker"] for w in section.data["workers"]] == ["W1", "W2", "W3", "W4"]
    # Worker k says k connecting sentences of five: the index rises with k.
    assert index["connection_index"].is_monotonic_increasing
    data = worker_dataset.scores.merge(
        worker_dataset.participants[["participant", "worker"]], on="participant"
    )
    connection = index.set_index("worker")["connection_index"]
    for shown in section.data["outcomes"]:
        direct = fit_moderation(
            data, shown["name"], connection, arms=list(ctx.arms), timepoints=list(ctx.timepoints)
        )
        assert [r["estimate"] for r in shown["interactions"]] == [
            fe.estimate for fe in direct.interactions
        ]
        last = direct.interactions[-1]
        assert f"{0.1 * last.estimate:+.2f} points" in shown["reading"]
        assert "observed, not randomised" in " ".join(shown["notes"])
    assert [m.key for m in section.models] == [f"moderation:{o}" for o in ctx.outcomes]


def test_mediation_section_shows_the_direct_fit_and_its_caveats(
    worker_dataset: AnalysisDataset,
) -> None:
    ctx = _context(worker_dataset, OPTIONS)
    section = mediation_section(ctx)
    assert section is not None
    shown = section.data["outcomes"]
    assert [o["name"] for o in shown] == ["scs_total"]  # the mediators are not outcomes here
    data = worker_dataset.scores.merge(
        worker_dataset.participants[["participant", "worker"]], on="participant"
    )
    direct = fit_mediation(
        data,
        "scs_total",
        MEDIATORS,
        arms=ctx.arms[:2],
        timepoints=(ctx.baseline, ctx.timepoints[-1]),
        worker="worker",
        n_boot=300,
        seed=5,
    )
    keys = ("name", "estimate", "ci_low", "ci_high")
    assert [tuple(p[k] for k in keys) for p in shown[0]["paths"]] == [
        tuple(getattr(p, k) for k in keys) for p in direct.paths
    ]
    assert any("same interval" in c for c in shown[0]["caveats"])
    assert any("shares items with the mediators" in c for c in shown[0]["caveats"])
    assert "300 resamples, seed 5" in " ".join(section.methods)


def test_worker_sections_are_absent_without_workers(dataset: AnalysisDataset) -> None:
    """The plain trial has no PS workers: no worker level and no moderation, but mediation
    (it needs only the SCS subscales)."""
    ctx = _context(dataset, OPTIONS)
    assert nested_section(ctx) is None and moderation_section(ctx) is None
    assert mediation_section(ctx) is not None


def test_without_session_stories_there_is_no_moderation(worker_dataset: AnalysisDataset) -> None:
    bare = replace(worker_dataset, worker_stories=worker_dataset.worker_stories.iloc[:0])
    assert moderation_section(_context(bare, OPTIONS)) is None


def test_the_worker_sections_build_to_the_same_bytes(worker_dataset: AnalysisDataset) -> None:
    pages = [
        render_html(build_report(worker_dataset, OPTIONS, sections=WORKER_SECTIONS))
        for _ in range(2)
    ]
    assert pages[0] == pages[1]
    assert "Moderation of the PS effect by the worker" in pages[0]
    assert "Mediation through common humanity and isolation" in pages[0]
    assert "Sequential ignorability" in pages[0]
    other = render_html(
        build_report(worker_dataset, replace(OPTIONS, seed=6), sections=WORKER_SECTIONS)
    )
    assert other != pages[0]  # the seed reaches the bootstrap intervals
