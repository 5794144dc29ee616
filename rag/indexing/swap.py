"""Replacing an index folder whole, safely against crashes and against readers in other processes.

A writer builds the new copy in `.NAME.new-*`, then swaps it in with two renames (the old copy goes to
`.NAME.old-*`; the names hold the pid and a random part, so they are never reused). Writers hold an exclusive
file lock (`.NAME.lock`) for the whole build. Readers never wait and never move anything while a writer holds the
lock: if they find the folder missing (the instant between the two renames, or a crash there), they read the
newest complete old copy where it is. Only a process holding the lock finishes an interrupted swap, and writers
clear what killed builds left behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST = "manifest.json"  # written last: a folder that has one is complete
log = logging.getLogger("rag")  # a warning, so that a build that seems stuck says why (the CLI prints it)


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
