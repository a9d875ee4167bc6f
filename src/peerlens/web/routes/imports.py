"""Imports in the browser: a wide response file (CSV or Excel), a REDCap project (its data
dictionary, then its records export) and an ECG or RR recording (any file the ECG readers read;
a WFDB record as its header with its signal files), each a form on ``/studies/<study>/import``.

Before a byte of the form is read, the study API is asked whether the signed-in caller may
perform the form's import in the study (:func:`peerlens.study.check_operation`): a caller who
may not is refused as the import would refuse them (403), with nothing received or stored.
Each upload is then streamed to a private folder under the study's upload area
(:func:`peerlens.web.streaming.stream_form`, under the size limit of the settings), given to the
same study function as the CLI's command, with the signed-in caller, and deleted. What the
function refuses (every problem with its file, row and column) is shown next to the form it came
from, and nothing is stored; what the caller may import is decided by the study API alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from peerlens import PeerlensError
from peerlens.instruments.columns import column_map_from
from peerlens.study import (
    Caller,
    PermissionDenied,
    Store,
    add_recording,
    check_operation,
    import_data_dictionary,
    import_records,
    import_responses,
    study_design,
)
from peerlens.study.redcap import DATE_FORMATS
from peerlens.web.deps import SESSION_COOKIE, Settings, StaffCaller, StaffMember, StoreDep
from peerlens.web.pages import render
from peerlens.web.recording_upload import store_recording, without_folder
from peerlens.web.security import csrf_valid
from peerlens.web.settings import WebSettings
from peerlens.web.streaming import StreamedForm, UploadTooLarge, stream_form
from peerlens.web.upload_area import upload_folder
from peerlens.web.uploads import UploadError

router = APIRouter(prefix="/studies")

#: The forms of the import page, in the order shown: form name -> heading.
FORMS = {
    "responses": "Questionnaire responses",
    "dictionary": "REDCap data dictionary",
    "redcap": "REDCap records",
    "recording": "ECG or RR recording",
}

Action = Callable[[Store, str, StreamedForm, Caller], str]


@router.get("/{study}/import", response_class=HTMLResponse, name="imports")
def imports(
    request: Request, study: str, staff: StaffMember, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """The import forms (what the caller may import is checked when they send one)."""
    return _page(request, store, study, staff.caller, settings, 200)


def _page(
    request: Request,
    store: Store,
    study: str,
    caller: Caller,
    settings: WebSettings,
    status: int,
    *,
    form: str = "",
    done: list[str] | None = None,
    problems: list[str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    design = study_design(store, study, caller=caller)
    title = f"Import – {design['title'] or design['name']}"
    return render(
        request,
        "imports.html",
        status,
        title=f"Error: {title}" if problems else title,
        design=design,
        forms=FORMS,
        timepoints=[tp["name"] for tp in design["timepoints"]],
        date_formats=DATE_FORMATS,
        max_mb=f"{settings.max_import_bytes / (1024 * 1024):g}",
        form=form,
        done=done or [],
        problems=problems or [],
        values=values or {},
    )


async def _import(
    request: Request,
    study: str,
    caller: Caller,
    store: Store,
    settings: WebSettings,
    form_name: str,
    action: Action,
    performs: Callable[..., object],
) -> HTMLResponse:
    """Stream the form to a private folder, run ``action`` on it, delete the folder; the page
    again with what was imported, or with the problems next to the form (status 400). Folders
    earlier uploads left behind are swept first.

    ``performs`` is the study function ``action`` calls: the study API is asked first whether
    the caller may perform its operation, so that a caller who may not is refused (403) before
    the form is read."""
    await run_in_threadpool(check_operation, store, study, performs, caller=caller)
    session = request.cookies.get(SESSION_COOKIE, "")
    form = StreamedForm()
    async with upload_folder(settings, store, study) as folder:
        try:
            form = await stream_form(
                request,
                folder,
                max_bytes=settings.max_import_bytes,
                allowed=lambda fields: csrf_valid(settings.secret, session, fields),
            )
            done = await run_in_threadpool(action, store, study, form, caller)
        except PermissionDenied:
            raise
        except PeerlensError as exc:
            problems = _shown(str(exc), folder)
            status = 413 if isinstance(exc, UploadTooLarge) else 400
            values = {k: v for k, v in form.fields.items() if k != "csrf"}
            return await run_in_threadpool(
                lambda: _page(
                    request,
                    store,
                    study,
                    caller,
                    settings,
                    status,
                    form=form_name,
                    problems=problems,
                    values=values,
                )
            )
        shown = _shown(done, folder)
    return await run_in_threadpool(
        lambda: _page(request, store, study, caller, settings, 200, form=form_name, done=shown)
    )


def _shown(message: str, folder: Path) -> list[str]:
    """The lines of a study function's message, as the browser's files read."""
    return without_folder(message, folder).splitlines()


def _file(form: StreamedForm, name: str, what: str) -> Path:
    """The one file sent in input ``name``."""
    path = _optional_file(form, name, what)
    if path is None:
        raise UploadError(f"{what}: choose a file to upload")
    return path


def _optional_file(form: StreamedForm, name: str, what: str) -> Path | None:
    """The file sent in input ``name``, if one was."""
    files = form.files.get(name, [])
    if len(files) > 1:
        raise UploadError(f"{what}: choose one file, not {len(files)}")
    return files[0] if files else None


def _reason(form: StreamedForm) -> str | None:
    return form.text("reason") or None


def _responses(store: Store, study: str, form: StreamedForm, caller: Caller) -> str:
    path = _file(form, "file", "Response file")
    mapping = column_map_from(
        _optional_file(form, "map", "Column map"),
        [line.strip() for line in form.text("items").splitlines() if line.strip()],
    )
    codes = [c.strip() for c in form.text("missing_codes").split(",") if c.strip()]
    summary = import_responses(
        store,
        study,
        path,
        timepoint=form.text("timepoint") or None,
        session=form.text("session") or None,
        instrument=form.text("instrument") or None,
        missing_codes=codes or None,
        columns=mapping or None,
        caller=caller,
        reason=_reason(form),
    )
    return str(summary)


def _dictionary(store: Store, study: str, form: StreamedForm, caller: Caller) -> str:
    path = _file(form, "file", "Data dictionary")
    n = import_data_dictionary(
        store,
        study,
        path,
        allow_identifier_downgrade=form.text("allow_identifier_downgrade") == "yes",
        caller=caller,
        reason=_reason(form),
    )
    return f"{path.name}: {n} field(s) defined"


def _records(store: Store, study: str, form: StreamedForm, caller: Caller) -> str:
    path = _file(form, "file", "Records file")
    summary = import_records(
        store,
        study,
        path,
        create_participants=form.text("create_participants") == "yes",
        date_format=(form.text("date_format") or "YMD").upper(),
        caller=caller,
        reason=_reason(form),
    )
    return str(summary)


def _recording(store: Store, study: str, form: StreamedForm, caller: Caller) -> str:
    stored = store_recording(store, study, form, caller, participant=form.text("participant"))
    return (
        f"{stored.path.name}: stored as recording {stored.id} (sha256 {stored.sha256[:12]}...) "
        f"for {stored.participant}; derive the HRV results to analyse it"
    )


@router.post("/{study}/import/responses", response_class=HTMLResponse, name="import_responses")
async def responses(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """Import a wide response file (CSV or Excel) for one timepoint or PS session."""
    return await _import(
        request, study, caller, store, settings, "responses", _responses, import_responses
    )


@router.post("/{study}/import/dictionary", response_class=HTMLResponse, name="import_dictionary")
async def dictionary(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """Replace the study's REDCap data dictionary with the uploaded one."""
    return await _import(
        request, study, caller, store, settings, "dictionary", _dictionary, import_data_dictionary
    )


@router.post("/{study}/import/redcap", response_class=HTMLResponse, name="import_redcap")
async def redcap(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """Import a REDCap records export (flat CSV, raw values)."""
    return await _import(
        request, study, caller, store, settings, "redcap", _records, import_records
    )


@router.post("/{study}/import/recording", response_class=HTMLResponse, name="import_recording")
async def recording(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """Store an ECG or RR recording (a WFDB record: its header and signal files) for a
    participant."""
    return await _import(
        request, study, caller, store, settings, "recording", _recording, add_recording
    )
