"""Regenerate ``src/peerlens/examples/responses.csv``: a simulated two-arm peer-support study.

Simulated, not real: 40 pseudonymous participants, arms ``peer_support`` and ``usual_care``,
timepoints ``baseline`` and ``week12``. Item answers come from one latent wellbeing value per
participant and timepoint (the peer-support arm improves more), passed through each instrument's
keying so that scores move in the expected directions. A few answers are left empty or coded -9
(declared missing), so the demo shows prorating and missing-data rules at work.

Run: ``.venv/bin/python tools/make_example_data.py`` (deterministic; the test suite checks the
committed file is what this script writes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from peerlens.instruments import load_spec

OUT = Path(__file__).resolve().parents[1] / "src/peerlens/examples/responses.csv"
INSTRUMENTS = ("scs", "fscrs", "phq9", "gad7", "swemwbs", "qpr15")
# +1 when a higher answer means better wellbeing (before reverse keys), -1 when worse.
ITEM_DIRECTION = {"scs": 1, "fscrs": -1, "phq9": -1, "gad7": -1, "swemwbs": 1, "qpr15": 1}
FSCRS_REASSURED = {3, 5, 8, 11, 13, 16, 19, 21}


def build(seed: int = 20261126) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 40
    ids = [f"P{i:03d}" for i in range(1, n + 1)]
    arms = np.array(["peer_support", "usual_care"] * (n // 2))
    base = rng.normal(-0.5, 0.8, n)
    gain = np.where(arms == "peer_support", 0.7, 0.2) + rng.normal(0, 0.35, n)
    rows = []
    for t, timepoint in enumerate(("baseline", "week12")):
        latent = base + t * gain
        frame = pd.DataFrame({"participant": ids, "arm": arms, "timepoint": timepoint})
        for inst in INSTRUMENTS:
            spec = load_spec(inst)
            lo, hi = spec.response_min, spec.response_max
            for item in range(1, spec.n_items + 1):
                sign = ITEM_DIRECTION[inst]
                if item in spec.reverse_items or (inst == "fscrs" and item in FSCRS_REASSURED):
                    sign = -sign
                centre = (lo + hi) / 2 + sign * latent * (hi - lo) / 4
                if inst == "phq9" and item == 9:
                    centre -= 2.0  # thoughts of self-harm: endorsed by few, as in real samples
                answer = np.clip(np.rint(centre + rng.normal(0, 0.8, n)), lo, hi).astype(int)
                frame[f"{inst}_{item}"] = answer.astype(str)
        rows.append(frame)
    data = pd.concat(rows, ignore_index=True)
    # A little missingness: empty cells and the declared code -9.
    for row, col, value in [
        (2, "scs_5", ""),
        (7, "phq9_3", ""),
        (7, "phq9_6", "-9"),
        (11, "gad7_2", "-9"),
        (15, "fscrs_9", ""),
        (23, "qpr15_4", ""),
        (31, "swemwbs_7", ""),
        (44, "scs_12", "-9"),
        (44, "scs_19", ""),
        (52, "phq9_1", ""),
    ]:
        data.loc[row, col] = value
    return data


def main() -> int:
    data = build()
    text = data.to_csv(index=False, lineterminator="\n")
    if "--check" in sys.argv:
        return 0 if OUT.read_text() == text else 1
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(data)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
