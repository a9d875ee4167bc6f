import math

import numpy as np
import pytest

from peerlens.narrative import (
    LABELS,
    EmptyInputError,
    SpeakerNotFoundError,
    UnsupportedLanguageError,
    analyze,
    classify,
    summarize,
)


def test_classify_fields_and_probabilities() -> None:
    results = classify(["me too, i had that as well", "at least you still have your mum"])
    first, second = results
    assert first.label == "connection" and first.hint is None
    assert second.label == "downward" and "at least you" in second.cues
    assert second.hint is not None and "At least" in second.hint
    for r in results:
        assert set(r.probabilities) == set(LABELS)
        assert math.isclose(sum(r.probabilities.values()), 1.0)
        assert r.confidence == r.probabilities[r.label]
    with pytest.raises(AttributeError):
        first.label = "upward"  # type: ignore[misc]  # frozen


def test_mixed_sentence_takes_the_comparison_label_and_is_flagged() -> None:
    (r,) = classify(["I had voices too, but I beat them, so you can too if you try harder."])
    assert r.label == "upward"
    assert r.mixed


def test_threshold_falls_back_to_connection_or_neutral() -> None:
    text = ["I'm still learning that myself."]
    strict = classify(text, comparison_threshold=1.01)
    assert strict[0].label in ("connection", "neutral")


def test_the_models_calibrated_threshold_is_the_default_and_keeps_probabilities() -> None:
    import copy

    from peerlens.narrative import load_model

    text = ["at least you still have your mum, i lost mine at ten"]
    model = copy.copy(load_model())
    # a model with one threshold for both classes (no per-class ones recorded)
    single = {k: v for k, v in model.meta.items() if k != "comparison_thresholds"}
    model.meta = {**single, "comparison_threshold": 0.5}
    (loose,) = classify(text, model=model)
    assert loose.label == "downward"
    model.meta = {**model.meta, "comparison_threshold": 1.01}
    (strict,) = classify(text, model=model)
    assert strict.label in ("connection", "neutral")
    assert strict.probabilities == loose.probabilities  # reported unchanged
    assert strict.probabilities["downward"] > strict.probabilities[strict.label]
    assert strict.confidence == strict.probabilities[strict.label]


def test_per_class_thresholds_of_the_model_or_the_caller_decide_each_class() -> None:
    import copy
    import json

    from peerlens.narrative import load_model
    from peerlens.narrative.analysis import model_provenance

    texts = ["at least you still have your mum, i lost mine at ten", "I beat it, so can you."]
    model = copy.copy(load_model())
    model.meta = {**model.meta, "comparison_thresholds": {"upward": 0.5, "downward": 0.5}}
    loose = classify(texts, model=model)
    assert [r.label for r in loose] == ["downward", "upward"]
    # the model abstains on upward: that sentence falls back, its probabilities unchanged
    model.meta = {**model.meta, "comparison_thresholds": {"upward": None, "downward": 0.5}}
    down, up = classify(texts, model=model)
    assert down.label == "downward"
    assert up.label in ("connection", "neutral")
    assert up.probabilities == loose[1].probabilities
    assert up.hint is None
    # the caller's per-class mapping overrides the model's
    strict = classify(texts, model=model, comparison_threshold={"upward": 0.5, "downward": None})
    assert [r.label for r in strict][1] == "upward"
    assert strict[0].label in ("connection", "neutral")
    # provenance names the per-class thresholds, as strict JSON (null for the abstained class)
    record = model_provenance(model)
    assert record["comparison_thresholds"] == {"upward": None, "downward": 0.5}
    assert record["encoder"] == model.meta.get("encoder")
    assert (
        json.loads(json.dumps(record, allow_nan=False))["comparison_thresholds"]["upward"] is None
    )


def test_summary_counts_shares_and_index_by_hand() -> None:
    labels = ["connection"] * 6 + ["upward"] * 2 + ["downward"] + ["neutral"] * 3
    s = summarize(labels, seed=1)
    assert s.n_sentences == 12
    assert dict(s.counts) == {"connection": 6, "downward": 1, "neutral": 3, "upward": 2}
    assert s.shares["neutral"] == pytest.approx(0.25)
    assert s.connection_index == pytest.approx(6 / 9)
    assert s.ci_low < s.connection_index < s.ci_high
    assert s == summarize(labels, seed=1)  # seeded
    frame = s.to_frame()
    assert frame["n_sentences"].sum() == 12


def test_bootstrap_ci_against_a_direct_resampling_reference() -> None:
    # independent reference: resample the sentence list itself with numpy
    labels = ["connection"] * 14 + ["upward"] * 4 + ["downward"] * 2 + ["neutral"] * 10
    rng = np.random.default_rng(7)
    arr = np.array(labels)
    idx = []
    for _ in range(20000):
        draw = arr[rng.integers(0, len(arr), len(arr))]
        c = (draw == "connection").sum()
        d = c + (draw == "upward").sum() + (draw == "downward").sum()
        if d:
            idx.append(c / d)
    ref_low, ref_high = np.quantile(idx, [0.025, 0.975])
    s = summarize(labels, n_boot=20000, seed=3)
    assert s.ci_low == pytest.approx(ref_low, abs=0.02)
    assert s.ci_high == pytest.approx(ref_high, abs=0.02)


def test_index_is_nan_without_connection_or_comparison() -> None:
    s = summarize(["neutral", "neutral"])
    assert math.isnan(s.connection_index) and math.isnan(s.ci_low)


def test_analyze_story_frame_and_dict() -> None:
    result = analyze("I felt that too. Honestly, at least you have a job. What time is group?")
    frame = result.to_frame()
    assert list(frame["label"]) == ["connection", "downward", "neutral"]
    assert {"p_connection", "p_upward", "confidence", "cues", "hint"} <= set(frame.columns)
    d = result.to_dict()
    assert next(iter(d)) == "summary"
    assert d["summary"]["counts"]["downward"] == 1


def test_analyze_transcript_scores_only_the_worker() -> None:
    text = (
        "Sam: How are you today?\n"
        "Alex: at least I got up, I beat the alarm for once. I had it much worse last week.\n"
        "Sam: I've had weeks like that too.\n"
    )
    result = analyze(text, transcript=True, speaker="SAM")
    assert {s.speaker for s in result.sentences} == {"Sam"}
    assert [s.label for s in result.sentences] == ["neutral", "connection"]
    assert [s.turn for s in result.sentences] == [0, 1]
    assert result.speakers == ("Sam", "Alex")
    assert result.transcript_format == "lines"


def test_single_speaker_transcript_needs_no_name() -> None:
    result = analyze("Sam: me too\nSam: same here honestly", transcript=True)
    assert result.speaker == "Sam"


def test_bad_inputs() -> None:
    with pytest.raises(EmptyInputError):
        analyze("   \n ")
    with pytest.raises(SpeakerNotFoundError, match="'Jo' not found"):
        analyze("Sam: hi\nAlex: hello", transcript=True, speaker="Jo")
    with pytest.raises(SpeakerNotFoundError, match="name the PS worker"):
        analyze("Sam: hi\nAlex: hello", transcript=True)
    with pytest.raises(UnsupportedLanguageError, match="French"):
        analyze("Moi aussi, j'ai eu des moments très difficiles quand j'étais malade.")
    with pytest.raises(UnsupportedLanguageError):
        classify(["Yo también me sentí así cuando estaba en el hospital."])
    assert classify([]) == ()


def test_a_single_string_is_one_sentence() -> None:
    (only,) = classify("me too, honestly")
    assert only.text == "me too, honestly"


def test_bundled_example_session() -> None:
    from peerlens.narrative._io import read_text
    from peerlens.narrative.model import model_dir

    path = model_dir() / "example_session_vtt.txt"
    result = analyze(read_text(path), transcript=True, speaker="Sam", source=path.name)
    assert result.speakers == ("Sam", "Alex")
    assert all(s.speaker == "Sam" for s in result.sentences)
    assert "i can barely get to the shop" not in [s.text.lower() for s in result.sentences]
    labels = [s.label for s in result.sentences]
    # written with one upward (l. 6) and one downward (l. 8) sentence
    assert labels.count("upward") == 1 and labels.count("downward") == 1


# --- connection-index interval with few sentences -------------------------------------------


@pytest.mark.parametrize(("c", "n"), [(3, 3), (0, 4), (5, 9), (30, 30), (1, 1)])
def test_wilson_interval_matches_statsmodels(c: int, n: int) -> None:
    from statsmodels.stats.proportion import proportion_confint

    from peerlens.narrative.analysis import wilson_interval

    ref = proportion_confint(c, n, alpha=0.05, method="wilson")
    assert wilson_interval(c, n) == pytest.approx(ref, abs=1e-12)


def test_few_or_one_sided_sentences_get_a_wilson_interval_not_a_point() -> None:
    from statsmodels.stats.proportion import proportion_confint

    three = summarize(["connection"] * 3 + ["neutral"])
    assert three.ci_method == "wilson" and three.connection_index == 1.0
    # a percentile bootstrap would give [1, 1] here; Wilson gives [0.44, 1]
    assert three.ci_low == pytest.approx(proportion_confint(3, 3, method="wilson")[0])
    assert three.ci_low < 0.5 and three.ci_high == 1.0
    one_sided = summarize(["upward"] * 25 + ["neutral"] * 5)
    assert one_sided.ci_method == "wilson" and one_sided.connection_index == 0.0
    assert one_sided.ci_low == 0.0 and 0.0 < one_sided.ci_high < 0.2
    many = summarize(["connection"] * 8 + ["downward"] * 4)
    assert many.ci_method == "bootstrap" and many.ci_low < many.ci_high
    assert summarize(["neutral"]).ci_method == "none"


def test_bootstrap_is_seeded() -> None:
    labels = ["connection"] * 9 + ["upward"] * 3 + ["neutral"] * 4
    a, b = summarize(labels, seed=5), summarize(labels, seed=5)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_method == "bootstrap"


# --- non-English sentences and turns ---------------------------------------------------------

ENGLISH_MESSY = [
    "ngl tbh same lol",
    "omg that was me last yr",
    "Siobhan and Aoife came to group with Giuseppe and Oluwaseun",
    "my abuela used to say todo pasa, and honestly it helped me too",
    "je ne sais quoi, I felt that too",
    "I said to her, como estas, and she just laughed",
    "the de la cruz family came to the ward on sunday",
    "Ich weiß nicht, I just felt lost for months",
    "idk hun u r not alone 💜",
    "mdr same, i used to do that too",
    "c u at the cafe, dont b l8",
    "Dr. Nguyen said the dose was fine tho",
]
FOREIGN = {
    "French": "Moi aussi, j'ai eu des moments très difficiles quand j'étais à l'hôpital.",
    "Spanish": "Yo también me sentí así cuando estaba en el hospital.",
    "German": "Ich hatte auch eine sehr schwere Zeit, als ich krank war.",
    "Italian": "Anche io ho avuto momenti molto difficili quando ero in ospedale.",
    "Portuguese": "Eu também me senti assim quando estava no hospital.",
    "Dutch": "Ik heb ook een hele moeilijke tijd gehad toen ik ziek was.",
}


def test_english_with_chat_speak_names_and_fragments_is_not_flagged() -> None:
    result = analyze("\n".join(ENGLISH_MESSY))
    assert result.unsupported == ()
    assert len(result.sentences) == len(ENGLISH_MESSY)


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_a_foreign_sentence_in_an_english_story_is_reported_not_labelled(language: str) -> None:
    story = (
        "I felt that too when I was first diagnosed. "
        f"{FOREIGN[language]} "
        "At least you still have your job. What time is group?"
    )
    result = analyze(story)
    assert [u.language for u in result.unsupported] == [language]
    assert [u.position for u in result.unsupported] == [1]
    assert [s.position for s in result.sentences] == [0, 2, 3]
    assert FOREIGN[language] not in [s.text for s in result.sentences]
    assert result.summary.n_sentences == 3
    assert result.summary_record()["n_unsupported"] == 1


def test_a_worker_turn_in_another_language_is_reported_with_its_turn() -> None:
    text = (
        "Sam: I felt that too.\n"
        "Alex: Je me sens très mal, je ne sais pas quoi faire.\n"
        "Sam: Oui, merci. Je comprends, moi aussi j'ai eu des moments très difficiles.\n"
        "Alex: ok\n"
        "Sam: Ok. At least you still have your job though, honestly.\n"
    )
    result = analyze(text, transcript=True, speaker="Sam")
    # "Oui, merci." is too short to judge alone: it takes its (French) turn's language, while
    # "Ok." in an English turn stays English
    assert [(u.speaker, u.turn, u.code, u.text) for u in result.unsupported] == [
        ("Sam", 1, "fr", "Oui, merci."),
        ("Sam", 1, "fr", "Je comprends, moi aussi j'ai eu des moments très difficiles."),
    ]
    assert [(s.turn, s.text) for s in result.sentences][:2] == [(0, "I felt that too."), (2, "Ok.")]
    assert result.sentences[-1].label == "downward"


def test_a_text_mostly_in_another_language_is_refused() -> None:
    with pytest.raises(UnsupportedLanguageError, match="Spanish"):
        analyze(FOREIGN["Spanish"] + " " + FOREIGN["Spanish"].replace("Yo", "Tú") + " I see.")


# --- the public entry point for a web page or a study database ------------------------------


def test_analyze_result_carries_model_version_and_checksums() -> None:
    import hashlib
    import json

    from peerlens.narrative.model import model_dir

    npz = hashlib.sha256((model_dir() / "model.npz").read_bytes()).hexdigest()
    corpus = hashlib.sha256((model_dir() / "corpus.csv").read_bytes()).hexdigest()
    result = analyze("me too, honestly. at least u still have ur family. what time is group?")
    assert result.model_version == f"story-lr-1-{npz[:12]}"
    assert result.model["npz_sha256"] == npz and result.model["corpus_sha256"] == corpus
    frame = result.to_frame()
    assert list(frame.columns) == [
        "sentence",
        "position",
        "speaker",
        "turn",
        "text",
        "label",
        "confidence",
        "p_connection",
        "p_downward",
        "p_neutral",
        "p_upward",
        "mixed",
        "cues",
        "hint",
        "model_version",
    ]
    assert frame["model_version"].unique().tolist() == [result.model_version]
    assert frame["label"].tolist() == ["connection", "downward", "neutral"]
    record = result.summary_record()
    assert record["model_version"] == result.model_version and record["model_sha256"] == npz
    assert record["n_connection"] + record["n_downward"] + record["n_neutral"] == 3
    assert record["connection_index"] == pytest.approx(0.5)
    json.dumps(record, allow_nan=False)
    json.dumps(result.to_dict(), allow_nan=False)


def test_undefined_index_is_null_in_json() -> None:
    import json

    result = analyze("What time is group? Shall we meet at the library?")
    assert math.isnan(result.summary.connection_index)
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["summary"]["connection_index"] is None and d["summary"]["ci_method"] == "none"
    assert result.summary_record()["ci_low"] is None
    assert analyze("me too").to_frame().shape[0] == 1


def test_classify_refuses_a_batch_holding_a_foreign_sentence_and_names_it() -> None:
    batch = ["I felt that too when I was ill.", FOREIGN["French"], "what time is group today?"]
    with pytest.raises(UnsupportedLanguageError, match=r"item 2 \(French\)"):
        classify(batch)
    assert len(classify(batch, check_language=False)) == 3
