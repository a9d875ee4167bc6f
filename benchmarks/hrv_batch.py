"""Batch throughput: ``peerlens.hrv.run_batch`` on a 2-worker vs a 1-worker Dask LocalCluster.

Writes N one-hour simulated single-lead ECG recordings (250 Hz, EDF, peerlens.hrv.simulation,
different seeds) to a temporary folder, then analyses all of them (full pipeline per file) on a
LocalCluster with 1 worker and with 2 workers (processes, one thread each), and prints the wall
time, throughput and ratio, plus whether the two runs gave identical result tables.

The issue's target scenario is 200 recordings; the default here is 40 to keep the run short on a
shared 2-core machine; ``--n 200`` runs the full scenario. What was run is printed.

Run: ``.venv/bin/python benchmarks/hrv_batch.py [--n 40]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyedflib

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peerlens.hrv import BatchOptions, run_batch
from peerlens.hrv.simulation import simulate_ecg

FS = 250


def write_recordings(folder: Path, n: int, hours: float) -> list[Path]:
    base, _, _ = simulate_ecg(hours * 3600, FS, seed=0)
    paths = []
    header = pyedflib.highlevel.make_signal_header(
        "ECG", sample_frequency=FS, physical_min=-3, physical_max=3
    )
    for i in range(n):
        # each recording: the simulated beat train rolled by a different offset plus its own noise
        ecg = np.roll(base, i * 997) + np.random.default_rng(i).normal(0, 0.03, base.size)
        path = folder / f"rec_{i:03d}.edf"
        pyedflib.highlevel.write_edf(str(path), [np.clip(ecg, -3, 3)], [header])
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=40, help="number of recordings (issue: 200)")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = write_recordings(Path(tmp), args.n, args.hours)
        print(
            f"wrote {args.n} recordings of {args.hours:g} h at {FS} Hz (EDF) in "
            f"{time.perf_counter() - t:.1f} s"
        )
        opts = BatchOptions(window=300.0)
        results: dict[int, tuple[float, pd.DataFrame]] = {}
        for workers in (1, 2):
            t = time.perf_counter()
            frame = run_batch(paths, opts, executor="dask", n_workers=workers, processes=True)
            results[workers] = (time.perf_counter() - t, frame)
            wall = results[workers][0]
            n_err = int((frame["status"] == "error").sum())
            print(
                f"LocalCluster {workers} worker(s): {wall:6.1f} s, "
                f"{args.n / wall * 3600:8.0f} recordings/hour, {n_err} errors"
            )
    (w1, f1), (w2, f2) = results[1], results[2]
    print(f"throughput ratio (2 workers / 1 worker): {w1 / w2:.2f}x on this 2-core machine")
    try:
        pd.testing.assert_frame_equal(f1, f2)
        same = "identical"
    except AssertionError:
        same = "DIFFERENT"
    print(f"result tables of the two runs: {same} ({len(f1)} rows)")


if __name__ == "__main__":
    main()
