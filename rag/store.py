"""The index on disk: FAISS vectors, BM25, the chunk table, sentence vectors and a manifest; atomic save and load.

An index folder holds:

    manifest.json         format version, model and dimension, chunker settings, dense structure, documents
                          with content hashes
    chunks.jsonl          one chunk a line: id, source, start, end, text, sentence spans
    vectors.npy           chunk vectors (float32, normalized: inner product = cosine), memory-mapped when loaded
    dense.faiss           the approximate (HNSW) structure over them, for large indexes only (see dense.py)
    sentences.npy         one vector per sentence (float16), to pick the answer sentence without encoding at
                          query time
    sentence_terms.npz    each sentence's terms in order (ids), which are names, its flags (holds a date, a
                          quantity; is a title line) and each term's sentence count (sentences.py)
    sentence_vocabulary.json  the terms those ids stand for
    lexical/              the bm25s index of the chunk texts
    texts.jsonl           each document's text as its reader extracted it, which every offset refers to, and
    texts.offsets.npy     where each document's line starts (texts.py)

`save` writes a sibling folder, then swaps it into place with two renames (`swap.py`); a reader that finds the
folder missing reads the complete copy the swap left. So a crash or Ctrl-C at any moment leaves a complete index
(the old or the new one) behind.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from . import dense, sentences, swap
from . import texts as texts_file
from .chunking import Chunk
from .errors import IndexCorrupt, IndexMismatch, IndexMissing, NotFound
from .lexical import LexicalIndex
from .sentences import SentenceTable
from .texts import DocumentText, Texts
from .words import Words, words_for

FORMAT_VERSION = 4  # 4: document texts kept with the index, formats and pages
FLOAT32_SENTENCES = 2_000_000  # sentence vectors held as float32 in memory up to this many (3 GB)
_GENERATIONS = itertools.count(1)
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
    format: str = "text"
    pages: tuple[int, ...] = ()  # offset in the text where each page starts, for paged formats (PDF)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that holds `offset`, or None when the document has no pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None


@dataclass
class Index:
    """A loaded index; row i of the chunk vectors, the BM25 index and `chunks` is the same chunk."""

    manifest: dict[str, Any]
    documents: list[DocumentEntry]
    chunks: list[Chunk]
    vectors: np.ndarray  # chunk vectors, row i = chunk i
    dense: faiss.Index
    sentence_vectors: np.ndarray
    lexical: LexicalIndex
    sentence_table: SentenceTable
    texts: Texts

    def __post_init__(self) -> None:
        self.generation = next(_GENERATIONS)  # tells this index from any other loaded in this process
        # Plain arrays (a memmap's indexing costs microseconds of Python a call; the data stays mapped).
        self.vectors = np.asarray(self.vectors)
        # float16 on disk halves its size; in memory float32 saves a conversion per question, while it is small.
        dtype = np.float32 if len(self.sentence_vectors) <= FLOAT32_SENTENCES else None
        self.sentence_vectors = np.asarray(self.sentence_vectors, dtype=dtype)
        self._titles = {d.source: d.title for d in self.documents}
        self._entries = {d.source: d for d in self.documents}
        self.words = self.lexical.words  # the word rules of its lexical side and sentence table
        self._sentence_base, self._first_chunk = {}, {}
        self._sentence_count = {d.source: d.sentences for d in self.documents}
        sentence, chunk = 0, 0
        for doc in self.documents:
            self._sentence_base[doc.source], self._first_chunk[doc.source] = sentence, chunk
            sentence, chunk = sentence + doc.sentences, chunk + doc.chunks
        # Row of each chunk's first sentence and its number of sentences, for vectorized look-ups.
        self.chunk_first_sentence = np.fromiter(
            (self._sentence_base[c.source] + c.first_sentence for c in self.chunks), np.int64, len(self.chunks)
        )
        self.chunk_sentence_count = np.fromiter((len(c.sentences) for c in self.chunks), np.int64, len(self.chunks))

    def title(self, source: str) -> str:
        return self._titles[source]

    def entry(self, source: str) -> DocumentEntry | None:
        """The document `source` of this index, or None."""
        return self._entries.get(source)

    def document(self, source: str) -> DocumentText:
        """Document `source` as it was indexed (every offset refers to its text); KeyError if it is not indexed."""
        entry = self._entries[source]
        return DocumentText(source, entry.title, entry.format, entry.pages, self.texts.get(source))

    def first_chunk(self, source: str) -> int:
        """Position in `chunks` of the first chunk of document `source`."""
        return self._first_chunk[source]

    def sentence_base(self, source: str) -> int:
        """Row of `sentence_vectors` holding the first sentence of document `source`."""
        return self._sentence_base[source]

    def document_sentences(self, source: str) -> int:
        """Number of sentences of document `source`."""
        return self._sentence_count[source]

    def sentence_rows(self, chunk: Chunk) -> range:
        """Rows of `sentence_vectors` holding the sentences of `chunk`, in order."""
        first = self._sentence_base[chunk.source] + chunk.first_sentence
        return range(first, first + len(chunk.sentences))

    def chunk_vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.vectors[np.asarray(rows, dtype=np.int64)].reshape(len(rows), self.dimension)

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
    texts: Texts,
) -> Index:
    """Build the searchable structures from chunks and their vectors; records the dense structure in `manifest`."""
    chunk_vectors = np.ascontiguousarray(chunk_vectors, dtype=np.float32)
    index, manifest["dense"] = dense.build(chunk_vectors)
    words = words_of(manifest)
    table = SentenceTable.build(sentence_texts(documents, chunks), words)
    lexical = LexicalIndex.from_tokens(chunk_terms(documents, chunks, table), words)
    sentence_vectors = np.asarray(sentence_vectors, dtype=np.float16)  # no copy if it is float16 already
    return Index(manifest, documents, chunks, chunk_vectors, index, sentence_vectors, lexical, table, texts)


def chunk_terms(documents: list[DocumentEntry], chunks: list[Chunk], table: SentenceTable) -> list[list[str]]:
    """Each chunk's terms: its sentences' terms, in order (each sentence is cut into terms once, for the table;
    what lies between two sentences of a chunk holds no word)."""
    first = _first_sentence_rows(documents, chunks)
    return [
        [t for r in range(f, f + len(c.sentences)) for t in table.terms(r)] for f, c in zip(first, chunks, strict=True)
    ]


def sentence_texts(documents: list[DocumentEntry], chunks: list[Chunk]) -> list[str]:
    """The text of every sentence row, taken from the chunks that hold it."""
    texts = [""] * sum(d.sentences for d in documents)
    for first, chunk in zip(_first_sentence_rows(documents, chunks), chunks, strict=True):
        for j, (a, b) in enumerate(chunk.sentences):
            texts[first + j] = chunk.text[a - chunk.start : b - chunk.start]
    return texts


def _first_sentence_rows(documents: list[DocumentEntry], chunks: list[Chunk]) -> list[int]:
    """For each chunk, the sentence row of its first sentence."""
    base, row = {}, 0
    for doc in documents:
        base[doc.source], row = row, row + doc.sentences
    return [base[c.source] + c.first_sentence for c in chunks]


def save(index: Index, folder: Path) -> None:
    """Write `index` to `folder`, replacing what is there only once the new copy is complete."""
    folder = folder.absolute()
    tmp = swap.new_folder(folder)
    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as out:
        for c in index.chunks:
            out.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    np.save(tmp / "vectors.npy", np.asarray(index.vectors, dtype=np.float32))
    dense.save(index.dense, index.manifest["dense"], tmp)
    np.save(tmp / "sentences.npy", np.asarray(index.sentence_vectors, dtype=np.float16))
    (tmp / "lexical").mkdir()
    index.lexical.save(tmp / "lexical")
    index.sentence_table.save(tmp)
    sources = [d.source for d in index.documents]
    index.texts.save(tmp, sources)
    # The manifest goes last: a folder with a manifest is a complete one.
    (tmp / "manifest.json").write_text(json.dumps(index.manifest, indent=1, ensure_ascii=False))
    _fsync_tree(tmp)
    swap.replace(folder, tmp)
    # From now on the index reads its texts from the saved copy, not from the memory of the build.
    index.texts = Texts.open(folder, sources)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the index in `folder`; raises `IndexMissing` or `IndexCorrupt`."""
    return _read_manifest_at(swap.locate(folder))


def _read_manifest_at(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.exists():
        raise IndexMissing(f"no index in {folder}; run `rag index` to build it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        int(manifest["model"]["dimension"])
        manifest["documents"] = [asdict(_entry(d)) for d in manifest["documents"]]
        return manifest
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorrupt(f"{path} is damaged ({exc}); {REBUILD}") from None


def read_document(folder: Path, source: str) -> DocumentText:
    """One document of the index in `folder` as it was indexed, without loading the rest of the index (for
    `rag show`); raises `NotFound` for a source it does not hold, `IndexMissing` or `IndexCorrupt`."""
    where = swap.locate(folder)
    manifest = _read_manifest_at(where)
    documents = [_entry(d) for d in manifest["documents"]]
    entry = next((d for d in documents if d.source == source), None)
    if entry is None:
        raise NotFound(f"{source!r} is not in the index in {folder}; `rag show` takes a source as citations name it")
    try:
        text = Texts.open(where, [d.source for d in documents]).get(source)
    except (OSError, ValueError, KeyError) as exc:
        raise IndexCorrupt(
            f"{where / texts_file.FILE} is damaged or missing ({type(exc).__name__}); {REBUILD}"
        ) from None
    return DocumentText(source, entry.title, entry.format, entry.pages, text)


def check_compatible(manifest: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    """Refuse an index built with another format, model or chunker."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(
            f"the index in {folder} has format {manifest.get('format')}, not {FORMAT_VERSION}; {REBUILD}"
        )
    for key in ("model", "chunker"):
        if manifest.get(key) != expected[key]:
            raise IndexMismatch(
                f"the index in {folder} was built with {key} {manifest.get(key)}, not {expected[key]}; {REBUILD}"
            )


def load(folder: Path, expected: dict[str, Any]) -> Index:
    """Load and check the index in `folder`; `expected` holds the model and chunker settings in use."""
    where = swap.locate(folder)
    try:
        return _load_at(where, expected)
    except IndexCorrupt:
        if where != folder and folder.exists():  # read an old copy while a build put its new one in place
            return _load_at(folder, expected)
        raise


def _load_at(folder: Path, expected: dict[str, Any]) -> Index:
    manifest = _read_manifest_at(folder)
    check_compatible(manifest, expected, folder)
    documents = [_entry(d) for d in manifest["documents"]]  # checked by read_manifest
    current = folder / "chunks.jsonl"
    try:
        with open(current, encoding="utf-8") as lines:
            chunks = [_chunk(json.loads(line)) for line in lines]
        current = folder / "vectors.npy"
        vectors = np.load(current, mmap_mode="r")
        current = folder / dense.FILE
        structure = dense.load(folder, manifest["dense"], vectors)
        current = folder / "sentences.npy"
        sentence_vectors = np.load(current, mmap_mode="r")
        current = folder / sentences.FILE
        table = _sentence_table(folder, manifest, documents, chunks)
        current = folder / "lexical"
        lexical = _lexical(folder, manifest, documents, chunks, table)
        current = folder / texts_file.FILE
        texts = Texts.open(folder, [d.source for d in documents])
    except Exception as exc:  # any damage to any file means the same thing: rebuild
        named = getattr(exc, "filename", None) or current  # the very file, where one step reads several
        raise IndexCorrupt(f"{named} is damaged or missing ({type(exc).__name__}); {REBUILD}") from None
    counts = (structure.ntotal, len(vectors), lexical.size, sum(d.chunks for d in documents))
    n_sentences = sum(d.sentences for d in documents)
    if counts != (len(chunks),) * 4 or (len(sentence_vectors), len(table)) != (n_sentences, n_sentences):
        raise IndexCorrupt(f"the files in {folder} do not agree with each other; {REBUILD}")
    return Index(manifest, documents, chunks, vectors, structure, sentence_vectors, lexical, table, texts)


def words_of(manifest: dict[str, Any]) -> Words:
    """The word rules the index in `manifest` was made by (an index from before they were recorded: English)."""
    return words_for(manifest.get("text", {}).get("language", "en"))


def _current_table(manifest: dict[str, Any]) -> bool:
    return manifest.get("text", {}).get("sentence_table") == sentences.VERSION


def _sentence_table(
    folder: Path, manifest: dict[str, Any], documents: list[DocumentEntry], chunks: list[Chunk]
) -> SentenceTable:
    """The stored sentence table, or one made anew from the sentence texts when its rules have changed since the
    index was built (`rag index` then saves the new one; nothing is re-embedded)."""
    if _current_table(manifest):
        return SentenceTable.load(folder)
    return SentenceTable.build(sentence_texts(documents, chunks), words_of(manifest))


def _lexical(
    folder: Path, manifest: dict[str, Any], documents: list[DocumentEntry], chunks: list[Chunk], table: SentenceTable
) -> LexicalIndex:
    """The stored lexical index, or, with an old sentence table, one made from the new table's terms."""
    if _current_table(manifest):
        return LexicalIndex.load(folder / "lexical", words_of(manifest))
    return LexicalIndex.from_tokens(chunk_terms(documents, chunks, table), words_of(manifest))


def _entry(row: dict[str, Any]) -> DocumentEntry:
    return DocumentEntry(**{**row, "pages": tuple(row.get("pages", ()))})


def _chunk(row: dict[str, Any]) -> Chunk:
    row["sentences"] = tuple(tuple(s) for s in row["sentences"])
    return Chunk(**row)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
