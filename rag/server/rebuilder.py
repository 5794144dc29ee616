"""Rebuilding in the background and swapping the new index in when it is complete.

Questions keep being answered from the old index while a rebuild runs (each question takes one index reference
at its start). One rebuild runs at a time; asking for another while one runs is refused, except that a rebuild
triggered by an upload, a removal or the watcher is queued, so that no change to the corpus is left unindexed. A
running rebuild can be cancelled (a document that takes too long to embed can then be removed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .. import indexing
from ..embedding import Encoder
from ..errors import Conflict
from ..pipeline import Assistant

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


class Rebuilder:
    """The background rebuilds of an `Assistant`'s index, with their own encoder (the serving one is never blocked)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.state = RebuildState()
        self.observers: list[Callable[[RebuildState], Any]] = []  # called with the state as each run ends (metrics)
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()  # the rebuild and the watcher's warm-up both may load it first
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()  # set by `cancel`; the running build stops at its next step
        self._queued_paths: set[str] | None = None  # what the queued rebuild looks at (None: the whole corpus)

    def encoder(self) -> Encoder:
        """The rebuilds' own encoder, loaded on first use."""
        with self._encoder_lock:
            if self._encoder is None:
                settings, served = self.assistant.settings, self.assistant.encoder
                self._encoder = Encoder(settings.model, served.backend, served.precision)  # as served
            return self._encoder

    def start(self, *, full: bool = False, queue: bool = False, paths: Collection[str] | None = None) -> dict[str, Any]:
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

    def cancel(self) -> dict[str, Any]:
        """Stop the running rebuild at once while it reads a file (its reader process is killed), else at its next
        step (a window of text split, a batch of sentences embedded), and drop a queued one; the index it would
        have replaced keeps serving. Raises `Conflict` when none runs."""
        with self.state.lock:
            if not self.state.running:
                raise Conflict("no rebuild is running")
            self._cancel.set()
            self.state.queued = False
            return self.state.to_dict()

    def _run(self, full: bool, paths: set[str] | None) -> None:
        while True:
            try:
                encoder = self.encoder()
                settings, live = self.assistant.settings, self.assistant.live
                with live.writing():
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
                    with live.writing():
                        merged = indexing.merge_segments(settings, index)
                        if merged is not index:  # else nothing to merge, or another process changed the index
                            self.assistant.index = merged
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

    def _public(self, exc: Exception) -> str:
        """An error message fit for any client: the server's folders are named by their last part only."""
        message = f"{type(exc).__name__}: {exc}"
        settings = self.assistant.settings
        for folder in (settings.corpus, settings.index):
            for form in {str(folder.resolve()), str(folder.absolute()), str(folder)}:
                message = message.replace(form, folder.name)
        return message


def _counted(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A build report with its lists of files and reasons (`FILES_WITH_REASONS`) as counts (`skipped_count`)."""
    if report is None:
        return None
    public = {k: v for k, v in report.items() if k not in FILES_WITH_REASONS}
    return public | {f"{k}_count": len(report[k]) for k in FILES_WITH_REASONS if k in report}


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
