"""The public functions of :mod:`peerlens.study.derived`: derive, read back, status, verify.

Each walks the kinds of :mod:`~peerlens.study.derived._registry` by name; nothing here knows
what a kind computes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study._lookup import get_study
from peerlens.study._read_audit import audit_read
from peerlens.study.derived._base import Batch, DerivedKind, DeriveOptions, shown_error
from peerlens.study.derived._registry import KINDS, VIEWS, WHAT
from peerlens.study.derived._runs import (
    DerivationSummary,
    DerivedCheck,
    amend_rows,
    check_derived,
    current_runs,
    expected_digest,
    lock_derivations,
    store_run,
    sum_of_unsummed,
)
from peerlens.study.derived._scores import SCORES
from peerlens.study.errors import StudyError
from peerlens.study.models import Participant, Study, as_utc
from peerlens.study.policy import Caller, Grant, authorize, guarded
from peerlens.study.storage import Store


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
    """Recompute and store the study's derived results (see :mod:`peerlens.study.derived`).

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
    unknown = [w for w in what if w not in KINDS]
    if unknown:
        raise StudyError(f"cannot derive {', '.join(unknown)}: use {', '.join(WHAT)}")
    if not 0 <= max_artifact_rate <= 1:
        raise StudyError(f"max_artifact_rate {max_artifact_rate}: must be in [0, 1]")
    options = DeriveOptions(
        store.blob_dir, executor, n_workers, processes, max_artifact_rate, progress
    )
    return [
        _derive_kind(store, study_name, KINDS[w], options, caller, reason)
        for w in dict.fromkeys(what)
    ]


def _derive_kind(
    store: Store,
    study_name: str,
    kind: DerivedKind[Any, Any],
    options: DeriveOptions,
    caller: Caller,
    reason: str | None,
) -> DerivationSummary:
    """One run of ``kind``: in one transaction, or (a slow kind) in two around its analysis."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "derive", study).actor
        if not kind.slow:
            return run_in(s, study, kind, options, actor, reason)
        inputs = kind.collect(s, study, options)
    # The analysis runs outside any transaction (it may take minutes); the results are then
    # written in one, with the caller's rights checked again there.
    results = kind.compute(inputs, options)
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "derive", study).actor
        # The chain's lock before the batch reads what still exists (an erasure holds it while
        # it removes a participant's inputs): nothing it read can go before the run is stored.
        lock_derivations(s, study)
        return store_run(s, study, kind, kind.batch(s, inputs, results, options), actor, reason)


def run_in(
    session: Session,
    study: Study,
    kind: DerivedKind[Any, Any],
    options: DeriveOptions,
    actor: str,
    reason: str | None,
) -> DerivationSummary:
    """One run of a quick ``kind`` inside ``session``'s transaction (the caller's right was
    checked by the function calling this one)."""
    lock_derivations(session, study)  # before the inputs are read (see derive's slow path)
    inputs = kind.collect(session, study, options)
    batch = kind.batch(session, inputs, kind.compute(inputs, options), options)
    return store_run(session, study, kind, batch, actor, reason)


def rescore_in(
    session: Session, study: Study, blob_dir: Path, actor: str, reason: str | None
) -> DerivationSummary:
    """Recompute ``study``'s scores inside ``session``'s transaction, as ``derive(["scores"])``
    does (a form just completed through a personal link scores at once)."""
    return run_in(session, study, KINDS["scores"], DeriveOptions(blob_dir), actor, reason)


def score_response(session: Session, response_id: int, study: Study, blob_dir: Path) -> Batch:
    """The scores of response ``response_id`` as stored now in ``session``'s transaction,
    computed without any lock (to be stored by :func:`rescore_response`)."""
    options = DeriveOptions(blob_dir)
    return SCORES.compute(SCORES.collect(session, study, options, response_id), options)


def rescore_response(
    session: Session,
    study: Study,
    response_id: int,
    blob_dir: Path,
    actor: str,
    batch: Batch | None = None,
) -> None:
    """Score response ``response_id`` (a form just completed through a personal link) at once,
    inside ``session``'s transaction.

    Its rows in the study's current scores run are replaced and the run's new additive digest
    (the old one less the removed rows' terms plus the new rows') is recorded as an amendment
    (:func:`~peerlens.study.derived._runs.amend_rows`), reading only this response's rows, so
    that saving a form costs the same in a study of ten participants or ten thousand (a run
    from before additive digests is read whole once, at its first such change).

    With no current run, or one whose recorded versions of this instrument's spec and engine
    differ from the installed ones, or when the response cannot be scored, the whole study is
    scored again as :func:`rescore_in` does.

    ``batch`` is the response's scores from :func:`score_response` when they were computed
    before (before the audit chain's lock was taken, see
    :func:`peerlens.study.audit.appended_late`); they are computed here otherwise.
    """
    if batch is None:
        batch = score_response(session, response_id, study, blob_dir)
    lock_derivations(session, study)  # the run read below must stay current until commit
    run = current_runs(session, study).get(SCORES.what)
    recorded = {} if run is None else json.loads(run.versions_json)
    same = all(recorded.get(inst) == v for inst, v in batch.versions.items())
    if run is None or batch.errors or not batch.versions or not same:
        rescore_in(session, study, blob_dir, actor, None)
        return
    form, expected = expected_digest(session, run)
    # A run from before sums is checked whole against its sha256 digest and given a sum, once.
    unsummed = expected if form == "digest" else None
    before = int(expected, 16) if unsummed is None else sum_of_unsummed(session, run, expected)
    old = SCORES.response_rows(session, run.id, response_id)
    SCORES.delete_ids(session, [i for i, _ in old])
    SCORES.insert_rows(session, run.id, batch.rows)
    if before is None:
        # Its rows no longer match its digest (changed outside peerlens): nothing is recorded,
        # so that verify_derived goes on naming the run (recording the digest of the rows as
        # stored now would make the tampering what it expects). Its row seals name the rows.
        return
    amend_rows(
        session,
        study,
        run,
        actor,
        before=before,
        removed=[row for _, row in old],
        added=SCORES.digest_rows(batch.rows),
        cause="responses.page",
        unsummed=unsummed,
    )


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
        quote a file or speaker) are shown only at the ``full`` tier (a token needs the
        ``export`` scope for it). The read is audited (format ``read:derived:<what>``).
    """
    if what not in VIEWS:
        *first, last = VIEWS
        raise StudyError(f"derived results {what!r}: use {', '.join(first)} or {last}")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "derived.read", study)
        frame = VIEWS[what].frame(s, study, what)
        mine = _participants_within(s, study, grant)
        if mine is not None:
            frame = frame[frame["participant"].isin(mine)]
        if "error" in frame:
            full = grant.allows_tier("full")
            frame = frame.assign(error=frame["error"].map(lambda t: shown_error(t, full=full)))
        frame = frame.reset_index(drop=True)
        audit_read(s, grant, study_name, f"derived:{what}", frame)
    return frame


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
    A site-scoped caller's counts cover their sites' participants only; ``errors`` (counted
    per run, study-wide) is then missing.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "derived.status", study)
        runs = current_runs(s, study)
        mine = _participants_within(s, study, grant)
        within = None if mine is None else frozenset(mine)
        states = {what: kind.status(s, study, within) for what, kind in KINDS.items()}
    rows = []
    for what, (n_inputs, state) in states.items():
        run = runs.get(what)
        current = int((state == "current").sum())
        stale = int((state == "stale").sum())
        rows.append(
            {
                "what": what,
                "inputs": n_inputs,
                "current": current,
                "stale": stale,
                "missing": max(n_inputs - current - stale, 0),
                # The run counts errors study-wide: not shown to a site-scoped caller.
                "errors": 0 if run is None else (run.n_errors if within is None else None),
                "last_run": None if run is None else run.id,
                "derived_at": None if run is None else as_utc(run.derived_at),
                "derived_by": None if run is None else run.actor,
            }
        )
    frame = pd.DataFrame(rows)
    frame["last_run"] = frame["last_run"].astype("Int64")
    frame["errors"] = frame["errors"].astype("Int64")
    return frame


@guarded("derived.verify")
def verify_derived(store: Store, study_name: str, *, caller: Caller) -> DerivedCheck:
    """Recompute the digest of each kind's current stored rows and compare it with the run's
    digest and the one in the audit log (catches rows inserted, deleted or edited by hand)."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        authorize(s, caller, "derived.verify", study)
        return check_derived(s, study)
