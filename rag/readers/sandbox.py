"""Readers run apart from the process that asked: a pool of child processes with memory, time and output limits.

A document's reader is a C library for PDF (PDFium), an XML parser for DOCX and HTML, and charset detection for
text: a hostile file of a few kilobytes can make any of them allocate gigabytes, run for an hour, or abort the
process outright (PDFium calls `std::terminate`, which no `except` catches; issue #20). So the bytes are read by a
worker process that

- has an address-space limit (`reader_memory_mb`, `RLIMIT_AS`): an allocation past it fails in the worker;
- is killed when one file takes longer than `reader_seconds` (wall clock, watched by the parent), and has a CPU-time
  limit a little past it, so that it ends even if the parent is gone;
- cuts text past `max_text_chars` before sending it back, with a note that says so.

A worker that dies, runs out of memory or time gives that file a skip reason; the next file gets a fresh worker.
Workers stay up between files, so a folder of small files pays for the processes once (bench/sandbox.py); a build
starts them first thing (`warm`), so that their start overlaps its own. Each is a fresh interpreter
(`python -m rag.readers.sandbox`), never a fork of the asking process, which holds threads and a model.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled
from . import READERS
from .base import Extracted, Unreadable

if TYPE_CHECKING:
    from ..config import Settings

POLL_SECONDS = 0.05  # how often a waiting parent looks at the cancel flag: a cancel ends a read within this
CPU_GRACE_SECONDS = 5  # the worker's own CPU limit, past `reader_seconds`: the parent kills it first when alive


@dataclass(frozen=True)
class Limits:
    memory_mb: int  # address space of a worker (RLIMIT_AS)
    seconds: float  # wall clock for one file
    max_chars: int  # text past this is cut, with a note


@dataclass(frozen=True)
class Read:
    """A reader's result: what it extracted, and a note when the text was cut."""

    extracted: Extracted
    note: str | None = None


def _serve(fd: int, memory_mb: int) -> None:
    """A worker: read (suffix, bytes, max_chars, seconds) jobs from socket `fd`, answer each, until the parent is
    gone."""
    conn = Connection(fd)
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:  # a limit the server itself runs under is never raised
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal reaches the whole group: the parent decides
    while True:
        try:
            suffix, data, max_chars, seconds = conn.recv()
        except (EOFError, OSError):
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = math.ceil(used.ru_utime + used.ru_stime + seconds + CPU_GRACE_SECONDS)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.RLIM_INFINITY))
        conn.send(_read(suffix, data, max_chars))
        del data


def _read(suffix: str, data: bytes, max_chars: int) -> tuple[str, Any]:
    try:
        return "ok", cut(extract(suffix, data), max_chars)
    except Unreadable as exc:
        return "unreadable", str(exc)
    except MemoryError:
        return "memory", None


def extract(suffix: str, data: bytes) -> Extracted:
    """The reader's text of `data`, in this process (what a worker runs; everything else reads through a
    `ReaderPool`); a library's failure on a damaged file is an `Unreadable` like any other."""
    try:
        return READERS[suffix](data)
    except Unreadable:
        raise
    except Exception as exc:  # a damaged file can make a reader's library raise anything
        raise Unreadable(f"damaged or not a {suffix.lstrip('.')} file ({type(exc).__name__})") from None


def cut(extracted: Extracted, max_chars: int) -> Read:
    """`extracted` with its text cut at `max_chars` (at the last whitespace before it), and a note when it was."""
    text = extracted.text
    if len(text) <= max_chars:
        return Read(extracted)
    end = text.rfind(" ", max_chars // 2, max_chars + 1)
    end = end if end > 0 else max_chars
    pages = tuple(p for p in extracted.pages if p < end)
    note = f"text cut at {end:,} of {len(text):,} characters (max_text_chars {max_chars:,})"
    return Read(replace(extracted, text=text[:end], pages=pages), note)


class _Worker:
    """One worker process, started as `python -m rag.readers.sandbox` (not with multiprocessing, whose spawn and
    forkserver run the asking program's main module again in the child: a script without a `__main__` guard would
    start itself once a worker), talking over a socket pair with multiprocessing's framing."""

    def __init__(self, memory_mb: int) -> None:
        mine, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])  # the worker imports this very `rag`
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "rag.readers.sandbox", str(theirs.fileno()), str(memory_mb)]
        self.process = subprocess.Popen(
            command, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        theirs.close()
        self.conn = Connection(mine.detach())

    def alive(self) -> bool:
        return self.process.poll() is None

    def exitcode(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.conn.close()


class ReaderPool:
    """`size` worker processes that read files under `limits`; thread-safe (each call takes a free worker)."""

    def __init__(self, limits: Limits, size: int = 2) -> None:
        self.limits = limits
        self.size = size
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)  # a slot whose worker starts when first needed
        self._closed = False

    def read(self, suffix: str, data: bytes, cancel: threading.Event | None = None) -> Read:
        """The text of `data` read by the reader of `suffix` in a worker; raises `Unreadable` with the reason
        (also when the worker crashed, ran out of memory or time), or `Cancelled` once `cancel` is set (the
        worker reading is killed at once)."""
        worker = self._idle.get()
        try:
            if self._closed:
                raise Unreadable("the reader pool is closed")
            if worker is None or not worker.alive():  # not started yet, or stopped after its last file
                worker = self._start()
            worker, answer = self._ask(worker, suffix, data, cancel)
        finally:
            self._idle.put(worker)
        return answer

    def warm(self) -> None:
        """Start the workers that are not running, without waiting for them: a build calls this first, so that
        their start overlaps its own (a worker takes about 0.1 s to start)."""
        taken: list[_Worker | None] = []
        while len(taken) < self.size:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                break  # the others are reading
        for worker in taken:
            try:
                if not self._closed and (worker is None or not worker.alive()):
                    worker = self._start()
            finally:
                self._idle.put(worker)

    def _start(self) -> _Worker:
        return _Worker(self.limits.memory_mb)

    def _ask(
        self, worker: _Worker, suffix: str, data: bytes, cancel: threading.Event | None
    ) -> tuple[_Worker | None, Read]:
        limits = self.limits
        try:
            worker.conn.send((suffix, data, limits.max_chars, limits.seconds))
            deadline = time.monotonic() + limits.seconds
            while not worker.conn.poll(POLL_SECONDS):
                if cancel is not None and cancel.is_set():
                    worker.stop()
                    raise Cancelled("the rebuild was cancelled; the index was left as it was")
                if time.monotonic() > deadline:
                    worker.stop()
                    raise Unreadable(f"could not be read within {limits.seconds:g} s (reader_seconds)")
                if not worker.alive():
                    break
            status, value = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            worker.stop()
            raise Unreadable(self._death(worker.exitcode())) from None
        if status == "ok":
            return worker, value
        if status == "memory":
            worker.stop()  # a worker that met MemoryError may hold a damaged heap: a fresh one reads the next file
            raise Unreadable(self._out_of_memory())
        raise Unreadable(value)

    def _out_of_memory(self) -> str:
        return f"could not be read within {self.limits.memory_mb} MB of memory (reader_memory_mb)"

    def _death(self, code: int | None) -> str:
        """Why a worker that ended on its own did: PDFium and the C++ parsers abort (SIGABRT) when an allocation
        past the memory limit fails; SIGXCPU is the worker's own CPU limit; SIGKILL from outside is most often the
        system's out-of-memory killer."""
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            if -code == signal.SIGXCPU:
                return f"could not be read within {self.limits.seconds:g} s (reader_seconds)"
            return (
                f"the reader stopped ({name}): a damaged file, or one that needs more than "
                f"{self.limits.memory_mb} MB (reader_memory_mb)"
            )
        return f"the reader stopped (exit code {code})"

    def close(self) -> None:
        """Stop the idle workers. One reading now ends after its read: its answer meets a closed socket (and its CPU
        limit bounds the read itself)."""
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


def limits_of(settings: Settings) -> Limits:
    return Limits(settings.reader_memory_mb, settings.reader_seconds, settings.max_text_chars)


_pools: dict[Limits, ReaderPool] = {}
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


if __name__ == "__main__":  # a worker: served by the module under its own name, so what it sends unpickles
    from rag.readers.sandbox import _serve as serve

    serve(int(sys.argv[1]), int(sys.argv[2]))
