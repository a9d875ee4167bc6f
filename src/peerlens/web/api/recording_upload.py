"""Uploading an ECG or RR recording for a participant: the dashboard's recording import, for
scripts.

Before a byte of the body is read, the study API is asked whether the token's caller may store
a recording for the participant (:func:`peerlens.study.check_operation`, the token's scopes
included): a caller who may not is refused as :func:`~peerlens.study.add_recording` would refuse
them, with nothing received or stored.

The request is ``multipart/form-data`` with the dashboard form's fields
(:class:`~peerlens.web.api.models.RecordingUpload`): one file in ``files``, or a WFDB record as
several ``files`` parts (its ``.hea`` and its signal files). It is streamed to a private folder
of the upload area as it arrives (:func:`peerlens.web.streaming.stream_form`, under the
settings' ``max_import_bytes``), never held in memory, given to
:func:`peerlens.study.add_recording` with the token's caller (which decides what the caller may
store, and refuses a file the ECG readers cannot read), and the folder deleted. Refusals carry
the dashboard's and the CLI's words, with the private folder taken out of the paths they name;
nothing is stored.

=====================================  ======  =======================================
refusal                                status  ``error.code`` (``error.where``)
a body over the size limit             413     ``too_large``
no file, several without one ``.hea``  422     ``invalid_upload`` (``field``)
two files of one name, too many files  422     ``invalid_upload``
a file the ECG readers cannot read     422     ``unreadable`` (``field``, ``file``)
=====================================  ======  =======================================

Anything else the study API refuses answers as everywhere in the API (:mod:`.errors`): another
site's participant 404, a token without the ``write`` scope 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from peerlens import PeerlensError
from peerlens.study import (
    ConsentNeeded,
    NotFound,
    PermissionDenied,
    TamperedError,
    add_recording,
    check_operation,
)
from peerlens.web.api.deps import ApiCaller, StudyName
from peerlens.web.api.errors import ApiError, ErrorBody
from peerlens.web.api.models import RecordingOut, RecordingUpload, RecordingWindowOut
from peerlens.web.deps import Settings, StoreDep
from peerlens.web.recording_upload import (
    RecordingFormError,
    StoredRecording,
    recording_path,
    store_recording,
    without_folder,
)
from peerlens.web.streaming import StreamedForm, UploadTooLarge, stream_form
from peerlens.web.upload_area import upload_folder
from peerlens.web.uploads import UploadError

router = APIRouter(tags=["data"])

Code = Annotated[str, Path(min_length=1, max_length=100, description="A participant's code.")]

#: The request body, for the schema (the endpoint reads the body itself, as a stream).
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": RecordingUpload.model_json_schema(),
                "encoding": {"files": {"contentType": "application/octet-stream"}},
            }
        },
    }
}


def _token_only(fields: Mapping[str, str]) -> bool:
    """Every form is taken: the bearer token is the credential (no cookie, so no CSRF)."""
    return True


def _named_file(message: str, form: StreamedForm) -> str | None:
    """The sent file ``message`` names (a WFDB record also by its record name), if any."""
    try:
        path = recording_path(form.files.get("files", []))
    except RecordingFormError:
        return None
    for name in (path.name, path.stem):
        if message.startswith(f"{name}:") or f" {name}:" in message:
            return path.name
    return None


def _refusal(exc: PeerlensError, form: StreamedForm, folder: FilePath) -> Exception:
    """What the API answers for ``exc``, raised while streaming or storing the upload."""
    if isinstance(exc, PermissionDenied | NotFound | ConsentNeeded | TamperedError):
        return exc  # as everywhere in the API (errors.py)
    message = without_folder(str(exc), folder)
    if isinstance(exc, UploadTooLarge):
        return ApiError(413, "too_large", message)
    if isinstance(exc, RecordingFormError):
        return ApiError(422, "invalid_upload", message, {"field": exc.field})
    if isinstance(exc, UploadError):
        return ApiError(422, "invalid_upload", message)
    name = _named_file(message, form)
    if name is not None or str(folder) in str(exc):
        return ApiError(422, "unreadable", message, {"field": "files", "file": name or ""})
    return exc


def _out(stored: StoredRecording) -> RecordingOut:
    return RecordingOut(
        id=stored.id,
        sha256=stored.sha256,
        file=stored.path.name,
        participant=stored.participant,
        kind=stored.kind,
        session=stored.session,
        device=stored.device,
        sampling_rate_hz=stored.sampling_rate_hz,
        timepoint=stored.timepoint,
        windows=[RecordingWindowOut(label=a, start_s=b, end_s=c) for a, b, c in stored.windows],
    )


@router.post(
    "/studies/{study}/participants/{participant}/recordings",
    response_model=RecordingOut,
    status_code=201,
    responses={413: {"model": ErrorBody, "description": "The upload is over the size limit"}},
    openapi_extra=_BODY,
)
async def upload_recording(
    request: Request,
    study: StudyName,
    participant: Code,
    caller: ApiCaller,
    store: StoreDep,
    settings: Settings,
) -> RecordingOut:
    """Store an ECG or RR recording for a participant (the dashboard's recording import; needs
    the ``write`` scope). The files are read as ``derive`` will read them: one the ECG readers
    cannot read is refused with their message, and nothing is stored."""
    await run_in_threadpool(
        check_operation, store, study, add_recording, participant=participant, caller=caller
    )
    form = StreamedForm()
    async with upload_folder(settings, store, study) as folder:
        try:
            form = await stream_form(
                request, folder, max_bytes=settings.max_import_bytes, allowed=_token_only
            )
            stored = await run_in_threadpool(
                store_recording, store, study, form, caller, participant=participant
            )
        except PeerlensError as exc:
            raise _refusal(exc, form, folder) from None
    return _out(stored)
