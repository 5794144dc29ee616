"""A loaded index of the local engine, in segments (`segments.py`), and the changes that make a new one from it:
an update adds a segment and marks removed documents dead (`updated`), a merge joins segments (`merge_step`).
Each new index shares the unchanged segments with the one it came from, so it costs what changed: nothing of
the others is read, copied or written again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.local import LocalEngine
from ..text.chunking import Chunk
from ..text.sentences import SentenceTable
from ..text.vocabulary import Vocabulary
from . import segments
from .index import _GENERATIONS, FORMAT_VERSION, DocumentEntry, Index, no_collection, words_of
from .segments import Stored
from .texts import DocumentText, Texts


class SegmentTexts:
    """The texts of an index's live documents, each read from the segment that holds it."""

    def __init__(self, index: SegmentedIndex) -> None:
        self._index = index

    def __contains__(self, source: str) -> bool:
        return self._index.holder(source) is not None

    def _texts(self, source: str) -> Texts:
        i = self._index.holder(source)
        if i is None:
            raise KeyError(source)
        return self._index.stored[i].texts

    def get(self, source: str) -> str:
        return self._texts(source).get(source)

    def json_pieces(self, source: str, size: int) -> Iterator[bytes]:
        return self._texts(source).json_pieces(source, size)


class SegmentedIndex(Index):
    """An index whose chunks live in segments, oldest first, each with the sources removed from it since.

    Making one costs what its segments number, not what they hold: the list of documents, the chunks and the
    sentence table of the whole index are made when first asked for (the server's pages, a full scan), and a
    document is looked up in the segments, newest first."""

    def __init__(
        self,
        manifest: dict[str, Any],
        stored: list[Stored],
        dead: list[frozenset[str]],
        engine: LocalEngine,
        vocabulary: Vocabulary,
    ) -> None:
        self.stored, self.dead = stored, dead
        self.manifest, self.engine, self.vocabulary = manifest, engine, vocabulary
        self.texts = SegmentTexts(self)  # type: ignore[assignment]
        self._chunks, self._table, self._folder = None, None, None
        self._documents: list[DocumentEntry] | None = None
        self._holders: dict[str, int] | None = None
        self._first_chunk: dict[str, int] = {}
        self.generation = next(_GENERATIONS)  # tells this index from any other loaded in this process
        self.words = words_of(manifest)
        engine.vocabulary = vocabulary

    def warm(self) -> None:
        for s in self.stored:
            s.part.contents()

    def holder(self, source: str) -> int | None:
        """The segment that holds the live document `source`, or None (its newest copy is the live one)."""
        if self._holders is not None:
            return self._holders.get(source)
        for i in range(len(self.stored) - 1, -1, -1):
            if source in self.stored[i].entries:
                return None if source in self.dead[i] else i
        return None

    def holders(self) -> dict[str, int]:
        """`holder` of every live document, made in one pass (a scan of the whole corpus asks for each)."""
        if self._holders is None:
            holders: dict[str, int] = {}
            for i, s in enumerate(self.stored):
                holders.update((source, i) for source in s.entries)
            for i, gone in enumerate(self.dead):
                for source in gone:
                    if holders.get(source) == i:
                        del holders[source]
            self._holders = holders
        return self._holders

    def entry(self, source: str) -> DocumentEntry | None:
        i = self.holder(source)
        return None if i is None else self.stored[i].entries[source]

    def title(self, source: str) -> str:
        entry = self.entry(source)
        return entry.title if entry is not None else source.rsplit("/", 1)[-1]

    def document(self, source: str) -> DocumentText:
        entry = self.entry(source)
        if entry is None:
            raise KeyError(source)
        return DocumentText(source, entry.title, entry.format, entry.pages, self.texts.get(source))

    @property
    def documents(self) -> list[DocumentEntry]:  # type: ignore[override]
        """Every live document, in index order (segments in order)."""
        if self._documents is None:
            holders = self.holders()
            self._documents = [d for i, s in enumerate(self.stored) for d in s.documents if holders.get(d.source) == i]
        return self._documents

    @property
    def chunk_count(self) -> int:  # type: ignore[override]
        return self.engine.count()

    def first_chunk(self, source: str) -> int:
        if not self._first_chunk:
            chunk = 0
            for d in self.documents:
                self._first_chunk[d.source], chunk = chunk, chunk + d.chunks
        return self._first_chunk[source]

    @property
    def chunks(self) -> list[Chunk]:
        """Every live chunk, documents in order (built when asked: an update never needs it)."""
        if self._chunks is None:
            self._chunks = [c for source, stored in self._live() for c in _chunks_of(stored, source)]
        return self._chunks

    @property
    def sentence_table(self) -> SentenceTable:
        """Every live sentence's terms, names and flags, rows in document order (built when asked)."""
        if self._table is None:
            spans = [(s.part.table, [s.part.sentence_rows(source)]) for source, s in self._live()]
            self._table = SentenceTable.joined(spans, self.vocabulary.terms, 0)
        return self._table

    def document_chunks(self, source: str) -> list[Chunk]:
        """The chunks of the live document `source`, from the segment that holds it."""
        i = self.holder(source)
        if i is None:
            raise KeyError(source)
        return _chunks_of(self.stored[i], source)

    def _live(self) -> Iterator[tuple[str, Stored]]:
        for d in self.documents:
            yield d.source, self.stored[self.holder(d.source)]  # type: ignore[index]


def _chunks_of(stored: Stored, source: str) -> list[Chunk]:
    rows = stored.part.chunk_rows(source)
    return stored.part.chunks[rows.start : rows.stop]


def manifest_of(base: dict[str, Any], stored: list[Stored], dead: list[frozenset[str]], chunks: int, documents: int):
    """The manifest of an index of `stored` segments: `base` holds the model, chunker, text rules and skipped."""
    return {
        **{k: v for k, v in base.items() if k not in ("documents", "segments", "counts", "built_at")},
        "format": FORMAT_VERSION,
        "id": uuid.uuid4().hex,  # tells a process that holds this index whether it is still the one on disk
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"documents": documents, "chunks": chunks},
        "segments": [segments.record(s, d) for s, d in zip(stored, dead, strict=True)],
    }


def single(
    manifest: dict[str, Any],
    documents: list[DocumentEntry],
    chunks: list[Chunk],
    table: SentenceTable,
    texts: Texts,
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
) -> SegmentedIndex:
    """A new index of one segment (a full build): `table` is made anew, with ids from 0."""
    stored = segments.make(documents, chunks, table, texts, vectors)
    vocabulary = Vocabulary(table.vocabulary, table.doc_freq, len(table), words_of(manifest))
    engine = LocalEngine([stored.part], [frozenset()], table.terms_held)
    return SegmentedIndex(
        manifest_of(manifest, [stored], [frozenset()], len(chunks), len(documents)),
        [stored],
        [frozenset()],
        engine,
        vocabulary,
    )


def load(folder: Path, manifest: dict[str, Any]) -> SegmentedIndex:
    """The index whose manifest is `manifest`, in `folder`; raises OSError, ValueError or KeyError on damage."""
    entries = manifest["segments"]
    with no_collection():  # hundreds of thousands of objects made at once (see `no_collection`)
        stored = [segments.read(folder / segments.FOLDER / e["name"], e) for e in entries]
    dead = [frozenset(e["deleted"]) for e in entries]
    expected = 0
    for s in stored:  # each segment's terms follow the previous segment's
        if s.part.table.first_term != expected:
            raise ValueError(f"segment {s.name} starts its terms at {s.part.table.first_term}, not {expected}")
        expected = s.part.table.terms_held
    vocabulary = segments.vocabulary_of(stored, dead, words_of(manifest))
    index = SegmentedIndex(manifest, stored, dead, LocalEngine([s.part for s in stored], dead, expected), vocabulary)
    if (len(index.documents), index.engine.count()) != tuple(manifest["counts"][k] for k in ("documents", "chunks")):
        raise ValueError(f"the segments in {folder} do not agree with its manifest")
    return index


def updated(
    previous: SegmentedIndex,
    base: dict[str, Any],
    documents: list[DocumentEntry],
    chunks: list[Chunk],
    texts: Texts,
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
    removed: frozenset[str],
) -> tuple[SegmentedIndex, list[Stored]]:
    """`previous` with the new or changed `documents` (their chunks, texts and vectors) as a new segment, and the
    sources `removed` (removed or changed) dead; returns it and the segments to write."""
    vocabulary = previous.vocabulary
    new: list[Stored] = []
    added_terms: list[str] = []
    doc_freq = np.zeros(len(vocabulary), dtype=np.int64)
    doc_freq[: len(vocabulary.doc_freq)] = vocabulary.doc_freq
    sentences = vocabulary.sentences
    if documents:
        table = SentenceTable.build(_sentence_texts(documents, chunks), words_of(base), vocabulary.term_id)
        new.append(segments.make(documents, chunks, table, texts, vectors))
        added_terms = table.vocabulary
        doc_freq = np.concatenate([doc_freq, np.zeros(len(added_terms), dtype=np.int64)]) + table.doc_freq
        sentences += len(table)
    dead = list(previous.dead)
    for i, s in enumerate(previous.stored):
        gone = {source for source in removed if source in s.part.first_row and source not in dead[i]}
        for source in gone:
            rows = s.part.sentence_rows(source)
            df = s.part.table.count_sentences(rows)
            doc_freq[: len(df)] -= df
            sentences -= len(rows)
        dead[i] = dead[i] | gone
    terms = len(vocabulary) + len(added_terms)
    engine = previous.engine.changed(new[0].part if new else None, removed, terms)  # type: ignore[attr-defined]
    stored = previous.stored + new
    dead += [frozenset()] * len(new)
    index = SegmentedIndex(base, stored, dead, engine, vocabulary.extended(added_terms, doc_freq, sentences))
    live = previous.manifest["counts"]["documents"] - sum(previous.holder(s) is not None for s in removed)
    index.manifest = manifest_of(base, stored, dead, engine.count(), live + len(documents))
    return index, new


def merge_step(index: SegmentedIndex, everything: bool = False) -> tuple[SegmentedIndex, list[Stored]] | None:
    """The index with the segments `segments.policy` picks (all of them: `everything`) merged into one, and the
    segment to write; None when there is nothing to merge. Its chunks, sentences, term ids and statistics stay the
    same. A merged segment without a live document is kept all the same: it holds the terms it added, which the
    ids of later segments count on."""
    stored, dead = index.stored, index.dead
    picked = range(0, len(stored)) if everything else segments.policy(stored, dead)
    if picked is None or (everything and len(stored) == 1 and not dead[0]):
        return None
    one = segments.merged(stored[picked.start : picked.stop], dead[picked.start : picked.stop])
    new = [one]
    stored = stored[: picked.start] + new + stored[picked.stop :]
    dead = dead[: picked.start] + [frozenset()] * len(new) + dead[picked.stop :]
    engine = LocalEngine([s.part for s in stored], dead, index.engine.terms, index.engine.stats)  # type: ignore[attr-defined]
    manifest = manifest_of(index.manifest, stored, dead, engine.count(), index.manifest["counts"]["documents"])
    manifest["built_at"] = index.manifest.get("built_at", manifest["built_at"])  # the same documents, merged
    return SegmentedIndex(manifest, stored, dead, engine, index.vocabulary), new


def _sentence_texts(documents: list[DocumentEntry], chunks: list[Chunk]) -> list[str]:
    """The text of every sentence of `documents`, in order, from their chunks."""
    first, row = {}, 0
    for d in documents:
        first[d.source], row = row, row + d.sentences
    texts = [""] * row
    for chunk in chunks:
        for j, (a, b) in enumerate(chunk.sentences):
            texts[first[chunk.source] + chunk.first_sentence + j] = chunk.text[a - chunk.start : b - chunk.start]
    return texts
