"""What a participant does through their personal link: open it, agree to the consent text,
answer the timepoint's questionnaires a page at a time, withdraw.

Every function takes the link as the caller (:class:`~peerlens.study.policy.LinkHolder`) and
works on that link's participant and timepoint only (:func:`authorize_link`). A page is checked
with the same rules as a file import (:func:`peerlens.study.responses.parse_item`) and stored
whole or not at all; a form is incomplete (0) until every item has an answer or a "prefer not
to answer" code, then complete (2), and the study's scores are derived again at once. Reopening
the link, on any device, finds every saved answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._catalog import FormSpec, _code, resolve_forms
from peerlens.study._pages import Choice, PageLayout, Question, layout_pages
from peerlens.study.consent_texts import ConsentWording, current_consent
from peerlens.study.errors import ConsentNeeded, StudyError
from peerlens.study.models import (
    Consent,
    Participant,
    ParticipantLink,
    Response,
    Study,
    Timepoint,
    utcnow,
)
from peerlens.study.participants import change_status, store_consent
from peerlens.study.policy import LinkHolder, authorize_link, guarded
from peerlens.study.responses import (
    ItemValue,
    MissingCodes,
    ResponseRecord,
    parse_item,
    stored_items,
    write_responses,
)
from peerlens.study.storage import Store

__all__ = [
    "Choice",
    "Page",
    "PageSaved",
    "Question",
    "Visit",
    "agree_to_consent",
    "open_visit",
    "save_page",
    "withdraw_through_link",
]

#: What a response stored through a personal link records as its source.
SOURCE = "web:personal-link"
#: The scope recorded with a consent given through a personal link.
CONSENT_SCOPE = "e-consent through the participant's personal link"


#: Why nothing is taken from a participant who is no longer enrolled.
_CLOSED = {
    "withdrawn": "you have withdrawn from this study: no answers are taken",
    "completed": "the study team has closed your questionnaires: no answers are taken",
}


@dataclass(frozen=True)
class Page:
    """One page of the visit (numbered from 1) with the answers saved on it so far (item ->
    the value as offered, or the "prefer not to answer" code)."""

    number: int
    layout: PageLayout
    answers: Mapping[str, str]

    @property
    def complete(self) -> bool:
        """True when every question of the page has a saved answer."""
        return all(q.item in self.answers for q in self.layout.questions)


@dataclass(frozen=True)
class Visit:
    """What the participant's link opens, as stored now."""

    study_title: str
    participant: str
    timepoint: str
    #: The consent text to agree to (``None`` when the study has none).
    consent: ConsentWording | None
    #: True when the participant agreed to the current consent text (or, in a study without
    #: one, when their consent was recorded by the study team).
    consented: bool
    #: The participant's status (``enrolled`` while answers are taken).
    status: str
    pages: tuple[Page, ...]
    #: True when the participant agreed to an earlier version of the consent text but not to
    #: the current one (the researcher set a new version since): they are asked again.
    renewal: bool = False

    @property
    def withdrawn(self) -> bool:
        """True once the participant withdrew."""
        return self.status == "withdrawn"

    @property
    def next_page(self) -> int | None:
        """The first page with an unanswered question (``None``: everything is answered)."""
        return next((p.number for p in self.pages if not p.complete), None)

    @property
    def open(self) -> bool:
        """True when answers are taken: consented and still enrolled."""
        return self.consented and self.status == "enrolled"


@dataclass(frozen=True)
class PageSaved:
    """What saving a page did: the items stored, or (``problems``: item -> message) why
    nothing was; the instruments the save completed; the visit afterwards."""

    page: int
    saved: tuple[str, ...]
    problems: Mapping[str, str]
    completed: tuple[str, ...]
    visit: Visit
    #: The answers as submitted (item -> text), to show them again beside the problems.
    submitted: Mapping[str, str] = field(default_factory=dict)


@guarded("link.open")
def open_visit(store: Store, *, caller: LinkHolder) -> Visit:
    """Open the participant's link: the consent text and the timepoint's pages with the
    answers saved so far.

    Raises
    ------
    PermissionDenied
        The link is not valid (one message for every reason, see :func:`authorize_link`).
    """
    with store.transaction() as s:
        link = authorize_link(s, caller, "link.open")
        return _visit(s, link)


@guarded("link.consent")
def agree_to_consent(store: Store, version: str, *, caller: LinkHolder) -> Visit:
    """Record the participant's agreement to consent text ``version`` (the current one),
    audited with its version; agreeing again changes nothing.

    Raises
    ------
    ConsentNeeded
        ``version`` is not the current one (the text changed since the page was shown): show
        the current version instead.
    StudyError
        The participant withdrew, or the study has no consent text.
    """
    with store.transaction() as s:
        link = authorize_link(s, caller, "link.consent")
        _one_at_a_time(s, link)
        p, study, _ = _parts(s, link)
        if p.status != "enrolled":
            raise StudyError(_CLOSED.get(p.status, _CLOSED["completed"]))
        wording = current_consent(s, study)
        if wording is None:
            raise StudyError("this study has no consent text to agree to yet")
        if version != wording.version:
            raise ConsentNeeded("the consent text has changed: please read the new version")
        if not _consented(s, p, wording):
            store_consent(
                s,
                study,
                p,
                version=wording.version,
                consented_at=utcnow(),
                scope=CONSENT_SCOPE,
                actor=str(caller),
                reason=None,
            )
            s.flush()
        return _visit(s, link)


@guarded("link.withdraw")
def withdraw_through_link(store: Store, *, caller: LinkHolder) -> Visit:
    """Withdraw the participant from the study (audited); answers saved so far are kept, no
    further answer is taken. Withdrawing again changes nothing."""
    with store.transaction() as s:
        link = authorize_link(s, caller, "link.withdraw")
        _one_at_a_time(s, link)
        p, study, _ = _parts(s, link)
        if p.status == "enrolled":
            change_status(
                s,
                study,
                p,
                "withdrawn",
                actor=str(caller),
                reason="withdrawn by the participant through their personal link",
            )
            s.flush()
        return _visit(s, link)


@guarded("link.answer")
def save_page(
    store: Store, page: int, answers: Mapping[str, str], *, caller: LinkHolder
) -> PageSaved:
    """Check and store the answers to page ``page`` of the participant's visit.

    Parameters
    ----------
    page
        The page number (from 1, as :attr:`Page.number`).
    answers
        Item -> the answer as submitted (an offered value, a typed value, or the "prefer not
        to answer" code where offered). Keys that are not questions of the page are ignored.

    Returns
    -------
    PageSaved
        The items stored, or the problems (every question of the page needs an answer, each
        checked as a file import checks it); with problems nothing is stored.

    Raises
    ------
    ConsentNeeded
        The participant has not agreed to the current consent text (none yet, or a new version
        was set since they agreed): nothing is stored; show them the current version.
    StudyError
        No such page, or the participant withdrew.
    """
    with store.transaction() as s:
        link = authorize_link(s, caller, "link.answer")
        _one_at_a_time(s, link)
        p, study, tp = _parts(s, link)
        if p.status != "enrolled":
            raise StudyError(_CLOSED.get(p.status, _CLOSED["completed"]))
        visit = _visit(s, link)
        if not visit.consented:
            raise ConsentNeeded("please agree to the consent text before answering")
        if not 1 <= page <= len(visit.pages):
            raise StudyError(f"there is no page {page} (pages 1 to {len(visit.pages)})")
        layout = visit.pages[page - 1].layout
        forms = resolve_forms(s, study.id, [layout.instrument])
        form = forms[layout.instrument]
        codes = MissingCodes(json.loads(study.missing_codes_json))
        submitted = {q.item: str(answers.get(q.item, "")).strip() for q in layout.questions}
        parsed, problems = _check(layout, form, submitted, codes)
        if problems:
            return PageSaved(page, (), problems, (), visit, submitted)
        response = _response_id(s, p.id, tp.id, form.name)
        items = dict(stored_items(s, [response]).get(response, {})) if response else {}
        items.update(parsed)
        # Complete once every question asked of this form (on any of its pages) has an answer.
        asked = [
            q.item
            for v in visit.pages
            if v.layout.instrument == form.name
            for q in v.layout.questions
        ]
        completion = 2 if all(name in items for name in asked) else 0
        record = ResponseRecord(p.id, p.study_code, tp.id, form.name, 0, completion, items)
        write_responses(
            s, [record], source=SOURCE, actor=str(caller), study_name=study.name, reason=None
        )
        audit.record(
            s,
            str(caller),
            "responses.page",
            "response",
            f"{p.study_code}/{tp.name}/{form.name}",
            study=study.name,
            new={"page": page, "items": len(parsed), "completion": completion},
        )
        completed: tuple[str, ...] = ()
        if completion == 2:
            completed = (form.name,)
            if form.builtin:
                from peerlens.study.derived._api import rescore_response
                from peerlens.study.storage import STORE_KEY

                rid = _response_id(s, p.id, tp.id, form.name)
                if rid is not None:  # just written above
                    rescore_response(s, study, rid, s.info[STORE_KEY].blob_dir, str(caller))
        s.flush()
        return PageSaved(page, tuple(parsed), {}, completed, _visit(s, link), submitted)


def _check(
    layout: PageLayout, form: FormSpec, submitted: Mapping[str, str], codes: MissingCodes
) -> tuple[dict[str, ItemValue], dict[str, str]]:
    """The page's answers as stored values, and the problems (item -> message)."""
    parsed: dict[str, ItemValue] = {}
    problems: dict[str, str] = {}
    for q in layout.questions:
        raw = submitted[q.item]
        rule = form.item(q.item)
        if rule is None:  # the form changed under the page: ask again
            problems[q.item] = "this question changed; please answer it again"
            continue
        if raw == "":
            if q.choices:
                problems[q.item] = "Please choose an answer" + (
                    " or “prefer not to answer”." if q.skip_code is not None else "."
                )
            else:
                problems[q.item] = "Please type an answer" + (
                    " or tick “prefer not to answer”." if q.skip_code is not None else "."
                )
            continue
        offered = {c.value for c in q.choices}
        is_skip = q.skip_code is not None and raw == q.skip_code
        if not is_skip and offered and raw not in offered:
            problems[q.item] = "Please choose one of the answers shown."
            continue
        if not is_skip and codes.match(raw) is not None:
            problems[q.item] = "Please give an answer (this one is not accepted here)."
            continue
        value, why = parse_item(rule, raw, codes)
        if why or value is None:
            problems[q.item] = why or "this answer is not accepted"
            continue
        parsed[q.item] = value
    return parsed, problems


def _one_at_a_time(s: Session, link: ParticipantLink) -> None:
    """Hold the link's participant row until ``s`` commits, so that what the participant sends
    through their link is saved one request after the other: a page sent twice at once (two
    tabs, a double tap) or two pages at once each read what the other stored, so both succeed
    and the later one wins. On PostgreSQL each later statement of a READ COMMITTED transaction
    sees what the earlier one committed; SQLite's ``BEGIN IMMEDIATE`` already serialises every
    write transaction. The participant is read afresh (a withdrawal committed meanwhile
    counts)."""
    s.scalars(
        select(Participant)
        .where(Participant.id == link.participant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _parts(s: Session, link: ParticipantLink) -> tuple[Participant, Study, Timepoint]:
    p = s.get(Participant, link.participant_id)
    tp = s.get(Timepoint, link.timepoint_id)
    if p is None or tp is None:  # foreign keys make this impossible
        raise StudyError("this link's participant or timepoint is gone")
    study = s.get(Study, p.study_id)
    if study is None or tp.study_id != study.id:
        raise StudyError("this link's participant or timepoint is gone")
    return p, study, tp


def _consented(s: Session, p: Participant, wording: ConsentWording | None) -> bool:
    q = select(Consent.id).where(Consent.participant_id == p.id)
    if wording is not None:
        q = q.where(Consent.version == wording.version)
    return s.scalars(q).first() is not None


def _response_id(s: Session, participant_id: int, timepoint_id: int, instrument: str) -> int | None:
    return s.scalars(
        select(Response.id).where(
            Response.participant_id == participant_id,
            Response.timepoint_id == timepoint_id,
            Response.session_id.is_(None),
            Response.instrument == instrument,
            Response.repeat_instance == 0,
        )
    ).first()


def _shown(value: ItemValue) -> str:
    """A stored item as the answer it was given as."""
    number, text, missing = value
    if missing is not None:
        return missing
    if text is not None:
        return text
    return "" if number is None else _code(number)


def _visit(s: Session, link: ParticipantLink) -> Visit:
    p, study, tp = _parts(s, link)
    names = [ti.instrument for ti in tp.instruments]
    forms = resolve_forms(s, study.id, names)
    codes = [str(c) for c in json.loads(study.missing_codes_json)]
    layouts = layout_pages(
        s, study, [forms[n] for n in names if n in forms], codes[0] if codes else None
    )
    saved: dict[str, dict[str, str]] = {}
    ids = {n: _response_id(s, p.id, tp.id, n) for n in forms}
    stored = stored_items(s, sorted(i for i in ids.values() if i is not None))
    for name, rid in ids.items():
        if rid is not None:
            saved[name] = {k: _shown(v) for k, v in stored.get(rid, {}).items()}
    pages = tuple(
        Page(
            k,
            layout,
            {
                q.item: saved[layout.instrument][q.item]
                for q in layout.questions
                if q.item in saved.get(layout.instrument, {})
            },
        )
        for k, layout in enumerate(layouts, start=1)
    )
    wording = current_consent(s, study)
    consented = _consented(s, p, wording)
    return Visit(
        study.title or study.name,
        p.study_code,
        tp.name,
        wording,
        consented,
        p.status,
        pages,
        renewal=not consented and _consented(s, p, None),
    )
