"""Edge: the pools that model work and long pages run in, apart from the server's own threads.

FastAPI runs a plain `def` route in one shared thread pool (40 threads). When 200 questions were asked at once,
they took every thread and `/api/health` waited 1.55 s behind them (issue #11). Questions and answers therefore
run in their own small pool, and a question that finds more than `ask_queue` others waiting is refused at once
with 503 and `Retry-After` instead of waiting without bound; the health, status and static routes never wait for
the model.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..errors import Busy

T = TypeVar("T")

# 8 workers: the encoder batches the questions in flight into one call of the model (embedding._Batcher), so a
# few more workers than cores keep those batches full while a worker fuses and selects; each call of the model
# already uses both cores. bench/load.py measures the throughput this gives against the old shared pool.
ASK_WORKERS = 8

# Document pages: each holds its document's text while it is drawn (5 MB for the document of issue #11, where 40
# views at once took the server from 375 MB to 1.3 GB); 2 at a time and 32 waiting bound that to ~10 MB of text
# drawn at once, and a page of 100,000 characters takes a few milliseconds to draw.
RENDER_WORKERS = 2
RENDER_QUEUE = 32


class Pool:
    """A bounded queue in front of a thread pool: `run` refuses with `Busy` when `depth` calls are in it."""

    def __init__(self, workers: int, depth: int, name: str) -> None:
        self.depth = depth
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls queued or running now."""
        return self._pending

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self.depth:
                raise Busy(f"the server has {self._pending} requests waiting; ask again in a moment")
            self._pending += 1
        try:
            # In the request's context, as Starlette's own pool runs a route: the metrics see which request answered.
            context = contextvars.copy_context()
            return await asyncio.get_running_loop().run_in_executor(self._executor, context.run, fn, *args)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
