"""Cue patterns: the hand-written phrase families behind the model's pattern features.

The patterns are data (``data/cues.json``), loaded and compiled once.  Each *family* (sameness,
normalising, success benchmark, worse-than, plus three neutral families: advice from experience,
empathy and questions) contributes one 0/1 feature to the model; the matches of the families
that belong to the predicted label are reported to the user as the cue phrases, and each
upward/downward cue is keyed to a project-written, connection-based reframing hint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from peerlens.narrative._errors import ModelArtifactError

__all__ = ["Cue", "CueBook", "load_cuebook"]

#: Labels that receive a reframing hint.
COMPARISON_LABELS = ("upward", "downward")


@dataclass(frozen=True)
class Cue:
    """One matched cue phrase.

    Attributes
    ----------
    phrase : str
        The matched phrase, in the normalised (lower-case, abbreviations expanded) form.
    family : str
        The cue family (``sameness``, ``normalising``, ``success_benchmark``, ``worse_than``, ...).
    cue_id : str
        The pattern within the family (for example ``at_least``); keys the reframing hint.
    """

    phrase: str
    family: str
    cue_id: str


@dataclass(frozen=True)
class _Pattern:
    family: str
    cue_id: str
    label: str
    regex: re.Pattern[str]


class CueBook:
    """Compiled cue patterns and reframing hints.

    Parameters
    ----------
    spec : dict
        The parsed ``cues.json`` document.
    """

    def __init__(self, spec: dict[str, object]) -> None:
        families = spec.get("families")
        hints = spec.get("hints")
        if not isinstance(families, dict) or not isinstance(hints, dict):
            raise ModelArtifactError("cues.json: needs 'families' and 'hints' objects")
        self.version = int(str(spec.get("version", 0)))
        self.families: tuple[str, ...] = tuple(families)
        self.family_label: dict[str, str] = {}
        patterns: list[_Pattern] = []
        for family, body in families.items():
            label = str(body["label"])
            self.family_label[family] = label
            for cue_id, pattern in body["cues"].items():
                try:
                    regex = re.compile(pattern)
                except re.error as exc:
                    raise ModelArtifactError(
                        f"cues.json: family {family!r}, cue {cue_id!r}: bad pattern ({exc})"
                    ) from exc
                patterns.append(_Pattern(family, cue_id, label, regex))
                if label in COMPARISON_LABELS and cue_id not in hints:
                    raise ModelArtifactError(f"cues.json: cue {cue_id!r} has no hint")
        self._patterns = tuple(patterns)
        #: ``family/cue_id`` of every pattern, in file order (the columns of :meth:`cue_features`).
        self.cue_ids: tuple[str, ...] = tuple(f"{p.family}/{p.cue_id}" for p in patterns)
        self.hints: dict[str, str] = {str(k): str(v) for k, v in hints.items()}
        for label in COMPARISON_LABELS:
            if label not in self.hints:
                raise ModelArtifactError(f"cues.json: no default hint for {label!r}")
        # One alternation per family: the features need only "does any cue match", which one
        # search per family answers (seven searches per sentence instead of ~45).
        self._family_regex = tuple(
            re.compile("|".join(f"(?:{p.regex.pattern})" for p in patterns if p.family == fam))
            for fam in self.families
        )

    def features(self, normalized: list[str]) -> np.ndarray:
        """Return the 0/1 family indicator matrix, shape ``(len(normalized), n_families)``."""
        rows = [
            [1.0 if regex.search(text) else 0.0 for regex in self._family_regex]
            for text in normalized
        ]
        return np.asarray(rows, dtype=np.float64).reshape(len(normalized), len(self.families))

    def cue_features(self, normalized: list[str]) -> np.ndarray:
        """Return the 0/1 indicator of each cue pattern, shape ``(len(normalized), n_cues)``."""
        rows = [
            [1.0 if p.regex.search(text) else 0.0 for p in self._patterns] for text in normalized
        ]
        return np.asarray(rows, dtype=np.float64).reshape(len(normalized), len(self._patterns))

    def find(self, normalized: str, label: str) -> tuple[Cue, ...]:
        """Return the cue phrases in ``normalized`` whose family belongs to ``label``.

        Overlapping matches are resolved in favour of the shorter phrase (the more specific
        cue); the result is in text order.
        """
        matches: list[tuple[int, int, _Pattern]] = []
        for pat in self._patterns:
            if pat.label == label:
                matches.extend((m.start(), m.end(), pat) for m in pat.regex.finditer(normalized))
        chosen: list[tuple[int, int, _Pattern]] = []
        for start, end, pat in sorted(matches, key=lambda m: (m[1] - m[0], m[0])):
            if end > start and all(end <= s or start >= e for s, e, _ in chosen):
                chosen.append((start, end, pat))
        found: list[Cue] = []
        for start, end, pat in sorted(chosen, key=lambda m: m[0]):
            # a question is reported as such, not as the whole sentence it spans
            phrase = "(question)" if pat.family == "question" else normalized[start:end].strip()
            found.append(Cue(phrase, pat.family, pat.cue_id))
        return tuple(found)

    def hint(self, label: str, cues: tuple[Cue, ...]) -> str | None:
        """Return the reframing hint for an upward/downward sentence (``None`` otherwise).

        The hint of the first cue of the predicted label that has one is used; without a cue the
        label's general hint is returned.
        """
        if label not in COMPARISON_LABELS:
            return None
        for cue in cues:
            if self.family_label.get(cue.family) == label and cue.cue_id in self.hints:
                return self.hints[cue.cue_id]
        return self.hints[label]


@cache
def load_cuebook() -> CueBook:
    """Load and compile the packaged ``data/cues.json`` (cached)."""
    text = resources.files("peerlens.narrative").joinpath("data/cues.json").read_text("utf-8")
    return CueBook(json.loads(text))
