"""`rag serve --watch`: the index is rebuilt when files in the corpus folder are added, changed or removed.

`CorpusWatcher` uses watchfiles (MIT): the operating system's change notifications (inotify, FSEvents,
ReadDirectoryChangesW, through the Rust `notify` crate, polling where there are none), wheels for every platform,
no dependency we do not already have (anyio), grouping of bursts of events built in (`step`, `debounce`), and a
stop event another thread can set. Polling the tree ourselves would stat every file each period; watchdog would
need its own debouncing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import watchfiles

from .. import indexing
from ..errors import CorpusError

if TYPE_CHECKING:
    from .rebuilder import Rebuilder

# A batch of changes is handed over once no event came for QUIET_MS: a write that settled. 300 ms covers an
# editor's save (write a temporary file, rename it: well under 10 ms) and `cp` of a file of a few MB, and leaves
# most of the 5 s the tests allow from a write to an answer for the rebuild itself (about 1 s for a small corpus).
QUIET_MS = 300
# A file written for longer than this (a slow copy) is handed over anyway: watchfiles' default debounce (1.6 s).
# The rebuild may then read it half written; its later writes are changes too, and queue the rebuild that fixes it.
MAX_GROUP_MS = 1600
# How long watchfiles waits for an event before yielding an empty batch: the first one (1 s after the watch began)
# catches up with whatever changed between the server's start and the start of the watch.
IDLE_MS = 1000
WAIT_SECONDS = 0.05  # polling step while a rebuild runs (Rebuilder.wait uses the same)
log = logging.getLogger("rag")


def relevant(corpus: Path) -> Callable[[watchfiles.Change, str], bool]:
    """The watch filter: paths inside the corpus with no hidden part (uploads' `.upload-*` temporary files,
    `.git`, editors' `.swp` files). Other suffixes pass too: whether they matter is `indexing.is_stale`'s call."""
    roots = {corpus.absolute(), corpus.resolve()}

    def keep(change: watchfiles.Change, path: str) -> bool:
        for root in roots:
            if Path(path).is_relative_to(root):
                return not any(part.startswith(".") for part in Path(path).relative_to(root).parts)
        return False

    return keep


class CorpusWatcher:
    """A thread that watches folder `corpus` and has `rebuilder` update the index it serves with what changed."""

    def __init__(self, rebuilder: Rebuilder, corpus: Path) -> None:
        self.rebuilder = rebuilder
        self.corpus = corpus
        self.batches = 0  # batches of changes handled (the tests wait on it)
        self.caught_up = threading.Event()  # set once what changed before the watch began is checked (and queued)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.corpus.is_dir():
            raise CorpusError(f"cannot watch {self.corpus}: there is no such folder")
        self._thread = threading.Thread(target=self._run, name="rag-watch", daemon=True)
        self._thread.start()
        # The builder's model loads now (a second or two), before the server says it is ready, not when the first
        # change is waiting for it; the watch has begun meanwhile.
        self.rebuilder.encoder()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        batches = watchfiles.watch(
            self.corpus,
            watch_filter=relevant(self.corpus),
            step=QUIET_MS,
            debounce=MAX_GROUP_MS,
            rust_timeout=IDLE_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
            raise_interrupt=False,
        )
        started = False
        for batch in batches:
            if not started:  # what changed while no one watched: checked beside the watch, which goes on meanwhile
                started = True
                threading.Thread(target=self._changed, args=(None,), name="rag-watch-start", daemon=True).start()
            elif batch:
                self._changed({path for _, path in batch})

    def _changed(self, paths: set[str] | None) -> None:
        """Queue an update of the paths of a batch of changes (`paths`: the update reads those alone). At the start
        (`paths` None: what changed while no one watched is unknown), rebuild if the corpus differs from the index,
        once any running rebuild is done (it may have read the folder before a change, or after it: only the index
        it leaves can tell)."""
        try:
            if paths is not None:
                root = os.fspath(self.corpus.absolute())
                changed = {os.path.relpath(p, root).replace(os.sep, "/") for p in paths}
                if any(c == ".." or c.startswith("../") for c in changed):  # reported under another name (a link)
                    self.rebuilder.start(queue=True)
                else:
                    self.rebuilder.start(queue=True, paths=sorted(changed))
                self.batches += 1
                return
            while self.rebuilder.state.running and not self._stop.wait(WAIT_SECONDS):
                pass
            served = self.rebuilder.assistant
            if not self._stop.is_set() and indexing.is_stale(served.settings, served.index):
                self.rebuilder.start(queue=True)
            self.batches += 1
        except Exception as exc:  # the watch must outlive any one failure (a file vanishing while it is checked)
            log.warning("warning: watching %s: %s: %s", self.corpus, type(exc).__name__, exc)
        finally:
            if paths is None:
                self.caught_up.set()
