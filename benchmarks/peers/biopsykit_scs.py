"""Peer side of bench_scoring: time BioPsyKit's ``scs()`` on the same item matrix.

Runs inside the BioPsyKit environment (numpy<2, pandas<3). Usage:
``python biopsykit_scs.py ITEMS.npy OUT.npy REPEATS``; prints the best wall time in seconds.
"""

import sys
import time

import numpy as np
import pandas as pd
from biopsykit.questionnaires import scs


def main() -> None:
    items = np.load(sys.argv[1])
    repeats = int(sys.argv[3])
    frame = pd.DataFrame(items, columns=[f"SCS_{i:02d}" for i in range(1, 27)])
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = scs(frame)
        best = min(best, time.perf_counter() - start)
    assert result is not None
    cols = ["SCS_SelfKindness", "SCS_SelfJudgment", "SCS_Isolation", "SCS"]
    np.save(sys.argv[2], result[cols].to_numpy(dtype=np.float64))
    print(f"{best:.6f}")


if __name__ == "__main__":
    main()
