"""Stories: analysing a text (nothing stored) and the story studio of PS workers (the workers
the caller may open, a worker's connection index over time, a story, saving one's own story,
and "I disagree" marks)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path

from peerlens.study import (
    StoredStory,
    analyse_text,
    connection_over_time,
    mark_disagreement,
    read_story,
    save_story,
    studio_workers,
)
from peerlens.web.api.deps import ApiCaller, BoundedRoute, StudyName
from peerlens.web.api.models import (
    AnalysedSentence,
    Analysis,
    AnalysisIn,
    DisagreementIn,
    Done,
    Row,
    SentenceOut,
    StoryCreated,
    StoryIn,
    StoryOut,
    WorkerOut,
)
from peerlens.web.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, paginate
from peerlens.web.api.rows import records
from peerlens.web.deps import StoreDep

router = APIRouter(route_class=BoundedRoute, tags=["stories"])

StoryId = Annotated[int, Path(ge=1, le=2**62, description="A stored story's id.")]
Worker = Annotated[str, Path(min_length=1, max_length=100, description="A PS worker's code.")]


def _number(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@router.post("/stories/analyse", response_model=Analysis)
def analyse(body: AnalysisIn, caller: ApiCaller, store: StoreDep) -> Analysis:
    """Label each sentence of a text (connection, upward, downward, neutral) with its cues and
    reframing hint, and summarise it; nothing is stored."""
    result = analyse_text(
        store, body.text, transcript=body.transcript, speaker=body.speaker, caller=caller
    )
    summary = result.summary
    return Analysis(
        sentences=[
            AnalysedSentence(
                position=x.position,
                text=x.text,
                label=x.label,
                confidence=_number(float(x.confidence)),
                cues=list(x.cues),
                hint=x.hint,
                mixed=bool(x.mixed),
                speaker=x.speaker,
            )
            for x in result.sentences
        ],
        n_sentences=summary.n_sentences,
        counts=dict(summary.counts),
        connection_index=_number(summary.connection_index),
        ci_low=_number(summary.ci_low),
        ci_high=_number(summary.ci_high),
        ci_method=summary.ci_method,
        model_version=result.model_version,
        unsupported=len(result.unsupported),
    )


@router.get("/studies/{study}/studio/workers", response_model=list[WorkerOut])
def workers(study: StudyName, caller: ApiCaller, store: StoreDep) -> list[WorkerOut]:
    """The PS workers whose story studio the caller may open, and how."""
    return [
        WorkerOut(code=w.code, site=w.site, relation=w.relation)
        for w in studio_workers(store, study, caller=caller)
    ]


@router.get("/studies/{study}/studio/workers/{worker}/connection", response_model=Page[Row])
def connection(
    study: StudyName,
    worker: Worker,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """A PS worker's connection index over time (practice stories and analysed sessions)."""
    frame = connection_over_time(store, study, worker, caller=caller)
    return paginate(records(frame), limit, cursor)


@router.post("/studies/{study}/stories", response_model=StoryCreated, status_code=201)
def save(study: StudyName, body: StoryIn, caller: ApiCaller, store: StoreDep) -> StoryCreated:
    """Analyse and store a practice story of the caller's own (a PS worker's account)."""
    story = save_story(
        store,
        study,
        body.text,
        told_on=body.told_on,
        source="api",
        transcript=body.transcript,
        speaker=body.speaker,
        revises=body.revises,
        caller=caller,
    )
    return StoryCreated(id=story)


def _story(story: StoredStory) -> StoryOut:
    return StoryOut(
        id=story.id,
        study=story.study,
        worker=story.worker,
        told_on=story.told_on,
        source=story.source,
        speaker=story.speaker,
        text=story.text,
        sentences=[
            SentenceOut(
                position=x.position,
                text=x.text,
                label=x.label,
                confidence=_number(x.confidence),
                cues=list(x.cues),
                hint=x.hint,
                mixed=x.mixed,
                speaker=x.speaker,
                disagreed=x.disagreed,
                note=x.note,
            )
            for x in story.sentences
        ],
        counts=dict(story.counts),
        n_sentences=story.n_sentences,
        connection_index=_number(story.connection_index),
        ci_low=_number(story.ci_low),
        ci_high=_number(story.ci_high),
        ci_method=story.ci_method,
        model_version=story.model_version,
        revises=story.revises,
        replaced_by=story.replaced_by,
    )


@router.get("/stories/{story_id}", response_model=StoryOut)
def story(story_id: StoryId, caller: ApiCaller, store: StoreDep) -> StoryOut:
    """A stored story with its labelled sentences (and the caller's own "I disagree" marks)."""
    return _story(read_story(store, story_id, caller=caller))


@router.post("/stories/{story_id}/disagreements", response_model=Done)
def disagree(story_id: StoryId, body: DisagreementIn, caller: ApiCaller, store: StoreDep) -> Done:
    """Mark "I disagree" on one sentence's label, proposing another (replaces an earlier mark
    of the caller's on that sentence)."""
    mark_disagreement(store, story_id, body.position, body.label, note=body.note, caller=caller)
    return Done()
