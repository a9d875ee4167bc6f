"""Training the packaged sentence model: the chosen configuration, data and threshold rule.

The packaged model is trained on the project-written corpus's train split plus the labelled
real-supporter sentences of the development corpus's batches :data:`RELEASE_BATCHES`
(``peerlens.narrative.devcorpus``; the texts are rebuilt locally and never committed); later
batches stay held out until they are added there.  Its comparison threshold is calibrated by
leave-one-source-out over the real sources (each real sentence scored by a model that did not
see its source; the project corpus always trains) for at most 3 % false comparison alarms, with
the 0.5 floor (``peerlens.narrative.evaluation``), by the decision rule :data:`RELEASE_RULE`:
one threshold for both comparison classes, one per class, or one per class with a precision
floor below which the model abstains on the class.  The configuration was picked by
``benchmarks/story_eval.py``; see ``docs/story.md``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from peerlens.narrative.corpus import LABELS, corpus_sha256, load_corpus
from peerlens.narrative.devcorpus import DevCorpusPaths, load_dev_corpus
from peerlens.narrative.evaluation import (
    calibrate_class_thresholds,
    calibrate_threshold,
    loso_group,
)
from peerlens.narrative.fold_features import loso_rows
from peerlens.narrative.model import (
    Embedder,
    MemoEmbedder,
    ModelConfig,
    TextModel,
    default_embedder,
    train_model,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DECISION_RULES",
    "MAX_FALSE_ALARM",
    "MIN_PRECISION",
    "RELEASE_BATCHES",
    "RELEASE_CONFIG",
    "RELEASE_RULE",
    "calibrate_rule",
    "loso_probabilities",
    "loso_threshold",
    "real_provenance",
    "train_frame",
    "train_release",
]

#: Target false-comparison-alarm rate the threshold is calibrated for (issue 10).
MAX_FALSE_ALARM = 0.03
#: Precision a comparison class must reach (issue 10) for ``per_class_abstain`` to report it.
MIN_PRECISION = 0.80
#: Decision rules (``calibrate_rule``): ``single`` threshold for both comparison classes,
#: ``per_class`` thresholds, ``per_class_abstain`` (per class, and a class that reaches
#: :data:`MIN_PRECISION` at no threshold is never reported).
DECISION_RULES = ("single", "per_class", "per_class_abstain")
#: The packaged model's configuration (chosen in ``benchmarks/story_eval.py`` on batches 1-3,
#: candidate ``tfidf_ctx``; ``docs/story.md``, "Batch 1-3 retrain"): TF-IDF word + char n-grams,
#: cue-family indicators and the neighbouring sentences' cues, balanced class weights.  The
#: candidates with the static embedding, per-pattern cues and the own-corpus/comparison weights
#: (shipped after batch 2) gave more false alarms on held-out sources at every decision rule.
#: From the batch 1-5 + 7 + 8 retrain the comparison classes' weights are doubled (candidate
#: ``tfidf_ctx_cw``, settings fixed in earlier rounds): by the rule fixed before that run it had
#: the higher LOSO mean macro-F1 over the 18 held-out folds (0.496 against 0.488), every fold
#: within 3 % false alarms (``docs/story.md``, "Batch 1-5 + 7 + 8 retrain"); the batch 1-5 + 7-9
#: retrain kept it by the same rule (0.510 against 0.504 over 19 folds).  Since the MiniLM
#: retrain the sentence's and its neighbours' all-MiniLM-L6-v2 embeddings are appended (candidate
#: ``tfidf_minilm_ctx_cw``, settings fixed before its first run): by the same rule, over the 21
#: folds of batches 1-5, 7-9 and 11, LOSO mean macro-F1 0.531 against 0.513, pooled false alarms
#: 0.7 % against 0.8 %, every fold within 3 % (``docs/story.md``, "MiniLM retrain").  Since the
#: fits run to convergence (``ModelConfig.tol``) C is 10, not 30: by the same rule over the same
#: 21 folds, C = 3 / 10 / 30 / 100 gave LOSO means 0.545 / 0.553 / 0.549 / 0.550
#: (``docs/story.md``, "Reproducible fits").
RELEASE_CONFIG = ModelConfig(
    class_weight="balanced",
    context=True,
    comparison_weight=2.0,
    static_weight=1.0,
    embedding="minilm",
    C=10.0,
)
#: The development corpus's labelled batches the packaged model is trained on (``batch`` in
#: ``benchmarks/story_data/real/items.csv``; recorded as ``real_batches`` in its metadata).
#: Batches 4 and 5 joined in the batch 1-5 retrain, batch 7 (a training batch from five new
#: sources) in the batch 1-5 + 7 retrain, batch 8 (replies from four new sources, one LOSO fold)
#: in the batch 1-5 + 7 + 8 retrain, batch 9 (replies from two sources, one of them in batch 8's
#: fold) in the batch 1-5 + 7-9 retrain, batch 11 (replies from two forums, a fold each) in the
#: MiniLM retrain, batch 12 (comparison-rich, from sources already in the corpus) in the batch
#: 1-12 retrain, chosen over the batch 1-11 model and the half-weight neighbours by a rule fixed
#: before held-out batch 13 was read (``docs/story.md``, "Batch 13 decides"); batch 14 (chosen
#: by a scorer's ranking) is labelled but left out: out of fold it lowered the figures on the
#: rows of batches 1-12.  Batches 6, 10 and 13 are held out (``docs/story.md``, "Batch
#: 1-5 + 7 + 8 retrain"; batches 10 and 13 drawn as successors) and marked ``"held_out": true``
#: in ``sources.json``, which ``load_dev_corpus`` enforces; to train on one, remove that flag,
#: add it here and rerun ``peerlens story train``.
RELEASE_BATCHES: tuple[int, ...] = (1, 2, 3, 4, 5, 7, 8, 9, 11, 12)
#: The packaged model's decision rule (one of :data:`DECISION_RULES`).
RELEASE_RULE = "per_class"


def train_frame(corpus: pd.DataFrame, dev: pd.DataFrame) -> pd.DataFrame:
    """Project corpus train split (source ``""``, no neighbours) plus the real sentences."""
    import pandas as pd

    own = corpus[corpus["split"] == "train"]
    return pd.concat(
        [
            pd.DataFrame(
                {"text": own["text"], "label": own["label"], "source": "", "prev": "", "next": ""}
            ),
            dev[["text", "label", "source", "prev", "next"]],
        ],
        ignore_index=True,
    )


def loso_probabilities(
    frame: pd.DataFrame, config: ModelConfig, static: Embedder | None = None
) -> tuple[np.ndarray, list[str]]:
    """Leave-one-source-out probabilities of the real rows, and their gold labels.

    Rows with source ``""`` (the project corpus) train in every fold and are never scored; the
    real rows come back in ``frame`` order (``peerlens.narrative.fold_features.loso_rows``).
    """
    real = (frame["source"] != "").to_numpy()
    proba = loso_rows(frame, config, static)
    return proba[real], frame.loc[real, "label"].astype(str).tolist()


def loso_threshold(
    frame: pd.DataFrame,
    config: ModelConfig,
    static: Embedder | None = None,
    max_false_alarm: float = MAX_FALSE_ALARM,
) -> float:
    """Comparison threshold from leave-one-source-out probabilities of the real rows."""
    proba, gold = loso_probabilities(frame, config, static)
    return calibrate_threshold(proba, gold, LABELS, max_false_alarm)


def calibrate_rule(
    proba: np.ndarray,
    gold: list[str],
    rule: str,
    max_false_alarm: float = MAX_FALSE_ALARM,
) -> float | dict[str, float | None]:
    """Calibrate the decision rule ``rule`` (one of :data:`DECISION_RULES`) on probabilities.

    Returns the single threshold (``single``) or the per-class thresholds.

    Examples
    --------
    >>> p = np.array([[0, .9, .1, 0], [0, .6, .4, 0], [0, 0, .3, .7], [.1, 0, .3, .6]])
    >>> gold = ["downward", "neutral", "upward", "neutral"]
    >>> calibrate_rule(p, gold, "single", 0.0)
    0.6000000001
    >>> calibrate_rule(p, gold, "per_class", 0.0)
    {'upward': 0.6000000001, 'downward': 0.6000000001}
    """
    if rule == "single":
        return calibrate_threshold(proba, gold, LABELS, max_false_alarm)
    if rule == "per_class":
        return calibrate_class_thresholds(proba, gold, LABELS, max_false_alarm)
    if rule == "per_class_abstain":
        return calibrate_class_thresholds(
            proba, gold, LABELS, max_false_alarm, min_precision=MIN_PRECISION
        )
    raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")


def threshold_meta(thresholds: float | dict[str, float | None], rule: str) -> dict[str, object]:
    """What the model records about its decision rule (``TextModel.threshold(s)``)."""
    data = (
        f"with <= {MAX_FALSE_ALARM:.0%} false comparison alarms on leave-one-source-out "
        "probabilities of the real sentences"
    )
    if not isinstance(thresholds, dict):
        return {
            "comparison_threshold": thresholds,
            "threshold_rule": f"single: smallest t >= 0.5 {data}",
        }
    text = (
        f"{rule}: one threshold >= 0.5 per comparison class, the pair with the best mean "
        f"upward/downward F1 {data}"
    )
    if rule == "per_class_abstain":
        text += (
            f"; a class that reaches {MIN_PRECISION:.0%} precision (5 or more calls) at no "
            "threshold is never reported (null)"
        )
    reported = [t for t in thresholds.values() if t is not None]
    return {
        "comparison_threshold": min(reported) if reported else 1.0,
        "comparison_thresholds": thresholds,
        "threshold_rule": text,
    }


def real_provenance(
    dev_paths: DevCorpusPaths, batches: tuple[int, ...], texts: bool = True
) -> dict[str, object]:
    """What a model trained on ``batches`` of the development corpus records about them.

    ``trained_on``, ``real_batches`` and the SHA-256 of exactly those batches' rows of the
    items, labels and (with ``texts``) rebuilt texts (``DevCorpusPaths.checksums``).
    """
    names = ", ".join(str(b) for b in batches)
    return {
        "trained_on": (
            "train split of peerlens/narrative/data/corpus.csv + labelled real sentences of "
            f"batches {names} of benchmarks/story_data/real (texts rebuilt locally)"
        ),
        "real_batches": list(batches),
        **dev_paths.checksums(batches, texts=texts),
    }


def train_release(
    dev_paths: DevCorpusPaths,
    config: ModelConfig = RELEASE_CONFIG,
    static: Embedder | None = None,
    batches: tuple[int, ...] = RELEASE_BATCHES,
    rule: str = "",
) -> TextModel:
    """Train the packaged model from the project corpus and batches of the development corpus.

    Parameters
    ----------
    dev_paths : DevCorpusPaths
        The development corpus (keys, labels and rebuilt texts).
    config : ModelConfig
        Features and classifier settings.
    static : Embedder, optional
        The sentence embedding; by default the one ``config.embedding`` names.
    batches : tuple of int
        The labelled batches to train on; only their rows are read and fingerprinted.
    rule : str
        The decision rule (:data:`DECISION_RULES`); :data:`RELEASE_RULE` by default.

    Raises
    ------
    NarrativeError
        If the texts of these batches have not been rebuilt (see ``devcorpus``) or a batch has
        no labelled items.
    """
    rule = rule or RELEASE_RULE
    if rule not in DECISION_RULES:
        raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")
    corpus = load_corpus()
    dev = load_dev_corpus(dev_paths, batches)
    frame = train_frame(corpus, dev)
    if static is None:
        static = default_embedder(config)
    if static is not None:
        static = MemoEmbedder(static)  # the folds and the final fit embed the same sentences
    proba, gold = loso_probabilities(frame, config, static)
    thresholds = calibrate_rule(proba, gold, rule)
    meta: dict[str, object] = {
        **real_provenance(dev_paths, batches),
        "n_own": int((frame["source"] == "").sum()),
        "n_real": len(dev),
        "real_sources": sorted(set(dev["source"])),
        # sources held out together in the threshold folds (evaluation.LOSO_GROUPS)
        "loso_groups": {s: loso_group(s) for s in sorted(set(dev["source"])) if loso_group(s) != s},
        "corpus_sha256": corpus_sha256(),
        **threshold_meta(thresholds, rule),
    }
    model = train_model(frame, replace(config), static=static, meta=meta)
    model.meta["n_train"] = len(frame)
    if isinstance(model.static, MemoEmbedder):
        model.static = model.static.inner  # the model keeps no memory of its training texts
    return model


def default_dev_paths(root: Path | None = None) -> DevCorpusPaths:
    """The development corpus under ``root`` (the current directory by default)."""
    from peerlens.narrative.devcorpus import dev_corpus_paths

    return dev_corpus_paths(Path.cwd() if root is None else root)
