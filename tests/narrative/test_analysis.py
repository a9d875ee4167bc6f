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
