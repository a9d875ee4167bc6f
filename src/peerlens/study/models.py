"""SQLAlchemy 2.x data model of a peer-support study.

Identifying fields live in exactly one table, :class:`IdentityVault`; every other table refers to a
participant by its pseudonymous ``study_code``. Scores, HRV metrics and story labels are derived
data: they are recomputed from the stored items, recordings and text (with the scoring or pipeline
version recorded in the output), never stored as hand-editable values.

The schema is created and upgraded only by the Alembic migrations in
``peerlens/study/migrations``; ``Base.metadata`` mirrors the head revision and a test checks that
the two agree.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Participant roles.
ROLES = ("service_user", "ps_worker")
#: Participant statuses.
STATUSES = ("enrolled", "withdrawn", "completed", "erased")
#: Session modes.
SESSION_MODES = ("in_person", "phone", "video", "text_chat")
#: Response completion status, coded as REDCap's ``<form>_complete`` (0, 1, 2).
COMPLETION = {0: "incomplete", 1: "unverified", 2: "complete"}
#: User roles (see :mod:`peerlens.study.policy` for what each may do).
USER_ROLES = ("admin", "researcher", "ps_worker", "trainer", "auditor")
#: How a user account reaches a PS worker's story studio (see :mod:`peerlens.study.stories`).
STUDIO_RELATIONS = ("worker", "trainer")


def utcnow() -> dt.datetime:
    """The current time in UTC (timezone-aware)."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC time (SQLite hands back naive times, stored in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every study table."""


class Study(Base):
    """A study: arms, sites, timepoints (REDCap events) and instruments per timepoint."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    #: Codes meaning "not answered" in imports (JSON list of strings).
    missing_codes_json: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    arms: Mapped[list[Arm]] = relationship(back_populates="study", order_by="Arm.id")
    sites: Mapped[list[Site]] = relationship(back_populates="study", order_by="Site.id")
    timepoints: Mapped[list[Timepoint]] = relationship(
        back_populates="study", order_by="Timepoint.position"
    )


class Arm(Base):
    """A study arm (e.g. ``intervention``, ``control``)."""

    __tablename__ = "arm"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    study: Mapped[Study] = relationship(back_populates="arms")


class Site(Base):
    """A recruiting site (service, hospital, community organisation)."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    study: Mapped[Study] = relationship(back_populates="sites")


class Timepoint(Base):
    """A REDCap-style event: name, unique event name and schedule offset from enrolment."""

    __tablename__ = "timepoint"
    __table_args__ = (
        UniqueConstraint("study_id", "name"),
        UniqueConstraint("study_id", "redcap_event"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    redcap_event: Mapped[str] = mapped_column(String(100))
    offset_days: Mapped[int] = mapped_column(Integer, default=0)
    window_before_days: Mapped[int] = mapped_column(Integer, default=0)
    window_after_days: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    study: Mapped[Study] = relationship(back_populates="timepoints")
    instruments: Mapped[list[TimepointInstrument]] = relationship(
        back_populates="timepoint", order_by="TimepointInstrument.position"
    )


class TimepointInstrument(Base):
    """An instrument (questionnaire or REDCap form) scheduled at a timepoint."""

    __tablename__ = "timepoint_instrument"
    __table_args__ = (UniqueConstraint("timepoint_id", "instrument"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("timepoint.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    timepoint: Mapped[Timepoint] = relationship(back_populates="instruments")


class Field(Base):
    """One row of a REDCap data dictionary (all 18 standard columns kept for round trips)."""

    __tablename__ = "field"
    __table_args__ = (UniqueConstraint("study_id", "field_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    field_name: Mapped[str] = mapped_column(String(100))
    form_name: Mapped[str] = mapped_column(String(100))
    section_header: Mapped[str | None] = mapped_column(Text)
    field_type: Mapped[str] = mapped_column(String(20))
    field_label: Mapped[str | None] = mapped_column(Text)
    choices: Mapped[str | None] = mapped_column(Text)
    field_note: Mapped[str | None] = mapped_column(Text)
    validation: Mapped[str | None] = mapped_column(String(50))
    validation_min: Mapped[str | None] = mapped_column(String(50))
    validation_max: Mapped[str | None] = mapped_column(String(50))
    identifier: Mapped[bool] = mapped_column(Boolean, default=False)
    branching_logic: Mapped[str | None] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_alignment: Mapped[str | None] = mapped_column(String(10))
    question_number: Mapped[str | None] = mapped_column(String(50))
    matrix_group: Mapped[str | None] = mapped_column(String(100))
    matrix_ranking: Mapped[str | None] = mapped_column(String(5))
    field_annotation: Mapped[str | None] = mapped_column(Text)


class Participant(Base):
    """A participant known only by a pseudonymous study code.

    ``date_shift_days`` is drawn at random when the participant is added and used only by the
    de-identified export tier (every date of this participant moves back by that many days).
    """

    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("study_id", "study_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    study_code: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20), default="service_user")
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("arm.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    status: Mapped[str] = mapped_column(String(20), default="enrolled")
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    date_shift_days: Mapped[int] = mapped_column(Integer, default=0)

    arm: Mapped[Arm | None] = relationship()
    site: Mapped[Site | None] = relationship()


class IdentityVault(Base):
    """The only place identifying fields (name, contact, date of birth, ...) may live.

    ``ciphertext`` is the AES-256-GCM encryption of the participant's fields (a JSON object of
    field name to value) under the vault key, which is never stored in the database (see
    :mod:`peerlens.study.vault`); ``field_names`` lists the field names in clear (they say what
    is held, not who). ``salt`` salts the keyed hashes the audit log records for this
    participant. ``fields_json`` held the fields in clear before revision 0006 and is emptied
    when such a row is first opened with the key. Erasure deletes the row.
    """

    __tablename__ = "identity_vault"
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True)
    fields_json: Mapped[str | None] = mapped_column(Text)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    field_names: Mapped[str] = mapped_column(Text, default="[]")
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Consent(Base):
    """A consent given by a participant: version of the form, when, and what it covers."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    version: Mapped[str] = mapped_column(String(50))
    consented_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(Text, default="")


class ConsentText(Base):
    """A version of a study's consent text, set by the researcher and shown on a participant's
    first visit through a personal link; the newest version is the one asked for."""

    __tablename__ = "consent_text"
    __table_args__ = (UniqueConstraint("study_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    version: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ParticipantLink(Base):
    """A personal link of one participant for one timepoint (no account needed).

    Only the sha256 of the link's token is stored, never the token; a link is refused after
    ``expires_at`` or once ``revoked_at`` is set.
    """

    __tablename__ = "participant_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("timepoint.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The link's participant (read with the link, in the same statement, when it is checked).
    participant: Mapped[Participant] = relationship()


class PSRelationship(Base):
    """A PS worker supporting a service user, from ``started_at`` until ``ended_at``."""

    __tablename__ = "ps_relationship"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    ps_worker_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    service_user_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Session(Base):
    """One PS session within a relationship. ``notes`` is free text (erased on erasure)."""

    __tablename__ = "ps_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    relationship_id: Mapped[int] = mapped_column(ForeignKey("ps_relationship.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    duration_min: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("relationship_id", "label"),)


class Response(Base):
    """One completed (or partly completed) instrument by one participant at one timepoint or
    session. Item values live in :class:`ResponseItem`."""

    __tablename__ = "response"
    __table_args__ = (
        UniqueConstraint(
            "participant_id", "timepoint_id", "session_id", "instrument", "repeat_instance"
        ),
        # The constraint above never holds: timepoint_id or session_id is always NULL, and NULLs
        # never compare equal. This index counts a missing id as 0 (revision 0016).
        Index(
            "uq_response_key",
            "participant_id",
            func.coalesce(text("timepoint_id"), 0),
            func.coalesce(text("session_id"), 0),
            "instrument",
            "repeat_instance",
            unique=True,
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up through the unique index, whose leading column is participant_id.
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    timepoint_id: Mapped[int | None] = mapped_column(ForeignKey("timepoint.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("ps_session.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(100))
    repeat_instance: Mapped[int] = mapped_column(Integer, default=0)
    completion: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ResponseItem(Base):
    """One item value: numeric ``value``, free ``text``, or a ``missing_code`` (never two)."""

    __tablename__ = "response_item"
    # Stored by its key: on SQLite a WITHOUT ROWID table, one B-tree per insert (revision 0010).
    __table_args__ = ({"sqlite_with_rowid": False},)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id"), primary_key=True)
    item: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    missing_code: Mapped[str | None] = mapped_column(String(20))


class FormScoring(Base):
    """A data-dictionary form scored as a bundled instrument: which instrument, and which of the
    form's fields holds each of the instrument's items (``items_json``: field -> item), as the
    study config's ``scoring`` gives them. Scores of the form's responses derive as the
    instrument's would."""

    __tablename__ = "form_scoring"
    __table_args__ = (UniqueConstraint("study_id", "form"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    form: Mapped[str] = mapped_column(String(100))
    instrument: Mapped[str] = mapped_column(String(100))
    items_json: Mapped[str] = mapped_column(Text)


class RedcapLayout(Base):
    """How a study's REDCap records file was laid out, so that an export gives it back as it came.

    ``columns_json`` is the file's header in order; ``rows_json`` one entry per row in file
    order: ``[record, event, repeat instrument, repeat instance, overrides, identifier
    columns]``, where ``overrides`` maps a column to ``[written, as in the file]`` for cells the
    file wrote otherwise than peerlens writes the stored value (``.34`` for 0.34, a blank
    unticked checkbox, ``1,54`` for 1.54): the file's text is given back while the stored value
    still writes as ``written``. Never holds free text, dates or identifying values (those are
    stored as items or in the vault); ``identifier columns`` names the row's non-empty
    identifier cells, not their values.
    """

    __tablename__ = "redcap_layout"
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), primary_key=True)
    columns_json: Mapped[str] = mapped_column(Text)
    rows_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Recording(Base):
    """An ECG or RR file, stored once in a content-addressed folder under its sha256.

    ``timepoint_id`` is the study timepoint of the lab visit it was recorded at (revision 0019;
    ``NULL`` when not given), which the HRV analysis table models it at.
    """

    __tablename__ = "recording"
    __table_args__ = (UniqueConstraint("participant_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("ps_session.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    #: sha256 of the file (or WFDB folder) as stored, checked by ``audit verify``.
    stored_sha256: Mapped[str | None] = mapped_column(String(64))
    suffix: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="ecg")
    device: Mapped[str | None] = mapped_column(String(100))
    sampling_rate_hz: Mapped[float | None] = mapped_column(Float)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    timepoint_id: Mapped[int | None] = mapped_column(ForeignKey("timepoint.id"), index=True)


class RecordingWindow(Base):
    """A labelled window event within a recording (e.g. ``baseline``, ``session``), seconds."""

    __tablename__ = "recording_window"
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)


class Transcript(Base):
    """A session transcript or a PS worker's story: versioned free text (erased on erasure)."""

    __tablename__ = "transcript"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="transcript")
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("ps_session.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: For a transcript: the PS worker's speaker name in it (whose turns story analysis scores).
    speaker: Mapped[str | None] = mapped_column(String(100))


class Derivation(Base):
    """One run of :mod:`peerlens.study.derived`: what was derived, by whom, with which versions.

    ``digest`` is the sha256 of the canonical rows the run wrote (also kept in the audit log), so
    that :func:`peerlens.study.derived.verify_derived` finds rows changed by hand later.
    """

    __tablename__ = "derivation"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    what: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(100))
    derived_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    versions_json: Mapped[str] = mapped_column(Text, default="{}")
    n_inputs: Mapped[int] = mapped_column(Integer, default=0)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))


class DerivedScore(Base):
    """A score derived from one response's stored items by :mod:`peerlens.instruments`.

    ``source_updated_at`` is the response's ``updated_at`` when it was scored: a response
    changed since then makes the score stale.
    """

    __tablename__ = "derived_score"
    __table_args__ = (UniqueConstraint("response_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    derivation_id: Mapped[int] = mapped_column(ForeignKey("derivation.id"), index=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id"))
    instrument: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(120))
    value: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(String(100))
    spec_version: Mapped[str] = mapped_column(String(50))
    spec_sha256: Mapped[str] = mapped_column(String(64))
    engine_version: Mapped[str] = mapped_column(String(50))
    source_updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class DerivedHrv(Base):
    """HRV of one recording (``label == "whole"``) or one of its window events.

    ``status`` is ``ok`` or ``error`` (then ``error`` says why and the metrics are empty);
    ``metrics_json`` maps each :data:`peerlens.hrv.METRIC_COLUMNS` name to its value.
    ``n_gaps``, ``gap_s`` and ``gaps_json`` are the recording's gaps within the window (null
    segments, absent segment files, EDF+D discontinuities, missing samples; see
    :attr:`peerlens.hrv.Recording.gaps`): how many, their seconds inside the window, and each
    one's ``kind``, ``start_s``, ``end_s`` and ``detail``. ``NULL`` for an RR-only recording,
    an error row, and rows derived before revision 0009.
    """

    __tablename__ = "derived_hrv"
    __table_args__ = (UniqueConstraint("recording_id", "label"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    derivation_id: Mapped[int] = mapped_column(ForeignKey("derivation.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording.id"))
    label: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    n_beats: Mapped[int | None] = mapped_column(Integer)
    artifact_rate: Mapped[float | None] = mapped_column(Float)
    valid: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    pipeline_version: Mapped[str] = mapped_column(String(50))
    provenance_json: Mapped[str] = mapped_column(Text, default="{}")
    windows_sha256: Mapped[str] = mapped_column(String(64))
    n_gaps: Mapped[int | None] = mapped_column(Integer)
    gap_s: Mapped[float | None] = mapped_column(Float)
    gaps_json: Mapped[str | None] = mapped_column(Text)


class DerivedStory(Base):
    """Story analysis of one transcript version: counts and the session connection index."""

    __tablename__ = "derived_story"
    __table_args__ = (UniqueConstraint("transcript_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    derivation_id: Mapped[int] = mapped_column(ForeignKey("derivation.id"), index=True)
    transcript_id: Mapped[int] = mapped_column(ForeignKey("transcript.id"))
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    n_sentences: Mapped[int | None] = mapped_column(Integer)
    connection_index: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    counts_json: Mapped[str] = mapped_column(Text, default="{}")
    model_sha256: Mapped[str] = mapped_column(String(64))
    model_json: Mapped[str] = mapped_column(Text, default="{}")


class DerivedSentence(Base):
    """The label of one sentence of a derived story (no text: it stays in the transcript)."""

    __tablename__ = "derived_sentence"
    __table_args__ = (UniqueConstraint("story_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("derived_story.id"))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    speaker_turn: Mapped[int | None] = mapped_column(Integer)
    n_chars: Mapped[int] = mapped_column(Integer)


class WorkerAccess(Base):
    """A user account's way into one PS worker's story studio: as that worker (``worker``; one
    account per worker and one worker per account in a study) or as one of their trainers
    (``trainer``). Nothing else of the study opens through it."""

    __tablename__ = "worker_access"
    __table_args__ = (UniqueConstraint("participant_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    relation: Mapped[str] = mapped_column(String(10))
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PracticeStory(Base):
    """A story a PS worker analysed in the story studio, with the analysis as it was shown:
    the connection index, its interval and the model that labelled it. ``revises_id`` names the
    story this one is an edited, re-checked version of (the newest version is the one plotted).
    ``text`` is free text (erased on erasure)."""

    __tablename__ = "practice_story"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("practice_story.id"))
    told_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(200))
    speaker: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    n_sentences: Mapped[int] = mapped_column(Integer)
    connection_index: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    ci_method: Mapped[str] = mapped_column(String(10))
    counts_json: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(64))
    model_json: Mapped[str] = mapped_column(Text)


class PracticeSentence(Base):
    """One labelled sentence of a practice story: its text, label, confidence, the cues behind
    the label and the reframing hint shown (comparisons only)."""

    __tablename__ = "practice_sentence"
    __table_args__ = (UniqueConstraint("story_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("practice_story.id"))
    position: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    cues_json: Mapped[str] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text)
    mixed: Mapped[bool] = mapped_column(Boolean)


class Disagreement(Base):
    """An "I disagree" mark on one sentence of a practice story: the label its author proposes
    instead of the model's, and an optional note, kept with the sentence as it was marked (for
    the next training round of the model)."""

    __tablename__ = "story_disagreement"
    __table_args__ = (UniqueConstraint("story_id", "position", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("practice_story.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    sentence: Mapped[str] = mapped_column(Text)
    model_label: Mapped[str] = mapped_column(String(20))
    proposed_label: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    marked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A person who uses peerlens (not a participant). Passwords are argon2id hashes."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RoleAssignment(Base):
    """A role for a user, global (``study_id`` NULL), per study, or per study site.

    ``export_tier`` overrides the role's default export right (see :mod:`peerlens.study.users`).
    """

    __tablename__ = "role_assignment"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    study_id: Mapped[int | None] = mapped_column(ForeignKey("study.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    export_tier: Mapped[str | None] = mapped_column(String(30))


class WebSession(Base):
    """A signed-in staff member's session in the web app (see :mod:`peerlens.study.web_sessions`).

    Only the sha256 of the session id is stored, never the id the browser holds, to find the
    row; ``token_mac`` binds the id, the user and the start time under a key derived from the
    vault key (a row written without the key is no session). A session ends at sign-out, after
    ``IDLE`` without a request, or ``ABSOLUTE`` after sign-in.
    """

    __tablename__ = "web_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    token_mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LoginFailure(Base):
    """One failed web sign-in, counted for the rate limit and lockout.

    The user name typed and the client address are kept only as sha256 digests (a password
    typed into the user name field is never stored); rows older than the counting window are
    deleted at the next sign-in.
    """

    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(primary_key=True)
    username_sha256: Mapped[str] = mapped_column(String(64), index=True)
    address_sha256: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A personal access token of a staff member for the JSON API (see
    :mod:`peerlens.study.tokens`).

    Only the sha256 of the token is stored, never the token, and ``token_mac``, an HMAC of the
    token, its user, scopes and expiry under a key derived from the vault key (a row written or
    widened with SQL is no token). ``scopes`` is the space-separated, sorted list of the token's
    scopes; the token acts for its user, within both the user's current roles and these
    scopes, until ``expires_at`` or ``revoked_at``.
    """

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_mac: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Setting(Base):
    """A database-wide setting: the database's id, where its recordings are stored, ..."""

    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CatalogRevision(Base):
    """The one row whose token changes with every change to study-level data (see
    :mod:`peerlens.study._catalog_cache`); revision 0022."""

    __tablename__ = "catalog_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class RowSeal(Base):
    """The keyed MAC of one sealed unit of data (see :mod:`peerlens.study.integrity`).

    ``kind`` names the unit's table (a response's items belong to the response's unit, a derived
    story's sentences to the story's), ``unit`` its primary key as text.
    """

    __tablename__ = "row_seal"
    __table_args__ = ({"sqlite_with_rowid": False},)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    unit: Mapped[str] = mapped_column(String(100), primary_key=True)
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditLog(Base):
    """Append-only, hash-chained log of every data change, import, export and erasure.

    ``seq`` runs 1, 2, 3, ... without gaps; ``hash`` is the sha256 of ``prev_hash`` and the
    canonical JSON of the other columns (see :mod:`peerlens.study.audit`). Database triggers make
    UPDATE and DELETE fail. Values written here are never identifying (see ``docs/study.md``).
    """

    __tablename__ = "audit_log"
    # What one entity went through (a derivation run's amendments, read each time a form
    # completed through a personal link is scored) without reading the whole log (0020).
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id", "action", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at_utc: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    study: Mapped[str | None] = mapped_column(String(100))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: HMAC-SHA256 of ``seq`` and ``hash`` under a key derived from the vault key (revision
    #: 0021); ``None`` for entries written before it.
    mac: Mapped[str | None] = mapped_column(String(64))
