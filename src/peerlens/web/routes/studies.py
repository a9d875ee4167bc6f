"""The study team's dashboard: the studies a staff member holds a role in, each study's
overview (enrolment by site and arm, completion per timepoint, overdue questionnaires, derived
results out of date, participants by pseudonym) and its export by tier.

Every page passes the signed-in caller to :mod:`peerlens.study` functions, which decide what it
may see or export (a site-scoped user gets their sites only, the identity tier only where their
role allows it); a refusal becomes a 403 page.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from peerlens.study import (
    TIERS,
    Caller,
    Store,
    derivation_status,
    derive,
    derived_frame,
    export_study,
    list_participants,
    list_studies,
    recording_beats,
    study_design,
    study_progress,
)
from peerlens.study.progress import PROGRESS_STATES
from peerlens.web.deps import StaffCaller, StaffForm, StoreDep
from peerlens.web.pages import render
from peerlens.web.plots import line_plot
from peerlens.web.tables import counts, rows_of

router = APIRouter(prefix="/studies")

#: The export formats offered: form value -> (``export_study`` format, file suffix, MIME type).
FORMATS = {
    "tidy-csv": ("tidy", ".csv", "text/csv; charset=utf-8"),
    "tidy-xlsx": (
        "tidy",
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "redcap-csv": ("redcap", ".csv", "text/csv; charset=utf-8"),
}
#: The HRV columns the pages show (the rest are in the export and ``peerlens derive``'s output).
HRV_METRICS = ["mean_hr_bpm", "sdnn_ms", "rmssd_ms", "pnn50_pct", "lf_ms2", "hf_ms2", "lf_hf"]
_WINDOW = ["label", "status", "start_s", "end_s", "n_beats", "artifact_rate", "valid", "reason"]
#: The tiers offered (``none`` exports nothing).
EXPORT_TIERS = tuple(t for t in TIERS if t != "none")


@router.get("", response_class=HTMLResponse, name="studies")
def studies(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """The studies the caller holds any role in."""
    return render(
        request, "studies.html", title="Studies", studies=list_studies(store, caller=caller)
    )


@router.get("/{study}", response_class=HTMLResponse, name="study")
def overview(request: Request, study: str, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """One study at a glance, as far as the caller may see it."""
    design = study_design(store, study, caller=caller)
    people = list_participants(store, study, caller=caller)
    progress = study_progress(store, study, caller=caller)
    derived = derivation_status(store, study, caller=caller)
    users = people[(people["role"] == "service_user") & (people["status"] != "erased")]
    timepoints = [tp["name"] for tp in design["timepoints"]]
    derived = derived.assign(out_of_date=derived["stale"] + derived["missing"])
    return render(
        request,
        "study.html",
        title=design["title"] or design["name"],
        design=design,
        enrolment=counts(
            users, "site", "arm", "Participants by site and arm", row_order=design["sites"]
        ),
        statuses=counts(
            users,
            "site",
            "status",
            "Participants by site and status",
            order=("enrolled", "withdrawn", "completed"),
            row_order=design["sites"],
        ),
        completion=counts(
            progress,
            "timepoint",
            "state",
            "Scheduled questionnaires by timepoint and state",
            order=PROGRESS_STATES,
            row_order=timepoints,
        ),
        overdue=rows_of(
            progress[progress["state"].isin(["overdue", "started"])],
            ["participant", "site", "timepoint", "instrument", "state", "due_until"],
            "Overdue or unfinished questionnaires",
        ),
        derived=rows_of(
            derived,
            ["what", "inputs", "current", "stale", "missing", "derived_at", "derived_by"],
            "Derived results (stale: inputs changed since; missing: never derived)",
        ),
        out_of_date=int(derived["out_of_date"].sum()),
        participants=rows_of(
            people,
            ["participant", "role", "site", "arm", "status", "enrolled_at"],
            "Participants (pseudonyms)",
        ),
    )


@router.get("/{study}/export", response_class=HTMLResponse, name="export_form")
def export_form(request: Request, study: str, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """Choose a tier and format; what the caller may export is checked when they ask."""
    design = study_design(store, study, caller=caller)
    return render(
        request,
        "export.html",
        title=f"Export – {design['title'] or design['name']}",
        design=design,
        tiers=EXPORT_TIERS,
        formats=FORMATS,
    )


def exported_file(store: Store, study: str, tier: str, kind: str, caller: Caller) -> bytes:
    """The bytes of ``study``'s export at ``tier`` in format ``kind`` (a key of
    :data:`FORMATS`), written and audited by :func:`peerlens.study.export_study`."""
    fmt, suffix, _ = FORMATS[kind]
    with tempfile.TemporaryDirectory(prefix="peerlens-export-") as folder:
        out = Path(folder) / f"{study}{suffix}"
        export_study(store, study, out, format=fmt, tier=tier, caller=caller, reason="web export")
        return out.read_bytes()


@router.post("/{study}/export", name="export")
async def export(study: str, caller: StaffCaller, store: StoreDep, form: StaffForm) -> Response:
    """The export as a download (audited by :func:`peerlens.study.export_study`)."""
    tier = str(form.get("tier", ""))
    kind = str(form.get("format", ""))
    if kind not in FORMATS:
        kind = "tidy-csv"
    data = await run_in_threadpool(exported_file, store, study, tier, kind, caller)
    _, suffix, media = FORMATS[kind]
    name = f"{study}-{tier}{suffix}"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"},
    )


@router.post("/{study}/derive", name="derive")
async def derive_now(
    request: Request, study: str, caller: StaffCaller, store: StoreDep, form: StaffForm
) -> RedirectResponse:
    """Derive the study's HRV results (or ``what`` the form names) now, in this process, as
    ``peerlens study derive --executor sequential`` does; then back to the HRV page."""
    what = str(form.get("what", "hrv"))
    await run_in_threadpool(
        lambda: derive(store, study, [what], caller=caller, executor="sequential")
    )
    target = "hrv" if what == "hrv" else "study"
    return RedirectResponse(str(request.url_for(target, study=study)), status_code=303)


@router.get("/{study}/hrv", response_class=HTMLResponse, name="hrv")
def hrv(request: Request, study: str, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """Every analysed recording: its whole-recording validity, reason and main metrics."""
    design = study_design(store, study, caller=caller)
    frame = derived_frame(store, study, "hrv", caller=caller)
    whole = frame[frame["label"] == "whole"]
    return render(
        request,
        "hrv.html",
        out_of_date=int(
            derivation_status(store, study, caller=caller)
            .query("what == 'hrv'")[["stale", "missing"]]
            .to_numpy()
            .sum()
        ),
        title=f"HRV – {design['title'] or design['name']}",
        design=design,
        recordings=[
            {
                "participant": r["participant"],
                "session": r["session"],
                "recording": r["recording"],
                "status": r["status"],
                "valid": r["valid"],
                "reason": r["reason"],
                "derivation": r["derivation"],
            }
            for _, r in whole.iterrows()
        ],
    )


@router.get("/{study}/hrv/{participant}/{recording}", response_class=HTMLResponse, name="recording")
def recording(
    request: Request,
    study: str,
    participant: str,
    recording: str,
    caller: StaffCaller,
    store: StoreDep,
) -> HTMLResponse:
    """One recording: each window's metrics, validity and reasons, and its RR series."""
    design = study_design(store, study, caller=caller)
    # Refuses another site's participant (and an unknown recording) before anything is read.
    beats = recording_beats(store, study, participant, recording, caller=caller)
    frame = derived_frame(store, study, "hrv", caller=caller)
    mine = frame[
        (frame["participant"] == participant) & frame["recording"].str.startswith(recording.lower())
    ]
    return render(
        request,
        "recording.html",
        title=f"Recording {recording[:12]} – {design['title'] or design['name']}",
        design=design,
        recording=recording[:12],
        participant=participant,
        windows=rows_of(mine, [*_WINDOW, *HRV_METRICS], "Windows (whole recording first)"),
        plot=line_plot(
            beats["time_s"].tolist(),
            beats["rr_ms"].tolist(),
            title="RR intervals after artifact correction",
            x_label="time (s)",
            y_label="RR interval (ms)",
        ),
        corrected=int((beats["source"] != "original").sum()),
        n_beats=len(beats),
    )
