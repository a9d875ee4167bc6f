"""BERT's uncased WordPiece tokenizer, written from its published description (numpy-free).

Notes
-----
Steps, as specified for BERT (Devlin et al. 2019, "BERT: Pre-training of deep bidirectional
transformers", NAACL, section 3 and the released ``tokenization.py`` description) and recorded in
the ``tokenizer.json`` of all-MiniLM-L6-v2 (``BertNormalizer`` with ``clean_text``,
``handle_chinese_chars``, ``lowercase``; ``BertPreTokenizer``; ``WordPiece`` with ``##`` and at
most 100 characters per word):

1. clean: drop NUL, U+FFFD and control characters, map every whitespace character to a space;
2. put spaces around CJK ideographs;
3. lowercase, then strip accents (NFD, drop combining marks, category ``Mn``);
4. split on whitespace, and split every punctuation character (ASCII symbols and Unicode
   category ``P*``) into a token of its own;
5. WordPiece: greedy longest-match-first against the vocabulary, continuation pieces prefixed
   ``##``; a word with no full cover (or longer than 100 characters) becomes ``[UNK]``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

__all__ = ["WordPiece"]


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class WordPiece:
    """Uncased BERT WordPiece tokenizer over a ``token -> id`` vocabulary.

    Parameters
    ----------
    vocab : Mapping[str, int]
        The vocabulary (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]`` must be in it).
    max_chars : int
        Longer words become ``[UNK]``.
    """

    def __init__(self, vocab: Mapping[str, int], max_chars: int = 100) -> None:
        self.vocab = dict(vocab)
        self.max_chars = max_chars
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]
        self.pad = self.vocab["[PAD]"]
        self._word_cache: dict[str, list[int]] = {}

    def words(self, text: str) -> list[str]:
        """Return the pre-tokenised words (steps 1-4)."""
        text = _strip_accents(_clean(text).lower())
        words: list[str] = []
        for chunk in text.split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def word_ids(self, word: str) -> list[int]:
        """Return the WordPiece ids of one pre-tokenised word (step 5)."""
        got = self._word_cache.get(word)
        if got is not None:
            return got
        ids: list[int] = []
        if len(word) > self.max_chars:
            ids = [self.unk]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                found = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    found = self.vocab.get(piece)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    ids = [self.unk]
                    break
                ids.append(found)
                start = end
        if len(self._word_cache) < 100_000:
            self._word_cache[word] = ids
        return ids

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """Return ``[CLS] pieces [SEP]`` ids, the pieces truncated to ``max_length - 2``."""
        ids: list[int] = []
        for word in self.words(text):
            ids.extend(self.word_ids(word))
        return [self.cls, *ids[: max_length - 2], self.sep]

    def pieces(self, text: str) -> list[int]:
        """Return the WordPiece ids without special tokens and without truncation."""
        ids: list[int] = []
        for word in self.words(text):
            ids.extend(self.word_ids(word))
        return ids
