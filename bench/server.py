"""`rag serve` as a benchmark sees it: started on 127.0.0.1 in its own process group (and always stopped), the
environment it runs in, a throw-away corpus and index, and how busy the rest of the machine was meanwhile.
Shared by bench/load.py, bench/startup.py, bench/soak.py and bench/kill.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx

from bench.common import ROOT

RAG = Path(sys.executable).parent / "rag"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
READY_LINE = re.compile(r"Chat ready at http://\[?[^\s/]*?\]?:(\d+)/")


def rag_env(**extra: str) -> dict[str, str]:
    """The environment for `rag` subprocesses: offline, no proxies, default settings (as the in-process `Settings()`
    has) with the ONNX backend, unless overridden by `extra`."""
    from rag.config import FIELDS

    settings = {f"RAG_{name.upper()}" for name, _, _ in FIELDS}
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in settings}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_BACKEND": "onnx", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Server:
    """`rag serve` on 127.0.0.1 in its own process group; `with Server(...)` stops the whole group on exit."""

    def __init__(self, corpus: Path, index: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.command = [str(RAG), "--corpus", str(corpus), "--index", str(index), "serve", "--host", HOST]
        self.command += ["--port", "0"]
        self.log = log
        self.env = env or rag_env()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ready_s = float("nan")

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> float:
        """Start the process and wait (at most 120 s) for GET /api/health to answer 200; returns the seconds taken."""
        with open(self.log, "wb") as out:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        deadline = started + READY_TIMEOUT_S
        port = self._wait_for_port(deadline)
        self.url = f"http://{HOST}:{port}"
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.perf_counter() < deadline:
                self._check_alive()
                try:
                    if client.get(f"{self.url}/api/health").status_code == 200:
                        self.ready_s = time.perf_counter() - started
                        return self.ready_s
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        raise RuntimeError(f"rag serve: /api/health not 200 within {READY_TIMEOUT_S:.0f} s\n{self.log_tail()}")

    def _wait_for_port(self, deadline: float) -> int:
        while time.perf_counter() < deadline:
            self._check_alive()
            found = READY_LINE.search(self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            time.sleep(0.01)
        raise RuntimeError(f"rag serve: no 'Chat ready' line within {READY_TIMEOUT_S:.0f} s\n{self.log_tail()}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"rag serve exited with code {self.process.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("rag serve is not running")
        return self.process.pid

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far (VmHWM), or None if it cannot be read."""
        if self.process is None:
            return None
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s; safe to call twice."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)  # start_new_session: the group id is the child's pid
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


class CpuMeter:
    """How busy the rest of the machine was during a run: CPU time spent by every process but `pids`, as a percent
    of all cores (steal included). Anything well above 0 means the figures of that run are depressed by others."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, *pids: int, children: bool = False) -> None:
        self.pids = pids
        self.children = children  # count the waited-for children of `pids` as theirs (e.g. finished subprocesses)
        self._start = (time.perf_counter(), self._busy_s(), self._ours_s())

    def other_pct(self) -> float:
        wall, busy, ours = (now - then for now, then in zip(self._read(), self._start, strict=True))
        return round(max(0.0, busy - ours) / (wall * (os.cpu_count() or 1)) * 100, 1) if wall > 0 else 0.0

    def _read(self) -> tuple[float, float, float]:
        return time.perf_counter(), self._busy_s(), self._ours_s()

    def _busy_s(self) -> float:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, _proc("stat").split()[1:9])
        return (user + nice + system + irq + softirq + steal) / self.TICK

    def _ours_s(self) -> float:
        total = 0
        for pid in self.pids:
            fields = _proc(f"{pid}/stat").rsplit(")", 1)[-1].split()
            times = [int(t) for t in fields[11 : 15 if self.children else 13]]  # utime, stime (cutime, cstime)
            total += sum(times)
        return total / self.TICK


def _proc(name: str) -> str:
    try:
        return Path(f"/proc/{name}").read_text().split("\n", 1)[0]
    except OSError:
        return ""


@contextmanager
def workspace(corpus: Path | None) -> Iterator[tuple[Path, Path]]:
    """(corpus, index) in a temporary folder: a copy of the bundled corpus unless one is given; a fresh index."""
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        if corpus is None:
            corpus = Path(tmp) / "corpus"
            shutil.copytree(ROOT / "corpus", corpus)
        yield corpus.resolve(), Path(tmp) / "index"
