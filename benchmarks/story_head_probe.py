"""Is the linear head the limit?  A logistic regression and an MLP on the same dense block.

Exploratory (docs/story.md, "Batch 13 decides"): the packaged configuration's dense block (cue
indicators, all-MiniLM-L6-v2 of the sentence and of its neighbours) for every row of the
project corpus's train split and real batches 1-12, the same leave-one-source-out folds as
``story_eval.py --oof``, the same row weights (balanced classes, comparisons x2).  Writes
``benchmarks/out/story_oof_x_<kind>dense[...].tsv``; compare with
``story_eval.py --rules x_lrdense`` and ``--rules x_mlpdense_256_1e-3``.

    PYTHONPATH=src python benchmarks/story_head_probe.py lr
    PYTHONPATH=src python benchmarks/story_head_probe.py mlp 256 1e-3
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.utils.class_weight import compute_sample_weight

from peerlens.narrative.corpus import LABELS
from peerlens.narrative.evaluation import source_folds


def main(argv: list[str]) -> None:
    import story_eval as se  # beside this script (run from the repository root)

    kind = argv[0]
    team = se.load_corpus()
    real = se.load_dev_corpus(se.dev_corpus_paths(se.ROOT))
    real = real[real["batch"] != 14]  # the rows of batches 1-12, as in the s16/s17 comparisons
    data = se.combined_data(team, real)
    cand = se.CANDIDATES["tfidf_minilm_ctx_cw_c10"]
    feats = se.fold_features(cand, data, se._embedder(cand.embedder, data))
    x = feats._dense.toarray().astype(np.float32)
    y = np.array(data["label"].tolist())
    is_team = (data["source"] == "").to_numpy()
    w = compute_sample_weight("balanced", y)
    w[np.isin(y, ["upward", "downward"])] *= 2.0
    proba = np.zeros((len(y), len(LABELS)))
    for fold in source_folds(data["source"].tolist(), always_train=is_team):
        start, tr, te = time.time(), fold.train, fold.test
        if kind == "lr":
            model = LogisticRegression(C=10, max_iter=3000)
        else:
            model = MLPClassifier(
                hidden_layer_sizes=(int(argv[1]),),
                alpha=float(argv[2]),
                max_iter=60,
                random_state=0,
            )
        model.fit(x[tr], y[tr], sample_weight=w[tr])
        order = [list(model.classes_).index(lab) for lab in LABELS]
        proba[te] = model.predict_proba(x[te])[:, order]
        print(fold.held_out, f"{time.time() - start:.0f}s", flush=True)
    rows = ~is_team
    out = data.loc[rows, ["item_id", "source", "arm", "batch", "label"]].reset_index(drop=True)
    for k, lab in enumerate(LABELS):
        out[f"p_{lab}"] = proba[rows, k]
    name = f"x_{kind}dense" + ("_" + "_".join(argv[1:]) if len(argv) > 1 else "")
    out.to_csv(se.OUT / f"story_oof_{name}.tsv", sep="\t", index=False)
    print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1:])
