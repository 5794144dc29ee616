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

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import REBUILD, IndexCorrupt
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
    """The searchable part of one segment.

    What an update needs of it (its sentence table, its documents' rows, its postings) is held from the start;
    its chunks, vectors and dense structure (`Contents`), most of what it weighs, are read from disk when first
    used (`rag index` adds a segment without them: a question, a merge or `warm` reads them)."""

    def __init__(
        self,
        table: SentenceTable,
        first_row: dict[str, int],
        chunk_counts: dict[str, int],
        postings: Postings,
        params: dict[str, Any],
        contents: Contents | Callable[[], Contents],
    ) -> None:
        self.table = table
        self.first_row = first_row  # row of each document's first sentence in `table`, documents in order
        self.postings = postings
        self.params = params  # the dense structure's, as `describe` records them
        self.size = postings.size  # chunks held, live or not
        self._contents = contents if isinstance(contents, Contents) else None
        self._read = None if isinstance(contents, Contents) else contents
        self._lock = threading.Lock()
        self._chunk_span: dict[str, tuple[int, int]] = {}
        self._sentence_end: dict[str, int] = {}
        chunk = 0
        order = list(first_row)
        for i, source in enumerate(order):  # documents are consecutive, in order, in both chunks and sentences
            count = chunk_counts.get(source, 0)
            self._chunk_span[source], chunk = (chunk, chunk + count), chunk + count
            self._sentence_end[source] = first_row[order[i + 1]] if i + 1 < len(order) else len(table)
        if chunk != self.size:
            raise ValueError(f"the documents' chunks ({chunk}) are not the {self.size} of the postings")

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
        structure = dense.build(vectors)
        contents = Contents.of(chunks, table, first_row, vectors, structure, sentence_vectors)
        return cls(table, first_row, Counter(c.source for c in chunks), postings, structure.params, contents)

    @classmethod
    def load(
        cls,
        folder: Path,
        params: dict[str, Any],
        read_chunks: Callable[[], list[Chunk]],
        table: SentenceTable,
        first_row: dict[str, int],
        chunk_counts: dict[str, int],
    ) -> Segment:
        """The segment saved in `folder` (`params`: what `describe` recorded; `read_chunks` reads its chunks); its
        contents are read when first used. Raises `DamagedFile` or ValueError; a damaged file of the contents
        raises when they are read."""
        try:
            postings = Postings.load(folder)
        except Exception as exc:  # name the very file: the catalog's error message says which one is damaged
            raise DamagedFile(getattr(exc, "filename", None) or folder / "postings.npz", exc) from exc
        if postings.size != sum(chunk_counts.values()):
            raise ValueError(f"the engine files in {folder} do not agree with its catalog")

        def contents() -> Contents:
            current = folder / "chunks.jsonl"
            try:
                chunks = read_chunks()
                current = folder / "vectors.npy"
                vectors = np.load(current, mmap_mode="r")
                current = folder / dense.FILE
                structure = dense.load(folder, params["dense"], vectors)
                current = folder / "sentences.npy"
                sentence_vectors = np.load(current, mmap_mode="r")
            except Exception as exc:
                raise DamagedFile(getattr(exc, "filename", None) or current, exc) from exc
            held = (structure.index.ntotal, len(vectors), len(sentence_vectors))
            if len(chunks) != postings.size or held != (len(chunks), len(chunks), len(table)):
                raise ValueError(f"the engine files in {folder} do not agree with its catalog")
            return Contents.of(chunks, table, first_row, vectors, structure, sentence_vectors)

        return cls(table, first_row, chunk_counts, postings, params["dense"], contents)

    def contents(self) -> Contents:
        """The chunks, vectors and dense structure, read from disk the first time (once, whichever thread asks)."""
        if self._contents is None:
            with self._lock:
                if self._contents is None:
                    try:
                        self._contents = self._read()  # type: ignore[misc]
                    except (OSError, ValueError) as exc:  # damaged since the index was loaded without them
                        raise IndexCorrupt(f"{exc}; {REBUILD}") from None
        return self._contents

    @property
    def chunks(self) -> list[Chunk]:
        return self.contents().chunks

    @property
    def vectors(self) -> np.ndarray:
        return self.contents().vectors

    @property
    def structure(self) -> dense.Structure:
        return self.contents().structure

    @property
    def sentence_vectors(self) -> np.ndarray:
        return self.contents().sentence_vectors

    @property
    def row(self) -> dict[str, int]:
        return self.contents().row

    @property
    def first_sentence(self) -> np.ndarray:
        return self.contents().first_sentence

    @property
    def previous(self) -> np.ndarray:
        return self.contents().previous

    @property
    def following(self) -> np.ndarray:
        return self.contents().following

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        dense.save(self.structure, folder)
        np.save(folder / "sentences.npy", np.asarray(self.sentence_vectors, dtype=np.float16))
        self.postings.save(folder)

    def describe(self) -> dict[str, Any]:
        return {"dense": self.params}

    def chunk_rows(self, source: str) -> range:
        """Rows of document `source`'s chunks."""
        return range(*self._chunk_span[source])

    def sentence_rows(self, source: str) -> range:
        """Rows of document `source`'s sentences in the table and the sentence vectors."""
        return range(self.first_row[source], self._sentence_end[source])

    def chunk_sentences(self, row: int) -> range:
        """Rows of the sentences of chunk `row`, in order."""
        contents = self.contents()
        first = int(contents.first_sentence[row])
        return range(first, first + int(contents.sentence_count[row]))

    def document_vectors(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunk and sentence vectors of document `source`."""
        chunks, sentences = self.chunk_rows(source), self.sentence_rows(source)
        return self.vectors[chunks.start : chunks.stop], self.sentence_vectors[sentences.start : sentences.stop]


@dataclass
class Contents:
    """What a segment weighs: its chunks, their vectors and dense structure, its sentences' vectors, and the maps
    a question reads them through."""

    chunks: list[Chunk]
    vectors: np.ndarray
    structure: dense.Structure
    sentence_vectors: np.ndarray
    row: dict[str, int]  # chunk id -> row
    first_sentence: np.ndarray  # each chunk's first sentence row
    sentence_count: np.ndarray  # and its number of sentences
    previous: np.ndarray  # each sentence row's neighbours in its document (-1 at its edges), for `Passages`
    following: np.ndarray

    @classmethod
    def of(
        cls,
        chunks: list[Chunk],
        table: SentenceTable,
        first_row: dict[str, int],
        vectors: np.ndarray,
        structure: dense.Structure,
        sentence_vectors: np.ndarray,
    ) -> Contents:
        # float16 on disk halves its size; in memory float32 saves a conversion per question, while it is small.
        dtype = np.float32 if len(sentence_vectors) <= FLOAT32_SENTENCES else None
        rows = np.arange(len(table), dtype=np.int32)
        starts = np.zeros(len(table) + 1, dtype=bool)
        starts[np.fromiter(first_row.values(), np.int64, len(first_row))] = True
        starts[len(table)] = True
        return cls(
            chunks,
            np.asarray(vectors),  # a plain array: indexing a memmap costs microseconds of Python a call
            structure,
            np.asarray(sentence_vectors, dtype=dtype),
            {c.id: i for i, c in enumerate(chunks)},
            np.fromiter((first_row[c.source] + c.first_sentence for c in chunks), np.int64, len(chunks)),
            np.fromiter((len(c.sentences) for c in chunks), np.int64, len(chunks)),
            np.where(starts[:-1], -1, rows - 1).astype(np.int32),
            np.where(starts[1:], -1, rows + 1).astype(np.int32),
        )
