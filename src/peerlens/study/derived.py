"""Derived results: scores, HRV metrics and story labels, recomputed and never hand-edited.

Derived data are computed from what the study stores, with the version of the computation kept
beside every result:

``scores``
    Each response of a bundled instrument, scored from its stored items by
    :func:`peerlens.instruments.score_with_provenance` (spec version, spec file sha256 and
    engine version per row).
``hrv``
    Each recording, analysed by :func:`peerlens.hrv.analyze` with its stored window events:
    one ``whole`` row plus one row per window label (pipeline version and the full
    :class:`peerlens.hrv.HrvProvenance` per row). A recording that cannot be analysed becomes an
    ``error`` row saying why; the derivation carries on.
``story``
    Each transcript or story version, analysed by :func:`peerlens.narrative.analyze`: per-sentence
    label and confidence and the session's connection index with its bootstrap interval (model
    sha256 per row). Sentence text is not copied: it stays in the transcript (and goes with it on
    erasure).

A derivation (:func:`derive`) replaces all stored results of its kind for the study in one
transaction (all or nothing), records a :class:`~peerlens.study.models.Derivation` row and one
audit entry (who, when, versions, counts and the sha256 ``digest`` of the rows written). Nothing
can set a derived value: there is no API for it and database triggers make UPDATE on the derived
tables fail; rows inserted or deleted behind peerlens's back are found by :func:`verify_derived`,
which recomputes each current run's digest.

A result is *stale* when its input changed after it was derived (a response re-imported with
other items, a window added) or the versions differ from the installed peerlens; a result
that does not exist yet is *missing*. :func:`derivation_status` counts them, and the tidy export
marks every derived row ``current`` or ``stale`` (see :mod:`peerlens.study.export`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._bulk import bulk_insert
from peerlens.study._lookup import get_study
from peerlens.study._scoring import SAME_INPUT, score_states
from peerlens.study.errors import StudyError
from peerlens.study.models import (
    Derivation,
    DerivedHrv,
    DerivedScore,
    DerivedSentence,
    DerivedStory,
    Participant,
    Recording,
    RecordingWindow,
    Response,
    ResponseItem,
    Study,
    Timepoint,
    Transcript,
    as_utc,
)
from peerlens.study.models import Session as PSSession
from peerlens.study.policy import Caller, Grant, authorize, guarded
from peerlens.study.storage import Store

#: What can be derived.
WHAT = ("scores", "hrv", "story")


@dataclass(frozen=True)
class DerivationSummary:
    """What one derivation run did."""

    what: str
    derivation_id: int
    inputs: int
    rows: int
    errors: int
    digest: str
    #: True when the rows are the same as the previous run's (same digest).
    unchanged: bool
    versions: dict[str, Any]

    def __str__(self) -> str:
        state = "unchanged" if self.unchanged else "replaced"
        return (
            f"{self.what}: {self.inputs} input(s), {self.rows} row(s), {self.errors} error(s), "
            f"{state} (run {self.derivation_id}, digest {self.digest[:12]})"
        )


# ------------------------------------------------------------------------------ helpers


def _num(value: Any) -> float | None:
    """A finite float, or ``None`` (NaN, inf and missing are stored as NULL)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _digest(rows: Iterable[Sequence[Any]]) -> str:
    """sha256 of ``rows`` (plain ints, floats, strings, bools and None, in a fixed order), one
    ``repr`` of each row's tuple per line (``repr`` of a float round-trips exactly)."""
    text = "\n".join(repr(tuple(row)) for row in rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _table(model: type[Any]) -> Table:
    """The Core table of ``model``: Core executemany, without the ORM fetching every new id."""
    return cast(Table, model.__table__)


def _current_runs(session: Session, study: Study) -> dict[str, Derivation]:
    """The newest derivation of each kind for ``study``."""
    runs: dict[str, Derivation] = {}
    stmt = select(Derivation).where(Derivation.study_id == study.id).order_by(Derivation.id)
    for run in session.scalars(stmt):
        runs[run.what] = run
    return runs


def _lock(session: Session, study: Study) -> None:
    """Serialise derivations of one study on PostgreSQL (SQLite's BEGIN IMMEDIATE already does):
    two concurrent runs would otherwise both delete and insert the same results."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(727275, study.id))  # released at commit/rollback
        )


def _new_run(
    session: Session,
    study: Study,
    what: str,
    actor: str,
    versions: dict[str, Any],
    inputs: int,
    rows: int,
    errors: int,
    digest: str,
) -> Derivation:
    run = Derivation(
        study_id=study.id,
        what=what,
        actor=actor,
        versions_json=json.dumps(versions, sort_keys=True, default=str),
        n_inputs=inputs,
        n_rows=rows,
        n_errors=errors,
        digest=digest,
    )
    session.add(run)
    session.flush()
    return run


def _finish(
    session: Session,
    study: Study,
    what: str,
    actor: str,
    run: Derivation,
    previous: Derivation | None,
    reason: str | None,
) -> DerivationSummary:
    versions = json.loads(run.versions_json)
    unchanged = previous is not None and previous.digest == run.digest
    audit.record(
        session,
        actor,
        f"derive.{what}",
        "derivation",
        str(run.id),
        study=study.name,
        old=None if previous is None else {"derivation": previous.id, "digest": previous.digest},
        new={
            "inputs": run.n_inputs,
            "rows": run.n_rows,
            "errors": run.n_errors,
            "digest": run.digest,
            "unchanged": unchanged,
            "versions": versions,
        },
        reason=reason,
    )
    return DerivationSummary(
        what, run.id, run.n_inputs, run.n_rows, run.n_errors, run.digest, unchanged, versions
    )


def _study_run_ids(study: Study, what: str) -> Any:
    return select(Derivation.id).where(Derivation.study_id == study.id, Derivation.what == what)


# ------------------------------------------------------------------------------- scores


def _score_rows(session: Session, study: Study) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Every score of every bundled-instrument response of ``study``, in a stable order."""
    from peerlens.study._scoring import score_long
    from peerlens.study.redcap import _study_forms

    forms = _study_forms(session, study)
    q = (
        select(Response.id, Response.instrument, ResponseItem.item, ResponseItem.value)
        .join(Participant, Participant.id == Response.participant_id)
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Participant.study_id == study.id)
    )
    raw = pd.DataFrame.from_records(
        [tuple(r) for r in session.connection().execute(q).fetchall()],
        columns=["rid", "instrument", "name", "value"],
    )
    raw["value"] = raw["value"].astype("float64")
    # One time per response (not per item): when it last changed, for stale detection.
    updated: dict[int, Any] = {
        int(rid): at
        for rid, at in session.connection().execute(
            select(Response.id, Response.updated_at)
            .join(Participant, Participant.id == Response.participant_id)
            .where(Participant.study_id == study.id)
        )
    }
    rows: list[dict[str, Any]] = []
    from peerlens import PeerlensError

    versions: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    n_inputs = 0
    for inst, block in raw.groupby("instrument", sort=True):
        form = forms.get(str(inst))
        if form is None or not form.builtin:
            continue
        n_inputs += int(block["rid"].nunique())
        try:
            long, prov = score_long(block, form, ["rid"])
        except PeerlensError as exc:
            # Items the installed spec no longer accepts: say so and score the other instruments.
            errors[str(inst)] = {"responses": int(block["rid"].nunique()), "error": str(exc)}
            continue
        versions[str(inst)] = {
            "spec_version": str(prov.spec_version),
            "spec_sha256": str(prov.spec_sha256),
            "engine_version": str(prov.engine_version),
        }
        v = versions[str(inst)]
        long = long.sort_values(["rid", "name"], kind="stable")
        values = long["value"].astype("float64").to_numpy()
        finite = np.isfinite(values)
        texts = long["text"].to_numpy(dtype=object)
        rids = long["rid"].to_numpy()
        rows.extend(
            {
                "response_id": int(rid),
                "instrument": str(inst),
                "name": str(name),
                "value": float(val) if ok else None,
                "text": None if txt is None or pd.isna(txt) else str(txt),
                "spec_version": v["spec_version"],
                "spec_sha256": v["spec_sha256"],
                "engine_version": v["engine_version"],
                "source_updated_at": updated[rid],
            }
            for rid, name, val, ok, txt in zip(
                rids, long["name"].to_numpy(dtype=object), values, finite, texts, strict=True
            )
        )
    rows.sort(key=lambda r: (r["response_id"], r["name"]))
    if errors:
        versions["errors"] = errors
    return rows, versions, n_inputs


_SCORE_COLUMNS = (
    "derivation_id",
    "response_id",
    "instrument",
    "name",
    "value",
    "text",
    "spec_version",
    "spec_sha256",
    "engine_version",
    "source_updated_at",
)


def _bulk_scores(session: Session, run_id: int, rows: list[dict[str, Any]]) -> None:
    """Insert score rows in the caller's transaction (hundreds of thousands of them)."""
    tuples = ((run_id, *(r[c] for c in _SCORE_COLUMNS[1:])) for r in rows)
    bulk_insert(session, DerivedScore, _SCORE_COLUMNS, tuples)


def _derive_scores(
    session: Session, study: Study, actor: str, reason: str | None
) -> DerivationSummary:
    rows, versions, n_inputs = _score_rows(session, study)
    digest = _digest(
        (r["response_id"], r["name"], r["value"], r["text"], r["spec_sha256"], r["engine_version"])
        for r in rows
    )
    _lock(session, study)
    previous = _current_runs(session, study).get("scores")
    session.execute(
        delete(DerivedScore).where(DerivedScore.derivation_id.in_(_study_run_ids(study, "scores")))
    )
    n_errors = sum(e["responses"] for e in versions.get("errors", {}).values())
    run = _new_run(session, study, "scores", actor, versions, n_inputs, len(rows), n_errors, digest)
    _bulk_scores(session, run.id, rows)
    return _finish(session, study, "scores", actor, run, previous, reason)


# ---------------------------------------------------------------------------------- hrv


def _windows_sha(windows: Sequence[tuple[str, float, float]]) -> str:
    return _digest(list(w) for w in windows)


def hrv_job(
    path: str,
    fs: float | None,
    kind: str | None,
    windows: Sequence[tuple[str, float, float]],
    max_artifact_rate: float,
) -> list[dict[str, Any]]:
    """Analyse one stored recording with its window events; never raises.

    Returns one ``whole`` row plus one row per window, or a single ``error`` row naming the
    problem (a :class:`peerlens.PeerlensError` or any other exception). Runs in a Dask worker,
    so it takes and returns plain values only.
    """
    from peerlens import PeerlensError, __version__
    from peerlens.hrv import METRIC_COLUMNS, analyze

    found = re.search(r"[0-9a-f]{64}", path)
    label = f"recording {found.group(0)[:12]}" if found else "recording"
    text_kind = kind if Path(path).suffix.lower() in {".csv", ".tsv", ".txt"} else None
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
        prov = res.provenance.as_dict()
        whole = res.metrics.iloc[0]
        rate = float(whole["artifact_rate"])
        rows = [
            {
                "label": "whole",
                "status": "ok",
                "error": None,
                "start_s": 0.0,
                "end_s": _num(whole["duration_s"]),
                "n_beats": int(whole["n_beats"]),
                "artifact_rate": _num(rate),
                "valid": bool(rate <= max_artifact_rate),
                "reason": ""
                if rate <= max_artifact_rate
                else f"artifact rate {100 * rate:.1f} % > {100 * max_artifact_rate:g} %",
                "metrics": {c: _num(whole[c]) for c in METRIC_COLUMNS},
                "pipeline_version": str(prov["peerlens_version"]),
                "provenance": prov,
            }
        ]
        for w in res.windows.to_dict(orient="records"):
            rows.append(
                {
                    "label": str(w["label"]),
                    "status": "ok",
                    "error": None,
                    "start_s": _num(w["start_s"]),
                    "end_s": _num(w["end_s"]),
                    "n_beats": int(w["n_beats"]),
                    "artifact_rate": _num(w["artifact_rate"]),
                    "valid": bool(w["valid"]),
                    "reason": str(w["reason"]),
                    "metrics": {c: _num(w[c]) for c in METRIC_COLUMNS},
                    "pipeline_version": str(prov["peerlens_version"]),
                    "provenance": prov,
                }
            )
        return rows
    return [
        {
            "label": "whole",
            "status": "error",
            "error": message,
            "start_s": None,
            "end_s": None,
            "n_beats": None,
            "artifact_rate": None,
            "valid": False,
            "reason": None,
            "metrics": {},
            "pipeline_version": __version__,
            "provenance": {},
        }
    ]


def _without_path(message: str, path: str, label: str) -> str:
    """``message`` with the stored file's path (and the folder it sits in) replaced by
    ``label``: error texts are exported, paths are not."""
    where = Path(path)
    for text in (str(where), str(where.parent), where.name):
        message = message.replace(text, label)
    return message


@dataclass(frozen=True)
class _HrvInput:
    recording_id: int
    path: str
    fs: float | None
    kind: str
    windows: tuple[tuple[str, float, float], ...]


def _hrv_inputs(session: Session, study: Study, blob_dir: Path) -> list[_HrvInput]:
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
    windows: dict[int, list[tuple[str, float, float]]] = {}
    ids = [r[0] for r in recs]
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
            windows.setdefault(rid, []).append((str(label), float(start), float(end)))
    return [
        _HrvInput(
            int(rid),
            str(recording_file(blob_dir, sha, suffix)),
            None if fs is None else float(fs),
            str(kind),
            tuple(windows.get(rid, [])),
        )
        for rid, sha, suffix, fs, kind in recs
    ]


def _run_hrv(
    jobs: Sequence[_HrvInput],
    max_artifact_rate: float,
    executor: str,
    n_workers: int,
    processes: bool,
    progress: Callable[[int, int], None] | None,
) -> list[list[dict[str, Any]]]:
    """Run :func:`hrv_job` for every input, in input order, sequentially or on Dask (through
    :func:`peerlens.hrv.batch.map_tasks`, the same runner as ``peerlens hrv batch``)."""
    from peerlens.hrv.batch import map_tasks

    if executor not in ("dask", "sequential"):
        raise StudyError(f"executor {executor!r}: use dask or sequential")
    return map_tasks(
        hrv_job,
        [(j.path, j.fs, j.kind, j.windows, max_artifact_rate) for j in jobs],
        names=[f"recording{j.recording_id}" for j in jobs],
        executor=executor,
        n_workers=n_workers,
        processes=processes,
        progress=progress,
        key_prefix="study-hrv",
    )


def _hrv_digest_rows(rows: Iterable[dict[str, Any]]) -> Iterable[tuple[Any, ...]]:
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
        )


def _write_hrv(
    session: Session,
    study: Study,
    jobs: Sequence[_HrvInput],
    results: Sequence[list[dict[str, Any]]],
    actor: str,
    max_artifact_rate: float,
    reason: str | None,
) -> DerivationSummary:
    from peerlens import __version__

    # Recordings erased while the analysis ran are not written back.
    still = set(
        session.scalars(
            select(Recording.id).where(Recording.id.in_([j.recording_id for j in jobs]))
        )
    )
    rows: list[dict[str, Any]] = []
    errors = 0
    for job, res in zip(jobs, results, strict=True):
        if job.recording_id not in still:
            continue
        wsha = _windows_sha(job.windows)
        for r in res:
            errors += r["status"] == "error"
            rows.append(
                {
                    "recording_id": job.recording_id,
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
                    "windows_sha256": wsha,
                }
            )
    digest = _digest(_hrv_digest_rows(rows))
    versions = {"peerlens": __version__, "max_artifact_rate": max_artifact_rate}
    _lock(session, study)
    previous = _current_runs(session, study).get("hrv")
    session.execute(
        delete(DerivedHrv).where(DerivedHrv.derivation_id.in_(_study_run_ids(study, "hrv")))
    )
    run = _new_run(session, study, "hrv", actor, versions, len(still), len(rows), errors, digest)
    if rows:
        for r in rows:
            r["derivation_id"] = run.id
        session.execute(insert(_table(DerivedHrv)), rows)
    return _finish(session, study, "hrv", actor, run, previous, reason)


# -------------------------------------------------------------------------------- story


def _model_sha(meta: Any) -> str:
    return str(dict(meta).get("npz_sha256") or "")


def _story_rows(
    session: Session, study: Study
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], dict[str, Any], int]:
    from peerlens import PeerlensError
    from peerlens.narrative import analyze, load_model

    model = load_model()
    model_meta = {
        "format": model.meta.get("format"),
        "corpus_sha256": model.meta.get("corpus_sha256"),
        "npz_sha256": model.meta.get("npz_sha256"),
    }
    stmt = (
        select(Transcript)
        .where(Transcript.study_id == study.id, Transcript.text.is_not(None))
        .order_by(Transcript.id)
    )
    stories: list[dict[str, Any]] = []
    sentences: list[list[dict[str, Any]]] = []
    n = 0
    for t in session.scalars(stmt):
        n += 1
        source = f"{t.kind} {t.id} v{t.version}"
        base = {"transcript_id": t.id, "model_sha256": _model_sha(model_meta)}
        try:
            res = analyze(
                str(t.text),
                transcript=t.kind == "transcript",
                speaker=t.speaker,
                source=source,
                model=model,
            )
        except Exception as exc:  # one bad text must not sink the derivation
            message = str(exc) if isinstance(exc, PeerlensError) else f"{type(exc).__name__}: {exc}"
            stories.append(
                {
                    **base,
                    "status": "error",
                    "error": message,
                    "n_sentences": None,
                    "connection_index": None,
                    "ci_low": None,
                    "ci_high": None,
                    "counts_json": "{}",
                    "model_json": json.dumps(model_meta, sort_keys=True),
                }
            )
            sentences.append([])
            continue
        summ = res.summary
        stories.append(
            {
                **base,
                "status": "ok",
                "error": None,
                "n_sentences": int(summ.n_sentences),
                "connection_index": _num(summ.connection_index),
                "ci_low": _num(summ.ci_low),
                "ci_high": _num(summ.ci_high),
                "counts_json": json.dumps(dict(summ.counts), sort_keys=True),
                "model_sha256": _model_sha(res.model) or base["model_sha256"],
                "model_json": json.dumps(dict(res.model), sort_keys=True, default=str),
            }
        )
        sentences.append(
            [
                {
                    "position": i,
                    "label": s.label,
                    "confidence": float(s.confidence),
                    "speaker_turn": s.turn,
                    "n_chars": len(s.text),
                }
                for i, s in enumerate(res.sentences)
            ]
        )
    return stories, sentences, model_meta, n


def _derive_story(
    session: Session, study: Study, actor: str, reason: str | None
) -> DerivationSummary:
    from peerlens import __version__

    stories, sentences, meta, n = _story_rows(session, study)

    def digest_rows() -> Iterable[tuple[Any, ...]]:
        for st, sents in zip(stories, sentences, strict=True):
            yield tuple(st[k] for k in sorted(st))
            for x in sents:
                yield (st["transcript_id"], *(x[k] for k in sorted(x)))

    digest = _digest(digest_rows())
    errors = sum(s["status"] == "error" for s in stories)
    versions = {"peerlens": __version__, "model": meta}
    _lock(session, study)
    previous = _current_runs(session, study).get("story")
    old_ids = select(DerivedStory.id).where(
        DerivedStory.derivation_id.in_(_study_run_ids(study, "story"))
    )
    session.execute(delete(DerivedSentence).where(DerivedSentence.story_id.in_(old_ids)))
    session.execute(
        delete(DerivedStory).where(DerivedStory.derivation_id.in_(_study_run_ids(study, "story")))
    )
    n_rows = len(stories) + sum(len(x) for x in sentences)
    run = _new_run(session, study, "story", actor, versions, n, n_rows, errors, digest)
    for st, sents in zip(stories, sentences, strict=True):
        row = DerivedStory(derivation_id=run.id, **st)
        session.add(row)
        session.flush()
        if sents:
            session.execute(
                insert(_table(DerivedSentence)), [{"story_id": row.id, **x} for x in sents]
            )
    return _finish(session, study, "story", actor, run, previous, reason)


# --------------------------------------------------------------------------------- API


@guarded("derive")
def derive(
    store: Store,
    study_name: str,
    what: Sequence[str] = WHAT,
    *,
    caller: Caller,
    executor: str = "dask",
    n_workers: int = 2,
    processes: bool = True,
    max_artifact_rate: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
    reason: str | None = None,
) -> list[DerivationSummary]:
    """Recompute and store the study's derived results (see the module docstring).

    Parameters
    ----------
    what
        Any of ``"scores"``, ``"hrv"``, ``"story"`` (default all three, in that order). Each kind
        is its own transaction: it replaces that kind's stored results whole or not at all.
    caller
        Who derives; deriving replaces stored results of every site, so it needs a study-wide
        admin or researcher role (checked in each kind's transaction).
    executor, n_workers, processes
        Where HRV runs: ``"dask"`` (a scheduler at ``DASK_SCHEDULER_ADDRESS`` or a LocalCluster
        of ``n_workers``) or ``"sequential"``.
    max_artifact_rate
        HRV validity ceiling passed to :func:`peerlens.hrv.analyze`.

    Returns
    -------
    list of DerivationSummary
        One per kind, in the order asked.
    """
    with store.transaction() as s:
        authorize(s, caller, "derive", get_study(s, study_name))
    unknown = [w for w in what if w not in WHAT]
    if unknown:
        raise StudyError(f"cannot derive {', '.join(unknown)}: use {', '.join(WHAT)}")
    if not 0 <= max_artifact_rate <= 1:
        raise StudyError(f"max_artifact_rate {max_artifact_rate}: must be in [0, 1]")
    out: list[DerivationSummary] = []
    for kind in dict.fromkeys(what):
        if kind == "scores":
            with store.transaction() as s:
                study = get_study(s, study_name)
                actor = authorize(s, caller, "derive", study).actor
                out.append(_derive_scores(s, study, actor, reason))
        elif kind == "story":
            with store.transaction() as s:
                study = get_study(s, study_name)
                actor = authorize(s, caller, "derive", study).actor
                out.append(_derive_story(s, study, actor, reason))
        else:
            # The analysis runs outside any transaction (it may take minutes); the results are
            # then written in one, with the caller's rights checked again there.
            with store.transaction() as s:
                study = get_study(s, study_name)
                authorize(s, caller, "derive", study)
                jobs = _hrv_inputs(s, study, store.blob_dir)
            results = _run_hrv(jobs, max_artifact_rate, executor, n_workers, processes, progress)
            with store.transaction() as s:
                study = get_study(s, study_name)
                actor = authorize(s, caller, "derive", study).actor
                out.append(_write_hrv(s, study, jobs, results, actor, max_artifact_rate, reason))
    return out


# ------------------------------------------------------------------------ reading back


def _score_status(session: Session, study: Study) -> pd.DataFrame:
    """Stored scores with their response context and ``derivation`` (current/stale)."""
    q = (
        select(
            Participant.study_code,
            Timepoint.name,
            PSSession.label,
            Response.instrument,
            Response.repeat_instance,
            SAME_INPUT,
            DerivedScore.name,
            DerivedScore.value,
            DerivedScore.text,
            DerivedScore.spec_version,
            DerivedScore.spec_sha256,
            DerivedScore.engine_version,
            Derivation.derived_at,
            Response.id,
        )
        .join(Response, Response.id == DerivedScore.response_id)
        .join(Participant, Participant.id == Response.participant_id)
        .join(Derivation, Derivation.id == DerivedScore.derivation_id)
        .outerjoin(Timepoint, Timepoint.id == Response.timepoint_id)
        .outerjoin(PSSession, PSSession.id == Response.session_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.study_code, Response.id, DerivedScore.name)
    )
    cols = [
        "participant",
        "timepoint",
        "session",
        "instrument",
        "repeat_instance",
        "_same",
        "name",
        "value",
        "text",
        "spec_version",
        "spec_sha256",
        "engine_version",
        "derived_at",
        "_rid",
    ]
    frame = pd.DataFrame.from_records([tuple(r) for r in session.execute(q)], columns=cols)
    frame["derivation"] = score_states(
        frame["instrument"], frame["_same"], frame["spec_sha256"], frame["engine_version"]
    )
    frame["value"] = frame["value"].astype("float64")
    return frame


def _hrv_frame(session: Session, study: Study) -> pd.DataFrame:
    from peerlens import __version__
    from peerlens.hrv import METRIC_COLUMNS
    from peerlens.hrv.batch import ID_COLUMNS

    q = (
        select(
            Participant.study_code,
            PSSession.label,
            Recording.sha256,
            Recording.id,
            DerivedHrv,
            Derivation.derived_at,
        )
        .join(Recording, Recording.id == DerivedHrv.recording_id)
        .join(Participant, Participant.id == Recording.participant_id)
        .join(Derivation, Derivation.id == DerivedHrv.derivation_id)
        .outerjoin(PSSession, PSSession.id == Recording.session_id)
        .where(Participant.study_id == study.id)
        .order_by(Participant.study_code, Recording.id, DerivedHrv.id)
    )
    windows: dict[int, str] = {}
    ids = session.scalars(
        select(Recording.id)
        .join(Participant, Participant.id == Recording.participant_id)
        .where(Participant.study_id == study.id)
    ).all()
    for job in _hrv_inputs_by_id(session, list(ids)):
        windows[job[0]] = _windows_sha(job[1])
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
        "pipeline_version",
        "derived_at",
        "derivation",
    ]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("start_s", "end_s", "artifact_rate", *METRIC_COLUMNS):
        frame[c] = frame[c].astype("float64")
    frame["n_beats"] = frame["n_beats"].astype("Int64")
    return frame


def _hrv_inputs_by_id(
    session: Session, ids: list[int]
) -> list[tuple[int, list[tuple[str, float, float]]]]:
    out: dict[int, list[tuple[str, float, float]]] = {i: [] for i in ids}
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
    return list(out.items())


def _story_frame(session: Session, study: Study, *, sentences: bool) -> pd.DataFrame:
    from peerlens.narrative import LABELS, load_model

    current_sha = _model_sha(load_model().meta)
    owner = Participant.study_code
    base = (
        select(
            owner,
            PSSession.label,
            Transcript.id,
            Transcript.kind,
            Transcript.version,
            DerivedStory,
            Derivation.derived_at,
        )
        .join(Transcript, Transcript.id == DerivedStory.transcript_id)
        .join(Derivation, Derivation.id == DerivedStory.derivation_id)
        .outerjoin(Participant, Participant.id == Transcript.participant_id)
        .outerjoin(PSSession, PSSession.id == Transcript.session_id)
        .where(Transcript.study_id == study.id)
        .order_by(Transcript.id)
    )
    rows = []
    for code, sess_label, tid, kind, version, d, derived_at in session.execute(base):
        ctx = {
            "participant": code,
            "session": sess_label,
            "transcript": tid,
            "kind": kind,
            "version": version,
        }
        state = "current" if d.model_sha256 == current_sha else "stale"
        if sentences:
            for x in session.scalars(
                select(DerivedSentence)
                .where(DerivedSentence.story_id == d.id)
                .order_by(DerivedSentence.position)
            ):
                rows.append(
                    {
                        **ctx,
                        "sentence": x.position,
                        "turn": x.speaker_turn,
                        "n_chars": x.n_chars,
                        "label": x.label,
                        "confidence": x.confidence,
                        "model_sha256": d.model_sha256,
                        "derivation": state,
                    }
                )
            continue
        counts = json.loads(d.counts_json)
        rows.append(
            {
                **ctx,
                "status": d.status,
                "error": d.error,
                "n_sentences": d.n_sentences,
                **{f"n_{k}": counts.get(k) for k in LABELS},
                "connection_index": d.connection_index,
                "ci_low": d.ci_low,
                "ci_high": d.ci_high,
                "model_sha256": d.model_sha256,
                "derived_at": derived_at,
                "derivation": state,
            }
        )
    ctx_cols = ["participant", "session", "transcript", "kind", "version"]
    if sentences:
        cols = [*ctx_cols, "sentence", "turn", "n_chars", "label", "confidence"]
    else:
        cols = [*ctx_cols, "status", "error", "n_sentences", *(f"n_{k}" for k in LABELS)]
        cols += ["connection_index", "ci_low", "ci_high", "derived_at"]
    frame = pd.DataFrame(rows, columns=[*cols, "model_sha256", "derivation"])
    for c in ("connection_index", "ci_low", "ci_high", "confidence"):
        if c in frame:
            frame[c] = frame[c].astype("float64")
    return frame


@guarded("derived.read")
def derived_frame(store: Store, study_name: str, what: str, *, caller: Caller) -> pd.DataFrame:
    """Stored derived results as a tidy frame, each row marked ``current`` or ``stale``.

    Parameters
    ----------
    what
        ``"scores"`` (one row per score), ``"hrv"`` (one row per recording window, metric
        columns wide), ``"story"`` (one row per transcript version) or ``"sentences"`` (one row
        per labelled sentence, without its text).
    caller
        Who reads; results are per participant, so this needs the de-identified export tier;
        a site-scoped caller gets their sites' participants only, and error texts (which may
        quote a file or speaker) are shown only at the ``full`` tier.
    """
    if what not in ("scores", "hrv", "story", "sentences"):
        raise StudyError(f"derived results {what!r}: use scores, hrv, story or sentences")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "derived.read", study)
        if what == "scores":
            frame = _score_status(s, study).drop(columns=["_same", "_rid"])
        elif what == "hrv":
            frame = _hrv_frame(s, study)
        else:
            frame = _story_frame(s, study, sentences=what == "sentences")
        mine = _participants_within(s, study, grant)
    if mine is not None:
        frame = frame[frame["participant"].isin(mine)]
    if not grant.allows_tier("full") and "error" in frame:
        frame = frame.assign(error=frame["error"].where(frame["error"].isna(), "error"))
    return frame.reset_index(drop=True)


def _participants_within(session: Session, study: Study, grant: Grant) -> set[str] | None:
    """Study codes inside ``grant``'s sites (``None``: every participant)."""
    if grant.sites is None:
        return None
    people = session.scalars(select(Participant).where(Participant.study_id == study.id))
    return {p.study_code for p in people if grant.outside(study, p) is None}


@guarded("derived.status")
def derivation_status(store: Store, study_name: str, *, caller: Caller) -> pd.DataFrame:
    """Per kind: inputs now stored, results current, stale and missing, and the last run.

    Missing counts inputs (responses of bundled instruments, recordings, transcripts) with no
    stored result; errors counts inputs the last run could not analyse (stored as error rows).
    """
    from peerlens.study._catalog import builtin_form

    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "derived.status", study)
        runs = _current_runs(s, study)
        scores = _score_status(s, study)
        per_resp = scores.groupby("_rid")["derivation"].agg(
            lambda x: "stale" if (x == "stale").any() else "current"
        )
        insts = s.execute(
            select(Response.id, Response.instrument)
            .join(Participant, Participant.id == Response.participant_id)
            .where(Participant.study_id == study.id)
        ).all()
        bundled = {i for _, i in insts if builtin_form(str(i)) is not None}
        score_inputs = {rid for rid, i in insts if i in bundled}
        hrv = _hrv_frame(s, study)
        n_recs = s.scalar(
            select(func.count())
            .select_from(Recording)
            .join(Participant, Participant.id == Recording.participant_id)
            .where(Participant.study_id == study.id)
        )
        # A recording is one participant's copy of a content address.
        hrv_rec = hrv.groupby(["participant", "recording"])["derivation"].agg(
            lambda x: "stale" if (x == "stale").any() else "current"
        )
        story = _story_frame(s, study, sentences=False)
        n_tr = s.scalar(
            select(func.count())
            .select_from(Transcript)
            .where(Transcript.study_id == study.id, Transcript.text.is_not(None))
        )
    rows = []
    for what, n_inputs, states in (
        ("scores", len(score_inputs), per_resp),
        ("hrv", int(n_recs or 0), hrv_rec),
        ("story", int(n_tr or 0), story["derivation"] if len(story) else pd.Series([])),
    ):
        run = runs.get(what)
        current = int((states == "current").sum())
        stale = int((states == "stale").sum())
        rows.append(
            {
                "what": what,
                "inputs": n_inputs,
                "current": current,
                "stale": stale,
                "missing": max(n_inputs - current - stale, 0),
                "errors": 0 if run is None else run.n_errors,
                "last_run": None if run is None else run.id,
                "derived_at": None if run is None else as_utc(run.derived_at),
                "derived_by": None if run is None else run.actor,
            }
        )
    frame = pd.DataFrame(rows)
    frame["last_run"] = frame["last_run"].astype("Int64")
    return frame


@dataclass(frozen=True)
class DerivedCheck:
    """Result of :func:`verify_derived`: ``ok`` when every current run's rows match its digest."""

    checked: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was changed behind peerlens's back."""
        return not self.problems


@guarded("derived.verify")
def verify_derived(store: Store, study_name: str, *, caller: Caller) -> DerivedCheck:
    """Recompute the digest of each kind's current stored rows and compare it with the run's
    digest and the one in the audit log (catches rows inserted, deleted or edited by hand)."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "derived.verify", study)
        return check_derived(s, study)


def check_derived(session: Session, study: Study) -> DerivedCheck:
    """:func:`verify_derived` inside an open transaction."""
    from peerlens.study.models import AuditLog

    problems: list[str] = []
    checked: list[str] = []
    for what, run in _current_runs(session, study).items():
        checked.append(what)
        logged = session.scalars(
            select(AuditLog.new).where(
                AuditLog.action == f"derive.{what}",
                AuditLog.entity == "derivation",
                AuditLog.entity_id == str(run.id),
            )
        ).first()
        if logged is None or json.loads(logged).get("digest") != run.digest:
            problems.append(f"{what}: run {run.id} does not match its audit-log entry")
        # An erasure that removed rows of this run recorded the digest of what was left.
        amended = session.scalars(
            select(AuditLog.new)
            .where(
                AuditLog.action == "derive.amend",
                AuditLog.entity == "derivation",
                AuditLog.entity_id == str(run.id),
            )
            .order_by(AuditLog.seq.desc())
        ).first()
        expected = run.digest if amended is None else json.loads(amended)["digest"]
        digest = _stored_digest(session, what, run.id)
        if digest != expected:
            problems.append(
                f"{what}: stored rows of run {run.id} differ from what the run wrote "
                "(changed by hand?); run peerlens study derive again"
            )
    return DerivedCheck(tuple(checked), tuple(problems))


def amend_after_erasure(session: Session, study: Study, actor: str, reason: str) -> None:
    """Record, for each current run that lost rows to an erasure, the digest of the rows left
    (derived rows are never edited, so the run keeps its original digest; this audit entry says
    what a lawful erasure removed, and :func:`check_derived` then expects the new digest)."""
    for what, run in _current_runs(session, study).items():
        digest = _stored_digest(session, what, run.id)
        if digest == run.digest:
            continue
        audit.record(
            session,
            actor,
            "derive.amend",
            "derivation",
            str(run.id),
            study=study.name,
            old={"digest": run.digest},
            new={"digest": digest, "what": what, "cause": "participant.erase"},
            reason=reason,
        )


def _stored_digest(session: Session, what: str, run_id: int) -> str:
    if what == "scores":
        q = (
            select(
                DerivedScore.response_id,
                DerivedScore.name,
                DerivedScore.value,
                DerivedScore.text,
                DerivedScore.spec_sha256,
                DerivedScore.engine_version,
            )
            .where(DerivedScore.derivation_id == run_id)
            .order_by(DerivedScore.response_id, DerivedScore.name)
        )
        return _digest(
            (int(a), str(b), _num(c), d, str(e), str(f)) for a, b, c, d, e, f in session.execute(q)
        )
    if what == "hrv":
        hrows = session.scalars(
            select(DerivedHrv).where(DerivedHrv.derivation_id == run_id).order_by(DerivedHrv.id)
        )
        return _digest(
            _hrv_digest_rows(
                {
                    "recording_id": h.recording_id,
                    "label": h.label,
                    "status": h.status,
                    "error": h.error,
                    "start_s": _num(h.start_s),
                    "end_s": _num(h.end_s),
                    "n_beats": h.n_beats,
                    "artifact_rate": _num(h.artifact_rate),
                    "valid": None if h.valid is None else bool(h.valid),
                    "reason": h.reason,
                    "metrics_json": h.metrics_json,
                    "pipeline_version": h.pipeline_version,
                    "windows_sha256": h.windows_sha256,
                }
                for h in hrows
            )
        )
    stories = session.scalars(
        select(DerivedStory).where(DerivedStory.derivation_id == run_id).order_by(DerivedStory.id)
    ).all()

    def rows() -> Iterable[tuple[Any, ...]]:
        for st in stories:
            d = {
                "transcript_id": st.transcript_id,
                "model_sha256": st.model_sha256,
                "status": st.status,
                "error": st.error,
                "n_sentences": st.n_sentences,
                "connection_index": _num(st.connection_index),
                "ci_low": _num(st.ci_low),
                "ci_high": _num(st.ci_high),
                "counts_json": st.counts_json,
                "model_json": st.model_json,
            }
            yield tuple(d[k] for k in sorted(d))
            for x in session.scalars(
                select(DerivedSentence)
                .where(DerivedSentence.story_id == st.id)
                .order_by(DerivedSentence.position)
            ):
                sx = {
                    "position": x.position,
                    "label": x.label,
                    "confidence": float(x.confidence),
                    "speaker_turn": x.speaker_turn,
                    "n_chars": x.n_chars,
                }
                yield (st.transcript_id, *(sx[k] for k in sorted(sx)))

    return _digest(rows())
