"""RR recordings for the small simulated trial of ``_trial.py``, stored and derived through the
study API, for the HRV table, report and R export tests.

Each participant has an RR recording at ``baseline`` and ``week12`` with three 120 s windows
(``baseline``, ``session``, ``recovery``): beat-to-beat noise with the window's RMSSD (iid
uniform intervals around the mean, RMSSD = sqrt(2) x SD; bounded, so that no beat looks like an
artefact), lower in the session window (by a participant's own amount) and less so in peer support
at week12; each window is
filled a few beats past its end. The first participant's week12 session window holds an
artefact burst (one interval in eight halved, the next one lengthened by as much), which the
HRV quality rules mark invalid, and the second participant has one more recording stored
without a timepoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peerlens.study import Caller, Store, add_recording, derive

from ._trial import ARMS

WINDOWS = (("baseline", 0.0, 120.0), ("session", 120.0, 240.0), ("recovery", 240.0, 360.0))
#: ln RMSSD of each window before the participant's own level.
LN_RMSSD = {"baseline": 3.6, "session": 3.3, "recovery": 3.65}


@dataclass(frozen=True)
class HrvTrial:
    """What was stored: the participant whose week12 session window is invalid, and the one
    with an extra recording without a timepoint."""

    invalid: str
    untimed: str
    n_recordings: int


def _rr(rng: np.random.Generator, ln_rmssd: dict[str, float], burst: bool) -> np.ndarray:
    parts = []
    for label, start, end in WINDOWS:
        mean = 850.0 if label != "session" else 780.0
        n = int((end - start) * 1000 / mean) + 3
        half_width = float(np.exp(ln_rmssd[label])) / np.sqrt(2) * np.sqrt(3)
        rr = mean + rng.uniform(-half_width, half_width, n)
        if burst and label == "session":  # a premature beat and its pause, time kept
            at = np.arange(0, n - 1, 8)
            moved = rr[at] / 2
            rr[at] -= moved
            rr[at + 1] += moved
        parts.append(rr)
    return np.round(np.concatenate(parts), 1)


def add_hrv(
    store: Store, caller: Caller, tmp: Path, codes: list[str], *, seed: int = 11
) -> HrvTrial:
    """Store and derive the RR recordings of ``codes`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    folder = tmp / "rr"
    folder.mkdir(exist_ok=True)
    n = 0
    for k, code in enumerate(codes):
        person, reacts = rng.normal(0, 0.3), rng.normal(0, 0.1)
        arm = ARMS[k % 2]  # as make_trial allocates
        for tp in ("baseline", "week12"):
            target = {w: v + person + rng.normal(0, 0.05) for w, v in LN_RMSSD.items()}
            target["session"] += reacts
            if arm == "peer_support" and tp == "week12":
                target["session"] += 0.2
            rr = _rr(rng, target, burst=k == 0 and tp == "week12")
            path = folder / f"{code}_{tp}.txt"
            path.write_text("\n".join(f"{x:.1f}" for x in rr) + "\n", encoding="utf-8")
            add_recording(
                store, "trial", path, participant=code, kind="rr", device="chest strap",
                windows=list(WINDOWS), timepoint=tp, caller=caller,
            )  # fmt: skip
            n += 1
    extra = folder / f"{codes[1]}_extra.txt"
    extra.write_text(
        "\n".join(f"{x:.1f}" for x in _rr(rng, LN_RMSSD, burst=False)) + "\n", encoding="utf-8"
    )
    add_recording(
        store, "trial", extra, participant=codes[1], kind="rr", windows=list(WINDOWS),
        caller=caller,
    )  # fmt: skip
    derive(store, "trial", ["hrv"], caller=caller, executor="sequential")
    return HrvTrial(codes[0], codes[1], n + 1)
