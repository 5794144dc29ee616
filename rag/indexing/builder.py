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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..embedding import Encoder
from ..engines import Engine, Update, build_engine, engine_settings, opener
from ..errors import BadRequest, CorpusError, IndexCorrupt, IndexMismatch, IndexMissing
from ..readers import EXTRACTION_VERSION, READERS, Unreadable, documents
from ..readers.documents import Cached, Document, Skipped, content_hash, file_stamp, list_files, read_corpus
from ..readers.sandbox import pool_for
from ..text.chunking import Chunk
from ..text.sentences import VERSION as TABLE_VERSION
from ..text.sentences import SentenceTable
from . import store, swap
from .progress import Progress, bar
from .report import BuildReport
from .shards import Shard, check_shard, in_shard
from .stages import embed_documents, split_documents, stopper
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
            recorded = store.read_manifest(settings.index)["model"].get("precision", "fp32")  # fp32 before it was noted
    return Encoder(settings.model, settings.backend, settings.precision_for(recorded))


def load(settings: Settings, encoder: Encoder) -> store.Index:
    """The index in `settings.index`, checked against these settings, with its engine opened."""
    return store.load(settings.index, index_settings(settings, encoder), opener(settings))


def text_settings(settings: Settings) -> dict[str, Any]:
    """The word rules an index's lexical side and sentence table are made by (changing them re-embeds nothing with
    the local engine; Milvus holds terms made by them, so its index is built again)."""
    return {"language": settings.model_language, "sentence_table": TABLE_VERSION}


def build(
    settings: Settings,
    encoder: Encoder,
    *,
    full: bool = False,
    progress: Progress = False,
    shard: Shard | None = None,
    cancel: threading.Event | None = None,
) -> tuple[store.Index, BuildReport]:
    """Bring the index up to date with the corpus and save it; returns the new index and what changed.

    Args:
        progress: True draws bars on stderr, a callable gets (stage, done, total) (`progress.py`); False: quiet.
        shard: (i, n): index only the i-th of n shares of the documents into a shared engine (`shards.py`).
        cancel: once set, the build stops at once while a file is read (its reader process is killed), else at its
            next window of text or batch of sentences, and raises `Cancelled`; nothing is written, the index on
            disk is untouched.
    """
    stop = stopper(cancel)
    started = time.perf_counter()
    check_shard(settings, shard)
    pool_for(settings).warm()  # the reader processes start while the previous index is loaded and files hashed
    with build_lock(settings.index):
        previous, rebuilt = (None, "--full was asked for") if full else _reusable(settings, encoder)
        if previous is not None and previous.manifest.get("shard") != (list(shard) if shard else None):
            raise BadRequest(
                f"the index in folder {settings.index} holds share {previous.manifest.get('shard')} of the documents, "
                f"not {list(shard) if shard else 'all of them'}; a new split starts from new index folders"
            )
        old = {d.source: d for d in previous.documents} if previous else {}
        docs, report = _read(settings, _cached(previous), progress, shard, cancel)
        report.rebuilt = rebuilt
        for doc in docs:
            before = old.get(doc.source)
            unchanged = before is not None and before.sha256 == doc.sha256
            (report.unchanged if unchanged else report.changed if before else report.added).append(doc.source)
        kept = set(report.unchanged)
        fresh = split_documents([d for d in docs if d.source not in kept], settings, progress, stop)
        report.removed = sorted(set(old) - {d.source for d in docs})
        vectors = embed_documents(
            encoder, [d for d in docs if d.source in fresh], fresh, settings.batch_size, progress, stop
        )
        parts = _Parts()
        for doc in docs:
            if doc.source in fresh:
                parts.add(doc, len(fresh[doc.source][0]), fresh[doc.source][1])
            else:
                parts.reuse(doc, previous, old[doc.source])  # type: ignore[arg-type]
        skipped = {s.source: {"reason": s.reason, "size": s.size, "mtime_ns": s.mtime_ns} for s in report.skipped}
        manifest = store.build_manifest(index_settings(settings, encoder), parts.documents, len(parts.chunks), skipped)
        if shard is not None:
            manifest["shard"] = list(shard)
        removed = frozenset(report.removed)
        engine = previous.engine if previous else None
        index = assemble(
            settings, manifest, parts.documents, parts.chunks, parts.texts, vectors, removed, engine, shard is not None
        )
        store.save(index, settings.index)
    report.chunks_embedded = sum(len(c) for s, c in fresh.values())
    report.sentences_embedded = sum(len(s) for s, c in fresh.values())
    report.chunks = len(parts.chunks)
    report.seconds = time.perf_counter() - started
    return index, report


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
    dimension = int(manifest["model"]["dimension"])
    update = Update(chunks, table, store.first_rows(documents), vectors, removed, dimension, words)
    engine = build_engine(update, previous, settings, words, shared)
    manifest["engine"] = {**engine.describe(), **manifest["engine"]}
    return store.Index(manifest, documents, chunks, table, texts, engine)


def is_stale(settings: Settings, manifest: dict[str, Any]) -> bool:
    """Whether the corpus differs from what `manifest` was built from (size and mtime first, hashes if needed).

    A file skipped last time counts as changed when its size or modification time did: it may be readable now.
    """
    if manifest.get("text") != text_settings(settings):
        return True  # other word rules: the lexical side and sentence table are made anew (nothing is re-embedded)
    known = {d["source"]: d for d in manifest["documents"]}
    skipped = manifest.get("skipped", {})
    current = {p.relative_to(settings.corpus).as_posix(): p for p in list_files(settings.corpus)}
    if set(current) - set(known) - set(skipped) or set(known) - set(current):
        return True
    for source, path in current.items():
        stamp = file_stamp(path)
        if source in skipped:
            if stamp != (skipped[source]["size"], skipped[source]["mtime_ns"]):
                return True
        elif stamp != (known[source]["size"], known[source]["mtime_ns"]):
            try:  # read as indexing reads it: a link that now leads out of the corpus counts as changed
                data, _ = documents.read_corpus_file(settings.corpus, path)
            except Unreadable:
                return True
            if content_hash(data) != known[source]["sha256"]:
                return True
    return False


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold the index folder's writer lock for one build, and clear what killed builds left behind: only when the
    lock is held (it cannot be when its file cannot be created), as only then is no other build at work."""
    with swap.writer_lock(folder) as mine:
        if mine:
            swap.clean(folder.absolute())
        yield


def _reusable(settings: Settings, encoder: Encoder) -> tuple[store.Index | None, str | None]:
    """The current index if its vectors can be reused, or None and why not (None when there is no index)."""
    try:
        return load(settings, encoder), None
    except IndexMissing:
        return None, None
    except (IndexMismatch, IndexCorrupt) as exc:  # an engine that cannot be reached is no reason to rebuild
        return None, str(exc).split(";")[0]


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


def _read(
    settings: Settings,
    cached: Cached | None,
    progress: Progress,
    shard: Shard | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[Document], BuildReport]:
    corpus = settings.corpus
    if not corpus.is_dir():
        raise CorpusError(f"the corpus folder {corpus} does not exist; create it or pass --corpus DIR")
    report = BuildReport()
    docs = []
    files = [f for f in list_files(corpus) if shard is None or in_shard(f.relative_to(corpus).as_posix(), shard)]
    with bar(progress, "reading", len(files), unit="file") as shown:
        for item in read_corpus(corpus, settings.max_file_bytes, cached, files, pool_for(settings), cancel):
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                docs.append(item)
                if item.note:
                    report.cut.append(Skipped(item.source, item.note))
            shown.update()
    if not docs and shard is None:  # a share of a small corpus may hold nothing
        raise CorpusError(
            f"no readable documents ({', '.join(sorted(READERS))}) in {corpus}; add some and run `rag index`"
        )
    return docs, report


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
