"""What every reader returns, and the error it raises for a file without usable text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Unreadable(Exception):
    """Raised by a reader for a file that holds no usable text; the message says why."""


@dataclass(frozen=True)
class Extracted:
    text: str  # the text as extracted: every offset in the index refers to it
    format: str = "text"  # "text", "markdown", "pdf", "html", "docx"
    title: str | None = None  # from the format's metadata or first heading; None: derived from the text
    pages: tuple[int, ...] = ()  # offset in `text` where each page starts (pages[0] == 0); () when not paged


Reader = Callable[[bytes], Extracted]
