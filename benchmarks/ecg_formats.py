"""ECG formats: every fixture record read (rate per channel, duration, gaps) or refused by name.

Inputs: every WFDB header (``*.hea``) and EDF/BDF file of the WFDB sample data
(``../shared/data/ecg/wfdb-sample-data``, the wfdb package's own test records: multi-segment
records with null segments, multi-frequency records, headers without signal names, format
variants; 11 of its data files are absent: a multi-segment record reads those segments as named
gaps, any other record is refused naming the missing file), MIT-BIH 100 and v102s from
``../shared/data/ecg``, and the portable-device recordings under
``../shared/data/ecg/portable/`` (:data:`PORTABLE`: an ISHNE Holter file, a BITalino OpenSignals
file, Polar Verity Sense PPI and HR exports, a VU-AMS R-peak export, an Empatica E4 IBI.csv;
licence and provenance in each folder's README).
``PEERLENS_ECG_DATA`` points at another copy of ``shared/data/ecg``.

Per input, one of:

- ``read``: :func:`peerlens.hrv.read_ecg` returned a recording; the table shows the channel, its
  rate, the rates of all channels the header declares, the duration and the gaps found;
- ``refused``: a :class:`peerlens.PeerlensError` whose message names the record (the table
  shows the message);
- ``crashed``: any other exception, or a refusal whose message is a Python error passed
  through (``[Errno 2] ...``, ``'NoneType' object has no attribute ...``, ``sampto must be
  greater than sampfrom``) rather than a named feature;
- ``rate-changed``: read, but at a rate other than the channel's own (frame rate times its
  samples per frame in WFDB; the channel's rate in EDF), i.e. resampled silently.

Then R-peak detection on every annotated record that was read (reference beats from its
``.atr``), ours (``analyze``, the beats it keeps) against NeuroKit2's default detector and wfdb's
XQRS, in the same run, scored with ``hrv_accuracy.match`` (150 ms and +/- 1 sample).

Each record read is also analysed end to end in 5-minute windows (``valid/windows``, or the
analysis's named refusal, e.g. a record too short or without enough usable beats).

Run: ``.venv/bin/python benchmarks/ecg_formats.py [--no-analyze] [--no-accuracy]`` (about two
minutes; XQRS is the slow part). Exit status 1 if any input crashed or changed rate.
"""

from __future__ import annotations

import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hrv_accuracy import BEATS, HEADER, neurokit_peaks, row
from peerlens import PeerlensError
from peerlens.hrv import Recording, analyze, assess_quality, read_ecg

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PEERLENS_ECG_DATA", ROOT / ".." / "shared" / "data" / "ecg"))
SAMPLE = DATA / "wfdb-sample-data"
#: The recordings of each portable-device folder (the folders also hold READMEs, licences and
#: reference beat lists, which are not inputs).
PORTABLE = {
    "ishne-lifecard-cf": ["holter.ecg"],
    "bitalino-opensignals": ["SampleECG.txt"],
    "polar-verity-sense-ppi": ["Polar_Sense_PPI.txt", "Polar_Sense_HR.txt"],
    "vu-ams": ["test_vu.txt"],
    "empatica-e4-ibi": ["IBI.csv"],
}
#: What a Python error looks like when a message merely passes it on.
LEAKED = re.compile(
    r"Errno|\w+Error\b|object has no attribute|must be greater than|could not broadcast"
)


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
    windows: str = ""
    recording: Recording | None = None


def inputs() -> list[Path]:
    """Every record of the fixture sets, WFDB sample data first (a portable-device recording
    missing locally is listed all the same and reported as a refusal naming the file)."""
    found: list[Path] = []
    for root in (SAMPLE, DATA / "mitdb", DATA / "other"):
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in {".hea", ".edf", ".bdf"}:
                found.append(p)
    for folder, names in PORTABLE.items():
        found += [DATA / "portable" / folder / n for n in names]
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
        leaked = LEAKED.search(str(exc))
        return Outcome(name, "crashed" if leaked else "refused", message=str(exc))
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
    out.recording = rec
    return out


def analyse(out: Outcome) -> None:
    """End to end, 5-minute windows: valid windows / windows, or the named refusal."""
    if out.recording is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = analyze(out.recording, window=300)
    except PeerlensError as exc:
        out.windows = "refused"
        out.message = f"analyze: {exc}"
        return
    except Exception as exc:
        out.windows = "CRASHED"
        out.message = f"analyze: {type(exc).__name__}: {exc}"
        return
    w = res.windows
    out.windows = f"{int(w['valid'].sum())}/{len(w)}"


def table(outcomes: list[Outcome]) -> None:
    print(
        f"{'record':<52} {'status':<12} {'channel':<10} {'fs':>7} {'rates':>12} "
        f"{'dur s':>9} {'gaps':<18} {'windows':>8} reason"
    )
    for o in outcomes:
        fs = f"{o.fs:g}" if o.fs else ""
        dur = f"{o.duration_s:.1f}" if np.isfinite(o.duration_s) else ""
        print(
            f"{o.name:<52} {o.status:<12} {o.channel[:10]:<10} {fs:>7} {o.rates[:12]:>12} "
            f"{dur:>9} {o.gaps:<18} {o.windows:>8} {o.message[:160]}"
        )


def totals(outcomes: list[Outcome], label: str) -> None:
    counts = {k: 0 for k in ("read", "refused", "crashed", "rate-changed")}
    for o in outcomes:
        counts[o.status] += 1
    print(f"{label}: {len(outcomes)} inputs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def annotated(paths: list[Path], outcomes: list[Outcome]) -> None:
    """Detection on every annotated record read (reference beats from its ``.atr``), each
    distinct signal once: ours (``assess_quality``, as ``analyze`` runs it), NeuroKit2, XQRS."""
    import wfdb
    from wfdb import processing

    seen: set[bytes] = set()
    print("\nR-peak detection on annotated records (reference: the .atr beat annotations)")
    for path, out in zip(paths, outcomes, strict=True):
        rec = out.recording
        atr = path.with_suffix(".atr")
        if rec is None or rec.signal is None or rec.fs is None or not atr.is_file():
            continue
        ann = wfdb.rdann(str(path.with_suffix("")), "atr")
        if abs(float(ann.fs or rec.fs) - rec.fs) > 1e-6:
            continue  # annotations at another rate than the channel read
        key = rec.signal.tobytes()[:4_000_000]
        if key in seen:
            print(f"{out.name}: same signal as a record above, skipped")
            continue
        seen.add(key)
        ref = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEATS])
        x, fs = np.nan_to_num(rec.signal), rec.fs
        minutes = rec.duration_s / 60
        print(f"{out.name} ({rec.channel}, {fs:g} Hz, {minutes:.1f} min, {ref.size} beats)")
        print(HEADER)
        t = time.perf_counter()
        q = assess_quality(rec.signal, fs)
        print(row("peerlens (analyze's peaks)", q.rpeaks, ref, fs, time.perf_counter() - t))
        t = time.perf_counter()
        nk = neurokit_peaks(x, fs)
        print(row("neurokit2 default", nk, ref, fs, time.perf_counter() - t))
        t = time.perf_counter()
        xq = processing.xqrs_detect(x, fs=fs, verbose=False)
        print(row("wfdb xqrs", np.asarray(xq), ref, fs, time.perf_counter() - t))


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    paths = inputs()
    outcomes = [run_one(p) for p in paths]
    if "--no-analyze" not in argv:
        for o in outcomes:
            analyse(o)
    table(outcomes)
    print()
    sample = [o for o, p in zip(outcomes, paths, strict=True) if p.is_relative_to(SAMPLE)]
    totals(sample, "WFDB sample data")
    totals(outcomes, "all fixtures")
    crashed = sum(o.windows == "CRASHED" for o in outcomes)
    analysed = [o for o in outcomes if o.windows and o.windows not in {"refused", "CRASHED"}]
    refused = sum(o.windows == "refused" for o in outcomes)
    print(
        f"analysed end to end (5-minute windows): {len(analysed)}, refused with a reason "
        f"{refused}, crashed {crashed}"
    )
    if "--no-accuracy" not in argv:
        annotated(paths, outcomes)
    print(f"({time.perf_counter() - start:.0f} s)")
    bad = [o for o in outcomes if o.status in {"crashed", "rate-changed"} or o.windows == "CRASHED"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
