"""The ``study.yaml`` file that defines a study (see ``docs/study.md`` for the format).

Example::

    title: Peer connection trial
    arms: [intervention, control]
    sites: [leeds, glasgow]
    missing_codes: [-99, -98]
    data_dictionary: dictionary.csv      # optional REDCap data dictionary, relative to this file
    timepoints:
      - name: baseline
        offset_days: 0
        instruments: [phq9, gad7, scs_sf]
      - name: week12
        redcap_event: week_12_arm_1
        offset_days: 84
        window_before_days: 7
        window_after_days: 14
        instruments: [phq9, gad7]
    consent:                             # optional: shown before the first web questionnaire
      version: v1
      text: I agree to take part in the study described in the information sheet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import QueryableAttribute

from peerlens.study import _limits
from peerlens.study.errors import StudyError
from peerlens.study.models import Arm, FormScoring, Site, Timepoint, TimepointInstrument


def _fits(column: QueryableAttribute[Any], **bounds: int) -> Any:
    """Pydantic bounds of what ``column`` holds (its length or integer range), narrowed by
    ``bounds`` (``ge=0``): a config value the store cannot hold is refused naming its key."""
    if (limit := _limits.max_length(column)) is not None:
        return Field(max_length=limit)
    low, high = _limits.int_range(column)
    return Field(ge=max(low, bounds.get("ge", low)), le=high)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimepointConfig(_Strict):
    """One timepoint (REDCap event)."""

    name: str
    redcap_event: Annotated[str, _fits(Timepoint.redcap_event)] | None = None
    offset_days: Annotated[int, _fits(Timepoint.offset_days)] = 0
    window_before_days: Annotated[int, _fits(Timepoint.window_before_days, ge=0)] = 0
    window_after_days: Annotated[int, _fits(Timepoint.window_after_days, ge=0)] = 0
    instruments: list[Annotated[str, _fits(TimepointInstrument.instrument)]] = Field(
        default_factory=list
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits, '_', '-' or '.' (at most 100)")
        return v

    @property
    def event(self) -> str:
        """The REDCap unique event name (default ``<name>_arm_1``, REDCap's own default)."""
        return self.redcap_event or f"{self.name.lower()}_arm_1"


class FormScoringConfig(_Strict):
    """A data-dictionary form scored as a bundled instrument: ``items`` maps each of the form's
    fields that holds an item to the instrument's item (``sc_01: scs_1``); every item of the
    instrument is mapped once."""

    form: Annotated[str, _fits(FormScoring.form)]
    instrument: Annotated[str, _fits(FormScoring.instrument)]
    items: dict[str, str] = Field(min_length=1)


class ConsentConfig(_Strict):
    """The consent text participants agree to through their personal link (its first version;
    later versions are set with :func:`peerlens.study.consent_texts.set_consent_text`)."""

    version: str = Field(min_length=1, max_length=50)
    text: str = Field(min_length=1)


class StudyConfig(_Strict):
    """A whole study definition."""

    title: str | None = None
    arms: list[Annotated[str, _fits(Arm.name)]] = Field(default_factory=list)
    sites: list[Annotated[str, _fits(Site.name)]] = Field(default_factory=list)
    missing_codes: list[str | int] = Field(default_factory=list)
    data_dictionary: str | None = None
    timepoints: list[TimepointConfig] = Field(min_length=1)
    scoring: list[FormScoringConfig] = Field(default_factory=list)
    consent: ConsentConfig | None = None

    @field_validator("timepoints")
    @classmethod
    def _unique(cls, v: list[TimepointConfig]) -> list[TimepointConfig]:
        names = [t.name for t in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"timepoint names repeated: {', '.join(dupes)}")
        events = [t.event for t in v]
        dupes = sorted({n for n in events if events.count(n) > 1})
        if dupes:
            raise ValueError(f"redcap_event names repeated: {', '.join(dupes)}")
        return v


def load_config(path: str | Path) -> tuple[StudyConfig, Path]:
    """Read and validate a study config; returns it and the folder it was in.

    Raises
    ------
    StudyError
        The file is missing, is not YAML, or breaks the format (message names the key).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise StudyError(f"{p}: cannot read study config ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StudyError(
            f"{p}: the study config is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise StudyError(f"{p}: the study config holds NUL bytes: not a UTF-8 text file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudyError(f"{p}: not valid YAML: {exc}") from None
    except RecursionError:
        raise StudyError(f"{p}: not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise StudyError(f"{p}: a study config is a YAML mapping (title, arms, timepoints, ...)")
    try:
        return StudyConfig.model_validate(data), p.parent
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise StudyError(f"{p}: invalid study config:\n" + "\n".join(lines)) from None
