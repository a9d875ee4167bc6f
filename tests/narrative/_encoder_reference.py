"""The encoder's forward pass as it was before the fast path (issue 10): the slow exact reference.

Written straight from BERT's definition (Devlin et al. 2019) in float32 with scipy's exact erf for
GELU, separate Q, K, V projections and weights used as stored (``out_features x in_features``).
Kept only for tests and ``benchmarks/bench_encoder.py`` (loaded by path, not part of the package),
so the fast path in ``peerlens.narrative.encoder`` is checked against an independent computation.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

_LAYERS, _HEADS, _HIDDEN, _EPS, _MAX_LEN = 6, 12, 384, 1e-12, 256


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + _EPS) * w + b, dtype=np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * x * (1.0 + erf(x / np.sqrt(np.float32(2.0)))), dtype=np.float32)


def reference_embed_ids(weights: dict[str, np.ndarray], batch: list[list[int]]) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of tokenised inputs, computed the slow way."""
    n, length = len(batch), max(len(ids) for ids in batch)
    ids = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.float32)
    for i, row in enumerate(batch):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1.0

    def w(name: str) -> np.ndarray:
        return weights[name]

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
    pooled = (x * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    norm = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.maximum(norm, 1e-12), dtype=np.float32)


def reference_embed(
    weights: dict[str, np.ndarray], encoded: list[list[int]], batch_size: int = 32
) -> np.ndarray:
    """Embed tokenised sentences in length-sorted batches of ``batch_size`` (the old ``embed``)."""
    order = np.argsort([len(e) for e in encoded], kind="stable")
    out = np.zeros((len(encoded), _HIDDEN), dtype=np.float32)
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        out[idx] = reference_embed_ids(weights, [encoded[i] for i in idx])
    return out
