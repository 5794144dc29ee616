"""Saving a build of the local engine as segments: an update adds one segment (`segmented.updated`), a full build
writes one (`segmented.single`); merges follow (`merge`), which with `everything` joins every segment into one
(`rag index --compact`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import Settings
from ..readers.documents import Document
from ..text.sentences import SentenceTable
from . import segmented, segments, store
from .index import DocumentEntry, words_of
from .lock import build_lock
from .segmented import SegmentedIndex
from .stages import Split
from .texts import Texts


def save_build(
    settings: Settings,
    base: dict[str, Any],
    previous: store.Index | None,
    docs: list[Document],
    fresh: dict[str, Split],
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
    removed: frozenset[str],
    touched: set[str] | None = None,
) -> SegmentedIndex:
    """Save what a build made (call while holding the build lock): the documents embedded now (`fresh`, with their
    `vectors`) as a new segment of `previous` with the sources `removed` (removed or changed) dead, or, without a
    segmented previous index, every document as one segment. `base`: the manifest's settings and skipped files.
    `touched`: documents of `previous` read again with the same content and a new size or time, written again
    into the new segment with their chunks and vectors (so that their new time is recorded), nothing embedded."""
    entries, chunks, texts = [], [], Texts()
    vectors = dict(vectors)
    for doc in docs:
        if doc.source in fresh:
            sentences, doc_chunks = fresh[doc.source]
            entries.append(_entry(doc, len(sentences), len(doc_chunks)))
            chunks += doc_chunks
            texts.add(doc.source, doc.text)
        elif touched and doc.source in touched and isinstance(previous, SegmentedIndex):
            entry = previous.entry(doc.source)
            assert entry is not None
            entries.append(_entry(doc, entry.sentences, entry.chunks))
            chunks += previous.document_chunks(doc.source)
            texts.add(doc.source, doc.text)
            vectors[doc.source] = previous.engine.document_vectors(doc.source)  # type: ignore[attr-defined]
    if isinstance(previous, SegmentedIndex):
        index, new = segmented.updated(previous, base, entries, chunks, texts, vectors, removed)
        store.save_segments(index, settings.index, new)
        return index
    table = SentenceTable.build(store.sentence_texts(entries, chunks), words_of(base))
    index = segmented.single(base, entries, chunks, table, texts, vectors)
    store.save(index, settings.index)
    return index


def merge(settings: Settings, index: SegmentedIndex, everything: bool = False) -> SegmentedIndex:
    """`index` (the one saved in `settings.index`) with its segments merged as the merge policy says (all into one:
    `everything`), each merge saved as it is made; takes the build lock for each."""
    while True:
        with build_lock(settings.index):
            if index.manifest.get("id") != segments.saved_id(settings.index):
                return index  # another process changed the index meanwhile: its next build merges
            step = segmented.merge_step(index, everything)
            if step is None:
                return index
            index, new = step
            store.save_segments(index, settings.index, new)
        if everything:
            return index


def _entry(doc: Document, sentences: int, chunks: int) -> DocumentEntry:
    return DocumentEntry(
        doc.source, doc.title, doc.sha256, doc.size, doc.mtime_ns, chunks, sentences, doc.format, doc.pages
    )
