"""The versioned consent text of a study: what a participant reads and agrees to on the first
visit through a personal link, before any questionnaire.

A version is set once and never changed (a new wording is a new version); the newest version is
the one asked for, and a participant who agreed to an older one is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import _limits, audit
from peerlens.study._lookup import get_study
from peerlens.study.errors import StudyError
from peerlens.study.models import ConsentText, Study
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["ConsentWording", "current_consent", "set_consent_text", "store_consent_text"]

#: The longest consent text accepted (characters).
MAX_CONSENT_CHARS = 50_000


@dataclass(frozen=True)
class ConsentWording:
    """One version of a study's consent text."""

    version: str
    text: str


@guarded("consent.text")
def set_consent_text(
    store: Store,
    study_name: str,
    version: str,
    text: str,
    *,
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Set a new version of the study's consent text (it becomes the one participants see).

    Parameters
    ----------
    version
        A new version label (e.g. ``v2``); an existing version is never changed.
    text
        The consent text, as plain text (paragraphs separated by blank lines).
    caller
        A study-wide admin or researcher (the text is the same at every site).

    Raises
    ------
    StudyError
        Empty or too long text or version, or a version the study already has.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        actor = authorize(s, caller, "consent.text", study).actor
        store_consent_text(s, study, version, text, actor=actor, reason=reason)


def store_consent_text(
    s: Session, study: Study, version: str, text: str, *, actor: str, reason: str | None
) -> None:
    """Store a new consent text version in ``s``'s transaction, audited (the caller's right was
    checked by the public function calling this one)."""
    version = version.strip()
    if not version:
        raise StudyError("a consent text needs a version label (e.g. v1)")
    _limits.check(ConsentText.version, version, "version")
    if not text.strip():
        raise StudyError("the consent text is empty")
    if len(text) > MAX_CONSENT_CHARS:
        raise StudyError(f"the consent text is longer than {MAX_CONSENT_CHARS} characters")
    taken = s.scalars(
        select(ConsentText.id).where(
            ConsentText.study_id == study.id, ConsentText.version == version
        )
    ).first()
    if taken is not None:
        raise StudyError(
            f"study {study.name!r} already has consent text {version!r}; a new wording needs a "
            "new version"
        )
    s.add(ConsentText(study_id=study.id, version=version, text=text))
    s.flush()
    audit.record(
        s,
        actor,
        "consent.text",
        "consent_text",
        version,
        study=study.name,
        new={"version": version, "text": audit.redacted(text)},
        reason=reason,
    )


def current_consent(s: Session, study: Study) -> ConsentWording | None:
    """The newest consent text of ``study`` (``None`` when it has none)."""
    row = s.scalars(
        select(ConsentText).where(ConsentText.study_id == study.id).order_by(ConsentText.id.desc())
    ).first()
    return None if row is None else ConsentWording(row.version, row.text)
