"""A small function-word language check: is this text English (the only language modelled)?

Function words (articles, pronouns, auxiliaries, prepositions) are the most frequent words of any
text and differ sharply between languages, so the share of tokens from each language's list is a
robust signal even for short chat messages (the idea of stop-word based identification, e.g.
Grefenstette 1995, "Comparing two language identification schemes").  The lists below were written
for peerlens; words shared with English are left out of the other lists.  Scripts other than Latin
(Cyrillic, Greek, Arabic, Hebrew, Devanagari, CJK, ...) are reported directly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from peerlens.narrative._errors import UnsupportedLanguageError

__all__ = ["LanguageGuess", "detect_language", "ensure_english"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ENGLISH = _words(
    """the a an and or but if so because i me my mine you your yours he him his she her hers it
    its we us our they them their this that these those is am are was were be been being have has
    had do does did will would can could should shall may might must not no yes to of in on at for
    with from by about as into like than then there here what when where who why how which all
    some any just too also very really still well im i'm i've you're it's that's don't can't
    didn't was wasn't yeah ok okay oh um been get got know feel felt think same"""
)
_OTHER: dict[str, frozenset[str]] = {
    "fr": _words(
        """le la les un une des du de et est sont je tu il elle nous vous ils elles ce cette ces
        mon ma mes ton ta tes son sa ses pas ne que qui dans pour avec sur au aux être avoir suis
        es était ai avais fait très mais ou donc aussi moi toi lui leur comme quand bien oui non
        c'est j'ai qu'il n'est"""
    ),
    "es": _words(
        """el la los las un una unos unas y es son yo tú él ella nosotros ellos de del en con por
        para que qué pero muy también mi mis tu tus su sus lo le les se estoy estaba está estás
        fue ser tengo tiene había hay como cuando sí porque yo me te nos"""
    ),
    "de": _words(
        """der die das den dem des ein eine einen einem und ist sind ich du er sie wir ihr es nicht
        mit von zu auf für bei aus auch sehr aber oder wenn wie was wer mein meine dein deine sein
        seine habe hatte hat war bin bist ja nein doch noch schon mich dich sich uns"""
    ),
    "it": _words(
        """il lo la gli le un una uno e è sono io tu lui lei noi voi loro di da con per che non ma
        anche molto mio mia tuo tua suo sua ho hai ha avevo ero sei come quando perché sì della
        del nel alla questo questa"""
    ),
    "pt": _words(
        """o os as um uma uns umas e é são eu você ele ela nós eles elas de do da dos das em no na
        com por para que não mas muito também meu minha seu sua estou estava tenho tinha foi ser
        como quando sim porque isso isto"""
    ),
    "nl": _words(
        """de het een en is zijn ik jij je hij zij wij jullie niet met van voor op aan ook heel maar
        of als hoe wat wie mijn jouw zijn haar heb had was ben bent ja nee nog wel dat deze die
        dit"""
    ),
}
# a word shared with English counts for English only
_OTHER = {code: words - _ENGLISH for code, words in _OTHER.items()}
_NAMES = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
#: Fewer tokens than this: too little evidence to call a text non-English.
MIN_TOKENS = 4


@dataclass(frozen=True)
class LanguageGuess:
    """Result of :func:`detect_language`.

    Attributes
    ----------
    code : str
        ``"en"``, another ISO 639-1 code from the lists, or ``"non-latin"``.
    name : str
        Readable name of the language or script.
    english_share : float
        Share of tokens that are English function words.
    best_other_share : float
        The highest share among the other languages' lists.
    n_tokens : int
        Word tokens seen.
    """

    code: str
    name: str
    english_share: float
    best_other_share: float
    n_tokens: int

    @property
    def supported(self) -> bool:
        """True when the text can be analysed (English)."""
        return self.code == "en"


_LETTER = re.compile(r"[^\W\d_]")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_\x00-\x7f]")


def _script_share(text: str) -> tuple[float, str]:
    # ASCII letters are Latin: only non-ASCII letters need a Unicode name lookup
    if text.isascii():
        return 0.0, ""
    n_letters = len(_LETTER.findall(text))
    if not n_letters:
        return 0.0, ""
    other: dict[str, int] = {}
    for ch in _NON_ASCII_LETTER.findall(text):
        name = unicodedata.name(ch, "")
        if not name.startswith("LATIN"):
            script = name.split(" ", 1)[0] if name else "Unknown"
            script = script if script in ("CJK",) else script.title()
            other[script] = other.get(script, 0) + 1
    if not other:
        return 0.0, ""
    script = max(other, key=lambda k: other[k])
    return sum(other.values()) / n_letters, script


def detect_language(text: str) -> LanguageGuess:
    """Guess whether ``text`` is English from its function words and script.

    Texts with fewer than four word tokens, or with no function word of any language (for
    example "omg same lol"), are taken as English: there is no evidence against it.

    Examples
    --------
    >>> detect_language("I felt that too, you are not alone.").code
    'en'
    >>> detect_language("Je comprends, moi aussi j'ai eu des moments très difficiles.").code
    'fr'
    >>> detect_language("Yo también me sentí así cuando estaba en el hospital.").code
    'es'
    """
    share, script = _script_share(text)
    tokens = [t.casefold() for t in _TOKEN.findall(text)]
    n = len(tokens)
    if share > 0.3:
        return LanguageGuess("non-latin", f"{script} script", 0.0, share, n)
    if n < MIN_TOKENS:
        return LanguageGuess("en", "English", 1.0, 0.0, n)
    en = sum(t in _ENGLISH for t in tokens) / n
    others = {code: sum(t in words for t in tokens) / n for code, words in _OTHER.items()}
    code = max(others, key=lambda k: others[k])
    best = others[code]
    if best > en and best >= 0.15:
        return LanguageGuess(code, _NAMES[code], en, best, n)
    return LanguageGuess("en", "English", en, best, n)


def ensure_english(text: str, source: str = "<text>") -> LanguageGuess:
    """Return the guess, or raise :class:`UnsupportedLanguageError` for non-English text."""
    guess = detect_language(text)
    if not guess.supported:
        raise UnsupportedLanguageError(
            f"{source}: the text looks like {guess.name} ({guess.best_other_share:.0%} of words "
            f"are {guess.name} function words vs {guess.english_share:.0%} English); story "
            "analysis supports English only, so it is not labelled"
        )
    return guess
