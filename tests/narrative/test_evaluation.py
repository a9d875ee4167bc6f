"""Decision rule, threshold calibration and leave-one-source-out grouping."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlens.narrative.corpus import LABELS
from peerlens.narrative.evaluation import (
    LOSO_GROUPS,
    apply_threshold,
    calibrate_class_thresholds,
    calibrate_threshold,
    class_thresholds,
    false_alarm_rate,
    loso_group,
    source_folds,
)

C, D, N, U = (LABELS.index(x) for x in ("connection", "downward", "neutral", "upward"))


def test_comparison_below_threshold_falls_back_to_the_likelier_calm_label() -> None:
    p = np.array(
        [
            [0.30, 0.40, 0.20, 0.10],  # downward argmax, below 0.6 -> connection (0.30 > 0.20)
            [0.10, 0.10, 0.35, 0.45],  # upward argmax, below 0.6 -> neutral
            [0.05, 0.05, 0.20, 0.70],  # upward above 0.6 -> upward
            [0.60, 0.10, 0.20, 0.10],  # calm argmax untouched
        ]
    )
    assert apply_threshold(p, LABELS, 0.6).tolist() == [C, N, U, C]
    assert apply_threshold(p, LABELS, 0.0).tolist() == [D, U, U, C]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.2))
def test_calibrated_threshold_meets_the_target_on_its_data(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(4) * 0.5, size=200)
    gold = [LABELS[i] for i in rng.integers(0, 4, size=200)]
    t = calibrate_threshold(p, gold, LABELS, target)
    assert 0.5 <= t <= 1.0
    pred = [LABELS[i] for i in apply_threshold(p, LABELS, t)]
    assert false_alarm_rate(gold, pred)[0] <= target + 1e-12
    # minimal: just below it (when above the floor) the target is missed
    if 0.5 < t < 1.0:
        below = [LABELS[i] for i in apply_threshold(p, LABELS, t - 2e-10)]
        assert false_alarm_rate(gold, below)[0] > target


def test_false_alarm_rate_counts_only_calm_gold() -> None:
    rate, alarms, calm = false_alarm_rate(
        ["neutral", "connection", "upward", "downward"],
        ["downward", "neutral", "neutral", "upward"],
    )
    assert (rate, alarms, calm) == (0.5, 1, 2)


def test_source_folds_never_put_a_source_on_both_sides() -> None:
    sources = ["", "", "a", "b", "a", "c", "b", ""]
    team = np.array([s == "" for s in sources])
    folds = list(source_folds(sources, always_train=team))
    assert [f.held_out for f in folds] == ["a", "b", "c"]
    for fold in folds:
        train_src = {sources[i] for i in fold.train}
        test_src = {sources[i] for i in fold.test}
        assert test_src == {fold.held_out}
        assert fold.held_out not in train_src
        assert set(np.flatnonzero(team)) <= set(fold.train)  # own corpus always trains
        assert sorted([*fold.train, *fold.test]) == list(range(len(sources)))


def test_sources_of_one_group_are_held_out_together() -> None:
    group = loso_group("cm_bpd")
    siblings = sorted(s for s, g in LOSO_GROUPS.items() if g == group)
    assert len(siblings) > 1 and "cm_bpd" in siblings
    sources = ["", "a", *siblings, "b", *siblings]
    folds = list(source_folds(sources, always_train=np.array([s == "" for s in sources])))
    assert [f.held_out for f in folds] == sorted(["a", "b", group])
    grouped = next(f for f in folds if f.held_out == group)
    assert {sources[i] for i in grouped.test} == set(siblings)
    assert not {sources[i] for i in grouped.train} & set(siblings)
    for fold in folds:
        if fold.held_out != group:  # a sibling is never held out without the others
            assert set(siblings) <= {sources[i] for i in fold.train}


def test_calibration_without_calm_rows_returns_the_floor() -> None:
    p = np.array([[0.0, 1.0, 0.0, 0.0]])
    assert calibrate_threshold(p, ["downward"], LABELS) == pytest.approx(0.5)


def test_per_class_thresholds_apply_to_their_own_class_and_none_abstains() -> None:
    p = np.array(
        [
            [0.10, 0.60, 0.20, 0.10],  # downward 0.60
            [0.10, 0.10, 0.20, 0.60],  # upward 0.60
            [0.30, 0.05, 0.05, 0.60],  # upward 0.60, connection likelier than neutral
        ]
    )
    both = {"upward": 0.5, "downward": 0.5}
    assert apply_threshold(p, LABELS, both).tolist() == apply_threshold(p, LABELS, 0.5).tolist()
    assert apply_threshold(p, LABELS, {"upward": 0.7, "downward": 0.5}).tolist() == [D, N, C]
    assert apply_threshold(p, LABELS, {"upward": 0.5, "downward": 0.7}).tolist() == [N, U, U]
    # None: the class is never reported, however certain
    certain = np.array([[0.0, 0.0, 0.01, 0.99]])
    assert apply_threshold(certain, LABELS, {"upward": None, "downward": 0.5}).tolist() == [N]
    assert class_thresholds(0.6) == {"upward": 0.6, "downward": 0.6}
    with pytest.raises(ValueError, match="lack downward"):
        class_thresholds({"upward": 0.6})


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.2))
def test_per_class_calibration_meets_the_target_and_the_precision_floor(
    seed: int, target: float
) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(4) * 0.5, size=150)
    gold = [LABELS[i] for i in rng.integers(0, 4, size=150)]
    for floor in (None, 0.8):
        t = calibrate_class_thresholds(p, gold, LABELS, target, min_precision=floor, min_calls=3)
        assert set(t) == {"upward", "downward"}
        for value in t.values():
            assert (value is None and floor is not None) or (
                value is not None and 0.5 <= value <= 1
            )
        pred = [LABELS[i] for i in apply_threshold(p, LABELS, t)]
        assert false_alarm_rate(gold, pred)[0] <= target + 1e-12
        if floor is not None:
            for cls in ("upward", "downward"):
                calls = [g for g, q in zip(gold, pred, strict=True) if q == cls]
                assert not calls or (len(calls) >= 3 and calls.count(cls) >= floor * len(calls))


def test_abstaining_keeps_the_precise_class_and_drops_the_imprecise_one() -> None:
    # downward: 6 confident calls, 5 right; upward: every call is as often wrong as right
    rows, gold = [], []
    for i in range(6):
        rows.append([0.0, 0.9, 0.1, 0.0])
        gold.append("downward" if i else "neutral")
    for i in range(6):
        rows.append([0.0, 0.0, 0.2, 0.8])
        gold.append("upward" if i % 2 else "neutral")
    rows += [[0.1, 0.0, 0.9, 0.0]] * 88
    gold += ["neutral"] * 88
    p = np.array(rows)
    t = calibrate_class_thresholds(p, gold, LABELS, 0.05, min_precision=0.8, min_calls=5)
    assert t["upward"] is None
    assert t["downward"] is not None
    # without the floor, both are reported within the alarm budget
    loose = calibrate_class_thresholds(p, gold, LABELS, 0.05)
    assert loose["upward"] is not None and loose["downward"] is not None
