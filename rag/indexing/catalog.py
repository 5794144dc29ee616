"""Reading parts of an index without opening its engine: one document's text (`rag show`), and a whole catalog
(to merge shards' catalogs, `merge.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import IndexCorrupt, NotFound
from ..text.chunking import Chunk
from . import segments, store, swap
from . import texts as texts_file
from .store import DocumentEntry
from .texts import DocumentText, Texts


def read_document(folder: Path, source: str) -> DocumentText:
    """One document of the index in `folder` as it was indexed, without loading the rest of the index (for
    `rag show`); raises `NotFound` for a source it does not hold, `IndexMissing` or `IndexCorrupt`."""
    where = swap.locate(folder)
    manifest = store.read_manifest_at(where)
    documents = [store.document_entry(d) for d in manifest["documents"]]
    entry = next((d for d in documents if d.source == source), None)
    if entry is None:
        raise NotFound(
            f"{source!r} is not in the index (folder {folder}); `rag show` takes a source as citations name it"
        )
    try:
        if "segments" in manifest:  # the local engine: the text is in the newest segment that holds the document
            where = _segment_of(where, manifest, source)
            documents = segments.read_documents(where / segments.DOCUMENTS)
        text = Texts.open(where, [d.source for d in documents]).get(source)
    except (OSError, ValueError, KeyError) as exc:
        raise IndexCorrupt(
            f"{where / texts_file.FILE} is damaged or missing ({type(exc).__name__}); {store.REBUILD}"
        ) from None
    return DocumentText(source, entry.title, entry.format, entry.pages, text)


def _segment_of(folder: Path, manifest: dict[str, Any], source: str) -> Path:
    """The folder of the segment of the index in `folder` where the live document `source` is."""
    for entry in reversed(manifest["segments"]):
        path = folder / segments.FOLDER / entry["name"]
        if source in entry["deleted"]:
            continue
        with open(path / segments.DOCUMENTS, encoding="utf-8") as lines:
            if any(json.loads(line)["source"] == source for line in lines):
                return path
    raise KeyError(source)


def read_catalog(folder: Path) -> tuple[dict[str, Any], list[DocumentEntry], list[Chunk], dict[str, str]]:
    """The manifest, documents, chunks and document texts of the index in `folder`, without its engine (to merge
    shards' catalogs); raises `IndexMissing` or `IndexCorrupt`."""
    where = swap.locate(folder)
    manifest = store.read_manifest_at(where)
    documents = [store.document_entry(d) for d in manifest["documents"]]
    try:
        chunks = store.read_chunks(where)
        texts = Texts.open(where, [d.source for d in documents])
        return manifest, documents, chunks, {d.source: texts.get(d.source) for d in documents}
    except Exception as exc:  # any damage means the same thing: rebuild that shard
        damage = f"{type(exc).__name__}: {exc}"
        raise IndexCorrupt(f"the index in folder {where} is damaged ({damage}); {store.REBUILD}") from None
