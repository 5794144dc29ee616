"""What answer selection needs to know of every sentence, worked out at index time instead of per question: its
terms in order (as ids into the table's own vocabulary, so it does not depend on any search engine's internals),
which of them were written with a capital letter inside the sentence (names), how many sentences hold each term
(for IDF), and whether the sentence holds a date, a quantity, or is a title line.

Stored as NumPy arrays (CSR-style term ids and name marks, one flag byte a sentence, document frequencies) and a
JSON vocabulary. `VERSION` changes whenever what is stored changes: `LAYOUT` by hand when the arrays change, and a
digest of the flag rules (the date and quantity patterns, the heading rule) by itself when they do. An index whose
table has another version has its table rebuilt from the sentence texts on the next `rag index`, without
re-embedding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .question import ANSWER_PATTERNS, holds_type
from .words import Words, words_for

DATE, QUANTITY, HEADING = 1, 2, 4
FLAG_OF_TYPE = {"date": DATE, "quantity": QUANTITY}
FILE = "sentence_terms.npz"
VOCABULARY = "sentence_vocabulary.json"
LAYOUT = 3  # bump when the stored arrays change
HEADING_ENDS = (".", "!", "?", ":", ";", "…", '"', "”", "'", "’", ")")
HEADING_WORDS = 10  # a heading has fewer words than this; the answer weights were fitted with this value


def rules_digest() -> str:
    """A short digest of the rules the flags are made by: it changes whenever one of them does."""
    rules = [ANSWER_PATTERNS[k].pattern for k in sorted(FLAG_OF_TYPE)] + [repr(HEADING_ENDS), str(HEADING_WORDS)]
    return hashlib.sha256("\n".join(rules).encode()).hexdigest()[:12]


VERSION = f"{LAYOUT}-{rules_digest()}"


def is_heading(text: str) -> bool:
    """A short line without closing punctuation: a title or heading rather than a sentence."""
    return len(text.split()) < HEADING_WORDS and not text.rstrip().endswith(HEADING_ENDS)


def flags_of(text: str, language: str | None) -> int:
    """The sentence's flags; dates and quantities are found by English patterns, so only for English."""
    if language != "en":
        return HEADING * is_heading(text)
    return DATE * holds_type(text, "date") + QUANTITY * holds_type(text, "quantity") + HEADING * is_heading(text)


class Rows(Protocol):
    """Sentences' terms, names and flags in CSR layout: what answer selection reads (`SentenceRows`, or a whole
    `SentenceTable`)."""

    @property
    def indptr(self) -> np.ndarray: ...
    @property
    def ids(self) -> np.ndarray: ...
    @property
    def caps(self) -> np.ndarray: ...
    @property
    def flags(self) -> np.ndarray: ...


@dataclass(frozen=True)
class SentenceRows:
    """Some sentences' terms, names and flags, in the layout of `SentenceTable` (what answer selection reads of the
    sentences of a question's passages). Term ids are the index's vocabulary's; `FOREIGN` marks a term it lacks."""

    indptr: np.ndarray  # sentence i's term ids are ids[indptr[i]:indptr[i + 1]], in order of the text
    ids: np.ndarray
    caps: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return len(self.flags)

    @classmethod
    def from_lists(
        cls, ids: Sequence[Sequence[int]], caps: Sequence[Sequence[bool]], flags: Sequence[int]
    ) -> SentenceRows:
        """Rows from each sentence's term ids, capital marks and flags."""
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(i) for i in ids], out=indptr[1:])
        flat_ids = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=int(indptr[-1]))
        flat_caps = np.fromiter((c for row in caps for c in row), dtype=bool, count=int(indptr[-1]))
        return cls(indptr, flat_ids, flat_caps, np.asarray(flags, dtype=np.uint8).reshape(len(ids)))


FOREIGN = -2  # the id of a stored sentence's term that the vocabulary lacks: it matches no question term


@dataclass
class SentenceTable:
    indptr: np.ndarray  # sentence i's term ids are ids[indptr[i]:indptr[i + 1]], in order of the text
    ids: np.ndarray
    caps: np.ndarray  # caps[j]: term j was capitalized inside its sentence
    flags: np.ndarray
    doc_freq: np.ndarray  # sentences holding each term id (of `terms` ids)
    vocabulary: list[str]  # the terms of ids first_term, first_term + 1, ...
    first_term: int = 0  # a segment's table: ids below this are terms of the index's earlier segments

    @classmethod
    def build(cls, texts: Sequence[str], words: Words, known: Mapping[str, int] | None = None) -> SentenceTable:
        """The table of sentence rows `texts`, cut into terms by `words`. With `known` (an index's terms by id, ids
        0 to len(known) - 1), a term it holds keeps its id and a new one gets the next id from len(known) on."""
        known = known or {}
        first = len(known)
        term_id: dict[str, int] = {}
        ids: list[int] = []
        caps: list[bool] = []
        indptr = [0]
        for text in texts:
            terms, capitals = words.analyze(text)
            ids += [known[t] if t in known else term_id.setdefault(t, first + len(term_id)) for t in terms]
            caps += capitals
            indptr.append(len(ids))
        table = cls(
            np.asarray(indptr, dtype=np.int64),
            np.asarray(ids, dtype=np.int32),
            np.asarray(caps, dtype=bool),
            np.fromiter((flags_of(t, words.language) for t in texts), dtype=np.uint8, count=len(texts)),
            np.zeros(0, dtype=np.int32),
            list(term_id),
            first,
        )
        table.doc_freq = table.count_sentences()
        return table

    @property
    def terms_held(self) -> int:
        """Term ids this table's rows may hold: 0 to terms_held - 1."""
        return self.first_term + len(self.vocabulary)

    def count_sentences(self, rows: range | None = None) -> np.ndarray:
        """How many sentences (of `rows`, or all) hold each term id below `terms_held`."""
        rows = rows if rows is not None else range(len(self.flags))
        lo, hi = self.indptr[rows.start], self.indptr[rows.stop]
        owner = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(self.indptr[rows.start : rows.stop + 1]))
        size = max(self.terms_held, 1)
        pairs = np.unique(owner * size + self.ids[lo:hi])
        return np.bincount(pairs % size, minlength=self.terms_held).astype(np.int32)

    def term_ids(self, row: int) -> np.ndarray:
        return self.ids[self.indptr[row] : self.indptr[row + 1]]

    def terms(self, row: int) -> list[str]:
        """The terms of sentence `row`, in order (a table that holds every term it uses: `first_term` 0)."""
        assert self.first_term == 0, "a segment's table holds the terms it added only"
        return [self.vocabulary[i] for i in self.term_ids(row)]

    @classmethod
    def joined(
        cls, parts: Sequence[tuple[SentenceTable, Sequence[range]]], vocabulary: list[str], first_term: int
    ) -> SentenceTable:
        """A table of the rows `spans` of each table in `parts`, in order (their term ids are one index's), with the
        terms `vocabulary` from id `first_term` on."""
        pieces = [(t, r) for t, spans in parts for r in spans]
        lengths = [np.diff(t.indptr[r.start : r.stop + 1]) for t, r in pieces]
        indptr = np.zeros(sum(len(n) for n in lengths) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(lengths or [np.zeros(0, np.int64)]), out=indptr[1:])
        cut = [(int(t.indptr[r.start]), int(t.indptr[r.stop])) for t, r in pieces]
        table = cls(
            indptr,
            np.concatenate([t.ids[a:b] for (t, _), (a, b) in zip(pieces, cut, strict=True)] or [np.zeros(0, np.int32)]),
            np.concatenate([t.caps[a:b] for (t, _), (a, b) in zip(pieces, cut, strict=True)] or [np.zeros(0, bool)]),
            np.concatenate([t.flags[r.start : r.stop] for t, r in pieces] or [np.zeros(0, np.uint8)]),
            np.zeros(0, dtype=np.int32),
            vocabulary,
            first_term,
        )
        table.doc_freq = table.count_sentences()
        return table

    def save(self, folder: Path) -> None:
        with open(folder / FILE, "wb") as out:
            np.savez(
                out,
                indptr=self.indptr,
                ids=self.ids,
                caps=self.caps,
                flags=self.flags,
                doc_freq=self.doc_freq,
                first_term=np.int64(self.first_term),
            )
        (folder / VOCABULARY).write_text(json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load_vocabulary(cls, folder: Path) -> tuple[list[str], np.ndarray, int]:
        """The saved table's vocabulary, each term's sentence count and the number of sentences, without its rows
        (an `.npz` member is read only when asked for)."""
        with np.load(folder / FILE) as data:
            doc_freq, sentences = data["doc_freq"], len(data["flags"])
        return json.loads((folder / VOCABULARY).read_text(encoding="utf-8")), doc_freq, sentences

    @classmethod
    def empty(cls) -> SentenceTable:
        return cls.build([], words_for(None))

    @classmethod
    def load(cls, folder: Path) -> SentenceTable:
        with np.load(folder / FILE) as data:
            indptr, ids, caps, flags, doc_freq = (data[k] for k in ("indptr", "ids", "caps", "flags", "doc_freq"))
            first_term = int(data["first_term"]) if "first_term" in data else 0
        vocabulary = json.loads((folder / VOCABULARY).read_text(encoding="utf-8"))
        return cls(indptr, ids, caps, flags, doc_freq, vocabulary, first_term)

    def __len__(self) -> int:
        return len(self.flags)
