"""What an update costs as the index grows (issue #22): adding or removing one document in an index of 10,000 and
of 100,000 documents, and how soon `rag serve --watch` cites a new file.

Corpora are made as bench/indexing.py makes them (3 to 6 real sentences a document). Embedding the 100,000-document
base with the real model would take about 45 minutes here, so the base index is built with a stand-in encoder of
the same dimension (a seeded random unit vector per text, no model): what an update costs besides embedding does not
depend on what the vectors say. Every update is then made with the real model (ONNX, the default precision), and
the time it spends embedding is measured beside it (the bare encoder on the new document's sentences), so the
figure the issue bounds, "at most 2 s plus the embedding of that document's sentences", is the update's time minus
that.

Measured per size, each repeated: (1) an update as `rag serve` makes it (`indexing.build(..., loaded=<the index it
serves>, paths=<the file>, merge=False)`, then its merges apart); (2) the same as `rag index` makes it, which reads
the index from disk and walks the corpus first, in this process and as the whole command (a new process); (3)
removing one document (as the server does); (4) with `Service.watch()` over the index, the time from writing a new
file to the first answer that cites it, while a thread asks questions throughout (their failures and latencies
counted).

    .venv/bin/python bench/segments.py [--sizes 10000 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import ROOT, StandIn, spread, write_result  # noqa: E402
from bench.indexing import real_sentences, write_corpus  # noqa: E402
from rag import Assistant, Settings, indexing  # noqa: E402
from rag.embedding import Encoder  # noqa: E402
from rag.server.service import Service  # noqa: E402
from rag.text.chunking import make_chunks  # noqa: E402

NEW_DOCUMENT = (
    "Hydrogen Plans {n}\n\nJapan will fund hydrogen plant number {n} near Odesa from 2027. The plant will make "
    "green hydrogen for the steel works of Zaporizhzhia. Its first stage costs 40 million dollars."
)


def embedding_seconds(encoder: Encoder, text: str, repeats: int = 5) -> float:
    """The bare encoder on the sentences of `text` (what an update embeds for it), median of `repeats`."""
    sentences = [c.text[a - c.start : b - c.start] for c in make_chunks("x", text) for a, b in c.sentences]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(sentences)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def one_size(root: Path, n_docs: int, encoder: Encoder, repeats: int) -> dict[str, Any]:
    settings = Settings(corpus=root / f"c{n_docs}", index=root / f"i{n_docs}", precision=encoder.precision)
    write_corpus(settings.corpus, n_docs, real_sentences(), seed=3)
    start = time.perf_counter()
    index, _ = indexing.build(settings, StandIn(encoder), progress=False)  # type: ignore[arg-type]
    base_s = time.perf_counter() - start
    served, cli, removal, embed = [], [], [], []
    for i in range(repeats):
        text = NEW_DOCUMENT.format(n=i)
        (settings.corpus / f"new-{i}.txt").write_text(text, encoding="utf-8")
        embed.append(embedding_seconds(encoder, text))
        start = time.perf_counter()
        index, report = indexing.build(
            settings, encoder, progress=False, merge=False, loaded=index, paths=[f"new-{i}.txt"]
        )
        served.append(time.perf_counter() - start)
        assert report.added == [f"new-{i}.txt"] and report.chunks_embedded >= 1
        index = indexing.merge_segments(settings, index)  # as the server does after it
        (settings.corpus / f"cli-{i}.txt").write_text(text.replace("Hydrogen", "Solar"), encoding="utf-8")
        start = time.perf_counter()
        index, report = indexing.build(settings, encoder, progress=False)
        cli.append(time.perf_counter() - start)
        (settings.corpus / f"cli-{i}.txt").unlink()
        start = time.perf_counter()
        index, report = indexing.build(
            settings, encoder, progress=False, merge=False, loaded=index, paths=[f"cli-{i}.txt"]
        )
        removal.append(time.perf_counter() - start)
        assert report.removed == [f"cli-{i}.txt"]
        index = indexing.merge_segments(settings, index)
    command = [
        str(Path(sys.executable).parent / "rag"),
        "--corpus",
        str(settings.corpus),
        "--index",
        str(settings.index),
    ]
    process = []  # the command itself, as a user runs it: Python's start, imports and the model's load included
    for i in range(min(repeats, 3)):
        (settings.corpus / f"process-{i}.txt").write_text(NEW_DOCUMENT.format(n=50 + i), encoding="utf-8")
        start = time.perf_counter()
        subprocess.run([*command, "index"], check=True, capture_output=True)
        process.append(time.perf_counter() - start)
    index = indexing.load(settings, encoder)  # what that process made, served as `rag serve` would
    watched = watch(settings, index, encoder, repeats)
    beyond = [s - e for s, e in zip(served, embed, strict=True)]
    return {
        "documents": n_docs,
        "chunks": index.engine.count(),
        "segments": len(index.stored),  # type: ignore[attr-defined]
        "base_build_with_stand_in_s": round(base_s, 1),
        "add_one_served_s": spread(served),
        "embedding_of_that_document_s": spread(embed),
        "add_one_served_minus_embedding_s": spread(beyond),
        "add_one_rag_index_s": spread(cli),
        "add_one_rag_index_process_s": spread(process),
        "remove_one_served_s": spread(removal),
        "watch": watched,
    }


def watch(settings: Settings, index: Any, encoder: Encoder, repeats: int) -> dict[str, Any]:
    """`Service.watch()` over the index: seconds from a file's write to the first answer citing it, with a thread
    asking questions throughout."""
    service = Service(Assistant(settings, index, encoder, cache_size=0))  # every question answered anew
    service.watch()
    stop, latencies, failures = threading.Event(), [], [0]
    questions = [json.loads(line)["question"] for line in (ROOT / "bench" / "tuning.jsonl").open(encoding="utf-8")]

    def ask() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            start = time.perf_counter()
            try:
                service.assistant.ask(questions[i % len(questions)])
            except Exception:  # counted: the figure is zero failures
                failures[0] += 1
            latencies.append(time.perf_counter() - start)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    start = time.perf_counter()
    assert service.watcher is not None and service.watcher.caught_up.wait(300)
    service.wait(timeout=300)
    catch_up = time.perf_counter() - start  # the watcher's check of what changed before it began
    time.sleep(3)  # latencies before any update are in
    quiet = len(latencies)
    cited = []
    try:
        for i in range(repeats):
            name = f"watched-{i}.txt"
            written = time.perf_counter()
            (settings.corpus / name).write_text(NEW_DOCUMENT.format(n=100 + i), encoding="utf-8")
            while time.perf_counter() - written < 60:
                response = service.assistant.ask(f"Where will hydrogen plant number {100 + i} be built?")
                if any(c.source == name for c in response.citations):
                    cited.append(time.perf_counter() - written)
                    break
                time.sleep(0.05)
            else:
                cited.append(float("inf"))
        service.wait(timeout=120)
    finally:
        stop.set()
        asker.join()
        service.stop_watching()
    before, during = latencies[:quiet], latencies[quiet:]
    return {
        "start_check_s": round(catch_up, 2),
        "cited_after_s": spread(cited),
        "questions": len(latencies),
        "failures": failures[0],
        "p95_ms_before": round(1000 * float(np.percentile(before, 95)), 1) if before else None,
        "p95_ms_during_updates": round(1000 * float(np.percentile(during, 95)), 1) if during else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    encoder = Encoder()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(one_size(Path(tmp), n, encoder, args.repeats))
            r = results[-1]
            print(
                f"{n} documents ({r['chunks']} chunks): add one {r['add_one_served_s']['median']:.3f} s as served "
                f"({r['add_one_served_minus_embedding_s']['median']:.3f} s besides embedding), "
                f"{r['add_one_rag_index_s']['median']:.2f} s by rag index "
                f"({r['add_one_rag_index_process_s']['median']:.2f} s the whole command); remove one "
                f"{r['remove_one_served_s']['median']:.3f} s; watch cites a new file after "
                f"{r['watch']['cited_after_s']['median']:.2f} s, {r['watch']['failures']} failed questions",
                flush=True,
            )
    out: dict[str, Any] = {"sizes": results}
    if len(results) >= 2:
        small, large = results[0], results[-1]
        key = "add_one_served_minus_embedding_s"
        out["ratio_largest_to_smallest"] = round(large[key]["median"] / small[key]["median"], 2)
        print(f"{large['documents']} / {small['documents']}: {out['ratio_largest_to_smallest']}x")
    write_result("segments", out)


if __name__ == "__main__":
    main()
