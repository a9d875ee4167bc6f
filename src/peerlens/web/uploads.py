"""Uploaded transcripts and stories: streamed to a temporary file under a size limit, then read
as text by the narrative package's readers (plain text, WebVTT and SRT as text; .docx through
:func:`peerlens.narrative.docx_text`). Every refusal names the file and what is wrong."""

from __future__ import annotations

import tempfile
from pathlib import PurePath

from starlette.datastructures import UploadFile

from peerlens import PeerlensError
from peerlens.narrative import decode_bytes, docx_text

__all__ = [
    "MAX_UPLOAD_BYTES",
    "SUFFIXES",
    "UploadError",
    "display_name",
    "file_name",
    "upload_text",
]

#: The largest file accepted (an hour's transcript is some 100 kB).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: The file types read, by suffix.
SUFFIXES = (".txt", ".vtt", ".srt", ".docx")
_CHUNK = 64 * 1024


class UploadError(PeerlensError):
    """An uploaded file that cannot be read (the message names it and says why)."""


def display_name(upload: UploadFile) -> str:
    """The uploaded file's name without any folder part (never a path on this server)."""
    return file_name(upload.filename or "") or "the uploaded file"


def file_name(sent: str) -> str:
    r"""The name a browser sent for a file, without any folder part, at most 200 characters;
    ``""`` when nothing usable is left (``..``, only a folder).

    Examples
    --------
    >>> file_name(r"C:\Users\ana\ecg.EDF"), file_name("../../etc/passwd"), file_name("..")
    ('ecg.EDF', 'passwd', '')
    """
    name = PurePath(sent.replace("\\", "/")).name.strip()
    return "" if name in ("", ".", "..") else name[:200]


async def upload_text(upload: UploadFile) -> str:
    """The text of an uploaded ``.txt``, ``.vtt``, ``.srt`` or ``.docx`` file.

    The file is copied in chunks to a temporary file that is deleted afterwards, and refused as
    soon as it passes :data:`MAX_UPLOAD_BYTES`.

    Raises
    ------
    UploadError
        A file type not read, a file too large.
    peerlens.narrative.NarrativeError
        A file that is empty, binary, not UTF-8, or not a Word document (for ``.docx``).
    """
    name = display_name(upload)
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UploadError(
            f"{name}: this type of file cannot be read; upload a {', '.join(SUFFIXES[:-1])} "
            f"or {SUFFIXES[-1]} file, or paste the text"
        )
    with tempfile.TemporaryFile() as spool:
        size = 0
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise UploadError(
                    f"{name}: the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
                    "upload a shorter transcript or paste the part to check"
                )
            spool.write(chunk)
        spool.seek(0)
        data = spool.read()
    if suffix == ".docx":
        return docx_text(data, name)
    return decode_bytes(data, name)
