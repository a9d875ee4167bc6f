"""benchmarks/story_eval.py: scoring the shipped model on one held-out labelled batch.

The frame below is written for the test (no real text); the packaged model labels it as shipped.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from peerlens.narrative import classify, load_model
from peerlens.narrative.release import RELEASE_BATCHES

from .._scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _story_eval() -> ModuleType:
    return load_script(ROOT / "benchmarks/story_eval.py")


se = _story_eval()

#: A batch number no model is trained on (the rows below stand for a new held-out batch).
UNSEEN = 99

ROWS = [
    # item_id, batch, source, arm, text, label, prev, next
    ("i1", 1, "reddit_mh7", "random", "I felt exactly that too.", "connection", "", ""),
    ("i2", UNSEEN, "reddit_mh7", "targeted:x", "Me too, every single night.", "connection", "", ""),
    ("i3", UNSEEN, "elsewhere", "random", "What time is the group on Tuesday?", "neutral", "", ""),
    (
        "i4",
        UNSEEN,
        "elsewhere",
        "random",
        "At least you still have your family, I had nobody.",
        "downward",
        "Sorry.",
        "",
    ),
]


def _frame() -> pd.DataFrame:
    cols = ["item_id", "batch", "source", "arm", "text", "label", "prev", "next"]
    return pd.DataFrame(ROWS, columns=cols)


def test_held_out_batch_scores_only_that_batch_with_the_shipped_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = load_model()
    out = se.held_out_batch(_frame(), UNSEEN, model, out_dir=tmp_path)
    assert out["item_id"].tolist() == ["i2", "i3", "i4"]
    rows = _frame().iloc[1:]
    expected = classify(
        rows["text"].tolist(),
        model=model,
        check_language=False,
        prev=rows["prev"].tolist(),
        nxt=rows["next"].tolist(),
    )
    assert out["pred"].tolist() == [s.label for s in expected]
    printed = capsys.readouterr().out
    # "elsewhere" is not among the shipped model's training sources; reddit_mh7 is
    assert "reddit_mh7" in se.trained_sources(model)
    assert "sources it never saw: elsewhere\n" in printed
    assert "NEW pooled     n=2" in printed and "seen pooled    n=1" in printed
    assert "WARNING" not in printed  # UNSEEN is not among the model's real_batches
    with (tmp_path / f"story_heldout_batch{UNSEEN}.tsv").open() as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    assert list(written[0]) == ["item_id", "source", "arm", "label", "pred"]
    assert [r["pred"] for r in written] == out["pred"].tolist()


def test_held_out_batch_warns_when_the_model_was_trained_on_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = load_model()
    assert se.trained_batches(model) == set(RELEASE_BATCHES)
    frame = _frame().assign(batch=RELEASE_BATCHES[0])
    se.held_out_batch(frame, RELEASE_BATCHES[0], model, out_dir=tmp_path)
    printed = capsys.readouterr().out
    assert f"WARNING: the shipped model was trained on batches {sorted(RELEASE_BATCHES)}" in printed
    # a copy: the packaged model is cached and shared with every other test in the process
    unrecorded = dataclasses.replace(model, meta={**model.meta})
    unrecorded.meta.pop("real_batches")
    se.held_out_batch(_frame(), UNSEEN, unrecorded, out_dir=tmp_path)
    assert load_model().meta["real_batches"] == list(RELEASE_BATCHES)
    assert f"(none recorded): it may have seen batch {UNSEEN}" in capsys.readouterr().out


def test_held_out_batch_refuses_a_batch_without_labels(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--batch 7: no labelled sentences"):
        se.held_out_batch(_frame(), 7, load_model(), out_dir=tmp_path)


def test_rule_thresholds_for_a_source_are_set_without_its_rows() -> None:
    import numpy as np

    from peerlens.narrative.corpus import LABELS
    from peerlens.narrative.release import DECISION_RULES, calibrate_rule

    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4) * 0.5, size=90)
    frame = pd.DataFrame(proba, columns=[f"p_{lab}" for lab in LABELS]).assign(
        source=["a", "b", "c"] * 30,
        label=[LABELS[i] for i in rng.integers(0, 4, size=90)],
    )
    for rule in DECISION_RULES:
        pred, chosen = se.rule_predictions(frame, rule)
        assert len(pred) == len(frame)
        for source in ("a", "b", "c"):
            others = frame[frame["source"] != source]
            expected = calibrate_rule(
                others[[f"p_{lab}" for lab in LABELS]].to_numpy(), others["label"].tolist(), rule
            )
            assert chosen[source] == expected
        # changing one source's gold labels never changes its own thresholds
        flipped = frame.assign(
            label=np.where(frame["source"] == "a", "upward", frame["label"]).tolist()
        )
        assert se.rule_predictions(flipped, rule)[1]["a"] == chosen["a"]


def test_rule_thresholds_for_a_group_are_set_without_any_of_its_sources() -> None:
    import numpy as np

    from peerlens.narrative.corpus import LABELS
    from peerlens.narrative.evaluation import LOSO_GROUPS, loso_group
    from peerlens.narrative.release import calibrate_rule

    group = loso_group("cm_bpd")
    siblings = sorted(s for s, g in LOSO_GROUPS.items() if g == group)
    rng = np.random.default_rng(5)
    n = 30 * (len(siblings) + 1)
    frame = pd.DataFrame(
        rng.dirichlet(np.ones(4) * 0.5, size=n), columns=[f"p_{lab}" for lab in LABELS]
    ).assign(source=["a", *siblings] * 30, label=[LABELS[i] for i in rng.integers(0, 4, size=n)])
    _, chosen = se.rule_predictions(frame, "per_class")
    assert set(chosen) == {"a", group}  # one threshold set per fold, not per sibling
    only_a = frame[frame["source"] == "a"]
    expected = calibrate_rule(
        only_a[[f"p_{lab}" for lab in LABELS]].to_numpy(), only_a["label"].tolist(), "per_class"
    )
    assert chosen[group] == expected


def test_minilm_candidates_fix_the_settings_of_minilm_and_tfidf_ctx_cw() -> None:
    from dataclasses import replace

    cands = se.CANDIDATES
    ctx_cw = {"context": True, "comparison_weight": 2.0}
    assert cands["minilm_ctx_cw"].config == replace(cands["minilm"].config, **ctx_cw)
    assert cands["tfidf_minilm_ctx_cw"].config == replace(
        cands["tfidf_ctx_cw"].config, static_weight=1.0, embedding="minilm"
    )
    assert {cands[n].config.embedding for n in ("minilm", "minilm_ctx_cw")} == {"minilm"}
    assert cands["minilm_ctx_cw"].config.C == 10.0 and not cands["minilm_ctx_cw"].config.tfidf
    assert cands["tfidf_minilm_ctx_cw"].config.C == cands["tfidf_ctx_cw"].config.C
    assert {cands[n].embedder for n in ("minilm_ctx_cw", "tfidf_minilm_ctx_cw")} == {"minilm"}


def test_tfidf_combines_with_the_cached_minilm_embeddings_of_each_sentence_and_neighbour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from peerlens.narrative._text import normalize
    from peerlens.narrative.corpus import LABELS
    from peerlens.narrative.cues import load_cuebook
    from peerlens.narrative.fold_features import FoldFeatures

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _story_embed_cache as cache_mod

    # raw chat spelling ("u", "sooo"): the model embeds the normalised text, the cache is keyed
    # by what is embedded
    texts = [
        "i felt that too, u are not alone",
        "me too, sooo many nights like that",
        "at least u have a job, i had nothing",
        "others have it way worse than you",
        "i got better in a month, so can u",
        "i beat it quickly, you can too",
        "what time is the group on tuesday",
        "the form is on the website",
    ]
    prev = ["", "same here", "", "sorry", "", "", "hi", ""]
    nxt = ["hugs", "", "", "", "keep going", "", "", "thanks"]
    rng = np.random.default_rng(7)
    raw = sorted({t for t in [*texts, *prev, *nxt] if t})
    vectors = {t: rng.normal(size=384).astype(np.float32) for t in raw}
    assert len({normalize(t) for t in raw}) == len(raw)
    monkeypatch.setattr(cache_mod, "CACHE", tmp_path / "minilm_embeddings.npz")
    cache_mod.save_cache({cache_mod.key(normalize(t)): v for t, v in vectors.items()})
    frame = pd.DataFrame({"text": texts, "prev": prev, "next": nxt})
    embedder = se._embedder("minilm", frame)

    cand = se.CANDIDATES["tfidf_minilm_ctx_cw"]
    feats = FoldFeatures(texts, cand.config, static=embedder, prev=prev, nxt=nxt)
    train, test = np.arange(6), np.arange(6, 8)
    x_train, x_test = feats.split(train, test)
    n_cues = load_cuebook().features(["x"]).shape[1]
    dense = 3 * (n_cues + 384)
    assert x_train.shape[1] > dense  # the TF-IDF blocks come first
    block = x_test.toarray()[:, -dense:]
    for row, i in enumerate(test):
        for part, source in enumerate((texts, prev, nxt)):
            got = block[row, part * (n_cues + 384) + n_cues : (part + 1) * (n_cues + 384)]
            want = vectors[source[i]] if source[i] else np.zeros(384)
            np.testing.assert_allclose(got, want, rtol=1e-6)

    labels = ["connection"] * 2 + ["downward"] * 2 + ["upward"] * 2 + ["neutral"] * 2
    proba = feats.fit_predict(np.arange(7), np.array([7]), labels)
    assert proba.shape == (1, len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_paired_compares_the_same_sentences_fold_by_fold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import numpy as np

    from peerlens.narrative.corpus import LABELS

    rng = np.random.default_rng(5)
    gold = [LABELS[i] for i in rng.integers(0, 4, size=120)]
    base = pd.DataFrame({"item_id": [f"i{k}" for k in range(120)], "label": gold}).assign(
        source=["a", "b", "c", "d"] * 30
    )
    noisy = rng.dirichlet(np.ones(4), size=120)
    sure = np.array([[0.97 if lab == g else 0.01 for lab in LABELS] for g in gold])
    a = base.assign(**{f"p_{lab}": noisy[:, k] for k, lab in enumerate(LABELS)})
    b = base.assign(**{f"p_{lab}": sure[:, k] for k, lab in enumerate(LABELS)})
    per_fold_a, per_fold_b = se.fold_f1(a, "per_class"), se.fold_f1(b, "per_class")
    assert set(per_fold_a) == {"a", "b", "c", "d"}
    assert all(per_fold_b[f] > per_fold_a[f] for f in per_fold_a)  # the sure model wins each
    se.paired(a, b, ("noisy", "sure"), "per_class")
    out = capsys.readouterr().out
    assert "4 folds up, 0 down" in out and "sure minus noisy" in out
    with pytest.raises(SystemExit, match="same sentences"):
        se.paired(a, b.iloc[1:], ("noisy", "sure"), "per_class")


def test_only_batches_keeps_the_named_batches_rows_and_refuses_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    oof = pd.DataFrame({"item_id": ["a", "b", "c"], "batch": [1, 14, 2], "label": ["n"] * 3})
    assert se._batch_filter(parser, "")(oof) is oof  # no filter: every row
    kept = se._batch_filter(parser, "1,2")(oof)
    assert kept["item_id"].tolist() == ["a", "c"] and kept.index.tolist() == [0, 1]
    with pytest.raises(SystemExit) as refused:
        se._batch_filter(parser, "7")(oof)
    assert refused.value.code == 2
    assert "error: --only-batches 7: no rows of these batches" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's error: exit status 2
        se._batch_filter(parser, "1,x")


def test_a_batch_can_be_scored_with_a_saved_model_and_a_bad_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = load_model()
    shipped.save(tmp_path / "saved")
    assert se._batch_model(tmp_path / "saved").version == shipped.version
    assert se._batch_model(None) is shipped
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{not json")
    for bad in (tmp_path / "absent", tmp_path / "broken"):
        with pytest.raises(SystemExit) as refused:
            se._batch_model(bad)
        assert refused.value.code == 2
        assert f"error: --model {bad}: " in capsys.readouterr().err


def test_extra_training_rows_train_in_every_fold_and_bad_rows_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "extra.tsv"
    pd.DataFrame(
        {
            "text": ["I got sober, so you can too.", "Same, it took me years."],
            "label": ["upward", "connection"],
            "prev": ["", "I got sober, so you can too."],
            "next": ["Same, it took me years.", ""],
        }
    ).to_csv(good, sep="\t", index=False)
    extra = se.extra_training_rows(good)
    team = pd.DataFrame(
        {"text": ["Me too.", "Held back."], "label": ["connection", "neutral"]}
    ).assign(split=["train", "test"])
    data = se.combined_data(team, _frame(), extra)
    # own train split, then the extra rows (source "": always trained, never scored), then real
    assert data["text"].tolist()[:3] == ["Me too.", *extra["text"]]
    assert data["source"].tolist()[:3] == ["", "", ""]
    assert data["prev"].tolist()[2] == "I got sober, so you can too."
    assert data["item_id"].tolist()[3:] == ["i1", "i2", "i3", "i4"]
    folds = se.source_folds(data["source"].tolist(), always_train=(data["source"] == "").to_numpy())
    for fold in folds:
        assert {0, 1, 2} <= set(fold.train.tolist()) and not {0, 1, 2} & set(fold.test.tolist())

    # with a blind pass's labels, only the rows it agrees with train
    checked = tmp_path / "checked.tsv"
    extra.assign(blind_label=["upward", "neutral"]).to_csv(checked, sep="\t", index=False)
    assert se.extra_training_rows(checked)["text"].tolist() == ["I got sober, so you can too."]
    extra.assign(blind_label=["", "connection"]).to_csv(checked, sep="\t", index=False)
    assert se.extra_training_rows(checked)["text"].tolist() == ["Same, it took me years."]

    bad = tmp_path / "bad.tsv"
    for content, where in (
        ("text\tlabel\tprev\n", "no column next"),
        ("text\tlabel\tprev\tnext\nI won.\tbragging\t\t\n", "row 2, column label: 'bragging'"),
        ("text\tlabel\tprev\tnext\nok\tneutral\t\t\n \tneutral\t\t\n", "row 3, column text"),
    ):
        bad.write_text(content)
        with pytest.raises(SystemExit) as refused:
            se.extra_training_rows(bad)
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert f"--extra-train {bad}" in err and where in err


def test_the_committed_written_replies_are_whole_replies_with_their_neighbours() -> None:
    path = ROOT / "benchmarks/story_data/written/sentences.tsv"
    rows = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    assert rows["item_id"].is_unique and set(rows["label"]) == set(se.LABELS)
    assert set(rows["blind_label"]) <= {*se.LABELS, ""}
    for _, reply in rows.groupby("reply_id", sort=False):
        texts = reply["text"].tolist()
        assert reply["sent_no"].astype(int).tolist() == list(range(1, len(texts) + 1))
        assert reply["prev"].tolist() == ["", *texts[:-1]]
        assert reply["next"].tolist() == [*texts[1:], ""]
    # what trains: exactly the rows the blind check agrees with
    train = se.extra_training_rows(path)
    agreed = rows[rows["blind_label"] == rows["label"]]
    assert train["item_id"].tolist() == agreed["item_id"].tolist()
    assert 0 < len(train) < len(rows)
