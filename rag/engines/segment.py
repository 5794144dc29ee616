"""One segment of the local engine: some documents' chunks, their vectors, their sentences' vectors and terms, and
the chunks' postings, in a folder of their own that is written once and never changed.

Files of a segment folder (beside the catalog's, `rag/indexing/segments.py`):

    vectors.npy     chunk vectors (float32, normalized: inner product = cosine), memory-mapped when loaded
    dense.faiss     the approximate (HNSW) structure over them, for large segments only (see dense.py)
    sentences.npy   one vector per sentence (float16), rows in the order of the segment's sentence table
    postings.npz    the chunks' terms, for BM25 with the whole index's statistics (postings.py)

Row i of the chunk vectors, of the postings and of the chunk list is the same chunk. Term ids are the index's:
every segment shares one vocabulary, to which a new segment adds the terms the earlier ones lack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..text.chunking import Chunk
from ..text.sentences import SentenceTable
from . import dense
from .postings import Postings

FLOAT32_SENTENCES = 2_000_000  # sentence vectors held as float32 in memory up to this many (3 GB)
FILES = ("vectors.npy", "sentences.npy", "postings.npz")


class DamagedFile(ValueError):
    """A file of the engine could not be read."""

    def __init__(self, path: object, cause: Exception) -> None:
        super().__init__(f"{path}: {type(cause).__name__}: {cause}")
        self.filename = str(path)


class Segment:
    """The searchable part of one segment."""

    def __init__(
        self,
        chunks: list[Chunk],
        table: SentenceTable,
        first_row: dict[str, int],
        vectors: np.ndarray,
        structure: dense.Structure,
        sentence_vectors: np.ndarray,
        postings: Postings,
    ) -> None:
        self.chunks = chunks
        self.table = table
        self.first_row = first_row  # row of each document's first sentence in `table`
        self.structure = structure
        self.postings = postings
        self.vectors = np.asarray(vectors)  # a plain array: indexing a memmap costs microseconds of Python a call
        # float16 on disk halves its size; in memory float32 saves a conversion per question, while it is small.
        dtype = np.float32 if len(sentence_vectors) <= FLOAT32_SENTENCES else None
        self.sentence_vectors = np.asarray(sentence_vectors, dtype=dtype)
        self.row = {c.id: i for i, c in enumerate(chunks)}
        # Each chunk's first sentence row and its number of sentences.
        self.first_sentence = np.fromiter((first_row[c.source] + c.first_sentence for c in chunks), np.int64)
        self.sentence_count = np.fromiter((len(c.sentences) for c in chunks), np.int64, len(chunks))
        # Each sentence row's neighbours in its document (-1 at its edges), for `Passages`: 8 bytes a sentence.
        rows = np.arange(len(table), dtype=np.int32)
        starts = np.zeros(len(table) + 1, dtype=bool)
        starts[np.fromiter(first_row.values(), np.int64, len(first_row))] = True
        starts[len(table)] = True
        self.previous = np.where(starts[:-1], -1, rows - 1).astype(np.int32)
        self.following = np.where(starts[1:], -1, rows + 1).astype(np.int32)
        self._chunk_span: dict[str, tuple[int, int]] = {}
        for i, c in enumerate(chunks):
            first = self._chunk_span.get(c.source, (i, i))[0]
            self._chunk_span[c.source] = (first, i + 1)
        order = sorted(first_row, key=first_row.__getitem__)
        self._sentence_end = {
            s: (first_row[order[i + 1]] if i + 1 < len(order) else len(table)) for i, s in enumerate(order)
        }

    @classmethod
    def build(
        cls,
        chunks: list[Chunk],
        table: SentenceTable,
        first_row: dict[str, int],
        vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> Segment:
        """A segment of `chunks` (documents in order) with their chunk vectors, and `table`'s sentences' vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        firsts = [first_row[c.source] + c.first_sentence for c in chunks]  # each chunk's first sentence row
        spans = [(table.indptr[f], table.indptr[f + len(c.sentences)]) for f, c in zip(firsts, chunks, strict=True)]
        terms = [table.ids[a:b] for a, b in spans]  # a chunk's terms: its sentences' terms
        postings = Postings.build(terms, table.terms_held)
        return cls(chunks, table, first_row, vectors, dense.build(vectors), sentence_vectors, postings)

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], chunks: list[Chunk], table: SentenceTable, first_row: dict[str, int]
    ) -> Segment:
        """The segment saved in `folder` (`params`: what `describe` recorded); raises `DamagedFile` or ValueError."""
        current = folder / "vectors.npy"
        try:
            vectors = np.load(current, mmap_mode="r")
            current = folder / dense.FILE
            structure = dense.load(folder, params["dense"], vectors)
            current = folder / "sentences.npy"
            sentence_vectors = np.load(current, mmap_mode="r")
            current = folder / "postings.npz"
            postings = Postings.load(folder)
        except Exception as exc:  # name the very file: the catalog's error message says which one is damaged
            raise DamagedFile(getattr(exc, "filename", None) or current, exc) from exc
        held = (structure.index.ntotal, len(vectors), postings.size, len(sentence_vectors))
        if held != (len(chunks), len(chunks), len(chunks), len(table)):
            raise ValueError(f"the engine files in {folder} do not agree with its catalog")
        return cls(chunks, table, first_row, vectors, structure, sentence_vectors, postings)

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        dense.save(self.structure, folder)
        np.save(folder / "sentences.npy", np.asarray(self.sentence_vectors, dtype=np.float16))
        self.postings.save(folder)

    def describe(self) -> dict[str, Any]:
        return {"dense": self.structure.params}

    def chunk_rows(self, source: str) -> range:
        """Rows of document `source`'s chunks."""
        return range(*self._chunk_span[source])

    def sentence_rows(self, source: str) -> range:
        """Rows of document `source`'s sentences in the table and the sentence vectors."""
        return range(self.first_row[source], self._sentence_end[source])

    def chunk_sentences(self, row: int) -> range:
        """Rows of the sentences of chunk `row`, in order."""
        first = int(self.first_sentence[row])
        return range(first, first + int(self.sentence_count[row]))

    def document_vectors(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunk and sentence vectors of document `source`."""
        chunks, sentences = self.chunk_rows(source), self.sentence_rows(source)
        return self.vectors[chunks.start : chunks.stop], self.sentence_vectors[sentences.start : sentences.stop]
