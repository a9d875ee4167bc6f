"""A study's data: questionnaire responses (read and submit), derived results (scores, HRV,
story labels), HRV recordings with their windows and beats, and exports by tier (the same
files as the dashboard's export page, audited the same way)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from peerlens.study import (
    derived_frame,
    export_frame,
    import_responses,
    recording_beats,
)
from peerlens.web.api.deps import ApiCaller, BoundedRoute, StudyName
from peerlens.web.api.errors import ApiError
from peerlens.web.api.models import ExportIn, ImportResult, ProblemOut, ResponsesIn, Row
from peerlens.web.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, paginate
from peerlens.web.api.rows import records
from peerlens.web.deps import StoreDep
from peerlens.web.routes.studies import FORMATS, exported_file

router = APIRouter(route_class=BoundedRoute, tags=["data"])

Code = Annotated[str, Path(min_length=1, max_length=100, description="A participant's code.")]
Sha = Annotated[
    str,
    Path(
        min_length=12,
        max_length=64,
        pattern="^[0-9a-fA-F]+$",
        description="The recording's sha256 (a unique prefix of at least 12 hex digits).",
    ),
]
Tier = Annotated[
    Literal["full", "remove_identifiers", "deidentified"],
    Query(description="The export tier to read at (as for an export)."),
]
#: The derived results that can be read (``peerlens.study.derived_frame``'s views).
What = Literal["scores", "hrv", "story", "sentences"]
#: The export file types, for the OpenAPI schema.
_EXPORT_CONTENT = {
    media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
    for _, _, media in FORMATS.values()
}


@router.get("/studies/{study}/responses", response_model=Page[Row])
def responses(
    study: StudyName,
    caller: ApiCaller,
    store: StoreDep,
    tier: Tier = "deidentified",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """Stored questionnaire items, one row per item (the tidy export's ``item`` rows at
    ``tier``; needs the ``export`` scope and the export right at that tier)."""
    frame = export_frame(store, study, tier=tier, caller=caller)
    return paginate(records(frame[frame["kind"] == "item"]), limit, cursor)


@router.post("/studies/{study}/responses", response_model=ImportResult)
def submit_responses(
    study: StudyName, body: ResponsesIn, caller: ApiCaller, store: StoreDep
) -> ImportResult:
    """Store questionnaire responses (all or nothing; the same checks as a response file: an
    unknown participant, a value out of range, a row twice, an unknown column reject every
    row, with each problem's 1-based row and column in ``error.where.problems``)."""
    columns = list(dict.fromkeys(c for row in body.rows for c in row))
    frame = pd.DataFrame(
        [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in body.rows],
        columns=columns,
    )
    with tempfile.TemporaryDirectory(prefix="peerlens-api-") as folder:
        path = FilePath(folder) / "rows.csv"
        frame.to_csv(path, index=False)
        # A rejection names the body's rows and columns, never this file (see errors.py).
        summary = import_responses(
            store,
            study,
            path,
            timepoint=body.timepoint,
            session=body.session,
            instrument=body.instrument,
            caller=caller,
            reason=body.reason,
        )
    return ImportResult(
        sha256=summary.sha256,
        rows=summary.rows,
        new=summary.new,
        updated=summary.updated,
        unchanged=summary.unchanged,
        warnings=[
            ProblemOut(row=w.row, column=w.column, reason=w.reason) for w in summary.warnings
        ],
    )


@router.get("/studies/{study}/results/{what}", response_model=Page[Row])
def results(
    study: StudyName,
    what: What,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """Derived results, each row marked current or stale: ``scores`` (one row per score),
    ``hrv`` (one row per recording window), ``story`` (per transcript version) or
    ``sentences`` (per labelled sentence, without its text)."""
    return paginate(records(derived_frame(store, study, what, caller=caller)), limit, cursor)


@router.get("/studies/{study}/recordings", response_model=Page[Row])
def recordings(
    study: StudyName,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """Every analysed HRV recording: its whole-recording row (validity, reason, metrics)."""
    frame = derived_frame(store, study, "hrv", caller=caller)
    return paginate(records(frame[frame["label"] == "whole"]), limit, cursor)


@router.get(
    "/studies/{study}/recordings/{participant}/{recording}/windows", response_model=Page[Row]
)
def windows(
    study: StudyName,
    participant: Code,
    recording: Sha,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """One recording's windows (the whole recording first): metrics, validity and reasons."""
    frame = derived_frame(store, study, "hrv", caller=caller)
    mine = frame[
        (frame["participant"] == participant) & frame["recording"].str.startswith(recording.lower())
    ]
    if mine.empty:  # the same answer for another site's participant and no such recording
        raise ApiError(
            404,
            "not_found",
            f"no analysed recording {recording[:12]!r} of participant {participant!r} among yours",
            {"participant": participant, "recording": recording[:12]},
        )
    return paginate(records(mine), limit, cursor)


@router.get("/studies/{study}/recordings/{participant}/{recording}/beats", response_model=Page[Row])
def beats(
    study: StudyName,
    participant: Code,
    recording: Sha,
    caller: ApiCaller,
    store: StoreDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """One recording's beats after artifact correction: time (s), RR interval (ms), source."""
    frame = recording_beats(store, study, participant, recording, caller=caller)
    return paginate(records(frame), limit, cursor)


@router.post(
    "/studies/{study}/exports",
    response_class=Response,
    responses={200: {"content": _EXPORT_CONTENT, "description": "The export file."}},
)
def export(study: StudyName, body: ExportIn, caller: ApiCaller, store: StoreDep) -> Response:
    """The study exported at a tier, as a file (the dashboard's export; audited, and refused
    beyond the caller's export right; needs the ``export`` scope)."""
    data = exported_file(store, study, body.tier, body.format, caller)
    _, suffix, media = FORMATS[body.format]
    name = quote(f"{study}-{body.tier}{suffix}", safe="")
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )
