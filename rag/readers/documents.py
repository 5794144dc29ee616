"""Reading corpus files: text, title, pages and content hash.

The reader is chosen by file suffix (`rag.readers.READERS`: one module a format) and runs in a worker process with
memory, time and output limits (`sandbox.py`). A file that cannot be read
(binary, a scanned PDF without text, empty, unreadable, a link leading out of the corpus) is skipped with a
reason; the caller reports it and indexing goes on. A file whose content hash the previous index already holds is
not extracted again: its text comes from the index (`cached`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, BinaryIO

from . import READERS, Unreadable

if TYPE_CHECKING:
    from .sandbox import Flag, ReaderPool

TITLE_CHARS = 80  # a title fits one line of a citation card and of `rag ask`'s output


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus folder, with forward slashes
    title: str
    text: str  # the decoded text that every offset refers to
    sha256: str
    size: int = 0  # bytes on disk and modification time, to notice changes without hashing
    mtime_ns: int = 0
    format: str = "text"
    pages: tuple[int, ...] = ()  # offset in `text` where each page starts, for paged formats
    note: str | None = None  # what the build report should say about it (its text was cut at max_text_chars)


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    size: int = -1  # as for `Document`, to notice when the file changes (-1: could not stat it)
    mtime_ns: int = -1


def check_text(text: str) -> str:
    """`text` if it has something to index; raises `Unreadable` for an empty file or one without a word."""
    if not text.strip():
        raise Unreadable("empty file")
    if not any(ch.isalnum() for ch in text):
        raise Unreadable("no words to index")
    return text


def make_title(title: str | None, path: Path) -> str:
    """The reader's title on one line, shortened at a word boundary; the file name when the reader found none."""
    line = " ".join((title or "").split()).lstrip("#").strip() or path.name
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_files(corpus: Path) -> list[Path]:
    """Files with a known suffix below `corpus`, sorted by their path's parts; hidden files and folders are left
    out, links to folders are not followed. Walked with `os.walk` and plain strings: `Path.rglob` and
    `relative_to` cost 37 µs a file, 3.7 s for 100,000 (bench/segments.py)."""
    return [corpus / rel for rel in list_sources(corpus)]


def list_sources(corpus: Path, under: str = "") -> list[str]:
    """The corpus paths (`a/b.txt`) of the files `list_files` lists, of the folder `under` only when given."""
    top = os.path.join(os.fspath(corpus), under) if under else os.fspath(corpus)
    prefix = f"{under.strip('/')}/" if under.strip("/") else ""
    if any(part.startswith(".") for part in prefix.split("/") if part):
        return []
    found = []
    for folder, subfolders, names in os.walk(top):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]  # and links to folders are not entered
        rel = os.path.relpath(folder, top)
        base = prefix if rel == "." else f"{prefix}{rel.replace(os.sep, '/')}/"
        for name in names:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in READERS:
                found.append(base + name)
    return sorted(found, key=lambda source: source.split("/"))


Cached = Callable[[str, str], "Document | None"]  # (source, sha256) -> the document as indexed, if it is


def read_document(
    corpus: Path,
    path: Path,
    max_bytes: int | None = None,
    cached: Cached | None = None,
    pool: ReaderPool | None = None,
    cancel: Flag | None = None,
) -> Document:
    """Read one file with a reader of `pool` (None: the pool of the default settings); raises `Unreadable` with the
    reason it cannot be indexed, `Cancelled` once `cancel` is set."""
    source = path.relative_to(corpus).as_posix()
    data, stat = read_corpus_file(corpus, path, max_bytes)
    sha256 = content_hash(data)
    known = cached(source, sha256) if cached else None
    if known is not None:
        return replace(known, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    read = (pool or default_pool()).read(path.suffix.lower(), data, cancel)
    del data  # the bytes of a large file need not wait for the next one
    extracted = read.extracted
    text = check_text(extracted.text)
    title = make_title(extracted.title, path)
    return Document(
        source, title, text, sha256, stat.st_size, stat.st_mtime_ns, extracted.format, extracted.pages, read.note
    )


# O_NONBLOCK: opening a named pipe would wait for a writer (the file is refused as not regular once open);
# O_NOCTTY: a terminal device never becomes this process's controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


def read_corpus_file(corpus: Path, path: Path, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes and status of corpus file `path`, for indexing and for serving it; raises `Unreadable`.

    The file is opened once, following links (a link that stays inside the corpus is fine), and the check is made
    on what was opened, never on the path again: checking where a link leads and then opening it let a link
    swapped in between serve a file from outside the corpus (issue #11). Size and type come from the open file.

    Hard links are trusted-corpus behaviour: a file with several names is read even if another of its names lies
    outside the corpus. Whoever can write into the corpus folder can copy into it any file they can read, so a hard
    link gives them nothing a copy does not (Linux's default fs.protected_hardlinks=1 lets a user hard-link only a
    file they own or can read and write); refusing them would also refuse every corpus kept with hard-linked
    backups, and finding a file's other names takes a search of the whole file system.
    """
    opened, stat = open_corpus_file(corpus, path, max_bytes)
    with opened:
        try:
            data = opened.read() if max_bytes is None else opened.read(max_bytes + 1)
        except OSError as exc:
            raise Unreadable(f"cannot be read ({exc.strerror or exc})") from None
    if max_bytes is not None and len(data) > max_bytes:  # it grew since the fstat
        raise Unreadable(f"over the {max_bytes / 1e6:g} MB limit (max_file_bytes)")
    return data, stat


def open_corpus_file(corpus: Path, path: Path, max_bytes: int | None = None) -> tuple[BinaryIO, os.stat_result]:
    """Corpus file `path` open for reading, and its status, checked as `read_corpus_file` says (the server streams
    a download from it, never holding the whole file); the caller closes it. Raises `Unreadable`."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        broken = exc.errno == errno.ELOOP or (exc.errno == errno.ENOENT and os.path.islink(path))
        raise Unreadable("a broken or looping link" if broken else f"cannot be read ({exc.strerror or exc})") from None
    try:
        stat = os.fstat(fd)
        if not _opened_inside(fd, stat, corpus, path):
            raise Unreadable("a link to a file outside the corpus")
        if not S_ISREG(stat.st_mode):  # a pipe or device would block or never end
            raise Unreadable("not a regular file")
        if max_bytes is not None and stat.st_size > max_bytes:
            raise Unreadable(f"{stat.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit (max_file_bytes)")
        return open(fd, "rb"), stat  # closes `fd` when it is closed
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise Unreadable(f"cannot be read ({exc.strerror or exc})") from None
        raise


def _opened_inside(fd: int, stat: os.stat_result, corpus: Path, path: Path) -> bool:
    """Whether the file open on `fd` lies inside `corpus`: by the kernel's own name for it on Linux
    (/proc/self/fd), which no swap after the open can change; elsewhere by resolving `path` and checking that the
    resolved path is that very file (same device and inode)."""
    root = corpus.resolve()
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(root)
    except OSError:  # no /proc: not Linux
        pass
    try:
        resolved = path.resolve(strict=True)
        return resolved.is_relative_to(root) and os.path.samestat(os.stat(resolved), stat)
    except (OSError, RuntimeError):  # gone or swapped meanwhile, or a loop of links: not the file opened
        return False


def read_corpus(
    corpus: Path,
    max_bytes: int | None = None,
    cached: Cached | None = None,
    files: list[Path] | None = None,
    pool: ReaderPool | None = None,
    cancel: Flag | None = None,
) -> Iterator[Document | Skipped]:
    """Every document of the corpus (or of `files` in it) in path order, or a `Skipped` for each file that cannot
    be used; as many files are read at once as `pool` (None: the default settings' pool) has workers. Raises
    `Cancelled` once `cancel` is set."""
    pool = pool or default_pool()
    ended = threading.Event()  # set when the caller stops early (an error, Ctrl-C): reads still running end at once
    stop = _Either(cancel, ended)

    def one(path: Path) -> Document | Skipped:
        try:
            return read_document(corpus, path, max_bytes, cached, pool, stop)
        except Unreadable as exc:
            return Skipped(path.relative_to(corpus).as_posix(), str(exc), *file_stamp(path))

    paths = list_files(corpus) if files is None else files
    with ThreadPoolExecutor(pool.size, thread_name_prefix="rag-read") as threads:
        pending = threads.map(one, paths)
        try:
            yield from pending
        finally:
            ended.set()
            threads.shutdown(wait=True, cancel_futures=True)


class _Either:
    """Set when either flag is (`Flag`: what the reader pool asks of a cancel)."""

    def __init__(self, first: Flag | None, second: Flag) -> None:
        self.flags = [f for f in (first, second) if f is not None]

    def is_set(self) -> bool:
        return any(f.is_set() for f in self.flags)


def default_pool() -> ReaderPool:
    from ..config import Settings
    from .sandbox import pool_for

    return pool_for(Settings())


# What a terminal acts on instead of showing it: the C0 controls but tab and newline (ESC begins the sequences that
# colour text, move the cursor or set the window title, BEL rings, a carriage return that ends no line goes back
# over it), DEL, the C1 controls (U+009B is a one-character CSI to some terminals), and Unicode's bidirectional
# embeddings, overrides and isolates (UAX #9: U+202A-U+202E, U+2066-U+2069), which reorder the text after them
# ("Trojan Source", CVE-2021-42574).
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def printable(text: str, lines: bool = False) -> str:
    """`text` safe to print: what a terminal would act on rather than show is escaped (ESC as `\\x1b`).

    By default (a file name) on one line too: every character `str.isprintable` refuses is escaped, a newline and a
    tab included. With `lines` (a passage, a report) newlines, tabs and invisible format characters (a zero-width
    joiner) are kept.
    """
    if lines:
        return TERMINAL_CONTROLS.sub(lambda found: _escaped(found.group()), text)
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, modification time in ns) of a file, or (-1, -1) if it cannot be stat'ed."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns
