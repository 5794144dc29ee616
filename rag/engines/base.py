"""What the pipeline needs from a search engine, and nothing more.

An engine holds the chunks of an index with their vectors, the vectors of their sentences and what answer
selection reads of those sentences (terms, names, flags); it searches them densely (by vector) and lexically
(BM25 over the chunks' terms), and hands back what it holds for a list of chunk ids. Everything above this module
speaks in chunk ids (`Chunk.id`, "source#n") and the values below; nothing above `rag.engines` imports FAISS,
bm25s or pymilvus (tests/test_layering.py).

Two engines implement it: `local` (FAISS and bm25s in the index folder, the default) and `milvus` (a Milvus
server, or Milvus Lite for a folder of its own).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..engine_types import redact
from ..text.chunking import Chunk
from ..text.sentences import Rows, SentenceTable
from ..text.vocabulary import Vocabulary
from ..text.words import Words

Scored = list[tuple[str, float]]  # (chunk id, score), best first
__all__ = ["Candidates", "Catalog", "Engine", "Passages", "Scored", "Update", "redact"]


@dataclass(frozen=True)
class Catalog:
    """What an engine is opened with from a loaded index folder."""

    folder: Path
    chunks: list[Chunk]
    table: SentenceTable
    first_row: dict[str, int]  # row of each document's first sentence in `table`
    words: Words  # the word rules of the chunks' terms
    table_current: bool  # False: the table was made anew by newer rules, and terms stored from the old one differ


@dataclass(frozen=True)
class Passages:
    """Chunks fetched by id with their sentences: each sentence once (chunks overlap), with the sentence before and
    after each chunk too, so that every sentence of a chunk has its neighbours at hand. The arrays may hold more
    sentences than these (the local engine hands out views of all of its own)."""

    chunks: list[Chunk]
    first: np.ndarray  # chunk i's sentences are positions first[i] .. first[i] + len(chunks[i].sentences) - 1
    vectors: np.ndarray  # (sentences, dimension), float32 (or float16 in a very large local index)
    previous: np.ndarray  # position of the sentence before each in its document, -1 when it has none
    following: np.ndarray  # position of the sentence after each in its document, -1 when it has none
    table: Rows  # each sentence's terms (ids of the index's vocabulary), names and flags

    def positions(self, i: int) -> range:
        """Positions of chunk i's sentences, in order."""
        first = int(self.first[i])
        return range(first, first + len(self.chunks[i].sentences))


class Candidates(ABC):
    """The chunks a question's searches proposed, as fetched: enough to fuse their scores, and their passages."""

    ids: list[str]
    vectors: np.ndarray  # (len(ids), dimension) float32 chunk vectors, normalized

    @abstractmethod
    def best_sentence_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """For each candidate, the cosine of the question and the chunk's closest sentence."""

    @abstractmethod
    def passages(self, positions: Sequence[int]) -> Passages:
        """The passages of the candidates at `positions`, in that order."""


@dataclass(frozen=True)
class Update:
    """What a build makes of the index, for an engine to apply: every chunk and sentence of the new index, the
    vectors of the documents embedded anew, and the documents that left."""

    chunks: list[Chunk]  # every chunk of the new index, documents in corpus order
    table: SentenceTable  # every sentence of the new index, rows in the same order
    first_row: dict[str, int]  # row of each document's first sentence in `table`
    fresh: dict[str, tuple[np.ndarray, np.ndarray]]  # source -> (chunk vectors, sentence vectors), embedded now
    removed: frozenset[str]  # sources in the previous index and not in this one
    dimension: int
    words: Words  # the rules the table's terms were made by

    def document_rows(self, source: str, chunk: Chunk) -> range:
        """Rows of `table` holding `chunk`'s sentences."""
        first = self.first_row[source] + chunk.first_sentence
        return range(first, first + len(chunk.sentences))


class Engine(ABC):
    """A search engine holding one index's chunks."""

    name: ClassVar[str]
    vocabulary: Vocabulary | None = None  # the index's terms, set when its catalog is loaded (for term ids)

    @abstractmethod
    def search_dense(self, vector: np.ndarray, k: int) -> Scored:
        """Up to `k` chunks nearest to a normalized question vector, by inner product."""

    @abstractmethod
    def search_lexical(self, terms: Sequence[str], k: int) -> Scored:
        """Up to `k` chunks by BM25 over the question's terms, scores above zero only."""

    @abstractmethod
    def fetch(self, ids: Sequence[str]) -> Candidates:
        """The chunks of `ids` the engine holds, in that order (`Candidates.ids`): an engine other processes write
        to may have lost one that a search found a moment before."""

    @abstractmethod
    def count(self) -> int:
        """Chunks held."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the manifest records of this engine: its name and what another process needs to open it."""

    @abstractmethod
    def apply(self, update: Update) -> Engine:
        """The engine holding the new index: `self` changed in place (a database), or a new one (files)."""

    def save(self, folder: Path) -> None:  # noqa: B027 (an engine with nothing to write keeps it empty)
        """Write what the engine keeps in the index folder into `folder` (a new copy, swapped in when complete)."""

    def close(self) -> None:  # noqa: B027
        """Release connections or files."""
