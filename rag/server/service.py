"""What a long-running server needs beyond the Python API: rebuilding in the background and swapping the new
index in when it is complete, adding and removing documents safely, and (`watch`) rebuilding whenever the corpus
folder changes (`watch.py`).

Questions keep being answered from the old index while a rebuild runs (each question takes one index reference
at its start). One rebuild runs at a time; asking for another while one runs is refused, except that a rebuild
triggered by an upload, a removal or the watcher is queued, so that no change to the corpus is left unindexed. A
running rebuild can be cancelled (a document that takes too long to embed can then be removed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .. import indexing
from ..embedding import Encoder
from ..errors import BadRequest, Conflict, NotFound
from ..pipeline import Assistant
from ..readers import READERS, Unreadable
from ..readers.documents import check_text, open_corpus_file
from ..readers.sandbox import pool_for
from .uploads import check_upload_name, write_upload
from .watch import CorpusWatcher

# One line a background rebuild (what changed, each skipped file and why): `rag serve` writes them on stderr, for
# whoever runs the server (`metrics.log_requests`); a library caller's logging decides.
REBUILDS = logging.getLogger("rag.rebuild")

# The lists of a build report that name files with a reason (skipped, or cut short): only the admin token sees
# them; anyone else gets their counts (issue #20).
FILES_WITH_REASONS = ("skipped", "cut")


@dataclass
class RebuildState:
    running: bool = False
    queued: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    last_finished_at: float | None = None
    last_report: dict[str, Any] | None = None
    last_error: str | None = None
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self, names: bool = True) -> dict[str, Any]:
        """The rebuild's state as JSON (times are UTC ISO 8601 to the second, None when there is none yet):

        - `running`: a rebuild runs now; `queued`: another one will run right after it (a change came meanwhile).
        - `started_at`: when the current run started, or the latest one if none runs now.
        - `finished_at`: when the run that `started_at` names finished; None while it runs, so it is never
          earlier than `started_at`.
        - `last_finished_at`: when the latest completed run finished, kept while a new one runs.
        - `last_report`, `last_error`: what the latest completed run did, or why it failed (the old index then
          keeps serving); `runs`: how many runs completed since the server started.

        `names=False` (for anyone without the admin token) gives the report's skipped files as a count only:
        a file's name or a link's target, and why it was skipped, is not for anyone who can reach the port.
        """
        return {
            "running": self.running,
            "queued": self.queued,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "last_finished_at": _iso(self.last_finished_at),
            "last_report": self.last_report if names else _counted(self.last_report),
            "last_error": self.last_error,
            "runs": self.runs,
        }


class Service:
    """An `Assistant` plus a background rebuilder with its own encoder (the serving one is never blocked)."""

    upload_suffixes = tuple(sorted(READERS))  # every format a reader exists for (the admin page's file picker)

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.state = RebuildState()
        self._builder_encoder: Encoder | None = None
        self._builder_lock = threading.Lock()  # the rebuild and the watcher's warm-up both may load it first
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()  # set by `cancel_rebuild`; the running build stops at its next step
        self.watcher: CorpusWatcher | None = None
        self.observers: list[Any] = []  # called with the state as each run ends (server/metrics.py counts runs)
        self._queued_paths: set[str] | None = None  # what the queued rebuild looks at (None: the whole corpus)

    def builder_encoder(self) -> Encoder:
        """The rebuilds' own encoder, loaded on first use."""
        with self._builder_lock:
            if self._builder_encoder is None:
                settings, served = self.assistant.settings, self.assistant.encoder
                self._builder_encoder = Encoder(settings.model, served.backend, served.precision)  # as served
            return self._builder_encoder

    def watch(self) -> None:
        """Rebuild in the background whenever files in the corpus are added, changed or removed."""
        if self.watcher is None:
            self.watcher = CorpusWatcher(self)
            self.watcher.start()

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def start_rebuild(
        self, *, full: bool = False, queue: bool = False, paths: Collection[str] | None = None
    ) -> dict[str, Any]:
        """Start a rebuild in the background; raises `Conflict` if one runs (unless `queue`). `paths`: the corpus
        paths that changed, when known (the watcher, uploads, removals): only they are looked at."""
        with self.state.lock:
            if self.state.running:
                if not queue:
                    raise Conflict(
                        "a rebuild is already running; wait for it to finish (GET /api/index) or cancel it "
                        "(DELETE /api/reindex)"
                    )
                if not self.state.queued:
                    self._queued_paths = None if paths is None else set(paths)
                elif self._queued_paths is not None:  # once the queued run looks at everything, it stays so
                    self._queued_paths = None if paths is None else self._queued_paths | set(paths)
                self.state.queued = True
                return self.state.to_dict()
            self.state.running, self.state.started_at, self.state.finished_at = True, time.time(), None
            self._cancel.clear()
            args = (full, None if paths is None else set(paths))
            self._thread = threading.Thread(target=self._run, args=args, name="rag-rebuild", daemon=True)
            self._thread.start()
            return self.state.to_dict()

    def wait(self, timeout: float | None = None) -> None:
        """Block until no rebuild runs (for tests and shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)

    def _run(self, full: bool, paths: set[str] | None) -> None:
        while True:
            try:
                encoder = self.builder_encoder()
                settings = self.assistant.settings
                index, report = indexing.build(
                    settings,
                    encoder,
                    full=full,
                    progress=False,
                    cancel=self._cancel,
                    merge=False,
                    loaded=self.assistant.index,
                    paths=paths,
                )
                self.assistant.index = index  # the swap: one reference assignment (not loaded again from disk)
                self.state.last_report, self.state.last_error = report.to_dict(), None
                REBUILDS.info("; ".join([f"index rebuilt: {report.summary()}", *report.skip_lines()]))
                if isinstance(index, indexing.SegmentedIndex):  # merged once the update is served; questions go on
                    self.assistant.index = indexing.merge_segments(settings, index)
            except Exception as exc:  # reported through GET /api/index; the old index keeps serving
                self.state.last_error = self._public(exc)
                REBUILDS.warning(f"rebuild failed, the previous index keeps serving: {self.state.last_error}")
            with self.state.lock:
                now = time.time()
                self.state.runs += 1
                self.state.last_finished_at = now
                for observe in self.observers:
                    observe(self.state)
                if not self.state.queued:
                    self.state.running, self.state.finished_at = False, now
                    return
                self.state.queued, full, paths = False, False, self._queued_paths
                self.state.started_at = now  # the queued run starts: `finished_at` stays None until it ends
                self._cancel.clear()

    def cancel_rebuild(self) -> dict[str, Any]:
        """Stop the running rebuild at once while it reads a file (its reader process is killed), else at its next
        step (a window of text split, a batch of sentences embedded), and drop a queued one; the index it would
        have replaced keeps serving. Raises `Conflict` when none runs."""
        with self.state.lock:
            if not self.state.running:
                raise Conflict("no rebuild is running")
            self._cancel.set()
            self.state.queued = False
            return self.state.to_dict()

    def _public(self, exc: Exception) -> str:
        """An error message fit for any client: the server's folders are named by their last part only."""
        message = f"{type(exc).__name__}: {exc}"
        settings = self.assistant.settings
        for folder in (settings.corpus, settings.index):
            for form in {str(folder.resolve()), str(folder.absolute()), str(folder)}:
                message = message.replace(form, folder.name)
        return message

    def original_file(self, source: str) -> tuple[str, BinaryIO, int]:
        """The name, open file and size of the corpus file of indexed document `source`, opened as indexing reads
        it (once, and checked as opened: a link swapped meanwhile never serves a file from outside the corpus); the
        caller closes it. Raises `NotFound` when it is not indexed, is gone or now leads out of the corpus."""
        if self.assistant.index.entry(source) is None:
            raise NotFound(f"{source!r} is not in the index; GET /api/documents lists the documents")
        settings = self.assistant.settings
        try:
            opened, stat = open_corpus_file(settings.corpus, settings.corpus / source, settings.max_file_bytes)
        except Unreadable as exc:
            raise NotFound(f"{source!r} is in the index but its file is no longer in the corpus ({exc})") from None
        return Path(source).name, opened, stat.st_size

    def add_document(self, name: str, data: bytes, max_bytes: int) -> str:
        """Write an uploaded file into the corpus (atomically) and queue a rebuild; returns its source path."""
        name = check_upload_name(name)
        if len(data) > max_bytes:
            raise BadRequest(f"the file is {len(data)} bytes; the limit is {max_bytes}")
        try:
            # the reader of its format, in a reader process, as indexing will read it
            check_text(pool_for(self.assistant.settings).read(Path(name).suffix.lower(), data).extracted.text)
        except Unreadable as exc:
            raise BadRequest(f"{name}: {exc}") from None
        write_upload(self.assistant.settings.corpus, name, data)
        self.start_rebuild(queue=True, paths=[name])
        return name

    def remove_document(self, source: str) -> dict[str, Any]:
        """Delete the corpus file of `source` (a document of the index, or a file it skipped) and queue the rebuild
        that drops it from the index; returns the rebuild state. Until that rebuild is done it may still be cited."""
        parts = Path(source).parts
        if not source or "\\" in source or "\x00" in source or Path(source).is_absolute() or ".." in parts:
            raise BadRequest(f"{source!r} is not a document path: use a source as GET /api/documents lists it")
        index = self.assistant.index
        if index.entry(source) is None and source not in index.manifest.get("skipped", {}):
            raise NotFound(f"{source!r} is not in the index; GET /api/documents lists the documents")
        corpus = self.assistant.settings.corpus
        # Its folder must lie inside the corpus: a linked folder leading out of it never has a file deleted.
        if not (corpus / source).parent.resolve().is_relative_to(corpus.resolve()):
            raise BadRequest(f"{source!r} lies outside the corpus folder (a link); remove it by hand")
        (corpus / source).unlink(missing_ok=True)  # already gone: the rebuild still has to drop it
        return self.start_rebuild(queue=True, paths=[source])


def _counted(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A build report with its lists of files and reasons (`FILES_WITH_REASONS`) as counts (`skipped_count`)."""
    if report is None:
        return None
    public = {k: v for k, v in report.items() if k not in FILES_WITH_REASONS}
    return public | {f"{k}_count": len(report[k]) for k in FILES_WITH_REASONS if k in report}


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
