"""The local engine's lexical side: BM25 over the chunks' terms (stemmed words, stop words left out).

bm25s (sparse-matrix BM25, saved as plain NumPy and JSON files) scores. Terms come from `rag.text.words` (PyStemmer's
Snowball stemmer makes "supports" match "supported"); misspelled question words are mapped onto the index's
vocabulary before they get here (`rag.text.vocabulary`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from ..text.words import ENGLISH, Words, tokenize

LARGE = 50_000  # texts; from here common query terms are left out of BM25 (see LexicalIndex._selective)
COMMON = 0.1


class LexicalIndex:
    """BM25 over a list of texts; row i of every result refers to text i."""

    def __init__(self, bm25: bm25s.BM25 | None, size: int, words: Words = ENGLISH) -> None:
        self.bm25 = bm25  # None when no text has a single indexable term (stop words only)
        self.size = size
        self.words = words  # the rules its texts were cut into terms by; questions are cut by the same
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
