"""The connection/comparison sentence model: TF-IDF n-grams + cue features + logistic regression.

Training (:func:`train_model`) uses scikit-learn.  The trained model is stored as plain arrays
(``data/model.npz``: vocabularies, idf weights, coefficients) plus readable metadata
(``data/model.json``), never as a pickle, and inference re-implements the TF-IDF transform and the
linear scoring with numpy/scipy, so loading is fast and does not depend on the scikit-learn
version.  A test checks that this re-implementation reproduces scikit-learn's transform and
probabilities, and that retraining from the corpus reproduces the packaged artifact.

Notes
-----
Features, per sentence ``s`` after :func:`peerlens.narrative._text.normalize`:

* word 1-2-grams (tokens ``\\b\\w+\\b``) and character 2-5-grams within word boundaries
  (scikit-learn's ``char_wb``), each with sublinear tf ``1 + ln(tf)``, smoothed idf
  ``ln((1 + n) / (1 + df)) + 1`` and l2 normalisation per block (Salton & Buckley 1988;
  scikit-learn's ``TfidfVectorizer``);
* one 0/1 indicator per cue family of ``data/cues.json``, times ``cue_weight``.

Class probabilities are the multinomial logistic (softmax) of ``X @ coef.T + intercept``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from peerlens.narrative._errors import ModelArtifactError, NarrativeError
from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import LABELS, corpus_sha256, load_corpus
from peerlens.narrative.cues import CueBook, load_cuebook
from peerlens.narrative.evaluation import class_thresholds
from peerlens.narrative.static import StaticEmbedder

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EMBEDDINGS",
    "Embedder",
    "Features",
    "MemoEmbedder",
    "ModelConfig",
    "TextModel",
    "default_embedder",
    "dense_features",
    "distilled_static",
    "fit_classifier",
    "fit_sklearn",
    "from_sklearn",
    "load_model",
    "load_static",
    "model_dir",
    "packaged_model_meta",
    "train_model",
]

EMBEDDINGS = ("static", "minilm")


class Embedder(Protocol):
    """A sentence embedding the model appends: :class:`StaticEmbedder` or the MiniLM encoder."""

    @property
    def dims(self) -> int:
        """Width of one embedding."""
        ...

    def embed(self, sentences: list[str]) -> np.ndarray:
        """Return one vector per sentence, shape ``(len(sentences), dims)``."""
        ...


class MemoEmbedder:
    """An :class:`Embedder` that embeds each distinct text once and then remembers its vector.

    Training embeds the same sentences many times (the leave-one-source-out folds, then the
    final fit); with the MiniLM encoder that is most of the training time.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._memo: dict[str, np.ndarray] = {}

    @property
    def dims(self) -> int:
        """Width of one embedding (the wrapped embedder's)."""
        return self.inner.dims

    def embed(self, sentences: list[str]) -> np.ndarray:
        """Return the wrapped embedder's vectors, computing only texts not seen before."""
        new = [t for t in dict.fromkeys(sentences) if t not in self._memo]
        if new:
            self._memo.update(zip(new, self.inner.embed(new), strict=True))
        out = np.zeros((len(sentences), self.dims), dtype=np.float32)
        for i, text in enumerate(sentences):
            out[i] = self._memo[text]
        return out


_TOKEN = re.compile(r"(?u)\b\w+\b")
_WHITE = re.compile(r"\s\s+")
ARTIFACT_FORMAT = 1


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the sentence model (chosen by 5-fold CV on the train split only)."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    word_min_df: int = 2
    char_min_df: int = 2
    cue_weight: float = 1.0
    C: float = 30.0
    max_iter: int = 5000
    #: L-BFGS stopping tolerance (scikit-learn's ``tol``).  scikit-learn's default, 1e-4, stops
    #: the packaged model's fit after ~60 iterations, far from the optimum, at a point that
    #: moves with the last bits of the input (3e-7 of noise on the embeddings moved its
    #: probabilities by up to 0.22): a retrain on another CPU did not reproduce the model.  At
    #: 1e-8 the fit runs ~310 iterations and the same noise moves probabilities by 1e-5
    #: (``benchmarks/story_fit_stability.py``; ``docs/story.md``, "Reproducible fits").
    #: Artifacts whose ``model.json`` predates this field were fitted with 1e-4 and load with it.
    tol: float = 1e-8
    seed: int = 20261126
    #: ``"balanced"`` weights classes inversely to their frequency (scikit-learn's rule).
    class_weight: str | None = None
    #: Use the word/char TF-IDF blocks.
    tfidf: bool = True
    #: Append the sentence embedding (see ``embedding``) times this weight (0 = off).
    static_weight: float = 0.0
    #: Which sentence embedding ``static_weight`` appends: ``"static"``, a static distillation of
    #: the encoder (:func:`distilled_static`), or ``"minilm"``, the all-MiniLM-L6-v2 encoder itself
    #: (``peerlens.narrative.encoder``; weights from the hash-pinned ``requirements-weights.txt``).
    embedding: str = "static"

    def __post_init__(self) -> None:
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"unknown embedding {self.embedding!r}; known: {', '.join(EMBEDDINGS)}"
            )

    #: Append the neighbouring sentences' cue indicators (and static embeddings, when used).
    context: bool = False
    #: Also one 0/1 indicator per cue pattern (not only per family), times ``cue_weight``.
    cue_ids: bool = False
    #: Sample weight of the project's own written rows (``source == ""``) relative to real rows.
    own_weight: float = 1.0
    #: Extra factor on the upward/downward class weights (on top of ``class_weight``).
    comparison_weight: float = 1.0
    #: With ``context``: factor on the neighbours' columns.  Under the L2 penalty a factor below
    #: 1 makes a neighbour's evidence dearer than the sentence's own, so a neighbour can shift a
    #: label less easily.
    context_weight: float = 1.0
    #: With ``context``: the neighbours contribute their embedding too (else their cues only).
    context_embedding: bool = True


def _word_ngrams(text: str, lo: int, hi: int) -> list[str]:
    tokens = _TOKEN.findall(text)
    grams: list[str] = []
    for n in range(lo, hi + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def _char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    # Mirrors scikit-learn's ``_char_wb_ngrams`` exactly, including the single padded word
    # emitted (and the larger n skipped) when a padded word is not longer than n.
    grams: list[str] = []
    for word in _WHITE.sub(" ", text).split():
        grams.extend(_word_char_grams(word, lo, hi))
    return grams


def _word_char_grams(word: str, lo: int, hi: int) -> list[str]:
    padded = f" {word} "
    size = len(padded)
    grams: list[str] = []
    for n in range(lo, hi + 1):
        if size <= n:
            grams.append(padded)
            break
        grams.extend([padded[i : i + n] for i in range(size - n + 1)])
    return grams


@dataclass(frozen=True)
class Features:
    """Sparse feature values of a batch of sentences as (row, column, value) triplets.

    Rows are sorted, so one sentence's features are a contiguous slice.  Kept free of scipy so
    that loading and scoring need numpy only; :meth:`to_csr` builds a scipy matrix when wanted.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    n_docs: int
    n_features: int

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(columns, values)`` of sentence ``i``."""
        lo, hi = np.searchsorted(self.rows, [i, i + 1])
        return self.cols[lo:hi], self.vals[lo:hi]

    def to_csr(self) -> Any:
        """Return a ``scipy.sparse.csr_matrix`` (imports scipy)."""
        import scipy.sparse as sp

        return sp.csr_matrix(
            (self.vals, (self.rows, self.cols)), shape=(self.n_docs, self.n_features)
        )


def _tfidf_rows(
    doc_ids: list[np.ndarray], n_terms: int, idf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sublinear tf-idf with l2 row normalisation from each document's term ids (vectorised).

    Returns sorted ``(rows, cols, vals)`` triplets.
    """
    lengths = np.fromiter((len(d) for d in doc_ids), dtype=np.int64, count=len(doc_ids))
    n_docs = len(doc_ids)
    if lengths.sum() == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    rows = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    cols = np.concatenate([d for d in doc_ids if len(d)]).astype(np.int64)
    keys, counts = np.unique(rows * n_terms + cols, return_counts=True)
    r, c = keys // n_terms, keys % n_terms
    vals = (1.0 + np.log(counts)) * idf[c]
    norms = np.sqrt(np.bincount(r, weights=vals * vals, minlength=n_docs))
    return r, c, vals / norms[r]


@dataclass(frozen=True)
class _Block:
    vocab: dict[str, int]
    terms: np.ndarray
    idf: np.ndarray
    # word -> ids of its char n-grams in the vocabulary (filled lazily; words repeat a lot)
    word_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def ids(self, grams: list[str]) -> np.ndarray:
        get = self.vocab.get
        found = [i for i in map(get, grams) if i is not None]
        return np.asarray(found, dtype=np.int64)

    def char_ids(self, text: str, lo: int, hi: int) -> np.ndarray:
        parts = []
        cache = self.word_cache
        for word in _WHITE.sub(" ", text).split():
            got = cache.get(word)
            if got is None:
                got = self.ids(_word_char_grams(word, lo, hi))
                if len(cache) < 200_000:
                    cache[word] = got
            parts.append(got)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def dense_width(config: ModelConfig, cuebook: CueBook, static: Embedder | None) -> int:
    """Number of dense features for ``config`` (see :func:`dense_features`)."""
    n_cue = _cue_width(config, cuebook)
    n_static = static.dims if (static is not None and config.static_weight > 0) else 0
    own = n_cue + n_static
    if not config.context:
        return own
    return own + 2 * (own if config.context_embedding else n_cue)


def _cue_width(config: ModelConfig, cuebook: CueBook) -> int:
    """Number of cue columns of one sentence's dense block (they come first in it)."""
    return len(cuebook.families) + (len(cuebook.cue_ids) if config.cue_ids else 0)


def dense_features(
    config: ModelConfig,
    cuebook: CueBook,
    static: Embedder | None,
    normalized: list[str],
    prev: list[str] | None = None,
    nxt: list[str] | None = None,
) -> np.ndarray:
    """Dense block: cue indicators (times ``cue_weight``), static embedding, and with
    ``context`` the same two for the previous and next sentence (zeros where there is none;
    only their cues without ``context_embedding``; times ``context_weight``).

    Shared by training and inference, so both see exactly the same values.
    """
    use_static = static is not None and config.static_weight > 0

    def block(texts: list[str]) -> np.ndarray:
        parts = [cuebook.features(texts) * config.cue_weight]
        if config.cue_ids:
            parts.append(cuebook.cue_features(texts) * config.cue_weight)
        if use_static:
            assert static is not None
            # no text (no neighbour) is a zero vector; only the others are embedded
            vecs = np.zeros((len(texts), static.dims), dtype=np.float64)
            some = [i for i, t in enumerate(texts) if t]
            if some:
                vecs[some] = static.embed([texts[i] for i in some]).astype(np.float64)
            parts.append(vecs * config.static_weight)
        return np.hstack(parts)

    if not config.context:
        return block(normalized)
    empty = [""] * len(normalized)
    prev = prev if prev is not None else empty
    nxt = nxt if nxt is not None else empty
    # in running text a sentence is also its neighbours' neighbour: compute each text once
    unique = list(dict.fromkeys([*normalized, *prev, *nxt]))
    table = block(unique)
    where = {t: i for i, t in enumerate(unique)}
    width = table.shape[1] if config.context_embedding else _cue_width(config, cuebook)
    own = table[[where[t] for t in normalized]]
    around = [
        table[[where[t] for t in part], :width] * config.context_weight for part in (prev, nxt)
    ]
    return np.hstack([own, *around])


@dataclass
class TextModel:
    """A trained sentence model held as plain arrays.

    Use :func:`load_model` for the packaged model or :func:`train_model` to build one.
    """

    config: ModelConfig
    classes: tuple[str, ...]
    word: _Block
    char: _Block
    coef: np.ndarray
    intercept: np.ndarray
    cuebook: CueBook
    meta: dict[str, object] = field(default_factory=dict)
    static: Embedder | None = None

    @property
    def version(self) -> str:
        """Content-addressed model version, ``story-lr-<format>-<first 12 hex of npz sha256>``.

        Two artifacts share a version only if their arrays are byte-identical, so labels stored
        with it can always be traced to the model that produced them.  A model that was never
        saved has no checksum and reports ``story-lr-<format>-unsaved``.
        """
        digest = str(self.meta.get("npz_sha256") or "unsaved")
        return f"story-lr-{ARTIFACT_FORMAT}-{digest[:12]}"

    @property
    def n_dense(self) -> int:
        """Number of dense features after the TF-IDF blocks (cues, static, context)."""
        return dense_width(self.config, self.cuebook, self.static)

    @property
    def n_features(self) -> int:
        """Total number of features (word + char + dense blocks)."""
        return len(self.word.terms) + len(self.char.terms) + self.n_dense

    @property
    def _minilm(self) -> bool:
        return self.config.embedding == "minilm"

    def features(
        self,
        normalized: list[str],
        prev: list[str] | None = None,
        nxt: list[str] | None = None,
    ) -> Features:
        """Return the features of already-normalised sentences (numpy only).

        ``prev``/``nxt`` are the normalised neighbouring sentences (``""`` where there is none);
        they are used only by a model trained with ``context``.
        """
        n_word, n_char = len(self.word.terms), len(self.char.terms)
        if self.config.tfidf:
            lo, hi = self.config.word_ngrams
            w_r, w_c, w_v = _tfidf_rows(
                [self.word.ids(_word_ngrams(t, lo, hi)) for t in normalized],
                n_word,
                self.word.idf,
            )
            lo, hi = self.config.char_ngrams
            c_r, c_c, c_v = _tfidf_rows(
                [self.char.char_ids(t, lo, hi) for t in normalized], n_char, self.char.idf
            )
        else:
            w_r = w_c = c_r = c_c = np.zeros(0, dtype=np.int64)
            w_v = c_v = np.zeros(0, dtype=np.float64)
        dense = dense_features(self.config, self.cuebook, self.static, normalized, prev, nxt)
        q_r, q_c = np.nonzero(dense)
        rows = np.concatenate([w_r, c_r, q_r])
        cols = np.concatenate([w_c, c_c + n_word, q_c + n_word + n_char])
        vals = np.concatenate([w_v, c_v, dense[q_r, q_c]])
        order = np.lexsort((cols, rows))
        return Features(rows[order], cols[order], vals[order], len(normalized), self.n_features)

    def transform(self, normalized: list[str]) -> Any:
        """Return the feature matrix of already-normalised sentences as scipy CSR."""
        return self.features(normalized).to_csr()

    def decision(
        self,
        normalized: list[str],
        prev: list[str] | None = None,
        nxt: list[str] | None = None,
    ) -> tuple[Features, np.ndarray]:
        """Return the features and the linear scores ``X @ coef.T + intercept``."""
        feats = self.features(normalized, prev, nxt)
        scores = np.empty((feats.n_docs, len(self.classes)), dtype=np.float64)
        for k in range(len(self.classes)):
            weights = feats.vals * self.coef[k, feats.cols]
            scores[:, k] = np.bincount(feats.rows, weights=weights, minlength=feats.n_docs)
        return feats, scores + self.intercept

    def predict_proba(
        self,
        sentences: list[str],
        prev: list[str] | None = None,
        nxt: list[str] | None = None,
    ) -> np.ndarray:
        """Return class probabilities, shape ``(len(sentences), 4)``, columns :attr:`classes`."""
        p = [normalize(s) for s in prev] if prev is not None else None
        n = [normalize(s) for s in nxt] if nxt is not None else None
        _, scores = self.decision([normalize(s) for s in sentences], p, n)
        return _softmax(scores)

    @property
    def threshold(self) -> float:
        """Comparison threshold calibrated for this model (see ``evaluation``), else 0.5.

        A model with per-class thresholds (:attr:`thresholds`) records here the lowest one it
        reports a class at (1.0 when it abstains on both).
        """
        return float(str(self.meta.get("comparison_threshold", 0.5)))

    @property
    def thresholds(self) -> dict[str, float | None]:
        """The threshold of each comparison class (``None``: the model abstains on the class).

        ``comparison_thresholds`` in the metadata when the model was calibrated per class,
        else :attr:`threshold` for both (``peerlens.narrative.evaluation``, per-class notes).
        """
        per_class = self.meta.get("comparison_thresholds")
        if isinstance(per_class, dict):
            return class_thresholds(per_class)
        return class_thresholds(self.threshold)

    def predict(self, sentences: list[str]) -> list[str]:
        """Return the most probable label of each sentence."""
        proba = self.predict_proba(sentences)
        return [self.classes[i] for i in proba.argmax(axis=1)]

    def top_ngrams(self, feats: Features, i: int, label: str, k: int = 3) -> list[str]:
        """Return up to ``k`` word n-grams of sentence ``i`` that push most towards ``label``."""
        cls = self.classes.index(label)
        cols, vals = feats.row(i)
        keep = cols < len(self.word.terms)
        cols, vals = cols[keep], vals[keep]
        if len(cols) == 0:
            return []
        push = vals * (self.coef[cls, cols] - self.coef[:, cols].mean(axis=0))
        order = np.argsort(-push, kind="stable")
        return [str(self.word.terms[cols[j]]) for j in order[:k] if push[j] > 0]

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``model.npz`` (arrays) and ``model.json`` (metadata) into ``directory``.

        A model with a static embedding block writes the ``static.npz`` it was trained with
        beside itself (with its notice) and records its SHA-256 (see :func:`load_static`).
        """
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "word_terms": self.word.terms,
            "word_idf": self.word.idf,
            "char_terms": self.char.terms,
            "char_idf": self.char.idf,
            "coef": self.coef,
            "intercept": self.intercept,
        }
        with open(directory / "model.npz", "wb") as fh:
            np.savez_compressed(fh, allow_pickle=False, **arrays)
        digest = hashlib.sha256((directory / "model.npz").read_bytes()).hexdigest()
        meta = dict(self.meta)
        if self.static is not None and self.config.static_weight > 0 and self._minilm:
            from peerlens.narrative import encoder

            meta["encoder"] = encoder.pinned_metadata()
        elif self.static is not None and self.config.static_weight > 0:
            if not isinstance(self.static, StaticEmbedder):
                raise ModelArtifactError(
                    f"a model with embedding {self.config.embedding!r} holds "
                    f"{type(self.static).__name__}, not the static embedding it names"
                )
            target = directory / "static.npz"
            if self.static.path is None or self.static.path.resolve() != target.resolve():
                self.static.save(target)
            meta["static_sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        meta.update(
            {
                "format": ARTIFACT_FORMAT,
                "classes": list(self.classes),
                "config": asdict(self.config),
                "cue_families": list(self.cuebook.families),
                **({"cue_ids": list(self.cuebook.cue_ids)} if self.config.cue_ids else {}),
                "n_word_features": len(self.word.terms),
                "n_char_features": len(self.char.terms),
                "npz_sha256": digest,
            }
        )
        (directory / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self.meta = meta

    @classmethod
    def load(cls, directory: Path, cuebook: CueBook | None = None) -> TextModel:
        """Load a model written by :meth:`save` (no pickle; ``allow_pickle=False``)."""
        meta_path, npz_path = directory / "model.json", directory / "model.npz"
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            blob = npz_path.read_bytes()
        except (OSError, ValueError) as exc:
            raise ModelArtifactError(f"{directory}: cannot read model artifact ({exc})") from exc
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ModelArtifactError(f"{meta_path}: unsupported format {meta.get('format')!r}")
        if hashlib.sha256(blob).hexdigest() != meta.get("npz_sha256"):
            raise ModelArtifactError(f"{npz_path}: checksum does not match {meta_path}")
        cuebook = cuebook or load_cuebook()
        if list(cuebook.families) != meta["cue_families"]:
            raise ModelArtifactError(f"{meta_path}: cue families differ from cues.json")
        if "cue_ids" in meta and list(cuebook.cue_ids) != meta["cue_ids"]:
            raise ModelArtifactError(f"{meta_path}: cue patterns differ from cues.json")
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        cfg = dict(meta["config"])
        cfg["word_ngrams"] = tuple(cfg["word_ngrams"])
        cfg["char_ngrams"] = tuple(cfg["char_ngrams"])
        cfg.setdefault("tol", 1e-4)  # fitted before ModelConfig.tol: scikit-learn's default
        try:
            config = ModelConfig(**cfg)
        except (TypeError, ValueError) as exc:
            raise ModelArtifactError(f"{meta_path}: {exc}") from exc
        static: Embedder | None = None
        if config.static_weight > 0 and config.embedding == "minilm":
            static = _load_minilm(meta_path, meta)
        elif config.static_weight > 0:
            static = load_static(directory / "static.npz", str(meta.get("static_sha256", "")))
        return cls(
            config=config,
            classes=tuple(meta["classes"]),
            word=_block(arrays["word_terms"], arrays["word_idf"]),
            char=_block(arrays["char_terms"], arrays["char_idf"]),
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            cuebook=cuebook,
            meta=meta,
            static=static,
        )


def _block(terms: np.ndarray, idf: np.ndarray) -> _Block:
    terms = np.asarray(terms, dtype=str)
    return _Block({str(t): i for i, t in enumerate(terms.tolist())}, terms, np.asarray(idf))


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def model_dir() -> Path:
    """Return the packaged model directory (``peerlens/narrative/data``)."""
    return Path(str(resources.files("peerlens.narrative").joinpath("data")))


def load_static(path: Path, expected_sha256: str | None = None) -> StaticEmbedder:
    """Load a static embedding (``static.npz``: ``tokens``, ``vectors``), checking its hash.

    Raises
    ------
    ModelArtifactError
        If the file is missing or its SHA-256 differs from ``expected_sha256`` (when given).
    """
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelArtifactError(f"{path}: cannot read static embedding ({exc})") from exc
    if expected_sha256 and hashlib.sha256(blob).hexdigest() != expected_sha256:
        raise ModelArtifactError(f"{path}: checksum does not match the model metadata")
    with np.load(path, allow_pickle=False) as npz:
        static = StaticEmbedder.from_arrays(npz["tokens"], npz["vectors"].astype(np.float32))
        static.source = str(npz["source"][0]) if "source" in npz.files else ""
    static.path = path
    return static


@cache
def distilled_static(dims: int = 256) -> StaticEmbedder:
    """The static embedding distilled from the installed encoder (once per process).

    Not shipped (17.8 MB for a benchmark candidate no packaged model uses): every word piece goes
    through the hash-checked all-MiniLM-L6-v2 encoder alone (:func:`~peerlens.narrative.static.
    distil_static`, about 30-40 s on two cores), with SIF weights from the project-written corpus.
    A model saved with it carries the file beside itself.

    Raises
    ------
    ModelArtifactError
        If the encoder weights are missing or do not match their hash.
    """
    from peerlens.narrative.encoder import load_packaged_encoder
    from peerlens.narrative.static import distil_static

    texts = [normalize(t) for t in load_corpus()["text"]]
    return distil_static(load_packaged_encoder(), texts, dims=dims)


def _load_minilm(meta_path: Path, meta: dict[str, Any]) -> Embedder:
    """The installed all-MiniLM-L6-v2 encoder, if it is the one the model was trained with."""
    from peerlens.narrative import encoder

    recorded = meta.get("encoder")
    recorded = recorded if isinstance(recorded, dict) else {}
    for key, value in encoder.pinned_metadata().items():
        if recorded.get(key) != value:
            raise ModelArtifactError(
                f"{meta_path}: the model was trained with encoder {key} "
                f"{recorded.get(key)!r}, not the pinned {value}"
            )
    return encoder.load_packaged_encoder()


def default_embedder(config: ModelConfig) -> Embedder | None:
    """The embedding ``config`` appends: none, the distilled static one or the MiniLM encoder.

    Raises
    ------
    ModelArtifactError
        If the encoder weights (behind either embedding) are missing or do not match their hash
        (:class:`peerlens.narrative.encoder.EncoderWeightsError`).
    """
    if config.static_weight <= 0:
        return None
    if config.embedding == "minilm":
        from peerlens.narrative.encoder import load_packaged_encoder

        return load_packaged_encoder()
    return distilled_static()


@cache
def packaged_model_meta() -> dict[str, Any]:
    """The packaged model's metadata (``model.json``) alone, without loading its arrays or the
    encoder: for callers that only compare versions, such as a study export.

    Raises
    ------
    ModelArtifactError
        If ``model.json`` is missing or not JSON.
    """
    path = model_dir() / "model.json"
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelArtifactError(f"{path}: cannot read model metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelArtifactError(f"{path}: not a model metadata object")
    return meta


_LOADING = threading.Lock()


def load_model() -> TextModel:
    """Load the packaged model (cached after the first call).

    Raises
    ------
    ModelArtifactError
        If the artifact is missing, corrupt or was built against different cue families.

    Threads asking at once (the web app's first requests) wait for one load.
    """
    with _LOADING:
        return _load_packaged()


@cache
def _load_packaged() -> TextModel:
    return TextModel.load(model_dir())


def fit_sklearn(
    texts: list[str],
    labels: list[str],
    config: ModelConfig,
    cuebook: CueBook | None = None,
    *,
    static: Embedder | None = None,
    prev: list[str] | None = None,
    nxt: list[str] | None = None,
    own: list[bool] | None = None,
) -> tuple[Any, Any, Any]:
    """Fit the scikit-learn vectorisers and classifier (used by training and the tests).

    ``prev``/``nxt`` are the raw neighbouring sentences (``""`` where there is none), used when
    ``config.context``.  ``own`` marks the project's own written rows, weighted by
    ``config.own_weight``; ``config.comparison_weight`` multiplies the upward/downward class
    weights.  Returns ``(word_vectorizer, char_vectorizer, logistic_regression)``;
    the vectorisers are ``None`` when ``config.tfidf`` is off.
    """
    import scipy.sparse as sp

    cuebook = cuebook or load_cuebook()
    normalized = [normalize(t) for t in texts]
    word, char = _vectorizers(config) if config.tfidf else (None, None)
    blocks = []
    if word is not None and char is not None:
        blocks = [word.fit_transform(normalized), char.fit_transform(normalized)]
    p = [normalize(t) for t in prev] if prev is not None else None
    n = [normalize(t) for t in nxt] if nxt is not None else None
    dense = dense_features(config, cuebook, static, normalized, p, n)
    matrix = sp.hstack([*blocks, sp.csr_matrix(dense)], format="csr")
    return word, char, fit_classifier(matrix, labels, config, own)


def fit_classifier(matrix: Any, labels: list[str], config: ModelConfig, own: Any = None) -> Any:
    """Fit the logistic regression of ``config`` on a feature matrix (rows in ``labels`` order).

    ``own`` marks the project's own written rows, weighted by ``config.own_weight``;
    ``config.comparison_weight`` multiplies the upward/downward class weights (on top of
    ``config.class_weight``).  Shared by :func:`fit_sklearn` and the leave-one-source-out runs
    (``peerlens.narrative.fold_features``), so every fit weighs rows the same way.

    Raises
    ------
    NarrativeError
        If L-BFGS stops before reaching ``config.tol`` (``max_iter`` used up, or a failed line
        search): such a fit's coefficients depend on the machine's last bits.

    Notes
    -----
    The fit runs with one BLAS thread (``peerlens._blas``): L-BFGS-B makes thousands of small
    vector operations, and OpenBLAS waking a second thread for each made a fit on the 2-core
    reference machine about 3x slower (45 s against 16 s for batches 1-5); the coefficients
    agree to ~1e-9.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from peerlens._blas import one_blas_thread

    class_weight: str | dict[str, float] | None = config.class_weight
    if config.comparison_weight != 1.0:
        present, counts = np.unique(labels, return_counts=True)
        base = (
            len(labels) / (len(present) * counts)
            if config.class_weight == "balanced"
            else np.ones(len(present))
        )
        factor = [config.comparison_weight if c in ("upward", "downward") else 1.0 for c in present]
        class_weight = {str(c): float(b * f) for c, b, f in zip(present, base, factor, strict=True)}
    sample_weight = None
    if own is not None and config.own_weight != 1.0:
        sample_weight = np.where(np.asarray(own, dtype=bool), config.own_weight, 1.0)
    clf = LogisticRegression(
        C=config.C,
        max_iter=config.max_iter,
        tol=config.tol,
        random_state=config.seed,
        class_weight=class_weight,
    )
    with one_blas_thread(), warnings.catch_warnings(record=True) as caught:
        # not converging is an error here, not a warning to scroll past
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(matrix, labels, sample_weight=sample_weight)
    unconverged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if unconverged or int(np.max(clf.n_iter_)) >= config.max_iter:
        why = str(unconverged[0].message).splitlines()[0] if unconverged else "max_iter reached"
        raise NarrativeError(
            f"the logistic regression did not reach tol={config.tol:g} within max_iter="
            f"{config.max_iter} iterations ({why}); stopped there, its coefficients would "
            "depend on the machine"
        )
    for w in caught:  # anything else scikit-learn said is passed on unchanged
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return clf


def _vectorizers(config: ModelConfig) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(
        analyzer="word",
        token_pattern=_TOKEN.pattern,
        lowercase=False,
        ngram_range=config.word_ngrams,
        min_df=config.word_min_df,
        sublinear_tf=True,
        dtype=np.float64,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        lowercase=False,
        ngram_range=config.char_ngrams,
        min_df=config.char_min_df,
        sublinear_tf=True,
        dtype=np.float64,
    )
    return word, char


def train_model(
    corpus: pd.DataFrame | None = None,
    config: ModelConfig | None = None,
    cuebook: CueBook | None = None,
    *,
    static: Embedder | None = None,
    meta: dict[str, object] | None = None,
) -> TextModel:
    """Train the sentence model (seeded, reproducible).

    Parameters
    ----------
    corpus : pandas.DataFrame, optional
        Rows with ``text`` and ``label``; rows with ``split == "test"`` are left out (the
        project corpus's frozen test split); optional ``prev``/``next`` columns hold the
        neighbouring sentences.  The packaged corpus's train split by default.
    config : ModelConfig, optional
        Hyper-parameters; the defaults are the original TF-IDF model's.
    cuebook : CueBook, optional
        Cue patterns; the packaged ``cues.json`` by default.
    static : Embedder, optional
        The sentence embedding for ``config.static_weight > 0``; by default the one
        ``config.embedding`` names (:func:`default_embedder`).
    meta : dict, optional
        Extra provenance written to ``model.json``.

    Returns
    -------
    TextModel
        The trained model as plain arrays, ready for :meth:`TextModel.save`.
    """
    config = config or ModelConfig()
    cuebook = cuebook or load_cuebook()
    packaged = corpus is None
    corpus = load_corpus() if corpus is None else corpus
    if "split" in corpus.columns:
        corpus = corpus[corpus["split"].fillna("train") != "test"]
    if static is None:
        static = default_embedder(config)
    texts = corpus["text"].astype(str).tolist()
    labels = corpus["label"].astype(str).tolist()
    prev = corpus["prev"].fillna("").astype(str).tolist() if "prev" in corpus else None
    nxt = corpus["next"].fillna("").astype(str).tolist() if "next" in corpus else None
    own = (corpus["source"].fillna("") == "").tolist() if "source" in corpus else None
    word, char, clf = fit_sklearn(
        texts, labels, config, cuebook, static=static, prev=prev, nxt=nxt, own=own
    )
    import sklearn

    info: dict[str, object] = {
        "trained_on": "train split of peerlens/narrative/data/corpus.csv",
        "n_train": len(texts),
        "sklearn_version": sklearn.__version__,
    }
    if packaged:
        info["corpus_sha256"] = corpus_sha256()
    info.update(meta or {})
    return from_sklearn(word, char, clf, config, cuebook, info, static=static)


def from_sklearn(
    word: Any,
    char: Any,
    clf: Any,
    config: ModelConfig,
    cuebook: CueBook | None = None,
    meta: dict[str, object] | None = None,
    *,
    static: Embedder | None = None,
) -> TextModel:
    """Copy fitted scikit-learn vectorisers and classifier into a plain-array :class:`TextModel`."""
    classes = tuple(str(c) for c in clf.classes_)
    if classes != LABELS:
        raise ModelArtifactError(f"training labels {classes} differ from {LABELS}")
    empty = (np.zeros(0, dtype=str), np.zeros(0, dtype=np.float64))
    word_arrays = (word.get_feature_names_out(), word.idf_) if word is not None else empty
    char_arrays = (char.get_feature_names_out(), char.idf_) if char is not None else empty
    return TextModel(
        config=config,
        classes=classes,
        word=_block(*word_arrays),
        char=_block(*char_arrays),
        coef=np.asarray(clf.coef_, dtype=np.float64),
        intercept=np.asarray(clf.intercept_, dtype=np.float64),
        cuebook=cuebook or load_cuebook(),
        meta=dict(meta or {}),
        static=static if config.static_weight > 0 else None,
    )
