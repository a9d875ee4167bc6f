"""Real ECG records and broken or mutated copies of them, shared by the tests that store
recordings through the study API, the CLI and the web app (each must refuse the same broken
files with the same message, and store the real ones).

The real records are the shared data's (``../shared/data/ecg``, or ``PEERLENS_ECG_DATA``; see
its README), never copied into the repository: :func:`ecg_data` skips naming the folder when it
is absent, and fails when ``CI`` is set. The bundled example EDF (``peerlens/examples``) is the
package's own.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._mutation import mutate

__all__ = ["ECG_DATA", "EXAMPLE_EDF", "Upload", "broken", "ecg_data", "readable"]

#: The shared real ECG records.
ECG_DATA = Path(
    os.environ.get(
        "PEERLENS_ECG_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ecg"
    )
)
#: The package's bundled example ECG (EDF+, 10 minutes).
EXAMPLE_EDF = (
    Path(__file__).resolve().parents[1] / "src" / "peerlens" / "examples" / "session_ecg.edf"
)
#: Where the EDF header's "number of signals" field sits (bytes 252-255, EDF specification).
_EDF_NS = 252


@dataclass(frozen=True)
class Upload:
    """A recording as sent: its files (a WFDB record: the header first, then its signal file),
    and the words its refusal must hold (``None``: it is read and stored)."""

    files: tuple[Path, ...]
    refused: str | None

    @property
    def path(self) -> Path:
        """The file given to ``add_recording`` (a WFDB record's header)."""
        return self.files[0]


def ecg_data() -> Path:
    """The shared ECG records, or skip naming the folder (fail under ``CI``, which has them)."""
    if not (ECG_DATA / "mitdb" / "100.hea").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the shared ECG records are missing at {ECG_DATA}")
        pytest.skip(f"shared ECG records not found at {ECG_DATA}")
    return ECG_DATA


def _copy(folder: Path, *sources: Path) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    return tuple(Path(shutil.copy(s, folder / s.name)) for s in sources)


def readable(folder: Path) -> dict[str, Upload]:
    """Real records the readers read: MIT-BIH 100 (WFDB, 212 format), v102s (WFDB, 4
    channels) and the bundled example EDF+."""
    data = ecg_data()
    return {
        "mitdb-100": Upload(
            _copy(folder / "mitdb", data / "mitdb" / "100.hea", data / "mitdb" / "100.dat"), None
        ),
        "v102s": Upload(
            _copy(folder / "v102s", data / "other" / "v102s.hea", data / "other" / "v102s.dat"),
            None,
        ),
        "example-edf": Upload(_copy(folder / "edf", EXAMPLE_EDF), None),
    }


def broken(folder: Path) -> dict[str, Upload]:
    """Files the readers refuse: real records cut short or with a damaged header, a real EDF
    whose signals run at different rates, a CSV without numbers and an empty RR file."""
    data = ecg_data()
    folder.mkdir(parents=True, exist_ok=True)
    cut = folder / "cut"
    hea, dat = _copy(cut, data / "mitdb" / "100.hea", data / "mitdb" / "100.dat")
    dat.write_bytes(dat.read_bytes()[:5000])  # a transfer that stopped early
    edf = EXAMPLE_EDF.read_bytes()
    signals = folder / "signals.edf"
    signals.write_bytes(mutate(edf, [(0, _EDF_NS, b"xx  ")]))
    half = folder / "half.edf"
    half.write_bytes(mutate(edf, [(3, len(edf) // 2, b"")]))
    text = folder / "ana_ruiz_ecg.csv"
    text.write_text("MLII\nx\ny\n", encoding="utf-8")
    empty = folder / "empty.rr.txt"
    empty.write_bytes(b"")
    return {
        "wfdb-signal-cut-short": Upload((hea, dat), "100: channel MLII: not a readable WFDB"),
        "edf-header-damaged": Upload((signals,), "signals.edf: not a readable EDF"),
        "edf-cut-in-half": Upload((half,), "half.edf: not a readable EDF"),
        "edf-mixed-rates-real": Upload(
            _copy(folder / "real", data / "wfdb-sample-data" / "test_generator_2.edf"),
            "test_generator_2.edf: not a readable EDF",
        ),
        "csv-without-numbers": Upload((text,), "ana_ruiz_ecg.csv"),
        "empty": Upload((empty,), "empty.rr.txt: the file is empty"),
    }
