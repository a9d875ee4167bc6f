"""Cache of all-MiniLM-L6-v2 embeddings for the story benchmark (``benchmarks/out/``, git-ignored).

Embeddings are keyed by the SHA-256 of the text the model embeds (the normalised sentence, as
``peerlens.narrative.model.dense_features`` passes it), so the cache holds no text; the file also
records the weights' SHA-256 and the encoder module's, and is ignored when either changed.  The
evaluation fills it as it goes; to fill it ahead, run
``PYTHONPATH=src python benchmarks/_story_embed_cache.py``.  The weights are the installed,
hash-checked ones (``peerlens.narrative.encoder.packaged_weights``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from peerlens.narrative.encoder import DIMS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "out" / "minilm_embeddings.npz"


def key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stamp() -> str:
    """What the cached vectors depend on besides the text: the weights and the forward pass."""
    from peerlens.narrative import encoder

    code = hashlib.sha256(Path(encoder.__file__).read_bytes()).hexdigest()
    return f"{encoder.MINILM_SHA256}:{code}"


def load_cache() -> dict[str, np.ndarray]:
    """The cached vectors, or none if they were made by other weights or another encoder."""
    if not CACHE.is_file():
        return {}
    with np.load(CACHE, allow_pickle=False) as npz:
        if "stamp" not in npz.files or str(npz["stamp"]) != _stamp():
            return {}
        return dict(zip(npz["keys"].tolist(), npz["vectors"], strict=True))


def save_cache(cache: dict[str, np.ndarray]) -> None:
    """Write the cache whole, then move it into place (an interrupted run leaves the old one)."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    keys = np.array(sorted(cache))
    part = CACHE.with_suffix(".part.npz")
    np.savez(part, keys=keys, vectors=np.stack([cache[k] for k in keys]), stamp=_stamp())
    os.replace(part, CACHE)


def ensure(texts: list[str], chunk: int = 512) -> dict[str, np.ndarray]:
    """Embed every text not yet cached (saving as it goes); return the cache."""
    from peerlens.narrative.encoder import load_packaged_encoder

    cache = load_cache()
    todo = sorted({t for t in texts if t and key(t) not in cache})
    if not todo:
        return cache
    encoder = load_packaged_encoder()
    t0 = time.perf_counter()
    for lo in range(0, len(todo), chunk):
        part = todo[lo : lo + chunk]
        for t, v in zip(part, encoder.embed(part), strict=True):
            cache[key(t)] = v
        save_cache(cache)
        done = lo + len(part)
        rate = done / (time.perf_counter() - t0)
        print(f"embedded {done}/{len(todo)} ({rate:.1f}/s)", file=sys.stderr, flush=True)
    return cache


class CachedMiniLM:
    """The MiniLM encoder as an embedder for the model, reading and filling the cache."""

    dims = DIMS

    def __init__(self) -> None:
        self.cache = load_cache()

    def embed(self, texts: list[str]) -> np.ndarray:
        if any(t and key(t) not in self.cache for t in texts):
            self.cache = ensure(texts)
        out = np.zeros((len(texts), DIMS), dtype=np.float32)
        for i, t in enumerate(texts):
            if t:
                out[i] = self.cache[key(t)]
        return out


def main() -> None:
    from peerlens.narrative import load_corpus
    from peerlens.narrative._text import normalize
    from peerlens.narrative.devcorpus import dev_corpus_paths, load_dev_corpus

    team = load_corpus()
    real = load_dev_corpus(dev_corpus_paths(ROOT))
    texts = [*team["text"], *real["text"], *real["prev"], *real["next"]]
    ensure([normalize(t) for t in texts if t])


if __name__ == "__main__":
    main()
