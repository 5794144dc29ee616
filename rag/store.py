"""The index on disk: FAISS vectors, BM25, the chunk table, sentence vectors and a manifest; atomic save and load.

An index folder holds:

    manifest.json         format version, model and dimension, chunker settings, documents with content hashes
    chunks.jsonl          one chunk a line: id, source, start, end, text, sentence spans
    dense.faiss           chunk vectors (normalized; inner product = cosine)
    sentences.npy         one vector per sentence, for picking the answer sentence without encoding at query time
    lexical/              the bm25s index of the chunk texts

`save` writes a sibling folder, then swaps it into place with two renames; `load` finishes an interrupted swap.
So a crash or Ctrl-C at any moment leaves a complete index (the old or the new one) behind.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .chunking import Chunk
from .errors import IndexCorrupt, IndexMismatch, IndexMissing
from .lexical import LexicalIndex

FORMAT_VERSION = 1
REBUILD = "run `rag index --full` to rebuild it"


@dataclass(frozen=True)
class DocumentEntry:
    source: str
    title: str
    sha256: str
    size: int
    mtime_ns: int
    chunks: int
    sentences: int


@dataclass
class Index:
    """A loaded index; row i of the chunk vectors, the BM25 index and `chunks` is the same chunk."""

    manifest: dict[str, Any]
    documents: list[DocumentEntry]
    chunks: list[Chunk]
    dense: faiss.Index
    sentence_vectors: np.ndarray
    lexical: LexicalIndex

    def __post_init__(self) -> None:
        self._titles = {d.source: d.title for d in self.documents}
        self._sentence_base, self._first_chunk = {}, {}
        sentence, chunk = 0, 0
        for doc in self.documents:
            self._sentence_base[doc.source], self._first_chunk[doc.source] = sentence, chunk
            sentence, chunk = sentence + doc.sentences, chunk + doc.chunks

    def title(self, source: str) -> str:
        return self._titles[source]

    def first_chunk(self, source: str) -> int:
        """Position in `chunks` of the first chunk of document `source`."""
        return self._first_chunk[source]

    def sentence_base(self, source: str) -> int:
        """Row of `sentence_vectors` holding the first sentence of document `source`."""
        return self._sentence_base[source]

    def sentence_rows(self, chunk: Chunk) -> range:
        """Rows of `sentence_vectors` holding the sentences of `chunk`, in order."""
        first = self._sentence_base[chunk.source] + chunk.first_sentence
        return range(first, first + len(chunk.sentences))

    def chunk_vectors(self, rows: Sequence[int]) -> np.ndarray:
        return np.vstack([self.dense.reconstruct(int(r)) for r in rows]) if rows else np.zeros((0, self.dimension))

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])


def build_manifest(
    settings_view: dict[str, Any], documents: list[DocumentEntry], chunks: int, skipped: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`settings_view` holds the model and chunker; `skipped` maps unreadable files to why, size and mtime."""
    return {
        "format": FORMAT_VERSION,
        **settings_view,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"documents": len(documents), "chunks": chunks},
        "documents": [asdict(d) for d in documents],
        "skipped": skipped,
    }


def assemble(
    manifest: dict[str, Any],
    documents: list[DocumentEntry],
    chunks: list[Chunk],
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
) -> Index:
    """Build the searchable structures from chunks and their vectors."""
    dense = faiss.IndexFlatIP(int(manifest["model"]["dimension"]))
    if len(chunk_vectors):
        dense.add(np.ascontiguousarray(chunk_vectors, dtype=np.float32))
    lexical = LexicalIndex.build([c.text for c in chunks])
    return Index(manifest, documents, chunks, dense, sentence_vectors.astype(np.float32), lexical)


def save(index: Index, folder: Path) -> None:
    """Write `index` to `folder`, replacing what is there only once the new copy is complete."""
    folder = folder.absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.new-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as out:
        for c in index.chunks:
            out.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    faiss.write_index(index.dense, str(tmp / "dense.faiss"))
    np.save(tmp / "sentences.npy", index.sentence_vectors)
    (tmp / "lexical").mkdir()
    index.lexical.save(tmp / "lexical")
    # The manifest goes last: a folder with a manifest is a complete one.
    (tmp / "manifest.json").write_text(json.dumps(index.manifest, indent=1, ensure_ascii=False))
    _fsync_tree(tmp)
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the index in `folder`; raises `IndexMissing` or `IndexCorrupt`."""
    _recover(folder)
    path = folder / "manifest.json"
    if not path.exists():
        raise IndexMissing(f"no index in {folder}; run `rag index` to build it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        int(manifest["model"]["dimension"])
        manifest["documents"] = [asdict(DocumentEntry(**d)) for d in manifest["documents"]]
        return manifest
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorrupt(f"{path} is damaged ({exc}); {REBUILD}") from None


def check_compatible(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Refuse an index built with another format, model or chunker."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(f"the index in {folder} has format {manifest.get('format')}, not {FORMAT_VERSION}; {REBUILD}")
    for key in ("model", "chunker"):
        if manifest.get(key) != expected[key]:
            raise IndexMismatch(
                f"the index in {folder} was built with {key} {manifest.get(key)}, not {expected[key]}; {REBUILD}"
            )


def load(folder: Path, expected: dict[str, Any]) -> Index:
    """Load and check the index in `folder`; `expected` holds the model and chunker settings in use."""
    manifest = read_manifest(folder)
    check_compatible(manifest, expected, folder)
    documents = [DocumentEntry(**d) for d in manifest["documents"]]  # checked by read_manifest
    current = folder / "chunks.jsonl"
    try:
        with open(current, encoding="utf-8") as lines:
            chunks = [_chunk(json.loads(line)) for line in lines]
        current = folder / "dense.faiss"
        dense = faiss.read_index(str(current))
        current = folder / "sentences.npy"
        sentence_vectors = np.load(current)
        current = folder / "lexical"
        lexical = LexicalIndex.load(current)
    except Exception as exc:  # any damage to any file means the same thing: rebuild
        raise IndexCorrupt(f"{current} is damaged or missing ({type(exc).__name__}); {REBUILD}") from None
    counts = (dense.ntotal, lexical.size, sum(d.chunks for d in documents))
    if counts != (len(chunks),) * 3 or len(sentence_vectors) != sum(d.sentences for d in documents):
        raise IndexCorrupt(f"the files in {folder} do not agree with each other; {REBUILD}")
    return Index(manifest, documents, chunks, dense, sentence_vectors, lexical)


def _chunk(row: dict[str, Any]) -> Chunk:
    row["sentences"] = tuple(tuple(s) for s in row["sentences"])
    return Chunk(**row)


def _recover(folder: Path) -> None:
    """Finish a swap that a crash interrupted between its two renames."""
    if folder.exists():
        return
    leftovers = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if leftovers and (leftovers[-1] / "manifest.json").exists():
        os.rename(leftovers[-1], folder)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
