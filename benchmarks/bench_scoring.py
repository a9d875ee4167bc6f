"""Score 1,000,000 SCS responses: peerlens vs BioPsyKit's ``scs()``, same data, same run.

Prints rows/s for each, the ratio, and the agreement of the two on the scores they share
(BioPsyKit reports negative subscales reversed, so its SelfJudgment is 6 - peerlens's raw mean).
Target (issue 2): faster than BioPsyKit and well under 5 s for the million rows.

Run: ``.venv/bin/python benchmarks/bench_scoring.py [--rows N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_python
from peerlens.instruments import item_matrix, load_spec, score, score_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    items = rng.integers(1, 6, size=(args.rows, 26)).astype(np.int64)
    spec = load_spec("scs")
    frame = pd.DataFrame(items, columns=list(spec.item_columns))
    frame.insert(0, "participant", np.arange(args.rows))

    def best(fn: object, repeats: int) -> tuple[float, object]:
        times, out = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_full, ours = best(lambda: score(frame, "scs"), args.repeats)
    t_engine, _ = best(lambda: score_matrix(item_matrix(frame, spec), spec), args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        items_path, out_path = Path(tmp) / "items.npy", Path(tmp) / "peer.npy"
        np.save(items_path, items)
        peer = subprocess.run(
            [
                str(peer_python("biopsykit")),
                str(Path(__file__).parent / "peers" / "biopsykit_scs.py"),
                str(items_path),
                str(out_path),
                str(args.repeats),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        t_peer = float(peer.stdout.strip().splitlines()[-1])
        theirs = np.load(out_path)

    assert isinstance(ours, pd.DataFrame)
    diffs = {
        "self_kindness": np.abs(theirs[:, 0] - ours["scs_self_kindness"].to_numpy()).max(),
        "self_judgment (6 - raw)": np.abs(
            theirs[:, 1] - (6 - ours["scs_self_judgment"].to_numpy())
        ).max(),
        "isolation (6 - raw)": np.abs(theirs[:, 2] - (6 - ours["scs_isolation"].to_numpy())).max(),
        "total": np.abs(theirs[:, 3] - ours["scs_total"].to_numpy()).max(),
    }
    n = args.rows
    print(f"SCS scoring, {n:,} complete responses x 26 items, best of {args.repeats}")
    print(f"{'':34}{'seconds':>10}{'rows/s':>16}")
    print(f"{'peerlens score() (validate+score)':34}{t_full:>10.3f}{n / t_full:>16,.0f}")
    print(f"{'peerlens engine only':34}{t_engine:>10.3f}{n / t_engine:>16,.0f}")
    print(f"{'BioPsyKit 0.14.0 scs()':34}{t_peer:>10.3f}{n / t_peer:>16,.0f}")
    print(f"ratio (BioPsyKit time / peerlens score() time): {t_peer / t_full:.1f}x")
    print(
        "max |difference| on shared scores: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    )


if __name__ == "__main__":
    main()
