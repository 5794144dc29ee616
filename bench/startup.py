"""Start-up time and peak memory of `rag serve` and of a cold `rag ask`, with the index already built.

    .venv/bin/python bench/startup.py [--repeats 5] [--corpus DIR]

What is measured, and how:

* The index of the corpus (by default a copy of the bundled corpus/ in a temporary folder; the user's index/ is
  never touched) is built once first with `rag --corpus C --index I index`, so every later start only loads it.
* (a) `rag serve`: wall time from just before the process is spawned until GET /api/health on 127.0.0.1 answers
  200 (the port is read from the "Chat ready" line of `--port 0`); one untimed start first, then `--repeats` timed
  ones, each server stopped (its process group killed) before the next starts. Its peak resident memory (VmHWM from
  /proc/<pid>/status) is read after start-up, and once more after it has answered 10 questions.
* (b) `rag ask "<question>"`: wall time from spawning the process until it exits having printed the answer; one
  untimed run, then `--repeats` timed ones (the page cache is warm: this is a process cold start, not a disk one).
* (c) the same with `RAG_BACKEND=torch`, for comparison with the default ONNX Runtime encoder.
* (d) peak resident memory of `rag ask` for both backends, from `/usr/bin/time -v` (separate runs, so that the
  timings of (b) and (c) carry no wrapper) or, without it, from getrusage(RUSAGE_CHILDREN) after the child exits.

Each measurement also records "other CPU %", the CPU time every other process on the machine used meanwhile (see
bench/load.py), since a busy machine slows start-up.

Results go to bench/results/startup.json; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import questions, spread, time_ms, write_result  # noqa: E402
from bench.server import RAG, CpuMeter, Server, rag_env, workspace  # noqa: E402

ASK_TIMEOUT_S = 300.0
BUILD_TIMEOUT_S = 900.0
GNU_TIME = Path("/usr/bin/time")
MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")


def build_index(corpus: Path, index: Path) -> float:
    """Build the index once with the CLI; returns the seconds it took."""
    start = time.perf_counter()
    command = [str(RAG), "--corpus", str(corpus), "--index", str(index), "index"]
    done = subprocess.run(command, env=rag_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"rag index failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def serve_startup(corpus: Path, index: Path, repeats: int, question: str) -> dict[str, Any]:
    """(a) and the serve half of (d): start-up times, and peak memory after start-up and after 10 questions."""
    times_ms: list[float] = []
    idle_rss: list[float] = []
    busy_rss: float | None = None
    log = index.parent / "serve.log"
    for run in range(repeats + 1):  # the first start is untimed (warms the page cache)
        with Server(corpus, index, log) as server:
            rss = server.peak_rss_mb()
            if run == 0:
                continue
            times_ms.append(server.ready_s * 1000)
            if rss is not None:
                idle_rss.append(rss)
            if run == repeats:
                busy_rss = rss_after_questions(server, question, 10)
        print(f"  serve start {run}: {times_ms[-1]:.0f} ms", file=sys.stderr)
    return {
        "ready_ms": spread(times_ms),
        "peak_rss_mb_after_start": spread(idle_rss) if idle_rss else None,
        "peak_rss_mb_after_10_questions": busy_rss,
    }


def rss_after_questions(server: Server, question: str, count: int) -> float | None:
    """The server's VmHWM after answering `count` distinct questions (any failure raises)."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30.0) as client:
        for n in range(count):
            client.post("/api/ask", json={"question": f"{question} (#{n})"}).raise_for_status()
    return server.peak_rss_mb()


def ask_command(corpus: Path, index: Path, question: str) -> list[str]:
    return [str(RAG), "--corpus", str(corpus), "--index", str(index), "ask", question]


def run_ask(command: list[str], backend: str) -> str:
    """Run `rag ask` to completion; returns the answer's first line, raises if it failed or printed nothing."""
    done = subprocess.run(
        command, env=rag_env(RAG_BACKEND=backend), capture_output=True, text=True, timeout=ASK_TIMEOUT_S
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"rag ask ({backend}) failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[0]


def ask_peak_rss_mb(command: list[str], backend: str) -> float:
    """(d) for `rag ask`: peak resident memory of one run, from /usr/bin/time -v or else getrusage."""
    if GNU_TIME.exists():
        env = rag_env(RAG_BACKEND=backend)
        wrapped = [str(GNU_TIME), "-v", *command]
        done = subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=ASK_TIMEOUT_S)
        found = MAX_RSS.search(done.stderr)
        if done.returncode == 0 and found:
            return round(int(found.group(1)) / 1024, 1)
        raise RuntimeError(f"/usr/bin/time -v rag ask ({backend}) failed ({done.returncode}):\n{done.stderr[-2000:]}")
    run_ask(command, backend)  # RUSAGE_CHILDREN is the largest of all waited-for children so far: an upper bound
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def cold_ask(corpus: Path, index: Path, repeats: int, question: str, backend: str) -> dict[str, Any]:
    """(b) or (c): the cold start of `rag ask` with one backend, and its peak memory (d)."""
    command = ask_command(corpus, index, question)
    answer = run_ask(command, backend)
    times_ms = time_ms(lambda: run_ask(command, backend), repeats=repeats, warmup=0)
    rss = [ask_peak_rss_mb(command, backend) for _ in range(3)]
    print(f"  rag ask ({backend}): {spread(times_ms)['median']:.0f} ms", file=sys.stderr)
    return {"wall_ms": spread(times_ms), "peak_rss_mb": spread(rss), "answer": answer}


def table(figures: dict[str, Any]) -> str:
    serve, onnx, torch = figures["serve"], figures["ask_onnx"], figures["ask_torch"]

    def cell(s: dict[str, Any] | None) -> str:
        return "n/a" if not s else f"{s['median']:.0f} ({s['p10']:.0f}–{s['p90']:.0f})"

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    rows = [
        "| what | median ms (p10–p90) | peak RSS MB | other CPU % |",
        "|---|---|---|---|",
        f"| `rag serve` until /api/health 200 | {cell(serve['ready_ms'])} "
        f"| {cell(serve['peak_rss_mb_after_start'])} after start, {mb(serve['peak_rss_mb_after_10_questions'])} "
        f"after 10 questions | {serve['other_cpu_pct']} |",
        f"| `rag ask` cold, ONNX (default) | {cell(onnx['wall_ms'])} | {cell(onnx['peak_rss_mb'])} "
        f"| {onnx['other_cpu_pct']} |",
        f"| `rag ask` cold, RAG_BACKEND=torch | {cell(torch['wall_ms'])} | {cell(torch['peak_rss_mb'])} "
        f"| {torch['other_cpu_pct']} |",
        f"\n{figures['repeats']} timed runs each, after one untimed; index build (once): "
        f"{figures['index_build_s']:.1f} s; RSS via {figures['rss_method']}; other CPU %: CPU time of every other "
        "process on the machine during that measurement, % of all cores",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each measurement (default 5)")
    parser.add_argument("--corpus", type=Path, help="corpus folder (default: a copy of the bundled corpus/)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not RAG.exists():
        sys.exit(f"error: {RAG} not found; run from the project's virtualenv")
    question = questions(1)[0]
    with workspace(args.corpus) as (corpus, index):
        build_s = build_index(corpus, index)
        print(f"index built in {build_s:.1f} s", file=sys.stderr)
        figures = {
            "repeats": args.repeats,
            "question": question,
            "index_build_s": round(build_s, 2),
            "rss_method": "/usr/bin/time -v" if GNU_TIME.exists() else "getrusage(RUSAGE_CHILDREN)",
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        }
        phases: dict[str, Callable[[], dict[str, Any]]] = {
            "serve": lambda: serve_startup(corpus, index, args.repeats, question),
            "ask_onnx": lambda: cold_ask(corpus, index, args.repeats, question, "onnx"),
            "ask_torch": lambda: cold_ask(corpus, index, args.repeats, question, "torch"),
        }
        for name, phase in phases.items():
            meter = CpuMeter(os.getpid(), children=True)
            figures[name] = phase() | {"other_cpu_pct": meter.other_pct()}
    write_result("startup", figures)
    print(table(figures))


if __name__ == "__main__":
    main()
