"""ECG formats: every fixture record read (rate per channel, duration, gaps) or refused by name.

Inputs: every WFDB header (``*.hea``) and EDF/BDF file of the WFDB sample data
(``../shared/data/ecg/wfdb-sample-data``, the wfdb package's own test records: multi-segment
records with null segments, multi-frequency records, headers without signal names, format
variants; 11 of its data files are absent, for which the answer must be a "missing file"
refusal), MIT-BIH 100 and v102s from ``../shared/data/ecg``, and the fixtures committed under
``tests/hrv/fixtures/``.

Per input, one of:

- ``read``: :func:`peerlens.hrv.read_ecg` returned a recording; the table shows the channel, its
  rate, the rates of all channels the header declares, the duration and the gaps found;
- ``refused``: a :class:`peerlens.PeerlensError` whose message names the record (the table
  shows the message);
- ``crashed``: any other exception (a Python error leaking to the user);
- ``rate-changed``: read, but at a rate other than the channel's own (frame rate times its
  samples per frame in WFDB; the channel's rate in EDF), i.e. resampled silently.

Then R-peak detection on every annotated record that was read (reference beats from its
``.atr``), ours (``analyze``, the beats it keeps) against NeuroKit2's default detector and wfdb's
XQRS, in the same run, scored with ``hrv_accuracy.match`` (150 ms and +/- 1 sample).

Run: ``.venv/bin/python benchmarks/ecg_formats.py [--no-accuracy]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peerlens import PeerlensError
from peerlens.hrv import read_ecg

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "ecg"
SAMPLE = DATA / "wfdb-sample-data"
FIXTURES = ROOT / "tests" / "hrv" / "fixtures"


@dataclass
class Outcome:
    name: str
    status: str  # read / refused / crashed / rate-changed
    channel: str = ""
    fs: float | None = None
    rates: str = ""
    duration_s: float = float("nan")
    gaps: str = ""
    message: str = ""


def inputs() -> list[Path]:
    """Every record of the fixture sets, WFDB sample data first."""
    found: list[Path] = []
    for root in (SAMPLE, DATA / "mitdb", DATA / "other", FIXTURES):
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in {".hea", ".edf", ".bdf"}:
                found.append(p)
    return found


def declared_rates(path: Path) -> dict[str, float]:
    """Each channel's own sampling rate as the file declares it (independently of peerlens)."""
    if path.suffix.lower() in {".edf", ".bdf"}:
        import pyedflib

        with pyedflib.EdfReader(str(path)) as f:
            labels = f.getSignalLabels()
            return {labels[i]: float(f.getSampleFrequency(i)) for i in range(f.signals_in_file)}
    import wfdb

    h = wfdb.rdheader(str(path.with_suffix("")))
    if isinstance(h, wfdb.MultiRecord):
        rates: dict[str, float] = {}
        for seg in h.seg_name:
            if seg != "~" and (path.parent / f"{seg}.hea").is_file():
                s = wfdb.rdheader(str(path.parent / seg))
                names = s.sig_name or [f"#{i}" for i in range(s.n_sig)]
                spf = s.samps_per_frame or [1] * len(names)
                rates.update(
                    {n: float(h.fs) * int(k or 1) for n, k in zip(names, spf, strict=False)}
                )
        return rates
    names = h.sig_name or [f"#{i}" for i in range(h.n_sig)]
    spf = h.samps_per_frame or [1] * len(names)
    return {n: float(h.fs) * int(s or 1) for n, s in zip(names, spf, strict=False)}


def run_one(path: Path) -> Outcome:
    name = str(path.relative_to(path.parents[1] if path.parent != SAMPLE else SAMPLE))
    if path.is_relative_to(SAMPLE):
        name = str(path.relative_to(SAMPLE))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = read_ecg(path)
    except PeerlensError as exc:
        return Outcome(name, "refused", message=str(exc))
    except Exception as exc:
        return Outcome(name, "crashed", message=f"{type(exc).__name__}: {exc}")
    try:
        rates = declared_rates(path)
    except Exception:
        rates = {}
    own = rates.get(rec.channel or "", rates.get(f"#{rec.channel}"))
    if rec.channel and rec.channel.startswith("#") and own is None and rates:
        own = list(rates.values())[int(rec.channel[1:])]
    gaps = getattr(rec, "gaps", None)
    gap_text = ""
    if gaps is not None and len(gaps):
        gap_text = f"{len(gaps)} ({float((gaps['end_s'] - gaps['start_s']).sum()):.0f} s)"
    elif rec.missing_samples:
        gap_text = f"{rec.missing_samples} NaN samples"
    shown = sorted({f"{v:g}" for v in rates.values()}, key=float)
    out = Outcome(
        name,
        "read",
        channel=str(rec.channel),
        fs=rec.fs,
        rates="/".join(shown),
        duration_s=rec.duration_s,
        gaps=gap_text,
    )
    if own is not None and rec.fs is not None and abs(own - rec.fs) > 1e-6 * own:
        out.status = "rate-changed"
        out.message = f"channel's own rate {own:g} Hz, read at {rec.fs:g} Hz"
    return out


def table(outcomes: list[Outcome]) -> None:
    print(
        f"{'record':<52} {'status':<12} {'channel':<10} {'fs':>7} {'rates':>12} "
        f"{'dur s':>9} {'gaps':<18} reason"
    )
    for o in outcomes:
        fs = f"{o.fs:g}" if o.fs else ""
        dur = f"{o.duration_s:.1f}" if np.isfinite(o.duration_s) else ""
        print(
            f"{o.name:<52} {o.status:<12} {o.channel[:10]:<10} {fs:>7} {o.rates[:12]:>12} "
            f"{dur:>9} {o.gaps:<18} {o.message[:160]}"
        )


def totals(outcomes: list[Outcome], label: str) -> None:
    counts = {k: 0 for k in ("read", "refused", "crashed", "rate-changed")}
    for o in outcomes:
        counts[o.status] += 1
    print(f"{label}: {len(outcomes)} inputs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    paths = inputs()
    outcomes = [run_one(p) for p in paths]
    table(outcomes)
    print()
    sample = [o for o, p in zip(outcomes, paths, strict=True) if p.is_relative_to(SAMPLE)]
    totals(sample, "WFDB sample data")
    totals(outcomes, "all fixtures")
    print(f"({time.perf_counter() - start:.0f} s)")
    bad = [o for o in outcomes if o.status in {"crashed", "rate-changed"}]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
