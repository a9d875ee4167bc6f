"""Derived HRV: each recording analysed by :func:`peerlens.hrv.analyze` with its window events.

One ``whole`` row plus one row per window label, with the pipeline version, the full
:class:`peerlens.hrv.HrvProvenance` and the recording's gaps within the window (how many, their
seconds, and each one's kind, span and detail) per row. A recording that cannot be analysed
becomes an ``error`` row saying why (without the stored file's path); the derivation carries on. The
analysis may take minutes, so it runs outside any transaction (sequentially or on Dask, through
the same runner as ``peerlens hrv batch``); recordings erased meanwhile are not written back. A
result is stale when the recording's windows changed or the pipeline version differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Select, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from peerlens.study.derived._base import (
    Batch,
    DeriveOptions,
    digest,
    error_row,
    num,
    stored_results,
    worst_state,
)
from peerlens.study.errors import StudyError
from peerlens.study.models import (
    DerivedHrv,
    Participant,
    Recording,
    RecordingWindow,
    Study,
)

#: One window event: label, start and end in seconds.
Window = tuple[str, float, float]


@dataclass(frozen=True)
class HrvInput:
    """One stored recording to analyse."""

    recording_id: int
    path: str
    fs: float | None
    kind: str
    windows: tuple[Window, ...]


class Hrv:
    """HRV metrics of stored recordings (see the module docstring)."""

    what: str = "hrv"
    views: tuple[str, ...] = ("hrv",)
    slow: bool = True
    summed: bool = False

    def collect(self, session: Session, study: Study, options: DeriveOptions) -> list[HrvInput]:
        from peerlens.study.sessions import recording_file

        recs = session.execute(
            select(
                Recording.id,
                Recording.sha256,
                Recording.suffix,
                Recording.sampling_rate_hz,
                Recording.kind,
            )
            .join(Participant, Participant.id == Recording.participant_id)
            .where(Participant.study_id == study.id)
            .order_by(Recording.id)
        ).all()
        windows = _windows(session, [r[0] for r in recs])
        return [
            HrvInput(
                int(rid),
                str(recording_file(options.blob_dir, sha, suffix)),
                None if fs is None else float(fs),
                str(kind),
                tuple(windows[rid]),
            )
            for rid, sha, suffix, fs, kind in recs
        ]

    def compute(self, inputs: list[HrvInput], options: DeriveOptions) -> list[list[dict[str, Any]]]:
        """:func:`hrv_job` for every input, in input order, sequentially or on Dask (through
        :func:`peerlens.hrv.batch.map_tasks`, the same runner as ``peerlens hrv batch``)."""
        from peerlens.hrv.batch import map_tasks

        if options.executor not in ("dask", "sequential"):
            raise StudyError(f"executor {options.executor!r}: use dask or sequential")
        return map_tasks(
            hrv_job,
            [(j.path, j.fs, j.kind, j.windows, options.max_artifact_rate) for j in inputs],
            names=[f"recording{j.recording_id}" for j in inputs],
            executor=options.executor,
            n_workers=options.n_workers,
            processes=options.processes,
            progress=options.progress,
            key_prefix="study-hrv",
        )

    def batch(
        self,
        session: Session,
        inputs: list[HrvInput],
        results: list[list[dict[str, Any]]],
        options: DeriveOptions,
    ) -> Batch:
        from peerlens import __version__

        # Recordings erased while the analysis ran are not written back.
        still = set(
            session.scalars(
                select(Recording.id).where(Recording.id.in_([j.recording_id for j in inputs]))
            )
        )
        rows: list[dict[str, Any]] = []
        for job, res in zip(inputs, results, strict=True):
            if job.recording_id in still:
                wsha = _windows_sha(job.windows)
                rows.extend(_stored_row(job.recording_id, r, wsha) for r in res)
        errors = sum(r["status"] == "error" for r in rows)
        versions = {"peerlens": __version__, "max_artifact_rate": options.max_artifact_rate}
        return Batch(rows, len(still), len(rows), errors, versions)

    def digest_rows(self, rows: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        for r in rows:
            yield (
                r["recording_id"],
                r["label"],
                r["status"],
                r["error"],
                r["start_s"],
                r["end_s"],
                r["n_beats"],
                r["artifact_rate"],
                r["valid"],
                r["reason"],
                r["metrics_json"],
                r["pipeline_version"],
                r["windows_sha256"],
                *_gap_digest(r),
            )

    def delete_rows(self, session: Session, run_ids: Select[Any]) -> None:
        session.execute(delete(DerivedHrv).where(DerivedHrv.derivation_id.in_(run_ids)))

    def insert_rows(self, session: Session, run_id: int, rows: Sequence[Any]) -> None:
        if rows:
            table = cast(Table, DerivedHrv.__table__)  # Core: no ORM fetching every new id
            session.execute(insert(table), [{**r, "derivation_id": run_id} for r in rows])

    def stored_digest_rows(self, session: Session, run_id: int) -> Iterable[tuple[Any, ...]]:
        stored = session.scalars(
            select(DerivedHrv).where(DerivedHrv.derivation_id == run_id).order_by(DerivedHrv.id)
        )
        return self.digest_rows(
            [
                {
                    "recording_id": h.recording_id,
                    "label": h.label,
                    "status": h.status,
                    "error": h.error,
                    "start_s": num(h.start_s),
                    "end_s": num(h.end_s),
                    "n_beats": h.n_beats,
                    "artifact_rate": num(h.artifact_rate),
                    "valid": None if h.valid is None else bool(h.valid),
                    "reason": h.reason,
                    "metrics_json": h.metrics_json,
                    "pipeline_version": h.pipeline_version,
                    "windows_sha256": h.windows_sha256,
                    "n_gaps": h.n_gaps,
                    "gap_s": num(h.gap_s),
                    "gaps_json": h.gaps_json,
                }
                for h in stored
            ]
        )

    def frame(self, session: Session, study: Study, view: str) -> pd.DataFrame:
        return _frame(session, study)

    def status(
        self, session: Session, study: Study, within: frozenset[str] | None
    ) -> tuple[int, pd.Series]:
        q = (
            select(func.count())
            .select_from(Recording)
            .join(Participant, Participant.id == Recording.participant_id)
            .where(Participant.study_id == study.id)
        )
        frame = _frame(session, study)
        if within is not None:
            q = q.where(Participant.study_code.in_(sorted(within)))
            frame = frame[frame["participant"].isin(within)]
        # A recording is one participant's copy of a content address.
        return int(session.scalar(q) or 0), worst_state(frame, ["participant", "recording"])


HRV = Hrv()


#: The gap columns of a ``derived_hrv`` row (revision 0009).
_GAP_FIELDS = ("n_gaps", "gap_s", "gaps_json")


def _gap_digest(row: Any) -> tuple[Any, ...]:
    """The gap values of a row for its run's digest: none while all are empty, so that runs
    stored before revision 0009 (and error rows) keep their digest."""
    values = tuple(row[k] for k in _GAP_FIELDS)
    return () if all(v is None for v in values) else (("gaps", *values),)


def _stored_row(recording_id: int, r: dict[str, Any], windows_sha: str) -> dict[str, Any]:
    """One row of :func:`hrv_job`'s result as a ``derived_hrv`` row (without its run)."""
    gaps = r.get("gaps")
    return {
        "recording_id": recording_id,
        "label": r["label"],
        "status": r["status"],
        "error": r["error"],
        "start_s": r["start_s"],
        "end_s": r["end_s"],
        "n_beats": r["n_beats"],
        "artifact_rate": r["artifact_rate"],
        "valid": r["valid"],
        "reason": r["reason"],
        "metrics_json": json.dumps(r["metrics"], sort_keys=True),
        "pipeline_version": r["pipeline_version"],
        "provenance_json": json.dumps(r["provenance"], sort_keys=True, default=str),
        "windows_sha256": windows_sha,
        "n_gaps": None if r.get("n_gaps") is None else int(r["n_gaps"]),
        "gap_s": r.get("gap_s"),
        "gaps_json": None if gaps is None else json.dumps(gaps, sort_keys=True),
    }


def _windows_sha(windows: Sequence[Window]) -> str:
    return digest(list(w) for w in windows)


def _windows(session: Session, ids: list[int]) -> dict[int, list[Window]]:
    """The window events of each recording of ``ids`` (in the order they were added)."""
    out: dict[int, list[Window]] = {i: [] for i in ids}
    if ids:
        wq = (
            select(
                RecordingWindow.recording_id,
                RecordingWindow.label,
                RecordingWindow.start_s,
                RecordingWindow.end_s,
            )
            .where(RecordingWindow.recording_id.in_(ids))
            .order_by(RecordingWindow.id)
        )
        for rid, label, start, end in session.execute(wq):
            out[rid].append((str(label), float(start), float(end)))
    return out


def reader_kind(path: str | Path, kind: str | None) -> str | None:
    """The ``kind`` to hand :func:`peerlens.hrv.analyze` for a stored recording file: the
    recording's kind for a text file (RR list or ECG samples), else ``None`` (the file's format
    says)."""
    return kind if Path(path).suffix.lower() in {".csv", ".tsv", ".txt"} else None


def hrv_job(
    path: str,
    fs: float | None,
    kind: str | None,
    windows: Sequence[Window],
    max_artifact_rate: float,
) -> list[dict[str, Any]]:
    """Analyse one stored recording with its window events; never raises.

    Returns one ``whole`` row plus one row per window, or a single ``error`` row naming the
    problem (a :class:`peerlens.PeerlensError` or any other exception). Runs in a Dask worker,
    so it takes and returns plain values only.
    """
    from peerlens import PeerlensError, __version__
    from peerlens.hrv import analyze

    found = re.search(r"[0-9a-f]{64}", path)
    label = f"recording {found.group(0)[:12]}" if found else "recording"
    text_kind = reader_kind(path, kind)
    events = pd.DataFrame(list(windows), columns=["label", "start_s", "end_s"]) if windows else None
    try:
        res = analyze(
            path, events=events, fs=fs, kind=text_kind, max_artifact_rate=max_artifact_rate
        )
    except PeerlensError as exc:
        message = _without_path(str(exc), path, label)
    except Exception as exc:  # a broken file must not sink the derivation
        message = f"{label}: {type(exc).__name__}: {_without_path(str(exc), path, label)}"
    else:
        return _result_rows(res, max_artifact_rate)
    return [
        error_row(
            message,
            {"label": "whole"},
            ("start_s", "end_s", "n_beats", "artifact_rate"),
            valid=False,
            reason=None,
            metrics={},
            pipeline_version=__version__,
            provenance={},
        )
    ]


def _result_rows(res: Any, max_artifact_rate: float) -> list[dict[str, Any]]:
    """The ``whole`` row and one row per window of an :func:`peerlens.hrv.analyze` result
    (analysed with ``max_artifact_rate``; the whole row's validity is the HRV package's own
    rule, :meth:`peerlens.hrv.HrvResult.whole_validity`: artifact rate and signal quality)."""
    from peerlens.hrv import METRIC_COLUMNS

    prov = res.provenance.as_dict()
    whole = res.metrics.iloc[0]
    rr_only = res.fs is None  # no time line of samples, so no gaps to report
    rate = float(whole["artifact_rate"])
    valid, reason = res.whole_validity()
    rows = [
        {
            "label": "whole",
            "status": "ok",
            "error": None,
            "start_s": 0.0,
            "end_s": num(whole["duration_s"]),
            "n_beats": int(whole["n_beats"]),
            "artifact_rate": num(rate),
            "valid": bool(valid),
            "reason": reason,
            "metrics": {c: num(whole[c]) for c in METRIC_COLUMNS},
            "pipeline_version": str(prov["peerlens_version"]),
            "provenance": prov,
            **_gap_values(res, whole, 0.0, float("inf"), rr_only),
        }
    ]
    for w in res.windows.to_dict(orient="records"):
        rows.append(
            {
                "label": str(w["label"]),
                "status": "ok",
                "error": None,
                "start_s": num(w["start_s"]),
                "end_s": num(w["end_s"]),
                "n_beats": int(w["n_beats"]),
                "artifact_rate": num(w["artifact_rate"]),
                "valid": bool(w["valid"]),
                "reason": str(w["reason"]),
                "metrics": {c: num(w[c]) for c in METRIC_COLUMNS},
                "pipeline_version": str(prov["peerlens_version"]),
                "provenance": prov,
                **_gap_values(res, w, float(w["start_s"]), float(w["end_s"]), rr_only),
            }
        )
    return rows


def _gap_values(res: Any, row: Any, start: float, end: float, rr_only: bool) -> dict[str, Any]:
    """``n_gaps``, ``gap_s`` (the analysis's own per-window values) and ``gaps`` (each gap in
    the window) of one result row; all ``None`` for an RR-only recording."""
    if rr_only:
        return {"n_gaps": None, "gap_s": None, "gaps": None}
    n = num(row["n_gaps"])
    return {
        "n_gaps": None if n is None else int(n),
        "gap_s": num(row["gap_s"]),
        "gaps": res.gaps_between(start, end),
    }


def _without_path(message: str, path: str, label: str) -> str:
    """``message`` with the stored file's path (and the folder it sits in) replaced by
    ``label``: error texts are exported, paths are not."""
    where = Path(path)
    for text in (str(where), str(where.parent), where.name):
        message = message.replace(text, label)
    return message


def _frame(session: Session, study: Study) -> pd.DataFrame:
    """Stored HRV rows of ``study``: one per recording window, metric columns wide."""
    from peerlens import __version__
    from peerlens.hrv import METRIC_COLUMNS
    from peerlens.hrv.batch import ID_COLUMNS

    columns = (Recording.sha256, Recording.id)
    q = (
        stored_results(DerivedHrv, Recording, DerivedHrv.recording_id, *columns)
        .where(Participant.study_id == study.id)  # every recording has a participant
        .order_by(Participant.study_code, Recording.id, DerivedHrv.id)
    )
    ids = session.scalars(
        select(Recording.id)
        .join(Participant, Participant.id == Recording.participant_id)
        .where(Participant.study_id == study.id)
    ).all()
    windows = {rid: _windows_sha(w) for rid, w in _windows(session, list(ids)).items()}
    rows = []
    for code, sess_label, sha, rec_id, d, derived_at in session.execute(q):
        metrics = json.loads(d.metrics_json)
        stale = d.pipeline_version != __version__ or windows.get(rec_id) != d.windows_sha256
        rows.append(
            {
                "participant": code,
                "session": sess_label,
                "recording": sha,
                "label": d.label,
                "status": d.status,
                "error": d.error,
                "start_s": d.start_s,
                "end_s": d.end_s,
                "n_beats": d.n_beats,
                "artifact_rate": d.artifact_rate,
                "valid": d.valid,
                "reason": d.reason,
                **{c: metrics.get(c) for c in METRIC_COLUMNS},
                "n_gaps": d.n_gaps,
                "gap_s": d.gap_s,
                "gaps": _gaps_text(d.gaps_json),
                "pipeline_version": d.pipeline_version,
                "derived_at": derived_at,
                "derivation": "stale" if stale else "current",
            }
        )
    cols = [
        "participant",
        "session",
        "recording",
        *ID_COLUMNS[1:],  # the batch columns after "file": label, status, error, ... reason
        *METRIC_COLUMNS,
        "n_gaps",
        "gap_s",
        "gaps",
        "pipeline_version",
        "derived_at",
        "derivation",
    ]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("start_s", "end_s", "artifact_rate", *METRIC_COLUMNS, "gap_s"):
        frame[c] = frame[c].astype("float64")
    for c in ("n_beats", "n_gaps"):
        frame[c] = frame[c].astype("Int64")
    return frame


def _gaps_text(gaps_json: str | None) -> str | None:
    """The stored gaps of a window as one line: ``kind start-end s (detail)``, ``; ``-joined
    (``None`` when not recorded, empty when the window has none)."""
    if gaps_json is None:
        return None
    return "; ".join(
        f"{g['kind']} {g['start_s']:.3f}-{g['end_s']:.3f} s ({g['detail']})"
        for g in json.loads(gaps_json)
    )
