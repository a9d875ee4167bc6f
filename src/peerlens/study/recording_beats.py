"""The beat series of one stored recording, for the HRV page's RR plot.

Derived HRV results (:func:`peerlens.study.derived_frame` with ``"hrv"``) hold each window's
metrics, validity and reasons, not the beats; this reads the stored recording file again and
runs the same analysis (:func:`peerlens.hrv.analyze`, as ``peerlens derive`` does) to give the
corrected RR series. It is per-participant data, so it needs what reading derived results needs
(the ``derived.read`` rule), and a site-scoped caller reads their sites' recordings only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from peerlens.study._lookup import get_study
from peerlens.study._read_audit import audit_read
from peerlens.study.errors import NotFound
from peerlens.study.models import Participant, Recording
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["BEAT_COLUMNS", "recording_beats"]

#: The columns of :func:`recording_beats`.
BEAT_COLUMNS = ["beat", "time_s", "rr_ms", "source"]


@guarded("derived.read")
def recording_beats(
    store: Store, study_name: str, participant: str, recording: str, *, caller: Caller
) -> pd.DataFrame:
    """The corrected beats of ``participant``'s recording whose sha256 is (or starts with)
    ``recording`` (two participants may hold the same file: the sha256 alone is not unique).

    Parameters
    ----------
    store
        The study database.
    study_name
        The study.
    participant
        The participant's study code.
    recording
        The recording's sha256 as :func:`~peerlens.study.derived_frame` shows it (a unique
        prefix of at least 12 characters will do).
    caller
        Who reads (the ``derived.read`` rule; a site-scoped caller, their sites' only).

    Returns
    -------
    pandas.DataFrame
        :data:`BEAT_COLUMNS`: beat number, time of the beat in seconds from the first, the RR
        interval ending at it in ms (missing for the first beat) and ``source`` (``original``,
        ``moved`` or ``inserted`` by the artifact correction).

    Raises
    ------
    NotFound
        No such recording of that participant, or the participant is outside the caller's
        sites (the same words for both).
    """
    from peerlens.hrv import analyze
    from peerlens.study.derived._hrv import reader_kind
    from peerlens.study.sessions import recording_file

    key = recording.strip().lower()
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "derived.read", study)
        found = []
        if len(key) >= 12 and all(c in "0123456789abcdef" for c in key):
            found = list(
                s.execute(
                    select(Recording, Participant)
                    .join(Participant, Participant.id == Recording.participant_id)
                    .where(
                        Participant.study_id == study.id,
                        Participant.study_code == participant,
                        Recording.sha256.startswith(key),
                    )
                )
            )
        if len(found) != 1 or grant.outside(study, found[0][1]) is not None:
            raise NotFound(
                f"no recording {recording[:64]!r} of participant {participant[:64]!r} among "
                "yours in this study"
            )
        rec = found[0][0]
        path = recording_file(store.blob_dir, rec.sha256, rec.suffix)
        fs = None if rec.sampling_rate_hz is None else float(rec.sampling_rate_hz)
        kind = reader_kind(path, rec.kind)
    result = analyze(path, fs=fs, kind=kind)
    beats = result.beats
    times = beats["time_s"].to_numpy(dtype=float)
    rr = np.concatenate([[np.nan], np.diff(times) * 1000.0]) if len(times) else times
    frame = pd.DataFrame(
        {
            "beat": beats["beat"].to_numpy(),
            "time_s": times,
            "rr_ms": rr,
            "source": beats["source"].astype(str).to_numpy(),
        },
        columns=BEAT_COLUMNS,
    )
    with store.transaction() as s:  # the read is audited like an export (who took what)
        audit_read(s, grant, study_name, "beats", frame)
    return frame
