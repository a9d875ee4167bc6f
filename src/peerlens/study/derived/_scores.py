"""Derived scores: each response of a bundled instrument, scored from its stored items.

Scored by :func:`peerlens.instruments.score_with_provenance` through
:func:`peerlens.study._scoring.score_long` (the same computation as the tidy export's), with the
spec version, spec file sha256 and engine version on every row, and the response's
``updated_at`` as ``source_updated_at``: a stored score is current while its response and the
installed spec and engine are unchanged (:func:`peerlens.study._scoring.score_states`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from peerlens.study._bulk import allocate_ids, bulk_insert
from peerlens.study._catalog import FormSpec, builtin_form, study_forms
from peerlens.study._scoring import SAME_INPUT, response_rows, score_long, score_states
from peerlens.study.derived._base import Batch, DeriveOptions, num, worst_state
from peerlens.study.models import (
    Derivation,
    DerivedScore,
    Participant,
    Response,
    ResponseItem,
    Study,
    Timepoint,
)
from peerlens.study.models import Session as PSSession

#: Columns of a stored score, in the order they are written.
_COLUMNS = (
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
#: What a run's digest covers, per score (in the order of the rows: response, then name).
_DIGESTED = ("response_id", "name", "value", "text", "spec_sha256", "engine_version")


@dataclass(frozen=True)
class ScoreInputs:
    """Item values of the study's responses and when each response last changed."""

    #: Columns ``rid``, ``instrument``, ``name`` (item) and ``value``.
    items: pd.DataFrame
    forms: dict[str, FormSpec]
    #: Response id -> ``updated_at``, for stale detection.
    updated: dict[int, Any]


class Scores:
    """Scores of bundled instruments (see the module docstring)."""

    what: str = "scores"
    views: tuple[str, ...] = ("scores",)
    slow: bool = False
    summed: bool = True

    def collect(
        self,
        session: Session,
        study: Study,
        options: DeriveOptions,
        response_id: int | None = None,
    ) -> ScoreInputs:
        """The study's responses (only response ``response_id`` when given)."""
        forms = study_forms(session, study)
        q = (
            select(Response.id, Response.instrument, ResponseItem.item, ResponseItem.value)
            .join(Participant, Participant.id == Response.participant_id)
            .join(ResponseItem, ResponseItem.response_id == Response.id)
            .where(Participant.study_id == study.id)
        )
        times = (
            select(Response.id, Response.updated_at)
            .join(Participant, Participant.id == Response.participant_id)
            .where(Participant.study_id == study.id)
        )
        if response_id is not None:
            q, times = q.where(Response.id == response_id), times.where(Response.id == response_id)
        raw = pd.DataFrame.from_records(
            [tuple(r) for r in session.connection().execute(q).fetchall()],
            columns=["rid", "instrument", "name", "value"],
        )
        raw["value"] = raw["value"].astype("float64")
        # One time per response (not per item): when it last changed, for stale detection.
        updated: dict[int, Any] = {int(rid): at for rid, at in session.connection().execute(times)}
        return ScoreInputs(raw, forms, updated)

    def compute(self, inputs: ScoreInputs, options: DeriveOptions) -> Batch:
        """Every score of every bundled-instrument response, in a stable order; an instrument
        whose items the installed spec no longer accepts is named in the versions, not fatal."""
        from peerlens import PeerlensError

        rows: list[dict[str, Any]] = []
        versions: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        n_inputs = 0
        for inst, block in inputs.items.groupby("instrument", sort=True):
            form = inputs.forms.get(str(inst))
            if form is None or not form.builtin:
                continue
            n_inputs += int(block["rid"].nunique())
            try:
                scored, version = _score(form.scored_as, block, form, inputs.updated)
            except PeerlensError as exc:
                # Items the installed spec no longer accepts: say so, score the other instruments.
                errors[str(inst)] = {"responses": int(block["rid"].nunique()), "error": str(exc)}
                continue
            versions[str(inst)] = version
            rows.extend(scored)
        rows.sort(key=lambda r: (r["response_id"], r["name"]))
        if errors:
            versions["errors"] = errors
        n_errors = sum(e["responses"] for e in errors.values())
        return Batch(rows, n_inputs, len(rows), n_errors, versions)

    def batch(
        self, session: Session, inputs: ScoreInputs, results: Batch, options: DeriveOptions
    ) -> Batch:
        return results

    def digest_rows(self, rows: Sequence[Any]) -> Iterable[tuple[Any, ...]]:
        return (tuple(r[c] for c in _DIGESTED) for r in rows)

    def delete_rows(self, session: Session, run_ids: Select[Any]) -> None:
        session.execute(delete(DerivedScore).where(DerivedScore.derivation_id.in_(run_ids)))

    def response_rows(
        self, session: Session, run_id: int, response_id: int
    ) -> list[tuple[int, tuple[Any, ...]]]:
        """``(id, digest row)`` of run ``run_id``'s scores of response ``response_id``, as
        stored now.

        Looked up by the response alone (its unique key's index), the run checked here: with
        the run in the query SQLite may walk the run's index instead, reading every score of
        the run (a form completion's cost then grew with the study)."""
        q = (
            select(DerivedScore.id, DerivedScore.derivation_id, *_digested())
            .where(DerivedScore.response_id == response_id)
            .order_by(DerivedScore.name)
        )
        return [
            (int(sid), (int(a), str(b), num(c), d, str(e), str(f)))
            for sid, run, a, b, c, d, e, f in session.execute(q)
            if run == run_id
        ]

    def delete_ids(self, session: Session, ids: Sequence[int]) -> None:
        """Delete the scores whose ids are ``ids``."""
        if ids:
            session.execute(delete(DerivedScore).where(DerivedScore.id.in_(list(ids))))

    def insert_rows(self, session: Session, run_id: int, rows: Sequence[Any]) -> None:
        # Hundreds of thousands of rows: bulk, not through the ORM; each a seal unit, so each
        # written with its id.
        ids = allocate_ids(session, DerivedScore, len(rows)) if rows else []
        tuples = (
            (i, run_id, *(r[c] for c in _COLUMNS[1:])) for i, r in zip(ids, rows, strict=True)
        )
        bulk_insert(session, DerivedScore, ("id", *_COLUMNS), tuples)

    def stored_digest_rows(self, session: Session, run_id: int) -> Iterable[tuple[Any, ...]]:
        q = (
            select(*_digested())
            .where(DerivedScore.derivation_id == run_id)
            .order_by(DerivedScore.response_id, DerivedScore.name)
        )
        return (
            (int(a), str(b), num(c), d, str(e), str(f)) for a, b, c, d, e, f in session.execute(q)
        )

    def frame(self, session: Session, study: Study, view: str) -> pd.DataFrame:
        return _stored(session, study).drop(columns=["_same", "_rid"])

    def status(
        self, session: Session, study: Study, within: frozenset[str] | None
    ) -> tuple[int, pd.Series]:
        stored = _stored(session, study)
        if within is not None:
            stored = stored[stored["participant"].isin(within)]
        per_response = worst_state(stored, "_rid")
        rows = session.execute(
            select(Response.id, Response.instrument, Participant.study_code)
            .join(Participant, Participant.id == Response.participant_id)
            .where(Participant.study_id == study.id)
        ).all()
        insts = [(rid, i) for rid, i, code in rows if within is None or code in within]
        scored = {name for name, form in study_forms(session, study).items() if form.builtin}
        bundled = {i for _, i in insts if i in scored or builtin_form(str(i)) is not None}
        return len({rid for rid, i in insts if i in bundled}), per_response


SCORES = Scores()


def _digested() -> list[Any]:
    """The columns of a stored score its run's digest covers (:data:`_DIGESTED`)."""
    return [getattr(DerivedScore, c) for c in _DIGESTED]


def _score(
    inst: str, block: pd.DataFrame, form: FormSpec, updated: dict[int, Any]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The score rows of one instrument's responses, and the versions that scored them."""
    long, prov = score_long(block, form, ["rid"])
    v = {
        "spec_version": str(prov.spec_version),
        "spec_sha256": str(prov.spec_sha256),
        "engine_version": str(prov.engine_version),
    }
    long = long.sort_values(["rid", "name"], kind="stable")
    values = long["value"].astype("float64").to_numpy()
    finite = np.isfinite(values)
    texts = long["text"].to_numpy(dtype=object)
    rids = long["rid"].to_numpy()
    rows = [
        {
            "response_id": int(rid),
            "instrument": inst,
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
    ]
    return rows, v


def _stored(session: Session, study: Study) -> pd.DataFrame:
    """Stored scores with their response context and ``derivation`` (current/stale), plus
    ``_same`` (made from the response as it is now) and ``_rid`` (response id)."""
    q = (
        response_rows(
            study,
            Participant.study_code,
            Timepoint.name,
            PSSession.label,
            Response.instrument,
            Response.repeat_instance,
            SAME_INPUT,
            DerivedScore.instrument,
            DerivedScore.name,
            DerivedScore.value,
            DerivedScore.text,
            DerivedScore.spec_version,
            DerivedScore.spec_sha256,
            DerivedScore.engine_version,
            Derivation.derived_at,
            Response.id,
        )
        .join(DerivedScore, DerivedScore.response_id == Response.id)
        .join(Derivation, Derivation.id == DerivedScore.derivation_id)
        .order_by(Participant.study_code, Response.id, DerivedScore.name)
    )
    cols = ["participant", "timepoint", "session", "instrument", "repeat_instance", "_same"]
    cols += ["_scored_as", "name", "value", "text", "spec_version", "spec_sha256"]
    cols += ["engine_version"]
    cols += ["derived_at", "_rid"]
    frame = pd.DataFrame.from_records([tuple(r) for r in session.execute(q)], columns=cols)
    # Stale or current by the instrument that scored it (a mapped form's is not its own name).
    frame["derivation"] = score_states(
        frame["_scored_as"], frame["_same"], frame["spec_sha256"], frame["engine_version"]
    )
    frame["value"] = frame["value"].astype("float64")
    return frame.drop(columns=["_scored_as"])
