"""The shipped model: reproducible from the corpus, and inference equal to scikit-learn's."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from peerlens.narrative import ModelArtifactError, NarrativeError, load_corpus, load_model
from peerlens.narrative._text import normalize
from peerlens.narrative.corpus import corpus_sha256
from peerlens.narrative.devcorpus import DevCorpusPaths, dev_corpus_paths
from peerlens.narrative.model import (
    ModelConfig,
    TextModel,
    fit_sklearn,
    from_sklearn,
    model_dir,
    train_model,
)
from peerlens.narrative.release import (
    RELEASE_BATCHES,
    RELEASE_CONFIG,
    RELEASE_RULE,
    train_release,
)
from peerlens.narrative.static import StaticEmbedder

from ._reproduce import assert_reproduces
from ._weights import needs_weights


@pytest.fixture(scope="module")
def fitted() -> tuple[object, object, object, TextModel]:
    train = load_corpus(split="train")
    config = ModelConfig()
    word, char, clf = fit_sklearn(train["text"].tolist(), train["label"].tolist(), config)
    return word, char, clf, from_sklearn(word, char, clf, config)


ROOT = Path(__file__).resolve().parents[2]
DEV = dev_corpus_paths(ROOT)


def _stale_keys(model: TextModel, dev: DevCorpusPaths) -> list[str]:
    """The key/label checksums in ``model``'s metadata that its batches' rows no longer match."""
    batches = tuple(int(str(b)) for b in model.meta["real_batches"])
    now = dev.checksums(batches, texts=False)
    return sorted(key for key, digest in now.items() if model.meta[key] != digest)


def test_packaged_artifact_records_the_committed_keys_labels_and_corpus() -> None:
    # runs everywhere: relabelling a trained batch of the real corpus or editing the own corpus
    # without retraining fails here, even where the (non-redistributable) real texts are absent
    shipped = load_model()
    assert shipped.meta["corpus_sha256"] == corpus_sha256(), "retrain: peerlens story train"
    assert shipped.meta["real_batches"] == list(RELEASE_BATCHES)
    assert _stale_keys(shipped, DEV) == [], "batch rows changed: retrain with peerlens story train"
    assert shipped.config == RELEASE_CONFIG
    assert 0.5 <= shipped.threshold <= 1.0
    # the decision rule it records is the release's, and its thresholds are usable ones
    assert str(shipped.meta["threshold_rule"]).startswith(f"{RELEASE_RULE}:")
    assert ("comparison_thresholds" in shipped.meta) == (RELEASE_RULE != "single")
    for t in shipped.thresholds.values():
        assert (t is None and RELEASE_RULE == "per_class_abstain") or 0.5 <= float(t or 0) <= 1.0


def test_a_new_batch_keeps_the_record_valid_and_an_edited_trained_row_breaks_it(
    tmp_path: Path,
) -> None:
    shipped = load_model()
    keys = tmp_path / "keys"
    keys.mkdir()
    items, labels = DEV.items.read_text("utf-8"), DEV.labels.read_text("utf-8")
    new_batch = max(int(line.split(",")[1]) for line in items.splitlines()[1:]) + 1
    (keys / "items.csv").write_text(
        items + f"item99999,{new_batch},elsewhere,random,x.csv,r1,0,{'0' * 64},{'1' * 64}\n"
    )
    (keys / "labels.tsv").write_text(labels + "item99999\tupward\tupward\tupward\t0\t\n")
    copy = DevCorpusPaths(keys, tmp_path / "texts.tsv")
    assert _stale_keys(shipped, copy) == []

    rows = labels.splitlines(keepends=True)
    trained = next(i for i, r in enumerate(rows) if r.startswith("item00001\t"))
    fields = rows[trained].split("\t")
    fields[3] = "upward" if fields[3] != "upward" else "neutral"  # the adjudicated label
    rows[trained] = "\t".join(fields)
    (keys / "labels.tsv").write_text("".join(rows))
    assert _stale_keys(shipped, copy) == ["real_labels_sha256"]


@pytest.mark.parametrize("held", [6, 10, 13, 15])
def test_training_on_a_held_out_batch_is_refused(tmp_path: Path, held: int) -> None:
    # the committed flags, not a fixture's: removing batch 6's, 10's, 13's or 15's flag from
    # sources.json fails
    keys = tmp_path / "keys"
    shutil.copytree(DEV.keys_dir, keys)
    dev = DevCorpusPaths(keys, tmp_path / "absent.tsv")
    with pytest.raises(NarrativeError, match=f"batch {held} is held out"):
        train_release(dev, batches=(*RELEASE_BATCHES, held))


@pytest.mark.slow
def test_packaged_artifact_matches_a_fresh_training() -> None:
    if not DEV.available():
        if os.environ.get("PEERLENS_REQUIRE_REAL_CORPUS"):
            pytest.fail(f"{DEV.rebuilt} missing but PEERLENS_REQUIRE_REAL_CORPUS is set")
        pytest.skip(
            f"real texts not rebuilt ({DEV.rebuilt}); run tools/build_real_corpus.py build "
            "to check that the packaged model is reproducible"
        )
    shipped = load_model()
    batches = tuple(int(str(b)) for b in shipped.meta["real_batches"])
    assert shipped.meta["real_texts_sha256"] == DEV.checksums(batches)["real_texts_sha256"]
    fresh = train_release(DEV)
    provenance = ("real_batches", "real_items_sha256", "real_labels_sha256", "real_texts_sha256")
    same = ("trained_on", "n_own", "n_real", "real_sources", "loso_groups", "corpus_sha256")
    for key in (*provenance, *same):
        assert fresh.meta[key] == shipped.meta[key], key
    assert_reproduces(fresh, shipped, DEV)


@pytest.mark.slow
def test_reimplemented_inference_equals_scikit_learn(fitted: tuple) -> None:
    word, char, clf, model = fitted
    texts = [*load_corpus(split="test")["text"].tolist(), "", "   ", "!!!", "a", "ok ok ok ok"]
    normalized = [normalize(t) for t in texts]
    reference = sp.hstack(
        [
            word.transform(normalized),
            char.transform(normalized),
            sp.csr_matrix(model.cuebook.features(normalized)),
        ],
        format="csr",
    )
    ours = model.transform(normalized)
    np.testing.assert_allclose(ours.toarray(), reference.toarray(), atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(texts),
        clf.predict_proba(reference),
        atol=1e-9,
    )


def test_training_is_deterministic_on_a_subset() -> None:
    corpus = load_corpus(split="train")
    subset = corpus.groupby("label").head(40)
    config = ModelConfig(max_iter=2000)
    a = train_model(subset, config)
    b = train_model(subset, config)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.char.terms, b.char.terms)


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    model = load_model()
    model.save(tmp_path)
    again = TextModel.load(tmp_path)
    np.testing.assert_array_equal(again.coef, model.coef)
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    texts = ["me too", "at least you have a job", "look at me now", "what time is it?"]
    np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts))


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    for name in ("model.npz", "model.json"):
        shutil.copy(model_dir() / name, tmp_path / name)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["npz_sha256"] = "0" * 64
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelArtifactError, match="checksum"):
        TextModel.load(tmp_path)
    with pytest.raises(ModelArtifactError, match="cannot read"):
        TextModel.load(tmp_path / "missing")


def test_held_out_sanity() -> None:
    # a handful of clear cases written for this test, not from the corpus
    model = load_model()
    assert model.predict(
        [
            "honestly i went through the exact same thing after my diagnosis",
            "i got clean by myself so there's really no excuse for you",
            "at least you didn't lose your flat like i did",
            "shall we meet at the library on tuesday?",
        ]
    ) == ["connection", "upward", "downward", "neutral"]


def _small_static(texts: list[str], dims: int = 8) -> StaticEmbedder:
    """A static embedding over the words of ``texts`` (others are [UNK]), seeded vectors."""
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", normalize(t).lower())})
    tokens = np.array(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])
    vectors = np.random.default_rng(7).normal(size=(len(tokens), dims)).astype(np.float16)
    return StaticEmbedder.from_arrays(tokens, vectors.astype(np.float32))


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"cue_ids": True, "own_weight": 0.5, "comparison_weight": 2.0},
        {"cue_ids": True, "context_weight": 0.5, "context_embedding": False},
    ],
    ids=["static_context", "cue_ids_weighted", "neighbours_cues_half_weight"],
)
def test_numpy_inference_equals_scikit_learn_with_static_and_context(
    extra: dict[str, object],
) -> None:
    from dataclasses import replace

    from peerlens.narrative.model import dense_features

    train = load_corpus(split="train").groupby("label").head(60)
    texts = train["text"].tolist()
    probe = load_corpus(split="test")["text"].tolist()[:40]
    static = _small_static(texts)
    prev = ["", *texts[:-1]]
    nxt = [*texts[1:], ""]
    config = replace(
        ModelConfig(max_iter=3000, class_weight="balanced"),
        static_weight=1.0,
        context=True,
        **extra,  # type: ignore[arg-type]
    )
    own = [i % 3 == 0 for i in range(len(texts))]
    word, char, clf = fit_sklearn(
        texts, train["label"].tolist(), config, static=static, prev=prev, nxt=nxt, own=own
    )
    model = from_sklearn(word, char, clf, config, static=static)
    p_prev, p_next = ["", *probe[:-1]], [*probe[1:], ""]
    norm = [normalize(t) for t in probe]
    reference = sp.hstack(
        [
            word.transform(norm),
            char.transform(norm),
            sp.csr_matrix(
                dense_features(
                    config,
                    model.cuebook,
                    static,
                    norm,
                    [normalize(t) for t in p_prev],
                    [normalize(t) for t in p_next],
                )
            ),
        ],
        format="csr",
    )
    np.testing.assert_allclose(
        model.predict_proba(probe, p_prev, p_next), clf.predict_proba(reference), atol=1e-9
    )


def test_a_static_model_saves_its_embedding_beside_it_and_refuses_a_changed_one(
    tmp_path: Path,
) -> None:
    subset = load_corpus(split="train").groupby("label").head(25)
    static = _small_static(subset["text"].tolist())
    static.source = "all-MiniLM-L6-v2@test"
    config = ModelConfig(static_weight=1.0, context=True, max_iter=2000)
    model = train_model(subset, config, static=static)
    model.save(tmp_path)
    assert (tmp_path / "static.npz").is_file()
    assert "Apache License" in (tmp_path / "static_NOTICE.txt").read_text()
    assert "all-MiniLM-L6-v2@test" in (tmp_path / "static_NOTICE.txt").read_text()
    again = TextModel.load(tmp_path)
    assert isinstance(again.static, StaticEmbedder)
    assert again.static.source == "all-MiniLM-L6-v2@test"
    texts = ["me too, i felt exactly that", "at least you have a job", "what time is it?"]
    prev, nxt = ["", texts[0], texts[1]], [texts[1], texts[2], ""]
    np.testing.assert_array_equal(
        again.predict_proba(texts, prev, nxt), model.predict_proba(texts, prev, nxt)
    )
    blob = bytearray((tmp_path / "static.npz").read_bytes())
    blob[-30] ^= 1
    (tmp_path / "static.npz").write_bytes(bytes(blob))
    with pytest.raises(ModelArtifactError, match="checksum"):
        TextModel.load(tmp_path)


def test_comparison_and_own_weights_change_the_fit() -> None:
    import pandas as pd

    corpus = load_corpus(split="train").groupby("label").head(40)
    frame = pd.DataFrame(
        {
            "text": corpus["text"],
            "label": corpus["label"],
            "source": ["" if i % 2 else "real" for i in range(len(corpus))],
        }
    )
    base = ModelConfig(max_iter=2000, class_weight="balanced")
    plain = train_model(frame, base)
    heavier = train_model(frame, ModelConfig(**{**base.__dict__, "comparison_weight": 3.0}))
    own_light = train_model(frame, ModelConfig(**{**base.__dict__, "own_weight": 0.3}))
    texts = load_corpus(split="test")["text"].tolist()[:80]
    comp = [plain.classes.index(c) for c in ("upward", "downward")]
    assert heavier.predict_proba(texts)[:, comp].mean() > plain.predict_proba(texts)[:, comp].mean()
    assert not np.allclose(own_light.coef, plain.coef)


@needs_weights
def test_a_minilm_model_records_the_pinned_encoder_and_refuses_another(tmp_path: Path) -> None:
    from peerlens.narrative.encoder import MINILM_SHA256, load_packaged_encoder

    subset = load_corpus(split="train").groupby("label").head(25)
    config = ModelConfig(static_weight=1.0, embedding="minilm", context=True, max_iter=2000)
    model = train_model(subset, config)
    assert model.static is load_packaged_encoder()
    assert model.n_dense == 3 * (len(model.cuebook.families) + 384)
    model.save(tmp_path)
    assert not (tmp_path / "static.npz").exists()  # the weights are installed, not copied
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["config"]["embedding"] == "minilm"
    assert meta["encoder"]["model_sha256"] == MINILM_SHA256
    again = TextModel.load(tmp_path)
    texts = ["me too, i felt exactly that", "at least you have a job", "what time is it?"]
    prev, nxt = ["", texts[0], texts[1]], [texts[1], texts[2], ""]
    np.testing.assert_allclose(
        again.predict_proba(texts, prev, nxt), model.predict_proba(texts, prev, nxt)
    )
    meta["encoder"]["model_sha256"] = "0" * 64
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelArtifactError, match="model_sha256"):
        TextModel.load(tmp_path)


def test_an_unknown_embedding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown embedding"):
        ModelConfig(static_weight=1.0, embedding="glove")
    for name in ("model.npz", "model.json"):
        shutil.copy(model_dir() / name, tmp_path / name)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["config"]["embedding"] = "glove"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelArtifactError, match="unknown embedding"):
        TextModel.load(tmp_path)


def test_the_packaged_metadata_is_read_without_loading_the_model() -> None:
    from peerlens.narrative.model import packaged_model_meta

    meta = packaged_model_meta()
    fresh = TextModel.load(model_dir()).meta
    assert meta["npz_sha256"] == fresh["npz_sha256"] == load_model().meta["npz_sha256"]
    assert meta["config"] == fresh["config"] and meta.get("encoder") == fresh.get("encoder")


def test_memo_embedder_embeds_each_distinct_text_once_and_keeps_order() -> None:
    from peerlens.narrative.model import MemoEmbedder

    class Counting:
        dims = 2

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, sentences: list[str]) -> np.ndarray:
            self.seen.extend(sentences)
            return np.array([[len(t), t.count("a")] for t in sentences], dtype=np.float32)

    inner = Counting()
    memo = MemoEmbedder(inner)
    first = memo.embed(["aa", "b", "aa", ""])
    np.testing.assert_array_equal(first, inner.embed(["aa", "b", "aa", ""]))
    inner.seen.clear()
    again = memo.embed(["b", "ccc", "aa"])
    assert inner.seen == ["ccc"]  # only the new text reached the wrapped embedder
    np.testing.assert_array_equal(again, [[1, 0], [3, 0], [2, 2]])
    assert memo.embed([]).shape == (0, 2) and memo.dims == 2


def test_a_fit_that_stops_before_its_tolerance_is_refused() -> None:
    from peerlens.narrative.model import fit_classifier

    corpus = load_corpus(split="train").groupby("label").head(20)
    matrix = sp.csr_matrix(np.random.default_rng(0).normal(size=(len(corpus), 30)))
    labels = corpus["label"].tolist()
    with pytest.raises(NarrativeError, match="did not reach tol=1e-08 within max_iter=3 "):
        fit_classifier(matrix, labels, ModelConfig(max_iter=3))
    assert fit_classifier(matrix, labels, ModelConfig()).n_iter_.max() < ModelConfig().max_iter


def test_an_artifact_from_before_the_tolerance_setting_loads_with_the_old_default(
    tmp_path: Path,
) -> None:
    for name in ("model.npz", "model.json"):
        shutil.copy(model_dir() / name, tmp_path / name)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["config"]["tol"] == ModelConfig().tol == 1e-8  # the shipped model records it
    del meta["config"]["tol"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert TextModel.load(tmp_path).config.tol == 1e-4  # scikit-learn's, which fitted it


def test_missing_neighbours_are_zero_vectors_and_never_embedded() -> None:
    from peerlens.narrative.cues import load_cuebook
    from peerlens.narrative.model import dense_features

    class Spy:
        dims = 3

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, sentences: list[str]) -> np.ndarray:
            self.seen.extend(sentences)
            return np.ones((len(sentences), 3), dtype=np.float32)

    spy = Spy()
    config = ModelConfig(static_weight=2.0, context=True)
    out = dense_features(config, load_cuebook(), spy, ["me too", "same"], ["", "me too"], ["", ""])
    assert "" not in spy.seen and sorted(set(spy.seen)) == ["me too", "same"]
    width = len(load_cuebook().families) + 3
    np.testing.assert_array_equal(out[:, width - 3 : width], 2.0)  # the sentences themselves
    np.testing.assert_array_equal(out[0, 2 * width - 3 : 2 * width], 0.0)  # no previous one
    np.testing.assert_array_equal(out[1, 2 * width - 3 : 2 * width], 2.0)
    np.testing.assert_array_equal(out[:, 3 * width - 3 :], 0.0)  # no next one


def test_neighbour_columns_scaled_by_context_weight_or_cues_only() -> None:
    from peerlens.narrative.cues import load_cuebook
    from peerlens.narrative.model import dense_features, dense_width

    class Ones:
        dims = 3

        def embed(self, sentences: list[str]) -> np.ndarray:
            return np.ones((len(sentences), 3), dtype=np.float32)

    book, texts = load_cuebook(), ["me too", "at least you have a job"]
    prev, nxt = ["at least you have a job", "me too"], ["me too", ""]
    full = ModelConfig(static_weight=1.0, context=True)
    base = dense_features(full, book, Ones(), texts, prev, nxt)
    own = len(book.families) + 3
    assert base.shape[1] == dense_width(full, book, Ones()) == 3 * own
    assert base[:, own:].any()  # the neighbours have cues and embeddings
    half = ModelConfig(static_weight=1.0, context=True, context_weight=0.5)
    scaled = dense_features(half, book, Ones(), texts, prev, nxt)
    np.testing.assert_array_equal(scaled[:, :own], base[:, :own])  # the sentence unchanged
    np.testing.assert_array_equal(scaled[:, own:], 0.5 * base[:, own:])
    cues = ModelConfig(static_weight=1.0, context=True, context_embedding=False)
    only = dense_features(cues, book, Ones(), texts, prev, nxt)
    n_cue = len(book.families)
    assert only.shape[1] == dense_width(cues, book, Ones()) == own + 2 * n_cue
    np.testing.assert_array_equal(only[:, :own], base[:, :own])
    np.testing.assert_array_equal(only[:, own : own + n_cue], base[:, own : own + n_cue])
    np.testing.assert_array_equal(only[:, own + n_cue :], base[:, 2 * own : 2 * own + n_cue])
