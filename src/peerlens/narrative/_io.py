"""Reading user files as text, with clear errors for empty, binary and mis-encoded files."""

from __future__ import annotations

import codecs
from pathlib import Path

from peerlens.narrative._errors import (
    BinaryInputError,
    EmptyInputError,
    InputEncodingError,
    NarrativeError,
)

__all__ = ["decode_bytes", "read_text"]

# Magic numbers of formats people paste stories in by mistake.
_MAGIC = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP container (for example .docx, .xlsx or .odt)",
    b"\xd0\xcf\x11\xe0": "an old Microsoft Office document (.doc)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"{\\rtf": "an RTF document",
}


def decode_bytes(data: bytes, source: str = "<input>") -> str:
    """Decode a user file to text.

    UTF-8 (with or without a byte-order mark) and UTF-16 (with a byte-order mark, or without one
    when every other byte is zero, as in Windows "Unicode" text of Latin letters) are accepted.

    Raises
    ------
    EmptyInputError
        If there is nothing but white space.
    BinaryInputError
        If the bytes are a known binary format or contain NUL bytes.
    InputEncodingError
        If the bytes are not valid UTF-8; the message gives the byte offset and line.
    """
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise BinaryInputError(
                f"{source}: this is {what}, not plain text; save or export it as .txt first"
            )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputEncodingError(f"{source}: invalid UTF-16 at byte {exc.start}") from exc
    elif (guess := _bomless_utf16(data)) is not None:
        try:
            text = data.decode(guess)
        except UnicodeDecodeError as exc:
            raise InputEncodingError(f"{source}: invalid {guess} at byte {exc.start}") from exc
    else:
        if b"\x00" in data[:8192]:
            raise BinaryInputError(f"{source}: contains NUL bytes; this is a binary file, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InputEncodingError(
                f"{source}: line {line} (byte {exc.start}): not valid UTF-8; re-save the file "
                "as UTF-8 (for example from a word processor: Save as > Plain text > UTF-8)"
            ) from exc
    if not text.strip():
        raise EmptyInputError(f"{source}: the file is empty (no text to analyse)")
    return text


def _bomless_utf16(data: bytes) -> str | None:
    """Name the UTF-16 byte order of text saved without a byte-order mark, else ``None``.

    In UTF-16 text of Latin-script letters every other byte is zero (the high byte), so zeros
    at nearly all odd (little-endian) or all even (big-endian) offsets and none at the others
    mark it; binary files have zeros scattered over both.
    """
    head = data[:8192]
    if len(head) < 4 or len(head) % 2 or b"\x00" not in head:
        return None
    even, odd = head[0::2], head[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zero_odd > 0.6 and zero_even == 0:
        return "utf-16-le"
    if zero_even > 0.6 and zero_odd == 0:
        return "utf-16-be"
    return None


def read_text(path: Path | str) -> str:
    """Read a user's text file (see :func:`decode_bytes` for the checks)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NarrativeError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise NarrativeError(f"{path}: is a directory, not a text file") from exc
    except PermissionError as exc:
        raise NarrativeError(f"{path}: permission denied") from exc
    return decode_bytes(data, str(path))
