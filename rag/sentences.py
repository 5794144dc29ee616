"""What answer selection needs to know of every sentence, worked out at index time instead of per question:
its terms (as ids into the BM25 vocabulary) and whether it holds a date, a quantity, or is a title line.

Stored as three NumPy arrays (CSR-style term ids, and one flag byte a sentence), memory-mapped when loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .lexical import terms
from .question import holds_type

DATE, QUANTITY, HEADING = 1, 2, 4
FLAG_OF_TYPE = {"date": DATE, "quantity": QUANTITY}
FILE = "sentence_terms.npz"
HEADING_ENDS = (".", "!", "?", ":", ";", "…", '"', "”", "'", "’", ")")


def is_heading(text: str) -> bool:
    """A short line without closing punctuation: a title or heading rather than a sentence."""
    return len(text.split()) < 10 and not text.rstrip().endswith(HEADING_ENDS)


def flags_of(text: str) -> int:
    return DATE * holds_type(text, "date") + QUANTITY * holds_type(text, "quantity") + HEADING * is_heading(text)


@dataclass
class SentenceTable:
    indptr: np.ndarray  # sentence i's term ids are ids[indptr[i]:indptr[i + 1]]
    ids: np.ndarray
    flags: np.ndarray

    @classmethod
    def build(
        cls, texts: Sequence[str], vocabulary: Mapping[str, int], tokens: Sequence[list[str]] | None = None
    ) -> SentenceTable:
        """`texts[i]` is sentence row i, `tokens[i]` its terms if already cut (by `terms`); terms missing from
        `vocabulary` are left out."""
        ids, indptr = [], [0]
        for i, text in enumerate(texts):
            ids.extend(sorted({vocabulary[t] for t in (tokens[i] if tokens else terms(text)) if t in vocabulary}))
            indptr.append(len(ids))
        flags = np.fromiter((flags_of(t) for t in texts), dtype=np.uint8, count=len(texts))
        return cls(np.asarray(indptr, dtype=np.int64), np.asarray(ids, dtype=np.int32), flags)

    def term_ids(self, row: int) -> np.ndarray:
        return self.ids[self.indptr[row] : self.indptr[row + 1]]

    def save(self, folder: Path) -> None:
        with open(folder / FILE, "wb") as out:
            np.savez(out, indptr=self.indptr, ids=self.ids, flags=self.flags)

    @classmethod
    def load(cls, folder: Path) -> SentenceTable:
        with np.load(folder / FILE) as data:
            return cls(data["indptr"], data["ids"], data["flags"])

    def __len__(self) -> int:
        return len(self.flags)
