"""The terms an index knows, and how many of its sentences hold each: what reading a question needs of the index
whatever engine searches it.

A question's terms are looked up here (as ids, for answer selection), weighted by their IDF over sentences, and,
for a term the index has never seen, replaced by the closest known term: rapidfuzz finds it within edit distance 1
(2 for long words), which repairs typos such as "terorism" without a dictionary of our own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .english import english_vocabulary
from .question import respell
from .words import Words

UNKNOWN = -1  # the id of a term no sentence holds


class Vocabulary:
    """Terms with ids (their position in `terms`) and the number of sentences holding each."""

    def __init__(self, terms: Sequence[str], doc_freq: np.ndarray, sentences: int, words: Words) -> None:
        self.terms = list(terms)
        self.doc_freq = np.asarray(doc_freq)
        self.sentences = sentences
        self.words = words  # the rules the index's texts were cut into terms by; questions are cut by the same
        self.term_id = {t: i for i, t in enumerate(self.terms)}
        # Typo candidates by (first letter, length): a look-up compares a few hundred words, not the vocabulary.
        self._by_shape: dict[tuple[str, int], list[str]] = defaultdict(list)
        for word in sorted(t for t in self.terms if t):
            self._by_shape[(word[0], len(word))].append(word)
        self._dead: bool | None = None  # whether a term is held by no live sentence (`has_dead_terms`)

    def has_dead_terms(self) -> bool:
        """Whether some term is held by no live sentence (a segmented index keeps the terms of removed documents
        until it is compacted); found once, so that a typo look-up tests each candidate only when there are."""
        if self._dead is None:
            self._dead = bool((self.doc_freq == 0).any())
        return self._dead

    def extended(self, added: Sequence[str], doc_freq: np.ndarray, sentences: int) -> Vocabulary:
        """This vocabulary with the terms `added` (ids from len(self) on) and the sentence counts of the index now
        (a segment added or documents removed): a new one, made without sorting or scanning every term again."""
        new = object.__new__(Vocabulary)
        new.terms = self.terms + list(added)
        new.doc_freq = np.asarray(doc_freq)
        new.sentences = sentences
        new.words = self.words
        new.term_id = dict(self.term_id)
        new._by_shape = dict(self._by_shape)
        new._dead = None
        for word in added:
            new.term_id[word] = len(new.term_id)
            if word:
                shape = (word[0], len(word))
                new._by_shape[shape] = sorted([*new._by_shape.get(shape, ()), word])
        return new

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, term: object) -> bool:
        """Whether a live sentence holds `term` (a segmented index keeps the terms of removed documents until it is
        compacted, with a count of 0)."""
        i = self.term_id.get(term)  # type: ignore[call-overload]
        return i is not None and (i >= len(self.doc_freq) or bool(self.doc_freq[i] > 0))

    def lookup(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of `terms` (`UNKNOWN` for a term no sentence holds)."""
        ids = np.fromiter((self.term_id.get(t, UNKNOWN) for t in terms), dtype=np.int64, count=len(terms))
        if len(ids) and len(self.doc_freq) == len(self.terms):
            ids[(ids >= 0) & (self.doc_freq[np.maximum(ids, 0)] == 0)] = UNKNOWN
        return ids

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        """BM25's inverse document frequency over sentences; an unknown term gets the most."""
        known = self.doc_freq[np.maximum(term_ids, 0)] if len(self.doc_freq) else np.zeros(len(term_ids))
        df = np.where(term_ids >= 0, known, 0)
        return np.log(1 + (self.sentences - df + 0.5) / (df + 0.5))

    def query_terms(self, question: str) -> list[str]:
        """The question's terms (a misspelled English question word read as the word, `question.respell`), each
        unknown one replaced by the closest known term if there is one: by its stem, else (English) by the word as
        typed, when it is no English word, respelled as the closest one (`respelled`)."""
        english = self.words.language == "en"
        found = []
        for word in self.words.words(respell(question) if english else question):
            term = self.words.stem(word)
            if term not in self and len(term) >= 4:
                term = self.closest(term) or (self.respelled(word) if english else None) or term
            found.append(term)
        return found

    def respelled(self, word: str) -> str | None:
        """The stem of the English word `word` was probably meant as, when that stem is a known term: `word` is no
        word of the bundled model's English vocabulary, and one of its words is one edit away with the same first
        letter ("minster" -> "minister", whose stem "minist" the stem "minster" is three edits from); of several,
        the one most sentences hold."""
        if len(word) < 4 or word in english_vocabulary():
            return None
        near = [w for n in (len(word) - 1, len(word), len(word) + 1) for w in _english_by_shape().get((word[0], n), ())]
        matches = process.extract(word, near, scorer=Levenshtein.distance, score_cutoff=1, limit=None)
        known = {t for t in (self.words.stem(m[0]) for m in matches) if t in self}  # "mister" is as near: not here
        return max(known, key=lambda t: self.doc_freq[self.term_id[t]], default=None)

    def closest(self, term: str) -> str | None:
        """The closest known term within the edit limit; typos in a word's first letter are not repaired."""
        limit = 1 if len(term) < 8 else 2
        near = [
            w for n in range(len(term) - limit, len(term) + limit + 1) for w in self._by_shape.get((term[0], n), ())
        ]
        if self.has_dead_terms():  # testing each of a few thousand candidates costs a millisecond: only then
            near = [w for w in near if w in self]
        match = process.extractOne(term, near, scorer=Levenshtein.distance, score_cutoff=limit)
        return match[0] if match else None


@cache
def _english_by_shape() -> dict[tuple[str, int], list[str]]:
    """The bundled model's English words by (first letter, length), for `Vocabulary.respelled`."""
    shapes: dict[tuple[str, int], list[str]] = defaultdict(list)
    for word in sorted(english_vocabulary()):
        shapes[(word[0], len(word))].append(word)
    return shapes
