"""How far the packaged model's fit moves when its input moves by the machine's last bits.

The logistic regression of the packaged sentence model is fitted on the release training matrix
(the project corpus's train split and the real batches of ``RELEASE_BATCHES``, features built by
``peerlens.narrative.fold_features.FoldFeatures`` as ``train_release`` builds them), then again
on the same matrix with its embedding columns multiplied by ``1 + N(0, sigma)`` (default sigma
3e-7, the size of the difference between one BLAS thread and two in the encoder's output).  For
each L-BFGS tolerance it prints the iterations, the fit time, and how far the two fits' largest
coefficient, largest class probability (on the training rows) and most probable label differ.
This is the measurement behind ``ModelConfig.tol`` (``docs/story.md``, "Reproducible fits").

Needs ``benchmarks/out/real_corpus`` (rebuilt texts) and the installed encoder weights; the
embeddings come from ``benchmarks/out/minilm_embeddings.npz`` (filled on first use).  Run:
``PYTHONPATH=src .venv/bin/python benchmarks/story_fit_stability.py [--tol 1e-4 1e-6 1e-8]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tol", type=float, nargs="+", default=[1e-4, 1e-6, 1e-8])
    parser.add_argument("--sigma", type=float, default=3e-7)
    args = parser.parse_args()

    from _story_embed_cache import CachedMiniLM
    from peerlens.narrative.corpus import load_corpus
    from peerlens.narrative.cues import load_cuebook
    from peerlens.narrative.devcorpus import dev_corpus_paths, load_dev_corpus
    from peerlens.narrative.encoder import DIMS
    from peerlens.narrative.fold_features import FoldFeatures
    from peerlens.narrative.model import fit_classifier
    from peerlens.narrative.release import RELEASE_BATCHES, RELEASE_CONFIG, train_frame

    dev = dev_corpus_paths(ROOT)
    if not dev.available():
        print(f"real texts not rebuilt ({dev.rebuilt}): run tools/build_real_corpus.py build")
        return
    frame = train_frame(load_corpus(), load_dev_corpus(dev, RELEASE_BATCHES))
    config = RELEASE_CONFIG
    feats = FoldFeatures(
        frame["text"].tolist(),
        config,
        static=CachedMiniLM(),
        prev=frame["prev"].tolist(),
        nxt=frame["next"].tolist(),
    )
    rows = np.arange(len(frame))
    matrix, _ = feats.split(rows, rows[:1])
    # the embedding columns: in each of the three dense parts (sentence, previous, next), the
    # DIMS columns after the cue families
    families = len(load_cuebook().families)
    part = families + DIMS
    first = matrix.shape[1] - 3 * part
    embedding = np.zeros(matrix.shape[1], dtype=bool)
    for k in range(3):
        embedding[first + k * part + families : first + (k + 1) * part] = True
    noisy = matrix.copy()
    hit = embedding[noisy.indices]
    rng = np.random.default_rng(0)
    noisy.data[hit] *= 1.0 + rng.normal(0.0, args.sigma, int(hit.sum()))
    labels = frame["label"].astype(str).tolist()
    own = (frame["source"] == "").tolist()
    print(
        f"release training matrix {matrix.shape[0]:,} x {matrix.shape[1]:,} (C = {config.C:g}); "
        f"embedding columns x (1 + N(0, {args.sigma:g})); one BLAS thread"
    )
    print("  tol     iterations   fit s     max |coef diff|  max |prob diff|  same label")
    for tol in args.tol:
        cfg = replace(config, tol=tol, max_iter=100_000)
        fits = []
        for m in (matrix, noisy):
            t0 = time.perf_counter()
            clf = fit_classifier(m, labels, cfg, own)
            fits.append((clf, time.perf_counter() - t0))
        (a, ta), (b, tb) = fits
        pa, pb = a.predict_proba(matrix), b.predict_proba(matrix)
        print(
            f"  {tol:<7g} {int(a.n_iter_.max()):>5} /{int(b.n_iter_.max()):>5}"
            f"  {ta:>5.0f} /{tb:>4.0f}  {np.abs(a.coef_ - b.coef_).max():>15.2e}"
            f"  {np.abs(pa - pb).max():>15.2e}  {np.mean(pa.argmax(1) == pb.argmax(1)):>9.2%}"
        )


if __name__ == "__main__":
    main()
