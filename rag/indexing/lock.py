"""One build at a time per index folder, and what killed builds left behind cleared first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from . import segments, swap


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold the index folder's writer lock for one build, and clear what killed builds left behind: only when the
    lock is held (it cannot be when its file cannot be created), as only then is no other build at work."""
    with swap.writer_lock(folder) as mine:
        if mine:
            folder = folder.absolute()
            swap.clean(folder)
            with suppress(OSError, ValueError):  # no index, or a damaged manifest: its load says so
                manifest = json.loads((folder / swap.MANIFEST).read_text(encoding="utf-8"))
                if "segments" in manifest:
                    segments.clean(folder, manifest)
        yield
