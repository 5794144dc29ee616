"""How a build reports its progress: bars on a terminal (the CLI), a callback (the Python API), or nothing.

`Progress` is what `indexing.build` and `Assistant.open/reindex` take: True draws tqdm's bars on stderr, False (the
library's default) stays quiet, and a callable is called as `report(stage, done, total)` ("reading", "splitting" or
"embedding"; files, characters or sentences) each time a stage moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from tqdm import tqdm

Report = Callable[[str, int, int], None]
Progress = bool | Report


class _Calls:
    """A bar that calls `report` instead of drawing (the part of tqdm's interface the build uses)."""

    def __init__(self, report: Report, stage: str, total: int) -> None:
        self.report, self.stage, self.total, self.n = report, stage, total, 0
        report(stage, 0, total)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.report(self.stage, self.n, self.total)

    def __enter__(self) -> _Calls:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        return None


def bar(progress: Progress, stage: str, total: int, **tqdm_options: Any) -> Any:
    """A progress bar for `stage` over `total` items, as `progress` asks (nothing when `total` is 0)."""
    if callable(progress):
        return _Calls(progress, stage, total) if total else tqdm(total=0, disable=True)
    return tqdm(total=total, desc=stage, disable=not progress or not total, **tqdm_options)
