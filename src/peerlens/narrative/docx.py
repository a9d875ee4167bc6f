"""Reading the text of a Word document (.docx), such as a Microsoft Teams transcript download.

A .docx file is a ZIP container whose ``word/document.xml`` holds the paragraphs (WordprocessingML,
ECMA-376 Part 1, section 17.3). The text of each paragraph (``w:p``) is the concatenation of its
text runs (``w:t``), tabs (``w:tab``) and line breaks (``w:br``, ``w:cr``); paragraphs become
lines, so a Teams transcript reads as its "saved as text" form (``Sam Smith   0:04`` then the
words) and goes through the same transcript reader. Only the standard library is used: the
document part's size is checked before it is unpacked, and a part declaring a DTD (which Word
never writes) is refused, so no entity expansion takes place.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from xml.etree import ElementTree

from peerlens.narrative._errors import BinaryInputError, EmptyInputError

__all__ = ["MAX_DOCUMENT_XML_BYTES", "docx_text"]

#: The largest unpacked ``word/document.xml`` read (a two-hour transcript is well under 5 MB).
MAX_DOCUMENT_XML_BYTES = 50 * 1024 * 1024
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BREAKS = {f"{_W}br", f"{_W}cr"}


def docx_text(data: bytes, source: str = "<input>") -> str:
    """The text of a .docx document, one line per paragraph.

    Parameters
    ----------
    data
        The file's bytes.
    source
        The file's name, for error messages.

    Raises
    ------
    BinaryInputError
        Not a .docx (not a ZIP container, or without ``word/document.xml``), damaged, or too
        large once unpacked; the message names ``source`` and what is wrong.
    EmptyInputError
        The document holds no text.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("word/document.xml", '<w:document xmlns:w="http://schemas.openxmlformats.org'
    ...                '/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Me too.</w:t></w:r>'
    ...                '</w:p></w:body></w:document>')
    >>> docx_text(buf.getvalue())
    'Me too.'
    """
    what = f"{source}: not a Word document (.docx)"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as container:
            try:
                info = container.getinfo("word/document.xml")
            except KeyError:
                raise BinaryInputError(f"{what}: it has no word/document.xml") from None
            if info.file_size > MAX_DOCUMENT_XML_BYTES:
                raise BinaryInputError(
                    f"{source}: the document's text part unpacks to {info.file_size:,} bytes, "
                    f"more than the {MAX_DOCUMENT_XML_BYTES:,} read"
                )
            xml = container.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise BinaryInputError(f"{what}: the file is not a readable ZIP container ({exc})") from exc
    if b"<!DOCTYPE" in xml.upper():
        raise BinaryInputError(f"{what}: its text part declares a DTD, which Word never writes")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise BinaryInputError(f"{source}: the document's text part is damaged ({exc})") from exc
    lines = []
    for paragraph in root.iter(f"{_W}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t":
                parts.append(node.text or "")
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in _BREAKS:
                parts.append("\n")
        lines.append("".join(parts))
    text = "\n".join(lines).strip("\n")
    if not text.strip():
        raise EmptyInputError(f"{source}: the document has no text to analyse")
    return text
