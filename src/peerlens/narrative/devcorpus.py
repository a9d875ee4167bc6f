"""The labelled real-supporter development corpus: keys and labels in git, texts rebuilt locally.

``benchmarks/story_data/real/`` holds, for every sampled sentence, its source keys
(``items.csv``) and its labels from two blind annotation passes and adjudication
(``labels.tsv``: ``pass1``, ``pass2``, ``final``).  The texts may not be redistributed, so they
are rebuilt from snapshots of the source repositories by ``tools/build_real_corpus.py build``
into ``benchmarks/out/real_corpus/real_corpus.tsv`` (git-ignored).  :func:`load_dev_corpus` joins
the three, for every labelled batch (``batch`` in ``items.csv``) or only the batches asked for.
Batches marked ``"held_out": true`` in ``sources.json`` are the held-out test batches: they are
left out unless the caller asks to score them (``include_held_out``), so no training or
model-choice path can take them in by default (:func:`held_out_batches`).
:meth:`DevCorpusPaths.checksums` fingerprints exactly the rows of the given batches in a canonical
form, so a model records what it was trained on and a later batch appended to
``items.csv``/``labels.tsv`` leaves that record valid, while editing any of its rows does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from peerlens.narrative._errors import NarrativeError
from peerlens.narrative.corpus import LABELS
from peerlens.narrative.splitting import split_sentences

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DevCorpusPaths",
    "canonical_sha256",
    "dev_corpus_paths",
    "held_out_batches",
    "load_dev_corpus",
    "neighbours_from_context",
]

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

    @property
    def sources(self) -> Path:
        return self.keys_dir / "sources.json"

    def available(self) -> bool:
        """True when the keys, the labels and the rebuilt texts are all present."""
        return self.items.is_file() and self.labels.is_file() and self.rebuilt.is_file()

    def checksums(self, batches: Collection[int], texts: bool = True) -> dict[str, str]:
        """SHA-256 of the rows of ``batches`` in the items, labels and rebuilt texts.

        Each digest covers the rows whose item belongs to one of ``batches``, every column, in a
        canonical form (:func:`canonical_sha256`), so it does not depend on row order, quoting
        or line endings, and rows of other batches do not enter it.  This is what a trained
        model records as its provenance (``real_items_sha256``, ``real_labels_sha256``,
        ``real_texts_sha256``).

        Parameters
        ----------
        batches : collection of int
            The batches (``batch`` in ``items.csv``).
        texts : bool
            Also fingerprint the rebuilt texts (which must then exist); the keys and labels
            alone otherwise.

        Raises
        ------
        NarrativeError
            If a file is missing or a ``batch`` is not a whole number.
        """
        import pandas as pd

        items, labels = _read_keys(self)
        ids = set(items.loc[items["batch"].astype(int).isin(set(batches)), "item_id"])
        sums = {
            "real_items_sha256": canonical_sha256(items[items["item_id"].isin(ids)]),
            "real_labels_sha256": canonical_sha256(labels[labels["item_id"].isin(ids)]),
        }
        if texts:
            _require(self.rebuilt)
            rebuilt = pd.read_csv(self.rebuilt, sep="\t", quoting=3, **_READ)  # type: ignore[call-overload]
            sums["real_texts_sha256"] = canonical_sha256(rebuilt[rebuilt["item_id"].isin(ids)])
        return sums


_READ: dict[str, object] = {"dtype": str, "keep_default_na": False}


def canonical_sha256(rows: pd.DataFrame) -> str:
    """SHA-256 of a table of strings keyed by ``item_id``, independent of row and column order.

    The columns are sorted by name and the rows by ``item_id``; the table is written as one
    JSON array (the column names, then each row's values) in UTF-8 and hashed.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"item_id": ["b", "a"], "final": ["neutral", "upward"]})
    >>> canonical_sha256(a) == canonical_sha256(a.iloc[::-1][["final", "item_id"]])
    True
    """
    cols = sorted(str(c) for c in rows.columns)
    body = rows[cols].sort_values("item_id", kind="stable").to_numpy().tolist()
    blob = json.dumps([cols, *body], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _require(path: Path) -> None:
    if not path.is_file():
        raise NarrativeError(
            f"{path}: missing (rebuild the texts with `tools/build_real_corpus.py build`)"
        )


def _read_keys(paths: DevCorpusPaths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``items.csv`` and ``labels.tsv`` as strings, checking every ``batch`` is a number."""
    import pandas as pd

    for path in (paths.items, paths.labels):
        _require(path)
    items = pd.read_csv(paths.items, **_READ)  # type: ignore[call-overload]
    labels = pd.read_csv(paths.labels, sep="\t", **_READ)  # type: ignore[call-overload]
    if "batch" not in items.columns:
        raise NarrativeError(f"{paths.items}: no batch column")
    bad = items[~items["batch"].str.fullmatch(r"[0-9]+")]
    if len(bad):
        raise NarrativeError(
            f"{paths.items}: row {int(bad.index[0]) + 2}, column batch: "
            f"{bad['batch'].iloc[0]!r} is not a batch number"
        )
    return items, labels


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


def held_out_batches(paths: DevCorpusPaths) -> frozenset[int]:
    """The batches ``sources.json`` marks ``"held_out": true`` (none if it has no such file).

    Raises
    ------
    NarrativeError
        If ``sources.json`` is not JSON, or a batch's ``held_out`` is not ``true``/``false``.
    """
    if not paths.sources.is_file():
        return frozenset()
    try:
        batches = json.loads(paths.sources.read_text(encoding="utf-8")).get("batches", {})
    except (ValueError, AttributeError) as exc:
        raise NarrativeError(f"{paths.sources}: not a JSON object with batches ({exc})") from exc
    held: set[int] = set()
    for key, spec in batches.items():
        flag = spec.get("held_out", False) if isinstance(spec, dict) else False
        if not isinstance(flag, bool):
            raise NarrativeError(
                f"{paths.sources}: batch {key}, held_out: {flag!r} is not true or false"
            )
        if flag:
            held.add(int(key))
    return frozenset(held)


def load_dev_corpus(
    paths: DevCorpusPaths,
    batches: Collection[int] | None = None,
    include_held_out: bool = False,
) -> pd.DataFrame:
    """Load the labelled real sentences with their source, batch, labels and neighbours.

    Parameters
    ----------
    paths : DevCorpusPaths
        Keys, labels and rebuilt texts (see :func:`dev_corpus_paths`).
    batches : collection of int, optional
        Load only the items of these batches (each must have labelled items); every labelled
        item of a batch that is not held out by default.  Only the loaded items need rebuilt
        texts.
    include_held_out : bool
        Allow the held-out batches (:func:`held_out_batches`): only to score a finished model
        on them, never to train or choose one.  Without it, asking for a held-out batch is an
        error and the default leaves them out.

    Returns
    -------
    pandas.DataFrame
        One row per labelled item: ``item_id``, ``batch`` (int), ``source``, ``arm``, ``text``,
        ``label`` (the adjudicated ``final``), ``pass1``, ``pass2``, ``mixed``, ``prev``,
        ``next`` (the neighbouring sentences of the same reply, ``""`` at its edges), in the
        order of ``labels.tsv``.  Items whose note marks them ``unsupported`` (not English) are
        left out.

    Raises
    ------
    NarrativeError
        If a file is missing, a label or batch is malformed, a requested batch has no labelled
        items or is held out (without ``include_held_out``), or a loaded item has no rebuilt
        text (the message says to rerun the rebuild).
    """
    import pandas as pd

    held = frozenset() if include_held_out else held_out_batches(paths)
    asked_held = sorted(set(batches or ()) & held)
    if asked_held:
        raise NarrativeError(
            f"{paths.sources}: batch {asked_held[0]} is held out (held_out: true); it may only "
            "be scored, with include_held_out=True, never trained or tuned on"
        )
    items, labels = _read_keys(paths)
    _require(paths.rebuilt)
    texts = pd.read_csv(paths.rebuilt, sep="\t", quoting=3, **_READ)  # type: ignore[call-overload]
    for col in ("pass1", "pass2", "final"):
        bad = labels[~labels[col].isin(LABELS)]
        if len(bad):
            raise NarrativeError(
                f"{paths.labels}: row {int(bad.index[0]) + 2}, column {col}: unknown label "
                f"{bad[col].iloc[0]!r}"
            )
    frame = labels.merge(items[["item_id", "batch", "source", "arm"]], on="item_id", how="left")
    if frame["source"].isna().any():
        missing = frame.loc[frame["source"].isna(), "item_id"].iloc[0]
        raise NarrativeError(f"{paths.items}: labelled item {missing} has no keys")
    frame["batch"] = frame["batch"].astype(int)
    if batches is not None:
        empty = sorted(set(batches) - set(frame["batch"]))
        if empty:
            raise NarrativeError(f"{paths.labels}: no labelled items of batch {empty[0]}")
        frame = frame[frame["batch"].isin(set(batches))]
    frame = frame[~frame["batch"].isin(held)]
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
            "batch": frame["batch"].to_numpy(),
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
