"""``peerlens hrv`` commands: analyse one recording, or a batch on Dask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from peerlens._commands._common import err_console, fail, user_errors

app = typer.Typer(
    help="HRV from portable ECG or RR files: R peaks, artifacts, Task Force metrics, windows.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    """Attach the ``hrv`` command group to the root CLI."""
    root.add_typer(app, name="hrv")


def _channel(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


@app.command("analyze")
def analyze_cmd(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="WFDB (.hea), EDF/EDF+/BDF, CSV/TSV ECG, Polar H10 export, or an RR file.",
        ),
    ],
    fs: Annotated[
        float | None, typer.Option("--fs", help="Sampling rate (Hz) for text ECG without time.")
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Channel name or 0-based index.")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="CSV with label,start,end (seconds or ISO timestamps)."),
    ] = None,
    window: Annotated[
        float | None, typer.Option("--window", help="Consecutive windows of this many seconds.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Force how a text file is read: ecg, rr, or peaks (R-peak sample indices, "
            "needs --fs).",
        ),
    ] = None,
    rr_unit: Annotated[
        str | None,
        typer.Option(
            "--rr-unit",
            help="Unit of an RR file without one in its header: ms, s or '1/1024 s' "
            "(1/1024 s values look like ms, so declare them).",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="Spectral method: welch or lomb.")
    ] = "welch",
    max_artifact_rate: Annotated[
        float,
        typer.Option("--max-artifact-rate", help="Windows above this artifact share are invalid."),
    ] = 0.05,
    max_unusable: Annotated[
        float,
        typer.Option(
            "--max-unusable",
            help="Windows with a larger share of unusable ECG (spikes, clipping, flat line, "
            "lead-off, low-SQI beats) are invalid.",
        ),
    ] = 0.2,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result as JSON here.")
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option("--csv", help="Write metrics as CSV here (row 'whole' plus one per window)."),
    ] = None,
    plot_out: Annotated[
        Path | None, typer.Option("--plot", help="Write a diagnostic PNG (ECG, tachogram, PSD).")
    ] = None,
) -> None:
    """Analyse one recording and print its HRV summary.

    The JSON holds fs, rpeaks (sample indices of the input), rr_ms, artifacts, metrics (whole
    recording), windows (label, start_s, end_s, metrics, valid) and provenance.
    """
    from rich.console import Console
    from rich.table import Table

    from peerlens.hrv import QUALITY_COLUMNS, analyze, read_ecg
    from peerlens.hrv.analysis import GAP_COLUMNS
    from peerlens.hrv.metrics import METRIC_COLUMNS

    if method not in ("welch", "lomb"):
        fail(f"--method must be welch or lomb, not {method!r}")
    if window is not None and window <= 0:
        fail(f"--window must be a positive number of seconds, not {window:g}")
    with user_errors():
        rec = read_ecg(input_path, fs=fs, channel=_channel(channel), kind=kind, rr_unit=rr_unit)
        res = analyze(
            rec,
            events=events,
            window=window,
            method=method,
            max_artifact_rate=max_artifact_rate,
            max_unusable=max_unusable,
        )
        if json_out is not None:
            json_out.write_text(json.dumps(res.to_dict(), indent=1) + "\n")
        if csv_out is not None:
            import pandas as pd

            whole = res.metrics.assign(label="whole", start_s=0.0, end_s=res.metrics["duration_s"])
            whole["valid"], whole["reason"] = res.whole_validity()
            cols = ["label", "start_s", "end_s", "n_beats", "artifact_rate", "valid", "reason"]
            frames = [whole[[*cols, *METRIC_COLUMNS, *QUALITY_COLUMNS, *GAP_COLUMNS]]]
            if not res.windows.empty:
                frames.append(res.windows[[*cols, *METRIC_COLUMNS, *QUALITY_COLUMNS, *GAP_COLUMNS]])
            pd.concat(frames, ignore_index=True).to_csv(csv_out, index=False)
        if plot_out is not None:
            from peerlens.hrv.plot import plot_result

            plot_result(res, rec, plot_out)
    console = Console()
    unit = f", RR unit {rec.rr_unit}" if rec.rr_unit else ""
    console.print(
        f"[bold]{rec.source}[/bold] ({rec.format}{unit}): {res.metrics['n_beats'].iloc[0]} beats, "
        f"{res.metrics['duration_s'].iloc[0]:.0f} s, artifact rate "
        f"{100 * res.artifacts.artifact_rate:.2f} % {res.artifacts.counts}"
    )
    table = Table("metric", "whole", *[str(x) for x in res.windows.get("label", [])])
    for col in METRIC_COLUMNS:
        vals = [res.metrics[col].iloc[0], *(res.windows[col] if not res.windows.empty else [])]
        table.add_row(col, *[f"{v:.4g}" for v in vals])
    for col in ("sqi", "unusable_s", "gap_s"):
        vals = [res.metrics[col].iloc[0], *(res.windows[col] if not res.windows.empty else [])]
        table.add_row(col, *[f"{v:.4g}" for v in vals])
    if not res.windows.empty:
        table.add_row("valid", "", *["yes" if v else "no" for v in res.windows["valid"]])
    console.print(table)
    if not res.windows.empty:
        for label, reason in zip(res.windows["label"], res.windows["reason"], strict=True):
            if reason:
                err_console.print(f"window {label}: not valid ({reason})")


@app.command("batch")
def batch_cmd(
    inputs: Annotated[
        list[Path], typer.Argument(metavar="INPUTS...", help="Recordings (any supported format).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Results CSV (one row per recording/window).")],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (tcp://host:8786); default $DASK_SCHEDULER_ADDRESS, "
            "else a local cluster.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Local cluster workers.")] = 2,
    sequential: Annotated[
        bool, typer.Option("--sequential", help="Run in this process, without Dask.")
    ] = False,
    fs: Annotated[float | None, typer.Option("--fs", help="Sampling rate for text ECG.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Channel name or index.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Force text files as ecg, rr or peaks.")
    ] = None,
    rr_unit: Annotated[
        str | None, typer.Option("--rr-unit", help="Unit of RR files: ms, s or '1/1024 s'.")
    ] = None,
    window: Annotated[
        float | None, typer.Option("--window", help="Consecutive windows of this many seconds.")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="welch or lomb.")] = "welch",
) -> None:
    """Analyse many recordings, one Dask task each; a failed recording becomes an error row."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from peerlens.hrv.batch import BatchOptions, run_batch

    if not inputs:
        fail("no INPUTS given")
    if workers < 1:
        fail(f"--workers must be at least 1, not {workers}")
    with user_errors():
        opts = BatchOptions(
            fs=fs, channel=channel, kind=kind, rr_unit=rr_unit, window=window, method=method
        )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as bar:
            task = bar.add_task("recordings", total=len(inputs))
            frame = run_batch(
                inputs,
                opts,
                executor="sequential" if sequential else "dask",
                scheduler=scheduler,
                n_workers=workers,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        frame.to_csv(out, index=False)
    n_err = int((frame["status"] == "error").sum())
    err_console.print(
        f"{len(inputs)} recordings, {n_err} failed; results in {out.name}"
        + ("" if not n_err else " (see the 'error' column)")
    )
