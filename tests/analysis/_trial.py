"""A small simulated two-arm trial stored through the study API, for the report and export
tests: SCS items at three timepoints, a known arm x time effect, dropout, withdrawals and one
item coded missing (-9); optionally PS workers with a worker effect and session transcripts
whose share of connecting sentences differs by worker."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from peerlens.instruments import load_spec
from peerlens.study import (
    Caller,
    NewParticipant,
    Store,
    add_participants,
    add_relationship,
    add_session,
    add_transcript,
    create_study,
    derive,
    import_responses,
    withdraw_participant,
)

ARMS = ("peer_support", "usual_care")
TIMEPOINTS = ("baseline", "week12", "week24")
SITES = ("north", "south")
CONFIG = """
title: Simulated report trial
arms: [peer_support, usual_care]
sites: [north, south]
missing_codes: [-9]
timepoints:
  - name: baseline
    offset_days: 0
    instruments: [scs]
  - name: week12
    offset_days: 84
    instruments: [scs]
  - name: week24
    offset_days: 168
    instruments: [scs]
"""
#: What a PS worker says in the simulated session transcripts: a connecting sentence and a
#: comparing one (the story model labels them connection and comparison).
CONNECTING = "Me too, I felt exactly the same when I was in hospital."
COMPARING = "At least you still have a job, I had nothing back then."
SESSION_START = dt.datetime(2026, 1, 12, 10, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Trial:
    """What was stored: the item table per timepoint (as imported) and who was withdrawn."""

    study: str
    items: pd.DataFrame  # participant, arm, site, timepoint, scs_1..scs_26 (-9 = coded missing)
    withdrawn: tuple[str, ...]
    dropped: pd.DataFrame  # participant, timepoint: follow-ups never stored
    workers: dict[str, str] | None = None  # PS participant -> their PS worker


def make_trial(
    store: Store,
    caller: Caller,
    tmp: Path,
    *,
    n: int = 40,
    seed: int = 7,
    study: str = "trial",
    workers: int = 0,
) -> Trial:
    """Create study ``study`` with ``n`` participants (alternating arms and sites): a latent
    self-compassion level per participant, rising by 0.25 per step in peer support only, 26 SCS
    items around it (reverse-keyed items mirrored), 15 % of follow-ups missing, the last two
    participants of each arm withdrawn after baseline, and item 3 of the first participant's
    baseline coded -9.

    With ``workers``, the peer-support participants are shared round-robin among that many PS
    workers (``W1``, ...); each worker shifts their participants' follow-ups by a random
    effect (SD 0.3) and says, in one session per participant, ``k`` connecting and ``5 - k``
    comparing sentences (worker ``k`` of 1-4, cycling), whose story labels are derived."""
    rng = np.random.default_rng(seed)
    spec = load_spec("scs")
    reverse = set(spec.reverse_items)
    config = tmp / f"{study}.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    create_study(store, study, config, caller=caller)
    codes = [f"P{i:03d}" for i in range(n)]
    arms = [ARMS[i % 2] for i in range(n)]
    sites = [SITES[(i // 2) % 2] for i in range(n)]
    add_participants(
        store,
        study,
        [NewParticipant(c, arm=a, site=s) for c, a, s in zip(codes, arms, sites, strict=True)],
        caller=caller,
    )
    withdrawn = tuple(codes[-4:])
    ps = [c for c, a in zip(codes, arms, strict=True) if a == "peer_support"]
    worker_of = {c: f"W{k % workers + 1}" for k, c in enumerate(ps)} if workers else {}
    shift = np.random.default_rng(seed + 1).normal(0, 0.3, workers)
    rows, dropped = [], []
    for c, a, s in zip(codes, arms, sites, strict=True):
        level = 3.0 + rng.normal(0, 0.4)
        for k, t in enumerate(TIMEPOINTS):
            if k and (c in withdrawn or rng.random() < 0.15):
                dropped.append((c, t))
                continue
            mean = level + (0.25 * k if a == "peer_support" else 0.0)
            if k and c in worker_of:
                mean += shift[int(worker_of[c][1:]) - 1]
            values = []
            for item in range(1, 27):
                x = mean + rng.normal(0, 0.7)
                x = 6 - x if item in reverse else x
                values.append(int(np.clip(np.rint(x), 1, 5)))
            rows.append((c, a, s, t, *values))
    items = pd.DataFrame(
        rows,
        columns=["participant", "arm", "site", "timepoint", *(f"scs_{i}" for i in range(1, 27))],
    )
    items.loc[(items["participant"] == codes[0]) & (items["timepoint"] == "baseline"), "scs_3"] = -9
    for t in TIMEPOINTS:
        block = items[items["timepoint"] == t].drop(columns=["arm", "site", "timepoint"])
        path = tmp / f"{study}_{t}.csv"
        block.to_csv(path, index=False)
        import_responses(store, study, path, timepoint=t, caller=caller)
    for c in withdrawn:
        withdraw_participant(store, study, c, caller=caller)
    if workers:
        _sessions(store, caller, study, worker_of)
    return Trial(
        study,
        items,
        withdrawn,
        pd.DataFrame(dropped, columns=["participant", "timepoint"]),
        worker_of or None,
    )


def _sessions(store: Store, caller: Caller, study: str, worker_of: dict[str, str]) -> None:
    """Enrol the workers, tie each participant to theirs, store one session transcript per
    participant and derive its story labels."""
    names = sorted(set(worker_of.values()))
    add_participants(
        store, study, [NewParticipant(w, role="ps_worker", site=SITES[0]) for w in names],
        caller=caller,
    )  # fmt: skip
    for person, worker in worker_of.items():
        rel = add_relationship(
            store, study, worker, person, started_at=SESSION_START, caller=caller
        )
        sess = add_session(
            store, study, rel, "s1", started_at=SESSION_START, mode="phone", caller=caller
        )
        k = (int(worker[1:]) - 1) % 4 + 1
        said = [CONNECTING] * k + [COMPARING] * (5 - k)
        text = "\n".join(f"{worker}: {x}\nClient: I see." for x in said)
        add_transcript(store, study, text, session_id=sess, speaker=worker, caller=caller)
    derive(store, study, ["story"], caller=caller)
