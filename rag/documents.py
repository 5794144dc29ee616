"""Reading corpus files: text, title and content hash.

Readers are chosen by file suffix (`READERS`), so HTML or PDF can be added without touching the rest. A file that
cannot be read as text (binary, not UTF-8, empty, unreadable, a link leading out of the corpus) is skipped with a
reason; the caller reports it and indexing goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

TITLE_CHARS = 80


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus folder, with forward slashes
    title: str
    text: str  # the decoded text that every offset refers to
    sha256: str
    size: int = 0  # bytes on disk and modification time, to notice changes without hashing
    mtime_ns: int = 0


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    size: int = -1  # as for `Document`, to notice when the file changes (-1: could not stat it)
    mtime_ns: int = -1


class Unreadable(Exception):
    """Raised by a reader for a file that holds no usable text."""


def read_plain_text(data: bytes) -> str:
    """UTF-8 text, strictly: a NUL byte or an invalid sequence means the file is not text."""
    if b"\x00" in data:
        raise Unreadable("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not valid UTF-8 (byte {exc.start})") from None


READERS: dict[str, Callable[[bytes], str]] = {".txt": read_plain_text, ".md": read_plain_text}


def check_text(text: str) -> str:
    """`text` if it has something to index; raises `Unreadable` for an empty file or one without a word."""
    if not text.strip():
        raise Unreadable("empty file")
    if not any(ch.isalnum() for ch in text):
        raise Unreadable("no words to index")
    return text


def make_title(text: str) -> str:
    """The first non-empty line, shortened at a word boundary."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.lstrip("#").strip()
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_files(corpus: Path) -> list[Path]:
    """Files with a known suffix below `corpus`, sorted; hidden files and folders are left out."""
    found = []
    for path in corpus.rglob("*"):
        rel = path.relative_to(corpus)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in READERS and not path.is_dir():
            found.append(path)
    return sorted(found)


def read_document(corpus: Path, path: Path, max_bytes: int | None = None) -> Document:
    """Read one file; raises `Unreadable` with the reason it cannot be indexed."""
    source = path.relative_to(corpus).as_posix()
    try:
        inside = path.resolve(strict=True).is_relative_to(corpus.resolve())
    except (OSError, RuntimeError):  # a broken link, or a loop of links
        raise Unreadable("a broken or looping link") from None
    if not inside:
        raise Unreadable("a link to a file outside the corpus")
    try:
        stat = path.stat()
        if not S_ISREG(stat.st_mode):  # a pipe or device would block or never end
            raise Unreadable("not a regular file")
        if max_bytes is not None and stat.st_size > max_bytes:
            raise Unreadable(f"{stat.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit (max_file_bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    text = check_text(READERS[path.suffix.lower()](data))
    return Document(source, make_title(text) or source, text, content_hash(data), stat.st_size, stat.st_mtime_ns)


def read_corpus(corpus: Path, max_bytes: int | None = None) -> Iterator[Document | Skipped]:
    """Every document of the corpus in path order, or a `Skipped` for each file that cannot be used."""
    for path in list_files(corpus):
        try:
            yield read_document(corpus, path, max_bytes)
        except Unreadable as exc:
            yield Skipped(path.relative_to(corpus).as_posix(), str(exc), *file_stamp(path))


def printable(name: str) -> str:
    """A file name safe to print on one line: control characters (a newline, a terminal escape) escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, modification time in ns) of a file, or (-1, -1) if it cannot be stat'ed."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns
