"""R-peak detection: vectorised two-moving-average QRS detector with R-apex refinement.

The detector is Elgendi's two-event-related-moving-averages method (Elgendi 2013), chosen because
it scored best among simple detectors in a benchmark on MIT-BIH and noisy data (Elgendi 2013,
Se 99.78 %, +P 99.87 % on the whole MIT-BIH Arrhythmia Database) and because every step is a
linear-time array operation, so a 24-hour Holter runs in seconds with numpy/scipy alone. Each
detected QRS is then refined to the R apex on a band-limited copy of the ECG (see
:func:`detect_rpeaks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, sosfilt, sosfilt_zi

from peerlens.hrv._blas import single_blas_thread
from peerlens.hrv._errors import FlatSignalError, HrvInputError, RecordingTooShortError

__all__ = ["DetectorSettings", "detect_rpeaks"]


@dataclass(frozen=True)
class DetectorSettings:
    """Parameters of :func:`detect_rpeaks` (recorded in every result's provenance).

    Attributes
    ----------
    band_hz
        Pass band of the detection filter (3rd-order Butterworth, zero phase); 8-20 Hz holds most
        QRS energy (Elgendi 2013, after Elgendi et al. 2010).
    qrs_window_s, beat_window_s
        Widths of the QRS and beat moving averages: 97 ms and 611 ms (Elgendi 2013, table 3).
    beta
        Offset of the beat average as a fraction of the mean squared filtered signal: 0.08
        (Elgendi 2013). Here the mean is taken over a moving ``offset_window_s`` rather than the
        whole record, so that one noisy hour cannot mute the rest of a Holter.
    offset_window_s
        Width of that moving mean (30 s).
    refractory_s
        Minimum distance between two R peaks: 200 ms, the QRS refractory period used by Pan &
        Tompkins (1985). Of two candidates closer than this the one with more QRS energy is kept.
    refine_band_hz
        Band of the signal on which each peak is moved to the R apex (2nd-order Butterworth
        edges, zero phase): the 0.5 Hz edge removes baseline wander; the 20 Hz edge is the upper
        edge of the detection band (the QRS band of Elgendi 2013), which removes quantisation
        steps and muscle noise (EMG lies mostly above 20 Hz) that make the maximum jump between
        neighbouring samples, while keeping the R wave's apex. An earlier 40 Hz edge (the
        monitoring-ECG limit, Kligfield et al. 2007) let 20-40 Hz EMG move the apex: at 0 dB
        muscle noise 16 % of beats landed more than one sample off (benchmarks/hrv_accuracy.py).
    refine_window_s
        Half-width of the search window around each detected QRS (75 ms, half a QRS duration
        upper limit of 150 ms).
    detection_min_hz
        Detection (not refinement) runs on the ECG decimated by k = floor(fs / 100), i.e. at
        100-200 Hz, well above twice the 20 Hz upper edge of the detection band; the
        anti-aliasing filter is a k-sample boxcar applied four times, whose zeros sit on the
        alias frequencies of the band. Halves the cost of the detection stage at 250 Hz; peaks
        are located at full rate by the refinement.
    """

    band_hz: tuple[float, float] = (8.0, 20.0)
    qrs_window_s: float = 0.097
    beat_window_s: float = 0.611
    beta: float = 0.08
    offset_window_s: float = 30.0
    refractory_s: float = 0.2
    refine_band_hz: tuple[float, float] = (0.5, 20.0)
    refine_window_s: float = 0.075
    detection_min_hz: float = 100.0

    def as_dict(self) -> dict[str, object]:
        """Plain dict of the settings (for JSON provenance)."""
        return {
            "method": "elgendi2013-two-moving-averages+apex-refinement",
            "band_hz": list(self.band_hz),
            "qrs_window_s": self.qrs_window_s,
            "beat_window_s": self.beat_window_s,
            "beta": self.beta,
            "offset_window_s": self.offset_window_s,
            "refractory_s": self.refractory_s,
            "refine_band_hz": list(self.refine_band_hz),
            "refine_window_s": self.refine_window_s,
            "detection_min_hz": self.detection_min_hz,
        }


#: Long recordings are processed in chunks of this many seconds (keeps the working set in cache
#: and peak memory at a few chunk-sized arrays beside the input)...
CHUNK_S = 600.0
#: ...each extended by this margin on both sides, longer than the 30 s offset window's half
#: width and the filters' settling time, so results inside a chunk do not depend on its edges.
CHUNK_MARGIN_S = 20.0

#: Boxcars in the decimation (anti-alias) kernel of the detection stage.
DECIMATION_BOXCARS = 4

#: The refinement's baseline (below 0.5 Hz) is estimated on block means at about this rate.
BASELINE_GRID_HZ = 10.0

#: Shortest signal accepted by :func:`detect_rpeaks`, in seconds (two beat windows at 30 bpm).
MIN_DURATION_S = 4.0


def _validate(ecg: ArrayLike, fs: float) -> NDArray[np.float64]:
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 1:
        raise HrvInputError(f"ECG must be one channel (1-D array); got shape {x.shape}")
    if not np.isfinite(fs) or fs <= 0:
        raise HrvInputError(f"sampling rate must be a positive number of Hz; got {fs!r}")
    if fs < 100:
        raise HrvInputError(
            f"sampling rate {fs:g} Hz is too low for R-peak detection (need >= 100 Hz)"
        )
    if x.size < MIN_DURATION_S * fs:
        raise RecordingTooShortError(
            f"ECG is {x.size / fs:.2f} s long; R-peak detection needs at least {MIN_DURATION_S:g} s"
        )
    return x


def _value_range(x: NDArray[np.float64], whole: NDArray[np.float64]) -> tuple[float, float]:
    """Min and max of ``x`` (a part of ``whole``); an error if ``whole`` has non-finite samples.

    Checked part by part inside the chunk loop, while each part is in cache, rather than in two
    extra passes over the whole record.
    """
    lo, hi = float(np.min(x)), float(np.max(x))  # NaN propagates; +/-inf shows at an end
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = ~np.isfinite(whole)
        first = int(np.flatnonzero(bad)[0])
        raise HrvInputError(
            f"ECG holds {int(bad.sum())} missing or non-finite samples (first at sample {first}); "
            "fill or cut the gap before detection"
        )
    return lo, hi


def _check_not_flat(lo: float, hi: float) -> None:
    if lo == hi:
        raise FlatSignalError("ECG channel is flat (all samples equal): is the electrode on?")


@lru_cache(maxsize=32)
def _design(
    order: int, lo: float, hi: float, fs: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Butterworth band-pass SOS and its steady-state initial conditions (designed once)."""
    sos = butter(order, [lo, min(hi, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sos, sosfilt_zi(sos)


def _zero_phase(
    design: tuple[NDArray[np.float64], NDArray[np.float64]], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Forward-backward filtering (zero phase), both passes started in steady state.

    Like ``scipy.signal.sosfiltfilt`` without its odd-extension padding copies (about 1.6x
    faster); the edges differ only within the filter's settling time, which the chunk margins
    of :func:`detect_rpeaks` cover.
    """
    sos, zi = design
    y, _ = sosfilt(sos, x, zi=zi * x[0])
    y = y[::-1]
    y, _ = sosfilt(sos, y, zi=zi * y[0])
    return np.ascontiguousarray(y[::-1])


def _moving_mean(csum: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Centred moving mean of width ``width`` from the cumulative sum ``csum`` (with leading 0).

    Edges use the samples available (shrinking window). O(N), one pass.
    """
    n = csum.size - 1
    half = width // 2
    if width >= n:
        return np.full(n, csum[-1] / n)
    out = np.empty(n)
    # interior: sample i averages [i - half, i - half + width)
    np.subtract(csum[width:], csum[:-width], out=out[half : half + n - width + 1])
    out[half : half + n - width + 1] /= width
    # edges: shrinking windows (few samples, fancy indexing is fine here)
    for idx in (np.arange(0, half), np.arange(half + n - width + 1, n)):
        lo = np.maximum(idx - half, 0)
        hi = np.minimum(idx - half + width, n)
        out[idx] = (csum[hi] - csum[lo]) / (hi - lo)
    return out


def _blocks(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start (inclusive) and end (exclusive) indices of runs of True in ``mask``."""
    d = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return starts, ends


def _argmax_per_block(
    values: NDArray[np.float64], starts: NDArray[np.intp], ends: NDArray[np.intp]
) -> NDArray[np.intp]:
    """Index of the (first) maximum of ``values`` inside each block, vectorised."""
    widths = ends - starts
    block_id = np.repeat(np.arange(starts.size), widths)
    offsets = np.arange(widths.sum()) - np.repeat(np.cumsum(widths) - widths, widths)
    idx = np.repeat(starts, widths) + offsets
    maxima = np.full(starts.size, -np.inf)
    np.maximum.at(maxima, block_id, values[idx])
    hit = values[idx] == maxima[block_id]
    first = np.unique(block_id[hit], return_index=True)[1]
    return idx[hit][first]


def _enforce_refractory(
    peaks: NDArray[np.intp], energy: NDArray[np.float64], min_gap: int
) -> NDArray[np.intp]:
    """Drop the weaker of any two peaks closer than ``min_gap`` samples until none remain.

    ``energy`` is aligned with ``peaks`` (one value per peak).
    """
    while peaks.size > 1:
        close = np.flatnonzero(np.diff(peaks) < min_gap)
        if close.size == 0:
            break
        # resolve non-overlapping pairs first; chains are handled on the next pass
        close = close[np.concatenate(([True], np.diff(close) > 1))]
        drop = np.where(energy[close] >= energy[close + 1], close + 1, close)
        peaks = np.delete(peaks, drop)
        energy = np.delete(energy, drop)
    return peaks


def _enforce_refractory_with(
    peaks: NDArray[np.intp], height: NDArray[np.float64], min_gap: int
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """:func:`_enforce_refractory` that also returns the heights of the kept peaks."""
    kept = _enforce_refractory(peaks, height, min_gap)
    return kept, height[np.searchsorted(peaks, kept)]


@lru_cache(maxsize=32)
def _refine_matrix(hi: float, fs: float, half: int) -> tuple[NDArray[np.float64], int]:
    """Zero-phase low-pass as a matrix acting on a beat's samples; and its kernel half-length.

    The kernel is the autocorrelation of the impulse response of a 2nd-order Butterworth
    low-pass at ``hi`` Hz, i.e. exactly what forward-backward filtering applies away from the
    record's edges, truncated where it falls below 1e-6 of its peak. For a window of
    ``2 * (half + t) + 1`` samples centred on a beat (``t`` the kernel half-length),
    ``window @ M`` is the filtered signal on the central ``2 * half + 1`` samples.
    """
    sos = butter(2, min(hi, 0.45 * fs), btype="lowpass", fs=fs, output="sos")
    impulse = np.zeros(max(64, int(4 * fs)))
    impulse[0] = 1.0
    h = sosfilt(sos, impulse)
    g = np.correlate(h, h, mode="full")
    centre = h.size - 1
    t = int(np.flatnonzero(np.abs(g) >= 1e-6 * g[centre])[-1]) - centre
    kernel = g[centre - t : centre + t + 1]
    width = 2 * half + 1
    matrix = np.zeros((width + 2 * t, width))
    for j in range(width):
        matrix[j : j + 2 * t + 1, j] = kernel
    return matrix, t


def _block_means(x: NDArray[np.float64], kb: int) -> NDArray[np.float64]:
    """Means of consecutive blocks of ``kb`` samples (a trailing partial block is dropped)."""
    nb = x.size // kb
    out = np.add.reduceat(x[: nb * kb], np.arange(0, nb * kb, kb)) if nb else np.zeros(0)
    out *= 1.0 / kb
    return out


def _baseline(
    means: NDArray[np.float64], kb: int, lo: float, fs: float, fallback: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ECG's baseline, a zero-phase low-pass below ``lo`` Hz, as (sample index, value).

    ``means`` are the means of consecutive blocks of ``kb`` samples (100 ms): a baseline below
    0.5 Hz needs no finer grid. What aliases into the 0-0.5 Hz band comes from 9.5-10.5 Hz,
    where the block mean (first zero at 10 Hz) passes at most 5 % of the ECG's harmonics: a
    ripple far too slow and small to tilt an R apex by a sample. The baseline is read between
    grid points by linear interpolation. O(N / kb).
    """
    if means.size < 8:
        return np.array([0.0, 1.0]), np.full(2, fallback)
    sos = butter(2, lo, btype="lowpass", fs=fs / kb, output="sos")
    base = _zero_phase((sos, sosfilt_zi(sos)), means)
    grid = np.arange(means.size) * float(kb) + (kb - 1) / 2.0
    return grid.astype(np.float64), base


def baseline_block(fs: float) -> int:
    """Samples per block of the baseline grid (about 100 ms)."""
    return max(1, round(fs / BASELINE_GRID_HZ))


#: Beats refined per batch (bounds the refinement's working memory to a few MB).
REFINE_BATCH = 8192


def _refine(
    ecg: NDArray[np.float64],
    peaks: NDArray[np.intp],
    fs: float,
    settings: DetectorSettings,
    polarity_block: int,
    baseline: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.intp]:
    """Move each peak to the R apex of the band-limited ECG within +/- the refine window.

    The band-limited ECG is the zero-phase low-pass (``refine_band_hz[1]``) of the ECG minus
    its baseline (zero-phase low-pass at ``refine_band_hz[0]``; Butterworth low- and high-pass
    of one order and cutoff are power complementary, so this is the zero-phase band-pass).
    Both are computed only around the beats: the low-pass as a truncated zero-phase kernel on
    each beat's samples (:func:`_refine_matrix`), the baseline on a coarse grid
    (:func:`_baseline`), taken as a straight line across each 150 ms window (a < 0.5 Hz
    baseline bends by less than 3 % of its amplitude over 150 ms). The cost is O(beats), and
    each apex depends only on the ECG within a quarter of a second of it.

    R polarity is the lead's dominant deflection, decided per ``polarity_block`` samples from
    the median over its beats of max - |min|, so ventricular beats cannot flip single beats to
    the S wave while a change of electrode position during a Holter is followed.
    """
    if peaks.size == 0:
        return peaks
    hi = settings.refine_band_hz[1]
    half = max(1, round(settings.refine_window_s * fs))
    matrix, t = _refine_matrix(float(hi), float(fs), half)
    grid, base = baseline
    n, m = ecg.size, peaks.size
    ext = half + t
    offsets = np.arange(-ext, ext + 1)
    ramp = np.linspace(0.0, 1.0, 2 * half + 1)
    rows = np.lib.stride_tricks.sliding_window_view(ecg, 2 * ext + 1) if n > 2 * ext else None
    arg_up = np.empty(m, dtype=np.intp)
    arg_down = np.empty(m, dtype=np.intp)
    up = np.empty(m)
    down = np.empty(m)
    for i in range(0, m, REFINE_BATCH):
        p = peaks[i : i + REFINE_BATCH]
        inner = (p >= ext) & (p < n - ext)
        if (
            rows is not None and inner.all()
        ):  # rows of a strided view: contiguous copies, no per-sample gather
            window = rows[p - ext]
        else:
            window = ecg[np.clip(p[:, None] + offsets, 0, n - 1)]
        r = window @ matrix
        first = np.interp(p - half, grid, base)[:, None]
        last = np.interp(p + half, grid, base)[:, None]
        r -= first + (last - first) * ramp
        hi_at, lo_at = np.argmax(r, axis=1), np.argmin(r, axis=1)
        rows_b = np.arange(p.size)
        arg_up[i : i + p.size] = hi_at
        arg_down[i : i + p.size] = lo_at
        up[i : i + p.size] = r[rows_b, hi_at]
        down[i : i + p.size] = -r[rows_b, lo_at]
    block = peaks // polarity_block
    cuts = np.flatnonzero(np.diff(block)) + 1
    positive = np.concatenate(
        [np.full(d.size, np.median(d) >= 0) for d in np.split(up - down, cuts)]
    )
    refined = np.clip(peaks - half + np.where(positive, arg_up, arg_down), 0, n - 1)
    height = np.where(positive, up, down)
    order = np.argsort(refined, kind="stable")
    refined, height = refined[order], height[order]
    keep = np.concatenate(([True], np.diff(refined) > 0))
    refined, height = refined[keep], height[keep]
    min_gap = max(1, round(settings.refractory_s * fs))
    return _enforce_refractory(refined.astype(np.intp), height, min_gap)


_heap_primed = False


def _keep_freed_memory() -> None:
    """Let the allocator reuse, rather than return to the OS, each chunk's working arrays.

    glibc's malloc serves blocks above a threshold (initially 128 kB) with mmap and returns freed
    memory at the top of its heap to the OS above a trim threshold; both thresholds rise when an
    mmapped block is freed. Without that, the ~6 MB of arrays of each 10-minute chunk are handed
    back to the OS and faulted in again (zero-filled) in the next: about 60,000 page faults and
    0.1 s per 24 hours. Allocating and freeing one 16 MB block (never touched, so it costs two
    system calls) raises the thresholds once per process. Other allocators ignore it.
    """
    global _heap_primed
    if not _heap_primed:
        block = np.empty(2**21)  # 16 MB, below glibc's 32 MB cap for the dynamic threshold
        del block
        _heap_primed = True


@single_blas_thread
def detect_rpeaks(
    ecg: ArrayLike, fs: float, *, settings: DetectorSettings | None = None
) -> NDArray[np.intp]:
    """Detect R peaks in a single-lead ECG and return their sample indices.

    Parameters
    ----------
    ecg
        One ECG channel (any unit; the detector is scale-free).
    fs
        Sampling rate in Hz (>= 100).
    settings
        Detector parameters; defaults to :class:`DetectorSettings`.

    Returns
    -------
    numpy.ndarray
        Sorted, unique sample indices (``intp``) of the R apexes.

    Raises
    ------
    HrvInputError
        Non-1-D input, non-finite samples, or a sampling rate below 100 Hz.
    RecordingTooShortError
        Fewer than 4 s of signal.
    FlatSignalError
        A constant channel.

    Notes
    -----
    Detection follows Elgendi (2013): zero-phase Butterworth band-pass 8-20 Hz, squaring,
    a QRS moving average (97 ms) and a beat moving average (611 ms); samples where the QRS
    average exceeds the beat average plus an offset ``beta * mean(y^2)`` form blocks of interest,
    and blocks at least one QRS window wide are QRS complexes. Departures from the paper: the
    offset mean is local (30 s moving mean), a 200 ms refractory period (Pan & Tompkins 1985)
    removes double detections, and detection runs on the ECG decimated to 100-200 Hz
    (``DetectorSettings.detection_min_hz``). Each QRS is then refined, at the input's rate, to
    the extremum in the lead's dominant polarity of the 0.5-20 Hz band-limited ECG within
    +/- 75 ms: the R apex of the waveform without baseline wander, quantisation steps and muscle
    noise (computed around the beats only, see :func:`_refine`). Every step is O(N) or
    O(beats). Recordings longer than ten minutes are processed in 10-minute chunks with 20 s
    margins; the lead polarity is decided per 10-minute block, so a change of electrode position
    during a Holter is followed. BLAS runs single-threaded inside (see ``peerlens.hrv._blas``).

    References
    ----------
    Elgendi M (2013). Fast QRS detection with an optimized knowledge-based method: evaluation on
    11 standard ECG databases. PLoS ONE 8(9): e73557.
    Pan J, Tompkins WJ (1985). A real-time QRS detection algorithm. IEEE Trans Biomed Eng 32(3).
    Kligfield P et al. (2007). Recommendations for the standardization and interpretation of the
    electrocardiogram, part I. Circulation 115(10): 1306-1324.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 250
    >>> t = np.arange(0, 10, 1 / fs)
    >>> beats = np.arange(0.5, 9.6, 0.8)
    >>> ecg = sum(np.exp(-((t - b) ** 2) / (2 * 0.01**2)) for b in beats)
    >>> peaks = detect_rpeaks(ecg, fs)
    >>> np.array_equal(peaks, np.round(beats * fs).astype(int))
    True
    """
    return _detect(_validate(ecg, fs), fs, settings or DetectorSettings(), checked=False)


def _detect(
    x: NDArray[np.float64],
    fs: float,
    s: DetectorSettings,
    *,
    checked: bool,
    block_means: NDArray[np.float64] | None = None,
) -> NDArray[np.intp]:
    """:func:`detect_rpeaks` on a validated signal.

    ``checked=True`` skips the finiteness and flatness checks, for callers that have already
    made them in their own pass over the signal (:func:`peerlens.hrv.quality.assess_quality`);
    such a caller can also pass the means of consecutive blocks of :func:`baseline_block`
    samples (the trailing partial block dropped), which the baseline is computed from.
    """
    n = x.size
    k = max(1, int(fs // s.detection_min_hz))
    kb = baseline_block(fs)
    chunk = max(1, round(CHUNK_S * fs / kb)) * kb  # whole baseline blocks per chunk
    margin = round(CHUNK_MARGIN_S * fs)
    if n <= chunk + 2 * margin:
        if not checked:
            _check_not_flat(*_value_range(x, x))
        candidates, energy = _candidates(x, fs, k, s)
        means = _block_means(x, kb) if block_means is None else block_means
        polarity_block = n
    else:
        _keep_freed_memory()
        found, energies, blocks = [], [], []
        lo, hi = np.inf, -np.inf
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            a, b = max(0, start - margin), min(n, stop + margin)
            if not checked:
                part_lo, part_hi = _value_range(x[a:b], x)
                lo, hi = min(lo, part_lo), max(hi, part_hi)
            peaks, energy = _candidates(x[a:b], fs, k, s)
            peaks += a
            keep = (peaks >= start) & (peaks < stop)
            found.append(peaks[keep])
            energies.append(energy[keep])
            if block_means is None:
                blocks.append(_block_means(x[start:stop], kb))  # while the chunk is in cache
        if not checked:
            _check_not_flat(lo, hi)
        candidates = np.concatenate(found)
        energy = np.concatenate(energies)
        means = np.concatenate(blocks) if block_means is None else block_means
        polarity_block = chunk
    candidates = _enforce_refractory(candidates, energy, max(1, round(s.refractory_s * fs)))
    lo = s.refine_band_hz[0]
    # the fallback (a flat baseline) only serves records under 0.8 s; the mean of the block
    # means spares a pass over the whole signal
    fallback = float(np.mean(means)) if means.size else float(np.mean(x))
    baseline = _baseline(means, kb, lo, float(fs), fallback=fallback)
    return _refine(x, candidates, fs, s, polarity_block, baseline)


@lru_cache(maxsize=16)
def _antialias(k: int) -> NDArray[np.float64]:
    """The decimation kernel: a k-sample boxcar convolved with itself four times, normalised."""
    w = np.ones(k)
    for _ in range(DECIMATION_BOXCARS - 1):
        w = np.convolve(w, np.ones(k))
    return w / w.sum()


def _decimate(x: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Every k-th sample of ``x`` smoothed by :func:`_antialias` (output j centred on x[j k]).

    The kernel's zeros sit at multiples of fs / k, exactly where the detection band's alias
    images fold back from, and its fourth power keeps muscle noise near them (e.g. 95-105 Hz
    folding onto 20-30 Hz at k = 2) more than 40 dB down; at k = 2 it is the binomial
    [1, 4, 6, 4, 1] / 16. With a single triangular (twice-boxcar) kernel, heavy simulated muscle
    noise gave about 1 % more false detections than no decimation; with this one, none more
    (benchmarks/hrv_accuracy.py). Samples beyond an edge repeat the edge sample.
    """
    if k == 1:
        return x
    w = _antialias(k)
    c = w.size // 2
    m = (x.size - 1) // k + 1
    out = x[0::k] * w[c]
    pair = np.empty(m)
    for i in range(1, c + 1):
        right = x[i::k][:m]  # x[j k + i] for j = 0 .. right.size - 1
        j0 = -(-i // k)  # first j with j k - i >= 0
        left = x[j0 * k - i :: k][: m - j0]  # x[j k - i] for j = j0 .. m - 1
        pair[: right.size] = right
        pair[right.size :] = x[-1]
        pair[j0 : j0 + left.size] += left
        pair[:j0] += x[0]
        pair *= w[c + i]
        out += pair
    return out


def _candidates(
    x: NDArray[np.float64], fs: float, k: int, s: DetectorSettings
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """QRS candidates of one contiguous segment: (sample indices in ``x``, QRS energy).

    Elgendi's two moving averages on the ECG decimated by ``k``; each QRS block's energy
    maximum, mapped back to the input's sample grid (the refinement then finds the apex).
    """
    lo, hi = s.band_hz
    fd = fs / k
    y = _zero_phase(_design(3, lo, hi, float(fd)), _decimate(x, k))
    np.square(y, out=y)  # y is now the squared filtered signal (QRS energy)
    w1 = max(1, round(s.qrs_window_s * fd))
    w2 = max(w1 + 1, round(s.beat_window_s * fd))
    csum = np.empty(y.size + 1)
    csum[0] = 0.0
    np.cumsum(y, out=csum[1:])
    ma_qrs = _moving_mean(csum, w1)
    ma_beat = _moving_mean(csum, w2)
    ma_beat += s.beta * _moving_mean(csum, max(w2, round(s.offset_window_s * fd)))
    del csum
    mask = ma_qrs > ma_beat
    del ma_qrs, ma_beat
    starts, ends = _blocks(mask)
    wide = (ends - starts) >= w1
    starts, ends = starts[wide], ends[wide]
    if starts.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    peaks = _argmax_per_block(y, starts, ends)
    peaks = _enforce_refractory(peaks, y[peaks], max(1, round(s.refractory_s * fd)))
    return (peaks * k).astype(np.intp), y[peaks]
