"""Readers run apart from the process that asked: a pool of child processes with memory, time and output limits.

A document's reader is a C library for PDF (PDFium), an XML parser for DOCX and HTML, and charset detection for
text: a hostile file of a few kilobytes can make any of them allocate gigabytes, run for an hour, or abort the
process outright (PDFium calls `std::terminate`, which no `except` catches; issue #20). So the bytes are read by a
worker process that

- has an address-space limit (`reader_memory_mb`, `RLIMIT_AS`): an allocation past it fails in the worker;
- is killed when one file takes longer than `reader_seconds` (wall clock, watched by the parent), and has a CPU-time
  limit a little past it, and ends when the parent is gone;
- cuts text past `max_text_chars` before sending it back, with a note that says so;
- answers in plain JSON, sees none of the server's settings or tokens, and prints nowhere (`worker.py`).

This limits what a file costs, not what a reader may do: a reader taken over through a bug in its library runs as
the server's user (README, Security). A worker that dies, runs out of memory or time gives that file a skip reason;
the next file gets a fresh worker. Workers stay up between files, so a folder of small files pays for the processes
once (bench/sandbox.py); a build starts them first thing (`warm`), so that their start overlaps its own. Each is a
fresh interpreter (`python -P -m rag.readers.worker`), never a fork of the asking process, which holds threads and
a model.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import Cancelled, ReaderUnavailable
from .base import Extracted, Unreadable

if TYPE_CHECKING:
    from ..config import Settings

POLL_SECONDS = 0.05  # how often a waiting parent looks at the cancel flag: a cancel ends a read within this
CANCELLED = "the rebuild was cancelled; the index was left as it was"
# What a worker may see of the server's environment: enough to find Python, its packages and the locale; never the
# tokens and settings (RAG_*), which a reader taken over by a hostile file could otherwise read.
WORKER_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


class Flag(Protocol):
    """What a read asks of a cancel: a `threading.Event`, or anything that can say it is set."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class ReaderLimits:
    memory_mb: int  # address space of a worker (RLIMIT_AS)
    seconds: float  # wall clock for one file
    max_chars: int  # text past this is cut, with a note


@dataclass(frozen=True)
class Read:
    """A reader's result: what it extracted, and a note when the text was cut."""

    extracted: Extracted
    note: str | None = None


class _Worker:
    """One worker process, started as `python -P -m rag.readers.worker` (not with multiprocessing, whose spawn and
    forkserver run the asking program's main module again in the child: a script without a `__main__` guard would
    start itself once a worker), talking over a socket pair with multiprocessing's framing. `-P`: the folder the
    server was started from is not searched for modules, so no file dropped there runs in the worker."""

    def __init__(self, memory_mb: int) -> None:
        mine, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])  # the worker imports this very `rag`
        env = {k: v for k, v in os.environ.items() if k in WORKER_ENVIRONMENT}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        command = [sys.executable, "-P", "-m", "rag.readers.worker", str(theirs.fileno()), str(memory_mb)]
        try:
            self.process = subprocess.Popen(
                command,
                pass_fds=[theirs.fileno()],
                env=env,
                cwd=package_root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # a library's own messages never reach the terminal or --json output
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches the server, which stops its workers
            )
        except OSError as exc:
            mine.close()
            raise ReaderUnavailable(f"could not start a reader process ({exc.strerror or exc})") from None
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())

    def exitcode(self) -> int | None:
        """None while it runs."""
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.conn.close()


class ReaderPool:
    """`size` worker processes that read files under `limits`; thread-safe (each call takes a free worker)."""

    def __init__(self, limits: ReaderLimits, size: int = 2) -> None:
        self.limits = limits
        self.size = size
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)  # a slot whose worker starts when first needed
        self._closed = False

    def read(self, suffix: str, data: bytes, cancel: Flag | None = None) -> Read:
        """The text of `data` read by the reader of `suffix` in a worker; raises `Unreadable` with the reason
        (also when the worker crashed, ran out of memory or time), `Cancelled` once `cancel` is set (while it
        waits for a free worker, or reads: that worker is killed at once), `ReaderUnavailable` when no worker
        process can be started."""
        worker = self._take(cancel)
        try:
            if worker is None or worker.exitcode() is not None:  # not started yet, or stopped after its last file
                worker = self._start()
            answer = self._ask(worker, suffix, data, cancel)
        finally:
            if self._closed and worker is not None:
                worker.stop()
            self._idle.put(worker)
        return answer

    def _take(self, cancel: Flag | None) -> _Worker | None:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(CANCELLED)
            if self._closed:
                raise ReaderUnavailable("the reader processes were stopped (the program is ending)")
            try:
                return self._idle.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def warm(self) -> None:
        """Start the workers that are not running, without waiting for them: a build calls this first, so that
        their start overlaps its own (a worker takes about 0.1 s to start). A worker that cannot start is left to
        the first read, which says why."""
        taken: list[_Worker | None] = []
        while len(taken) < self.size:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                break  # the others are reading
        try:
            for i, worker in enumerate(taken):
                if not self._closed and (worker is None or worker.exitcode() is not None):
                    taken[i] = self._start()
        except ReaderUnavailable:
            pass
        finally:
            for worker in taken:
                self._idle.put(worker)

    def _start(self) -> _Worker:
        return _Worker(self.limits.memory_mb)

    def _ask(self, worker: _Worker, suffix: str, data: bytes, cancel: Flag | None) -> Read:
        """`worker`'s answer for one file. Whatever ends this early (a cancel, the time limit, an interrupt) stops
        the worker first, so that a worker still reading is never handed the next file."""
        limits = self.limits
        try:
            worker.conn.send((suffix, data, limits.max_chars, limits.seconds))
            deadline = time.monotonic() + limits.seconds
            while not worker.conn.poll(POLL_SECONDS):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(CANCELLED)
                if time.monotonic() > deadline:
                    raise Unreadable(f"could not be read within {limits.seconds:g} s (reader_seconds)")
                if worker.exitcode() is not None:
                    break
            answer = json.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            worker.stop()
            raise Unreadable(self._death(worker.exitcode())) from None
        except BaseException:
            worker.stop()
            raise
        if answer["status"] == "ok":
            pages = tuple(int(p) for p in answer["pages"])
            extracted = Extracted(str(answer["text"]), str(answer["format"]), answer["title"], pages)
            return Read(extracted, answer["note"])
        if answer["status"] == "memory":
            worker.stop()  # a worker that met MemoryError may hold a damaged heap: a fresh one reads the next file
            raise Unreadable(f"could not be read within {limits.memory_mb} MB of memory (reader_memory_mb)")
        raise Unreadable(str(answer["reason"]))

    def _death(self, code: int | None) -> str:
        """Why a worker that ended on its own did: PDFium and the C++ parsers abort (SIGABRT) when an allocation
        past the memory limit fails; SIGXCPU is the worker's own CPU limit; SIGKILL from outside is most often the
        system's out-of-memory killer."""
        if code is None or code >= 0:
            return f"the reader stopped (exit code {code})"
        if -code == signal.SIGXCPU:
            return f"could not be read within {self.limits.seconds:g} s (reader_seconds)"
        try:
            name = signal.Signals(-code).name
        except ValueError:  # a real-time signal has no name
            name = f"signal {-code}"
        return (
            f"the reader stopped ({name}): a damaged file, or one that needs more than {self.limits.memory_mb} MB "
            "(reader_memory_mb)"
        )

    def close(self) -> None:
        """Stop the idle workers now, and each busy one as its read returns; reads asked for later are refused."""
        self._closed = True
        stopped = 0
        while stopped < self.size:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            if worker is not None:
                worker.stop()
            stopped += 1
        for _ in range(stopped):
            self._idle.put(None)


def limits_of(settings: Settings) -> ReaderLimits:
    return ReaderLimits(settings.reader_memory_mb, settings.reader_seconds, settings.max_text_chars)


_pools: dict[ReaderLimits, ReaderPool] = {}
_pools_lock = threading.Lock()


def pool_for(settings: Settings) -> ReaderPool:
    """The process's pool for the reader limits of `settings`, made when first asked for (the server's builds,
    uploads and watcher share it; its workers start when first needed)."""
    limits = limits_of(settings)
    with _pools_lock:
        pool = _pools.get(limits)
        if pool is None:
            pool = _pools[limits] = ReaderPool(limits, size=max(1, min(2, os.cpu_count() or 1)))
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_pools.values()):
        pool.close()
