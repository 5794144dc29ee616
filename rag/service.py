"""What a long-running server needs beyond the Python API: rebuilding in the background and swapping the new
index in when it is complete, and adding documents to the corpus safely.

Questions keep being answered from the old index while a rebuild runs (each question takes one index reference
at its start). One rebuild runs at a time; asking for another while one runs is refused, except that a rebuild
triggered by an upload is queued, so that no change to the corpus is left unindexed.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import indexing
from .documents import READERS, Unreadable, check_text, read_plain_text
from .embedding import Encoder
from .errors import BadRequest, Conflict
from .pipeline import Assistant

RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.I)
MAX_NAME = 200


@dataclass
class RebuildState:
    running: bool = False
    queued: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    last_report: dict[str, Any] | None = None
    last_error: str | None = None
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "queued": self.queued,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "last_report": self.last_report,
            "last_error": self.last_error,
            "runs": self.runs,
        }


class Service:
    """An `Assistant` plus a background rebuilder with its own encoder (the serving one is never blocked)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.state = RebuildState()
        self._builder_encoder: Encoder | None = None
        self._thread: threading.Thread | None = None

    def start_rebuild(self, *, full: bool = False, queue: bool = False) -> dict[str, Any]:
        """Start a rebuild in the background; raises `Conflict` if one runs (unless `queue`)."""
        with self.state.lock:
            if self.state.running:
                if not queue:
                    raise Conflict("a rebuild is already running; wait for it to finish (GET /api/index)")
                self.state.queued = True
                return self.state.to_dict()
            self.state.running, self.state.started_at = True, time.time()
            self._thread = threading.Thread(target=self._run, args=(full,), name="rag-rebuild", daemon=True)
            self._thread.start()
            return self.state.to_dict()

    def wait(self, timeout: float | None = None) -> None:
        """Block until no rebuild runs (for tests and shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)

    def _run(self, full: bool) -> None:
        while True:
            try:
                if self._builder_encoder is None:
                    self._builder_encoder = Encoder(self.assistant.settings.model, self.assistant.settings.backend)
                index, report = indexing.build(
                    self.assistant.settings, self._builder_encoder, full=full, progress=False
                )
                self.assistant.index = index  # the swap: one reference assignment
                self.state.last_report, self.state.last_error = report.to_dict(), None
            except Exception as exc:  # reported through GET /api/index; the old index keeps serving
                self.state.last_error = self._public(exc)
            with self.state.lock:
                self.state.runs += 1
                self.state.finished_at = time.time()
                if not self.state.queued:
                    self.state.running = False
                    return
                self.state.queued, full = False, False

    def _public(self, exc: Exception) -> str:
        """An error message fit for any client: the server's folders are named by their last part only."""
        message = f"{type(exc).__name__}: {exc}"
        settings = self.assistant.settings
        for folder in (settings.corpus, settings.index):
            for form in {str(folder.resolve()), str(folder.absolute()), str(folder)}:
                message = message.replace(form, folder.name)
        return message

    def add_document(self, name: str, data: bytes, max_bytes: int) -> str:
        """Write an uploaded file into the corpus (atomically) and queue a rebuild; returns its source path."""
        name = check_upload_name(name)
        if len(data) > max_bytes:
            raise BadRequest(f"the file is {len(data)} bytes; the limit is {max_bytes}")
        try:
            check_text(read_plain_text(data))
        except Unreadable as exc:
            raise BadRequest(f"{name}: {exc}") from None
        corpus = self.assistant.settings.corpus
        target = corpus / name
        if target.exists():
            raise Conflict(f"{name} is already in the corpus; choose another name")
        corpus.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=corpus)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.link(tmp, target)  # fails if the name was taken meanwhile, never overwrites
        except FileExistsError:
            raise Conflict(f"{name} is already in the corpus; choose another name") from None
        finally:
            os.unlink(tmp)
        self.start_rebuild(queue=True)
        return name


def check_upload_name(name: str) -> str:
    """A plain file name for the corpus folder: no folders, no hidden or reserved names, a known suffix."""
    base = (name or "").strip()
    bad = (
        not base
        or "/" in base
        or "\\" in base
        or "\x00" in base
        or base.startswith(".")
        or len(base) > MAX_NAME
        or RESERVED.match(base)
        or any(ord(c) < 32 for c in base)
    )
    if bad:
        raise BadRequest(f"{name!r} is not an acceptable file name: use a plain name such as notes.txt")
    if Path(base).suffix.lower() not in READERS:
        raise BadRequest(f"{base}: only {', '.join(sorted(READERS))} files can be added")
    return base


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
