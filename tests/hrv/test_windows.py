"""Events files and consecutive windows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from peerlens.hrv import EventsFileError, consecutive_windows, read_events


def test_events_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("label,start,end\nbaseline,0,300\nsession,300,2100\nrecovery,2100,2400\n")
    ev = read_events(path)
    assert ev["label"].tolist() == ["baseline", "session", "recovery"]
    assert ev["start_s"].tolist() == [0.0, 300.0, 2100.0]
    assert ev["end_s"].tolist() == [300.0, 2100.0, 2400.0]


def test_events_iso_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("label,start,end\nbaseline,2024-03-01T10:00:30,2024-03-01T10:05:30\n")
    ev = read_events(path, start_time=datetime(2024, 3, 1, 10, 0, 0))
    assert (ev["start_s"].iloc[0], ev["end_s"].iloc[0]) == (30.0, 330.0)
    with pytest.raises(EventsFileError, match=r"row 2, column 'start'.*start time"):
        read_events(path)


def test_events_malformed(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text("label,begin,end\na,0,10\n")
    with pytest.raises(EventsFileError, match=r"ev.csv: missing column"):
        read_events(path)
    path.write_text("label,start,end\na,0,10\nb,20,15\n")
    with pytest.raises(EventsFileError, match=r"ev.csv, row 3: end \(15 s\) is not after start"):
        read_events(path)
    path.write_text("label,start,end\na,zero,10\n")
    with pytest.raises(EventsFileError, match="neither seconds nor an ISO"):
        read_events(path)
    with pytest.raises(EventsFileError, match="not found"):
        read_events(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("label,start,end\na,0,10,\n", r"ev.csv: 1 of 1 data row\(s\) do not have the header's 3"),
        ("label,start,Start\na,0,10\n", r"column 3 'Start' repeats column 2 'start'"),
        ("label,start,end\na,0,inf\n", r"row 2, column 'end': 'inf' is neither seconds nor"),
        ("label,start,end\na,0,1e999\n", r"'1e999' is not a finite number of seconds"),
        ("label,start,end\na,nan,10\n", r"'nan' is neither seconds nor an ISO timestamp"),
        ("label,start,end\na,0,1_0\n", r"'1_0' is neither seconds nor an ISO timestamp"),
    ],
)
def test_events_read_exactly_or_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ev.csv"
    path.write_text(text)
    with pytest.raises(EventsFileError, match=message):
        read_events(path)


def test_events_rows_are_named_by_the_line_their_record_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_bytes(b'label;start;end\r"two\nline";0;10\rb;20;15\r')
    with pytest.raises(EventsFileError, match=r"ev.csv, row 4: end \(15 s\) is not after"):
        read_events(path)


def test_consecutive_windows() -> None:
    w = consecutive_windows(900, 300)
    assert w["label"].tolist() == ["w001", "w002", "w003"]
    assert w["end_s"].tolist() == [300.0, 600.0, 900.0]
    with pytest.raises(EventsFileError):
        consecutive_windows(900, 0)
