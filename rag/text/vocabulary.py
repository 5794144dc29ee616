"""The terms an index knows, and how many of its sentences hold each: what reading a question needs of the index
whatever engine searches it.

A question's terms are looked up here (as ids, for answer selection), weighted by their IDF over sentences, and,
for a term the index has never seen, replaced by the closest known term: rapidfuzz finds it within edit distance 1
(2 for long words), which repairs typos such as "terorism" without a dictionary of our own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

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

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, term: object) -> bool:
        return term in self.term_id

    def lookup(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of `terms` (`UNKNOWN` for a term no sentence holds)."""
        return np.fromiter((self.term_id.get(t, UNKNOWN) for t in terms), dtype=np.int64, count=len(terms))

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        """BM25's inverse document frequency over sentences; an unknown term gets the most."""
        known = self.doc_freq[np.maximum(term_ids, 0)] if len(self.doc_freq) else np.zeros(len(term_ids))
        df = np.where(term_ids >= 0, known, 0)
        return np.log(1 + (self.sentences - df + 0.5) / (df + 0.5))

    def query_terms(self, question: str) -> list[str]:
        """The question's terms, each unknown one replaced by the closest known term if there is one."""
        found = []
        for term in self.words.terms(question):
            if term not in self.term_id and len(term) >= 4:
                term = self.closest(term) or term
            found.append(term)
        return found

    def closest(self, term: str) -> str | None:
        """The closest known term within the edit limit; typos in a word's first letter are not repaired."""
        limit = 1 if len(term) < 8 else 2
        near = [
            w for n in range(len(term) - limit, len(term) + limit + 1) for w in self._by_shape.get((term[0], n), ())
        ]
        match = process.extractOne(term, near, scorer=Levenshtein.distance, score_cutoff=limit)
        return match[0] if match else None
