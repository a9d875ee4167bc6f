"""How much does more labelled real data buy?  The packaged configuration on a fraction of it.

Exploratory (docs/story.md, "How far more data goes"): the same leave-one-source-out folds and
rows as ``story_eval.py --oof --train-batches 1,2,3,4,5,7,8,9,11,12`` (the rows of batches 1-12),
but each fold trains on the project corpus's train split plus a fixed random fraction of the
other folds' real rows (a row is kept when the SHA-256 of ``lc:<item_id>`` falls under the
fraction, so the 25 % rows are among the 50 % rows); every row of the held-out fold is scored.
Writes ``benchmarks/out/story_oof_lc<percent>.tsv``; compare with ``story_eval.py --rules lc50``.

    PYTHONPATH=src python benchmarks/story_learning_curve.py 0.5
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from peerlens.narrative.corpus import LABELS
from peerlens.narrative.evaluation import source_folds

#: The real batches of the s16/s17 comparisons (batches 1-12 less the held-out 6 and 10).
BATCHES = (1, 2, 3, 4, 5, 7, 8, 9, 11, 12)


def kept(item_ids: list[str], fraction: float) -> np.ndarray:
    """Whether each row is in the fixed random ``fraction`` (nested: a smaller one is inside)."""
    return np.array(
        [
            int(hashlib.sha256(f"lc:{i}".encode()).hexdigest()[:8], 16) / 2**32 < fraction
            for i in item_ids
        ]
    )


def main(argv: list[str]) -> None:
    import story_eval as se  # beside this script (run from the repository root)

    fraction = float(argv[0])
    if not 0 < fraction <= 1:
        raise SystemExit(f"error: fraction {argv[0]!r} is not in (0, 1]")
    real = se.load_dev_corpus(se.dev_corpus_paths(se.ROOT))
    real = real[real["batch"].isin(BATCHES)].reset_index(drop=True)
    data = se.combined_data(se.load_corpus(), real)
    own = (data["source"] == "").to_numpy()
    keep = own | kept(data["item_id"].tolist(), fraction)
    print(f"real rows {len(real)}, of them training rows {int((keep & ~own).sum())}", flush=True)
    cand = se.CANDIDATES["tfidf_minilm_ctx_cw_c10"]
    feats = se.fold_features(cand, data, se._embedder(cand.embedder, data))
    labels = data["label"].tolist()
    proba = np.full((len(data), len(LABELS)), np.nan)
    for fold in source_folds(data["source"].tolist(), always_train=own):
        train = fold.train[keep[fold.train]]
        proba[fold.test] = feats.fit_predict(train, fold.test, labels, own.tolist())
        print(f"  held out {fold.held_out}: {len(train)} training rows", flush=True)
    rows = ~own
    out = data.loc[rows, ["item_id", "source", "arm", "batch", "label"]].reset_index(drop=True)
    for k, lab in enumerate(LABELS):
        out[f"p_{lab}"] = proba[rows, k]
    se.OUT.mkdir(parents=True, exist_ok=True)
    out.to_csv(se.OUT / f"story_oof_lc{round(fraction * 100)}.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
