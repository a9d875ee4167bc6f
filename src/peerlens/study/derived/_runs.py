"""Run bookkeeping shared by every kind: Derivation rows, digests, the lock, the audit trail.

A run replaces all stored results of its kind for the study in the caller's transaction,
records a :class:`~peerlens.study.models.Derivation` row (who, when, versions, counts and the
sha256 ``digest`` of the rows written) and one audit entry. :func:`check_derived` recomputes each
current run's digest from the stored rows; a lawful erasure that removed some of them records
the digest of what is left (:func:`amend_after_erasure`).

A kind whose rows are replaced in place (scores: a form completed through a personal link is
re-scored inside the current run) also records, in the run's audit entry, the *additive* digest
of its rows (``sum``, :func:`~peerlens.study.derived._base.digest_sum`): replacing a response's
rows then records the run's new sum, the old one less the removed rows' terms plus the added
rows' (:func:`amend_rows`), without reading the rest of the run, and :func:`check_derived`
compares the sum of the stored rows with the newest one recorded. Runs from before sums were
recorded are checked by their sha256 digest, and get a sum at their first in-place change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study.derived._base import Batch, DerivedKind, digest, digest_sum, sum_text
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
    tuples = list(kind.digest_rows(batch.rows))
    run_digest = digest(tuples)
    run_sum = sum_text(digest_sum(tuples)) if kind.summed else None
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
    return _finish(session, study, run, previous, reason, run_sum)


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
    run_sum: str | None,
) -> DerivationSummary:
    versions = json.loads(run.versions_json)
    unchanged = previous is not None and previous.digest == run.digest
    summed = {} if run_sum is None else {"sum": run_sum}
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
            **summed,
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
        logged = _logged(session, run)
        if logged is None or logged.get("digest") != run.digest:
            problems.append(f"{what}: run {run.id} does not match its audit-log entry")
        # An erasure that removed rows of this run, or a response re-scored in place, recorded
        # the digest of what was left.
        form, expected = _expected(session, run, logged, own_read=True)
        if _stored(session, run, form) != expected:
            problems.append(
                f"{what}: stored rows of run {run.id} differ from what the run wrote "
                "(changed by hand?); run peerlens study derive again"
            )
    return DerivedCheck(tuple(checked), tuple(problems))


def intact_runs(session: Session, study: Study) -> set[int]:
    """Ids of ``study``'s current runs whose stored rows give what they should now (each run
    read whole): taken before an erasure removes rows, so that :func:`amend_after_erasure`
    never records the digest of a run changed outside peerlens."""
    intact = set()
    for run in current_runs(session, study).values():
        form, expected = expected_digest(session, run)
        if _stored(session, run, form) == expected:
            intact.add(run.id)
    return intact


def amend_after_erasure(
    session: Session, study: Study, actor: str, reason: str, intact: set[int]
) -> None:
    """Record, for each current run that lost rows to an erasure, the digest of the rows left
    (derived rows are never edited, so the run keeps its original digest; this audit entry says
    what a lawful erasure removed, and :func:`check_derived` then expects the new digest; the
    whole run is read, as an erasure is rare).

    Only runs in ``intact`` (:func:`intact_runs`, before the erasure) are amended: for a run
    whose rows were already changed outside peerlens, the digest of the rows left would make
    that change what :func:`check_derived` expects, so nothing is recorded and it goes on
    naming the run."""
    for run in current_runs(session, study).values():
        if run.id in intact:
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
    """Record the digest of run ``run``'s rows as stored now (reading them all), when it is not
    the one expected, as a ``derive.amend`` audit entry naming the ``cause`` (an erasure that
    removed rows); :func:`check_derived` then expects the new digest. The digest is the run's
    additive sum when its audit entry records one, else its sha256 digest."""
    form, expected = expected_digest(session, run)
    stored = _stored(session, run, form)
    if stored == expected:
        return
    _amend(session, study, run, actor, {form: expected}, {form: stored}, cause, reason)


def expected_digest(session: Session, run: Derivation) -> tuple[str, str]:
    """What run ``run``'s rows should give now, as ``(form, hex)``: ``("sum", ...)``, the
    additive digest (the newest amendment's, or the run's own), or, for a run from before sums
    were recorded, ``("digest", ...)``, its sha256 digest (the newest amendment's or its own).

    The newest amendment is read first; the run's own audit entry only when there is none."""
    return _expected(session, run)


def sum_of_unsummed(session: Session, run: Derivation, expected: str) -> int | None:
    """For run ``run``, a run from before sums were recorded whose rows should have the sha256
    digest ``expected`` (:func:`expected_digest`): the additive digest of its rows, or ``None``
    when they do not match ``expected`` (changed outside peerlens). Reads the whole run: once
    per such run."""
    rows = list(KINDS[run.what].stored_digest_rows(session, run.id))
    if digest(rows) != expected:
        return None
    return digest_sum(rows)


def amend_rows(
    session: Session,
    study: Study,
    run: Derivation,
    actor: str,
    *,
    before: int,
    removed: Iterable[Sequence[Any]],
    added: Iterable[Sequence[Any]],
    cause: str,
    unsummed: str | None = None,
) -> None:
    """Record, as a ``derive.amend`` audit entry naming the ``cause``, the additive digest of
    run ``run``'s rows after ``removed`` were deleted from it and ``added`` inserted (digest
    rows, as :meth:`~peerlens.study.derived._base.DerivedKind.digest_rows` gives them; the
    removed ones as they were stored), ``before`` being the sum expected before the change
    (:func:`expected_digest`; for a run given its first sum, the one :func:`sum_of_unsummed`
    found, with the sha256 digest it matched as ``unsummed``).

    The rest of the run is not read: the new sum is ``before`` less the removed rows' terms plus
    the added rows'. Nothing is recorded when the sum is unchanged and already recorded."""
    after = digest_sum(added, before - digest_sum(removed))
    if unsummed is None and after == before:
        return
    old = {"sum": sum_text(before)} if unsummed is None else {"digest": unsummed}
    _amend(session, study, run, actor, old, {"sum": sum_text(after)}, cause, None)


def _amend(
    session: Session,
    study: Study,
    run: Derivation,
    actor: str,
    old: dict[str, str],
    new: dict[str, str],
    cause: str,
    reason: str | None,
) -> None:
    audit.record(
        session,
        actor,
        "derive.amend",
        "derivation",
        str(run.id),
        study=study.name,
        old=old,
        new={**new, "what": run.what, "cause": cause},
        reason=reason,
    )


def _logged(session: Session, run: Derivation) -> dict[str, Any] | None:
    """What run ``run``'s own audit entry (``derive.<what>``) recorded about it."""
    logged = session.scalars(
        select(AuditLog.new).where(
            AuditLog.action == f"derive.{run.what}",
            AuditLog.entity == "derivation",
            AuditLog.entity_id == str(run.id),
        )
    ).first()
    if logged is None:
        return None
    values = json.loads(logged)
    return values if isinstance(values, dict) else None


def _expected(
    session: Session,
    run: Derivation,
    logged: dict[str, Any] | None = None,
    *,
    own_read: bool = False,
) -> tuple[str, str]:
    """What run ``run``'s rows should give now, as ``(form, value)``: ``("sum", hex)`` when its
    newest amendment or its own entry records an additive sum, else ``("digest", hex)``: the
    newest amendment's sha256 digest or the run's own. ``logged`` is what the run's own entry
    recorded when ``own_read``; else that entry is read, only when no amendment says."""
    amended = session.scalars(
        select(AuditLog.new)
        .where(
            AuditLog.entity == "derivation",
            AuditLog.entity_id == str(run.id),
            AuditLog.action == "derive.amend",
        )
        .order_by(AuditLog.seq.desc())
        .limit(1)
    ).first()
    if amended is not None:
        values = json.loads(amended)
        form = "sum" if "sum" in values else "digest"
        return form, str(values[form])
    own = logged if own_read else _logged(session, run)
    if own is not None and "sum" in own:
        return "sum", str(own["sum"])
    return "digest", run.digest


def _stored(session: Session, run: Derivation, form: str) -> str:
    """The ``form`` (``"sum"`` or ``"digest"``) of run ``run``'s rows as stored now."""
    rows = KINDS[run.what].stored_digest_rows(session, run.id)
    return sum_text(digest_sum(rows)) if form == "sum" else digest(rows)
