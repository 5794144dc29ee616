"""Building the index, incrementally: only added or changed documents are chunked and embedded.

Documents whose content hash is unchanged keep their chunks and vectors from the previous index; removed ones are
dropped. One build runs at a time per index folder (an advisory file lock); the previous index keeps serving until
the new one is saved complete. With the local engine that holds for the whole index; Milvus is written in place,
document by document, so a server sees each new document as soon as it is written, and a full build empties the
collection first (docs/scaling.md, "Limits today").
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Collection
from typing import Any

import numpy as np

from ..config import Settings
from ..embedding import Encoder
from ..engine_types import engine_type
from ..engines import Engine, Update, build_engine, engine_settings, opener
from ..errors import BadRequest, IndexCorrupt, IndexMismatch, IndexMissing, OtherWords
from ..readers import EXTRACTION_VERSION
from ..readers.documents import Cached, Document
from ..readers.sandbox import pool_for
from ..text.chunking import Chunk
from ..text.sentences import VERSION as TABLE_VERSION
from ..text.sentences import SentenceTable
from . import segments, store, updates
from .lock import build_lock
from .progress import Progress
from .report import BuildReport
from .scan import scan
from .shards import Shard, check_shard
from .stages import Split, embed_documents, split_documents, stopper
from .texts import Texts

SPLITTER = "pysbd-0.3"
CHUNKER_VERSION = 7  # bump when sentence or chunk boundaries, or chunk vectors, change: old indexes are rebuilt
CHUNK_VECTORS = "mean-of-sentences"


def index_settings(settings: Settings, encoder: Encoder) -> dict[str, Any]:
    """What an index must have been built with to be used with these settings."""
    return {
        "model": {"name": settings.model, "dimension": encoder.dimension, "precision": encoder.precision},
        "chunker": {
            "splitter": SPLITTER,
            "version": CHUNKER_VERSION,
            "chunk_words": settings.chunk_words,
            "overlap": settings.chunk_overlap,
            "chunk_vectors": CHUNK_VECTORS,
            "extraction": EXTRACTION_VERSION,  # what the readers make of a file's bytes (rag/readers)
        },
        "text": text_settings(settings),
        "engine": engine_settings(settings),
    }


def encoder_for(settings: Settings) -> Encoder:
    """The encoder for the index in `settings.index`, at `Settings.precision_for` the precision that index was built
    with (for precision auto; none when there is no readable index yet)."""
    recorded = None
    if settings.precision == "auto":
        with contextlib.suppress(IndexMissing, IndexCorrupt, OSError):  # a new index, or one reported or rebuilt later
            manifest = store.read_manifest(settings.index, documents=False)  # its model only
            recorded = manifest["model"].get("precision", "fp32")  # fp32 before it was noted
    return Encoder(settings.model, settings.backend, settings.precision_for(recorded))


def load(settings: Settings, encoder: Encoder, lazy: bool = False, other_words: bool = False) -> store.Index:
    """The index in `settings.index`, checked against these settings, with its engine opened (`lazy`,
    `other_words`: see `store.load`)."""
    return store.load(settings.index, index_settings(settings, encoder), opener(settings), lazy, other_words)


def text_settings(settings: Settings) -> dict[str, Any]:
    """The word rules an index's lexical side and sentence table are made by. Changing them rebuilds the index:
    every segment of the local engine shares one vocabulary made by them, and Milvus holds terms made by them."""
    return {"language": settings.model_language, "sentence_table": TABLE_VERSION}


def build(
    settings: Settings,
    encoder: Encoder,
    *,
    full: bool = False,
    progress: Progress = False,
    shard: Shard | None = None,
    cancel: threading.Event | None = None,
    merge: bool = True,
    loaded: store.Index | None = None,
    paths: Collection[str] | None = None,
) -> tuple[store.Index, BuildReport]:
    """Bring the index up to date with the corpus and save it; returns the new index and what changed.

    Args:
        progress: True draws bars on stderr, a callable gets (stage, done, total) (`progress.py`); False: quiet.
        shard: (i, n): index only the i-th of n shares of the documents into a shared engine (`shards.py`).
        cancel: once set, the build stops at once while a file is read (its reader process is killed), else at its
            next window of text or batch of sentences, and raises `Cancelled`; nothing is written, the index on
            disk is untouched.
        merge: run the merges the local engine's segments call for now (`updates.merge`); False leaves them to the
            caller (the server runs them after it serves the update).
        loaded: the index this process serves: an update starts from it instead of reading the index from disk,
            when it is the one on disk (the server's rebuilds; its cost is then that of what changed).
        paths: the corpus paths (files or folders) that changed, when the caller knows (the server's watcher,
            uploads and removals): only they are looked at (`scan.py`; a segmented index only, else all are).
    """
    stop = stopper(cancel)
    started = time.perf_counter()
    check_shard(settings, shard)
    pool_for(settings).warm()  # the reader processes start while the previous index is loaded and files hashed
    with build_lock(settings.index):
        previous, rebuilt = (None, "--full was asked for") if full else _reusable(settings, encoder, loaded)
        if previous is not None and previous.manifest.get("shard") != (list(shard) if shard else None):
            raise BadRequest(
                f"the index in folder {settings.index} holds share {previous.manifest.get('shard')} of the documents, "
                f"not {list(shard) if shard else 'all of them'}; a new split starts from new index folders"
            )
        scanned = scan(settings, previous, _cached(previous), progress, shard, cancel, paths)
        docs, report, skipped = scanned.docs, scanned.report, scanned.skipped
        report.rebuilt = rebuilt
        kept = set(report.unchanged)
        fresh = split_documents([d for d in docs if d.source not in kept], settings, progress, stop)
        vectors = embed_documents(
            encoder, [d for d in docs if d.source in fresh], fresh, settings.batch_size, progress, stop
        )
        other_words = previous is not None and previous.manifest.get("text") != text_settings(settings)
        if other_words:  # every document is written again, its terms made by the new rules: the scan's too
            docs = _with_unchanged(docs, report.unchanged, previous)  # type: ignore[arg-type]
        if engine_type(settings.engine).segments and not other_words:
            base = {**index_settings(settings, encoder), "skipped": skipped}
            # A file touched but not changed (new time, same content) is written again with its chunks and vectors.
            touched = {
                d.source for d in docs if d.source in kept and (d.size, d.mtime_ns) != _stamp(previous, d.source)
            }
            gone = frozenset(report.removed) | frozenset(report.changed) | frozenset(touched)
            index: store.Index = updates.save_build(settings, base, previous, docs, fresh, vectors, gone, touched)
        else:
            index = _save_other(settings, encoder, previous, docs, fresh, vectors, report, skipped, shard)
    report.chunks_embedded = sum(len(c) for s, c in fresh.values())
    report.sentences_embedded = sum(len(s) for s, c in fresh.values())
    report.chunks = index.engine.count() if isinstance(index, store.SegmentedIndex) else index.chunk_count
    if merge and isinstance(index, store.SegmentedIndex):  # each merge takes the lock again
        index = updates.merge(settings, index)
    report.seconds = time.perf_counter() - started
    return index, report


def _save_other(
    settings: Settings,
    encoder: Encoder,
    previous: store.Index | None,
    docs: list[Document],
    fresh: dict[str, Split],
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
    report: BuildReport,
    skipped: dict[str, dict[str, Any]],
    shard: Shard | None,
) -> store.Index:
    """Save a build for an engine other than the local one (Milvus): the whole catalog is written anew."""
    parts = _Parts()
    for doc in docs:
        if doc.source in fresh:
            parts.add(doc, len(fresh[doc.source][0]), fresh[doc.source][1])
        else:
            parts.reuse(doc, previous, previous.entry(doc.source))  # type: ignore[union-attr, arg-type]
    manifest = store.build_manifest(index_settings(settings, encoder), parts.documents, len(parts.chunks), skipped)
    if shard is not None:
        manifest["shard"] = list(shard)
    removed = frozenset(report.removed)
    engine = previous.engine if previous else None
    index = assemble(
        settings, manifest, parts.documents, parts.chunks, parts.texts, vectors, removed, engine, shard is not None
    )
    store.save(index, settings.index)
    return index


def assemble(
    settings: Settings,
    manifest: dict[str, Any],
    documents: list[store.DocumentEntry],
    chunks: list[Chunk],
    texts: Texts,
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
    removed: frozenset[str] = frozenset(),
    previous: Engine | None = None,
    shared: bool = False,
) -> store.Index:
    """The index of `documents`: its sentence table, and its engine brought up to date (`previous`, or a new
    one) with the vectors of the documents embedded now (`vectors`: source -> chunk and sentence vectors).
    `shared`: the engine holds other shards' documents too, so a new one is never emptied first. Records the
    engine in `manifest`."""
    words = store.words_of(manifest)
    table = SentenceTable.build(store.sentence_texts(documents, chunks), words)
    if engine_type(settings.engine).segments:  # one segment (`segmented.py`), the others' vectors from `previous`
        reused = {d.source: previous.document_vectors(d.source) for d in documents if d.source not in vectors}  # type: ignore[union-attr]
        return store.segmented.single(manifest, documents, chunks, table, texts, {**vectors, **reused})
    dimension = int(manifest["model"]["dimension"])
    update = Update(chunks, table, store.first_rows(documents), vectors, removed, dimension, words)
    engine = build_engine(update, previous, settings, words, shared)
    manifest["engine"] = {**engine.describe(), **manifest["engine"]}
    return store.Index(manifest, documents, chunks, table, texts, engine)


def _reusable(
    settings: Settings, encoder: Encoder, loaded: store.Index | None = None
) -> tuple[store.Index | None, str | None]:
    """The current index if its vectors can be reused, or None and why not (None when there is no index):
    `loaded` when it is the one on disk (a segmented index, by its manifest's id), else the one read from disk."""
    try:
        if isinstance(loaded, store.SegmentedIndex) and loaded.manifest.get("id") == segments.saved_id(settings.index):
            store.check_compatible(loaded.manifest, index_settings(settings, encoder), settings.index)
            return loaded, None
        return load(settings, encoder, lazy=True), None  # an update reads what it changes, not the whole index
    except IndexMissing:
        return None, None
    except OtherWords as exc:  # its terms are made again; its vectors are as good as ever
        with contextlib.suppress(IndexMismatch, IndexCorrupt):
            return load(settings, encoder, lazy=True, other_words=True), str(exc).split(";")[0]
        return None, str(exc).split(";")[0]
    except (IndexMismatch, IndexCorrupt) as exc:  # an engine that cannot be reached is no reason to rebuild
        return None, str(exc).split(";")[0]


def _with_unchanged(docs: list[Document], unchanged: list[str], previous: store.Index) -> list[Document]:
    """`docs` and the unchanged documents the scan did not read (their size and time as recorded), as `previous`
    holds them, in corpus order."""
    read = {d.source for d in docs}
    known = _cached(previous)
    held = [known(s, previous.entry(s).sha256) for s in unchanged if s not in read]  # type: ignore[misc, union-attr]
    return sorted(docs + held, key=lambda d: d.source.split("/"))  # type: ignore[operator]


def _stamp(previous: store.Index | None, source: str) -> tuple[int, int] | None:
    entry = previous.entry(source) if previous is not None else None
    return None if entry is None else (entry.size, entry.mtime_ns)


def _cached(previous: store.Index | None) -> Cached | None:
    """Documents of the previous index by content hash, so an unchanged file is not extracted again."""
    if previous is None:
        return None

    def known(source: str, sha256: str) -> Document | None:
        entry = previous.entry(source)
        if entry is None or entry.sha256 != sha256:
            return None
        text = previous.texts.get(source)
        return Document(source, entry.title, text, sha256, entry.size, entry.mtime_ns, entry.format, entry.pages)

    return known


class _Parts:
    """Documents and chunks of the new index, in corpus order, from new work or the previous index."""

    def __init__(self) -> None:
        self.documents: list[store.DocumentEntry] = []
        self.chunks: list[Chunk] = []
        self.texts = Texts()

    def add(self, doc: Document, sentences: int, chunks: list[Chunk]) -> None:
        entry = store.DocumentEntry(
            doc.source, doc.title, doc.sha256, doc.size, doc.mtime_ns, len(chunks), sentences, doc.format, doc.pages
        )
        self.documents.append(entry)
        self.texts.add(doc.source, doc.text)
        self.chunks += chunks

    def reuse(self, doc: Document, previous: store.Index, entry: store.DocumentEntry) -> None:
        first = previous.first_chunk(entry.source)
        self.add(doc, entry.sentences, previous.chunks[first : first + entry.chunks])
