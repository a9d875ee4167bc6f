"""The analysis dataset's PS worker column (``peerlens.study.analysis_data``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
