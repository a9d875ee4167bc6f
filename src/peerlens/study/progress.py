"""Questionnaire progress: which scheduled questionnaires each participant has completed, has
started, is due, or is overdue, per timepoint.

A timepoint's window runs from ``offset_days - window_before_days`` to ``offset_days +
window_after_days`` after the participant's enrolment (the schedule in the study config). This is
the read behind the dashboard's completion and overdue tables; like every study function it
takes the caller, and a site-scoped caller sees their sites' participants only.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import func, select

from peerlens.study._lookup import get_study
from peerlens.study.models import Participant, Response, as_utc, utcnow
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["PROGRESS_COLUMNS", "PROGRESS_STATES", "study_progress"]

#: What a scheduled questionnaire can be, in the order the dashboard lists them.
PROGRESS_STATES = ("complete", "started", "overdue", "due", "upcoming", "stopped")
#: The columns of :func:`study_progress`.
PROGRESS_COLUMNS = [
    "participant",
    "site",
    "arm",
    "status",
    "timepoint",
    "instrument",
    "due_from",
    "due_until",
    "completion",
    "state",
]


def _state(
    completion: int | None, status: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> str:
    if completion == 2:
        return "complete"
    if status != "enrolled":  # withdrawn or completed early: nothing more is expected
        return "stopped"
    if now >= end:
        return "overdue"
    if completion is not None:
        return "started"
    return "due" if now >= start else "upcoming"


@guarded("progress.read")
def study_progress(
    store: Store, study_name: str, *, caller: Caller, now: dt.datetime | None = None
) -> pd.DataFrame:
    """One row per participant, timepoint and scheduled instrument, with its state.

    Parameters
    ----------
    store
        The study database.
    study_name
        The study.
    caller
        Who asks (admin or researcher; a site-scoped one sees their sites only).
    now
        The time the states are judged at (default: now, UTC).

    Returns
    -------
    pandas.DataFrame
        :data:`PROGRESS_COLUMNS`: the participant's code, site, arm and status; the timepoint and
        instrument; ``due_from`` and ``due_until`` (UTC) of the timepoint's window
        (``due_until`` is the end of its last day, enrolment time of day);
        ``completion`` (REDCap's 0, 1, 2 of the best stored response, missing when none) and
        ``state``, one of :data:`PROGRESS_STATES`: ``complete``; ``started`` (stored but not
        complete, window open); ``overdue`` (not complete, window closed); ``due`` (window
        open, nothing stored); ``upcoming``; ``stopped`` (not complete, participant no longer
        enrolled). Erased participants and PS workers are left out.
    """
    when = as_utc(now) or utcnow()
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "progress.read", study)
        arms = {a.id: a.name for a in study.arms}
        sites = {x.id: x.name for x in study.sites}
        people = [
            p
            for p in s.scalars(
                select(Participant)
                .where(Participant.study_id == study.id, Participant.role == "service_user")
                .order_by(Participant.study_code)
            )
            if p.status != "erased" and grant.outside(study, p) is None
        ]
        best = {
            (pid, tid, instrument): completion
            for pid, tid, instrument, completion in s.execute(
                select(
                    Response.participant_id,
                    Response.timepoint_id,
                    Response.instrument,
                    func.max(func.coalesce(Response.completion, 0)),
                )
                .join(Participant, Participant.id == Response.participant_id)
                .where(Participant.study_id == study.id, Response.timepoint_id.is_not(None))
                .group_by(Response.participant_id, Response.timepoint_id, Response.instrument)
            )
        }
        schedule = [(tp, [ti.instrument for ti in tp.instruments]) for tp in study.timepoints]
        rows = []
        for p in people:
            enrolled = as_utc(p.enrolled_at) or when
            for tp, instruments in schedule:
                start = enrolled + dt.timedelta(days=tp.offset_days - tp.window_before_days)
                end = enrolled + dt.timedelta(days=tp.offset_days + tp.window_after_days + 1)
                for instrument in instruments:
                    completion = best.get((p.id, tp.id, instrument))
                    rows.append(
                        {
                            "participant": p.study_code,
                            "site": sites.get(p.site_id) if p.site_id else None,
                            "arm": arms.get(p.arm_id) if p.arm_id else None,
                            "status": p.status,
                            "timepoint": tp.name,
                            "instrument": instrument,
                            "due_from": start,
                            "due_until": end,
                            "completion": completion,
                            "state": _state(completion, p.status, start, end, when),
                        }
                    )
    frame = pd.DataFrame(rows, columns=PROGRESS_COLUMNS)
    frame["completion"] = frame["completion"].astype("Int64")
    return frame
