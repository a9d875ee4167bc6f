"""Run bookkeeping shared by every kind: Derivation rows, digests, the lock, the audit trail.

A run replaces all stored results of its kind for the study in the caller's transaction,
records a :class:`~peerlens.study.models.Derivation` row (who, when, versions, counts and the
sha256 ``digest`` of the rows written) and one audit entry. :func:`check_derived` recomputes each
current run's digest from the stored rows; a lawful erasure that removed some of them records
the digest of what is left (:func:`amend_after_erasure`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study.derived._base import Batch, DerivedKind, digest
from peerlens.study.derived._registry import KINDS
from peerlens.study.models import AuditLog, Derivation, Study
from peerlens.study.storage import pg_lock


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


@dataclass(frozen=True)
class DerivedCheck:
    """Result of :func:`verify_derived`: ``ok`` when every current run's rows match its digest."""

    checked: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was changed behind peerlens's back."""
        return not self.problems


def current_runs(session: Session, study: Study) -> dict[str, Derivation]:
    """The newest derivation of each kind for ``study``."""
    runs: dict[str, Derivation] = {}
    stmt = select(Derivation).where(Derivation.study_id == study.id).order_by(Derivation.id)
    for run in session.scalars(stmt):
        runs[run.what] = run
    return runs


def store_run(
    session: Session,
    study: Study,
    kind: DerivedKind[Any, Any],
    batch: Batch,
    actor: str,
    reason: str | None,
) -> DerivationSummary:
    """Replace ``kind``'s stored results for ``study`` with ``batch``, as a new audited run."""
    run_digest = digest(kind.digest_rows(batch.rows))
    lock_derivations(session, study)
    previous = current_runs(session, study).get(kind.what)
    kind.delete_rows(session, _run_ids(study, kind.what))
    run = Derivation(
        study_id=study.id,
        what=kind.what,
        actor=actor,
        versions_json=json.dumps(batch.versions, sort_keys=True, default=str),
        n_inputs=batch.inputs,
        n_rows=batch.n_rows,
        n_errors=batch.errors,
        digest=run_digest,
    )
    session.add(run)
    session.flush()
    kind.insert_rows(session, run.id, batch.rows)
    return _finish(session, study, run, previous, reason)


def lock_derivations(session: Session, study: Study) -> None:
    """Serialise derivations of one study on PostgreSQL (SQLite's BEGIN IMMEDIATE already does):
    two concurrent runs would otherwise both delete and insert the same results. The run appends
    to the audit chain when it finishes, so the chain's lock is taken first (one lock order)."""
    audit.lock_chain(session)
    pg_lock(session, f"derive:{study.id}")


def _run_ids(study: Study, what: str) -> Select[Any]:
    return select(Derivation.id).where(Derivation.study_id == study.id, Derivation.what == what)


def _finish(
    session: Session,
    study: Study,
    run: Derivation,
    previous: Derivation | None,
    reason: str | None,
) -> DerivationSummary:
    versions = json.loads(run.versions_json)
    unchanged = previous is not None and previous.digest == run.digest
    audit.record(
        session,
        run.actor,
        f"derive.{run.what}",
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
        run.what, run.id, run.n_inputs, run.n_rows, run.n_errors, run.digest, unchanged, versions
    )


def check_derived(session: Session, study: Study) -> DerivedCheck:
    """:func:`verify_derived` inside an open transaction."""
    problems: list[str] = []
    checked: list[str] = []
    for what, run in current_runs(session, study).items():
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
        if _stored_digest(session, run) != _expected_digest(session, run):
            problems.append(
                f"{what}: stored rows of run {run.id} differ from what the run wrote "
                "(changed by hand?); run peerlens study derive again"
            )
    return DerivedCheck(tuple(checked), tuple(problems))


def amend_after_erasure(session: Session, study: Study, actor: str, reason: str) -> None:
    """Record, for each current run that lost rows to an erasure, the digest of the rows left
    (derived rows are never edited, so the run keeps its original digest; this audit entry says
    what a lawful erasure removed, and :func:`check_derived` then expects the new digest)."""
    for run in current_runs(session, study).values():
        amend_run(session, study, run, actor, cause="participant.erase", reason=reason)


def amend_run(
    session: Session,
    study: Study,
    run: Derivation,
    actor: str,
    *,
    cause: str,
    reason: str | None = None,
) -> None:
    """Record the digest of run ``run``'s rows as stored now, when it is not the one expected,
    as a ``derive.amend`` audit entry naming the ``cause`` (an erasure that removed rows, or one
    response re-scored in place); :func:`check_derived` then expects the new digest."""
    stored = _stored_digest(session, run)
    expected = _expected_digest(session, run)
    if stored == expected:
        return
    audit.record(
        session,
        actor,
        "derive.amend",
        "derivation",
        str(run.id),
        study=study.name,
        old={"digest": expected},
        new={"digest": stored, "what": run.what, "cause": cause},
        reason=reason,
    )


def _expected_digest(session: Session, run: Derivation) -> str:
    """The digest run ``run``'s rows should have: the run's own, or the latest amendment's."""
    amended = session.scalars(
        select(AuditLog.new)
        .where(
            AuditLog.action == "derive.amend",
            AuditLog.entity == "derivation",
            AuditLog.entity_id == str(run.id),
        )
        .order_by(AuditLog.seq.desc())
    ).first()
    return run.digest if amended is None else str(json.loads(amended)["digest"])


def _stored_digest(session: Session, run: Derivation) -> str:
    return digest(KINDS[run.what].stored_digest_rows(session, run.id))
