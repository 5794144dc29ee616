"""Shared by the benchmark scripts: repeated timing with median and spread, machine facts, result files.

Every figure is the median of repeated runs with its spread (the 10th and 90th percentiles); a limit is always
measured in the same run as the figure compared with it, because these machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUESTIONS = ROOT / "bench" / "tuning.jsonl"


def spread(samples_ms: list[float]) -> dict[str, float]:
    """Median and spread of timings in milliseconds."""
    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "median": round(float(np.median(a)), 4),
        "p10": round(float(np.percentile(a, 10)), 4),
        "p90": round(float(np.percentile(a, 90)), 4),
        "p95": round(float(np.percentile(a, 95)), 4),
        "p99": round(float(np.percentile(a, 99)), 4),
        "n": int(a.size),
    }


def time_ms(call: Callable[[], Any], repeats: int, warmup: int = 3) -> list[float]:
    """Milliseconds of `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def seconds(call: Callable[[], Any]) -> float:
    """How long one call of `call` took."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """bench/results/<name>.json with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"name": name, "machine": machine(), "figures": figures}, indent=1))
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return path


def questions(limit: int | None = None) -> list[str]:
    """Questions for timing: the team's own set (never the development set)."""
    items = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    return items[:limit] if limit else items


def peak_rss_mb() -> float:
    """The process's peak resident memory so far."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


__all__ = [
    "QUESTIONS",
    "RESULTS",
    "ROOT",
    "machine",
    "peak_rss_mb",
    "questions",
    "spread",
    "statistics",
    "time_ms",
    "write_result",
]


def respond_as(
    bot: Any, question: str, vector: np.ndarray, terms: list[str], hits: list[Any], passages: Any, top_k: int
) -> Any:
    """The response `bot` (an `Assistant`) gives to `question` from passages found some other way than its own
    search (another fusion, another engine's ranking): its scorer, reader and threshold."""
    from rag.answer import Found, Query, respond

    index = bot.index
    read = Query.read(question, vector, terms, index.vocabulary, index.words.language)
    found = Found(index, hits, passages)
    return respond(read, found, bot.scorer, bot.reader, min_confidence=bot.settings.min_confidence, top_k=top_k)


class StandIn:
    """An encoder of the real one's dimension and precision (and backend, which index settings name) that makes a
    seeded random unit vector a text, with no model: for building large indexes quickly where what is measured
    does not depend on what the vectors say (bench/segments.py, bench/versions.py)."""

    def __init__(self, real: Any) -> None:
        self.dimension, self.precision, self.backend = real.dimension, real.precision, real.backend

    def encode(self, texts: Any, batch_size: int = 8, progress: Any = None) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            v = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(self.dimension)
            out[i] = v / np.linalg.norm(v)
        if progress is not None:
            progress(len(texts))
        return out
