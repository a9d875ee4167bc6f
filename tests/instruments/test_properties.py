"""Hypothesis invariants of the engine over every bundled instrument."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from peerlens.instruments import ScoringCaveatWarning, list_specs, load_spec, score_matrix
from peerlens.instruments._spec import ItemScore

SPECS = list_specs()


def responses(spec_id: str, allow_missing: bool) -> st.SearchStrategy[np.ndarray]:
    spec = load_spec(spec_id)
    values = st.integers(spec.response_min, spec.response_max).map(float)
    if allow_missing:
        values = st.one_of(values, st.just(np.nan))
    return arrays(np.float64, st.tuples(st.integers(1, 20), st.just(spec.n_items)), elements=values)


def _score(values: np.ndarray, spec_id: str) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScoringCaveatWarning)
        return score_matrix(values, load_spec(spec_id))


def _item_scores_of_drawn(
    spec_id: str, data: st.DataObject
) -> tuple[np.ndarray, list[tuple[ItemScore, np.ndarray]]]:
    """Draw responses (with missing answers) and pair each item-based score with its values."""
    spec = load_spec(spec_id)
    values = data.draw(responses(spec_id, allow_missing=True))
    out = _score(values, spec_id)
    pairs = [(s, np.asarray(out[s.name])) for s in spec.scores if isinstance(s, ItemScore)]
    return values, pairs


@pytest.mark.parametrize("spec_id", [s.id for s in SPECS])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_item_scores_stay_within_their_bounds(spec_id: str, data: st.DataObject) -> None:
    spec = load_spec(spec_id)
    _, pairs = _item_scores_of_drawn(spec_id, data)
    for s, got in pairs:
        k = spec.n_items if s.items == "all" else len(s.items)
        finite = got[~np.isnan(got)]
        lo, hi = spec.response_min, spec.response_max
        if s.aggregate == "mean":
            assert ((finite >= lo) & (finite <= hi)).all()
        else:
            assert ((finite >= k * lo - 1e-9) & (finite <= k * hi + 1e-9)).all()


@pytest.mark.parametrize("spec_id", [s.id for s in SPECS])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_missing_beyond_the_rule_is_nan_never_zero(spec_id: str, data: st.DataObject) -> None:
    spec = load_spec(spec_id)
    values, pairs = _item_scores_of_drawn(spec_id, data)
    for s, got in pairs:
        idx = np.arange(spec.n_items) if s.items == "all" else np.asarray(s.items) - 1
        n_missing = np.isnan(values[:, idx]).sum(axis=1)
        too_many = n_missing == len(idx)
        if s.missing.max_missing is not None:
            too_many |= n_missing > s.missing.max_missing
        assert np.isnan(got[too_many]).all(), s.name
        # A complete block is always scored unless a required score is missing.
        if not s.requires:
            assert not np.isnan(got[n_missing == 0]).any(), s.name


@given(values=responses("scs", allow_missing=False))
@settings(max_examples=80, deadline=None)
def test_scs_reversal_symmetry(values: np.ndarray) -> None:
    """Answering 6 - x everywhere mirrors every subscale mean and both totals around 3."""
    a = _score(values, "scs")
    b = _score(6.0 - values, "scs")
    for name in (
        "scs_self_kindness",
        "scs_isolation",
        "scs_total",
        "scs_total_subscale_mean",
    ):
        np.testing.assert_allclose(np.asarray(b[name]), 6.0 - np.asarray(a[name]), atol=1e-12)


@given(values=responses("scs_sf", allow_missing=False))
@settings(max_examples=50, deadline=None)
def test_reverse_keys_apply_only_to_keyed_scores(values: np.ndarray) -> None:
    out = _score(values, "scs_sf")
    # self-judgment is a raw-item mean: higher answers -> higher score, not reversed
    np.testing.assert_allclose(np.asarray(out["scs_sf_self_judgment"]), values[:, [10, 11]].mean(1))


@given(values=responses("fscrs", allow_missing=True))
@settings(max_examples=80, deadline=None)
def test_prorated_sum_equals_mean_of_answered_times_items(values: np.ndarray) -> None:
    out = _score(values, "fscrs")
    idx = np.array([9, 10, 12, 15, 22]) - 1
    block = values[:, idx]
    n_missing = np.isnan(block).sum(axis=1)
    ok = n_missing <= 1
    expected = np.where(ok, np.nanmean(np.where(ok[:, None], block, 0.0), axis=1) * 5, np.nan)
    np.testing.assert_allclose(np.asarray(out["fscrs_hated_self"]), expected)
