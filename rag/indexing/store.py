"""The index on disk: the catalog (manifest, chunk table, sentence table, document texts) and its engine's files;
atomic save and load.

An index folder holds:

    manifest.json         format version, model and dimension, chunker settings, the engine and how to open it,
                          documents with content hashes
    chunks.jsonl          one chunk a line: id, source, start, end, text, sentence spans
    sentence_terms.npz    each sentence's terms in order (ids), which are names, its flags (holds a date, a
                          quantity; is a title line) and each term's sentence count (sentences.py)
    sentence_vocabulary.json  the terms those ids stand for
    texts.jsonl           each document's text as its reader extracted it, which every offset refers to, and
    texts.offsets.npy     where each document's line starts (texts.py)

and what its engine keeps there (`rag/engines/local.py`: the vectors, FAISS and bm25s files; Milvus keeps its own
elsewhere). `save` writes a sibling folder, then swaps it into place with two renames (`swap.py`); a reader that
finds the folder missing reads the complete copy the swap left. So a crash or Ctrl-C at any moment leaves a
complete index (the old or the new one) behind, and a save that fails (a full disk) removes what it wrote.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..engine_types import engine_type
from ..engines.base import Catalog, Engine
from ..errors import IndexCorrupt, IndexMissing, IndexOutdated, OtherWords, RagError
from ..text import sentences
from ..text.chunking import Chunk
from ..text.sentences import SentenceTable
from ..text.vocabulary import Vocabulary
from . import segmented, segments, swap
from . import texts as texts_file
from .index import (
    FORMAT_VERSION,
    REBUILD,
    DocumentEntry,
    Index,
    check_compatible,
    chunk_from,
    document_entry,
    first_rows,
    read_chunks,
    words_of,
)
from .segmented import SegmentedIndex
from .swap import IndexUnwritable, unwritable

# The values of a loaded index live in index.py; the rest of the package and the tests name them through here.
__all__ = [
    "FORMAT_VERSION",
    "REBUILD",
    "DocumentEntry",
    "Index",
    "IndexUnwritable",
    "Opener",
    "build_manifest",
    "check_compatible",
    "chunk_from",
    "document_entry",
    "first_rows",
    "load",
    "read_chunks",
    "read_manifest",
    "read_manifest_at",
    "save",
    "save_segments",
    "sentence_texts",
    "unwritable",
    "words_of",
]
from .texts import Texts

# Opens the engine an index was built with, from its manifest entry and the loaded catalog.
Opener = Callable[[dict[str, Any], Catalog], Engine]


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


def sentence_texts(documents: list[DocumentEntry], chunks: list[Chunk]) -> list[str]:
    """The text of every sentence row, taken from the chunks that hold it."""
    texts = [""] * sum(d.sentences for d in documents)
    first = first_rows(documents)
    for chunk in chunks:
        for j, (a, b) in enumerate(chunk.sentences):
            texts[first[chunk.source] + chunk.first_sentence + j] = chunk.text[a - chunk.start : b - chunk.start]
    return texts


def save(index: Index, folder: Path) -> None:
    """Write `index` to `folder`, replacing what is there only once the new copy is complete; raises
    `IndexUnwritable` when the new copy cannot be written (what was written is removed, the old index untouched)."""
    folder = folder.absolute()
    tmp = _write_copy(index, folder)
    swap.replace(folder, tmp)
    # From now on the index reads its texts from the saved copy, not from the memory of the build.
    if isinstance(index, SegmentedIndex):
        _reopen_texts(folder, index.stored)
    else:
        index.texts = Texts.open(folder, [d.source for d in index.documents])


def save_segments(index: SegmentedIndex, folder: Path, new: list[segments.Stored]) -> None:
    """Save an index made from the one in `folder` by an update or a merge: its `new` segments, then its manifest
    (`segments.save_in_place`); raises `IndexUnwritable` as `save` does, the index on disk unchanged."""
    folder = folder.absolute()
    try:
        segments.save_in_place(index, folder, new)
    except OSError as exc:
        raise swap.unwritable(folder, exc) from exc
    _reopen_texts(folder, new)


def _reopen_texts(folder: Path, stored: list[segments.Stored]) -> None:
    for s in stored:
        s.texts = Texts.open(folder / segments.FOLDER / s.name, [d.source for d in s.documents])


def _write_copy(index: Index, folder: Path) -> Path:
    """A complete copy of `index` in a new folder beside `folder` (removed again if writing it fails)."""
    with swap.new_copy(folder) as tmp:
        if isinstance(index, SegmentedIndex):
            (tmp / segments.FOLDER).mkdir()
            for s in index.stored:
                (tmp / segments.FOLDER / s.name).mkdir()
                segments.write(s, tmp / segments.FOLDER / s.name)
            (tmp / "manifest.json").write_text(json.dumps(index.manifest, indent=1, ensure_ascii=False))
            _fsync_tree(tmp)
            return tmp
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as out:
            for c in index.chunks:
                out.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        index.sentence_table.save(tmp)
        index.engine.save(tmp)
        index.texts.save(tmp, [d.source for d in index.documents])
        # The manifest goes last: a folder with a manifest is a complete one.
        (tmp / "manifest.json").write_text(json.dumps(index.manifest, indent=1, ensure_ascii=False))
        _fsync_tree(tmp)
    return tmp


def read_manifest(folder: Path, documents: bool = True) -> dict[str, Any]:
    """The manifest of the index in `folder` (`documents`: see `read_manifest_at`); raises `IndexMissing` or
    `IndexCorrupt`."""
    return read_manifest_at(swap.locate(folder), documents)


def read_manifest_at(folder: Path, documents: bool = True) -> dict[str, Any]:
    """The manifest in `folder`, with its documents (from the segments that list them, for the local engine; not
    read with `documents` False, and then not in it for the local engine)."""
    path = folder / "manifest.json"
    if not path.exists():
        raise IndexMissing(f"no index in {folder}; run `rag index` to build it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        int(manifest["model"]["dimension"])
        if "segments" not in manifest:
            manifest["documents"] = [asdict(document_entry(d)) for d in manifest["documents"]]
        elif not all(isinstance(s["name"], str) and isinstance(s["deleted"], list) for s in manifest["segments"]):
            raise ValueError("a segment without a name or a list of removed documents")
        elif documents:  # the local engine's documents are listed in its segments
            # vars, not asdict: 0.05 s against 0.9 s for 100,000 entries (asdict copies each field deeply)
            manifest["documents"] = [dict(vars(d)) for d in segments.live_documents(folder, manifest)]
        return manifest
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorrupt(f"{path} is damaged ({exc}); {REBUILD}") from None


def load(
    folder: Path, expected: dict[str, Any], open_engine: Opener, lazy: bool = False, other_words: bool = False
) -> Index:
    """Load and check the index in `folder`; `expected` holds the model, chunker and engine settings in use, and
    `open_engine` opens the engine the manifest names. `lazy`: the chunks, vectors and dense structures of a
    segmented index are read when first used, not now (an update reads none of them; a damaged one of those
    files is then found when it is read). `other_words=True`: a segmented index made with other word rules is
    loaded all the same, for its vectors (a build makes its terms again), where it would raise `OtherWords`."""
    where = swap.locate(folder)
    try:
        return _load_at(where, expected, open_engine, lazy, other_words)
    except IndexCorrupt:
        if where != folder and folder.exists():  # read an old copy while a build put its new one in place
            return _load_at(folder, expected, open_engine, lazy, other_words)
        raise


def _load_at(folder: Path, expected: dict[str, Any], open_engine: Opener, lazy: bool, other_words: bool) -> Index:
    manifest = read_manifest_at(folder, documents=False)
    check_compatible(manifest, expected, folder)
    if "segments" in manifest:
        return _load_segments(folder, manifest, expected, lazy, other_words)
    documents = [document_entry(d) for d in manifest["documents"]]  # checked by read_manifest
    # Terms stored by an engine are current when the table's rules and the word rules are those in use.
    terms_current = _current_table(manifest) and manifest.get("text") == expected.get("text", manifest.get("text"))
    if engine_type(manifest["engine"]["name"]).own_lexical and terms_current:  # it holds chunks and terms itself
        return _load_catalog_only(folder, manifest, documents, open_engine)
    current = folder / "chunks.jsonl"
    try:
        chunks = read_chunks(folder)
        current = folder / sentences.FILE
        table = _sentence_table(folder, manifest, documents, chunks)
        current = folder / texts_file.FILE
        texts = Texts.open(folder, [d.source for d in documents])
        current = folder
        catalog = Catalog(folder, chunks, table, first_rows(documents), words_of(manifest), terms_current)
        engine = open_engine(manifest["engine"], catalog)
    except RagError:  # a mismatch, an engine that cannot be reached or is held by another process: as they are
        raise
    except Exception as exc:  # any damage to any file means the same thing: rebuild
        named = getattr(exc, "filename", None) or current  # the very file, where one step reads several
        raise IndexCorrupt(f"{named} is damaged or missing ({type(exc).__name__}: {exc}); {REBUILD}") from None
    n_sentences = sum(d.sentences for d in documents)
    if (len(chunks), len(table)) != (sum(d.chunks for d in documents), n_sentences):
        raise IndexCorrupt(f"the files in {folder} do not agree with each other; {REBUILD}")
    return Index(manifest, documents, chunks, table, texts, engine)


def _load_segments(
    folder: Path, manifest: dict[str, Any], expected: dict[str, Any], lazy: bool, other_words: bool
) -> SegmentedIndex:
    """An index of the local engine, in segments. Its terms must be made by the rules in use: segments share
    their term ids, so other rules mean every segment made anew (`OtherWords`: `rag index` makes the terms again
    and keeps the vectors; a sentence table of another layout cannot be read: `IndexOutdated`, built again)."""
    rules = f"the index in folder {folder} was made with other word rules ({manifest.get('text')}); {REBUILD}"
    if not _current_table(manifest):
        raise IndexOutdated(rules)
    if manifest.get("text") != expected.get("text", manifest.get("text")) and not other_words:
        raise OtherWords(rules)
    try:
        index = segmented.load(folder, manifest)
        if not lazy:
            index.warm()
        return index
    except RagError:
        raise
    except Exception as exc:  # any damage to any file means the same thing: rebuild
        named = getattr(exc, "filename", None) or folder
        raise IndexCorrupt(f"{named} is damaged or missing ({type(exc).__name__}: {exc}); {REBUILD}") from None


def _load_catalog_only(
    folder: Path, manifest: dict[str, Any], documents: list[DocumentEntry], open_engine: Opener
) -> Index:
    """An index whose engine holds its chunks and their sentences (not the local one): of the catalog, only the
    vocabulary and the texts are read now."""
    try:
        terms, doc_freq, n_sentences = SentenceTable.load_vocabulary(folder)
        texts = Texts.open(folder, [d.source for d in documents])
        if n_sentences != sum(d.sentences for d in documents):
            raise ValueError("the sentence table does not agree with the manifest")
        catalog = Catalog(folder, [], SentenceTable.empty(), first_rows(documents), words_of(manifest), True)
        engine = open_engine(manifest["engine"], catalog)
    except RagError:  # a mismatch, an engine that cannot be reached or is held by another process: as they are
        raise
    except Exception as exc:
        named = getattr(exc, "filename", None) or folder
        raise IndexCorrupt(f"{named} is damaged or missing ({type(exc).__name__}: {exc}); {REBUILD}") from None
    vocabulary = Vocabulary(terms, doc_freq, n_sentences, words_of(manifest))
    return Index(manifest, documents, None, None, texts, engine, folder=folder, vocabulary=vocabulary)


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


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
