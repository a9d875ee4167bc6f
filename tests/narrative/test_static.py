"""Static embeddings: the mean of the word pieces' vectors, L2-normalised."""

import numpy as np

from peerlens.narrative.static import StaticEmbedder

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
