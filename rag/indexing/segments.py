"""An index of the local engine as segments: folders written once, never changed, named in the manifest.

    index/manifest.json       the model, chunker, text rules, counts, skipped files, and the segments in order,
                              each with its documents, chunks and sentences, the terms it added to the index's
                              vocabulary, its dense structure, and the sources removed from it since
    index/segments/NAME/      documents.jsonl (its documents' entries), chunks.jsonl, sentence_terms.npz and
                              sentence_vocabulary.json (the terms it added), texts.jsonl and texts.offsets.npy,
                              and the engine's files (`rag/engines/segment.py`)

An update (`segmented.updated`) writes the documents it embedded as a new segment and records the sources it removed or
replaced; nothing else is rewritten. A merge (`merged`) joins consecutive segments into one without their dead
documents; `policy` picks them the way Lucene's log merge policy does. Each change is saved by `save_in_place`:
the new segment folder first (written under a temporary name, then renamed), then the manifest, replaced
atomically, then the folders no manifest names any more are removed. A crash at any point leaves the previous
manifest and every folder it names, or the new ones; the folders a crash left unnamed are removed by the next
build (`clean`). A full build writes a whole new index folder of one segment and swaps it in (`store.save`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.local import DamagedFile, Segment
from ..text.chunking import Chunk
from ..text.sentences import FILE as SENTENCE_TERMS
from ..text.sentences import SentenceTable
from ..text.vocabulary import Vocabulary
from .index import DocumentEntry, Index, first_rows, no_collection, read_chunks, read_lines
from .texts import Texts

FOLDER = "segments"
DOCUMENTS = "documents.jsonl"
MERGE_FACTOR = 10  # Lucene's default: segments of one size level are merged ten at a time
DEAD_SHARE = 0.5  # a segment with more dead chunks than this is rewritten without them


@dataclass
class Stored:
    """A segment as the index knows it: its folder name, every document written in it (removed ones too), their
    texts and the searchable part."""

    name: str
    documents: list[DocumentEntry]
    texts: Texts
    part: Segment

    def __post_init__(self) -> None:
        self.entries = {d.source: d for d in self.documents}


def new_name() -> str:
    """A name no other segment has: the time (so names sort by age) and a random part."""
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def make(
    documents: list[DocumentEntry],
    chunks: list[Chunk],
    table: SentenceTable,
    texts: Texts,
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
) -> Stored:
    """A segment of `documents` (in order), their `chunks` and sentences (`table`), texts and vectors."""
    chunk_vectors = [vectors[d.source][0] for d in documents]
    sentence_vectors = [vectors[d.source][1] for d in documents]
    dimension = next((v.shape[1] for v in chunk_vectors), 0)
    part = Segment.build(
        chunks,
        table,
        first_rows(documents),
        np.vstack(chunk_vectors) if chunk_vectors else np.zeros((0, dimension), np.float32),
        np.vstack(sentence_vectors).astype(np.float16) if sentence_vectors else np.zeros((0, dimension), np.float16),
    )
    return Stored(new_name(), documents, texts, part)


def record(stored: Stored, dead: frozenset[str]) -> dict[str, Any]:
    """What the manifest says of a segment."""
    table = stored.part.table
    return {
        "name": stored.name,
        "documents": len(stored.documents),
        "chunks": stored.part.size,
        "sentences": len(table),
        "first_term": table.first_term,
        "terms": len(table.vocabulary),
        **stored.part.describe(),
        "deleted": sorted(dead),
    }


def write(stored: Stored, folder: Path) -> None:
    """Write `stored` into the empty folder `folder`."""
    with open(folder / DOCUMENTS, "w", encoding="utf-8") as out:
        for d in stored.documents:
            out.write(json.dumps(asdict(d), ensure_ascii=False) + "\n")
    with open(folder / "chunks.jsonl", "w", encoding="utf-8") as out:
        for c in stored.part.chunks:
            out.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    stored.part.table.save(folder)
    stored.texts.save(folder, [d.source for d in stored.documents])
    stored.part.save(folder)


def read(folder: Path, entry: dict[str, Any]) -> Stored:
    """The segment `entry` of a manifest, saved in `folder`, its chunks, vectors and dense structure left on disk
    until used (`Segment.contents`); raises OSError, ValueError or KeyError on damage."""
    current = folder / DOCUMENTS
    try:  # name the very file that is damaged, as the engine's files are named (`DamagedFile`)
        documents = read_documents(current)
        current = folder / SENTENCE_TERMS
        table = SentenceTable.load(folder)
        if not (folder / "chunks.jsonl").is_file():
            raise FileNotFoundError(2, "No such file", str(folder / "chunks.jsonl"))
    except Exception as exc:
        raise DamagedFile(getattr(exc, "filename", None) or current, exc) from exc
    held = (len(documents), sum(d.chunks for d in documents), len(table), table.first_term, len(table.vocabulary))
    if held != tuple(entry[k] for k in ("documents", "chunks", "sentences", "first_term", "terms")):
        raise ValueError(f"the files in {folder} do not agree with the manifest")
    texts = Texts.open(folder, [d.source for d in documents])
    counts = {d.source: d.chunks for d in documents}
    part = Segment.load(folder, entry, lambda: read_chunks(folder), table, first_rows(documents), counts)
    return Stored(entry["name"], documents, texts, part)


def read_documents(path: Path) -> list[DocumentEntry]:
    """The entries of a segment's document list (`DOCUMENTS`), in order."""
    rows = read_lines(path)
    with no_collection():
        for row in rows:  # parsed here, changed in place: `document_entry`'s copy of each costs 0.1 s at 100,000
            row["pages"] = tuple(row.get("pages", ()))
        return [DocumentEntry(**row) for row in rows]


def live_documents(folder: Path, manifest: dict[str, Any]) -> list[DocumentEntry]:
    """The live documents of the index in `folder` whose manifest is `manifest`, in index order, read from its
    segments' document lists alone; raises ValueError when one cannot be read."""
    lists = []
    for entry in manifest["segments"]:
        path = folder / FOLDER / entry["name"] / DOCUMENTS
        try:
            lists.append(read_documents(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    holder: dict[str, int] = {}
    for i, (documents, entry) in enumerate(zip(lists, manifest["segments"], strict=True)):
        gone = set(entry["deleted"])
        holder.update((d.source, i) for d in documents if d.source not in gone)
    return [d for i, documents in enumerate(lists) for d in documents if holder.get(d.source) == i]


def vocabulary_of(stored: list[Stored], dead: list[frozenset[str]], words: Any) -> Vocabulary:
    """The index's vocabulary: the terms each segment added, in order, counted over live sentences."""
    terms = [t for s in stored for t in s.part.table.vocabulary]
    doc_freq = np.zeros(len(terms), dtype=np.int64)
    sentences = 0
    for s, gone in zip(stored, dead, strict=True):
        table = s.part.table
        df = table.doc_freq.astype(np.int64)  # counted when the segment was made
        for source in gone:
            df = df - table.count_sentences(s.part.sentence_rows(source))
        doc_freq[: len(df)] += df
        sentences += len(table) - sum(len(s.part.sentence_rows(source)) for source in gone)
    return Vocabulary(terms, doc_freq, sentences, words)


def policy(stored: list[Stored], dead: list[frozenset[str]]) -> range | None:
    """The consecutive segments to merge next, or None: the oldest run of `MERGE_FACTOR` segments of one size level
    (chunks, in powers of `MERGE_FACTOR`), as Lucene's log merge policy picks them, else a segment whose chunks are
    mostly dead. A segment left without chunks (kept for the terms it added) is merged first with the segments after
    it up to a small one (costing next to nothing), and otherwise counts as of the level of the segment after it,
    so that none is left behind."""
    sizes = [s.part.size for s in stored]
    levels = [int(math.log(max(n, 1), MERGE_FACTOR)) for n in sizes]
    for i in range(len(sizes) - 1):  # cheap first: segments without chunks, with those after them up to a small one
        if sizes[i] == 0 and (sizes[i + 1] == 0 or levels[i + 1] <= 1):
            j = i + 1
            while j + 1 < len(sizes) and sizes[j] == 0 and (sizes[j + 1] == 0 or levels[j + 1] <= 1):
                j += 1
            return range(i, j + 1)
    for i in range(len(levels) - 2, -1, -1):
        if sizes[i] == 0:
            levels[i] = levels[i + 1]
    start = 0
    for i in range(1, len(levels) + 1):
        if i == len(levels) or levels[i] != levels[start]:
            if i - start >= MERGE_FACTOR:
                return range(start, start + MERGE_FACTOR)
            start = i
    for i, (s, gone) in enumerate(zip(stored, dead, strict=True)):
        removed = sum(len(s.part.chunk_rows(source)) for source in gone)
        if removed and removed > DEAD_SHARE * s.part.size:
            return range(i, i + 1)
    return None


def merged(stored: list[Stored], dead: list[frozenset[str]]) -> Stored:
    """One segment of the live documents of `stored` (consecutive segments), in order: their term ids stay."""
    documents, texts, spans, chunks, vectors = [], Texts(), [], [], {}
    for s, gone in zip(stored, dead, strict=True):
        live = [d for d in s.documents if d.source not in gone]
        documents += live
        spans.append((s.part.table, [s.part.sentence_rows(d.source) for d in live]))
        for d in live:
            texts.add(d.source, s.texts.get(d.source))
            rows = s.part.chunk_rows(d.source)
            chunks += s.part.chunks[rows.start : rows.stop]
            vectors[d.source] = s.part.document_vectors(d.source)
    vocabulary = [t for s in stored for t in s.part.table.vocabulary]
    table = SentenceTable.joined(spans, vocabulary, stored[0].part.table.first_term)
    return make(documents, chunks, table, texts, vectors)


def save_in_place(index: Index, folder: Path, new: list[Stored]) -> None:
    """Write the segments `new` into the index folder `folder`, then its manifest; remove the segment folders the
    manifest no longer names (call while holding the writer lock)."""
    root = folder / FOLDER
    root.mkdir(exist_ok=True)
    renamed: list[Path] = []  # removed again if the manifest that names them is not saved (a full disk)
    try:
        for stored in new:
            tmp = root / f".{stored.name}.tmp"
            tmp.mkdir()
            try:
                write(stored, tmp)
                _fsync_folder(tmp)
                os.rename(tmp, root / stored.name)
                renamed.append(root / stored.name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        _fsync(root)
        manifest = folder / "manifest.json"
        tmp_manifest = folder / f".manifest.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp_manifest.write_text(json.dumps(index.manifest, indent=1, ensure_ascii=False), encoding="utf-8")
            with open(tmp_manifest, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp_manifest, manifest)
        except BaseException:
            tmp_manifest.unlink(missing_ok=True)
            raise
    except BaseException:
        for path in renamed:
            shutil.rmtree(path, ignore_errors=True)
        raise
    _fsync(folder)
    clean(folder, index.manifest, unfinished=False)


def saved_id(folder: Path) -> str | None:
    """The id of the manifest in the index folder `folder` (each save writes a new one), or None."""
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError, AttributeError):
        return None


def clean(folder: Path, manifest: dict[str, Any], unfinished: bool = True) -> None:
    """Remove what the manifest does not name: merged-away segments, and (`unfinished`: only under the writer
    lock, when no other build can be writing them) what a crashed update left half-written."""
    named = {s["name"] for s in manifest.get("segments", [])}
    root = folder / FOLDER
    for path in root.iterdir() if root.is_dir() else ():
        if path.name not in named and (unfinished or not path.name.startswith(".")):
            shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(".manifest.*.tmp") if unfinished else ():
        path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync(folder)


def _fsync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
