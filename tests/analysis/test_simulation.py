"""The simulated trial: reproducible, and its data carry the truth it was drawn with, through the
real scoring engine, HRV pipeline, story model and mixed model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.analysis import fit_mixed_model
from peerlens.analysis.simulation import (
    FACETS,
    HEADLINE_SCORES,
    SimulatedTrial,
    TrialConfig,
    simulate_trial,
)
from peerlens.instruments import load_spec, score

ARMS = ["usual_care", "peer_support"]
TIMEPOINTS = ["baseline", "week6", "week12"]
SMALL = TrialConfig(n_participants=60, ecg_timepoints=(), transcripts_per_participant=0)


def _scored(trial_responses: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    scored = score(trial_responses, list(FACETS))
    return scored.merge(people[["participant", "arm"]], on="participant")


@pytest.fixture(scope="module")
def demo_trial() -> SimulatedTrial:
    return simulate_trial()


def test_the_same_seed_gives_the_same_trial_bit_for_bit(tmp_path: Path) -> None:
    config = TrialConfig(n_participants=24, ecg_timepoints=("baseline",))
    first, again = simulate_trial(config, seed=7), simulate_trial(config, seed=7)
    for name in ("participants", "workers", "responses", "latent", "sessions", "recordings"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    a, b = first.write(tmp_path / "a"), again.write(tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    other = simulate_trial(config, seed=8)
    assert not first.responses.equals(other.responses)


def test_the_demo_design_two_arms_three_sites_eight_workers(demo_trial: SimulatedTrial) -> None:
    trial = demo_trial
    people = trial.participants
    assert len(people) == 120
    assert set(people["arm"]) == set(ARMS) and people["site"].nunique() == 3
    # Randomised within site: the arms balance at every site.
    assert (people.groupby(["site", "arm"]).size() == 20).all()
    ps = people[people["arm"] == "peer_support"]
    assert (
        ps["worker"].nunique() == 8
        and (people.loc[people["arm"] == "usual_care", "worker"] == "").all()
    )
    # A worker supports participants of their own site only.
    site_of = trial.workers.set_index("worker")["site"]
    assert (ps["worker"].map(site_of) == ps["site"]).all()


def test_answers_lie_on_each_response_scale_and_scores_match_the_intended_values(
    demo_trial: SimulatedTrial,
) -> None:
    trial = demo_trial
    responses = trial.responses
    latent = trial.latent.set_index(["participant", "timepoint"])
    scored = score(responses, list(FACETS)).set_index(["participant", "timepoint"])
    for inst, facets in FACETS.items():
        spec = load_spec(inst)
        items = [f"{inst}_{k}" for k in range(1, spec.n_items + 1)]
        values = responses[items].to_numpy()
        assert values.min() >= spec.response_min and values.max() <= spec.response_max
        for facet in facets:
            rule = next(x for x in spec.scores if x.name == facet)
            k = len(rule.items)
            lo, hi = spec.response_min, spec.response_max
            if rule.aggregate == "sum":
                lo, hi = lo * k, hi * k
            intended = latent.loc[scored.index, f"intended_{facet}"]
            inside = intended.between(lo, hi)  # beyond the scale, answers are clipped
            # Whole answers: a facet's item sum is the intended sum rounded, so a mean is off by
            # at most 0.5 / items and a sum by at most 0.5.
            bound = 0.5 / k if rule.aggregate == "mean" else 0.5
            gap = (scored[facet] - intended)[inside].abs()
            assert gap.max() <= bound + 1e-9, facet
            assert inside.mean() > 0.97, facet
    # The keyed SCS total: reverse keys applied by the engine; six facets each off by at most
    # half an answer in 26 items.
    gap = (scored["scs_total"] - latent.loc[scored.index, "intended_scs_total"]).abs()
    assert gap.quantile(0.97) <= 6 * 0.5 / 26 + 1e-9
    # Negative subscales run against the total, positive ones with it.
    corr = scored[["scs_total", "scs_isolation", "scs_common_humanity"]].corr()
    assert (
        corr.loc["scs_total", "scs_isolation"]
        < -0.5
        < 0.5
        < corr.loc["scs_total", "scs_common_humanity"]
    )


def test_dropout_follows_the_configured_rates_and_the_observed_baseline(
    demo_trial: SimulatedTrial,
) -> None:
    trial = demo_trial
    people = trial.participants.set_index("participant")
    seen = trial.responses.groupby("timepoint")["participant"].apply(set)
    for arm, rates in trial.config.dropout.items():
        members = set(people.index[people["arm"] == arm])
        for tp, rate in zip(TIMEPOINTS, rates, strict=True):
            missing = len(members - seen[tp]) / len(members)
            assert missing == pytest.approx(rate, abs=0.5 / len(members)), (arm, tp)
    # Monotone: nobody returns after missing a timepoint.
    assert seen["week12"] <= seen["week6"] <= seen["baseline"]
    # MAR on the observed baseline: those who drop out had less self-compassion at baseline,
    # on average, over many simulated trials (the slope is negative).
    gaps = []
    for seed in range(30):
        t = simulate_trial(SMALL, seed=seed)
        base = score(t.responses[t.responses.timepoint == "baseline"], "scs").set_index(
            "participant"
        )["scs_total"]
        stayed = set(t.responses.loc[t.responses.timepoint == "week12", "participant"])
        gone = base[~base.index.isin(stayed)]
        gaps.append(base[base.index.isin(stayed)].mean() - gone.mean())
    assert np.mean(gaps) > 0 and np.mean(np.array(gaps) > 0) > 0.7


@pytest.mark.slow
def test_truth_is_recovered_by_the_mixed_model_on_a_larger_trial() -> None:
    config = TrialConfig(n_participants=1000, ecg_timepoints=(), transcripts_per_participant=0)
    trial = simulate_trial(config, seed=20261201)
    scored = _scored(trial.responses, trial.participants)
    for name in ("scs_total", "scs_common_humanity", "ders16_total"):
        fit = fit_mixed_model(scored, name, arms=ARMS, timepoints=TIMEPOINTS)
        for tp in ("week6", "week12"):
            effect = fit.effect(f"arm[peer_support]:timepoint[{tp}]")
            truth = trial.truth.arm_effects[name][tp]
            assert effect.ci_low <= truth <= effect.ci_high, (name, tp, effect, truth)
            assert abs(effect.estimate) > 0.5 * abs(truth)


def test_the_truth_of_a_score_follows_its_scoring_rule() -> None:
    # Independent of the simulator's own bookkeeping: the latent means of a large trial without
    # dropout, pushed through the facets by hand for the SCS total (mean of 26 keyed items).
    config = TrialConfig(
        n_participants=4000,
        ecg_timepoints=(),
        transcripts_per_participant=0,
        dropout={"usual_care": (0.0, 0.0, 0.0), "peer_support": (0.0, 0.0, 0.0)},
    )
    trial = simulate_trial(config, seed=3)
    data = _scored(trial.responses, trial.participants)
    means = data.groupby(["arm", "timepoint"])[list(HEADLINE_SCORES)].mean()
    for name in HEADLINE_SCORES:
        change = means[name].unstack().sub(means[name].unstack()["baseline"], axis=0)
        observed = change.loc["peer_support"] - change.loc["usual_care"]
        for tp in ("week6", "week12"):
            truth = trial.truth.arm_effects[name][tp]
            # Two arms of 2000, SD of change about 0.4 latent units: within 4 SE.
            spread = data.groupby("arm")[name].std().max()
            assert observed[tp] == pytest.approx(truth, abs=4 * spread * np.sqrt(2 / 2000)), name
    # scs_total by hand: facet weights are items/26, negative facets reversed (6 - x).
    signs = {"scs_self_judgment": -1, "scs_isolation": -1, "scs_over_identification": -1}
    spec = load_spec("scs")
    cz = sum(
        signs.get(f, 1) * len(next(s.items for s in spec.scores if s.name == f)) / 26 * c[1]
        for f, c in FACETS["scs"].items()
    )
    cm = sum(
        signs.get(f, 1) * len(next(s.items for s in spec.scores if s.name == f)) / 26 * c[2]
        for f, c in FACETS["scs"].items()
    )
    a, b, d = config.mediator_arm_effect[2], config.mediator_to_outcome, config.direct_effect[2]
    assert trial.truth.arm_effects["scs_total"]["week12"] == pytest.approx(
        cz * (d + b * a) + cm * a
    )


def test_the_hrv_pipeline_recovers_rmssd_from_the_synthetic_ecg(tmp_path: Path) -> None:
    from peerlens.hrv import analyze

    config = TrialConfig(n_participants=8, transcripts_per_participant=0)
    trial = simulate_trial(config, seed=4)
    folder = trial.write(tmp_path)
    assert len(trial.recordings) >= 12
    for row in trial.recordings.itertuples():
        result = analyze(folder / "ecg" / row.recording, events=folder / "ecg_windows.csv")
        windows = result.windows.set_index("label")
        assert windows["valid"].all()
        for label in ("baseline", "session", "recovery"):
            truth = getattr(row, f"{label}_rmssd_ms")
            assert windows.loc[label, "rmssd_ms"] == pytest.approx(truth, rel=0.03), label
            # The realised RMSSD is the window's target within a few percent.
            target = np.exp(getattr(row, f"{label}_ln_rmssd"))
            assert truth == pytest.approx(target, rel=0.08)
        assert windows.loc["session", "rmssd_ms"] < windows.loc["baseline", "rmssd_ms"]


def test_worker_connection_indices_follow_the_configuration(demo_trial: SimulatedTrial) -> None:
    from peerlens.narrative import analyze

    trial = demo_trial
    by_worker: dict[str, list[int]] = {}
    for row in trial.sessions.itertuples():
        s = analyze(row.text, transcript=True, speaker=row.worker).summary
        counts = by_worker.setdefault(row.worker, [0, 0])
        counts[0] += s.counts["connection"]
        counts[1] += s.counts["connection"] + s.counts["upward"] + s.counts["downward"]
    index = {w: c / n for w, (c, n) in by_worker.items()}
    configured = trial.truth.worker_connection
    assert sorted(index) == sorted(configured)
    order = sorted(configured, key=configured.__getitem__)
    assert [index[w] for w in order] == sorted(index.values())
    for worker, ci in index.items():
        assert ci == pytest.approx(configured[worker], abs=0.08), worker


@pytest.mark.slow
def test_the_95_ci_of_the_arm_by_time_effect_covers_the_truth_95_percent_of_the_time() -> None:
    # fit_mixed_model has no worker level, so coverage is checked where its model is the
    # simulation's (no worker effect, no moderation); the partially nested model is another's.
    config = TrialConfig(
        n_participants=60,
        ecg_timepoints=(),
        transcripts_per_participant=0,
        worker_sd=0.0,
        connection_moderation=0.0,
    )
    covered = []
    for seed in range(200):
        trial = simulate_trial(config, seed=1000 + seed)
        scored = score(trial.responses, "scs").merge(trial.participants, on="participant")
        fit = fit_mixed_model(scored, "scs_total", arms=ARMS, timepoints=TIMEPOINTS)
        # Both arm x time effects (week 6 and week 12) of each dataset: 400 intervals.
        for tp in ("week6", "week12"):
            effect = fit.effect(f"arm[peer_support]:timepoint[{tp}]")
            truth = trial.truth.arm_effects["scs_total"][tp]
            covered.append(effect.ci_low <= truth <= effect.ci_high)
    assert 0.93 <= np.mean(covered) <= 0.97


def test_each_session_sentence_gets_its_intended_label_from_the_packaged_model() -> None:
    """The simulated transcripts' sentences are labelled as the simulator intends by the story
    model that ships (so a retrained model that reads them otherwise fails here, not later in
    the demo's connection indices)."""
    from peerlens.analysis import _session_sentences as bank
    from peerlens.narrative import classify

    for label in ("connection", "upward", "downward", "neutral"):
        sentences = list(getattr(bank, label.upper()))
        got = [s.label for s in classify(sentences)]
        wrong = [(s, g) for s, g in zip(sentences, got, strict=True) if g != label]
        assert not wrong, (label, wrong)
