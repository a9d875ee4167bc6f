import pytest

from peerlens.narrative import UnsupportedLanguageError, detect_language
from peerlens.narrative.language import ensure_english


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I heard voices too when I was on the ward.", "en"),
        ("omg same lol", "en"),
        ("ngl i had that exact thing w the voices, ur not alone", "en"),
        ("At least you still have your family, mine was way worse.", "en"),
        ("Moi aussi, j'ai entendu des voix quand j'étais à l'hôpital et c'était très dur.", "fr"),
        ("Yo también escuchaba voces cuando estaba en el hospital, es muy normal.", "es"),
        ("Ich habe auch Stimmen gehört, als ich in der Klinik war, das ist ganz normal.", "de"),
        ("Anch'io ho sentito le voci quando ero in ospedale, è molto normale.", "it"),
        ("Eu também ouvi vozes quando estava no hospital, é muito normal.", "pt"),
        ("Ik heb ook stemmen gehoord toen ik in het ziekenhuis was, dat is heel normaal.", "nl"),
        ("Я тоже слышал голоса, когда лежал в больнице.", "non-latin"),
        ("我也有过同样的感受", "non-latin"),
    ],
)
def test_detects_language(text: str, code: str) -> None:
    assert detect_language(text).code == code


def test_a_few_foreign_words_in_english_stay_english() -> None:
    guess = detect_language("It was a real déjà vu moment for me too, and the café was packed.")
    assert guess.supported


def test_ensure_english_raises_with_the_language_named() -> None:
    with pytest.raises(UnsupportedLanguageError, match=r"story.txt: .*Spanish.*English only"):
        ensure_english("Yo también me sentí así cuando estaba en el hospital.", "story.txt")


def test_no_english_sentence_of_the_corpus_or_evaluation_sets_is_flagged() -> None:
    # chat-speak, typos, names and code-switching fragments across ~2,800 written sentences
    from pathlib import Path

    import pandas as pd

    from peerlens.narrative import load_corpus

    root = Path(__file__).parents[2]
    texts = load_corpus()["text"].tolist()
    for path in [
        *sorted((root / "tests" / "narrative" / "data").glob("*.tsv")),
        *sorted((root / "benchmarks" / "story_data").glob("*.tsv")),
    ]:
        frame = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
        texts += frame["text"].tolist()
    assert len(texts) > 2700
    flagged = [t for t in texts if not detect_language(t).supported]
    assert flagged == []
