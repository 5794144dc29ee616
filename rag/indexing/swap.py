"""Replacing an index folder whole, safely against crashes and against readers in other processes.

A writer builds the new copy in `.NAME.new-*` (removed again if writing it fails: a full disk), then swaps it in
with two renames (the old copy goes to `.NAME.old-*`; the names hold the pid and a random part, so they are never
reused). Writers hold an exclusive file lock (`.NAME.lock`) for the whole build. Readers never wait and never move
anything while a writer holds the lock: if they find the folder missing (the instant between the two renames, or a
crash there), they read the newest complete old copy where it is. Only a process holding the lock finishes an
interrupted swap, and writers holding it clear what killed builds left behind.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RagError

MANIFEST = "manifest.json"  # written last: a folder that has one is complete
log = logging.getLogger("rag")  # a warning, so that a build that seems stuck says why (the CLI prints it)

# What to do about an error writing the index, by errno (anything else: the error itself says what is wrong).
ADVICE = {
    errno.ENOSPC: "free some space on that disk",
    errno.EDQUOT: "free some space or raise the disk quota",
    **dict.fromkeys((errno.EROFS, errno.EACCES, errno.EPERM), "make that folder writable (or set RAG_INDEX elsewhere)"),
}


class IndexUnwritable(RagError, OSError):
    """The new index could not be written (a full disk, a quota, a read-only folder); the old one is unchanged.
    An `OSError` too, with the failed write's errno: what `save` raised before it said what to do."""

    code = "index_unwritable"

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno 28] ..." form
        return str(self.args[0]) if self.args else ""


def unwritable(folder: Path, exc: OSError, tmp: Path | None = None) -> IndexUnwritable:
    """The error to report when writing the index for `folder` (in `tmp`) failed with `exc`: why, and what to do.
    The file is named as it is in the index, not by its temporary folder (the server shows the message)."""
    why = exc.strerror or str(exc)
    if exc.filename:
        name = Path(os.fsdecode(exc.filename))
        shown = name.relative_to(tmp).as_posix() if tmp is not None and name.is_relative_to(tmp) else name.name
        why += f", writing {shown}"
    advice = ADVICE.get(exc.errno or 0, "fix that")
    kept = "the index there is unchanged" if folder.exists() else "there is still no index there"
    error = IndexUnwritable(
        f"cannot write the new index in {folder} ({why}), so {kept}; {advice}, then run `rag index`"
    )
    error.errno, error.strerror = exc.errno, exc.strerror
    return error


@contextmanager
def writer_lock(folder: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of `folder`; yields False (not holding it) if `wait` is False and it is taken, or
    if the lock file cannot be created (a read-only place)."""
    folder = folder.absolute()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        handle = open(folder.with_name(f".{folder.name}.lock"), "a")  # noqa: SIM115 (held across the yield)
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            log.warning("waiting for another build of %s to finish...", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield True


def locate(folder: Path) -> Path:
    """Where the current copy of `folder` is: itself, or (mid-swap, or after a crash there) its newest complete
    old copy, which is moved back into place when no writer is at work."""
    if folder.exists() or not _complete_old_copies(folder):
        return folder
    with writer_lock(folder, wait=False) as mine:
        if mine:
            _put_back(folder)
    leftovers = _complete_old_copies(folder)
    return folder if folder.exists() or not leftovers else leftovers[0]


def replace(folder: Path, new: Path) -> None:
    """Put the complete folder `new` in the place of `folder` (call while holding the writer lock)."""
    old = folder.with_name(f".{folder.name}.old-{_unique()}")
    if folder.exists():
        os.rename(folder, old)
    os.rename(new, folder)
    shutil.rmtree(old, ignore_errors=True)


def new_folder(folder: Path) -> Path:
    """An empty folder beside `folder` to build its next copy in."""
    path = folder.with_name(f".{folder.name}.new-{_unique()}")
    path.mkdir(parents=True)
    return path


@contextmanager
def new_copy(folder: Path) -> Iterator[Path]:
    """A new folder beside `folder` to write its next copy in, removed if anything fails meanwhile (Ctrl-C too): on
    a full disk, half a copy left behind would keep the disk full, and each retry would add one. An `OSError` is
    raised as `IndexUnwritable`, which says what to do."""
    tmp: Path | None = None
    try:
        tmp = new_folder(folder)
        yield tmp
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, IndexUnwritable):
            raise unwritable(folder, exc, tmp) from exc
        raise


def clean(folder: Path) -> None:
    """Finish an interrupted swap and remove what killed builds left (call while holding the writer lock)."""
    _put_back(folder)
    for stale in folder.parent.glob(f".{folder.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if folder.exists():
        for stale in folder.parent.glob(f".{folder.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)


def _unique() -> str:
    """The process id (to tell whose leftovers they are) and a random part (pids are reused)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _put_back(folder: Path) -> None:
    """Move the newest complete old copy back into place if the folder is missing (writer lock held)."""
    leftovers = _complete_old_copies(folder)
    if leftovers and not folder.exists():
        os.rename(leftovers[0], folder)


def _complete_old_copies(folder: Path) -> list[Path]:
    found = [p for p in folder.parent.glob(f".{folder.name}.old-*") if (p / MANIFEST).exists()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
