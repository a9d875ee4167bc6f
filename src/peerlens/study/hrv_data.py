"""The HRV analysis table of a study: what the report's HRV and GRAPH sections and the R export's
HRV models are built from.

One de-identified snapshot, read in one transaction with the caller's export rights: one row per
stored derived HRV window (``whole`` included) of every recording of a service user, with

- who and when: ``participant`` (pseudonym), ``arm``, ``site``, ``timepoint`` (the lab visit the
  recording was stored at, :func:`~peerlens.study.add_recording`; ``None`` when not given),
  ``recording`` (``<participant>-R<k>``, the participant's k-th recording in the order stored:
  neither the file's name nor its content hash, which could link back to the file);
- the window: ``window`` (its label), ``start_s``, ``end_s``, ``duration_s``;
- the results: ``status`` (``ok``, ``error``), ``valid`` and ``reason`` (the HRV package's
  quality rules; an analysis error's own text is not copied, it may quote a file name),
  ``rmssd_ms``, ``hf_ms2``, ``n_beats``, ``artifact_rate`` (the share of beats corrected),
  ``n_gaps``, ``gap_s``;
- the recording's metadata: ``kind``, ``device``, ``sampling_rate_hz`` (as stored, else as
  read from the file), ``lead`` (the channel analysed), ``recording_s`` (the whole recording's
  length), ``detector``, ``artifact_method``, ``spectral_method``, ``pipeline_version`` and
  ``derivation`` (``current`` or ``stale``).

A recording whose analysis failed has one ``error`` row per stored window (its results empty),
so that it is counted where it is missing. Recordings not derived yet have no rows. Nothing is
read from the identity vault.

Reading it is an export at the ``deidentified`` tier (policy ``analysis.hrv``), audited with
the snapshot's sha256 (:attr:`HrvTable.sha256`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study._lookup import get_study
from peerlens.study._read_audit import record_export
from peerlens.study.analysis_data import _digest
from peerlens.study.derived._hrv import HRV, _windows
from peerlens.study.models import DerivedHrv, Participant, Recording
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["HRV_TABLE_COLUMNS", "HRV_TABLE_LABELS", "HrvTable", "hrv_table"]

#: The export tier of the HRV analysis table.
TIER = "deidentified"
#: The columns of :attr:`HrvTable.windows`, in order.
HRV_TABLE_COLUMNS = (
    "participant",
    "arm",
    "site",
    "timepoint",
    "recording",
    "window",
    "start_s",
    "end_s",
    "duration_s",
    "status",
    "valid",
    "reason",
    "rmssd_ms",
    "hf_ms2",
    "n_beats",
    "artifact_rate",
    "n_gaps",
    "gap_s",
    "kind",
    "device",
    "sampling_rate_hz",
    "lead",
    "recording_s",
    "detector",
    "artifact_method",
    "spectral_method",
    "pipeline_version",
    "derivation",
)
#: A label (with its unit) for each column of :data:`HRV_TABLE_COLUMNS`: the variable labels of
#: the SPSS and Stata exports (at most 80 characters, Stata's limit).
HRV_TABLE_LABELS = {
    "participant": "Participant (pseudonym)",
    "arm": "Arm",
    "site": "Site",
    "timepoint": "Timepoint (lab visit of the recording)",
    "recording": "Recording (participant's k-th stored)",
    "window": "Recording window",
    "start_s": "Window start (s from recording start)",
    "end_s": "Window end (s from recording start)",
    "duration_s": "Window duration (s)",
    "status": "Analysis status (ok, error)",
    "valid": "Window valid by the HRV quality rules",
    "reason": "Why the window is not valid",
    "rmssd_ms": "RMSSD (ms)",
    "hf_ms2": "HF power, 0.15-0.40 Hz (ms2)",
    "n_beats": "Beats in the window",
    "artifact_rate": "Share of beats corrected (0-1)",
    "n_gaps": "Signal gaps in the window",
    "gap_s": "Time in signal gaps (s)",
    "kind": "Recording kind",
    "device": "Recording device",
    "sampling_rate_hz": "Sampling rate (Hz)",
    "lead": "Channel analysed",
    "recording_s": "Recording length (s)",
    "detector": "R-peak detector",
    "artifact_method": "Artifact correction method",
    "spectral_method": "Spectral method",
    "pipeline_version": "HRV pipeline version",
    "derivation": "Derived values current or stale",
}


@dataclass(frozen=True)
class HrvTable:
    """The de-identified HRV analysis table of a study (see the module docstring).

    Attributes
    ----------
    study : str
        Study name.
    windows : pandas.DataFrame
        One row per recording window, columns :data:`HRV_TABLE_COLUMNS`.
    sha256 : str
        Hash of the canonical CSV of ``windows``.
    """

    study: str
    windows: pd.DataFrame = field(repr=False)
    sha256: str

    @property
    def recordings(self) -> pd.DataFrame:
        """One row per recording: ``participant``, ``arm``, ``site``, ``timepoint``,
        ``recording`` and its metadata columns (``kind`` ... ``spectral_method``)."""
        first = HRV_TABLE_COLUMNS.index("kind")
        columns = [*HRV_TABLE_COLUMNS[:5], *HRV_TABLE_COLUMNS[first:-2]]
        return self.windows[columns].drop_duplicates("recording").reset_index(drop=True)


@guarded("analysis.hrv")
def hrv_table(
    store: Store, study_name: str, *, caller: Caller, purpose: str = "report"
) -> HrvTable:
    """Read the de-identified HRV analysis table of ``study_name`` (audited as an export).

    Parameters
    ----------
    store
        The open study store.
    study_name
        The study.
    caller
        Who asks; needs an export right of tier ``deidentified`` or higher. A site-scoped
        caller gets their sites' participants only.
    purpose
        What the table is read for (``report``, ``r``), kept in the audit log.

    Returns
    -------
    HrvTable

    Raises
    ------
    PermissionDenied
        The caller may not export at the ``deidentified`` tier.
    StudyError
        Unknown study.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "analysis.hrv", study, tier=TIER)
        arm_names = {a.id: a.name for a in study.arms}
        site_names = {x.id: x.name for x in study.sites}
        tp_names = {t.id: t.name for t in study.timepoints}
        recs = s.execute(
            select(Recording, Participant)
            .join(Participant, Participant.id == Recording.participant_id)
            .where(Participant.study_id == study.id, Participant.role == "service_user")
            .order_by(Participant.study_code, Recording.id)
        ).all()
        mine = [(r, p) for r, p in recs if grant.outside(study, p) is None]
        provenance = _provenance(s, [r.id for r, _ in mine])
        stored_windows = _windows(s, [r.id for r, _ in mine])
        derived = HRV.frame(s, study, "hrv")
        meta: dict[tuple[str, str], dict[str, object]] = {}
        count: dict[str, int] = {}
        for rec, p in mine:
            count[p.study_code] = count.get(p.study_code, 0) + 1
            prov = provenance.get(rec.id, {})
            fs = rec.sampling_rate_hz if rec.sampling_rate_hz is not None else prov.get("fs")
            detector = prov.get("detector")
            meta[(p.study_code, rec.sha256)] = {
                "arm": arm_names.get(p.arm_id) if p.arm_id else None,
                "site": site_names.get(p.site_id) if p.site_id else None,
                "timepoint": tp_names.get(rec.timepoint_id) if rec.timepoint_id else None,
                "recording": f"{p.study_code}-R{count[p.study_code]}",
                "kind": rec.kind,
                "device": rec.device,
                "sampling_rate_hz": None if fs is None else float(fs),
                "lead": prov.get("channel"),
                "detector": detector.get("method") if isinstance(detector, dict) else None,
                "artifact_method": prov.get("artifact_method"),
                "spectral_method": prov.get("spectral_method"),
                "_windows": stored_windows[rec.id],
            }
        windows = _rows(derived, meta)
        digest = _digest(windows)
        record_export(
            s,
            grant,
            study_name,
            f"hrv analysis table ({purpose})",
            tier=TIER,
            rows=len(windows),
            sha256=digest,
        )
    return HrvTable(study=study_name, windows=windows, sha256=digest)


def _provenance(s: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each recording's analysis provenance (from its ``whole`` row), without ``source`` (the
    stored file's path)."""
    out: dict[int, dict[str, Any]] = {}
    if ids:
        q = select(DerivedHrv.recording_id, DerivedHrv.provenance_json).where(
            DerivedHrv.recording_id.in_(ids), DerivedHrv.label == "whole"
        )
        for rid, text in s.execute(q):
            prov = json.loads(text or "{}")
            prov.pop("source", None)
            out[int(rid)] = prov
    return out


def _rows(derived: pd.DataFrame, meta: dict[tuple[str, str], dict[str, object]]) -> pd.DataFrame:
    """The table's rows from the stored derived frame and each recording's metadata."""
    rows: list[dict[str, object]] = []
    whole_s = {
        (r.participant, r.recording): r.end_s
        for r in derived[(derived["label"] == "whole") & (derived["status"] == "ok")].itertuples()
    }
    for r in derived.to_dict(orient="records"):
        key = (str(r["participant"]), str(r["recording"]))
        if key not in meta:  # another site's participant, or not a service user
            continue
        info = {k: v for k, v in meta[key].items() if not k.startswith("_")}
        common = {
            "participant": key[0],
            **info,
            "recording_s": whole_s.get(key),
            "pipeline_version": r["pipeline_version"],
            "derivation": r["derivation"],
        }
        if r["status"] != "ok":
            stored: list[tuple[str, float | None, float | None]] = [("whole", None, None)]
            stored += meta[key]["_windows"]  # type: ignore[arg-type]
            for label, start, end in stored:
                rows.append(
                    {
                        **common,
                        "window": label,
                        "start_s": start,
                        "end_s": end,
                        "status": r["status"],
                        "valid": False,
                        "reason": "analysis error",
                    }
                )
            continue
        rows.append(
            {
                **common,
                **{c: r[c] for c in ("start_s", "end_s", "status", "valid", "reason")},
                **{c: r[c] for c in ("rmssd_ms", "hf_ms2", "n_beats", "artifact_rate")},
                **{c: r[c] for c in ("n_gaps", "gap_s")},
                "window": r["label"],
            }
        )
    frame = pd.DataFrame(rows, columns=[c for c in HRV_TABLE_COLUMNS if c != "duration_s"])
    for c in ("start_s", "end_s", "rmssd_ms", "hf_ms2", "artifact_rate", "gap_s"):
        frame[c] = frame[c].astype("float64")
    for c in ("sampling_rate_hz", "recording_s"):
        frame[c] = frame[c].astype("float64")
    for c in ("n_beats", "n_gaps"):
        frame[c] = frame[c].astype("Int64")
    frame["valid"] = frame["valid"].astype("boolean")
    duration = frame["end_s"] - frame["start_s"]
    frame.insert(HRV_TABLE_COLUMNS.index("duration_s"), "duration_s", duration)
    return frame.reset_index(drop=True)
