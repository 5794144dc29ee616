"""The default engine: FAISS for the dense side, bm25s for the lexical side, NumPy arrays for the vectors, all in
the index folder beside the catalog. The fastest thing on one machine: a question's searches cost about a
millisecond up to a million chunks (README, Performance).

Files it adds to an index folder:

    vectors.npy     chunk vectors (float32, normalized: inner product = cosine), memory-mapped when loaded
    dense.faiss     the approximate (HNSW) structure over them, for large indexes only (see dense.py)
    sentences.npy   one vector per sentence (float16), rows in the order of the catalog's sentence table
    lexical/        the bm25s index of the chunks' terms

Row i of the chunk vectors, of the BM25 index and of the catalog's chunk list is the same chunk; every build makes
them anew (from the previous engine's vectors for unchanged documents), which costs seconds at a million chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..text.chunking import Chunk
from ..text.sentences import SentenceTable
from ..text.words import Words
from . import dense
from .base import Candidates, Engine, Passages, Scored, Update
from .lexical import LexicalIndex

FLOAT32_SENTENCES = 2_000_000  # sentence vectors held as float32 in memory up to this many (3 GB)
FILES = ("vectors.npy", "sentences.npy", "lexical")


class DamagedFile(ValueError):
    """A file of the engine could not be read."""

    def __init__(self, path: object, cause: Exception) -> None:
        super().__init__(f"{path}: {type(cause).__name__}: {cause}")
        self.filename = str(path)


class LocalEngine(Engine):
    name = "local"

    def __init__(
        self,
        chunks: list[Chunk],
        table: SentenceTable,
        first_row: dict[str, int],
        vectors: np.ndarray,
        structure: dense.Structure,
        sentence_vectors: np.ndarray,
        lexical: LexicalIndex,
    ) -> None:
        self.chunks = chunks
        self.table = table
        self.structure = structure
        self.lexical = lexical
        self.vectors = np.asarray(vectors)  # a plain array: indexing a memmap costs microseconds of Python a call
        # float16 on disk halves its size; in memory float32 saves a conversion per question, while it is small.
        dtype = np.float32 if len(sentence_vectors) <= FLOAT32_SENTENCES else None
        self.sentence_vectors = np.asarray(sentence_vectors, dtype=dtype)
        self.row = {c.id: i for i, c in enumerate(chunks)}
        self._first_row = first_row
        # Each chunk's first sentence row and its number of sentences; each document's past-last sentence row.
        self.first_sentence = np.fromiter((first_row[c.source] + c.first_sentence for c in chunks), np.int64)
        self.sentence_count = np.fromiter((len(c.sentences) for c in chunks), np.int64, len(chunks))
        self._ends = _document_ends(chunks, first_row, len(table))
        # Each sentence row's neighbours in its document (-1 at its edges), for `Passages`: 8 bytes a sentence.
        rows = np.arange(len(table), dtype=np.int32)
        starts = np.zeros(len(table) + 1, dtype=bool)
        starts[np.fromiter(first_row.values(), np.int64, len(first_row))] = True
        starts[len(table)] = True
        self.previous = np.where(starts[:-1], -1, rows - 1).astype(np.int32)
        self.following = np.where(starts[1:], -1, rows + 1).astype(np.int32)
        self._first_chunk: dict[str, int] = {}
        for i, c in enumerate(chunks):
            self._first_chunk.setdefault(c.source, i)

    @classmethod
    def build(cls, update: Update, previous: LocalEngine | None, words: Words) -> LocalEngine:
        """An engine over every chunk of `update`: fresh vectors for the documents embedded now, the previous
        engine's for the others."""
        chunk_parts, sentence_parts = [], []
        for source, rows in _documents(update.chunks).items():
            if source in update.fresh:
                cv, sv = update.fresh[source]
            else:
                assert previous is not None, f"{source} is neither new nor in the previous index"
                cv, sv = previous.document_vectors(source, len(rows))
            chunk_parts.append(cv)
            sentence_parts.append(sv)
        vectors = _stack(chunk_parts, update.dimension, np.float32)
        sentence_vectors = _stack(sentence_parts, update.dimension, np.float16)
        structure = dense.build(vectors)
        lexical = LexicalIndex.from_tokens(chunk_terms(update.chunks, update.table, update.first_row), words)
        return cls(update.chunks, update.table, update.first_row, vectors, structure, sentence_vectors, lexical)

    def with_lexical(self, words: Words) -> LocalEngine:
        """This engine with its lexical side made anew from its sentence table (made by newer rules than the
        saved one's terms)."""
        lexical = LexicalIndex.from_tokens(chunk_terms(self.chunks, self.table, self._first_row), words)
        return LocalEngine(
            self.chunks, self.table, self._first_row, self.vectors, self.structure, self.sentence_vectors, lexical
        )

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], chunks: list[Chunk], table: SentenceTable, first_row: dict[str, int]
    ) -> LocalEngine:
        """The engine saved in `folder` (`params`: what `describe` recorded); raises OSError or ValueError on damage."""
        current = folder / "vectors.npy"
        try:
            vectors = np.load(current, mmap_mode="r")
            current = folder / dense.FILE
            structure = dense.load(folder, params["dense"], vectors)
            current = folder / "sentences.npy"
            sentence_vectors = np.load(current, mmap_mode="r")
            current = folder / "lexical"
            lexical = LexicalIndex.load(current)
        except Exception as exc:  # name the very file: the catalog's error message says which one is damaged
            raise DamagedFile(getattr(exc, "filename", None) or current, exc) from exc
        held = (structure.index.ntotal, len(vectors), lexical.size, len(sentence_vectors))
        if held != (len(chunks), len(chunks), len(chunks), len(table)):
            raise ValueError(f"the engine files in {folder} do not agree with its catalog")
        return cls(chunks, table, first_row, vectors, structure, sentence_vectors, lexical)

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        dense.save(self.structure, folder)
        np.save(folder / "sentences.npy", np.asarray(self.sentence_vectors, dtype=np.float16))
        (folder / "lexical").mkdir()
        self.lexical.save(folder / "lexical")

    def apply(self, update: Update) -> LocalEngine:
        return LocalEngine.build(update, self, update.words)

    def search_dense(self, vector: np.ndarray, k: int) -> Scored:
        scores, rows = dense.search(self.structure, vector, min(k, len(self.chunks)))
        return [(self.chunks[r].id, float(s)) for s, r in zip(scores.tolist(), rows.tolist(), strict=True) if r >= 0]

    def search_lexical(self, terms: Sequence[str], k: int) -> Scored:
        return [(self.chunks[r].id, s) for r, s in self.lexical.search(terms, k)]

    def fetch(self, ids: Sequence[str]) -> LocalCandidates:
        rows = [self.row[i] for i in ids if i in self.row]  # every id a search of this engine found is held
        return LocalCandidates(self, np.asarray(rows, dtype=np.int64))

    def count(self) -> int:
        return len(self.chunks)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dense": self.structure.params}

    def sentence_rows(self, row: int) -> range:
        """Rows of the sentence table and vectors holding the sentences of chunk `row`, in order."""
        first = int(self.first_sentence[row])
        return range(first, first + int(self.sentence_count[row]))

    def document_vectors(self, source: str, chunks: int) -> tuple[np.ndarray, np.ndarray]:
        """The chunk and sentence vectors of document `source` (its `chunks` chunks and their sentences)."""
        first = self._first_chunk[source]
        lo, hi = self._first_row[source], self._ends[source]
        return self.vectors[first : first + chunks], self.sentence_vectors[lo:hi]


class LocalCandidates(Candidates):
    def __init__(self, engine: LocalEngine, rows: np.ndarray) -> None:
        self.engine, self.rows = engine, rows
        self.ids = [engine.chunks[r].id for r in rows.tolist()]
        self.vectors = engine.vectors[rows].reshape(len(rows), engine.vectors.shape[1])

    def best_sentence_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """One matrix product over every candidate's sentences, then the maximum of each chunk's."""
        e = self.engine
        counts = e.sentence_count[self.rows]
        if not len(counts):
            return np.zeros(0, dtype=np.float32)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        gathered = np.repeat(e.first_sentence[self.rows] - offsets, counts) + np.arange(counts.sum())
        cosines = e.sentence_vectors[gathered].astype(np.float32) @ query_vector
        return np.maximum.reduceat(cosines, offsets)

    def passages(self, positions: Sequence[int]) -> Passages:
        """A view of the engine's own arrays (a position is a sentence row): nothing is copied or gathered."""
        e = self.engine
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        chunks = [e.chunks[r] for r in rows.tolist()]
        return Passages(chunks, e.first_sentence[rows], e.sentence_vectors, e.previous, e.following, e.table)


def chunk_terms(chunks: list[Chunk], table: SentenceTable, first_row: dict[str, int]) -> list[list[str]]:
    """Each chunk's terms: its sentences' terms, in order (each sentence is cut into terms once, for the table;
    what lies between two sentences of a chunk holds no word)."""
    out = []
    for c in chunks:
        first = first_row[c.source] + c.first_sentence
        out.append([t for r in range(first, first + len(c.sentences)) for t in table.terms(r)])
    return out


def _documents(chunks: list[Chunk]) -> dict[str, list[int]]:
    """Rows of each document's chunks, documents in order."""
    out: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        out.setdefault(c.source, []).append(i)
    return out


def _document_ends(chunks: list[Chunk], first_row: dict[str, int], total: int) -> dict[str, int]:
    """Past-last sentence row of each document (documents are consecutive, in the order of `first_row`)."""
    order = sorted(first_row, key=first_row.__getitem__)
    return {s: (first_row[order[i + 1]] if i + 1 < len(order) else total) for i, s in enumerate(order)}


def _stack(parts: list[np.ndarray], dimension: int, dtype: type) -> np.ndarray:
    return np.vstack(parts).astype(dtype, copy=False) if parts else np.zeros((0, dimension), dtype=dtype)
