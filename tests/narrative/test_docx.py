"""Reading .docx documents: paragraphs as lines (a Teams transcript reads as its text form) and
clear refusals of files that are not Word documents."""

from __future__ import annotations

import io
import zipfile

import pytest

from peerlens.narrative import BinaryInputError, EmptyInputError, analyze, docx_text

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx(*paragraphs: str, part: str = "word/document.xml", prolog: str = "") -> bytes:
    body = "".join(paragraphs)
    xml = f'{prolog}<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(part, xml)
    return buf.getvalue()


def _p(*runs: str) -> str:
    return "<w:p>" + "".join(f"<w:r>{r}</w:r>" for r in runs) + "</w:p>"


def test_paragraphs_runs_tabs_and_breaks_become_text() -> None:
    data = _docx(
        _p("<w:t>Me </w:t>", '<w:t xml:space="preserve">too.</w:t>'),
        _p("<w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t>"),
    )
    assert docx_text(data, "s.docx") == "Me too.\na\tb\nc"


def test_a_teams_transcript_docx_is_analysed_as_a_transcript() -> None:
    data = _docx(
        _p("<w:t>Sam Smith   0:04</w:t>"),
        _p("<w:t>Me too, I felt exactly the same when I was in hospital.</w:t>"),
        _p("<w:t>Alex Jones   0:09</w:t>"),
        _p("<w:t>Thanks, that helps.</w:t>"),
    )
    result = analyze(docx_text(data, "t.docx"), transcript=True, speaker="Sam", source="t.docx")
    assert result.speaker == "Sam Smith"
    assert [s.label for s in result.sentences] == ["connection"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"plain text, not a zip", "not a readable ZIP container"),
        (_docx(_p("<w:t>x</w:t>"), part="xl/workbook.xml"), "no word/document.xml"),
        (_docx(_p("<w:t>x</w:t>"), prolog='<!DOCTYPE d [<!ENTITY a "aa">]>'), "DTD"),
        (_docx(_p("<w:t>x</w:t>"))[:-40], "not a readable ZIP container"),
    ],
)
def test_files_that_are_not_word_documents_are_refused_by_name(data: bytes, message: str) -> None:
    with pytest.raises(BinaryInputError, match=message) as err:
        docx_text(data, "notes.docx")
    assert str(err.value).startswith("notes.docx: ")


def test_a_document_without_text_is_empty() -> None:
    with pytest.raises(EmptyInputError, match=r"empty\.docx: the document has no text"):
        docx_text(_docx(_p("<w:t>  </w:t>")), "empty.docx")
