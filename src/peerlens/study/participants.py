"""Enrolling, listing and withdrawing participants; consent and the identity vault."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from peerlens.study import _limits, audit
from peerlens.study._identity import add_new, merge_fields, read_fields
from peerlens.study._lookup import get_participant, get_study, participant_map, refuse_erased
from peerlens.study.errors import ImportRejected, Problem, StudyError
from peerlens.study.models import (
    ROLES,
    Arm,
    Consent,
    Participant,
    Site,
    Study,
    as_utc,
    utcnow,
)
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class NewParticipant:
    """A participant to add: pseudonymous ``code``, role, arm, site, and optional identity."""

    code: str
    role: str = "service_user"
    arm: str | None = None
    site: str | None = None
    identity: Mapping[str, str] = field(default_factory=dict)


def check_code(code: str) -> str | None:
    """Why ``code`` is not a usable pseudonymous study code (``None`` if it is).

    Examples
    --------
    >>> check_code("P-001") is None
    True
    >>> check_code("Jane Doe")
    "a study code may hold only letters, digits, '_', '-', '.'"
    """
    if not code:
        return "empty study code"
    too_long = _limits.problem(Participant.study_code, code)
    if too_long:
        return f"a study code of {too_long}"
    if not set(code) <= _CODE_CHARS:
        # Not quoted: what lands in a code column by mistake is often a name.
        return "a study code may hold only letters, digits, '_', '-', '.'"
    return None


@guarded("participant.add")
def add_participants(
    store: Store,
    study_name: str,
    participants: Iterable[NewParticipant],
    *,
    caller: Caller,
    reason: str | None = None,
    source: str = "participants",
) -> int:
    """Add many participants in one transaction; return how many were new.

    Codes already enrolled with the same role, arm and site are skipped (idempotent); any
    conflict, unknown arm/site or bad code rejects the whole batch with every problem listed.
    A site-scoped caller enrols only at their own sites; identity fields also need the right
    to write the identity vault.
    """
    items = list(participants)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "participant.add", study)
        if any(p.identity for p in items):
            authorize(s, caller, "identity.write", study)
        site_scope = grant.sites
        actor = grant.actor
        arms = {a.name: a.id for a in s.scalars(select(Arm).where(Arm.study_id == study.id))}
        site_ids = {x.name: x.id for x in s.scalars(select(Site).where(Site.study_id == study.id))}
        existing = participant_map(s, study)
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        vault: list[tuple[int, dict[str, str]]] = []
        for n, p in enumerate(items, start=1):
            why = check_code(p.code)
            if why:
                problems.append(Problem(n, "participant", why))
                continue
            if p.code in seen:
                problems.append(Problem(n, "participant", f"{p.code!r} also on row {seen[p.code]}"))
                continue
            seen[p.code] = n
            if p.role not in ROLES:
                problems.append(Problem(n, "role", f"{p.role!r} is not one of {', '.join(ROLES)}"))
            if p.arm is not None and p.arm not in arms:
                problems.append(Problem(n, "arm", f"no arm {p.arm!r} (arms: {', '.join(arms)})"))
            if site_scope is not None and p.site not in site_scope:
                problems.append(
                    Problem(
                        n,
                        "site",
                        f"{p.site or 'no site'} is outside your site(s) "
                        f"{', '.join(sorted(site_scope))}",
                    )
                )
            if p.site is not None and p.site not in site_ids:
                problems.append(
                    Problem(n, "site", f"no site {p.site!r} (sites: {', '.join(site_ids)})")
                )
            old = existing.get(p.code)
            if old is not None:
                same = (
                    old.role == p.role
                    and old.arm_id == arms.get(p.arm or "")
                    and old.site_id == site_ids.get(p.site or "")
                )
                if not same:
                    problems.append(
                        Problem(n, "participant", f"{p.code!r} is already enrolled differently")
                    )
                continue
            rows.append(
                {
                    "study_id": study.id,
                    "study_code": p.code,
                    "role": p.role,
                    "arm_id": arms.get(p.arm) if p.arm else None,
                    "site_id": site_ids.get(p.site) if p.site else None,
                    "status": "enrolled",
                    "enrolled_at": utcnow(),
                    # REDCap-style date shift: 0..364 days, secret, per participant.
                    "date_shift_days": secrets.randbelow(365),
                }
            )
            if p.identity:
                vault.append((len(rows) - 1, dict(p.identity)))
        if problems:
            raise ImportRejected(source, problems)
        keyed: dict[str, dict[str, str]] = {}
        if rows:
            s.execute(insert(Participant), rows)
            if vault:
                added = participant_map(s, study)
                entries = [(added[rows[i]["study_code"]], ident) for i, ident in vault]
                hashes = add_new(s, entries)
                keyed = {p.study_code: hashes[p.id] for p, _ in entries}
        events = [
            audit.AuditEvent(
                "participant.add",
                "participant",
                r["study_code"],
                study_name,
                None,
                {
                    "role": r["role"],
                    "arm": next((k for k, v in arms.items() if v == r["arm_id"]), None),
                    "site": next((k for k, v in site_ids.items() if v == r["site_id"]), None),
                    "identity_fields": sorted(items[seen[r["study_code"]] - 1].identity),
                    **(
                        {"identity_keyed_hash": keyed[r["study_code"]]}
                        if r["study_code"] in keyed
                        else {}
                    ),
                },
                reason,
            )
            for r in rows
        ]
        audit.record_many(s, actor, events)
        return len(rows)


@guarded("participant.add")
def add_participant(
    store: Store,
    study_name: str,
    code: str,
    *,
    role: str = "service_user",
    arm: str | None = None,
    site: str | None = None,
    identity: Mapping[str, str] | None = None,
    caller: Caller,
    reason: str | None = None,
) -> bool:
    """Enrol one participant; True if new, False if already enrolled the same way.

    ``identity`` (name, contact, date of birth, ...) goes only to the identity vault; the audit
    log records its field names, never the values.
    """
    new = NewParticipant(code, role, arm, site, dict(identity or {}))
    try:
        added = add_participants(store, study_name, [new], caller=caller, reason=reason)
        return added == 1
    except ImportRejected as exc:
        raise StudyError("; ".join(p.reason for p in exc.problems)) from None


@guarded("participant.list")
def list_participants(store: Store, study_name: str, *, caller: Caller) -> pd.DataFrame:
    """Participants of a study (no identifying fields): code, role, arm, site, status, dates.

    A site-scoped caller sees their sites' participants only.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "participant.list", study)
        arms = {a.id: a.name for a in study.arms}
        sites = {x.id: x.name for x in study.sites}
        rows = [
            {
                "participant": p.study_code,
                "role": p.role,
                "arm": arms.get(p.arm_id) if p.arm_id else None,
                "site": sites.get(p.site_id) if p.site_id else None,
                "status": p.status,
                "enrolled_at": as_utc(p.enrolled_at),
                "withdrawn_at": as_utc(p.withdrawn_at),
            }
            for p in s.scalars(
                select(Participant)
                .where(Participant.study_id == study.id)
                .order_by(Participant.study_code)
            )
            if grant.outside(study, p) is None
        ]
    cols = ["participant", "role", "arm", "site", "status", "enrolled_at", "withdrawn_at"]
    return pd.DataFrame(rows, columns=cols)


@guarded("participant.status")
def set_status(
    store: Store,
    study_name: str,
    code: str,
    status: str,
    *,
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Set a participant's status to ``withdrawn`` or ``completed`` (data are kept)."""
    if status not in ("withdrawn", "completed", "enrolled"):
        raise StudyError(f"status {status!r}: use enrolled, withdrawn or completed")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "participant.status", study)
        p = get_participant(s, study, code, grant=grant)
        refuse_erased(s, p, exclusive=True)
        change_status(s, study, p, status, actor=grant.actor, reason=reason)


def change_status(
    s: Session, study: Study, p: Participant, status: str, *, actor: str, reason: str | None
) -> None:
    """Set ``p``'s status in ``s``'s transaction, audited (nothing when it is already so).

    The caller's right was checked by the public function calling this one."""
    if p.status == status:
        return
    old = p.status
    p.status = status
    p.withdrawn_at = utcnow() if status == "withdrawn" else p.withdrawn_at
    audit.record(
        s,
        actor,
        f"participant.{'withdraw' if status == 'withdrawn' else 'status'}",
        "participant",
        p.study_code,
        study=study.name,
        old={"status": old},
        new={"status": status},
        reason=reason,
    )


@guarded("participant.status")
def withdraw_participant(
    store: Store, study_name: str, code: str, *, caller: Caller, reason: str | None = None
) -> None:
    """Mark a participant withdrawn (their data so far are kept; see erasure to remove them)."""
    set_status(store, study_name, code, "withdrawn", caller=caller, reason=reason)


@guarded("identity.write")
def set_identity(
    store: Store,
    study_name: str,
    code: str,
    fields: Mapping[str, str],
    *,
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Merge ``fields`` into the participant's identity-vault row (creating it if needed).

    The audit log records which fields changed, never their values.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "identity.write", study)
        p = get_participant(s, study, code, grant=grant)
        refuse_erased(s, p)
        merge_fields(s, p, fields, actor=grant.actor, study_name=study_name, reason=reason)


@guarded("identity.read")
def get_identity(store: Store, study_name: str, code: str, *, caller: Caller) -> dict[str, str]:
    """The participant's identifying fields (empty after erasure)."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "identity.read", study)
        p = get_participant(s, study, code, grant=grant)
        audit.record(s, grant.actor, "identity.read", "identity_vault", code, study=study_name)
        return read_fields(s, p)


@guarded("consent.add")
def add_consent(
    store: Store,
    study_name: str,
    code: str,
    *,
    version: str,
    consented_at: dt.datetime,
    scope: str = "",
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Record a consent (form version, when, what it covers)."""
    if consented_at.tzinfo is None:
        raise StudyError("consent time must carry a time zone (e.g. 2026-03-01T10:00:00+00:00)")
    _limits.check(Consent.version, version, "version")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "consent.add", study)
        p = get_participant(s, study, code, grant=grant)
        refuse_erased(s, p)
        store_consent(
            s,
            study,
            p,
            version=version,
            consented_at=consented_at,
            scope=scope,
            actor=grant.actor,
            reason=reason,
        )


def store_consent(
    s: Session,
    study: Study,
    p: Participant,
    *,
    version: str,
    consented_at: dt.datetime,
    scope: str,
    actor: str,
    reason: str | None,
) -> None:
    """Store one consent of ``p`` in ``s``'s transaction, audited with its version.

    The caller's right was checked by the public function calling this one."""
    s.add(Consent(participant_id=p.id, version=version, consented_at=consented_at, scope=scope))
    audit.record(
        s,
        actor,
        "consent.add",
        "consent",
        p.study_code,
        study=study.name,
        new={
            "version": version,
            "at": consented_at.isoformat(),
            "scope": audit.redacted(scope),  # free text: its length only
        },
        reason=reason,
    )


@guarded("participant.add")
def import_participants(
    store: Store,
    study_name: str,
    path: str,
    *,
    identity_columns: Sequence[str] = (),
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Enrol the participants listed in a CSV/Excel file; all or nothing; returns how many were
    new.

    Columns: ``participant`` and optional ``role``, ``arm``, ``site``; the columns named in
    ``identity_columns`` (e.g. ``name``, ``phone``) go only to the identity vault, which keeps
    identifying values out of command lines and shell histories.
    """
    from peerlens.study.responses import read_table

    frame, _ = read_table(path)
    allowed = {"participant", "role", "arm", "site", *identity_columns}
    bad = [
        Problem(0, c, f"unknown column (use {', '.join(sorted(allowed))})")
        for c in frame.columns
        if c not in allowed
    ]
    bad += [
        Problem(0, c, "identity column not in the file")
        for c in identity_columns
        if c not in frame.columns
    ]
    if "participant" not in frame.columns:
        bad.append(Problem(0, None, "no participant column"))
    if bad:
        raise ImportRejected(path, bad)

    def cell(col: str, i: int) -> str | None:
        if col not in frame.columns:
            return None
        v = str(frame[col].iloc[i]).strip()
        return v or None

    people = [
        NewParticipant(
            str(cell("participant", i) or ""),
            cell("role", i) or "service_user",
            cell("arm", i),
            cell("site", i),
            {c: v for c in identity_columns if (v := cell(c, i)) is not None},
        )
        for i in range(len(frame))
    ]
    return add_participants(store, study_name, people, caller=caller, reason=reason, source=path)
