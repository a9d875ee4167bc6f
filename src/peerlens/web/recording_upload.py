"""An ECG or RR recording uploaded as a streamed form (the dashboard's import form and the API's
upload endpoint alike): which of its files is the recording, its fields read, and the stored
recording, through :func:`peerlens.study.add_recording` with the caller (which decides whether
they may).

The form's fields: ``files`` (one recording file, or a WFDB record's ``.hea`` with its signal
files), ``participant`` (the dashboard's; the API names the participant in its path),
``session``, ``kind`` (``ecg`` or ``rr``), ``device``, ``sampling_rate`` (Hz), ``timepoint``,
``windows`` (one ``LABEL:START_S:END_S`` a line) and ``reason``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from peerlens.study import Caller, Store, StudyError, add_recording
from peerlens.study.sessions import parse_window
from peerlens.web.streaming import StreamedForm
from peerlens.web.uploads import UploadError

__all__ = [
    "RecordingFormError",
    "StoredRecording",
    "recording_path",
    "store_recording",
    "without_folder",
]


class RecordingFormError(UploadError):
    """A recording form field of the wrong form (``field`` names it); nothing was stored."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StoredRecording:
    """A recording stored from a form: the file read (a WFDB record: its header) and what was
    stored for whom."""

    id: int
    sha256: str
    path: Path
    participant: str
    kind: str
    session: str | None
    device: str | None
    sampling_rate_hz: float | None
    timepoint: str | None
    windows: list[tuple[str, float, float]]


def without_folder(message: str, folder: Path) -> str:
    """``message`` with the private upload ``folder`` taken out of the paths it names (so that
    they read as the file that was sent)."""
    return message.replace(f"{folder}{os.sep}", "")


def recording_path(files: list[Path]) -> Path:
    """The file to store: the one uploaded, or a WFDB record's header among its files."""
    if len(files) == 1:
        return files[0]
    headers = [f for f in files if f.suffix.lower() == ".hea"]
    if not files or len(headers) != 1:
        raise RecordingFormError(
            "Recording: choose one recording file, or a WFDB record's .hea file with its "
            "signal files",
            "files",
        )
    return headers[0]


def _rate(form: StreamedForm) -> float | None:
    text = form.text("sampling_rate")
    try:
        return float(text) if text else None
    except ValueError:
        raise RecordingFormError(
            f"sampling rate {text!r}: give a number of Hz", "sampling_rate"
        ) from None


def _windows(form: StreamedForm) -> list[tuple[str, float, float]]:
    try:
        return [parse_window(line) for line in form.text("windows").splitlines() if line.strip()]
    except StudyError as exc:
        raise RecordingFormError(str(exc), "windows") from None


def store_recording(
    store: Store, study: str, form: StreamedForm, caller: Caller, *, participant: str
) -> StoredRecording:
    """Store the recording of a streamed form for ``participant`` (the caller's rights are the
    study API's to enforce).

    Raises
    ------
    RecordingFormError
        No file, several files none or more than one of them a ``.hea``, a sampling rate or a
        window that is no number or window.
    peerlens.PeerlensError
        Whatever :func:`peerlens.study.add_recording` refuses (a file the ECG readers cannot
        read, with their message; another site's participant, as not found; the caller's
        rights); nothing is stored.
    """
    path = recording_path(form.files.get("files", []))
    rate = _rate(form)
    windows = _windows(form)
    kind = form.text("kind") or "ecg"
    session = form.text("session") or None
    device = form.text("device") or None
    timepoint = form.text("timepoint") or None
    rid, sha = add_recording(
        store,
        study,
        path,
        participant=participant,
        session=session,
        kind=kind,
        device=device,
        sampling_rate_hz=rate,
        windows=windows,
        timepoint=timepoint,
        caller=caller,
        reason=form.text("reason") or None,
    )
    return StoredRecording(
        rid, sha, path, participant, kind, session, device, rate, timepoint, windows
    )
