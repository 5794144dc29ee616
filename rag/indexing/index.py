"""A loaded index (`Index`): its catalog's documents, texts and vocabulary, and the engine that searches its
chunks; and the rows of its manifest and chunk table as values."""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engines.base import Engine
from ..errors import REBUILD, IndexCorrupt, IndexMismatch, IndexOutdated
from ..text.chunking import Chunk
from ..text.sentences import SentenceTable
from ..text.vocabulary import Vocabulary
from ..text.words import Words, words_for
from .texts import DocumentText, Texts

_GENERATIONS = itertools.count(1)
FORMAT_VERSION = 6  # 5: the engine recorded and its files apart from the catalog's; 6: the local engine in segments


@dataclass(frozen=True)
class DocumentEntry:
    source: str
    title: str
    sha256: str
    size: int
    mtime_ns: int
    chunks: int
    sentences: int
    format: str = "text"
    pages: tuple[int, ...] = ()  # offset in the text where each page starts, for paged formats (PDF)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that holds `offset`, or None when the document has no pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None


@dataclass(frozen=True)
class IndexSummary:
    """What the edges (HTTP API, pages) show of an index: its counts and how it was built. Read from the manifest
    in one place (`from_manifest`), so that no route spells out the manifest's keys or the defaults of older
    manifests. The mappings are the manifest's own, not copies: they are only to be read."""

    documents: int
    chunks: int
    built_at: str  # UTC, "2026-01-31T12:00:00Z"
    model: Mapping[str, Any]  # as recorded at the build: name, dimension, precision
    chunker: Mapping[str, Any]  # as recorded at the build: how text was split into chunks
    skipped: Mapping[str, Any]  # each file the build could not read: why, its size and time

    @property
    def model_name(self) -> str:
        return str(self.model["name"])

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> IndexSummary:
        """The summary of the index whose manifest is `manifest`. Model, counts and build time are in every
        manifest (KeyError without them); an index from before skipped files or the chunker were recorded shows
        none and an empty chunker."""
        counts = manifest["counts"]
        return cls(
            documents=counts["documents"],
            chunks=counts["chunks"],
            built_at=manifest["built_at"],
            model=manifest["model"],
            chunker=manifest.get("chunker") or {},
            skipped=manifest.get("skipped", {}),
        )


class Index:
    """A loaded index: its catalog, and the engine that searches its chunks.

    The chunk list and the sentence table are what a build reads of the previous index (and the local engine
    searches); a server answering through Milvus needs only the vocabulary, so for it they are read from `folder`
    on first use (about 2.3 kB a chunk in memory, docs/scaling.md), by the build that holds the writer lock."""

    def __init__(
        self,
        manifest: dict[str, Any],
        documents: list[DocumentEntry],
        chunks: list[Chunk] | None,
        sentence_table: SentenceTable | None,
        texts: Texts,
        engine: Engine,
        *,
        folder: Path | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.manifest, self.documents, self.texts, self.engine = manifest, documents, texts, engine
        self._chunks, self._table, self._folder = chunks, sentence_table, folder
        self.generation = next(_GENERATIONS)  # tells this index from any other loaded in this process
        self._entries = {d.source: d for d in self.documents}
        self.words = words_of(self.manifest)  # the word rules of its lexical side and sentence table
        if vocabulary is None:
            table = self.sentence_table
            vocabulary = Vocabulary(table.vocabulary, table.doc_freq, len(table), self.words)
        self.vocabulary = vocabulary
        self.engine.vocabulary = self.vocabulary
        self.chunk_count = sum(d.chunks for d in self.documents)
        self._first_chunk, chunk = {}, 0
        for d in self.documents:
            self._first_chunk[d.source], chunk = chunk, chunk + d.chunks

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk, documents in order."""
        if self._chunks is None:
            assert self._folder is not None
            try:
                chunks = read_chunks(self._folder)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise IndexCorrupt(
                    f"{self._folder / 'chunks.jsonl'} is damaged ({type(exc).__name__}); {REBUILD}"
                ) from None
            if len(chunks) != self.chunk_count:
                raise IndexCorrupt(f"the files in {self._folder} do not agree with each other; {REBUILD}")
            self._chunks = chunks
        return self._chunks

    @property
    def sentence_table(self) -> SentenceTable:
        """Every sentence's terms, names and flags, rows in document order."""
        if self._table is None:
            assert self._folder is not None
            self._table = SentenceTable.load(self._folder)
        return self._table

    def first_chunk(self, source: str) -> int:
        """Position in `chunks` of the first chunk of document `source`."""
        return self._first_chunk[source]

    def title(self, source: str) -> str:
        """The title of document `source` (its name, for one a shared engine holds and this catalog not yet)."""
        entry = self._entries.get(source)
        return entry.title if entry is not None else source.rsplit("/", 1)[-1]

    def entry(self, source: str) -> DocumentEntry | None:
        """The document `source` of this index, or None."""
        return self._entries.get(source)

    def document(self, source: str) -> DocumentText:
        """Document `source` as it was indexed (every offset refers to its text); KeyError if it is not indexed."""
        entry = self._entries[source]
        return DocumentText(source, entry.title, entry.format, entry.pages, self.texts.get(source))

    @property
    def summary(self) -> IndexSummary:
        """What the edges show of this index, read from its manifest (made again on each read: an update replaces
        the manifest of the index it changes)."""
        return IndexSummary.from_manifest(self.manifest)

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])

    def warm(self) -> None:
        """Read now what is read when first used (a segmented index's contents); raises on a damaged file."""


def first_rows(documents: list[DocumentEntry]) -> dict[str, int]:
    """Row of each document's first sentence in the sentence table (documents are consecutive, in order)."""
    out, row = {}, 0
    for doc in documents:
        out[doc.source], row = row, row + doc.sentences
    return out


def words_of(manifest: dict[str, Any]) -> Words:
    """The word rules the index in `manifest` was made by (an index from before they were recorded: English)."""
    return words_for(manifest.get("text", {}).get("language", "en"))


def read_chunks(folder: Path) -> list[Chunk]:
    rows = read_lines(folder / "chunks.jsonl")
    with no_collection():
        return [chunk_from(row) for row in rows]


def read_lines(path: Path) -> list[Any]:
    """The values of a file of one JSON value a line, parsed as one JSON array: twice as fast as a line at a time
    (a line break inside a value is escaped, so each one ends a value)."""
    with open(path, encoding="utf-8") as lines:
        text = lines.read().rstrip("\n")
    with no_collection():
        return json.loads(f"[{text.replace(chr(10), ',')}]") if text else []


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """Python's cyclic garbage collector paused: while many objects are made at once (100,000 documents' entries,
    a segment's chunks), it would otherwise walk the growing heap again and again (a third of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def document_entry(row: dict[str, Any]) -> DocumentEntry:
    return DocumentEntry(**{**row, "pages": tuple(row.get("pages", ()))})


def chunk_from(row: dict[str, Any]) -> Chunk:
    row["sentences"] = tuple(tuple(s) for s in row["sentences"])
    return Chunk(**row)


def check_compatible(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Refuse an index built with another format, model, chunker or engine."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexOutdated(
            f"the index in folder {folder} was made by another version of rag (format {manifest.get('format')}, "
            f"not {FORMAT_VERSION}); {REBUILD}"
        )
    model, wanted = ({"precision": "fp32", **m["model"]} for m in (manifest, expected))  # fp32 before it was noted
    if model["precision"] != wanted["precision"]:
        raise IndexMismatch(
            f"the index in folder {folder} was built with precision {model['precision']}, not "
            f"{wanted['precision']}; set RAG_PRECISION={model['precision']} to use it, or {REBUILD} with precision "
            f"{wanted['precision']}"
        )
    if model != wanted:
        raise IndexMismatch(f"the index in folder {folder} was built with model {model}, not {wanted}; {REBUILD}")
    chunker = manifest.get("chunker") or {}
    if chunker != expected["chunker"]:
        wanted_chunker = expected["chunker"]
        changed = ", ".join(f"{k} {chunker.get(k)} -> {v}" for k, v in wanted_chunker.items() if chunker.get(k) != v)
        raise IndexOutdated(f"the index in folder {folder} splits or reads text another way ({changed}); {REBUILD}")
    built = {k: manifest.get("engine", {}).get(k) for k in expected["engine"]}
    if built != expected["engine"]:
        raise IndexMismatch(
            f"the index in folder {folder} was built with engine {built}, not {expected['engine']}; {REBUILD} with "
            "these settings, or set RAG_ENGINE (and RAG_MILVUS_URI, RAG_COLLECTION) to what it was built with"
        )
