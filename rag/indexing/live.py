"""The index a process serves follows the one on disk.

`IndexOnDisk` holds the index an `Assistant` answers from. Every use stats `index/manifest.json` (a few
microseconds); when its inode, size or modification time changed, another process (`rag index`) swapped a new
index in, and the asking thread loads it before answering. A save replaces the whole folder (`swap.py`), so a new
index always has a new manifest file; in the instant between the swap's two renames the manifest is missing and the
old index keeps answering.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import RagError
from . import store, swap

Stamp = tuple[int, int, int]
log = logging.getLogger("rag")  # `rag serve` prints its warnings (cli.py); a program using rag configures logging


def manifest_stamp(path: str) -> Stamp | None:
    """(inode, size, mtime in ns) of a manifest file, or None while it is missing (mid-swap, or never built)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class IndexOnDisk:
    """The index being served, replaced by the one on disk when another process rebuilt it."""

    def __init__(self, folder: Path, index: store.Index, load: Callable[[], store.Index]) -> None:
        self._manifest = os.path.join(folder, swap.MANIFEST)
        self._load = load
        self._lock = threading.Lock()  # one thread loads; the others wait for its index rather than load it too
        self.loads = 0  # indexes loaded because the one on disk changed (the tests count them)
        self._writing = 0  # threads of this process writing the index on disk now (`writing`)
        self.set(index)

    def get(self) -> store.Index:
        """The current index; costs one stat when nothing changed."""
        if not self._writing and manifest_stamp(self._manifest) not in (self._stamp, None):
            self._reload()
        return self._index

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a change this process saves and then `set`s (an update, a merge): the manifest it replaces is
        not loaded from disk meanwhile by a question that sees it change (at 100,000 documents a load takes
        seconds, and every question would wait on it); questions go on with the index served now. A change
        that is not `set` (a failure; another process's index found on disk) is loaded by the next question."""
        with self._lock:
            self._writing += 1
        try:
            yield
        finally:
            with self._lock:
                self._writing -= 1

    def set(self, index: store.Index) -> None:
        """Serve `index`, the one on disk now (this process just built it): it is not loaded again. What it reads
        when first used is read now, before any question waits on it."""
        index.warm()
        with self._lock:
            self._index, self._stamp = index, manifest_stamp(self._manifest)

    def _reload(self) -> None:
        with self._lock:
            stamp = manifest_stamp(self._manifest)
            if stamp is None or stamp == self._stamp:
                return  # another thread loaded it meanwhile, or this process's own rebuild set it
            try:
                self._index = self._load()
                self.loads += 1
            except (RagError, OSError) as exc:
                log.warning(
                    "warning: the index on disk changed but cannot be used (%s); answering from the previous one", exc
                )
            # Only now: meanwhile other askers see a changed stamp and wait on the lock for this index. Recorded
            # after a failure too, so that a damaged index is not tried again on every question.
            self._stamp = stamp
