"""Sentence-model features of many training subsets of one frame, each sentence counted once.

A leave-one-source-out run fits the sentence model on dozens of overlapping subsets of the same
sentences (one per held-out source, and in the nested run one per pair of sources).  Fitting the
TF-IDF vectorisers anew for every subset re-tokenises every sentence every time, and the cue
and context block is recomputed as often.  :class:`FoldFeatures` counts each sentence's word and
character n-grams once (all n-grams, no frequency cut) and computes its dense block once; for a
subset it then builds exactly what :func:`peerlens.narrative.model.fit_sklearn` builds when fitted
on that subset alone:

* the n-grams found in at least ``min_df`` of the subset's sentences, in sorted order (the
  vocabulary scikit-learn's ``TfidfVectorizer`` keeps; ``max_df`` and ``max_features`` are not
  used by :class:`~peerlens.narrative.model.ModelConfig`);
* idf from the subset's document frequencies, sublinear tf and l2 row norms, by scikit-learn's
  ``TfidfTransformer`` with the vectoriser's own settings;
* the dense block (:func:`peerlens.narrative.model.dense_features`), which depends on each
  sentence and its neighbours only, not on the subset.

Held-out rows are transformed with the subset's vocabulary and idf, as ``TfidfVectorizer``'s
``transform`` does.  A test checks the matrices against a fresh ``fit_sklearn`` on a subset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import LABELS
from peerlens.narrative.cues import CueBook, load_cuebook
from peerlens.narrative.evaluation import source_folds
from peerlens.narrative.model import (
    Embedder,
    ModelConfig,
    _vectorizers,
    dense_features,
    fit_classifier,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FoldFeatures", "loso_rows"]


class FoldFeatures:
    """The features of any training subset of a fixed list of sentences, and of held-out rows.

    Parameters
    ----------
    texts : sequence of str
        The sentences as written (normalised here as the model does).
    config : ModelConfig
        The model's feature settings.
    cuebook : CueBook, optional
        Cue patterns; the packaged ``cues.json`` by default.
    static : Embedder, optional
        The sentence embedding, for ``config.static_weight > 0``.
    prev, nxt : sequence of str, optional
        Each sentence's raw neighbours (``""`` where there is none), for ``config.context``.
    """

    def __init__(
        self,
        texts: Sequence[str],
        config: ModelConfig,
        cuebook: CueBook | None = None,
        static: Embedder | None = None,
        prev: Sequence[str] | None = None,
        nxt: Sequence[str] | None = None,
    ) -> None:
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        self.config = config
        normalized = [normalize(t) for t in texts]
        # (all n-gram counts as CSR, min_df, a transformer with the vectoriser's settings)
        self._blocks: list[tuple[Any, int, Any]] = []
        if config.tfidf:
            for vec in _vectorizers(config):
                if vec.max_df != 1.0 or vec.max_features is not None:
                    raise ValueError("FoldFeatures reproduces min_df only, not max_df/max_features")
                counter = CountVectorizer(analyzer=vec.build_analyzer(), dtype=vec.dtype)
                counts = counter.fit_transform(normalized).tocsr()
                transformer = TfidfTransformer(
                    norm=vec.norm,
                    use_idf=vec.use_idf,
                    smooth_idf=vec.smooth_idf,
                    sublinear_tf=vec.sublinear_tf,
                )
                self._blocks.append((counts, int(vec.min_df), transformer))
        p = [normalize(t) for t in prev] if prev is not None else None
        n = [normalize(t) for t in nxt] if nxt is not None else None
        dense = dense_features(config, cuebook or load_cuebook(), static, normalized, p, n)
        self._dense = sp.csr_matrix(dense)

    def __len__(self) -> int:
        return int(self._dense.shape[0])

    def split(self, train: np.ndarray, test: np.ndarray) -> tuple[Any, Any]:
        """Feature matrices (scipy CSR) of rows ``train``, fitted on them, and of rows ``test``.

        ``train`` and ``test`` are row positions; the vocabulary and idf come from ``train``
        only.
        """
        import scipy.sparse as sp
        from sklearn.base import clone

        fitted, held = [], []
        for counts, min_df, transformer in self._blocks:
            sub = counts[train]
            df = np.bincount(sub.indices, minlength=sub.shape[1])
            keep = np.flatnonzero(df >= min_df)
            tf = clone(transformer)
            fitted.append(tf.fit_transform(sub[:, keep]))
            held.append(tf.transform(counts[test][:, keep]))
        fitted.append(self._dense[train])
        held.append(self._dense[test])
        return sp.hstack(fitted, format="csr"), sp.hstack(held, format="csr")

    def fit_predict(
        self,
        train: np.ndarray,
        test: np.ndarray,
        labels: Sequence[str],
        own: Sequence[bool] | None = None,
    ) -> np.ndarray:
        """Fit the model on rows ``train`` and return class probabilities of rows ``test``.

        ``labels`` and ``own`` (the project's own written rows) cover all rows; columns of the
        result follow the fitted classes (``peerlens.narrative.corpus.LABELS`` order).
        """
        x_train, x_test = self.split(train, test)
        y = [labels[i] for i in train]
        mine = None if own is None else [own[i] for i in train]
        clf = fit_classifier(x_train, y, self.config, mine)
        if tuple(clf.classes_) != LABELS:
            raise ValueError(f"training rows hold labels {tuple(clf.classes_)}, not {LABELS}")
        return np.asarray(clf.predict_proba(x_test))


def loso_rows(
    frame: pd.DataFrame,
    config: ModelConfig,
    static: Embedder | None = None,
    log: Callable[[str], None] | None = None,
    features: FoldFeatures | None = None,
) -> np.ndarray:
    """Leave-one-source-out class probabilities of every real row of ``frame``.

    ``frame`` has ``text``, ``label``, ``source``, ``prev`` and ``next``; rows whose source is
    ``""`` (the project's own corpus) train in every fold and get ``NaN``.  Each other row is
    scored by a model fitted on every row not of its source (one fit per source).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(frame), 4)``, columns in ``LABELS`` order.
    """
    import time

    sources = frame["source"].tolist()
    own = np.asarray([s == "" for s in sources])
    feats = features or FoldFeatures(
        frame["text"].tolist(),
        config,
        static=static,
        prev=frame["prev"].tolist(),
        nxt=frame["next"].tolist(),
    )
    labels = frame["label"].astype(str).tolist()
    proba = np.full((len(frame), len(LABELS)), np.nan)
    for fold in source_folds(sources, always_train=own):
        t0 = time.perf_counter()
        proba[fold.test] = feats.fit_predict(fold.train, fold.test, labels, own.tolist())
        if log is not None:
            log(f"    held out {fold.held_out} ({time.perf_counter() - t0:.0f} s)")
    return proba
