"""Whether the corpus changed since an index was built: what `rag ask`, `rag serve` and the watcher check before
they rebuild."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..readers import documents
from ..readers.documents import Unreadable, content_hash, file_stamp, list_sources
from . import store
from .builder import text_settings


def is_stale(settings: Settings, built: dict[str, Any] | store.Index) -> bool:
    """Whether the corpus differs from what an index (`built`: the index, or its manifest as `store.read_manifest`
    reads it) was built from (size and mtime first, hashes if needed).

    A file skipped last time counts as changed when its size or modification time did: it may be readable now.
    """
    manifest = built.manifest if isinstance(built, store.Index) else built
    if manifest.get("text") != text_settings(settings):
        return True  # other word rules: the index is made anew
    if isinstance(built, store.Index):
        known = {d.source: (d.size, d.mtime_ns, d.sha256) for d in built.documents}
    else:
        known = {d["source"]: (d["size"], d["mtime_ns"], d["sha256"]) for d in manifest["documents"]}
    skipped = manifest.get("skipped", {})
    current = list_sources(settings.corpus)
    if set(current) - known.keys() - skipped.keys() or known.keys() - set(current):
        return True
    for source in current:
        path = settings.corpus / source
        stamp = file_stamp(path)
        if source in skipped:
            if stamp != (skipped[source]["size"], skipped[source]["mtime_ns"]):
                return True
        elif stamp != known[source][:2]:
            try:  # read as indexing reads it: a link that now leads out of the corpus counts as changed
                data, _ = documents.read_corpus_file(settings.corpus, path)
            except Unreadable:
                return True
            if content_hash(data) != known[source][2]:
                return True
    return False
