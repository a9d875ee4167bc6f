"""Diagnostic PNG: three panels with an ECG, two for RR-only input."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from peerlens.hrv import Recording, analyze, read_ecg
from peerlens.hrv.plot import plot_result


def test_plot_ecg_and_rr(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    counts: list[int] = []
    original = matplotlib.figure.Figure.savefig

    def spy(self: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        counts.append(len(self.axes))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    rec = read_ecg(data_dir / "mitdb" / "100.hea")
    out = plot_result(analyze(rec), rec, tmp_path / "ecg.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    rr = Recording(source="rr", format="rr", rr_ms=800 + 30 * np.sin(np.arange(300) / 2.0))
    plot_result(analyze(rr), rr, tmp_path / "rr.png")
    assert counts == [3, 2]
    assert matplotlib.get_backend().lower() == "agg"
