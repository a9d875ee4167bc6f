"""HRV outcomes by arm over time: log RMSSD and log HF power per recording window, their
session-minus-baseline reactivity, the validity filters applied, and the GRAPH reporting items.

Input is the study's HRV results as a frame, one row per recording window (the columns of
``peerlens.study.derived_frame(..., "hrv")``: ``participant``, ``label``, ``status``,
``valid``, ``reason``, ``rmssd_ms``, ``hf_ms2``, ``artifact_rate``, ``start_s``, ``end_s``,
``pipeline_version``, ``derivation``) with the participant's ``arm`` and the ``timepoint`` of
the recording joined on; nothing here reads the store.

Models (each :func:`peerlens.analysis.fit_mixed_model`, REML, random intercept per participant,
Satterthwaite df)::

    ln(RMSSD) ~ arm * timepoint + (1 | participant)         one per window
    ln(HF)    ~ arm * timepoint + (1 | participant)         one per window
    ln(X_session) - ln(X_baseline) ~ arm * timepoint + (1 | participant)   reactivity

Both measures are log-transformed because their distributions are right-skewed and their
variance grows with their level (Task Force 1996; Laborde, Mosley & Thayer 2017); a
difference of logs is a log ratio, so reactivity of -0.2 means the session value is about 18 %
below the baseline value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from peerlens import PeerlensError
from peerlens.analysis.mixed import MixedModelError, MixedModelFit, fit_mixed_model

__all__ = ["GRAPH_ITEMS", "HrvModelError", "HrvModels", "fit_hrv_models", "graph_items"]

#: Log-transformed outcome -> the metric column it is taken from.
HRV_OUTCOMES = {"ln_rmssd": "rmssd_ms", "ln_hf": "hf_ms2"}

#: GRAPH reporting items (Quintana, Alvares & Heathers 2016, "Guidelines for Reporting
#: Articles on Psychiatry and Heart rate variability"), worded here in our own words: item ->
#: the recordings' column(s) that can fill it, in order of preference. Items no column fills
#: (participant characteristics the study does not keep, recording conditions) say "not
#: recorded"; :func:`graph_items` adds the items computed from the HRV results.
GRAPH_ITEMS: dict[str, tuple[str, ...]] = {
    "Participants' age, sex and body mass index": ("age", "sex", "bmi"),
    "Psychiatric diagnoses and conditions that affect the heart (e.g. heart disease, diabetes)": (
        "conditions",
    ),
    "Medication noted": ("medication",),
    "Smoking, alcohol use and physical activity": ("lifestyle",),
    "Recording device": ("device",),
    "Signal type": ("kind",),
    "Sampling rate (Hz)": ("sampling_rate_hz",),
    "ECG lead or channel analysed": ("lead",),
    "Electrode or sensor placement": ("placement",),
    "Posture during recording": ("posture",),
    "Time of day": ("time_of_day",),
    "Setting, and rest before the first window": ("environment",),
    "Respiration (rate, paced breathing or its control)": ("respiration", "respiration_rate"),
    "Caffeine, nicotine, exercise restrictions before recording": ("restrictions",),
    "R-peak detection": ("detector",),
    "Artefact correction method": ("artifact_method",),
    "Spectral method": ("spectral_method",),
}


class HrvModelError(PeerlensError):
    """The HRV results cannot carry the models (what is missing is named)."""


@dataclass(frozen=True)
class HrvModels:
    """The HRV models of a study.

    ``fits`` maps ``"<outcome>@<window>"`` (e.g. ``"ln_rmssd@session"``) and
    ``"reactivity_<outcome>"`` to a :class:`MixedModelFit`; ``not_fitted`` maps every model
    that could not be fitted to the reason (nothing is dropped silently). ``exclusions`` counts
    the windows left out: ``window``, ``outcome`` (empty when the whole window was left out),
    ``arm``, ``reason``, ``n``. ``used`` counts the windows that entered each model. ``graph``
    is the GRAPH reporting table (``item``, ``value``, ``source``).
    """

    fits: dict[str, MixedModelFit]
    not_fitted: dict[str, str]
    exclusions: pd.DataFrame
    used: dict[str, int]
    graph: pd.DataFrame
    notes: tuple[str, ...]
    data: pd.DataFrame = field(repr=False)


def fit_hrv_models(
    hrv: pd.DataFrame,
    *,
    recordings: pd.DataFrame | None = None,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    window: str = "label",
    windows: Sequence[str] = ("baseline", "session", "recovery"),
    reactivity: tuple[str, str] = ("session", "baseline"),
    arms: Sequence[str] | None = None,
    timepoints: Sequence[str] | None = None,
    exclude_stale: bool = True,
    level: float = 0.95,
) -> HrvModels:
    """Fit the log RMSSD and log HF models per window and their reactivity, after the validity
    filters.

    Parameters
    ----------
    hrv
        One row per recording window (see the module docstring) with ``arm`` and
        ``timepoint``.
    recordings
        Optional recording metadata for the GRAPH table, one row per recording (``device``,
        ``kind``, ``sampling_rate_hz`` and whichever of the other :data:`GRAPH_ITEMS` columns
        the study keeps).
    participant, arm, timepoint, window
        Column names.
    windows
        The window labels to model (others, e.g. ``whole``, are ignored).
    reactivity
        (task window, rest window): reactivity is ``ln(task) - ln(rest)``.
    arms, timepoints, level
        As for :func:`fit_mixed_model`.
    exclude_stale
        Leave out results whose derivation is ``stale`` (derived by another pipeline version or
        before the windows changed).

    Returns
    -------
    HrvModels

    Raises
    ------
    HrvModelError
        A needed column is missing, or a participant has two windows of one label at one
        timepoint.
    """
    needed = [participant, arm, timepoint, window, "status", "valid", *HRV_OUTCOMES.values()]
    missing = [c for c in needed if c not in hrv.columns]
    if missing:
        raise HrvModelError(f"the HRV results have no column {', '.join(map(repr, missing))}")
    frame = hrv[hrv[window].isin(list(windows))].copy()
    twice = frame.duplicated([participant, timepoint, window])
    if twice.any():
        row = frame[twice].iloc[0]
        raise HrvModelError(
            f"participant {row[participant]!r} has two {row[window]!r} windows at timepoint "
            f"{row[timepoint]!r}"
        )
    frame, excluded = _filter(frame, window, arm, exclude_stale)
    for out, col in HRV_OUTCOMES.items():
        value = pd.to_numeric(frame[col], errors="coerce")
        positive = value > 0
        frame[out] = np.log(value.where(positive))
        bad = frame[~positive.fillna(False)]
        reason = pd.Series(f"{col} missing or not positive", index=bad.index)
        excluded += _counts(bad, reason, window, arm, out)
    fits: dict[str, MixedModelFit] = {}
    not_fitted: dict[str, str] = {}
    used: dict[str, int] = {}
    options = {"participant": participant, "arm": arm, "timepoint": timepoint}
    for out in HRV_OUTCOMES:
        for w in windows:
            part = frame[(frame[window] == w) & frame[out].notna()]
            _fit_one(f"{out}@{w}", part, out, options, arms, timepoints, level, fits, not_fitted)
            used[f"{out}@{w}"] = len(part)
        task, rest = reactivity
        keys = [participant, timepoint]
        wide = frame[frame[window].isin([task, rest])].pivot_table(
            index=keys, columns=window, values=out, aggfunc="first"
        )
        if task in wide.columns and rest in wide.columns:
            change = (wide[task] - wide[rest]).dropna().rename(f"reactivity_{out}").reset_index()
            arm_of = frame.groupby(participant)[arm].first()
            change[arm] = change[participant].map(arm_of)
        else:
            change = pd.DataFrame(columns=[*keys, f"reactivity_{out}", arm])
        key = f"reactivity_{out}"
        _fit_one(key, change, key, options, arms, timepoints, level, fits, not_fitted)
        used[key] = len(change)
    exclusions = pd.DataFrame(excluded, columns=["window", "outcome", "arm", "reason", "n"])
    notes = (
        "Windows left out (errors, invalid by the HRV quality rules, stale derivations, "
        "non-positive values) are counted in `exclusions`; participants keep their other "
        "windows (missing at random assumed).",
        "Log RMSSD and log HF: differences between arms are ratios of geometric means "
        "(exp(estimate)).",
        "Reactivity uses only timepoints where both windows are valid; HF power depends on "
        "breathing rate, so respiration should be reported or controlled (see GRAPH table).",
    )
    return HrvModels(
        fits=fits,
        not_fitted=not_fitted,
        exclusions=exclusions,
        used=used,
        graph=graph_items(hrv, recordings, window=window),
        notes=notes,
        data=frame,
    )


def _filter(
    frame: pd.DataFrame, window: str, arm: str, exclude_stale: bool
) -> tuple[pd.DataFrame, list[tuple[str, str, str, str, int]]]:
    """Windows whose analysis failed, that the HRV quality rules marked invalid, or (with
    ``exclude_stale``) whose derivation is stale, with the count of each reason per window and
    arm."""
    status_bad = frame["status"] != "ok"
    invalid = ~status_bad & (frame["valid"].astype("boolean").fillna(False) == False)  # noqa: E712
    stale = (
        (
            frame["derivation"].eq("stale")
            if exclude_stale and "derivation" in frame.columns
            else pd.Series(False, index=frame.index)
        )
        & ~status_bad
        & ~invalid
    )
    reasons = frame.get("reason", pd.Series("", index=frame.index)).fillna("").astype(str)
    why = pd.Series("", index=frame.index, dtype=object)
    why[status_bad] = "analysis error"
    why[stale] = "stale derivation"
    why[invalid] = "invalid: " + reasons[invalid].where(reasons[invalid] != "", "no reason given")
    excluded = _counts(frame[why != ""], why[why != ""], window, arm, "")
    return frame[why == ""].copy(), excluded


def _counts(
    rows: pd.DataFrame, reasons: pd.Series, window: str, arm: str, outcome: str
) -> list[tuple[str, str, str, str, int]]:
    """(window, outcome, arm, reason, n) of ``rows`` left out for ``reasons``."""
    arms = rows[arm].astype(object).where(rows[arm].notna(), "")
    counts = rows.groupby([rows[window], arms, reasons], sort=True).size()
    return [
        (str(w), outcome, str(a), str(r), int(n))
        for (w, a, r), n in zip(counts.index.tolist(), counts.tolist(), strict=True)
    ]


def _fit_one(
    key: str,
    part: pd.DataFrame,
    outcome: str,
    options: Mapping[str, str],
    arms: Sequence[str] | None,
    timepoints: Sequence[str] | None,
    level: float,
    fits: dict[str, MixedModelFit],
    not_fitted: dict[str, str],
) -> None:
    if part.empty:
        not_fitted[key] = "no valid windows"
        return
    try:
        fits[key] = fit_mixed_model(
            part,
            outcome,
            participant=options["participant"],
            arm=options["arm"],
            timepoint=options["timepoint"],
            arms=arms,
            timepoints=timepoints,
            level=level,
        )
    except MixedModelError as exc:
        not_fitted[key] = str(exc)


def graph_items(
    hrv: pd.DataFrame, recordings: pd.DataFrame | None = None, *, window: str = "label"
) -> pd.DataFrame:
    """The GRAPH reporting items (Quintana, Alvares & Heathers 2016) filled from what the study
    stores: recording metadata, window lengths, artefact rates, exclusions and the pipeline
    version. An item with nothing stored says ``not recorded``.

    Returns
    -------
    pandas.DataFrame
        ``item``, ``value``, ``source`` (``recordings``, ``hrv results``, ``analysis`` or
        ``not recorded``).

    Examples
    --------
    >>> hrv = pd.DataFrame({"label": ["baseline", "session"], "start_s": [0.0, 300.0],
    ...                     "end_s": [300.0, 1500.0], "artifact_rate": [0.01, 0.03]})
    >>> table = graph_items(hrv, pd.DataFrame({"device": ["Polar H10"]}))
    >>> table.set_index("item").loc["Recording device", "value"]
    'Polar H10'
    >>> table.set_index("item").loc["Posture during recording", "source"]
    'not recorded'
    """
    rows: list[tuple[str, str, str]] = []
    meta = recordings if recordings is not None else pd.DataFrame()
    for item, columns in GRAPH_ITEMS.items():
        found = next((c for c in columns if c in meta.columns and meta[c].notna().any()), None)
        if found is None:
            rows.append((item, "not recorded", "not recorded"))
        else:
            rows.append((item, _describe(meta[found]), "recordings"))
    if {"start_s", "end_s", window} <= set(hrv.columns):
        length = (hrv["end_s"] - hrv["start_s"]) / 60
        parts = [
            f"{w}: median {g.median():.1f} min ({g.min():.1f}-{g.max():.1f})"
            for w, g in length.groupby(hrv[window])
            if g.notna().any()
        ]
        rows.append(("Recording length per window", "; ".join(parts), "hrv results"))
    else:
        rows.append(("Recording length per window", "not recorded", "not recorded"))
    if "artifact_rate" in hrv.columns and hrv["artifact_rate"].notna().any():
        rate = 100 * hrv["artifact_rate"].astype(float)
        rows.append(
            (
                "Artefact rate (beats corrected)",
                f"median {rate.median():.1f} % (max {rate.max():.1f} %)",
                "hrv results",
            )
        )
    else:
        rows.append(("Artefact rate (beats corrected)", "not recorded", "not recorded"))
    rows.append(
        (
            "Artefact handling",
            "beats detected and corrected by peerlens.hrv (see docs/hrv.md); windows above the "
            "artefact-rate limit or failing the signal-quality rules are marked invalid and "
            "left out of the models",
            "analysis",
        )
    )
    if "pipeline_version" in hrv.columns and hrv["pipeline_version"].notna().any():
        versions = sorted(hrv["pipeline_version"].dropna().astype(str).unique())
        rows.append(("Software", f"peerlens {', '.join(versions)}", "hrv results"))
    else:
        rows.append(("Software", "not recorded", "not recorded"))
    rows.append(
        (
            "HRV measures and transformation",
            "RMSSD (ms) and HF power (ms^2, Task Force 1996 band), natural log",
            "analysis",
        )
    )
    return pd.DataFrame(rows, columns=["item", "value", "source"])


def _describe(values: pd.Series) -> str:
    """The distinct values of a metadata column with their counts (numbers: their range)."""
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present):
        lo, hi = float(present.min()), float(present.max())
        return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    counts = present.astype(str).value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return "; ".join(f"{v} (n={n})" for v, n in counts.items())
