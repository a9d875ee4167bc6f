"""A form with large files (an import: responses, a REDCap project, an ECG recording) read from
the request as it arrives: each file written in chunks to a private folder on disk, never held
whole in memory, under a size limit counted as the bytes come in.

Starlette's ``request.form()`` keeps each file in memory up to 1 MB and then in the system's
temporary folder; an import may be a day of Holter ECG, so :func:`stream_form` parses the
multipart body itself (with ``python-multipart``, which Starlette uses too) and writes each file
straight to the folder it is given, under the name the browser sent (so that the study API's
errors name the file as the researcher knows it). The CSRF token must come before the first file:
a form whose files come first, or with a wrong token, is refused before a byte of a file is
written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from peerlens.web.uploads import UploadError, file_name

__all__ = ["MAX_FIELD_BYTES", "MAX_FILES", "StreamedForm", "UploadTooLarge", "stream_form"]

#: The largest text field (a list of windows, a reason) and the most fields and files taken.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 30
#: The most files in one form (a WFDB record: its header and a few signal files).
MAX_FILES = 20


class UploadTooLarge(UploadError):
    """A form larger than the settings allow (answered with 413)."""


@dataclass
class StreamedForm:
    """A submitted form: its text fields and, per file input, the files saved (in the order
    sent; an input left empty has none)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """The field ``name``, stripped (``""`` when absent)."""
        return self.fields.get(name, "").strip()


class _Parts:
    """The callbacks of :class:`MultipartParser`: headers of each part, then its bytes to a file
    (a file input) or to a capped buffer (a text field)."""

    def __init__(
        self, folder: Path, form: StreamedForm, allowed: Callable[[Mapping[str, str]], bool]
    ) -> None:
        self.folder = folder
        self.form = form
        self.allowed = allowed
        self.checked = False
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.buffer = bytearray()
        self.out: IO[bytes] | None = None
        self.skipping = False
        self.n_fields = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
        }

    def part_begin(self) -> None:
        self.headers = {}
        self.buffer = bytearray()
        self.out = None
        self.skipping = False

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        sent = options.get(b"filename")
        if sent is None:
            self.n_fields += 1
            if self.n_fields > MAX_FIELDS:
                raise UploadError("the form has too many fields; nothing was imported")
            return
        if not self.checked:
            self.refuse_forged()
        name = file_name(sent.decode("utf-8", "replace"))
        if not name:  # a file input left empty
            self.skipping = True
            return
        saved = self.form.files.setdefault(self.name, [])
        if sum(len(f) for f in self.form.files.values()) >= MAX_FILES:
            raise UploadError(f"more than {MAX_FILES} files in one form; nothing was imported")
        path = self.folder / name
        if path.exists():
            raise UploadError(f"{name}: two files of this name were sent; nothing was imported")
        saved.append(path)
        self.out = path.open("xb")

    def refuse_forged(self) -> None:
        if not self.allowed(self.form.fields):
            raise HTTPException(403, "This form has expired or did not come from this site.")
        self.checked = True

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.out.write(data[start:end])
        elif not self.skipping:
            self.buffer += data[start:end]
            if len(self.buffer) > MAX_FIELD_BYTES:
                raise UploadError(f"the field {self.name!r} is too long; nothing was imported")

    def part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        elif not self.skipping:
            self.form.fields[self.name] = self.buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


async def stream_form(
    request: Request,
    folder: Path,
    *,
    max_bytes: int,
    allowed: Callable[[Mapping[str, str]], bool],
) -> StreamedForm:
    """Read the request's form, writing its files into ``folder`` as they arrive.

    Parameters
    ----------
    folder
        An empty private folder; the caller deletes it afterwards.
    max_bytes
        The largest body taken: a larger stated length is refused before anything is read, and
        the body is counted while it is read (a client may send more than it said).
    allowed
        Whether the text fields sent so far carry a valid CSRF token; asked before the first
        file is written and once the body is read.

    Raises
    ------
    HTTPException
        403 when ``allowed`` says no (nothing of a file written).
    UploadTooLarge
        A body over ``max_bytes``.
    UploadError
        Too many files or fields, or two files of one
        name.
    """
    length = request.headers.get("content-length", "")
    mb = max_bytes / (1024 * 1024)
    too_large = f"the upload is larger than {mb:g} MB; nothing was imported"
    if length.isdigit() and int(length) > max_bytes:
        raise UploadTooLarge(too_large)
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    form = StreamedForm()
    if kind == b"application/x-www-form-urlencoded":  # a form without a file input
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FIELD_BYTES:
                raise UploadError("the form is too long; nothing was imported")
        form.fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=MAX_FIELDS))
    elif kind == b"multipart/form-data" and options.get(b"boundary"):
        parts = _Parts(folder, form, allowed)
        parser = MultipartParser(options[b"boundary"], parts.callbacks())  # type: ignore[arg-type]
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(too_large)
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError:
            raise UploadError("the form arrived damaged; nothing was imported") from None
        finally:
            parts.close()
    # Anything else is no form at all: without a CSRF token, refused just below.
    if not allowed(form.fields):
        raise HTTPException(403, "This form has expired or did not come from this site.")
    return form
