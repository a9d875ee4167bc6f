"""The labelled real-supporter development corpus: keys and labels in git, texts rebuilt locally.

``benchmarks/story_data/real/`` holds, for every sampled sentence, its source keys
(``items.csv``) and its labels from two blind annotation passes and adjudication
(``labels.tsv``: ``pass1``, ``pass2``, ``final``).  The texts may not be redistributed, so they
are rebuilt from snapshots of the source repositories by ``tools/build_real_corpus.py build``
into ``benchmarks/out/real_corpus/real_corpus.tsv`` (git-ignored).  :func:`load_dev_corpus` joins
the three; whatever labelled items exist are used, so a later labelled batch appended to
``items.csv``/``labels.tsv`` is picked up on the next run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from peerlens.narrative._errors import NarrativeError
from peerlens.narrative.corpus import LABELS
from peerlens.narrative.splitting import split_sentences

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DevCorpusPaths", "dev_corpus_paths", "load_dev_corpus", "neighbours_from_context"]

_ELLIPSIS = "[…]"


class DevCorpusPaths:
    """Where the development corpus's keys, labels and rebuilt texts are."""

    def __init__(self, keys_dir: Path, rebuilt: Path) -> None:
        self.keys_dir = Path(keys_dir)
        self.rebuilt = Path(rebuilt)

    @property
    def items(self) -> Path:
        return self.keys_dir / "items.csv"

    @property
    def labels(self) -> Path:
        return self.keys_dir / "labels.tsv"

    def available(self) -> bool:
        """True when the keys, the labels and the rebuilt texts are all present."""
        return self.items.is_file() and self.labels.is_file() and self.rebuilt.is_file()

    def checksums(self) -> dict[str, str]:
        """SHA-256 of the items, labels and rebuilt-text files (model provenance)."""
        return {
            "real_items_sha256": _sha(self.items),
            "real_labels_sha256": _sha(self.labels),
            "real_texts_sha256": _sha(self.rebuilt),
        }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dev_corpus_paths(root: Path) -> DevCorpusPaths:
    """Return the default layout under a checkout ``root`` (keys in git, texts git-ignored)."""
    return DevCorpusPaths(
        root / "benchmarks" / "story_data" / "real",
        root / "benchmarks" / "out" / "real_corpus" / "real_corpus.tsv",
    )


def neighbours_from_context(context: str) -> tuple[str, str]:
    """Return the sentence before and after the ``[[target]]`` in an annotation context.

    Examples
    --------
    >>> neighbours_from_context("Me too. [[At least you tried.]] Hugs.")
    ('Me too.', 'Hugs.')
    >>> neighbours_from_context("[[Hi.]]")
    ('', '')
    """
    lo, hi = context.find("[["), context.rfind("]]")
    if lo < 0 or hi < 0:
        return "", ""
    before = context[:lo].replace(_ELLIPSIS, " ").strip()
    after = context[hi + 2 :].replace(_ELLIPSIS, " ").strip()
    prev = split_sentences(before) if before else []
    nxt = split_sentences(after) if after else []
    return (prev[-1] if prev else ""), (nxt[0] if nxt else "")


def load_dev_corpus(paths: DevCorpusPaths) -> pd.DataFrame:
    """Load every labelled real sentence with its source, labels and neighbours.

    Parameters
    ----------
    paths : DevCorpusPaths
        Keys, labels and rebuilt texts (see :func:`dev_corpus_paths`).

    Returns
    -------
    pandas.DataFrame
        One row per labelled item: ``item_id``, ``source``, ``arm``, ``text``, ``label`` (the
        adjudicated ``final``), ``pass1``, ``pass2``, ``mixed``, ``prev``, ``next`` (the
        neighbouring sentences of the same reply, ``""`` at its edges).  Items whose note marks
        them ``unsupported`` (not English) are left out.

    Raises
    ------
    NarrativeError
        If a file is missing, a label is unknown, or a labelled item has no rebuilt text (the
        message says to rerun the rebuild).
    """
    import pandas as pd

    for path in (paths.items, paths.labels, paths.rebuilt):
        if not path.is_file():
            raise NarrativeError(
                f"{path}: missing (rebuild the texts with `tools/build_real_corpus.py build`)"
            )
    read = {"dtype": str, "keep_default_na": False}
    items = pd.read_csv(paths.items, **read)  # type: ignore[call-overload]
    labels = pd.read_csv(paths.labels, sep="\t", **read)  # type: ignore[call-overload]
    texts = pd.read_csv(paths.rebuilt, sep="\t", quoting=3, **read)  # type: ignore[call-overload]
    for col in ("pass1", "pass2", "final"):
        bad = labels[~labels[col].isin(LABELS)]
        if len(bad):
            raise NarrativeError(
                f"{paths.labels}: row {int(bad.index[0]) + 2}, column {col}: unknown label "
                f"{bad[col].iloc[0]!r}"
            )
    frame = labels.merge(items[["item_id", "source", "arm"]], on="item_id", how="left")
    if frame["source"].isna().any():
        missing = frame.loc[frame["source"].isna(), "item_id"].iloc[0]
        raise NarrativeError(f"{paths.items}: labelled item {missing} has no keys")
    frame = frame.merge(texts[["item_id", "sentence", "context"]], on="item_id", how="left")
    absent = frame["sentence"].isna()
    if absent.any():
        raise NarrativeError(
            f"{paths.rebuilt}: {int(absent.sum())} labelled items (first "
            f"{frame.loc[absent, 'item_id'].iloc[0]}) have no rebuilt text; rerun "
            "`tools/build_real_corpus.py build`"
        )
    frame = frame[~frame["reason"].str.contains("unsupported", case=False)]
    neighbours = [neighbours_from_context(c) for c in frame["context"]]
    return pd.DataFrame(
        {
            "item_id": frame["item_id"].to_numpy(),
            "source": frame["source"].to_numpy(),
            "arm": frame["arm"].to_numpy(),
            "text": frame["sentence"].to_numpy(),
            "label": frame["final"].to_numpy(),
            "pass1": frame["pass1"].to_numpy(),
            "pass2": frame["pass2"].to_numpy(),
            "mixed": frame["mixed"].to_numpy(),
            "prev": [p for p, _ in neighbours],
            "next": [n for _, n in neighbours],
        }
    )
