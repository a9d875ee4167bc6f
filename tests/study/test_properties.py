"""Property tests: any valid response matrix survives import -> tidy export unchanged, and any
out-of-range cell is reported at its row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from peerlens.study import (
    ImportRejected,
    NewParticipant,
    Store,
    add_participants,
    create_study,
    import_responses,
)
from peerlens.study._catalog import parse_choices
from peerlens.study._lookup import get_study
from peerlens.study.export import tidy_frame
from peerlens.study.users import bootstrap_admin

from .conftest import ACTOR, ADMIN, PASSWORD

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
# A cell: an answer 0..3, unanswered (""), or the missing code -99.
CELL = st.one_of(st.integers(0, 3).map(str), st.just(""), st.just("-99"))


def _store(tmp: Path) -> Store:
    store = Store.open("sqlite://", create=True, blob_dir=tmp, poolclass=StaticPool)
    bootstrap_admin(store, ACTOR, PASSWORD)
    cfg = tmp / "study.yaml"
    cfg.write_text(
        "missing_codes: [-99]\ntimepoints:\n  - name: t0\n    instruments: [gad7]\n", "utf-8"
    )
    create_study(store, "s", cfg, caller=ADMIN)
    add_participants(store, "s", [NewParticipant(f"P{i}") for i in range(6)], caller=ADMIN)
    return store


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI must be deterministic)
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cells=st.lists(st.lists(CELL, min_size=7, max_size=7), min_size=1, max_size=6))
def test_import_then_export_gives_back_every_cell(tmp_path: Path, cells: list[list[str]]) -> None:
    store = _store(tmp_path)
    frame = pd.DataFrame(cells, columns=GAD7)
    frame.insert(0, "participant", [f"P{i}" for i in range(len(cells))])
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    import_responses(store, "s", path, timepoint="t0", caller=ADMIN)
    with store.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "s"))
    items = tidy[tidy.kind == "item"]
    got = {
        (r.participant, r.name): (r.missing_code if isinstance(r.missing_code, str) else r.value)
        for r in items.itertuples()
    }
    want = {}
    for i, row in enumerate(cells):
        for item, cell in zip(GAD7, row, strict=True):
            if cell == "-99":
                want[(f"P{i}", item)] = "-99"
            elif cell != "":
                want[(f"P{i}", item)] = float(cell)
    assert got == want
    store.close()


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI must be deterministic)
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    row=st.integers(0, 2),
    col=st.integers(0, 6),
    bad=st.one_of(st.integers(4, 50), st.integers(-50, -1).filter(lambda v: v != -99)),
)
def test_out_of_range_cell_is_reported_where_it_is(
    tmp_path: Path, row: int, col: int, bad: int
) -> None:
    store = _store(tmp_path)
    cells = np.ones((3, 7), dtype=int).astype(str)
    cells[row, col] = str(bad)
    frame = pd.DataFrame(cells, columns=GAD7)
    frame.insert(0, "participant", ["P0", "P1", "P2"])
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    try:
        import_responses(store, "s", path, timepoint="t0", caller=ADMIN)
    except ImportRejected as exc:
        assert [(p.row, p.column) for p in exc.problems] == [(row + 1, GAD7[col])]
    else:
        raise AssertionError("out-of-range value accepted")
    store.close()


@given(
    st.dictionaries(
        st.integers(-5, 200).map(str),
        st.text(st.characters(blacklist_characters="|\n\r"), min_size=1)
        .map(str.strip)
        .filter(bool),
        min_size=1,
        max_size=8,
    )
)
def test_parse_choices_inverts_the_redcap_format(choices: dict[str, str]) -> None:
    text = " | ".join(f"{code}, {label}" for code, label in choices.items())
    assert parse_choices(text) == choices


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cells=st.lists(st.lists(CELL, min_size=7, max_size=7), min_size=1, max_size=6))
@example(cells=[["0", "0", "", "", "", "", ""], ["0"] * 7])  # no band: NULL, not "nan"
@example(cells=[[""] * 7, ["-99"] * 7, ["3"] * 7])  # nothing answered; all coded missing
def test_derived_scores_equal_scoring_the_file_directly(
    tmp_path: Path, cells: list[list[str]]
) -> None:
    from peerlens.instruments import score
    from peerlens.study import derive, derived_frame

    store = _store(tmp_path)
    frame = pd.DataFrame(cells, columns=GAD7)
    frame.insert(0, "participant", [f"P{i}" for i in range(len(cells))])
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    import_responses(store, "s", path, timepoint="t0", caller=ADMIN)
    derive(store, "s", ["scores"], caller=ADMIN)
    stored = derived_frame(store, "s", "scores", caller=ADMIN).set_index(["participant", "name"])
    # The reference: the file as a user holds it, scored by peerlens.instruments directly.
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = score(raw, "gad7", missing_codes=(-99,)).set_index("participant")
    for code, row in expected.iterrows():
        if (raw.loc[raw.participant == code, GAD7] == "").all(axis=None):
            assert code not in stored.index.get_level_values(0)  # nothing stored, nothing scored
            continue
        for name in ("gad7_total", "gad7_prorated"):
            got, want = stored.loc[(code, name), "value"], row[name]
            assert (pd.isna(got) and pd.isna(want)) or float(got) == float(want), (code, name)
        want_band = row["gad7_severity"]
        got_band = stored.loc[(code, "gad7_severity"), "text"]
        # No band is NULL in the database (a "nan" string would fail here).
        assert (pd.isna(want_band) and pd.isna(got_band)) or got_band == want_band
    store.close()
