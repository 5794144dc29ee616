"""The word rules of a language: how a text is cut into terms for the lexical index and for answer selection.

A term is a lower-cased word of two or more letters or digits (bm25s's token pattern), stemmed by the language's
Snowball stemmer (PyStemmer), with the language's stop words left out (bm25s's lists; for English also the question
words, which carry no topic: without them "How many ..." would match every "many"). A language with no Snowball
stemmer or stop-word list goes without; `None` (a multilingual model) uses neither, and cuts words only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

import bm25s.stopwords as bm25s_stopwords
import Stemmer

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's own token pattern
QUESTION_WORDS_EN = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do"}
# A question word run together with "is", as people type it ("whos the director"): a question word too.
QUESTION_WORDS_EN |= {"whos", "whats", "wheres", "whens", "hows", "whys"}
# ISO 639-1 code -> Snowball algorithm name (PyStemmer's `Stemmer.algorithms()`), and bm25s's stop-word list name.
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech", "da": "danish", "nl": "dutch",
    "en": "english", "eo": "esperanto", "et": "estonian", "fi": "finnish", "fr": "french", "de": "german",
    "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian",
    "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian", "fa": "persian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
STOPWORD_LISTS = {
    "en": "STOPWORDS_EN", "da": "STOPWORDS_DANISH", "nl": "STOPWORDS_DUTCH", "fr": "STOPWORDS_FRENCH",
    "de": "STOPWORDS_GERMAN", "it": "STOPWORDS_ITALIAN", "no": "STOPWORDS_NORWEGIAN", "nb": "STOPWORDS_NORWEGIAN",
    "pt": "STOPWORDS_PORTUGUESE", "ru": "STOPWORDS_RUSSIAN", "es": "STOPWORDS_SPANISH", "sv": "STOPWORDS_SWEDISH",
    "tr": "STOPWORDS_TURKISH", "zh": "STOPWORDS_CHINESE", "ko": "STOPWORDS_KOREAN",
}  # fmt: skip


@dataclass(frozen=True)
class Words:
    """The word rules of one language (`None`: no stemming and no stop words)."""

    language: str | None
    stop: frozenset[str] = field(default=frozenset(), repr=False)

    def stem(self, word: str) -> str:
        return _stem(SNOWBALL.get(self.language or ""), word)

    def is_stop(self, word: str) -> bool:
        """Whether a lower-cased word is a stop word (left out of every index and question)."""
        return word in self.stop

    def terms(self, text: str) -> list[str]:
        """Lower-cased, stop words removed, stemmed terms of a text."""
        return [self.stem(w) for w in self.words(text)]

    def words(self, text: str) -> list[str]:
        """The words of a text its terms are the stems of: lower-cased, stop words removed."""
        return [w for w in TOKEN.findall(text.lower()) if w not in self.stop]

    def analyze(self, text: str) -> tuple[list[str], list[bool]]:
        """The terms of a sentence in order and, for each, whether it is written with a capital letter and is not
        the sentence's first word (a name, most of the time)."""
        out, caps = [], []
        for position, match in enumerate(TOKEN.finditer(text)):
            word = match.group()
            lower = word.lower()
            if lower in self.stop:
                continue
            out.append(self.stem(lower))
            caps.append(position > 0 and word[0].isupper())
        return out, caps


@cache
def words_for(language: str | None) -> Words:
    """The word rules of `language` (an ISO 639-1 code, or None)."""
    listed = getattr(bm25s_stopwords, STOPWORD_LISTS.get(language or "", ""), ())
    extra = QUESTION_WORDS_EN | {"many", "much"} if language == "en" else set()
    return Words(language, frozenset(set(listed) | extra))


ENGLISH = words_for("en")


def stem(word: str) -> str:
    """English stemming (`Words.stem` for another language)."""
    return ENGLISH.stem(word)


def is_stop(word: str) -> bool:
    """Whether a lower-cased word is an English stop word (`Words.is_stop` for another language)."""
    return ENGLISH.is_stop(word)


def terms(text: str, words: Words = ENGLISH) -> list[str]:
    """Lower-cased, stop words removed, stemmed terms of a text, by `words`' rules."""
    return words.terms(text)


def tokenize(texts: Sequence[str], words: Words = ENGLISH) -> list[list[str]]:
    return [words.terms(t) for t in texts]


_stemmers = threading.local()  # a PyStemmer object must not be shared between threads


@lru_cache(maxsize=500_000)
def _stem(algorithm: str | None, word: str) -> str:
    if algorithm is None:
        return word
    stemmers = getattr(_stemmers, "by_name", None)
    if stemmers is None:
        stemmers = _stemmers.by_name = {}
    if algorithm not in stemmers:
        stemmers[algorithm] = Stemmer.Stemmer(algorithm)
    return str(stemmers[algorithm].stemWord(word))
