"""The streamed import form: files written byte for byte whatever the chunking, never held
whole in memory, refused past the limit or before the CSRF token, names without folders."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import Message

from peerlens.web.streaming import StreamedForm, UploadTooLarge, stream_form
from peerlens.web.uploads import UploadError

BOUNDARY = "----peerlens-test"


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (
        "" if filename is None else f'; filename="{filename}"'
    )
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def _end() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def _request(chunks: Iterator[bytes], length: int | None = None) -> Request:
    headers = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))

    async def receive() -> Message:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


def _token_ok(fields: Mapping[str, str]) -> bool:
    return fields.get("csrf") == "good"


def _stream(request: Request, folder: Path, max_bytes: int = 2**30) -> StreamedForm:
    return asyncio.run(stream_form(request, folder, max_bytes=max_bytes, allowed=_token_ok))


def _pieces(body: bytes, size: int) -> Iterator[bytes]:
    return (body[i : i + size] for i in range(0, len(body), size))


@pytest.mark.parametrize("size", [1, 7, 64, 65536])
def test_files_and_fields_arrive_whole_whatever_the_chunks(tmp_path: Path, size: int) -> None:
    # A file holding what looks like boundaries and CRLFs, in pieces that split them.
    data = (b"\r\n--" + BOUNDARY.encode() + b"x\r\n\x00\xff") * 50
    body = (
        _part("csrf", b"good")
        + _part("participant", "Ä1".encode())
        + _part("files", data, "C:\\Users\\ana\\..\\rec.hea")
        + _part("files", b"", "")  # a second file input left empty
        + _end()
    )
    folder = tmp_path / f"c{size}"
    folder.mkdir()
    form = _stream(_request(_pieces(body, size), len(body)), folder)
    assert form.fields == {"csrf": "good", "participant": "Ä1"}
    assert form.files == {"files": [folder / "rec.hea"]}
    assert (folder / "rec.hea").read_bytes() == data
    assert [p.name for p in folder.iterdir()] == ["rec.hea"]


def test_a_large_file_is_never_held_in_memory(tmp_path: Path) -> None:
    megabytes = 32
    block = bytes(range(256)) * 256  # 64 kB

    def chunks() -> Iterator[bytes]:
        yield _part("csrf", b"good") + _part("files", b"", "ecg.edf")[:-2]
        for _ in range(megabytes * 16):
            yield block
        yield b"\r\n" + _end()

    tracemalloc.start()
    try:
        form = _stream(_request(chunks()), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert form.files["files"][0].stat().st_size == megabytes * 2**20
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MB held while streaming {megabytes} MB"


def test_past_the_limit_it_stops_reading(tmp_path: Path) -> None:
    body = _part("csrf", b"good") + _part("files", b"x" * 5000, "a.edf") + _end()
    with pytest.raises(UploadTooLarge, match="larger than"):
        _stream(_request(_pieces(body, 100), len(body)), tmp_path, max_bytes=1000)
    sent = iter(_pieces(body, 100))  # without a stated length: counted as it arrives
    with pytest.raises(UploadTooLarge):
        _stream(_request(sent), tmp_path, max_bytes=1000)
    assert len(list(sent)) > 30  # it stopped early, not after reading everything


def test_a_file_before_the_token_or_a_wrong_token_is_refused_unwritten(tmp_path: Path) -> None:
    for body in (
        _part("files", b"ECG", "a.edf") + _part("csrf", b"good") + _end(),
        _part("csrf", b"bad") + _part("files", b"ECG", "a.edf") + _end(),
        _part("csrf", b"bad") + _end(),
    ):
        with pytest.raises(HTTPException) as refused:
            _stream(_request(iter([body])), tmp_path)
        assert refused.value.status_code == 403
        assert list(tmp_path.iterdir()) == []


def test_two_files_of_one_name_are_refused(tmp_path: Path) -> None:
    body = _part("csrf", b"good") + _part("f", b"1", "a.csv") + _part("f", b"2", "x/a.csv") + _end()
    with pytest.raises(UploadError, match=r"a\.csv: two files of this name"):
        _stream(_request(iter([body])), tmp_path)
