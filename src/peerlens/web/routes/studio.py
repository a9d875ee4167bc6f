"""The story studio of PS workers: check a story (typed, pasted or uploaded), see every sentence
labelled with its reasons and a reframing hint on comparisons, edit and re-check, mark "I
disagree", and follow the connection index over time (a worker their own, a trainer each
trainee's).

Each route passes the signed-in account on as the caller of a :mod:`peerlens.study` function,
which checks it; a story or worker the caller may not see is refused as one that does not
exist. Every POST carries the session's CSRF token (:data:`~peerlens.web.deps.StaffForm`, and
:data:`~peerlens.web.deps.StaffUpload` for the form that may carry a file).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from peerlens import PeerlensError
from peerlens.narrative import LABELS, ModelArtifactError
from peerlens.narrative.report import LABEL_ICONS, LABEL_NAMES
from peerlens.study import (
    Caller,
    NotFound,
    PermissionDenied,
    Store,
    StoredStory,
    StudioWorker,
    connection_over_time,
    list_studies,
    mark_disagreement,
    read_story,
    save_story,
    studio_workers,
)
from peerlens.web.deps import StaffCaller, StaffForm, StaffMember, StaffUpload, StoreDep
from peerlens.web.pages import render
from peerlens.web.plots import connection_plot
from peerlens.web.uploads import SUFFIXES, display_name, upload_text

router = APIRouter(prefix="/studio")


@router.get("", response_class=HTMLResponse, name="studio_start")
def start(request: Request, caller: StaffCaller, store: StoreDep) -> Response:
    """The caller's studies: straight into the studio when there is one."""
    studies = list_studies(store, caller=caller)
    if len(studies) == 1:
        return _redirect(request, "studio", study=studies[0]["name"])
    return render(request, "studio_start.html", studies=studies, title="Story studio")


@router.get("/{study}", response_class=HTMLResponse, name="studio")
def studio(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, staff: StaffMember
) -> HTMLResponse:
    """The caller's studio: their own stories and plot (a PS worker), the workers they train or
    whose site they work at."""
    return _studio(request, study, caller, store, staff.csrf)


@router.post("/{study}/stories", name="check_story")
async def check_story(
    request: Request,
    study: str,
    caller: StaffCaller,
    store: StoreDep,
    staff: StaffMember,
    form: StaffUpload,
) -> Response:
    """Analyse and save a story (typed, pasted or uploaded): on to its page, or back to the
    form with what is wrong and the text kept."""
    typed = _field(form, "text")
    revises = _int(_field(form, "revises"))
    speaker = _field(form, "speaker").strip() or None
    transcript = _field(form, "transcript") == "yes"
    upload = form.get("file")
    try:
        told_on = _date(_field(form, "told_on"))
        if isinstance(upload, UploadFile) and upload.filename:
            source = display_name(upload)
            text = await upload_text(upload)
            # Subtitle files are always transcripts; a Word document may be either.
            transcript = transcript or source.lower().endswith((".vtt", ".srt"))
        else:
            source, text = "typed", typed
        story_id = await run_in_threadpool(
            save_story,
            store,
            study,
            text,
            told_on=told_on,
            source=source,
            transcript=transcript,
            speaker=speaker,
            revises=revises,
            caller=caller,
        )
    except (PermissionDenied, ModelArtifactError):
        raise  # the app's handlers answer these (a broken model is the server's, not the text's)
    except PeerlensError as exc:
        why = str(exc)
        values = {
            "text": typed,
            "told_on": _field(form, "told_on"),
            "speaker": speaker or "",
            "transcript": transcript,
        }
        if revises is not None:
            story = await run_in_threadpool(read_story, store, revises, caller=caller)
            return await run_in_threadpool(
                lambda: _story_page(
                    request, store, story, caller, staff.csrf, error=why, values=values
                )
            )
        return await run_in_threadpool(
            lambda: _studio(request, study, caller, store, staff.csrf, error=why, values=values)
        )
    return _redirect(request, "story", study=study, story_id=story_id)


@router.get("/{study}/stories/{story_id}", response_class=HTMLResponse, name="story")
def story(
    request: Request,
    study: str,
    story_id: int,
    caller: StaffCaller,
    store: StoreDep,
    staff: StaffMember,
    marked: int | None = None,
) -> HTMLResponse:
    """A story's sentences with their labels, reasons and hints, and the forms to disagree and
    to edit and re-check."""
    stored = read_story(store, story_id, caller=caller)
    if stored.study != study:
        raise NotFound(f"unknown story {story_id}")
    return _story_page(request, store, stored, caller, staff.csrf, marked=marked)


@router.post("/{study}/stories/{story_id}/disagree", name="disagree")
async def disagree(
    request: Request,
    study: str,
    story_id: int,
    caller: StaffCaller,
    store: StoreDep,
    staff: StaffMember,
    form: StaffForm,
) -> Response:
    """Store an "I disagree" mark on one sentence: back to the story at that sentence."""
    position = _int(_field(form, "position"))
    label = _field(form, "label")
    note = _field(form, "note")
    if position is None:
        raise NotFound(f"unknown story {story_id}")
    try:
        await run_in_threadpool(
            mark_disagreement, store, story_id, position, label, note=note, caller=caller
        )
    except PermissionDenied:
        raise
    except PeerlensError as exc:
        stored = await run_in_threadpool(read_story, store, story_id, caller=caller)
        why = f"Sentence {position + 1}: {exc}"
        return await run_in_threadpool(
            lambda: _story_page(request, store, stored, caller, staff.csrf, error=why)
        )
    url = request.url_for("story", study=study, story_id=story_id)
    return RedirectResponse(f"{url.path}?marked={position}#sentence-{position + 1}", 303)


@router.get("/{study}/workers/{code}", response_class=HTMLResponse, name="worker")
def worker(
    request: Request, study: str, code: str, caller: StaffCaller, store: StoreDep
) -> HTMLResponse:
    """One PS worker's connection index over time and their practice stories (for a trainer,
    a researcher, or the worker themselves)."""
    frame = connection_over_time(store, study, code, caller=caller)
    return render(
        request,
        "studio_worker.html",
        title=f"PS worker {code}",
        study=study,
        code=code,
        **_timeline(frame),
    )


# ------------------------------------------------------------------------------ helpers


def _studio(
    request: Request,
    study: str,
    caller: Caller,
    store: Store,
    csrf: str,
    *,
    error: str | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    workers = studio_workers(store, study, caller=caller)
    own: StudioWorker | None = next((w for w in workers if w.relation == "self"), None)
    others = [w for w in workers if w.relation != "self"]
    timeline = _timeline(connection_over_time(store, study, own.code, caller=caller)) if own else {}
    return render(
        request,
        "studio.html",
        422 if error else 200,
        title="Story studio",
        study=study,
        own=own,
        others=others,
        csrf=csrf,
        error=error,
        values=values or {"told_on": dt.date.today().isoformat()},
        suffixes=", ".join(SUFFIXES),
        **timeline,
    )


def _timeline(frame: Any) -> dict[str, Any]:
    rows = [
        {
            "date": r["date"].isoformat(),
            "kind": r["kind"],
            "story": None if _nan(r["story"]) else int(r["story"]),
            "source": r["source"],
            "n": int(r["n_sentences"]),
            "index": _fmt(r["connection_index"]),
            "ci": _ci(r["ci_low"], r["ci_high"]),
        }
        for r in frame.to_dict(orient="records")
    ]
    return {"timeline": rows, "plot": connection_plot(frame)}


def _story_page(
    request: Request,
    store: Store,
    stored: StoredStory,
    caller: Caller,
    csrf: str,
    *,
    marked: int | None = None,
    error: str | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    relation = next(
        (
            w.relation
            for w in studio_workers(store, stored.study, caller=caller)
            if w.code == stored.worker
        ),
        "site",
    )
    sentences = [
        {
            "number": x.position + 1,
            "position": x.position,
            "text": x.text,
            "label": x.label,
            "name": LABEL_NAMES[x.label],
            "icon": LABEL_ICONS[x.label],
            "confidence": f"{x.confidence:.2f}",
            "cues": list(x.cues),
            "hint": x.hint,
            "mixed": x.mixed,
            "speaker": x.speaker,
            "disagreed": LABEL_NAMES.get(x.disagreed or "", None),
            "note": x.note,
            "others": [(k, LABEL_NAMES[k]) for k in LABELS if k != x.label],
        }
        for x in stored.sentences
    ]
    rows = [
        {"name": LABEL_NAMES[k], "icon": LABEL_ICONS[k], "count": stored.counts.get(k, 0)}
        for k in LABELS
    ]
    return render(
        request,
        "studio_story.html",
        422 if error else 200,
        title=f"Story of {stored.told_on.isoformat()}",
        study=stored.study,
        story=stored,
        sentences=sentences,
        rows=rows,
        index=_fmt(stored.connection_index),
        ci=_ci(stored.ci_low, stored.ci_high),
        ci_method={
            "bootstrap": "bootstrap over sentences",
            "wilson": "Wilson interval: too few sentences for a bootstrap",
        }.get(stored.ci_method, ""),
        marked=marked + 1 if marked is not None else None,
        csrf=csrf,
        relation=relation,
        suffixes="",
        error=error,
        values=values or {"text": stored.text, "told_on": stored.told_on.isoformat()},
    )


def _redirect(request: Request, name: str, **params: Any) -> RedirectResponse:
    # A path, not an absolute URL: right behind a reverse proxy whatever its scheme.
    return RedirectResponse(request.url_for(name, **params).path, status_code=303)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise PeerlensError(
            f"date {value!r}: give the day the story was told as a date (YYYY-MM-DD)"
        ) from None


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: object) -> str:
    return "n/a" if _nan(value) else f"{float(value):.2f}"  # type: ignore[arg-type]


def _ci(low: object, high: object) -> str:
    return "" if _nan(low) or _nan(high) else f"{float(low):.2f} to {float(high):.2f}"  # type: ignore[arg-type]
