"""ECG signal quality: bad-signal stretches, a per-beat quality index, and what is unusable.

Three layers, each cheap enough for a 24-hour Holter:

1. :func:`detect_signal_problems` reads the raw ECG once (20 ms block means, computed chunk by
   chunk while each chunk is in cache; the R-peak detector's baseline and the beat SQI reuse
   them) and looks, sample by sample only where the block means point, for **spikes**
   (excursions far beyond the local signal range), **flat lines** (the signal constant for at
   least 0.5 s), **saturation** (constant beyond the local range) and **lead-off** (missing
   samples, or constant for at least 2 s). It returns the stretches and a repaired copy of the
   signal in which each stretch is bridged by a straight line, so that a spike or a step into
   saturation cannot disturb R-peak detection around it (their energy would otherwise raise the
   detector's thresholds for seconds).
2. :func:`beat_sqi` gives each detected beat a signal-quality index: the correlation of the
   beat with the median beat of its 10-minute block (template matching after Orphanidou et al.
   2015). Beats below 0.66 are not used.
3. :func:`assess_quality` runs both around R-peak detection, adds beats whose QRS top is cut
   flat (**clipping**), and decides which beats and RR intervals are usable. A beat inside a
   bad stretch (plus a 0.1 s margin) or with a low index is dropped, and every RR interval
   that touches a dropped beat or spans a bad stretch becomes
   a **gap**: it is removed, never interpolated across as if the beats were continuous
   (:func:`peerlens.hrv.correct_artifacts` with ``gaps``). :meth:`SignalQuality.summary` gives
   the unusable time of any window, by kind.

References
----------
Orphanidou C, Bonnici T, Charlton P, Clifton D, Vallance D, Tarassenko L (2015). Signal-quality
indices for the electrocardiogram and photoplethysmogram: derivation and applications to
wireless monitoring. IEEE J Biomed Health Inform 19(3): 832-838.
Zhao Z, Zhang Y (2018). SQI quality evaluation mechanism of single-lead ECG signal based on
simple heuristic fusion and fuzzy comprehensive evaluation. Front Physiol 9: 727.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from peerlens.hrv._blas import single_blas_thread
from peerlens.hrv._errors import EmptyRecordingError, FlatSignalError
from peerlens.hrv.peaks import (
    DetectorSettings,
    _detect,
    _keep_freed_memory,
    _validate,
    baseline_block,
)

__all__ = [
    "QUALITY_COLUMNS",
    "QUALITY_KINDS",
    "QualitySettings",
    "SignalProblems",
    "SignalQuality",
    "assess_quality",
    "beat_sqi",
    "detect_signal_problems",
]

#: Kinds of unusable signal, in the order they are reported. ``low_sqi``: beats whose
#: correlation with the median beat is below :attr:`QualitySettings.min_sqi` (noise detected
#: as a beat, a beat buried in noise, or an ectopic beat of another shape).
QUALITY_KINDS = ("spike", "clipping", "flat", "lead_off", "low_sqi")
#: Per-window quality columns added by :func:`peerlens.hrv.analyze`.
QUALITY_COLUMNS = (
    "sqi",
    "unusable_s",
    "spike_s",
    "clipping_s",
    "flat_s",
    "lead_off_s",
    "low_sqi_s",
    "low_sqi_beats",
)
#: Samples this close (relative to the typical amplitude) count as one repeated ADC code.
RAIL_TOLERANCE = 1e-9
#: A run through a beat's apex is clipping only if the signal steps onto and off it (over one
#: sample, or half of it over two) by at least this share of the typical peak-to-peak amplitude
#: (and 3 ADC steps): a clip cuts the QRS mid-slope, while a rounded apex, or samples held by a
#: resampler, approach it in small steps.
CLIP_EDGE = 0.05
#: How each kind is named in a window's ``reason``.
KIND_NAMES = {
    "spike": "spikes",
    "clipping": "clipping",
    "flat": "flat line",
    "lead_off": "lead-off",
    "low_sqi": "low-SQI beats (noise or ectopic)",
}


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the signal-quality assessment (recorded in every result's provenance).

    Attributes
    ----------
    block_s
        Length of the blocks (of 20 ms means) whose maxima and minima are scanned (0.25 s; a
        flat line of ``flat_min_s`` always covers one whole block).
    envelope_s
        The local signal range is the median, over this many seconds, of the maxima and minima
        of 2 s blocks (each holds at least one beat above 30 bpm): a robust upper and lower
        envelope that follows baseline wander but not single events.
    spike_range
        A spike lifts a 20 ms block mean beyond the local envelope by more than this many
        local peak-to-peak amplitudes A (3: beyond anything a beat, even a large ventricular
        one, or baseline wander within 2 s reaches); its extent is then found sample by sample
        (where the signal stays beyond the envelope by A / 2). Seeking spikes in 20 ms means
        finds those that survive the low-pass filtering of R-peak detection, the ones that
        disturb it; a one-sample spike of a few QRS amplitudes is not reported (and on MIT-BIH
        100 and simulated ECG it leaves every window's RMSSD within 2 %,
        ``benchmarks/hrv_quality.py``).
    flat_tolerance
        Samples within this fraction of the recording's typical peak-to-peak amplitude of each
        other count as constant (1e-3: below one ADC step of common ECG recorders, e.g. 5 uV in
        1.3 mV on MIT-BIH, so a real ECG with its noise never qualifies).
    flat_min_s
        Shortest flat line reported (0.5 s). Below ``lead_off_s`` a constant stretch is only
        reported when it hides a beat (the RR interval around it is more than 1.5 times the
        local median): with coarse ADC steps (e.g. MIMIC waveforms, 0.09 mV steps for a
        0.4-0.9 mV QRS) the isoelectric line between two beats can sit on one code for nearly
        the whole interval.
    clip_min_s
        Shortest run of identical samples through a beat's apex that counts as clipping: 10 ms
        and at least 3 samples, and longer than a rounded R apex stays within one ADC step q:
        2 x 20 ms x sqrt(2 q / A) for a Gaussian R wave of 20 ms width and amplitude A (half the
        typical peak-to-peak), plus one sample. "Identical" allows 1e-9 of the typical
        amplitude for the rounding of unit conversions: a clipped converter repeats one code
        exactly. The run must also be entered and left by steep steps (:data:`CLIP_EDGE`).
    lead_off_s
        A constant stretch at least this long (2 s, longer than any RR interval down to 30
        bpm, so beats are certainly missing), at any level, is reported as lead-off; missing
        samples (NaN) always are.
    margin_s
        Unusable margin on each side of a bad stretch (0.1 s: half a QRS plus the R-apex search
        window of 75 ms), so a beat whose QRS touches the stretch is dropped.
    min_sqi
        Beats whose correlation with the median beat is below this are dropped (0.66, the
        acceptance threshold of Orphanidou et al. 2015, applied per beat).
    template_s
        The median beat is taken per block of this many seconds (600 s), so slow changes of
        morphology over a Holter (posture, electrode drift) are followed.
    """

    block_s: float = 0.25
    envelope_s: float = 18.0
    spike_range: float = 3.0
    flat_tolerance: float = 1e-3
    flat_min_s: float = 0.5
    clip_min_s: float = 0.01
    lead_off_s: float = 2.0
    margin_s: float = 0.1
    min_sqi: float = 0.66
    template_s: float = 600.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (for JSON provenance)."""
        return {"method": "peerlens-sqi-1 (block envelope + Orphanidou 2015 template)"} | asdict(
            self
        )


@dataclass(frozen=True)
class _Spans:
    """Stretches as arrays: ``kind`` (str), ``start`` and ``end`` (samples or seconds)."""

    kind: NDArray[np.str_]
    start: NDArray[np.float64]
    end: NDArray[np.float64]

    @staticmethod
    def of(kinds: list[str], starts: Any, ends: Any) -> _Spans:
        start = np.asarray(starts, dtype=np.float64)
        end = np.asarray(ends, dtype=np.float64)
        order = np.lexsort((end, start))
        return _Spans(np.asarray(kinds, dtype="U8")[order], start[order], end[order])

    def where(self, keep: NDArray[np.bool_]) -> _Spans:
        return _Spans(self.kind[keep], self.start[keep], self.end[keep])

    def plus(self, other: _Spans) -> _Spans:
        return _Spans.of(
            [*self.kind.tolist(), *other.kind.tolist()],
            np.concatenate((self.start, other.start)),
            np.concatenate((self.end, other.end)),
        )

    def samples_frame(self, fs: float) -> pd.DataFrame:
        """``kind``, ``start``, ``end`` (samples), ``start_s``, ``end_s``."""
        return pd.DataFrame(
            {
                "kind": pd.Series(self.kind.astype(object), dtype="string"),
                "start": self.start.astype(np.int64),
                "end": self.end.astype(np.int64),
                "start_s": self.start / fs,
                "end_s": self.end / fs,
            }
        )

    def seconds_frame(self) -> pd.DataFrame:
        """``kind``, ``start_s``, ``end_s``."""
        return pd.DataFrame(
            {
                "kind": pd.Series(self.kind.astype(object), dtype="string"),
                "start_s": self.start,
                "end_s": self.end,
            }
        )


@dataclass(frozen=True)
class SignalProblems:
    """Result of :func:`detect_signal_problems`.

    Attributes
    ----------
    stretches
        One row per bad stretch: ``kind`` (spike, clipping, flat, lead_off), ``start``,
        ``end`` (sample indices, end exclusive), ``start_s``, ``end_s``.
    repaired
        The ECG with every stretch bridged by a straight line between its neighbouring
        samples (the input array itself when nothing needed repair); for R-peak detection.
    fs
        Sampling rate in Hz.
    scale
        The recording's typical local peak-to-peak amplitude (input units).
    step
        The ADC step estimated from the signal (smallest difference between samples; 0 if
        none is found).
    clip_min_samples
        Shortest run counted as clipping (see :attr:`QualitySettings.clip_min_s`).
    means
        The repaired signal as means of consecutive blocks of ``means_samples`` samples (about
        20 ms, float32, minus a constant offset), computed in the same pass; the input of the
        beat SQI.
    means_samples
        Samples per block of ``means``.
    """

    repaired: NDArray[np.float64] = field(repr=False)
    fs: float
    scale: float
    step: float
    clip_min_samples: int
    means: NDArray[np.float32] = field(repr=False)
    means_samples: int
    _spans: _Spans = field(repr=False)
    _baseline_means: NDArray[np.float64] | None = field(default=None, repr=False)

    @cached_property
    def stretches(self) -> pd.DataFrame:
        """One row per bad stretch (see the class attributes)."""
        return self._spans.samples_frame(self.fs)


@dataclass(frozen=True)
class SignalQuality:
    """Result of :func:`assess_quality`.

    Attributes
    ----------
    rpeaks
        R peaks detected on the repaired signal (sample indices of the input).
    beat_sqi
        Per R peak, its correlation with the median beat (:func:`beat_sqi`).
    beat_usable
        Per R peak: outside every bad stretch (with margin) and ``beat_sqi >= min_sqi``.
    gaps
        Per RR interval (``numpy.diff(rpeaks)``): True when it touches a dropped beat or spans
        a bad stretch; such intervals are removed, not corrected.
    stretches
        The bad stretches (:attr:`SignalProblems.stretches`) plus one ``clipping`` row per beat
        whose apex is pinned.
    unusable
        Unusable time by kind: ``kind``, ``start_s``, ``end_s`` (each kind's stretches with
        their margins and the gap intervals they cause, merged; kinds may overlap).
    duration_s
        Length of the recording.
    settings
        The :class:`QualitySettings` used.
    """

    rpeaks: NDArray[np.intp] = field(repr=False)
    beat_sqi: NDArray[np.float64] = field(repr=False)
    beat_usable: NDArray[np.bool_] = field(repr=False)
    gaps: NDArray[np.bool_] = field(repr=False)
    duration_s: float
    settings: QualitySettings
    fs: float
    _spans: _Spans = field(repr=False)
    _unusable: _Spans = field(repr=False)
    _all: tuple[NDArray[np.float64], NDArray[np.float64]] = field(repr=False)

    @cached_property
    def stretches(self) -> pd.DataFrame:
        """The bad stretches: ``kind``, ``start``, ``end`` (samples), ``start_s``, ``end_s``."""
        return self._spans.samples_frame(self.fs)

    @cached_property
    def unusable(self) -> pd.DataFrame:
        """Unusable time by kind: ``kind``, ``start_s``, ``end_s``."""
        return self._unusable.seconds_frame()

    def summary(self, start_s: float = 0.0, end_s: float | None = None) -> dict[str, float]:
        """Quality figures of the window [``start_s``, ``end_s``] (default: whole recording).

        Returns
        -------
        dict
            ``sqi`` (mean beat SQI of the beats detected in the window), ``unusable_s`` (time
            covered by any unusable stretch), ``spike_s``, ``clipping_s``, ``flat_s``,
            ``lead_off_s``, ``low_sqi_s`` (per kind; kinds can overlap) and ``low_sqi_beats``
            (beats dropped for their SQI alone).
        """
        end = self.duration_s if end_s is None else float(end_s)
        lo, hi = max(0.0, float(start_s)), min(end, self.duration_s)
        t = self.rpeaks / self.fs
        inside = (t >= start_s) & (t <= end)
        sqi = self.beat_sqi[inside]
        out: dict[str, float] = {
            "sqi": float(np.nanmean(sqi)) if np.isfinite(sqi).any() else float("nan"),
            "unusable_s": _covered(*self._all, lo, hi),
        }
        u = self._unusable
        for kind in QUALITY_KINDS:
            sel = u.kind == kind
            out[f"{kind}_s"] = _covered(u.start[sel], u.end[sel], lo, hi)
        low = self.beat_sqi < self.settings.min_sqi
        in_bad = _inside(t * self.fs, self._spans, self.settings.margin_s * self.fs)
        out["low_sqi_beats"] = float(np.sum(inside & low & ~in_bad))
        return out


# --------------------------------------------------------------------------- intervals


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start (inclusive) and end (exclusive) indices of runs of True in ``mask``."""
    d = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _merge(
    starts: NDArray[np.float64], ends: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Union of intervals [start, end] as sorted, disjoint intervals (vectorised)."""
    if starts.size == 0:
        return starts.astype(np.float64), ends.astype(np.float64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.concatenate(([True], s[1:] > reach[:-1]))
    group = np.cumsum(new) - 1
    out_s = s[new]
    out_e = np.full(out_s.size, -np.inf)
    np.maximum.at(out_e, group, e)
    return out_s, out_e


def _covered(starts: NDArray[np.float64], ends: NDArray[np.float64], lo: float, hi: float) -> float:
    """Length of [lo, hi] covered by the union of the intervals."""
    if hi <= lo or starts.size == 0:
        return 0.0
    s, e = _merge(np.maximum(starts, lo), np.minimum(ends, hi))
    return float(np.sum(np.clip(e - s, 0.0, None)))


def _overlaps(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    starts: NDArray[np.float64],
    ends: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Per interval [a, b]: does it overlap one of the sorted, disjoint [starts, ends]?"""
    if starts.size == 0:
        return np.zeros(a.size, dtype=bool)
    k = np.searchsorted(starts, b, side="right") - 1
    ok = k >= 0
    out = np.zeros(a.size, dtype=bool)
    out[ok] = ends[k[ok]] >= a[ok]
    return out


def _inside(t: NDArray[np.float64], spans: _Spans, margin: float) -> NDArray[np.bool_]:
    """Per position in ``t``: inside a span widened by ``margin`` on both sides?"""
    if spans.start.size == 0:
        return np.zeros(t.size, dtype=bool)
    s, e = _merge(spans.start - margin, spans.end + margin)
    return _overlaps(t, t, s, e)


# --------------------------------------------------------------------------- signal scan

#: Samples per scanning chunk (a few hundred kB: the block reductions run in cache).
SCAN_CHUNK = 2**17
#: 2 s blocks for the envelope (in 0.25 s blocks).
COARSE_BLOCKS = 8


def _scan(
    x: NDArray[np.float64], kq: int, kb: int | None, per_block: int
) -> tuple[
    NDArray[np.float32],
    float,
    NDArray[np.float64] | None,
    NDArray[np.float64],
    NDArray[np.float64],
]:
    """One chunked pass over the signal, each chunk reduced while it is in cache.

    Returns the means of blocks of ``kq`` samples (float32, minus the first chunk's median,
    returned as the offset, so a large DC offset costs no precision; NaN where a block holds a
    missing sample; trailing partial block dropped); when ``kb`` (a multiple of ``kq``) is
    given, the float64 means of blocks of ``kb`` samples (the R-peak detector's baseline
    grid, so the detector need not read the signal for it); and the max and min of those
    means over blocks of ``per_block`` means (NaN spreads; the last block partial).
    """
    n = x.size
    nq = n // kq
    means = np.empty(nq, dtype=np.float32)
    coarse = np.empty(n // kb) if kb else None
    nb = -(-nq // per_block)
    bmax, bmin = np.empty(nb), np.empty(nb)
    unit = kq * per_block * (kb // math.gcd(kb, kq * per_block) if kb else 1)
    step = max(1, SCAN_CHUNK // unit) * unit
    weights = np.full(kq, 1.0 / kq)
    offset: float | None = None
    _keep_freed_memory()
    buffer = np.empty(step // kq)
    for a in range(0, n, step):
        part = x[a : a + step]
        m = part.size // kq
        sums = np.matmul(part[: m * kq].reshape(m, kq), weights, out=buffer[:m])
        if coarse is not None and kb:
            r = kb // kq
            mb = m // r
            coarse[a // kb : a // kb + mb] = sums[: mb * r].reshape(mb, r) @ np.full(r, 1.0 / r)
        if offset is None:
            finite = sums[np.isfinite(sums)]
            offset = float(np.median(finite)) if finite.size else None
        sums -= offset or 0.0
        j = a // kq
        means[j : j + m] = sums
        # extremes per block of means: transposed, so each is a reduction down columns
        full = m // per_block
        i = j // per_block
        if full:
            cols = sums[: full * per_block].reshape(full, per_block).T.copy()
            np.max(cols, axis=0, out=bmax[i : i + full])
            np.min(cols, axis=0, out=bmin[i : i + full])
        if m > full * per_block:
            rest = sums[full * per_block : m]
            bmax[i + full] = np.max(rest)
            bmin[i + full] = np.min(rest)
    return means, offset or 0.0, coarse, bmax, bmin


def _block_means(x: NDArray[np.float64], kq: int) -> NDArray[np.float64]:
    """Means of consecutive blocks of ``kq`` samples (trailing partial block dropped)."""
    m = x.size // kq
    return np.asarray(x[: m * kq].reshape(m, kq) @ np.full(kq, 1.0 / kq))


def _rolling_median(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Centred rolling median over ``window`` values; missing values (NaN) are first filled by
    linear interpolation from their valid neighbours (so the envelope next to a long lead-off
    comes from the signal around it); all NaN if no value is valid."""
    valid = np.isfinite(values)
    if not valid.any():
        return np.full(values.size, np.nan)
    filled = values
    if not valid.all():
        at = np.flatnonzero(valid)
        filled = np.interp(np.arange(values.size), at, values[at])
    return np.asarray(ndimage.median_filter(filled, size=window, mode="nearest"))


def _envelope(
    cmax: NDArray[np.float64], cmin: NDArray[np.float64], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Local upper and lower envelope per 2 s block, and the typical peak-to-peak amplitude.

    Rolling medians over ``window`` blocks of the block maxima and minima; blocks given as NaN
    (flat or missing: they would pull the envelope onto the flat level next to a lead-off) do
    not count, and stretches without any usable block take the recording's medians.
    """
    upper = _rolling_median(cmax, window)
    lower = _rolling_median(cmin, window)
    amp = upper - lower
    good = np.isfinite(amp) & (amp > 0)
    if not good.any():
        return np.zeros(cmax.size), np.zeros(cmin.size), 0.0
    scale = float(np.median(amp[good]))
    upper = np.where(np.isfinite(upper), upper, float(np.nanmedian(cmax)))
    lower = np.where(np.isfinite(lower), lower, float(np.nanmedian(cmin)))
    return upper, lower, scale


@dataclass(frozen=True)
class _Shifted:
    """The signal minus a constant, read slice by slice (no full-length copy)."""

    x: NDArray[np.float64]
    offset: float

    def __getitem__(self, key: slice) -> NDArray[np.float64]:
        return self.x[key] - self.offset

    @property
    def size(self) -> int:
        return int(self.x.size)


def _flat_runs(
    x: NDArray[np.float64],
    flat_blocks: NDArray[np.bool_],
    width: int,
    tol: float,
    min_len: int,
) -> list[tuple[int, int, float]]:
    """Sample-exact (start, end, level) of constant stretches around runs of flat blocks."""
    out = []
    n = x.size
    for bs, be in zip(*_runs(flat_blocks), strict=True):
        a, b = int(bs) * width, min(int(be) * width, n)
        level = float(x[a])
        lo = max(0, a - width)
        left = x[lo:a][::-1]
        off = np.flatnonzero(np.abs(left - level) > tol)
        a = a - (int(off[0]) if off.size else left.size)
        hi = min(n, b + width)
        right = x[b:hi]
        off = np.flatnonzero(np.abs(right - level) > tol)
        b = b + (int(off[0]) if off.size else right.size)
        if b - a >= min_len:
            out.append((a, b, level))
    return out


def _spike_runs(
    x: _Shifted,
    blocks: NDArray[np.intp],
    width: int,
    upper: NDArray[np.float64],
    lower: NDArray[np.float64],
    k: float,
    join: int,
) -> list[tuple[int, int]]:
    # ``upper`` and ``lower`` are per 2 s block (COARSE_BLOCKS blocks of ``width``)
    """Sample extents of excursions beyond the envelope in the given blocks.

    A spike is where a sample leaves [lower - k A, upper + k A] (A = upper - lower); its extent
    runs while the signal stays beyond [lower - A / 2, upper + A / 2], so its rising and
    falling edges are included; extents closer than ``join`` samples are merged.
    """
    out: list[tuple[int, int]] = []
    if blocks.size == 0:
        return out
    cut = np.flatnonzero(np.diff(blocks) > 1) + 1
    for group in np.split(blocks, cut):
        g0 = max(0, int(group[0]) - 2)
        g1 = int(group[-1]) + 3
        a, b = g0 * width, min(x.size, g1 * width)
        seg = x[a:b]
        bi = np.minimum(np.arange(a, b) // (width * COARSE_BLOCKS), upper.size - 1)
        up, lo = upper[bi], lower[bi]
        amp = np.maximum(up - lo, 1e-12)
        hard = (seg > up + k * amp) | (seg < lo - k * amp)
        if not hard.any():
            continue
        soft = (seg > up + 0.5 * amp) | (seg < lo - 0.5 * amp)
        s, e = _runs(soft)
        hit = np.add.reduceat(hard.astype(np.int64), s) > 0 if s.size else np.zeros(0, bool)
        s, e = s[hit], e[hit]
        if s.size == 0:
            continue
        # join extents separated by less than ``join`` samples (ringing after a spike)
        new = np.concatenate(([True], s[1:] - e[:-1] >= join))
        starts = s[new]
        ends = np.maximum.reduceat(e, np.flatnonzero(new))
        out.extend((a + int(i), a + int(j)) for i, j in zip(starts, ends, strict=True))
    return out


def _bridge(x: NDArray[np.float64], start: int, end: int) -> None:
    """Replace x[start:end] (in place) by a straight line between its neighbouring samples."""
    n = x.size
    left = x[start - 1] if start > 0 else np.nan
    right = x[end] if end < n else np.nan
    if not np.isfinite(left):
        left = right
    if not np.isfinite(right):
        right = left
    if not np.isfinite(left):
        left = right = 0.0
    width = end - start
    x[start:end] = left + (right - left) * (np.arange(1, width + 1) / (width + 1))


@single_blas_thread
def detect_signal_problems(
    ecg: ArrayLike, fs: float, *, settings: QualitySettings | None = None
) -> SignalProblems:
    """Find spikes, clipping, flat lines and lead-off in a single-lead ECG.

    Parameters
    ----------
    ecg
        One ECG channel (any unit); missing samples as NaN.
    fs
        Sampling rate in Hz.
    settings
        Thresholds (default :class:`QualitySettings`).

    Returns
    -------
    SignalProblems
        The stretches found and the repaired signal for R-peak detection.

    Raises
    ------
    EmptyRecordingError
        Every sample is missing.
    FlatSignalError
        The whole channel is constant.

    Notes
    -----
    One pass over the signal computes the means of 20 ms blocks (a low-pass with its first
    zero at 50 Hz); from their maxima and minima per 0.25 s block come, per 2 s block, the
    local upper and lower envelope (rolling medians over 18 s; blocks mostly flat or missing
    left out) and the local peak-to-peak amplitude A. Candidate blocks are then examined
    sample by sample, so the cost is O(N) plus the size of the problems:

    - **spike**: a block mean beyond the envelope by more than 3 A; the stretch is the
      surrounding excursion of the samples beyond A / 2, plus 4 ms on each side.
    - **flat**: samples within 1e-3 of the recording's typical A of each other for >= 0.5 s
      (:func:`assess_quality` keeps only those that hide a beat).
    - **clipping** (saturation): such a constant stretch whose level lies outside the local
      envelope. Clipped QRS tops are found beat by beat by :func:`assess_quality`.
    - **lead_off**: missing (NaN) samples, or a constant stretch of >= 2 s at any level.

    The repaired signal bridges every stretch with a straight line (no step, hence no
    QRS-band energy: the detector's moving thresholds stay as they were); the block means are
    updated where it was bridged.
    Kurtosis (kSQI) and baseline-power (basSQI) indices of Zhao & Zhang (2018) were considered;
    they grade whole segments, whereas the stretches here are located to the sample.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 250
    >>> t = np.arange(0, 20, 1 / fs)
    >>> ecg = sum(np.exp(-((t - b) ** 2) / (2 * 0.01**2)) for b in np.arange(0.5, 20, 0.8))
    >>> ecg += np.random.default_rng(0).normal(0, 0.01, t.size)
    >>> ecg[1000:1003] += 30.0                      # a spike at 4 s (found with a 4 ms pad)
    >>> ecg[2500:3250] = ecg[2500]                  # 3 s of flat line from 10 s
    >>> found = detect_signal_problems(ecg, fs)
    >>> found.stretches[["kind", "start", "end"]].values.tolist()
    [['spike', 999, 1004], ['lead_off', 2500, 3250]]
    """
    s = settings or QualitySettings()
    x = _validate(ecg, fs)
    kq, kb = _means_samples(fs)
    # blocks of about 0.25 s (a whole number of means) and their extremes, offset removed
    per_block = max(1, round(s.block_s * fs / kq))
    width = per_block * kq
    means, offset, baseline_means, bmax, bmin = _scan(x, kq, kb, per_block)
    rng = bmax - bmin
    missing = ~np.isfinite(rng)
    tail = x[means.size * kq :]  # the last few samples, not in any block
    if missing.all() and not np.isfinite(tail).any():
        raise EmptyRecordingError("every ECG sample is missing")
    hi = float(np.max(bmax[~missing])) if (~missing).any() else 0.0
    lo = float(np.min(bmin[~missing])) if (~missing).any() else 0.0
    if hi == lo:
        finite = x[np.isfinite(x)]
        if finite.size == 0 or np.ptp(finite) == 0:
            raise FlatSignalError("ECG channel is flat (all samples equal): is the electrode on?")
    # 2 s blocks: NaN-ignoring extremes, then a provisional scale to find flat blocks
    g = COARSE_BLOCKS
    pad = (-bmax.size) % g
    cmax = np.fmax.reduce(np.concatenate((bmax, np.full(pad, np.nan))).reshape(-1, g), axis=1)
    cmin = np.fmin.reduce(np.concatenate((bmin, np.full(pad, np.nan))).reshape(-1, g), axis=1)
    crng = cmax - cmin
    positive = crng[np.isfinite(crng) & (crng > 0)]
    provisional = float(np.median(positive)) if positive.size else max(hi - lo, 1e-12)
    bad = missing | (rng <= s.flat_tolerance * provisional)
    # a 2 s block mostly flat or missing (not merely holding a constant stretch between two
    # beats, as a noise-free or coarsely sampled ECG does) does not shape the envelope
    cbad = np.concatenate((bad, np.ones(pad, dtype=bool))).reshape(-1, g).mean(axis=1) > 0.5
    coarse_window = max(1, round(s.envelope_s / (s.block_s * g)))
    upper, lower, scale = _envelope(
        np.where(cbad, np.nan, cmax), np.where(cbad, np.nan, cmin), coarse_window
    )
    if scale <= 0:
        scale = max(hi - lo, provisional)
    tol = s.flat_tolerance * scale
    same = RAIL_TOLERANCE * scale
    # the raw samples, offset removed like the means, where they are compared with them
    raw = _Shifted(x, offset)

    kinds: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    bridge: list[tuple[int, int]] = []

    def add(kind: str, a: int, b: int, repair: bool) -> None:
        kinds.append(kind)
        starts.append(a)
        ends.append(b)
        if repair:
            bridge.append((a, b))

    # missing samples (lead-off): exact runs inside the blocks holding them, and the tail
    if missing.any() or not np.isfinite(tail).all():
        regions = [
            (int(b0) * width, min(int(b1) * width, x.size))
            for b0, b1 in zip(*_runs(missing), strict=True)
        ]
        if not np.isfinite(tail).all():
            regions.append((means.size * kq, x.size))
        joined: list[tuple[int, int]] = []
        for a, b in regions:  # adjacent regions (a last block and the tail) become one
            if joined and a <= joined[-1][1]:
                joined[-1] = (joined[-1][0], max(joined[-1][1], b))
            else:
                joined.append((a, b))
        for a, b in joined:
            rs, re_ = _runs(~np.isfinite(x[a:b]))
            for i, j in zip(rs, re_, strict=True):
                add("lead_off", a + int(i), a + int(j), True)

    # flat lines, and constant stretches at an extreme (saturation)
    flat_blocks = ~missing & (rng <= tol)
    min_flat = max(2, round(s.flat_min_s * fs))
    min_lead_off = round(s.lead_off_s * fs)
    flat_done = np.zeros(bmax.size, dtype=bool)
    for a, b, level in _flat_runs(x, flat_blocks, width, tol, min_flat):
        blk = min(a // (width * g), upper.size - 1)
        lvl = level - offset
        beyond = lvl > upper[blk] + tol or lvl < lower[blk] - tol
        pinned = "clipping" if beyond else "flat"
        add("lead_off" if b - a >= min_lead_off else pinned, a, b, True)
        flat_done[a // width : -(-b // width)] = True

    # the ADC step (for the shortest clipping run at a beat's apex, see assess_quality)
    step = _adc_step(x, width, ~missing & ~flat_blocks, same)
    min_clip = _clip_min_samples(s, fs, step, scale)

    # spikes: excursions far beyond the local envelope (2 s blocks first, then 0.25 s blocks,
    # then samples)
    amp = np.maximum(upper - lower, 1e-12)
    k = s.spike_range
    coarse = np.flatnonzero((cmax > upper + k * amp) | (cmin < lower - k * amp))
    cand = np.zeros(0, dtype=np.intp)
    if coarse.size:
        fine = (coarse[:, None] * g + np.arange(g)).ravel()
        fine = fine[fine < bmax.size]
        c = fine // g
        hit = (bmax[fine] > upper[c] + k * amp[c]) | (bmin[fine] < lower[c] - k * amp[c])
        cand = fine[hit & ~missing[fine] & ~flat_done[fine]]
    join = max(1, round(0.05 * fs))
    spike_pad = max(1, round(0.004 * fs))
    for a, b in _spike_runs(raw, cand, width, upper, lower, k, join):
        add("spike", max(0, a - spike_pad), min(x.size, b + spike_pad), True)

    spans = _Spans.of(kinds, starts, ends)
    repaired = x
    if bridge:
        repaired = x.copy()
        for a, b in sorted(bridge):
            _bridge(repaired, a, b)
            j0, j1 = a // kq, min(means.size, -(-b // kq))
            if j1 > j0:
                means[j0:j1] = _block_means(repaired[j0 * kq : j1 * kq], kq) - offset
            if baseline_means is not None and kb:
                j0, j1 = a // kb, min(baseline_means.size, -(-b // kb))
                if j1 > j0:
                    baseline_means[j0:j1] = _block_means(repaired[j0 * kb : j1 * kb], kb)
    return SignalProblems(
        _spans=spans,
        repaired=repaired,
        fs=float(fs),
        scale=scale,
        step=step,
        clip_min_samples=min_clip,
        means=means,
        means_samples=kq,
        _baseline_means=baseline_means,
    )


def _means_samples(fs: float) -> tuple[int, int | None]:
    """Samples per block (about 20 ms) of the beat-SQI signal, and the detector's baseline
    block when it is a whole number of those (so the scan can compute both)."""
    target = 0.02 * fs
    kb = baseline_block(fs)
    divisors = [d for d in range(1, kb + 1) if kb % d == 0 and 0.7 <= d / target <= 1.4]
    if divisors:
        return min(divisors, key=lambda d: abs(d - target)), kb
    return max(1, round(target)), None


#: Blocks sampled to estimate the ADC step.
STEP_BLOCKS = 64


def _adc_step(x: NDArray[np.float64], width: int, usable: NDArray[np.bool_], same: float) -> float:
    """Smallest difference between neighbouring samples in a sample of usable blocks."""
    blocks = np.flatnonzero(usable)
    if blocks.size == 0:
        return 0.0
    pick = blocks[np.linspace(0, blocks.size - 1, min(blocks.size, STEP_BLOCKS)).astype(np.intp)]
    d = np.concatenate([np.abs(np.diff(x[b * width : (b + 1) * width])) for b in pick])
    d = d[d > same]
    return float(d.min()) if d.size else 0.0


def _clip_min_samples(s: QualitySettings, fs: float, step: float, scale: float) -> int:
    """Shortest clipping run: see :attr:`QualitySettings.clip_min_s`."""
    natural = 2 * 0.02 * np.sqrt(2 * step / (scale / 2)) if scale > 0 else 0.0
    return int(max(3, np.ceil(s.clip_min_s * fs), np.ceil(natural * fs) + 1))


# --------------------------------------------------------------------------- beat SQI

#: Beats whose windows are correlated at a time (a few MB of rows).
SQI_BATCH = 16384
#: Beats per template block used for its median beat (evenly spaced, odd so the median is one
#: of them; some repeat when a block has fewer usable beats), and for the fallback template
#: of the whole recording.
TEMPLATE_BEATS = 63
RECORDING_TEMPLATE_BEATS = 255
#: Fewest usable beats for a block's own template (else the recording's is used).
MIN_TEMPLATE_BEATS = 16


def _sqi_half_width(fs: float, kq: int, rpeaks: NDArray[np.intp]) -> int:
    """Blocks of ``kq`` samples on each side of the R peak: half the median RR interval
    (Orphanidou et al. 2015), kept within 0.2-0.75 s."""
    rr = np.diff(rpeaks)
    half_s = float(np.median(rr)) / fs / 2.0 if rr.size else 0.4
    half_s = min(max(half_s, 0.2), 0.75)
    return max(2, round(half_s * fs / kq))


def _rows(
    means: NDArray[np.float32], kq: int, peaks: NDArray[np.intp], nb: int
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """For each peak, 2 nb + 2 consecutive block means around it and the fractional offset.

    The block means sit on a fixed grid (block j centred on sample (j + 0.5) kq - 0.5); the
    beat window (2 nb + 1 values centred on the peak) is ``(1 - frac) * rows[:, :-1] + frac *
    rows[:, 1:]``, linear interpolation at the peak's grid position. Rows are contiguous
    copies of a strided view (float32: the means carry no large offset, see :func:`_scan`,
    so single precision loses nothing a correlation would notice); windows reaching past
    either end repeat the edge value.
    """
    f = (peaks + 0.5) / kq - 0.5
    base = np.floor(f)
    first = base.astype(np.intp) - nb
    lo, hi = int(first.min()) if first.size else 0, int(first.max()) + 2 * nb + 2
    if lo < 0 or hi > means.size:  # beats at the record's edges: pad with the edge value
        part = means[max(lo, 0) : min(hi, means.size)]
        part = np.pad(part, (max(0, -lo), max(0, hi - means.size)), mode="edge")
        first = first - lo
    else:
        part = means[lo:hi]
        first = first - lo
    view = np.lib.stride_tricks.sliding_window_view(part, 2 * nb + 2)
    return view[first], f - base


def _windows(rows: NDArray[np.float32], frac: NDArray[np.float64]) -> NDArray[np.float64]:
    """The interpolated beat windows of :func:`_rows` (float64; for templates)."""
    w = frac[:, None]
    r = rows.astype(np.float64)
    return np.asarray(r[:, :-1] * (1.0 - w) + r[:, 1:] * w)


def _detrend_rows(w: NDArray[np.floating[Any]]) -> None:
    """Remove each row's mean and least-squares line, in place."""
    ramp = _unit_ramp(w.shape[1]).astype(w.dtype)
    w -= w.mean(axis=1, keepdims=True)
    w -= np.outer(w @ ramp, ramp)


@lru_cache(maxsize=16)
def _unit_ramp(n: int) -> NDArray[np.float64]:
    """The centred, unit-norm ramp of length ``n`` (read-only; cached)."""
    ramp = np.arange(n, dtype=np.float64)
    ramp -= ramp.mean()
    ramp /= np.sqrt(ramp @ ramp)
    ramp.setflags(write=False)
    return ramp


def _template(w: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median beat of the beat windows ``w`` (modified in place), detrended."""
    _detrend_rows(w)
    mid = (w.shape[0] - 1) // 2
    if w.shape[0] % 2:  # an odd count (the usual case): one partition
        t = np.partition(w.T, mid, axis=1)[:, mid][None, :]
    else:
        t = np.median(w, axis=0)[None, :]
    _detrend_rows(t)
    return np.asarray(t[0])


def _correlations(
    rows: NDArray[np.float32],
    frac: NDArray[np.float64],
    templates: NDArray[np.float64],
    which: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Correlation of each detrended beat window with its (detrended) template.

    ``templates[which[i]]`` is the template of beat ``i``; ``which`` is non-decreasing.
    Detrending is a projection P (removing the constant c and the unit ramp r), so with
    T = P T: <P w, T> = <w, T> and |P w|^2 = |w|^2 - <w, c>^2 - <w, r>^2. The window is
    w = (1 - a) u + a v with u, v the rows without their last / first value, so every inner
    product with a fixed vector is one matrix product of the rows with that vector shifted
    both ways, and |w|^2 = (1 - a)^2 |u|^2 + 2 a (1 - a) <u, v> + a^2 |v|^2.
    """
    n = templates.shape[1]
    fixed = np.zeros((n + 1, 4))
    fixed[:-1, 0] = fixed[1:, 2] = 1.0 / np.sqrt(n)
    fixed[:-1, 1] = fixed[1:, 3] = _unit_ramp(n)
    proj = (rows @ fixed.astype(np.float32)).astype(np.float64)
    a = frac
    b = 1.0 - frac
    const = b * proj[:, 0] + a * proj[:, 2]
    ramp = b * proj[:, 1] + a * proj[:, 3]
    dot = np.empty(rows.shape[0])
    norm = np.sqrt(np.einsum("ij,ij->i", templates, templates))
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(which)) + 1, [which.size]))
    for lo, hi in itertools.pairwise(cuts.tolist()):
        shifted = np.zeros((n + 1, 2))
        shifted[:-1, 0] = shifted[1:, 1] = templates[which[lo]]
        part = rows[lo:hi] @ shifted.astype(np.float32)
        dot[lo:hi] = b[lo:hi] * part[:, 0] + a[lo:hi] * part[:, 1]
    sq = np.einsum("ij,ij->i", rows, rows).astype(np.float64)
    lag = np.einsum("ij,ij->i", rows[:, :-1], rows[:, 1:]).astype(np.float64)
    first, last = rows[:, 0].astype(np.float64), rows[:, -1].astype(np.float64)
    energy = b * b * (sq - last * last) + 2 * a * b * lag + a * a * (sq - first * first)
    energy -= const * const + ramp * ramp
    den = np.sqrt(np.maximum(energy, 0.0)) * norm[which]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, dot / den, 0.0)


def _spread(n: int, k: int) -> NDArray[np.intp]:
    """Up to ``k`` evenly spaced indices into ``range(n)``."""
    if n <= k:
        return np.arange(n, dtype=np.intp)
    return (np.arange(k, dtype=np.intp) * (n - 1)) // (k - 1)


def _sqi(
    means: NDArray[np.float32],
    kq: int,
    fs: float,
    peaks: NDArray[np.intp],
    ok: NDArray[np.bool_],
    s: QualitySettings,
) -> NDArray[np.float64]:
    """:func:`beat_sqi` on precomputed 20 ms block means."""
    out = np.full(peaks.size, np.nan)
    if peaks.size == 0:
        return out
    nb = _sqi_half_width(fs, kq, peaks)
    block = peaks // max(1, round(s.template_s * fs))
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(block)) + 1, [peaks.size]))
    n_blocks = cuts.size - 1
    which = np.repeat(np.arange(n_blocks), np.diff(cuts))
    # per block, TEMPLATE_BEATS evenly spaced usable beats (repeating some when fewer)
    good = np.flatnonzero(ok)
    count = np.bincount(which[good], minlength=n_blocks)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    own = count >= MIN_TEMPLATE_BEATS
    step = np.arange(TEMPLATE_BEATS)
    templates = np.zeros((n_blocks, 2 * nb + 1))
    if own.any():
        rank = first[own, None] + (step * (count[own, None] - 1)) // (TEMPLATE_BEATS - 1)
        windows = _windows(*_rows(means, kq, peaks[good[rank.ravel()]], nb))
        _detrend_rows(windows)
        stack = windows.reshape(int(own.sum()), TEMPLATE_BEATS, -1)
        mid = TEMPLATE_BEATS // 2
        templates[own] = np.partition(stack, mid, axis=1)[:, mid, :]
        _detrend_rows(templates)
    if not own.all():  # blocks with too few clean beats use the recording's median beat
        pool = good if good.size else np.arange(peaks.size)
        pool = pool[_spread(pool.size, RECORDING_TEMPLATE_BEATS)]
        templates[~own] = _template(_windows(*_rows(means, kq, peaks[pool], nb)))
    for a in range(0, peaks.size, SQI_BATCH):
        sel = slice(a, a + SQI_BATCH)
        rows, frac = _rows(means, kq, peaks[sel], nb)
        out[sel] = _correlations(rows, frac, templates, which[sel])
    _edge_beats(out, means, kq, peaks, nb, templates, which)
    return out


def _edge_beats(
    out: NDArray[np.float64],
    means: NDArray[np.float32],
    kq: int,
    peaks: NDArray[np.intp],
    nb: int,
    templates: NDArray[np.float64],
    which: NDArray[np.intp],
) -> None:
    """Beats whose window reaches past an end of the record: correlation over the part of
    the window inside it (the padded part would only lower it)."""
    lo = np.floor((peaks + 0.5) / kq - 0.5) - nb
    for i in np.flatnonzero((lo < 0) | (lo + 2 * nb + 2 > means.size)):
        w = _windows(*_rows(means, kq, peaks[i : i + 1], nb))[0]
        pos = lo[i] + np.arange(2 * nb + 1)
        inside = (pos >= 0) & (pos <= means.size - 1)
        if inside.sum() < 3:
            continue
        wv = w[inside] - w[inside].mean()
        tv = templates[which[i]][inside]
        tv = tv - tv.mean()
        den = float(np.sqrt((wv @ wv) * (tv @ tv)))
        out[i] = float(wv @ tv) / den if den > 0 else 0.0


@single_blas_thread
def beat_sqi(
    ecg: ArrayLike,
    fs: float,
    rpeaks: ArrayLike,
    *,
    usable: ArrayLike | None = None,
    settings: QualitySettings | None = None,
) -> NDArray[np.float64]:
    """Signal-quality index of each beat: its correlation with the local median beat.

    Parameters
    ----------
    ecg
        The ECG (finite; e.g. :attr:`SignalProblems.repaired`).
    fs
        Sampling rate in Hz.
    rpeaks
        R-peak sample indices, increasing.
    usable
        Optional mask of beats allowed into the templates (e.g. those outside bad stretches).
    settings
        :class:`QualitySettings` (``template_s``).

    Returns
    -------
    numpy.ndarray
        Pearson correlation (-1 to 1) of each beat with the median beat of its block.

    Notes
    -----
    Orphanidou et al. (2015): a window as wide as the median RR interval, centred on each R
    peak; the template is the median of the beats in the block (the paper averages the beats
    of a 10 s segment; the median of up to 63 evenly spaced beats of a 10-minute block resists
    outliers and follows slow changes of morphology); each beat's SQI is its correlation
    coefficient with the template, and 0.66 is the paper's acceptance threshold. Departures:
    the ECG is read as 20 ms block means (a low-pass with its first zero at 50 Hz, which keeps
    P, QRS and T but not muscle noise: on a simulated ECG with 6 dB muscle noise 0.1 % of
    beats, the one false detection, fall below 0.66, against 99 % on the raw samples, while
    R-peak detection is 99.9 % correct; at 0 dB all 79 false detections do, and 13 of 689 true
    beats; ``benchmarks/hrv_quality.py``), interpolated at each peak's position, and each
    window's least-squares line is removed (baseline wander).

    Examples
    --------
    >>> import numpy as np
    >>> fs = 250
    >>> t = np.arange(0, 30, 1 / fs)
    >>> beats = np.arange(0.5, 29.6, 0.8)
    >>> ecg = sum(np.exp(-((t - b) ** 2) / (2 * 0.01**2)) for b in beats)
    >>> ecg += np.random.default_rng(0).normal(0, 0.02, t.size)
    >>> peaks = np.round(beats * fs).astype(int)
    >>> sqi = beat_sqi(ecg, fs, peaks)
    >>> bool(sqi.min() > 0.9)
    True
    """
    s = settings or QualitySettings()
    x = np.asarray(ecg, dtype=np.float64)
    peaks = np.asarray(rpeaks, dtype=np.intp).ravel()
    ok = np.ones(peaks.size, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    kq, _ = _means_samples(fs)
    means = _block_means(x, kq)
    means -= np.median(means)
    return _sqi(means.astype(np.float32), kq, fs, peaks, ok, s)


def _apex_clipping(
    x: NDArray[np.float64],
    peaks: NDArray[np.intp],
    same: float,
    min_len: int,
    edge: float,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Beats whose apex sits on a cut plateau: (start, end) of each plateau.

    A plateau is a run of at least ``min_len`` identical samples through the apex, entered
    and left by steps of at least ``edge``. A clipped QRS has such a flat top wherever the
    range was exceeded, not only at the recording's extreme value (e.g. a saturating stage).
    """
    # a plateau through the apex needs an equal neighbour: test the few beats that have one
    inner = peaks[(peaks > 0) & (peaks < x.size - 1)]
    level = x[inner]
    peaks = inner[(np.abs(x[inner - 1] - level) <= same) | (np.abs(x[inner + 1] - level) <= same)]
    if peaks.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    half = 4 * min_len
    offs = np.arange(-half - 1, half + 2)
    w = x[np.clip(peaks[:, None] + offs, 0, x.size - 1)]
    c = half + 1
    flat = np.abs(w - w[:, c : c + 1]) <= same
    stop = np.zeros((peaks.size, 1), dtype=bool)
    right = np.argmin(np.concatenate((flat[:, c:], stop), axis=1), axis=1)
    left = np.argmin(np.concatenate((flat[:, c::-1], stop), axis=1), axis=1)
    rows = np.arange(peaks.size)
    level = w[:, c]
    # the step onto / off the plateau, over one sample or (halved) over two: a rising edge
    # can end a hair below the rail
    last = w.shape[1] - 1
    step_in = np.maximum(
        np.abs(w[rows, c - left] - level), np.abs(w[rows, np.maximum(c - left - 1, 0)] - level) / 2
    )
    step_out = np.maximum(
        np.abs(w[rows, np.minimum(c + right, last)] - level),
        np.abs(w[rows, np.minimum(c + right + 1, last)] - level) / 2,
    )
    hit = (left + right - 1 >= min_len) & (step_in >= edge) & (step_out >= edge)
    hit &= (left <= half) & (right <= half)  # a longer run is a flat stretch, found elsewhere
    a = peaks[hit] - left[hit] + 1
    b = peaks[hit] + right[hit]
    return a.astype(np.intp), b.astype(np.intp)


#: A flat stretch shorter than the lead-off length counts only when the RR interval around it
#: is longer than this many local median RR intervals (a beat is missing under it).
FLAT_MISSED_BEAT = 1.5


def _drop_short_flats(spans: _Spans, peaks: NDArray[np.intp], n: int) -> _Spans:
    """Keep a flat stretch only if it hides a beat.

    The RR interval that spans it (from the record's edge when no beat lies on that side)
    must exceed 1.5 times the median of the (up to) ten intervals around it. With coarse ADC
    steps, or in a noise-free simulated ECG, the isoelectric line between two narrow QRS
    complexes can be constant for nearly a whole RR interval (MIMIC waveforms at 125 Hz with
    QRS complexes of a few steps); such a stretch hides nothing.
    """
    flat = np.flatnonzero(spans.kind == "flat")
    if flat.size == 0 or peaks.size < 4:
        return spans
    rr = np.diff(peaks)
    keep = np.ones(spans.kind.size, dtype=bool)
    for i in flat:
        a, b = int(spans.start[i]), int(spans.end[i])
        k = int(np.searchsorted(peaks, a))  # peaks k-1 and k lie around the stretch
        if k < peaks.size and peaks[k] < b:
            continue  # a beat inside: keep
        before = int(peaks[k - 1]) if k > 0 else 0
        after = int(peaks[k]) if k < peaks.size else n
        near = rr[max(0, k - 6) : max(0, k - 1)]
        near = np.concatenate((near, rr[k : k + 5]))
        if near.size >= 3 and after - before <= FLAT_MISSED_BEAT * np.median(near):
            keep[i] = False
    return spans.where(keep)


def _unusable(
    spans: _Spans,
    fs: float,
    t: NDArray[np.float64],
    gaps: NDArray[np.bool_],
    margin_s: float,
    duration_s: float,
) -> tuple[_Spans, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Unusable time per kind in seconds (stretches with margins plus the gap intervals they
    cause, merged per kind) and the union of all."""
    kinds: list[str] = []
    all_s: list[NDArray[np.float64]] = []
    all_e: list[NDArray[np.float64]] = []
    ga, gb = t[:-1][gaps], t[1:][gaps]
    explained = np.zeros(ga.size, dtype=bool)
    for kind in QUALITY_KINDS[:-1]:
        sel = spans.kind == kind
        s, e = _merge(
            np.clip(spans.start[sel] / fs - margin_s, 0.0, duration_s),
            np.clip(spans.end[sel] / fs + margin_s, 0.0, duration_s),
        )
        hit = _overlaps(ga, gb, s, e)
        explained |= hit
        s, e = _merge(np.concatenate((s, ga[hit])), np.concatenate((e, gb[hit])))
        kinds.extend([kind] * s.size)
        all_s.append(s)
        all_e.append(e)
    s, e = _merge(ga[~explained], gb[~explained])
    kinds.extend(["low_sqi"] * s.size)
    all_s.append(s)
    all_e.append(e)
    starts, ends = np.concatenate(all_s), np.concatenate(all_e)
    merged = _merge(starts, ends)
    return _Spans(np.asarray(kinds, dtype="U8"), starts, ends), merged


@single_blas_thread
def assess_quality(
    ecg: ArrayLike,
    fs: float,
    *,
    settings: QualitySettings | None = None,
    detector: DetectorSettings | None = None,
) -> SignalQuality:
    """Signal quality of an ECG, R peaks on the repaired signal, and the usable beats.

    Parameters
    ----------
    ecg
        One ECG channel; missing samples as NaN.
    fs
        Sampling rate in Hz (>= 100).
    settings
        :class:`QualitySettings`.
    detector
        R-peak detector settings (:class:`peerlens.hrv.DetectorSettings`).

    Returns
    -------
    SignalQuality

    Raises
    ------
    HrvInputError
        As :func:`peerlens.hrv.detect_rpeaks` (bad shape or rate, too short), or
        :class:`EmptyRecordingError` / :class:`FlatSignalError` for a missing or constant
        channel.

    Notes
    -----
    :func:`detect_signal_problems`, R-peak detection on the repaired signal, flat stretches
    kept only where they hide a beat, beats whose apex sits on a plateau of >= 10 ms entered
    and left by steep steps added as clipping, :func:`beat_sqi` (templates from beats
    outside bad stretches), then: a beat is usable when it lies outside every bad stretch
    widened by ``margin_s`` and its SQI is at least ``min_sqi``; an RR interval is a gap when
    either of its beats is not usable or a widened stretch lies between them.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 250
    >>> t = np.arange(0, 60, 1 / fs)
    >>> beats = np.arange(0.5, 59.6, 0.8)
    >>> ecg = sum(np.exp(-((t - b) ** 2) / (2 * 0.01**2)) for b in beats)
    >>> ecg += np.random.default_rng(0).normal(0, 0.02, t.size)
    >>> ecg[5000:6250] = np.nan                      # 5 s of lead-off from 20 s
    >>> q = assess_quality(ecg, fs)
    >>> int(q.gaps.sum()), round(q.summary()["lead_off_s"], 1)
    (1, 5.6)
    """
    s = settings or QualitySettings()
    raw = _validate(ecg, fs)  # shape, rate and length, with the detector's messages
    problems = detect_signal_problems(raw, fs, settings=s)
    signal = problems.repaired
    peaks = _detect(
        signal,
        fs,
        detector or DetectorSettings(),
        checked=True,
        block_means=problems._baseline_means,
    )
    spans = _drop_short_flats(problems._spans, peaks, raw.size)
    same = RAIL_TOLERANCE * problems.scale
    edge = max(CLIP_EDGE * problems.scale, 3 * problems.step)
    ca, cb = _apex_clipping(signal, peaks, same, problems.clip_min_samples, edge)
    if ca.size:
        spans = spans.plus(_Spans.of(["clipping"] * ca.size, ca, cb))
    margin = s.margin_s * fs
    pk = peaks.astype(np.float64)
    in_bad = _inside(pk, spans, margin)
    sqi = _sqi(problems.means, problems.means_samples, float(fs), peaks, ~in_bad, s)
    usable = ~in_bad & (sqi >= s.min_sqi)
    gaps = ~(usable[:-1] & usable[1:])
    if spans.start.size:
        bs, be = _merge(spans.start - margin, spans.end + margin)
        gaps |= _overlaps(pk[:-1], pk[1:], bs, be)
    duration = raw.size / float(fs)
    unusable, merged = _unusable(spans, float(fs), pk / fs, gaps, s.margin_s, duration)
    return SignalQuality(
        rpeaks=peaks,
        beat_sqi=sqi,
        beat_usable=usable,
        gaps=gaps,
        duration_s=duration,
        settings=s,
        fs=float(fs),
        _spans=spans,
        _unusable=unusable,
        _all=merged,
    )
