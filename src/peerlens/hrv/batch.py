"""Batch HRV over many recordings: one task per file, sequential or on Dask ``distributed``.

Workers receive paths and options, never arrays, so a remote cluster only needs the files on a
shared file system. A recording that fails becomes an error row; the batch carries on. The same
pure function produces each recording's rows in both executors, and rows are put back in input
order, so a parallel run equals a sequential one exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from peerlens import PeerlensError
from peerlens.hrv.analysis import GAP_COLUMNS
from peerlens.hrv.metrics import METRIC_COLUMNS
from peerlens.hrv.quality import QUALITY_COLUMNS

__all__ = ["BatchOptions", "analyze_file", "map_tasks", "run_batch"]

T = TypeVar("T")

#: Columns of every batch row, before the metric columns.
ID_COLUMNS = (
    "file",
    "label",
    "status",
    "error",
    "start_s",
    "end_s",
    "n_beats",
    "artifact_rate",
    "valid",
    "reason",
)


@dataclass(frozen=True)
class BatchOptions:
    """Per-recording options passed to every task (plain values, cheap to ship to workers)."""

    fs: float | None = None
    channel: str | None = None
    kind: str | None = None
    rr_unit: str | None = None
    window: float | None = None
    method: str = "welch"
    nonlinear: bool = True
    max_artifact_rate: float = 0.05
    max_unusable: float = 0.2


def _error_row(name: str, message: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ID_COLUMNS, None)
    row.update(file=name, label="whole", status="error", error=message)
    row.update(dict.fromkeys(METRIC_COLUMNS, np.nan))
    row.update(dict.fromkeys(QUALITY_COLUMNS, np.nan))
    row.update(dict.fromkeys(GAP_COLUMNS, np.nan))
    return row


def analyze_file(path: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Analyse one file and return its rows (``whole`` plus one per window); never raises.

    A :class:`peerlens.PeerlensError` (bad input) or any other exception gives a single
    ``status="error"`` row whose ``error`` names the problem.
    """
    from peerlens.hrv.analysis import analyze

    name = Path(path).name
    opts = BatchOptions(**options)
    try:
        res = analyze(
            path,
            window=opts.window,
            method=opts.method,
            nonlinear=opts.nonlinear,
            max_artifact_rate=opts.max_artifact_rate,
            max_unusable=opts.max_unusable,
            fs=opts.fs,
            channel=opts.channel,
            kind=opts.kind,
            rr_unit=opts.rr_unit,
        )
    except PeerlensError as exc:
        return [_error_row(name, str(exc))]
    except Exception as exc:  # a broken file must not sink the batch
        return [_error_row(name, f"{name}: {type(exc).__name__}: {exc}")]
    whole = res.metrics.iloc[0]
    whole_valid, whole_reason = res.whole_validity()
    rows = [
        {
            "file": name,
            "label": "whole",
            "status": "ok",
            "error": "",
            "start_s": 0.0,
            "end_s": float(whole["duration_s"]),
            "n_beats": int(whole["n_beats"]),
            "artifact_rate": float(whole["artifact_rate"]),
            "valid": whole_valid,
            "reason": whole_reason,
            **{c: float(whole[c]) for c in METRIC_COLUMNS},
            **{c: float(whole[c]) for c in QUALITY_COLUMNS},
            **{c: float(whole[c]) for c in GAP_COLUMNS},
        }
    ]
    for w in res.windows.to_dict(orient="records"):
        rows.append(
            {
                "file": name,
                "label": str(w["label"]),
                "status": "ok",
                "error": "",
                "start_s": float(w["start_s"]),
                "end_s": float(w["end_s"]),
                "n_beats": int(w["n_beats"]),
                "artifact_rate": float(w["artifact_rate"]),
                "valid": bool(w["valid"]),
                "reason": str(w["reason"]),
                **{c: float(w[c]) for c in METRIC_COLUMNS},
                **{c: float(w[c]) for c in QUALITY_COLUMNS},
                **{c: float(w[c]) for c in GAP_COLUMNS},
            }
        )
    return rows


def _frame(per_file: Sequence[list[dict[str, Any]]]) -> pd.DataFrame:
    rows = [row for rows in per_file for row in rows]
    frame = pd.DataFrame(
        rows, columns=[*ID_COLUMNS, *METRIC_COLUMNS, *QUALITY_COLUMNS, *GAP_COLUMNS]
    )
    for col in ("file", "label", "status", "error", "reason"):
        frame[col] = frame[col].astype("string")
    return frame


def run_batch(
    paths: Sequence[str | Path],
    options: BatchOptions | None = None,
    *,
    executor: str = "dask",
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Analyse many recordings and return one tidy frame (rows in input order).

    Parameters
    ----------
    paths
        Recording paths (as accepted by :func:`peerlens.hrv.read_ecg`).
    options
        :class:`BatchOptions` shared by every recording.
    executor
        ``"dask"`` (default) or ``"sequential"``.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``); default the environment
        variable ``DASK_SCHEDULER_ADDRESS``, else a new LocalCluster.
    n_workers, processes
        LocalCluster size and whether workers are processes (threads when False).
    progress
        Called as ``progress(done, total)`` after each recording.

    Returns
    -------
    pandas.DataFrame
        Columns ``file``, ``label`` (``whole`` or the window label), ``status`` (ok/error),
        ``error`` (why a recording failed), ``start_s``, ``end_s``, ``n_beats``,
        ``artifact_rate``, ``valid``, ``reason`` (why a row is not valid), the metric columns
        and the signal-quality columns (:data:`peerlens.hrv.QUALITY_COLUMNS`; NaN for RR files).
    """
    opts = asdict(options or BatchOptions())
    items = [str(p) for p in paths]
    results = map_tasks(
        analyze_file,
        [(p, opts) for p in items],
        names=[Path(p).name for p in items],
        executor=executor,
        scheduler=scheduler,
        n_workers=n_workers,
        processes=processes,
        progress=progress,
        key_prefix="hrv",
    )
    return _frame(results)


def map_tasks(
    func: Callable[..., T],
    args: Sequence[tuple[Any, ...]],
    *,
    names: Sequence[str] | None = None,
    executor: str = "dask",
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    progress: Callable[[int, int], None] | None = None,
    key_prefix: str = "task",
) -> list[T]:
    """Run ``func(*a)`` for every ``a`` in ``args``, sequentially or on Dask; results in order.

    The one place peerlens runs batch work: :func:`run_batch` and the study database's HRV
    derivation both call it. ``func`` must be importable by workers and take plain values
    (paths and options, not arrays) so a remote cluster only needs the files on a shared file
    system; it should turn its own failures into result values, since an exception here stops
    the batch.

    Parameters
    ----------
    func, args
        The task function and one argument tuple per task.
    names
        Readable part of each task's key (e.g. the file name); default the task number.
    executor
        ``"dask"`` or ``"sequential"``.
    scheduler
        Address of a running Dask scheduler; default the environment variable
        ``DASK_SCHEDULER_ADDRESS``, else a new LocalCluster of ``n_workers`` single-threaded
        workers (processes unless ``processes=False``), closed afterwards.
    progress
        Called as ``progress(done, total)`` after each task.

    Raises
    ------
    ValueError
        ``executor`` is neither ``"dask"`` nor ``"sequential"``.
    """
    total = len(args)
    if executor == "sequential" or (executor == "dask" and total == 0):
        out = []
        for i, a in enumerate(args, start=1):
            out.append(func(*a))
            if progress:
                progress(i, total)
        return out
    if executor != "dask":
        raise ValueError(f"executor must be 'dask' or 'sequential', not {executor!r}")
    from distributed import Client, LocalCluster, as_completed

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
        client = Client(cluster)
    labels = names if names is not None else [str(i) for i in range(total)]
    try:
        futures = [
            client.submit(func, *a, key=f"{key_prefix}-{i}-{labels[i]}", pure=False)
            for i, a in enumerate(args)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * total
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress:
                progress(done, total)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results
