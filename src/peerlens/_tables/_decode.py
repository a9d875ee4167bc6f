"""Bytes to text, with the encoding detected or the file refused: never a silent guess.

Order of decisions:

1. A byte-order mark names the encoding (UTF-32 before UTF-16: ``FF FE 00 00`` is UTF-32-LE).
2. Known binary signatures (zip/xlsx, old .xls, gzip, PDF, Parquet) are refused by name.
3. NUL bytes without a BOM: UTF-16 or UTF-32 text written without a BOM shows them in a fixed
   position of every code unit (the zero high byte of ASCII characters). Only when they are in
   that pattern, and the text decoded that way has line breaks and no control characters, is
   it read; otherwise the file is refused as binary.
4. Otherwise UTF-8 (strict); failing that Windows-1252 with a note, unless the bytes are not
   Windows-1252 either (``81 8D 8F 90 9D`` are undefined) or hold control characters, which
   real text tables do not.

Decoded text never holds NUL characters.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from peerlens._tables._errors import TableNote, TableReadError

#: Leading bytes of formats that are not text tables, with what to tell the user.
_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook?); give workbooks the .xlsx suffix"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook; save it as .xlsx or CSV UTF-8"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"%PDF", "a PDF document, not a table"),
    (b"PAR1", "a Parquet file; give it the .parquet suffix"),
)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

#: How much of a BOM-less file with NUL bytes is inspected for the UTF-16/32 pattern.
_SAMPLE = 1 << 16

#: C0 controls other than tab, LF, CR (and FF/VT, which some editors write): in a file that is
#: not UTF-8 they mean binary data rather than text.
_CONTROL = re.compile(r"[\x01-\x08\x0e-\x1f\x7f]")

_ANY_BREAK = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class Decoded:
    """Decoded text, the encoding's codec name, whether a BOM preceded it, and any note."""

    text: str
    encoding: str
    bom: bool
    note: TableNote | None = None


def _nul_share(sample: bytes, start: int, step: int) -> float:
    part = sample[start::step]
    return part.count(0) / len(part) if part else 0.0


def _bomless_wide(raw: bytes) -> str | None:
    """The UTF-16/32 codec whose NUL pattern the bytes show, else ``None``.

    ASCII characters (every delimiter, newline and digit) have zero high bytes, so in UTF-16-LE
    text the odd bytes are NUL far more often than the even ones (which are NUL only for
    characters such as U+0100 or U+4E00). UTF-32 text of the Basic Multilingual Plane has two
    NUL bytes in every four.
    """
    if len(raw) % 4 == 0:
        sample = raw[: _SAMPLE - _SAMPLE % 4]
        share = [_nul_share(sample, i, 4) for i in range(4)]
        if share[2] > 0.99 and share[3] > 0.99 and share[0] < 0.5:
            return "utf-32-le"
        if share[0] > 0.99 and share[1] > 0.99 and share[3] < 0.5:
            return "utf-32-be"
    if len(raw) % 2 == 0:
        sample = raw[: _SAMPLE - _SAMPLE % 2]
        even, odd = _nul_share(sample, 0, 2), _nul_share(sample, 1, 2)
        if odd >= 0.3 and even <= odd / 10:
            return "utf-16-le"
        if even >= 0.3 and odd <= even / 10:
            return "utf-16-be"
    return None


def _confirmed(raw: bytes, encoding: str) -> str | None:
    """The text if ``raw`` decodes as ``encoding`` into something a table can be: no NUL or
    other control characters, and at least one line break (a wrong byte order turns every line
    break into another character)."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    if "\x00" in text or _CONTROL.search(text) or not _ANY_BREAK.search(text):
        return None
    return text


def _strict(raw: bytes, encoding: str, source: str, what: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TableReadError(
            source, f"{what}, but byte {exc.start} is not valid {encoding.upper()}"
        ) from None


def _line_of(text: str, index: int) -> int:
    return (
        text.count("\n", 0, index) + text.count("\r", 0, index) - text.count("\r\n", 0, index) + 1
    )


def decode_table_bytes(raw: bytes, source: str) -> Decoded:
    """Decode a text table's bytes; see the module docstring for the rules.

    Raises
    ------
    TableReadError
        Binary data, a known non-text format, or bytes that are not valid in the detected
        encoding (nor Windows-1252 when no encoding was detected).
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            text = _strict(raw[len(bom) :], encoding, source, f"starts with a {encoding} BOM")
            _refuse_nul(text, source, encoding)
            return Decoded(text, encoding, bom=True)
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            raise TableReadError(source, f"looks like {what}")
    if b"\x00" in raw:
        wide = _bomless_wide(raw)
        confirmed = _confirmed(raw, wide) if wide else None
        if wide is None or confirmed is None:
            raise TableReadError(
                source,
                "looks like a binary file, not a text table: it holds NUL bytes, and not in the "
                "pattern of UTF-16/UTF-32 text (save it as CSV UTF-8 if it is a table)",
            )
        return Decoded(confirmed, wide, bom=False)
    try:
        return Decoded(raw.decode("utf-8"), "utf-8", bom=False)
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        raise TableReadError(
            source,
            f"not valid UTF-8 (byte {first_bad}) nor Windows-1252; save the file as CSV UTF-8",
        ) from None
    control = _CONTROL.search(text)
    if control:
        raise TableReadError(
            source,
            f"looks like a binary file, not a text table: not valid UTF-8 (byte {first_bad}) "
            f"and holds the control character {control.group()!r} on line "
            f"{_line_of(text, control.start())}",
        )
    line = _line_of(text, first_bad)
    shown = text[first_bad]
    note = TableNote(
        "encoding",
        f"{source}: not valid UTF-8 (byte {first_bad}, line {line}); decoded as Windows-1252, "
        f"which reads that byte as {shown!r}; if that is wrong, save the file as CSV UTF-8",
    )
    return Decoded(text, "cp1252", bom=False, note=note)


def _refuse_nul(text: str, source: str, encoding: str) -> None:
    at = text.find("\x00")
    if at >= 0:
        raise TableReadError(
            source,
            f"looks like a binary file, not a text table: decoded as {encoding}, it holds a NUL "
            f"character on line {_line_of(text, at)}",
        )
