"""FoldFeatures: a subset's features equal a fresh fit on it; LOSO never sees the source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import LABELS, load_corpus
from peerlens.narrative.cues import load_cuebook
from peerlens.narrative.fold_features import FoldFeatures, loso_rows
from peerlens.narrative.model import ModelConfig, dense_features, fit_sklearn

CONFIG = ModelConfig(class_weight="balanced", context=True, max_iter=500)
# the reference fits stop early on purpose (only their vectorisers are compared, or both sides
# run the same capped iterations), so scikit-learn's convergence warning is expected here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    corpus = load_corpus(split="train").groupby("label").head(60).reset_index(drop=True)
    texts = corpus["text"].tolist()
    # neighbours and three fake sources, so context and folds have something to do
    return pd.DataFrame(
        {
            "text": texts,
            "label": corpus["label"].tolist(),
            "prev": ["", *texts[:-1]],
            "next": [*texts[1:], ""],
            "source": [["", "a", "b", "c"][i % 4] for i in range(len(texts))],
        }
    )


def _reference(frame: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> tuple[object, object]:
    """The matrices fit_sklearn builds on ``train`` alone, and its transform of ``test``."""
    fit = frame.iloc[train]
    word, char, _ = fit_sklearn(
        fit["text"].tolist(),
        fit["label"].tolist(),
        CONFIG,
        prev=fit["prev"].tolist(),
        nxt=fit["next"].tolist(),
    )
    cues = load_cuebook()

    def matrix(rows: pd.DataFrame) -> object:
        norm = [normalize(t) for t in rows["text"]]
        dense = dense_features(
            CONFIG,
            cues,
            None,
            norm,
            [normalize(t) for t in rows["prev"]],
            [normalize(t) for t in rows["next"]],
        )
        return sp.hstack([word.transform(norm), char.transform(norm), sp.csr_matrix(dense)])

    return matrix(fit), matrix(frame.iloc[test])


def test_a_subsets_features_equal_a_fresh_fit_on_it(frame: pd.DataFrame) -> None:
    feats = FoldFeatures(
        frame["text"].tolist(), CONFIG, prev=frame["prev"].tolist(), nxt=frame["next"].tolist()
    )
    rows = np.arange(len(frame))
    train, test = rows[rows % 3 != 0], rows[rows % 3 == 0]
    got_train, got_test = feats.split(train, test)
    want_train, want_test = _reference(frame, train, test)
    assert got_train.shape == want_train.shape  # type: ignore[attr-defined]
    np.testing.assert_allclose(got_train.toarray(), want_train.toarray(), atol=1e-12)  # type: ignore[attr-defined]
    np.testing.assert_allclose(got_test.toarray(), want_test.toarray(), atol=1e-12)  # type: ignore[attr-defined]
    # a different subset keeps a different vocabulary (min_df counted on the subset)
    other, _ = feats.split(rows[: len(rows) // 2], test)
    assert other.shape[1] != got_train.shape[1]


def test_fit_predict_equals_the_model_trained_on_the_subset(frame: pd.DataFrame) -> None:
    feats = FoldFeatures(
        frame["text"].tolist(), CONFIG, prev=frame["prev"].tolist(), nxt=frame["next"].tolist()
    )
    rows = np.arange(len(frame))
    train, test = rows[rows % 2 == 0], rows[rows % 2 == 1]
    got = feats.fit_predict(train, test, frame["label"].tolist())
    fit = frame.iloc[train]
    _, _, clf = fit_sklearn(
        fit["text"].tolist(),
        fit["label"].tolist(),
        CONFIG,
        prev=fit["prev"].tolist(),
        nxt=fit["next"].tolist(),
    )
    _, want_test = _reference(frame, train, test)
    assert tuple(clf.classes_) == LABELS
    np.testing.assert_allclose(got, clf.predict_proba(want_test), atol=1e-6)


def test_loso_rows_score_each_source_without_its_own_labels(frame: pd.DataFrame) -> None:
    before = loso_rows(frame, CONFIG)
    own = (frame["source"] == "").to_numpy()
    assert np.isnan(before[own]).all() and not np.isnan(before[~own]).any()
    # relabel every row of source "a": its own probabilities cannot move, the others' must
    shuffled = frame.copy()
    is_a = (frame["source"] == "a").to_numpy()
    shuffled.loc[is_a, "label"] = np.roll(frame.loc[is_a, "label"].to_numpy(), 7)
    after = loso_rows(shuffled, CONFIG)
    np.testing.assert_allclose(after[is_a], before[is_a], atol=1e-9)
    assert not np.allclose(after[~own & ~is_a], before[~own & ~is_a], atol=1e-6)
