"""The API's request and response bodies (pydantic models), so that its OpenAPI schema says
exactly what each endpoint takes and returns."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from peerlens.web.api.rows import Cell, Row

__all__ = [
    "AnalysedSentence",
    "Analysis",
    "AnalysisIn",
    "AuditReportOut",
    "DisagreementIn",
    "Done",
    "ExportIn",
    "ImportResult",
    "ParticipantRow",
    "ProblemOut",
    "ProgressRow",
    "RecordingOut",
    "RecordingUpload",
    "RecordingWindowOut",
    "ResponsesIn",
    "RoleIn",
    "Row",
    "SentenceOut",
    "StoryCreated",
    "StoryIn",
    "StoryOut",
    "StudyDesign",
    "StudySummary",
    "TimepointOut",
    "TokenRevokeIn",
    "TokenRow",
    "UserIn",
    "UserRow",
    "WorkerOut",
]

ExportTier = Literal["full", "remove_identifiers", "deidentified"]
ExportFormat = Literal["tidy-csv", "tidy-xlsx", "redcap-csv"]
Name = Field(min_length=1, max_length=100)


class StudySummary(BaseModel):
    """A study the caller holds a role in."""

    name: str
    title: str | None


class TimepointOut(BaseModel):
    """A timepoint of a study's schedule."""

    name: str
    redcap_event: str | None
    offset_days: int | None
    instruments: list[str]


class StudyDesign(BaseModel):
    """A study's design: arms, sites (the sites listing), timepoints and missing codes."""

    name: str
    title: str | None
    arms: list[str]
    sites: list[str]
    missing_codes: list[Cell]
    timepoints: list[TimepointOut]


class ParticipantRow(BaseModel):
    """A participant by pseudonym (never identifying fields)."""

    participant: str
    role: str
    arm: str | None
    site: str | None
    status: str
    enrolled_at: str | None
    withdrawn_at: str | None


class ProgressRow(BaseModel):
    """One scheduled questionnaire of one participant and its state."""

    participant: str
    site: str | None
    arm: str | None
    status: str
    timepoint: str
    instrument: str
    due_from: str | None
    due_until: str | None
    completion: int | float | None
    state: str


class UserRow(BaseModel):
    """One role of an account (an account without roles has one row with ``role`` null)."""

    user: str
    active: bool
    role: str | None
    study: str | None
    site: str | None
    export_tier: str | None


class ProblemOut(BaseModel):
    """A problem found in submitted rows (1-based data row, column)."""

    row: int | None
    column: str | None
    reason: str


class ResponsesIn(BaseModel):
    """Questionnaire responses to store: wide rows as in a response file (``participant`` and the
    item columns, e.g. ``phq9_1``; optional ``<instrument>_complete``), for one timepoint or one
    PS session. All or nothing: any problem rejects every row."""

    timepoint: str | None = Field(default=None, max_length=100)
    session: str | None = Field(default=None, max_length=100)
    instrument: str | None = Field(default=None, max_length=100)
    rows: list[dict[str, str | int | float | None]] = Field(min_length=1, max_length=10_000)
    reason: str | None = Field(default=None, max_length=1000)


class ImportResult(BaseModel):
    """What storing responses did."""

    sha256: str
    rows: int
    new: int
    updated: int
    unchanged: int
    warnings: list[ProblemOut]


class RecordingUpload(BaseModel):
    """An ECG or RR recording to store for a participant (``multipart/form-data``): one file in
    ``files``, or a WFDB record's ``.hea`` with its signal files, each a ``files`` part. The
    fields are those of the dashboard's recording form. Used for the schema only: the body is
    streamed to disk as it arrives, never held in memory."""

    files: list[bytes] = Field(
        description="The recording: one file (EDF, BDF, a CSV or text of RR intervals or "
        "samples, ...), or a WFDB record's .hea file with its signal files.",
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
    )
    kind: Literal["ecg", "rr"] = Field(default="ecg", description="ECG samples or RR intervals.")
    session: str = Field(default="", description="The PS session's label.")
    device: str = Field(default="", description="The recording device.")
    sampling_rate: str = Field(
        default="", description="A number of Hz, for a file that does not state its rate."
    )
    timepoint: str = Field(default="", description="The timepoint it was recorded at.")
    windows: str = Field(default="", description="Window events, one LABEL:START_S:END_S a line.")
    reason: str = Field(default="", description="Why (kept in the audit log).")


class RecordingWindowOut(BaseModel):
    """A labelled window of a recording, in seconds from its start."""

    label: str
    start_s: float
    end_s: float


class RecordingOut(BaseModel):
    """A stored recording: its id, the sha256 of the file (a WFDB record: of its files) and
    what was stored with it. Sending the same file for the participant again answers with the
    recording stored before (with any new windows added)."""

    id: int
    sha256: str
    file: str = Field(description="The file read: the one sent, or a WFDB record's header.")
    participant: str
    kind: str
    session: str | None
    device: str | None
    sampling_rate_hz: float | None
    timepoint: str | None
    windows: list[RecordingWindowOut]


class ExportIn(BaseModel):
    """An export: tier and format, as on the dashboard's export page."""

    tier: ExportTier
    format: ExportFormat = "tidy-csv"


class WorkerOut(BaseModel):
    """A PS worker whose story studio the caller may open, and how."""

    code: str
    site: str | None
    relation: str


class SentenceOut(BaseModel):
    """A labelled sentence of a stored story."""

    position: int
    text: str
    label: str
    confidence: float | None
    cues: list[str]
    hint: str | None
    mixed: bool
    speaker: str | None
    disagreed: str | None
    note: str | None


class StoryOut(BaseModel):
    """A stored practice story with its analysis."""

    id: int
    study: str
    worker: str
    told_on: dt.date
    source: str
    speaker: str | None
    text: str
    sentences: list[SentenceOut]
    counts: dict[str, int]
    n_sentences: int
    connection_index: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    model_version: str
    revises: int | None
    replaced_by: int | None


class StoryIn(BaseModel):
    """A practice story of the caller's own to analyse and store."""

    text: str = Field(min_length=1, max_length=200_000)
    told_on: dt.date
    transcript: bool = False
    speaker: str | None = Field(default=None, max_length=100)
    revises: int | None = Field(default=None, ge=1, le=2**62)


class StoryCreated(BaseModel):
    """The id of a stored story."""

    id: int


class DisagreementIn(BaseModel):
    """An "I disagree" mark on one sentence of a story."""

    position: int = Field(ge=0, le=1_000_000)
    label: str = Field(min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=2000)


class AnalysisIn(BaseModel):
    """A text to analyse (nothing is stored)."""

    text: str = Field(min_length=1, max_length=200_000)
    transcript: bool = False
    speaker: str | None = Field(default=None, max_length=100)


class AnalysedSentence(BaseModel):
    """One labelled sentence: its label, confidence, cues and reframing hint."""

    position: int | None
    text: str
    label: str
    confidence: float | None
    cues: list[str]
    hint: str | None
    mixed: bool
    speaker: str | None


class Analysis(BaseModel):
    """A text's sentences with their labels, and its summary."""

    sentences: list[AnalysedSentence]
    n_sentences: int
    counts: dict[str, int]
    connection_index: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    model_version: str
    unsupported: int = Field(description="Sentences left unlabelled (not English).")


class AuditReportOut(BaseModel):
    """The audit chain and data seals, verified now."""

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    problems: list[str]
    erasures: int
    data_units: int
    data_unchecked: str | None
    files_checked: int
    #: Entries whose keyed MAC verified (see ``docs/security.md``).
    macs_checked: int
    macs_unchecked: str | None


class UserIn(BaseModel):
    """A new account (no roles yet)."""

    username: str = Name
    password: str = Field(min_length=1, max_length=1000)
    reason: str | None = Field(default=None, max_length=1000)


class RoleIn(BaseModel):
    """A role to give or take: globally, in a study, or at one site of it."""

    role: str = Field(min_length=1, max_length=20)
    study: str | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, max_length=100)
    export_tier: str | None = Field(default=None, max_length=30)
    reason: str | None = Field(default=None, max_length=1000)


class TokenRow(BaseModel):
    """A user's personal access token as listed (never the token itself)."""

    id: int
    user: str
    name: str
    scopes: str = Field(description="Space-separated: read, write, export, admin.")
    state: Literal["active", "expired", "revoked"]
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class TokenRevokeIn(BaseModel):
    """Why a token is revoked (recorded in the audit log)."""

    reason: str | None = Field(default=None, max_length=1000)


class Done(BaseModel):
    """A change was made (``count``: how many, where it says)."""

    done: bool = True
    count: int | None = None
