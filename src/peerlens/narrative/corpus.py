"""The project-written labelled corpus of PS workers' sentences.

``data/corpus.csv`` holds one sentence per row with columns ``id``, ``text``, ``label``
(``connection``, ``upward``, ``downward``, ``neutral``), ``mixed`` (1 when the sentence also holds
a connection cue; it then takes the comparison label), ``diagnosis``, ``setting``, ``register``
and ``split`` (``train`` or the frozen ``test`` split that training never sees), and ``rule``:
the guideline rule a row was written to illustrate (hard negatives added for batch 3's lexical
traps; empty for the older rows).  The labelling rules are in ``docs/annotation_guidelines.md``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from peerlens.narrative._errors import NarrativeError

__all__ = ["LABELS", "corpus_path", "corpus_sha256", "load_corpus"]

#: The four sentence labels, in the model's class order.
LABELS: tuple[str, ...] = ("connection", "downward", "neutral", "upward")

_COLUMNS = ("id", "text", "label", "mixed", "diagnosis", "setting", "register", "split")
_DIAGNOSES = {
    "psychosis",
    "depression",
    "anxiety",
    "bipolar",
    "eating disorders",
    "self-harm",
    "addiction",
    "trauma",
    "grief",
    "general",
}
_SETTINGS = {"ward", "community", "group", "online chat", "family"}
_REGISTERS = {"spoken", "texted", "formal"}
_SPLITS = {"train", "test"}


def corpus_path() -> Path:
    """Return the path of the packaged corpus CSV."""
    return Path(str(resources.files("peerlens.narrative").joinpath("data/corpus.csv")))


def corpus_sha256(path: Path | None = None) -> str:
    """Return the SHA-256 of the corpus file (recorded in the model metadata)."""
    return hashlib.sha256((path or corpus_path()).read_bytes()).hexdigest()


def load_corpus(path: Path | None = None, split: str | None = None) -> pd.DataFrame:
    """Load and validate the labelled corpus.

    Parameters
    ----------
    path : Path, optional
        A corpus CSV in the packaged format; the packaged corpus by default.
    split : {"train", "test"}, optional
        Keep only this split.

    Returns
    -------
    pandas.DataFrame
        One row per sentence with the columns listed in the module docstring.

    Raises
    ------
    NarrativeError
        On a missing column, an unknown label/diagnosis/setting/register/split (with the 1-based
        data row), an empty or duplicated sentence, or a mixed flag on a non-comparison label.

    Examples
    --------
    >>> corpus = load_corpus()
    >>> len(corpus) >= 2000
    True
    >>> sorted(corpus["label"].unique()) == sorted(LABELS)
    True
    """
    import pandas as pd  # lazy: inference never needs pandas

    path = path or corpus_path()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise NarrativeError(f"{path}: missing column(s) {', '.join(missing)}")
    checks = {
        "label": set(LABELS),
        "diagnosis": _DIAGNOSES,
        "setting": _SETTINGS,
        "register": _REGISTERS,
        "split": _SPLITS,
        "mixed": {"0", "1"},
    }
    for column, allowed in checks.items():
        bad = ~frame[column].isin(allowed)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise NarrativeError(
                f"{path}: row {row + 1}, column {column!r}: unknown value "
                f"{frame[column].iloc[row]!r} (allowed: {', '.join(sorted(allowed))})"
            )
    empty = frame["text"].str.strip() == ""
    if empty.any():
        raise NarrativeError(f"{path}: row {int(empty.to_numpy().argmax()) + 1}: empty text")
    dup = frame["id"].duplicated() | frame["text"].duplicated()
    if dup.any():
        raise NarrativeError(f"{path}: row {int(dup.to_numpy().argmax()) + 1}: duplicated id/text")
    bad_mixed = (frame["mixed"] == "1") & ~frame["label"].isin(["upward", "downward"])
    if bad_mixed.any():
        row = int(bad_mixed.to_numpy().argmax()) + 1
        raise NarrativeError(f"{path}: row {row}: mixed=1 needs a comparison label")
    frame["mixed"] = frame["mixed"].astype(int)
    if split is not None:
        if split not in _SPLITS:
            raise NarrativeError(f"split must be 'train' or 'test', not {split!r}")
        frame = frame[frame["split"] == split].reset_index(drop=True)
    return frame
