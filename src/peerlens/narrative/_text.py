"""Text normalisation shared by training and inference.

Chat-speak, repeated letters and curly apostrophes are mapped to one canonical spelling so that
"ur", "your" and "you're" style variants share word n-grams across the spoken, texted and formal
registers of the corpus.
"""

from __future__ import annotations

import re

__all__ = ["normalize"]

_APOSTROPHES = re.compile("[\u2018\u2019\u02bc\u0060\u00b4]")
_QUOTES = re.compile("[\u201c\u201d]")
_DASHES = re.compile("[\u2013\u2014]")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_SPACES = re.compile(r"\s+")

# Texting abbreviations -> canonical words.  Only unambiguous ones: "ill" (= unwell) and "2"
# (a number) are deliberately not mapped.
_CANON = {
    "u": "you",
    "ya": "you",
    "ur": "your",
    "urs": "yours",
    "ure": "you're",
    "youre": "you're",
    "r": "are",
    "n": "and",
    "w": "with",
    "abt": "about",
    "thru": "through",
    "bc": "because",
    "cuz": "because",
    "coz": "because",
    "cos": "because",
    "b4": "before",
    "ppl": "people",
    "rly": "really",
    "sm": "so much",
    "defo": "definitely",
    "tho": "though",
    "wat": "what",
    "yr": "year",
    "yrs": "years",
    "im": "i'm",
    "ive": "i've",
    "id": "i'd",
    "dont": "don't",
    "cant": "can't",
    "didnt": "didn't",
    "wasnt": "wasn't",
    "isnt": "isn't",
    "couldnt": "couldn't",
    "wouldnt": "wouldn't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "doesnt": "doesn't",
    "arent": "aren't",
    "werent": "weren't",
    "shouldnt": "shouldn't",
    "thats": "that's",
    "whats": "what's",
    "its": "it's",
    "theyre": "they're",
    "weve": "we've",
    "youve": "you've",
    "youll": "you'll",
    "ull": "you'll",
    "u'll": "you'll",
    "gonna": "going to",
    "gotta": "got to",
    "wanna": "want to",
    "tmrw": "tomorrow",
    "msg": "message",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "ty": "thank you",
    "x": "",
    "xx": "",
}
_CANON_RE = re.compile(
    r"(?<![\w'])(" + "|".join(map(re.escape, sorted(_CANON, key=len, reverse=True))) + r")(?![\w'])"
)


def normalize(text: str) -> str:
    """Return the canonical lower-case form of one sentence used by the model.

    Parameters
    ----------
    text : str
        A sentence as written or transcribed.

    Returns
    -------
    str
        Lower-cased text with straight apostrophes, runs of three or more identical letters cut
        to one ("sooo" -> "so"), common texting abbreviations expanded and white space collapsed.

    Examples
    --------
    >>> normalize("Omg SAMEEE, i felt that 2 and ur not alone")
    'omg same, i felt that 2 and your not alone'
    """
    out = _APOSTROPHES.sub("'", text)
    out = _QUOTES.sub('"', out)
    out = _DASHES.sub("-", out).lower()
    out = _REPEATS.sub(r"\1", out)
    out = _CANON_RE.sub(lambda m: _CANON[m.group(1)], out)
    return _SPACES.sub(" ", out).strip()
