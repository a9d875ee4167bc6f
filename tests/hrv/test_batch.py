"""Batch: Dask LocalCluster equals sequential exactly; failures become error rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.hrv.batch import BatchOptions, run_batch


def _rr_file(path: Path, seed: int, n: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    rr = 820 + 35 * np.sin(2 * np.pi * k / 4.2) + rng.normal(0, 9, n)
    path.write_text("\n".join(f"{v:.0f}" for v in rr) + "\n")
    return path


@pytest.fixture
def inputs(tmp_path: Path, data_dir: Path) -> list[Path]:
    files = [_rr_file(tmp_path / f"p{i}.txt", seed=i) for i in range(3)]
    broken = tmp_path / "broken.txt"
    broken.write_text("812\nabc\n")
    return [*files, broken, data_dir / "other" / "v102s.hea"]


def test_dask_equals_sequential(inputs: list[Path]) -> None:
    opts = BatchOptions(window=120.0)
    seq = run_batch(inputs, opts, executor="sequential")
    progress: list[int] = []
    par = run_batch(
        inputs,
        opts,
        executor="dask",
        n_workers=2,
        processes=False,
        progress=lambda done, total: progress.append(done),
    )
    pd.testing.assert_frame_equal(seq, par)
    assert sorted(progress) == [1, 2, 3, 4, 5]
    assert seq["file"].unique().tolist() == [
        "p0.txt",
        "p1.txt",
        "p2.txt",
        "broken.txt",
        "v102s.hea",
    ]
    err = seq[seq["status"] == "error"]
    assert err["file"].tolist() == ["broken.txt"]
    assert "broken.txt: row 2" in err["error"].iloc[0]
    whole = seq[(seq["label"] == "whole") & (seq["status"] == "ok")]
    assert len(whole) == 4 and whole["rmssd_ms"].notna().all()
    # signal-quality then gap columns after the metrics: NaN for RR files, figures for the ECG
    from peerlens.hrv import GAP_COLUMNS, QUALITY_COLUMNS

    tail = [*QUALITY_COLUMNS, *GAP_COLUMNS]
    assert list(seq.columns[-len(tail) :]) == tail
    ecg = seq[seq["file"] == "v102s.hea"]
    assert ecg["sqi"].notna().all() and seq[seq["file"] == "p0.txt"]["sqi"].isna().all()


def test_scheduler_address_from_environment(
    inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    opts = BatchOptions()
    seq = run_batch(inputs[:2], opts, executor="sequential")
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        par = run_batch(inputs[:2], opts)  # no address given: taken from the environment
        # the external cluster is left running (only clusters run_batch creates are closed)
        assert cluster.status.name == "running"
    pd.testing.assert_frame_equal(seq, par)


@pytest.mark.slow
def test_process_cluster_equals_sequential(inputs: list[Path]) -> None:
    # the default LocalCluster runs worker processes (one thread each): results cross a process
    # boundary (pickling) and must still equal the sequential run exactly
    opts = BatchOptions(window=120.0)
    seq = run_batch(inputs, opts, executor="sequential")
    par = run_batch(inputs, opts, executor="dask", n_workers=2, processes=True)
    pd.testing.assert_frame_equal(seq, par)
