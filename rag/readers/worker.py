"""The reader process's side of `sandbox.py`: `python -P -m rag.readers.worker FD MEMORY_MB`.

It limits its own address space, then reads (suffix, bytes, max_chars, seconds) jobs from socket FD, one at a time,
and answers each with plain JSON (never a pickle: the server must not run what a reader taken over by a hostile
file could send). Before each job it sets its CPU limit a little past the job's wall-clock limit, so that a read
ends even if the server is gone; a thread ends the process as soon as the server is.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection

from . import READERS
from .base import Extracted, Unreadable

CPU_GRACE_SECONDS = 5  # the worker's own CPU limit, past `reader_seconds`: the parent kills it first when alive
ORPHAN_CHECK_SECONDS = 1.0  # how often a worker looks whether the server that started it is still there


def serve(fd: int, memory_mb: int) -> None:
    """Answer jobs from socket `fd` until the parent closes it or is gone."""
    conn = Connection(fd)
    _limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    parent = os.getppid()
    threading.Thread(target=_end_when_orphaned, args=(parent,), daemon=True).start()
    while True:
        try:
            suffix, data, max_chars, seconds = conn.recv()
        except (EOFError, OSError):
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        _limit(resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime + seconds + CPU_GRACE_SECONDS), soft=True)
        answer = json.dumps(read(suffix, data, max_chars)).encode("utf-8", "surrogatepass")
        del data
        try:
            conn.send_bytes(answer)
        except OSError:  # the parent is gone
            return


def _limit(which: int, value: int, soft: bool = False) -> None:
    """Set limit `which` to `value` (the soft one only, when `soft`), never above the hard limit the server itself
    runs under (a process may not raise it)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard if soft else value))


def _end_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)


def read(suffix: str, data: bytes, max_chars: int) -> dict[str, object]:
    """A job's answer: {"status": "ok", text, format, title, pages, note}, or "unreadable" with the reason, or
    "memory" when the reader ran out of memory (the parent then replaces this worker)."""
    try:
        extracted, note = cut(extract(suffix, data), max_chars)
    except Unreadable as exc:
        return {"status": "unreadable", "reason": str(exc)}
    except MemoryError:
        return {"status": "memory"}
    fields = {"text": extracted.text, "format": extracted.format, "title": extracted.title}
    return {"status": "ok", **fields, "pages": list(extracted.pages), "note": note}


def extract(suffix: str, data: bytes) -> Extracted:
    """The reader's text of `data`, in this process (what a worker runs; everything else reads through a
    `sandbox.ReaderPool`); a library's failure on a damaged file is an `Unreadable` like any other, running out of
    memory is not (the worker that did is replaced)."""
    try:
        return READERS[suffix](data)
    except (Unreadable, MemoryError):
        raise
    except Exception as exc:  # a damaged file can make a reader's library raise anything
        raise Unreadable(f"damaged or not a {suffix.lstrip('.')} file ({type(exc).__name__})") from None


def cut(extracted: Extracted, max_chars: int) -> tuple[Extracted, str | None]:
    """`extracted` with its text cut at `max_chars` (after the last whitespace in the second half of that, else at
    `max_chars`), and a note saying so; the note is None when nothing was cut."""
    text = extracted.text
    if len(text) <= max_chars:
        return extracted, None
    low = max_chars // 2
    space = max(text.rfind(c, low, max_chars) for c in " \n\t\u3000\u00a0")  # not \r: it may start a \r\n
    end = space + 1 if space >= low else max_chars
    if text[end - 1 : end + 1] == "\r\n":  # a cut at max_chars never splits a line break in two
        end -= 1
    pages = tuple(p for p in extracted.pages if p < end)
    note = f"text cut at {end:,} of {len(text):,} characters (max_text_chars {max_chars:,})"
    return replace(extracted, text=text[:end], pages=pages), note


if __name__ == "__main__":  # served by the module under its own name, as the parent imports it
    from rag.readers.worker import serve as serve_here

    serve_here(int(sys.argv[1]), int(sys.argv[2]))
