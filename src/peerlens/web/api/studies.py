"""Studies: the list, a study's design (its arms, sites and timepoints), its progress, its
participants by pseudonym (identity only where the caller's role may) and the state of its
derived results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from peerlens.study import (
    derivation_status,
    get_identity,
    list_participants,
    list_studies,
    study_design,
    study_progress,
)
from peerlens.web.api.deps import ApiCaller, StudyName
from peerlens.web.api.models import ParticipantRow, ProgressRow, Row, StudyDesign, StudySummary
from peerlens.web.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, paginate
from peerlens.web.api.rows import records
from peerlens.web.deps import StoreDep

router = APIRouter(tags=["studies"])

Code = Annotated[str, Path(min_length=1, max_length=100, description="A participant's code.")]


@router.get("/studies", response_model=Page[StudySummary])
def studies(
    caller: ApiCaller, store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[StudySummary]:
    """The studies the caller holds any role in, by name."""
    found = [StudySummary(**x) for x in list_studies(store, caller=caller)]
    return paginate(found, limit, cursor)


@router.get("/studies/{study}", response_model=StudyDesign)
def study(study: StudyName, caller: ApiCaller, store: StoreDep) -> StudyDesign:
    """A study's design: arms, sites, timepoints with their instruments, missing codes."""
    return StudyDesign(**study_design(store, study, caller=caller))


@router.get("/studies/{study}/progress", response_model=Page[ProgressRow])
def progress(
    study: StudyName,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ProgressRow]:
    """Every scheduled questionnaire of every participant the caller may see, with its state
    (complete, started, due, overdue, upcoming, stopped)."""
    frame = study_progress(store, study, caller=caller)
    return paginate([ProgressRow.model_validate(r) for r in records(frame)], limit, cursor)


@router.get("/studies/{study}/participants", response_model=Page[ParticipantRow])
def participants(
    study: StudyName,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ParticipantRow]:
    """Participants by pseudonym (a site-scoped caller: their sites' only), by code."""
    frame = list_participants(store, study, caller=caller)
    return paginate([ParticipantRow.model_validate(r) for r in records(frame)], limit, cursor)


@router.get("/studies/{study}/participants/{participant}/identity", response_model=dict[str, str])
def identity(
    study: StudyName, participant: Code, caller: ApiCaller, store: StoreDep
) -> dict[str, str]:
    """A participant's identity-vault fields: only for roles with the identity right at the
    participant's site (and a token with the ``export`` scope)."""
    return get_identity(store, study, participant, caller=caller)


@router.get("/studies/{study}/derived", response_model=list[Row])
def derived(study: StudyName, caller: ApiCaller, store: StoreDep) -> list[Row]:
    """How many derived results (scores, HRV, story labels) are current, stale or missing."""
    return records(derivation_status(store, study, caller=caller))
