"""What reading every file in a reader process costs (issue #20: at most 10% more indexing time than in-process).

    .venv/bin/python bench/sandbox.py [--repeats 3] [--small 1000]

1. Full builds (`rag.indexing.build`, full=True) of the bundled corpus, of ../shared/eval/squad11/corpus and of
   `--small` small text files (three sentences each), with the readers in their worker processes (a fresh pool each
   build, so the workers' start is counted) and, in the same run, read in this process as before issue #20;
   alternated, median of `--repeats`. The ratio sandbox / in-process is the figure. Then the same with the model
   loaded first, as `rag index` runs (it starts the reader processes before it loads the model).
2. Reading alone (no embedding) of the small files: milliseconds a file both ways, the pool's overhead a file.
3. The figures the limits' defaults rest on (rag/config.py): the slowest file of those corpora to read, the peak
   memory of a worker reading a `max_file_bytes` text file, and how many characters a second a build indexes.

Results go to bench/results/sandbox.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, write_result  # noqa: E402
from rag import Settings, indexing  # noqa: E402
from rag.embedding import Encoder  # noqa: E402
from rag.indexing import builder  # noqa: E402
from rag.readers import documents, sandbox, worker  # noqa: E402

SQUAD_CORPUS = ROOT.parent / "shared" / "eval" / "squad11" / "corpus"


class InProcess:
    """The readers as they ran before issue #20: in the asking process, one file at a time."""

    size = 1

    def warm(self) -> None:
        pass

    def read(self, suffix: str, data: bytes, cancel: Any = None) -> sandbox.Read:
        extracted, note = worker.cut(worker.extract(suffix, data), Settings().max_text_chars)
        return sandbox.Read(extracted, note)


def fresh_pools() -> None:
    for pool in sandbox._pools.values():
        pool.close()
    sandbox._pools.clear()


def build_seconds(settings: Settings, encoder: Encoder | None, in_process: bool) -> float:
    """One full build; with `encoder` None, the model is loaded first, as `rag index` does (which starts the
    reader processes before it loads the model)."""
    fresh_pools()
    original = builder.pool_for
    if in_process:
        builder.pool_for = lambda settings: InProcess()  # type: ignore[assignment,return-value]
    try:
        started = time.perf_counter()
        if encoder is None:
            builder.pool_for(settings).warm()
            encoder = Encoder(settings.model, "onnx", "int8")
        indexing.build(settings, encoder, full=True, progress=False)
        return time.perf_counter() - started
    finally:
        builder.pool_for = original


def small_corpus(folder: Path, count: int) -> Path:
    sentences = [
        "The ferry to the island leaves at noon every day.",
        "Its captain has sailed the route for {n} years.",
        "Tickets cost {n} crowns and are sold on board.",
    ]
    for i in range(count):
        text = " ".join(s.format(n=i % 97 + 3) for s in sentences) + f" Notice {i}."
        (folder / f"note{i:04d}.txt").write_text(text, encoding="utf-8")
    return folder


def compare_builds(name: str, corpus: Path, encoder: Encoder | None, repeats: int, work: Path) -> dict[str, Any]:
    settings = Settings(corpus=corpus, index=work / f"index-{name}")
    times: dict[str, list[float]] = {"sandbox": [], "in_process": []}
    for r in range(repeats):
        for way in ("sandbox", "in_process") if r % 2 == 0 else ("in_process", "sandbox"):
            times[way].append(build_seconds(settings, encoder, way == "in_process"))
    medians = {way: statistics.median(t) for way, t in times.items()}
    chars = sum(len(documents.read_document(corpus, p).text) for p in documents.list_files(corpus))
    row = {
        "files": len(documents.list_files(corpus)),
        "chars": chars,
        "sandbox_s": round(medians["sandbox"], 3),
        "in_process_s": round(medians["in_process"], 3),
        "ratio": round(medians["sandbox"] / medians["in_process"], 3),
        "chars_per_s": round(chars / medians["sandbox"]),
        "runs": {way: [round(x, 3) for x in t] for way, t in times.items()},
    }
    print(
        f"{name}: {row['files']} files, build {row['sandbox_s']:.2f} s with reader processes, "
        f"{row['in_process_s']:.2f} s in-process: ratio {row['ratio']:.3f}",
        flush=True,
    )
    return row


def reading_only(corpus: Path, repeats: int) -> dict[str, Any]:
    files = documents.list_files(corpus)
    out = {}
    for way in ("in_process", "sandbox"):
        runs = []
        for _ in range(repeats):
            fresh_pools()
            pool = InProcess() if way == "in_process" else sandbox.pool_for(Settings())
            started = time.perf_counter()
            list(documents.read_corpus(corpus, pool=pool))  # type: ignore[arg-type]
            runs.append(time.perf_counter() - started)
        out[f"{way}_ms_per_file"] = round(statistics.median(runs) * 1000 / len(files), 3)
    print(f"reading {len(files)} small files: {out}", flush=True)
    return out


def slowest_read(corpora: list[Path]) -> dict[str, Any]:
    pool = sandbox.ReaderPool(sandbox.limits_of(Settings()), size=1)
    slowest = (0.0, "")
    for corpus in corpora:
        for path in documents.list_files(corpus):
            started = time.perf_counter()
            pool.read(path.suffix.lower(), path.read_bytes())
            slowest = max(slowest, (time.perf_counter() - started, path.name))
    pool.close()
    return {"seconds": round(slowest[0], 3), "file": slowest[1]}


def peak_worker_mb(size_bytes: int) -> dict[str, float]:
    """The peak memory of a worker reading a text file of `size_bytes` (real sentences repeated): resident, and
    address space (what `reader_memory_mb` limits)."""
    pool = sandbox.ReaderPool(sandbox.limits_of(Settings(max_text_chars=size_bytes)), size=1)
    line = (ROOT / "corpus").glob("*.txt").__next__().read_text(encoding="utf-8")
    data = (line * (size_bytes // len(line.encode()) + 1)).encode()[:size_bytes]
    pool.read(".txt", data)
    reader = pool._idle.queue[-1]
    assert reader is not None
    status = Path(f"/proc/{reader.process.pid}/status").read_text()
    pool.close()
    return {key: int(status.split(f"{key}:")[1].split()[0]) / 1024 for key in ("VmHWM", "VmPeak")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=1000)
    args = parser.parse_args()
    encoder = Encoder(Settings().model, "onnx", "int8")
    figures: dict[str, Any] = {"builds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "small").mkdir()
        small = small_corpus((work / "small").resolve(), args.small)
        corpora = {"bundled": ROOT / "corpus", "squad11": SQUAD_CORPUS, f"small-{args.small}": small}
        for name, corpus in corpora.items():
            figures["builds"][name] = compare_builds(name, corpus, encoder, args.repeats, work)
        print("with the model's load, as `rag index` runs:", flush=True)
        figures["rag_index"] = {
            name: compare_builds(name, corpus, None, args.repeats, work) for name, corpus in corpora.items()
        }
        figures["reading_small_files"] = reading_only(small, args.repeats)
        figures["slowest_read"] = slowest_read([ROOT / "corpus", SQUAD_CORPUS])
    max_bytes = Settings().max_file_bytes
    figures["worker_peak_mb_reading_max_file_bytes_text"] = peak_worker_mb(max_bytes)
    print(
        f"slowest file: {figures['slowest_read']}; a worker reading {max_bytes / 1e6:g} MB of text peaks at "
        f"{figures['worker_peak_mb_reading_max_file_bytes_text']} MB",
        flush=True,
    )
    write_result("sandbox", figures)


if __name__ == "__main__":
    main()
