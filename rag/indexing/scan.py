"""What a build reads of the corpus: every file, or (a targeted update) only the paths a caller says changed.

A file that the previous index holds with the same size and modification time is not read when that index is
segmented: nothing of it is needed (as `is_stale` judges). The server knows which paths changed (the watcher's
events, an upload, a removal) and passes them: its update then looks at those paths alone, so it costs what
changed, not a walk of the corpus.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import CorpusError
from ..readers import READERS
from ..readers.documents import Cached, Document, Skipped, list_sources, read_corpus
from ..readers.sandbox import pool_for
from . import store
from .index import no_collection
from .progress import Progress, bar
from .report import BuildReport
from .shards import Shard, in_shard


@dataclass
class Scan:
    """The documents read, the report so far (added, changed, unchanged, removed, skipped), and the files skipped
    that the new manifest lists."""

    docs: list[Document]
    report: BuildReport
    skipped: dict[str, dict[str, Any]]


def scan(
    settings: Settings,
    previous: store.Index | None,
    cached: Cached | None,
    progress: Progress,
    shard: Shard | None = None,
    cancel: threading.Event | None = None,
    paths: Collection[str] | None = None,
) -> Scan:
    """Read what changed in the corpus since `previous` (all of it without one). `paths`: corpus paths (files or
    folders) that changed, when the caller knows them and `previous` is segmented; others are not looked at."""
    corpus = settings.corpus
    if not corpus.is_dir():
        raise CorpusError(f"the corpus folder {corpus} does not exist; create it or pass --corpus DIR")
    segmented = isinstance(previous, store.SegmentedIndex)
    targeted = paths is not None and segmented
    if targeted:
        sources, considered = _targeted(corpus, previous, paths)  # type: ignore[arg-type]
    else:
        with no_collection():  # a list of every file, in a process that may hold an index (see `no_collection`)
            sources = list_sources(corpus)
        considered = None
    sources = [s for s in sources if shard is None or in_shard(s, shard)]
    report = BuildReport()
    entry = previous.entry if previous is not None else (lambda source: None)
    if segmented:
        if not targeted:
            previous.holders()  # type: ignore[union-attr]  # every document is looked up: in one pass
        same = _same_stamps(corpus, sources, entry)
        report.unchanged = [s for s in sources if s in same]
        sources = [s for s in sources if s not in same]
    docs = []
    with bar(progress, "reading", len(sources), unit="file") as shown:
        files = [corpus / s for s in sources]
        for item in read_corpus(corpus, settings.max_file_bytes, cached, files, pool_for(settings), cancel):
            if isinstance(item, Skipped):
                report.skipped.append(item)
            else:
                docs.append(item)
                if item.note:
                    report.cut.append(Skipped(item.source, item.note))
            shown.update()
    if not docs and not report.unchanged and shard is None and not targeted:  # a share may hold nothing
        raise CorpusError(
            f"no readable documents ({', '.join(sorted(READERS))}) in {corpus}; add some and run `rag index`"
        )
    for doc in docs:
        before = entry(doc.source)
        unchanged = before is not None and before.sha256 == doc.sha256
        (report.unchanged if unchanged else report.changed if before else report.added).append(doc.source)
    present = {d.source for d in docs} | set(report.unchanged)
    if considered is None:
        held = [d.source for d in previous.documents] if previous is not None else []
        report.removed = sorted(set(held) - present)
    else:
        report.removed = sorted(s for s in considered if entry(s) is not None and s not in present)
    skipped = {s.source: {"reason": s.reason, "size": s.size, "mtime_ns": s.mtime_ns} for s in report.skipped}
    if considered is not None:  # the files skipped before that this update did not look at stay listed
        listed = previous.manifest.get("skipped", {}) if previous is not None else {}
        skipped = {**{k: v for k, v in listed.items() if k not in considered}, **skipped}
    return Scan(docs, report, skipped)


def _targeted(corpus: Path, previous: store.Index, paths: Collection[str]) -> tuple[list[str], set[str]]:
    """The corpus files at or below `paths`, and every source a targeted update looks at: those files, and what
    the index holds at or below the paths (a removed file or folder)."""
    files: set[str] = set()
    considered: set[str] = set()
    folders = []
    for raw in paths:
        path = raw.strip("/")
        full = corpus / path
        if full.is_dir():
            files.update(list_sources(corpus, path))
            folders.append(path + "/")
        elif _listed(path) and (full.exists() or full.is_symlink()):  # a broken link is listed (and skipped)
            files.add(path)
        considered.add(path)
        if not full.exists() and previous.entry(path) is None:
            folders.append(path + "/")  # a folder removed, or a file never indexed
    if folders:
        considered.update(d.source for d in previous.documents if d.source.startswith(tuple(folders)))
    considered |= files
    return sorted(files, key=lambda s: s.split("/")), considered


def _listed(path: str) -> bool:
    """Whether `list_sources` lists the corpus path `path` when it is a file."""
    parts = path.split("/")
    return not any(p.startswith(".") for p in parts) and Path(parts[-1]).suffix.lower() in READERS


def _same_stamps(corpus: Path, sources: list[str], entry: Callable[[str], Any]) -> set[str]:
    """The `sources` whose file has the size and time their entry recorded. Stat'ed by their path from the corpus
    folder, opened once, where the system can (a third faster than from the root: 0.27 s for 100,000 files)."""
    top = os.fspath(corpus)
    folder = os.open(top, os.O_RDONLY) if os.stat in os.supports_dir_fd else None
    same = set()
    try:
        for source in sources:
            recorded = entry(source)
            if recorded is None:
                continue
            try:
                stat = os.stat(source, dir_fd=folder) if folder is not None else os.stat(os.path.join(top, source))
            except OSError:
                continue
            if (stat.st_size, stat.st_mtime_ns) == (recorded.size, recorded.mtime_ns):
                same.add(source)
    finally:
        if folder is not None:
            os.close(folder)
    return same
