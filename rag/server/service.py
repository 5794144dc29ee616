"""What a long-running server needs beyond the Python API, composed of three parts: the background rebuilds that
swap a new index in when it is complete (`rebuilder.py`), the corpus folder's writes (`rag/corpus.py`, which the
CLI uses too), and (`watch`) an update whenever the corpus folder changes (`watch.py`). An upload or a removal
changes the corpus, then queues the update of the paths it changed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, BinaryIO

from ..corpus import Corpus
from ..pipeline import Assistant
from ..readers import READERS
from .rebuilder import Rebuilder, RebuildState
from .watch import CorpusWatcher


class Service:
    """An `Assistant`, its background `Rebuilder`, its `Corpus`, and the corpus watcher once `watch` starts it."""

    upload_suffixes = tuple(sorted(READERS))  # every format a reader exists for (the admin page's file picker)

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.rebuilder = Rebuilder(assistant)
        self.corpus = Corpus(assistant.settings)
        self.watcher: CorpusWatcher | None = None

    @property
    def state(self) -> RebuildState:
        return self.rebuilder.state

    @property
    def observers(self) -> list[Any]:
        return self.rebuilder.observers

    def watch(self) -> None:
        """Update the index in the background whenever files in the corpus are added, changed or removed."""
        if self.watcher is None:
            self.watcher = CorpusWatcher(self.rebuilder, self.corpus.folder)
            self.watcher.start()

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def start_rebuild(
        self, *, full: bool = False, queue: bool = False, paths: Collection[str] | None = None
    ) -> dict[str, Any]:
        return self.rebuilder.start(full=full, queue=queue, paths=paths)

    def wait(self, timeout: float | None = None) -> None:
        self.rebuilder.wait(timeout)

    def cancel_rebuild(self) -> dict[str, Any]:
        return self.rebuilder.cancel()

    def original_file(self, source: str) -> tuple[str, BinaryIO, int]:
        """The name, open file and size of the corpus file of the served index's document `source`."""
        return self.corpus.open_original(source, self.assistant.index)

    def add_document(self, name: str, data: bytes, max_bytes: int) -> str:
        """Write an uploaded file into the corpus (`Corpus.add`) and queue its update; returns its source path."""
        source = self.corpus.add(name, data, max_bytes)
        self.rebuilder.start(queue=True, paths=[source])
        return source

    def remove_document(self, source: str) -> dict[str, Any]:
        """Delete the corpus file of `source` (`Corpus.remove`) and queue the update that drops it from the index;
        returns the rebuild state. Until that update is served it may still be cited."""
        self.corpus.remove(source, self.assistant.index)
        return self.rebuilder.start(queue=True, paths=[source])
