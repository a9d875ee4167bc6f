"""Derived story labels: each transcript or story version, analysed by
:func:`peerlens.narrative.analyze`.

Per-sentence label and confidence, and the session's connection index with its bootstrap
interval (model sha256 per row). Sentence text is not copied: it stays in the transcript (and
goes with it on erasure). A text that cannot be analysed becomes an ``error`` row; a result is
stale when it was made by another model than the one installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd
from sqlalchemy import Select, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from peerlens.study.derived._base import Batch, DeriveOptions, error_row, num, stored_results
from peerlens.study.models import (
    DerivedSentence,
    DerivedStory,
    Participant,
    Study,
    Transcript,
)

#: One stored story row and its sentence rows (plain values, without ids).
StoryRows = tuple[dict[str, Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class StoryInput:
    """One transcript or story version to analyse."""

    transcript_id: int
    kind: str
    version: int
    text: str
    speaker: str | None


class Story:
    """Connection/comparison labels of stored transcripts and stories (module docstring)."""

    what: str = "story"
    views: tuple[str, ...] = ("story", "sentences")
    slow: bool = False
    summed: bool = False

    def collect(self, session: Session, study: Study, options: DeriveOptions) -> list[StoryInput]:
        stmt = (
            select(Transcript)
            .where(Transcript.study_id == study.id, Transcript.text.is_not(None))
            .order_by(Transcript.id)
        )
        return [
            StoryInput(t.id, t.kind, t.version, str(t.text), t.speaker)
            for t in session.scalars(stmt)
        ]

    def compute(self, inputs: list[StoryInput], options: DeriveOptions) -> Batch:
        from peerlens import __version__
        from peerlens.narrative import load_model

        model = load_model()
        model_meta = {
            "format": model.meta.get("format"),
            "corpus_sha256": model.meta.get("corpus_sha256"),
            "npz_sha256": model.meta.get("npz_sha256"),
        }
        if model.meta.get("encoder"):  # the sentence encoder's pinned revision and hashes
            model_meta["encoder"] = model.meta["encoder"]
        rows = [_analyse(t, model, model_meta) for t in inputs]
        errors = sum(st["status"] == "error" for st, _ in rows)
        n_rows = len(rows) + sum(len(sents) for _, sents in rows)
        versions = {"peerlens": __version__, "model": model_meta}
        return Batch(rows, len(inputs), n_rows, errors, versions)

    def batch(
        self, session: Session, inputs: list[StoryInput], results: Batch, options: DeriveOptions
    ) -> Batch:
        return results

    def digest_rows(self, rows: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        for st, sents in cast(Sequence[StoryRows], rows):
            yield tuple(st[k] for k in sorted(st))
            for x in sents:
                yield (st["transcript_id"], *(x[k] for k in sorted(x)))

    def delete_rows(self, session: Session, run_ids: Select[Any]) -> None:
        old = select(DerivedStory.id).where(DerivedStory.derivation_id.in_(run_ids))
        session.execute(delete(DerivedSentence).where(DerivedSentence.story_id.in_(old)))
        session.execute(delete(DerivedStory).where(DerivedStory.derivation_id.in_(run_ids)))

    def insert_rows(self, session: Session, run_id: int, rows: Sequence[Any]) -> None:
        sentence_table = cast(Table, DerivedSentence.__table__)
        for st, sents in cast(Sequence[StoryRows], rows):
            row = DerivedStory(derivation_id=run_id, **st)
            session.add(row)
            session.flush()
            if sents:
                session.execute(insert(sentence_table), [{"story_id": row.id, **x} for x in sents])

    def stored_digest_rows(self, session: Session, run_id: int) -> Iterable[tuple[Any, ...]]:
        stories = session.scalars(
            select(DerivedStory)
            .where(DerivedStory.derivation_id == run_id)
            .order_by(DerivedStory.id)
        ).all()
        return self.digest_rows([(_story_row(st), _sentence_rows(session, st)) for st in stories])

    def frame(self, session: Session, study: Study, view: str) -> pd.DataFrame:
        return _frame(session, study, sentences=view == "sentences")

    def status(
        self, session: Session, study: Study, within: frozenset[str] | None
    ) -> tuple[int, pd.Series]:
        story = _frame(session, study, sentences=False)
        q = (
            select(func.count())
            .select_from(Transcript)
            .where(Transcript.study_id == study.id, Transcript.text.is_not(None))
        )
        if within is not None:  # as derived_frame: only texts of participants within
            q = q.join(Participant, Participant.id == Transcript.participant_id).where(
                Participant.study_code.in_(sorted(within))
            )
            story = story[story["participant"].isin(within)] if len(story) else story
        return int(session.scalar(q) or 0), story["derivation"] if len(story) else pd.Series([])


STORY = Story()


def _model_sha(meta: Any) -> str:
    return str(dict(meta).get("npz_sha256") or "")


def _analyse(t: StoryInput, model: Any, model_meta: dict[str, Any]) -> StoryRows:
    """The story row and sentence rows of one text; never raises (a text that cannot be
    analysed is an ``error`` row)."""
    from peerlens import PeerlensError
    from peerlens.narrative import analyze

    base = {"transcript_id": t.transcript_id, "model_sha256": _model_sha(model_meta)}
    try:
        res = analyze(
            t.text,
            transcript=t.kind == "transcript",
            speaker=t.speaker,
            source=f"{t.kind} {t.transcript_id} v{t.version}",
            model=model,
        )
    except Exception as exc:  # one bad text must not sink the derivation
        message = str(exc) if isinstance(exc, PeerlensError) else f"{type(exc).__name__}: {exc}"
        measures = ("n_sentences", "connection_index", "ci_low", "ci_high")
        model_json = json.dumps(model_meta, sort_keys=True)
        return error_row(message, base, measures, counts_json="{}", model_json=model_json), []
    summ = res.summary
    story = {
        **base,
        "status": "ok",
        "error": None,
        "n_sentences": int(summ.n_sentences),
        "connection_index": num(summ.connection_index),
        "ci_low": num(summ.ci_low),
        "ci_high": num(summ.ci_high),
        "counts_json": json.dumps(dict(summ.counts), sort_keys=True),
        "model_sha256": _model_sha(res.model) or base["model_sha256"],
        "model_json": json.dumps(dict(res.model), sort_keys=True, default=str),
    }
    sentences = [
        {
            "position": i,
            "label": s.label,
            "confidence": float(s.confidence),
            "speaker_turn": s.turn,
            "n_chars": len(s.text),
        }
        for i, s in enumerate(res.sentences)
    ]
    return story, sentences


def _story_row(st: DerivedStory) -> dict[str, Any]:
    """A stored story row as :func:`_analyse` made it."""
    return {
        "transcript_id": st.transcript_id,
        "model_sha256": st.model_sha256,
        "status": st.status,
        "error": st.error,
        "n_sentences": st.n_sentences,
        "connection_index": num(st.connection_index),
        "ci_low": num(st.ci_low),
        "ci_high": num(st.ci_high),
        "counts_json": st.counts_json,
        "model_json": st.model_json,
    }


def _sentence_rows(session: Session, st: DerivedStory) -> list[dict[str, Any]]:
    """The stored sentence rows of ``st`` as :func:`_analyse` made them."""
    return [
        {
            "position": x.position,
            "label": x.label,
            "confidence": float(x.confidence),
            "speaker_turn": x.speaker_turn,
            "n_chars": x.n_chars,
        }
        for x in _sentences(session, st)
    ]


def _sentences(session: Session, st: DerivedStory) -> Sequence[DerivedSentence]:
    return session.scalars(
        select(DerivedSentence)
        .where(DerivedSentence.story_id == st.id)
        .order_by(DerivedSentence.position)
    ).all()


def _frame(session: Session, study: Study, *, sentences: bool) -> pd.DataFrame:
    """Stored story results: one row per transcript version, or per labelled sentence."""
    from peerlens.narrative import LABELS
    from peerlens.narrative.model import packaged_model_meta

    # the version only: an export must not need the model's arrays or the encoder weights
    current_sha = _model_sha(packaged_model_meta())
    columns = (Transcript.id, Transcript.kind, Transcript.version)
    base = (
        stored_results(DerivedStory, Transcript, DerivedStory.transcript_id, *columns)
        .where(Transcript.study_id == study.id)
        .order_by(Transcript.id)
    )
    rows: list[dict[str, Any]] = []
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
            rows.extend(
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
                for x in _sentences(session, d)
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
