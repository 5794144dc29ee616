"""`rag index --merge DIR...`: the catalogs of the shards of one index (each built by `rag index --shard I/N`
into the same Milvus collection) joined into the catalog the servers read. Nothing is embedded or written to the
engine: it holds every share already."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..engines import connect_milvus, engine_settings
from ..errors import IndexMismatch
from ..text.chunking import Chunk
from . import catalog, store
from .builder import assemble
from .lock import build_lock
from .shards import check_shards
from .texts import Texts


def merge(settings: Settings, folders: list[Path]) -> store.Index:
    """Join the shards' catalogs in `folders` into `settings.index`, served by the engine of `settings`."""
    catalogs = [catalog.read_catalog(f) for f in folders]
    manifests = [c[0] for c in catalogs]
    shares = check_shards(manifests, folders)
    missing = sorted(set(range(shares)) - {int(m["shard"][0]) for m in manifests})
    if missing:
        raise IndexMismatch(f"shares {missing} of {shares} are missing; pass the index folder of every shard")
    first = manifests[0]
    expected = engine_settings(settings)
    if {k: first["engine"].get(k) for k in expected} != expected:
        raise IndexMismatch(
            f"the shards were built with engine {first['engine']}, not {expected}; set RAG_ENGINE, "
            "RAG_MILVUS_URI and RAG_COLLECTION as they were"
        )
    owned = {d.source: (d, chunks, texts) for _, documents, chunks, texts in catalogs for d in documents}
    documents = [owned[source][0] for source in sorted(owned)]
    by_source: dict[str, list[Chunk]] = {}
    for _, _, chunks, _ in catalogs:
        for chunk in chunks:
            by_source.setdefault(chunk.source, []).append(chunk)
    chunks = [c for d in documents for c in by_source[d.source]]
    texts = Texts({d.source: owned[d.source][2][d.source] for d in documents})
    skipped = {k: v for m in manifests for k, v in m.get("skipped", {}).items()}
    view = {k: first[k] for k in ("model", "chunker", "text", "engine")}
    manifest = store.build_manifest(view, documents, len(chunks), skipped)
    manifest["shards"] = shares
    engine = connect_milvus(settings, int(first["model"]["dimension"]))
    with build_lock(settings.index):
        index = assemble(settings, manifest, documents, chunks, texts, {}, frozenset(), engine, shared=True)
        store.save(index, settings.index)
    return index
