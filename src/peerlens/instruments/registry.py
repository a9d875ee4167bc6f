"""Loading and validating instrument specs: the bundled ones in ``specs/`` and user files."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from peerlens import PeerlensError
from peerlens.instruments._spec import InstrumentSpec

__all__ = ["SpecError", "UnknownInstrumentError", "list_specs", "load_spec", "load_spec_file"]


class SpecError(PeerlensError):
    """An instrument spec file is malformed or inconsistent."""


class UnknownInstrumentError(PeerlensError):
    """No bundled instrument has the requested id."""


def _parse(text: str, origin: str) -> InstrumentSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a spec must be a mapping of fields")
    try:
        return InstrumentSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SpecError(f"{origin}: invalid instrument spec: {problems}") from exc


def load_spec_file(path: str | Path) -> InstrumentSpec:
    """Load and validate one spec file (for instruments peerlens does not bundle).

    Raises
    ------
    SpecError
        The file is not YAML, misses a field, or is inconsistent (an item outside ``1..n_items``,
        a score referring to an undeclared score, bands that overlap, a conversion table that does
        not cover every raw score).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from exc
    return _parse(text, str(path))


@cache
def _bundled() -> dict[str, tuple[InstrumentSpec, str]]:
    specs: dict[str, tuple[InstrumentSpec, str]] = {}
    folder = resources.files("peerlens.instruments").joinpath("specs")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        text = entry.read_text(encoding="utf-8")
        spec = _parse(text, f"peerlens/instruments/specs/{entry.name}")
        if entry.name != f"{spec.id}.yaml":
            raise SpecError(f"specs/{entry.name}: file name must be {spec.id}.yaml")
        specs[spec.id] = (spec, hashlib.sha256(text.encode()).hexdigest())
    return specs


def list_specs() -> list[InstrumentSpec]:
    """Every bundled instrument spec, sorted by id."""
    return [spec for spec, _ in _bundled().values()]


def load_spec(instrument_id: str) -> InstrumentSpec:
    """The bundled spec with id ``instrument_id`` (e.g. ``"scs"``).

    Raises
    ------
    UnknownInstrumentError
        No bundled instrument has that id; the message lists the known ids.
    """
    try:
        return _bundled()[instrument_id.lower()][0]
    except KeyError:
        known = ", ".join(_bundled())
        raise UnknownInstrumentError(
            f"unknown instrument {instrument_id!r}; known instruments: {known}"
        ) from None


def spec_digest(instrument_id: str) -> str:
    """SHA-256 of the bundled spec file's text: recorded with every score as its provenance."""
    load_spec(instrument_id)
    return _bundled()[instrument_id.lower()][1]
