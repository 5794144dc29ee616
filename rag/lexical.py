"""The lexical side: BM25 over stemmed words, with misspelled query words mapped onto the index's vocabulary.

bm25s (sparse-matrix BM25, saved as plain NumPy and JSON files) scores; PyStemmer's Snowball stemmer makes
"supports" match "supported"; rapidfuzz finds, for a query word the index has never seen, the closest word it has
(edit distance 1, or 2 for long words), which repairs typos such as "terorism" without a dictionary of our own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .words import TOKEN, Words, words_for

__all__ = ["TOKEN", "LexicalIndex", "is_stop", "stem", "terms", "tokenize"]

LARGE = 50_000  # texts; from here common query terms are left out of BM25 (see LexicalIndex._selective)
COMMON = 0.1
ENGLISH = words_for("en")


def stem(word: str) -> str:
    """English stemming (`words.Words.stem` for another language)."""
    return ENGLISH.stem(word)


def is_stop(word: str) -> bool:
    """Whether a lower-cased word is an English stop word (`words.Words.is_stop` for another language)."""
    return ENGLISH.is_stop(word)


def terms(text: str, words: Words = ENGLISH) -> list[str]:
    """Lower-cased, stop words removed, stemmed terms of a text, by `words`' rules."""
    return words.terms(text)


def tokenize(texts: Sequence[str], words: Words = ENGLISH) -> list[list[str]]:
    return [words.terms(t) for t in texts]


class LexicalIndex:
    """BM25 over a list of texts; row i of every result refers to text i."""

    def __init__(self, bm25: bm25s.BM25 | None, size: int, words: Words = ENGLISH) -> None:
        self.bm25 = bm25  # None when no text has a single indexable term (stop words only)
        self.size = size
        self.words = words  # the rules its texts were cut into terms by; questions are cut by the same
        self.vocabulary = frozenset(k for k in bm25.vocab_dict if k) if bm25 else frozenset()
        # Typo candidates by (first letter, length): a look-up compares a few hundred words, not the vocabulary.
        self._by_shape: dict[tuple[str, int], list[str]] = defaultdict(list)
        for word in sorted(self.vocabulary):
            self._by_shape[(word[0], len(word))].append(word)
        self._doc_freq = np.diff(bm25.scores["indptr"]) if bm25 else np.zeros(0, dtype=np.int64)
        self.vocabulary_ids: dict[str, int] = {k: v for k, v in bm25.vocab_dict.items() if k} if bm25 else {}

    @classmethod
    def build(cls, texts: Sequence[str], words: Words = ENGLISH) -> LexicalIndex:
        return cls.from_tokens(tokenize(texts, words), words)

    @classmethod
    def from_tokens(cls, tokens: list[list[str]], words: Words = ENGLISH) -> LexicalIndex:
        """BM25 over texts already cut into terms by `words`."""
        if not any(tokens):
            return cls(None, len(tokens), words)
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        return cls(bm25, len(tokens), words)

    def save(self, folder: Path) -> None:
        if self.bm25 is not None:
            self.bm25.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self.size, "empty": self.bm25 is None}))

    @classmethod
    def load(cls, folder: Path, words: Words = ENGLISH) -> LexicalIndex:
        meta = json.loads((folder / "size.json").read_text())
        bm25 = None if meta.get("empty") else bm25s.BM25.load(str(folder), show_progress=False)
        return cls(bm25, meta["size"], words)

    def query_terms(self, question: str) -> list[str]:
        """The question's terms, each unknown one replaced by the closest known term if there is one."""
        found = []
        for term in self.words.terms(question):
            if term not in self.vocabulary and len(term) >= 4:
                term = self._closest(term) or term
            found.append(term)
        return found

    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to `k` (row, score) pairs with a score above zero, best first."""
        columns = self._selective([self.vocabulary_ids[t] for t in terms if t in self.vocabulary_ids])
        if not columns or self.bm25 is None:
            return []
        # bm25s keeps each term's precomputed per-document scores as a sparse column: add up only the postings
        # of the question's terms, instead of scoring every document (which costs ~200 ms at a million).
        matrix = self.bm25.scores
        slices = [slice(matrix["indptr"][c], matrix["indptr"][c + 1]) for c in columns]
        rows = np.concatenate([matrix["indices"][s] for s in slices])
        weights = np.concatenate([matrix["data"][s] for s in slices]).astype(np.float64)
        if len(rows) * 8 < self.size:  # few postings: work on the documents they touch only
            rows, inverse = np.unique(rows, return_inverse=True)
            scores = np.bincount(inverse, weights=weights)
        else:
            scores = np.bincount(rows, weights=weights, minlength=self.size)
            rows = np.flatnonzero(scores)
            scores = scores[rows]
        k = min(k, len(rows))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((rows[top], -scores[top]))]
        return [(int(rows[i]), float(scores[i])) for i in top if scores[i] > 0]

    def _selective(self, columns: list[int]) -> list[int]:
        """In a large index, leave out terms found in more than a tenth of the texts (keeping the two rarest):
        their BM25 weight is small, their postings long (500,000 rows for one word at a million chunks),
        and the dense side still reads the whole question."""
        if self.size < LARGE or len(columns) <= 2:
            return columns
        by_rarity = sorted(columns, key=lambda c: self._doc_freq[c])
        return by_rarity[:2] + [c for c in by_rarity[2:] if self._doc_freq[c] <= COMMON * self.size]

    def idf(self, term: str) -> float:
        """Inverse document frequency of a term (BM25's form); unknown terms get the highest value."""
        column = self.bm25.vocab_dict.get(term) if self.bm25 else None
        df = int(self._doc_freq[column]) if column is not None and column < len(self._doc_freq) else 0
        return float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))

    def _closest(self, term: str) -> str | None:
        """The closest known term within the edit limit; typos in a word's first letter are not repaired."""
        limit = 1 if len(term) < 8 else 2
        near = [
            w for n in range(len(term) - limit, len(term) + limit + 1) for w in self._by_shape.get((term[0], n), ())
        ]
        match = process.extractOne(term, near, scorer=Levenshtein.distance, score_cutoff=limit)
        return match[0] if match else None
