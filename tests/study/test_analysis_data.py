"""The analysis dataset's PS worker column (``peerlens.study.analysis_data``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from peerlens.study import Store, add_participant, add_relationship, analysis_dataset

from ..analysis._trial import make_trial
from ..conftest import ADMIN


def test_each_participant_gets_their_one_ps_worker_or_none(store: Store, tmp_path: Path) -> None:
    """A participant supported by one worker (in one or two relationships) gets that worker's
    pseudonym; one with no relationship, or with two different workers, gets none."""
    make_trial(store, ADMIN, tmp_path, n=6)
    for code in ("W1", "W2"):
        add_participant(store, "trial", code, role="ps_worker", site="north", caller=ADMIN)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for worker, person in (("W1", "P000"), ("W1", "P000"), ("W2", "P002"), ("W1", "P004")):
        add_relationship(store, "trial", worker, person, started_at=start, caller=ADMIN)
    add_relationship(store, "trial", "W2", "P004", started_at=start, caller=ADMIN)
    people = analysis_dataset(store, "trial", caller=ADMIN).participants.set_index("participant")
    workers = {k: v if isinstance(v, str) else None for k, v in people["worker"].items()}
    assert people["worker"].isna().sum() == 4  # missing, not the text "None"
    assert workers == {
        "P000": "W1",
        "P001": None,
        "P002": "W2",
        "P003": None,
        "P004": None,
        "P005": None,
    }


def test_the_workers_session_story_labels_come_with_the_dataset(
    store: Store, tmp_path: Path
) -> None:
    """Each PS session's newest analysed transcript gives one row per session with the label
    counts the narrative model gives the worker's turns of that text; a researcher scoped to one
    site sees that site's worker only, and the analysis dataset holds the same rows."""
    from peerlens.narrative import analyze
    from peerlens.study import add_session, add_transcript, derive, worker_session_stories

    from ..conftest import make_user

    make_trial(store, ADMIN, tmp_path, n=4)
    add_participant(store, "trial", "W1", role="ps_worker", site="north", caller=ADMIN)
    add_participant(store, "trial", "W2", role="ps_worker", site="south", caller=ADMIN)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    spoken = {
        ("W1", "P000"): [
            "Me too, I felt exactly the same when I was in hospital.",
            "At least you still have a job, I had nothing back then.",
        ],
        ("W2", "P002"): ["At least you still have a job, I had nothing back then."],
    }
    texts = {}
    for (worker, person), sentences in spoken.items():
        rel = add_relationship(store, "trial", worker, person, started_at=start, caller=ADMIN)
        sess = add_session(store, "trial", rel, "s1", started_at=start, mode="phone", caller=ADMIN)
        first = f"{worker}: Hello there.\nClient: Hi."
        add_transcript(store, "trial", first, session_id=sess, speaker=worker, caller=ADMIN)
        text = "\n".join(f"{worker}: {x}\nClient: I see." for x in sentences)
        add_transcript(store, "trial", text, session_id=sess, speaker=worker, caller=ADMIN)
        texts[worker] = text
    derive(store, "trial", ["story"], caller=ADMIN)
    rows = worker_session_stories(store, "trial", caller=ADMIN)
    assert list(rows["worker"]) == ["W1", "W2"]
    assert list(rows["participant"]) == ["P000", "P002"]
    for row in rows.itertuples():
        expected = analyze(texts[row.worker], transcript=True, speaker=row.worker).summary
        assert row.status == "ok" and row.n_sentences == expected.n_sentences
        for label in ("connection", "upward", "downward", "neutral"):
            assert getattr(row, f"n_{label}") == expected.counts.get(label, 0), label
    north = make_user(store, "north_researcher", "researcher", study="trial", site="north")
    north_only = worker_session_stories(store, "trial", caller=north)
    assert list(north_only["worker"]) == ["W1"]
    dataset = analysis_dataset(store, "trial", caller=ADMIN)
    pd.testing.assert_frame_equal(dataset.worker_stories, rows)
