"""Static embeddings: the mean of the word pieces' vectors, L2-normalised."""

from pathlib import Path

import numpy as np
import pytest

from peerlens.narrative import ModelArtifactError
from peerlens.narrative.encoder import MINILM_REVISION, MINILM_SHA256
from peerlens.narrative.model import distilled_static, load_static
from peerlens.narrative.static import StaticEmbedder

from ._weights import needs_weights

TOKENS = np.array(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "me", "too", "!", "##s"])
VECTORS = np.array(
    [[0, 0], [0, 1], [0, 0], [0, 0], [3, 0], [1, 2], [0, 0], [2, 2]], dtype=np.float32
)


def test_sentence_vector_is_the_normalised_mean_of_its_pieces() -> None:
    static = StaticEmbedder.from_arrays(TOKENS, VECTORS)
    v = static.embed(["Me too!", "mes", "", "zzz"])
    expected = np.array([3 + 1 + 0, 0 + 2 + 0], dtype=np.float32)
    np.testing.assert_allclose(v[0], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(v[1], np.array([5, 2]) / np.linalg.norm([5, 2]), rtol=1e-6)
    np.testing.assert_array_equal(v[2], [0, 0])  # nothing to embed
    np.testing.assert_allclose(v[3], [0, 1])  # an unknown word is [UNK]'s vector


def test_a_saved_embedding_loads_back_exactly_with_its_source_and_notice(tmp_path: Path) -> None:
    static = StaticEmbedder.from_arrays(TOKENS, VECTORS)
    static.source = "all-MiniLM-L6-v2@abc sha256:def"
    static.save(tmp_path / "static.npz")
    assert static.path == tmp_path / "static.npz"
    again = load_static(tmp_path / "static.npz")
    np.testing.assert_array_equal(again.tokens, TOKENS)
    np.testing.assert_array_equal(again.vectors, VECTORS)
    assert again.source == static.source
    assert "all-MiniLM-L6-v2@abc sha256:def" in (tmp_path / "static_NOTICE.txt").read_text()
    with pytest.raises(ModelArtifactError, match="checksum"):
        load_static(tmp_path / "static.npz", expected_sha256="0" * 64)
    with pytest.raises(ModelArtifactError, match="cannot read"):
        load_static(tmp_path / "missing.npz")


@needs_weights
def test_the_distilled_embedding_is_oriented_stored_exactly_and_groups_alike_sentences() -> None:
    static = distilled_static()
    assert static.vectors.shape == (30522, 256)
    assert static.source == f"all-MiniLM-L6-v2@{MINILM_REVISION} sha256:{MINILM_SHA256}"
    # what is saved (float16) is what the model was trained on
    stored = static.vectors.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(stored, static.vectors)
    # each component turned so that its largest loading is positive
    v = static.vectors
    assert (v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])] > 0).all()
    a, b, c = static.embed(
        ["I felt exactly the same way", "I felt the very same way", "The bus leaves at noon"]
    )
    assert float(a @ b) > float(a @ c) + 0.2
