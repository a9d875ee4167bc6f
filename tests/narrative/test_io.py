from pathlib import Path

import pytest

from peerlens.narrative import (
    BinaryInputError,
    EmptyInputError,
    InputEncodingError,
    NarrativeError,
    read_text,
)


def test_utf8_with_bom_and_utf16_are_read(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_bytes("\ufeffI felt that too \u2013 honestly.".encode())
    assert read_text(a) == "I felt that too \u2013 honestly."
    b = tmp_path / "b.txt"
    b.write_bytes("me too".encode("utf-16"))
    assert read_text(b) == "me too"


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "empty.txt"
    f.write_bytes(content)
    with pytest.raises(EmptyInputError, match=r"empty\.txt: the file is empty"):
        read_text(f)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"PK\x03\x04rest-of-docx", "ZIP container"),
        (b"%PDF-1.7\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"text\x00with\x00nuls", "NUL bytes"),
    ],
)
def test_binary_files(tmp_path: Path, content: bytes, what: str) -> None:
    f = tmp_path / "story.docx"
    f.write_bytes(content)
    with pytest.raises(BinaryInputError, match=what):
        read_text(f)


def test_latin1_file_names_line_and_byte(tmp_path: Path) -> None:
    f = tmp_path / "old.txt"
    f.write_bytes("first line\ncaf\u00e9 at night".encode("latin-1"))
    with pytest.raises(InputEncodingError, match=r"old\.txt: line 2 \(byte 14\): not valid UTF-8"):
        read_text(f)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(NarrativeError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(NarrativeError, match="is a directory"):
        read_text(tmp_path)


def test_utf16_without_byte_order_mark_is_read() -> None:
    from peerlens.narrative._io import decode_bytes

    text = "Sam: me too, honestly\nAlex: ok\n"
    assert decode_bytes(text.encode("utf-16-le")) == text
    assert decode_bytes(text.encode("utf-16-be")) == text
    # NUL bytes scattered over both offsets are still binary
    with pytest.raises(BinaryInputError):
        decode_bytes(b"ab\x00\x00cd\x00e\x00\x00\x00f")
