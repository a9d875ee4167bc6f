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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._catalog import FormSpec, _code, resolve_forms
from peerlens.study._pages import Choice, PageLayout, Question, layout_pages
from peerlens.study.consent_texts import ConsentWording, current_consent
from peerlens.study.derived._api import rescore_response, score_response
from peerlens.study.derived._base import Batch
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
from peerlens.study.storage import STORE_KEY, Store

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
    with store.reading() as s:  # writes nothing: never waits for a writer (see Store.reading)
        return _seen(s, _open(s, caller, "link.open")).visit


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
        opened = _open(s, caller, "link.consent")
        _one_at_a_time(s, opened.link)
        p, study = opened.participant, opened.study(s)
        if p.status != "enrolled":
            raise StudyError(_CLOSED.get(p.status, _CLOSED["completed"]))
        wording = opened.definition.consent
        if wording is None:
            raise StudyError("this study has no consent text to agree to yet")
        if version != wording.version:
            raise ConsentNeeded("the consent text has changed: please read the new version")
        if wording.version not in _consent_versions(s, p):
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
        return _seen(s, opened).visit


@guarded("link.withdraw")
def withdraw_through_link(store: Store, *, caller: LinkHolder) -> Visit:
    """Withdraw the participant from the study (audited); answers saved so far are kept, no
    further answer is taken. Withdrawing again changes nothing."""
    with store.transaction() as s:
        opened = _open(s, caller, "link.withdraw")
        _one_at_a_time(s, opened.link)
        p, study = opened.participant, opened.study(s)
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
        return _seen(s, opened).visit


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
        opened = _open(s, caller, "link.answer")
        _one_at_a_time(s, opened.link)
        p, study = opened.participant, opened.definition
        if p.status != "enrolled":
            raise StudyError(_CLOSED.get(p.status, _CLOSED["completed"]))
        seen = _seen(s, opened)
        visit = seen.visit
        if not visit.consented:
            raise ConsentNeeded("please agree to the consent text before answering")
        if not 1 <= page <= len(visit.pages):
            raise StudyError(f"there is no page {page} (pages 1 to {len(visit.pages)})")
        layout = visit.pages[page - 1].layout
        form = study.forms[layout.instrument]
        codes = MissingCodes(list(study.missing_codes))
        submitted = {q.item: str(answers.get(q.item, "")).strip() for q in layout.questions}
        parsed, problems = _check(layout, form, submitted, codes)
        if problems:
            return PageSaved(page, (), problems, (), visit, submitted)
        response = seen.responses.get(form.name)
        items = dict(seen.stored.get(form.name, {}))
        items.update(parsed)
        # Complete once every question asked of this form (on any of its pages) has an answer.
        asked = [
            q.item
            for v in visit.pages
            if v.layout.instrument == form.name
            for q in v.layout.questions
        ]
        completion = 2 if all(name in items for name in asked) else 0
        record = ResponseRecord(
            p.id, p.study_code, study.timepoint_id, form.name, 0, completion, items
        )
        completed: tuple[str, ...] = ()
        scored: tuple[int, Batch] | None = None
        # The entries are appended, and the audit chain's lock taken, only once the form is
        # written and scored: other participants' saves wait for this one's writing, not for
        # its scoring.
        with audit.appended_late(s):
            write_responses(
                s,
                [record],
                source=SOURCE,
                actor=str(caller),
                study_name=study.study_name,
                reason=None,
            )
            audit.record(
                s,
                str(caller),
                "responses.page",
                "response",
                f"{p.study_code}/{study.timepoint}/{form.name}",
                study=study.study_name,
                new={"page": page, "items": len(parsed), "completion": completion},
            )
            if completion == 2:
                completed = (form.name,)
                rid = response
                if rid is None:
                    rid = _response_id(s, p.id, study.timepoint_id, form.name)
                if form.builtin and rid is not None:  # just written above
                    blobs = s.info[STORE_KEY].blob_dir
                    scored = (rid, score_response(s, rid, opened.study(s), blobs))
        if scored is not None:
            rid, batch = scored
            blobs = s.info[STORE_KEY].blob_dir
            rescore_response(s, opened.study(s), rid, blobs, str(caller), batch)
        s.flush()
        # The visit as stored now: what it was, with this form's answers as just written.
        after = replace(
            visit, pages=_pages(visit.pages, {**seen.shown, form.name: _shown_all(items)})
        )
        return PageSaved(page, tuple(parsed), {}, completed, after, submitted)


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


@dataclass(frozen=True)
class _Definition:
    """What a link's study and timepoint define for the visit (study-level data, kept in the
    store's :class:`~peerlens.study._catalog_cache.CatalogCache` while the catalog revision
    holds): never changed in place, shared by every request of the process."""

    study_id: int
    study_name: str
    title: str
    missing_codes: tuple[str | int | float, ...]
    timepoint_id: int
    timepoint: str
    #: The timepoint's forms (by form name), in the timepoint's order.
    forms: Mapping[str, FormSpec]
    layouts: tuple[PageLayout, ...]
    #: The current consent text (``None``: the study has none).
    consent: ConsentWording | None
    #: The loaded wording files the bundled forms' pages were built with (path and change
    #: time, ``None`` when absent): they live outside the database.
    wording: tuple[tuple[Path, int | None], ...]

    def current(self) -> bool:
        """True while the wording files are as when the pages were built."""
        return _wording_stamp(self.forms.values()) == self.wording


def _wording_stamp(forms: Iterable[FormSpec]) -> tuple[tuple[Path, int | None], ...]:
    from peerlens.instruments import load_spec
    from peerlens.instruments.wording import wording_home

    stamp: list[tuple[Path, int | None]] = []
    for form in forms:
        if form.builtin and not form.item_map:
            path = wording_home() / f"{load_spec(form.name).id}.json"
            try:
                stamp.append((path, path.stat().st_mtime_ns))
            except FileNotFoundError:
                stamp.append((path, None))
    return tuple(stamp)


def _define(s: Session, study_id: int, timepoint_id: int) -> _Definition:
    """Read and build the definition of timepoint ``timepoint_id`` of study ``study_id``."""
    tp = s.get(Timepoint, timepoint_id)
    study = s.get(Study, study_id)
    if tp is None or study is None or tp.study_id != study.id:  # foreign keys forbid it
        raise StudyError("this link's participant or timepoint is gone")
    names = [ti.instrument for ti in tp.instruments]
    resolved = resolve_forms(s, study.id, names)
    forms = {resolved[n].name: resolved[n] for n in names if n in resolved}
    codes = json.loads(study.missing_codes_json)
    wording = _wording_stamp(list(forms.values()))
    skip = str(codes[0]) if codes else None
    layouts = tuple(layout_pages(s, study, list(forms.values()), skip))
    return _Definition(
        study.id,
        study.name,
        study.title or study.name,
        tuple(codes),
        tp.id,
        tp.name,
        forms,
        layouts,
        current_consent(s, study),
        wording,
    )


@dataclass(frozen=True)
class _Opened:
    """A checked link with its participant (read in this transaction) and the definition of
    its study and timepoint (from the cache while the catalog revision holds)."""

    link: ParticipantLink
    participant: Participant
    definition: _Definition

    def study(self, s: Session) -> Study:
        """The study row, for the writes that record it (read on first use)."""
        study = s.get(Study, self.definition.study_id)
        if study is None:  # foreign keys make this impossible
            raise StudyError("this link's participant or timepoint is gone")
        return study


def _open(s: Session, caller: LinkHolder, operation: str) -> _Opened:
    """Check ``caller``'s link for ``operation`` (:func:`authorize_link`) and find what it
    opens."""
    link = authorize_link(s, caller, operation)
    p = link.participant
    study_id, timepoint_id = p.study_id, link.timepoint_id
    definition = s.info[STORE_KEY].catalog.get(
        s,
        ("visit", study_id, timepoint_id),
        lambda: _define(s, study_id, timepoint_id),
        _Definition.current,
    )
    return _Opened(link, p, definition)


def _consent_versions(s: Session, p: Participant) -> set[str]:
    """The consent versions the participant agreed to (recorded, whatever their source)."""
    return set(s.scalars(select(Consent.version).where(Consent.participant_id == p.id)))


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


@dataclass(frozen=True)
class _Seen:
    """What the link opens as stored now: the visit, and per form its response id, stored
    items and the answers as shown."""

    visit: Visit
    responses: Mapping[str, int]
    stored: Mapping[str, Mapping[str, ItemValue]]
    shown: Mapping[str, Mapping[str, str]]


def _seen(s: Session, opened: _Opened) -> _Seen:
    p, study = opened.participant, opened.definition
    forms = study.forms
    responses: dict[str, int] = {}
    if forms:
        for rid, instrument in s.execute(
            select(Response.id, Response.instrument)
            .where(
                Response.participant_id == p.id,
                Response.timepoint_id == study.timepoint_id,
                Response.session_id.is_(None),
                Response.instrument.in_(sorted(forms)),
                Response.repeat_instance == 0,
            )
            .order_by(Response.id)
        ):
            responses.setdefault(instrument, rid)
    by_id = stored_items(s, sorted(responses.values())) if responses else {}
    stored = {name: by_id.get(rid, {}) for name, rid in responses.items()}
    shown = {name: _shown_all(items) for name, items in stored.items()}
    pages = _pages([Page(k, layout, {}) for k, layout in enumerate(study.layouts, start=1)], shown)
    wording = study.consent
    agreed = _consent_versions(s, p)
    consented = wording.version in agreed if wording is not None else bool(agreed)
    visit = Visit(
        study.title,
        p.study_code,
        study.timepoint,
        wording,
        consented,
        p.status,
        pages,
        renewal=not consented and bool(agreed),
    )
    return _Seen(visit, responses, stored, shown)


def _shown_all(items: Mapping[str, ItemValue]) -> dict[str, str]:
    return {k: _shown(v) for k, v in items.items()}


def _pages(pages: Sequence[Page], shown: Mapping[str, Mapping[str, str]]) -> tuple[Page, ...]:
    """``pages`` with the answers of ``shown`` (form -> item -> answer as shown)."""
    return tuple(
        Page(
            page.number,
            page.layout,
            {
                q.item: shown[page.layout.instrument][q.item]
                for q in page.layout.questions
                if q.item in shown.get(page.layout.instrument, {})
            },
        )
        for page in pages
    )
