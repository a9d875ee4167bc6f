"""Static sentence embeddings distilled from all-MiniLM-L6-v2 (model2vec-style), numpy only.

Every word piece of the encoder's vocabulary is passed through the encoder on its own
(``[CLS] piece [SEP]``, mean-pooled), the resulting 384-d vectors are reduced by PCA, and each
is scaled by a smooth inverse-frequency weight.  A sentence is then embedded by tokenising it with
the same WordPiece tokenizer and averaging its pieces' vectors: no attention, no layers, so it
runs at tens of thousands of sentences per second and loads in a fraction of a second.

Notes
-----
The recipe is model2vec's (Tulkens & van Dongen 2024, "Model2Vec: fast state-of-the-art static
embeddings", https://github.com/MinishLab/model2vec): per-token forward pass, PCA, frequency
weighting, mean pooling.  Each PCA component is turned so that its largest loading is positive
(PCA's sign is arbitrary) and the vectors are rounded to float16, the precision they are saved in,
so a model trained on a freshly distilled embedding and the same model loaded back agree exactly.
The weight is SIF's ``a / (a + p(w))`` (Arora, Liang & Ma 2017, "A simple but tough-to-beat
baseline for sentence embeddings", ICLR) with ``p(w)`` the piece's relative frequency in a
reference text (the project-written corpus) and ``a = 1e-3``; pieces never seen there get weight
1.  The sentence vector is the mean of the weighted piece vectors, L2-normalised.

The distilled vectors derive from the all-MiniLM-L6-v2 weights (Apache-2.0, © the
sentence-transformers authors).  The package does not ship them: they are distilled from the
installed, hash-checked encoder when a model configuration asks for them
(:func:`peerlens.narrative.model.distilled_static`), and a saved model that uses them carries its
own ``static.npz`` with :data:`NOTICE` beside it (the licence allows redistributing derived
weights with notice).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peerlens.narrative._wordpiece import WordPiece

__all__ = ["NOTICE", "StaticEmbedder", "distil_static"]

#: Written as ``static_NOTICE.txt`` beside every saved ``static.npz``.
NOTICE = """static.npz: word-piece vectors distilled by peerlens (peerlens.narrative.static) from
sentence-transformers/all-MiniLM-L6-v2 ({source}).

all-MiniLM-L6-v2 is licensed under the Apache License, Version 2.0
(http://www.apache.org/licenses/LICENSE-2.0). The vectors were modified: each word piece was
passed through the encoder alone, reduced by PCA to {dims} dimensions, weighted by a
frequency-based (SIF) weight and stored as float16. The WordPiece vocabulary is the model's own.
"""


@dataclass
class StaticEmbedder:
    """Word-piece vectors plus the tokenizer that maps a sentence onto them."""

    tokens: np.ndarray  # (V,) str, index = WordPiece id
    vectors: np.ndarray  # (V, d) float32, already frequency-weighted
    tokenizer: WordPiece
    #: the ``static.npz`` it was loaded from or saved to (copied beside a model saved elsewhere)
    path: Path | None = None
    #: the encoder it was distilled from (revision and weights hash), as recorded in the file
    source: str = ""

    @classmethod
    def from_arrays(cls, tokens: np.ndarray, vectors: np.ndarray) -> StaticEmbedder:
        """Build from the stored arrays (token strings in id order, weighted vectors)."""
        vocab = {str(t): i for i, t in enumerate(tokens.tolist())}
        return cls(tokens, np.asarray(vectors, dtype=np.float32), WordPiece(vocab))

    def save(self, path: Path) -> None:
        """Write ``static.npz`` (``tokens``, float16 ``vectors``, ``source``) and its notice.

        Stored uncompressed: float16 barely compresses (14.7 vs 15.6 MB) and inflating it doubled
        a model's cold start.  ``static_NOTICE.txt`` goes beside it (Apache-2.0 notice).
        """
        buf = io.BytesIO()
        np.savez(
            buf,
            allow_pickle=False,
            tokens=self.tokens.astype(str),
            vectors=self.vectors.astype(np.float16),
            source=np.array([self.source]),
        )
        path.write_bytes(buf.getvalue())
        notice = NOTICE.format(source=self.source or "source not recorded", dims=self.dims)
        (path.parent / "static_NOTICE.txt").write_text(notice, "utf-8")
        self.path = path

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1])

    def embed(self, sentences: Iterable[str]) -> np.ndarray:
        """Return one L2-normalised vector per sentence (zeros for a sentence with no pieces)."""
        ids = [self.tokenizer.pieces(s) for s in sentences]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        out = np.zeros((len(ids), self.dims), dtype=np.float32)
        if lengths.sum() == 0:
            return out
        flat = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=lengths.sum())
        rows = np.repeat(np.arange(len(ids)), lengths)
        np.add.at(out, rows, self.vectors[flat])
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norm, 1e-12), dtype=np.float32)


def distil_static(
    encoder: object,
    reference_texts: Iterable[str],
    dims: int = 256,
    sif_a: float = 1e-3,
    batch_size: int = 512,
) -> StaticEmbedder:
    """Distil static piece vectors from a :class:`~peerlens.narrative.encoder.MiniLMEncoder`.

    Parameters
    ----------
    encoder : MiniLMEncoder
        The verified encoder (its pinned revision and hash are the embedding's ``source``).
    reference_texts : iterable of str
        Text whose piece frequencies set the SIF weights (no labels are used).
    dims : int
        PCA dimensions kept.
    sif_a : float
        SIF's smoothing constant ``a``.

    Returns
    -------
    StaticEmbedder
    """
    from peerlens.narrative.encoder import MINILM_REVISION, MINILM_SHA256, MiniLMEncoder

    if not isinstance(encoder, MiniLMEncoder):
        raise TypeError("encoder must be a MiniLMEncoder")
    tok = encoder.tokenizer
    size = max(tok.vocab.values()) + 1
    tokens = np.empty(size, dtype=object)
    for piece, i in tok.vocab.items():
        tokens[i] = piece
    raw = np.zeros((size, 384), dtype=np.float32)
    for lo in range(0, size, batch_size):
        batch = [[tok.cls, i, tok.sep] for i in range(lo, min(size, lo + batch_size))]
        raw[lo : lo + len(batch)] = encoder.embed_ids(batch)
    centred = raw - raw.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    counts: Counter[int] = Counter()
    for text in reference_texts:
        counts.update(tok.pieces(text))
    total = max(1, sum(counts.values()))
    freq = np.zeros(size)
    for i, c in counts.items():
        freq[i] = c / total
    weights = sif_a / (sif_a + freq)
    stored = (reduced * weights[:, None]).astype(np.float16).astype(np.float32)
    # a fixed sign per component (PCA's is arbitrary): the largest stored loading positive
    signs = np.sign(stored[np.abs(stored).argmax(axis=0), np.arange(stored.shape[1])])
    stored *= signs
    static = StaticEmbedder.from_arrays(tokens.astype(str), stored)
    static.source = f"all-MiniLM-L6-v2@{MINILM_REVISION} sha256:{MINILM_SHA256}"
    return static
