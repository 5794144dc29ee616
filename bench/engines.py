"""The local engine and Milvus Lite side by side, on the same synthetic indexes of 10k and 100k chunks.

MILVUS LITE IS A DEVELOPMENT ENGINE, NOT THE MILVUS SERVER. It is pure Python (FAISS underneath) running inside
this process, with per-row Python loops in its query path; its figures say what `engine=milvus` costs on one
laptop, not what Milvus Standalone or Distributed costs. Nothing here measures a server.

The corpora are bench/scale.py's (its functions are imported): Zipf-law sentences over a 200,000-word vocabulary,
vectors mixed from the real embeddings of the bundled corpus's sentences, ten chunks a document. Each corpus is
assembled by `rag.indexing.assemble`, as `rag index` assembles one, once with `engine="local"` and once with
`engine="milvus"` (a Milvus Lite folder in the same temporary folder, collection `bench_<n>`), then saved, closed
and loaded back as `rag serve` would load it. Each (engine, size) runs in a child process of its own, so that its
peak resident memory is its own (the parent only starts them and gathers their figures).

For each engine and size:
- build: generation of the corpus, `assemble` (sentence table plus the engine's build; for Milvus: connect,
  create the collection, insert every record, flush), the engine's part of it alone (the insert rate of Milvus is
  chunks / that time), Milvus Lite's background index build after the flush (waited for: until it ends, Lite
  searches by brute force), `save` of the index folder, and `load` of it;
- disk bytes per chunk: the index folder (the catalog, plus the engine's files for local), and for milvus the Lite
  folder too (reported apart as well);
- peak RSS of the child process after the build and after the questions (it includes the encoder model, about
  the same in both);
- per question (the 42 of bench/tuning.jsonl, `--rounds` times each for local, `--rounds-milvus` for Lite):
  dense search, lexical search, fetch of the candidates
  (the union of both searches' top 50, as `retrieval.search` fetches them), and a whole `Assistant.ask` (response
  cache off), median and p95, through bench/stages.py's `time_stages` (which also gives encode, fusion, answer);
- the ratio milvus / local of each figure.

    .venv/bin/python bench/engines.py [--sizes 10000 100000] [--rounds 5] [--rounds-milvus 1]

Results go to bench/results/engines.json (cases not run this time, e.g. with `--engines milvus`, are kept from the
file's last version, each with the time it was measured); a table is printed. It took 22 minutes in all when the
2 cores were 56-77% busy with other work (the local 100k case alone took 10x its bench/scale.py time); on quiet
cores it should take well under 15 (not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import RESULTS, ROOT, peak_rss_mb, questions, spread, write_result  # noqa: E402
from bench.scale import by_document, document_texts, folder_bytes, generate, mean_vectors_all, vocabulary  # noqa: E402
from bench.server import CpuMeter  # noqa: E402
from bench.stages import time_stages  # noqa: E402
from rag import (
    Settings,  # noqa: E402
    indexing,  # noqa: E402
)
from rag.embedding import Encoder  # noqa: E402
from rag.engines import dense  # noqa: E402
from rag.engines.local import FILES as LOCAL_FILES  # noqa: E402
from rag.indexing import builder, store, swap  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402
from rag.retrieval import CANDIDATES  # noqa: E402
from rag.text.chunking import make_chunks  # noqa: E402

ENGINES = ("local", "milvus")
NOTE = (
    "Milvus Lite is a development engine (pure Python, in this process), not the Milvus server: "
    "its figures are not a server's."
)
BG_TIMEOUT_S = 900.0
ENGINE_FILES = {*LOCAL_FILES, dense.FILE}  # what the local engine adds to an index folder; the rest is the catalog


def base_vectors(encoder: Encoder) -> tuple[list[str], np.ndarray]:
    """The bundled corpus's texts and the real embeddings of its distinct sentences (as bench/scale.py's main)."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))]
    real = [c.text[a - c.start : b - c.start] for t in texts for c in make_chunks("x", t) for a, b in c.sentences]
    return texts, encoder.encode(sorted(set(real)))


def timed(function: Callable[..., Any], into: dict[str, float], key: str) -> Callable[..., Any]:
    """`function`, adding the seconds each call takes to `into[key]`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            into[key] = into.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def wait_for_lite(uri: str, collection: str) -> float:
    """Seconds until Milvus Lite's background work (compaction, index build) on `collection` is done.

    No public call tells (`describe_index` reports every row indexed at once), so this reaches into Lite's
    in-process server: its collection's single background worker is drained. Bench-only, tied to milvus-lite 3.x.
    """
    from milvus_lite.server_manager import server_manager_instance

    start = time.perf_counter()
    entry = server_manager_instance._servers.get(str(Path(uri).resolve()))
    if entry is None:
        raise RuntimeError(f"no Milvus Lite server for {uri} in this process")
    entry[1].get_collection(collection)._wait_for_bg(timeout=BG_TIMEOUT_S)
    return time.perf_counter() - start


def time_fetch(index: store.Index, encoder: Encoder, qs: list[str], rounds: int) -> dict[str, float]:
    """Milliseconds of `engine.fetch` of each question's candidates (both searches' top 50, as `retrieval.search`)."""
    engine, samples = index.engine, []
    pools = []
    for q in qs:
        dense = [i for i, _ in engine.search_dense(encoder.encode_one(q), CANDIDATES)]
        lexical = [i for i, _ in engine.search_lexical(index.vocabulary.query_terms(q), CANDIDATES)]
        pools.append(list(dict.fromkeys(dense + lexical)))
    for ids in pools[:3]:
        engine.fetch(ids)
    for _ in range(rounds):
        for ids in pools:
            start = time.perf_counter()
            engine.fetch(ids)
            samples.append((time.perf_counter() - start) * 1000)
    out = spread(samples)
    out["ids_median"] = float(np.median([len(p) for p in pools]))
    return out


def run_case(engine: str, n: int, rounds: int) -> dict[str, Any]:
    """Build, save, load and question one engine at one size (in this process, which does nothing else)."""
    encoder = Encoder()
    texts, base = base_vectors(encoder)
    words, qs = vocabulary(texts), questions()
    rss_start = peak_rss_mb()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    documents, chunks, sentence_vectors = generate(n, words, base)
    timings["generate_s"] = time.perf_counter() - start
    chunk_vectors = mean_vectors_all(sentence_vectors, documents, chunks)
    folder = Path(tempfile.mkdtemp(prefix=f"rag-engines-{engine}-"))
    lite = folder / "milvus.db"
    options: dict[str, Any] = {"engine": engine}
    if engine == "milvus":
        options |= {"milvus_uri": str(lite), "collection": f"bench_{n}"}
    settings = Settings(corpus=ROOT / "corpus", index=folder / "index", **options)
    try:
        manifest = store.build_manifest(indexing.index_settings(settings, encoder), documents, len(chunks), {})
        vectors = by_document(documents, chunk_vectors, sentence_vectors)
        build_engine = builder.build_engine  # `assemble` calls it by this name, in its own module
        builder.build_engine = timed(build_engine, timings, "engine_s")  # type: ignore[assignment]
        if engine == "milvus":  # imported here only: the local engine's process never loads pymilvus
            from rag.engines.milvus import MilvusEngine

            connect = MilvusEngine.connect
            MilvusEngine.connect = timed(connect, timings, "connect_s")  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            index = indexing.assemble(settings, manifest, documents, chunks, document_texts(chunks), vectors)
            timings["assemble_s"] = time.perf_counter() - start
        finally:
            builder.build_engine = build_engine  # type: ignore[assignment]
            if engine == "milvus":
                MilvusEngine.connect = connect  # type: ignore[method-assign]
        del chunk_vectors, sentence_vectors, vectors
        if engine == "milvus":
            timings["lite_index_build_s"] = wait_for_lite(str(lite), settings.collection)
        start = time.perf_counter()
        store.save(index, settings.index)
        timings["save_s"] = time.perf_counter() - start
        build_rss = peak_rss_mb()
        index.engine.close()
        del index, chunks, documents
        start = time.perf_counter()
        loaded = indexing.load(settings, encoder)
        timings["load_s"] = time.perf_counter() - start
        if engine == "milvus":  # a reopened collection loads its segments' indexes in the background too
            timings["lite_reload_wait_s"] = wait_for_lite(str(lite), settings.collection)
        index_bytes = folder_bytes(settings.index)
        lite_bytes = folder_bytes(lite) if lite.exists() else 0
        where = swap.locate(settings.index)
        by_file = {p.name: folder_bytes(p) if p.is_dir() else p.stat().st_size for p in sorted(where.iterdir())}
        catalog_bytes = sum(b for name, b in by_file.items() if name not in ENGINE_FILES)
        assistant = Assistant(settings, loaded, encoder)
        print(f"  {engine} {n}: built {_rounded(timings)}; timing questions ...", file=sys.stderr, flush=True)
        stages = time_stages(assistant, qs, rounds=rounds)
        fetch = time_fetch(loaded, encoder, qs, rounds)
        figures = {
            "engine": engine,
            "chunks": n,
            "described": loaded.manifest["engine"],
            "build": _rounded(timings),
            "build_s": round(timings["assemble_s"] + timings.get("lite_index_build_s", 0.0) + timings["save_s"], 2),
            "insert_rows_per_s": (
                round(n / (timings["engine_s"] - timings["connect_s"]), 1) if engine == "milvus" else None
            ),
            "disk_bytes_per_chunk": round((index_bytes + lite_bytes) / n, 1),
            "index_folder_bytes_per_chunk": round(index_bytes / n, 1),
            "lite_folder_bytes_per_chunk": round(lite_bytes / n, 1) if engine == "milvus" else None,
            "catalog_bytes_per_chunk": round(catalog_bytes / n, 1),
            "index_folder_by_file": by_file,
            "rss_after_model_mb": rss_start,
            "peak_rss_build_mb": build_rss,
            "peak_rss_mb": peak_rss_mb(),
            "questions": len(qs),
            "rounds": rounds,
            "dense": stages["dense"],
            "lexical": stages["lexical"],
            "fetch": fetch,
            "ask": stages["ask"],
            "stages": stages,
        }
        loaded.engine.close()
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}


def headline(f: dict[str, Any]) -> dict[str, float]:
    """The figures of one case that get a milvus / local ratio."""
    out = {k: float(f[k]) for k in ("build_s", "disk_bytes_per_chunk", "peak_rss_mb")}
    for stage in ("dense", "lexical", "fetch", "ask"):
        for q in ("median", "p95"):
            out[f"{stage}_{q}_ms"] = float(f[stage][q])
    return out


def ratios(local: dict[str, Any], milvus: dict[str, Any]) -> dict[str, float | None]:
    """milvus / local of each headline figure."""
    a, b = headline(local), headline(milvus)
    return {name: round(b[name] / a[name], 2) if a[name] else None for name in a}


def table(results: dict[str, Any]) -> str:
    """A markdown table of the headline figures."""
    head = [
        "chunks",
        "engine",
        "build s",
        "insert rows/s",
        "disk B/chunk",
        "catalog B/chunk",
        "peak RSS MB",
        "dense ms p50/p95",
        "lexical ms p50/p95",
        "fetch ms p50/p95",
        "ask ms p50/p95",
        "other CPU %",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, by_engine in results.items():
        for engine in (*ENGINES, "ratio"):
            f = by_engine.get(engine)
            if f is None:
                continue
            if engine == "ratio":
                cells = [n, "milvus/local", f["build_s"], "", f["disk_bytes_per_chunk"], "", f["peak_rss_mb"]]
                cells += [f"{f[f'{s}_median_ms']} / {f[f'{s}_p95_ms']}" for s in ("dense", "lexical", "fetch", "ask")]
                cells.append("")
            else:
                name = "milvus (Lite)" if engine == "milvus" else engine
                cells = [
                    n,
                    name,
                    f["build_s"],
                    f["insert_rows_per_s"] or "",
                    f["disk_bytes_per_chunk"],
                    f["catalog_bytes_per_chunk"],
                    f["peak_rss_mb"],
                ]
                cells += [f"{f[s]['median']:.2f} / {f[s]['p95']:.2f}" for s in ("dense", "lexical", "fetch", "ask")]
                cells.append(f.get("other_cpu_pct", ""))
            rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5, help="times each question is asked, local engine")
    parser.add_argument("--rounds-milvus", type=int, default=1, help="times each question is asked, Milvus Lite")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--case", nargs=2, metavar=("ENGINE", "CHUNKS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child: one engine at one size
        figures = run_case(args.case[0], int(args.case[1]), args.rounds)
        args.out.write_text(json.dumps(figures))
        return
    print(NOTE, file=sys.stderr)
    started = time.perf_counter()
    previous = RESULTS / "engines.json"  # cases not measured in this run are kept from the last one
    results: dict[str, Any] = json.loads(previous.read_text())["figures"]["sizes"] if previous.exists() else {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rag-engines-") as tmp:
        for n in args.sizes:
            results.setdefault(str(n), {})
            for engine in args.engines:
                print(f"{engine}, {n} chunks ...", file=sys.stderr, flush=True)
                out = Path(tmp) / f"{engine}-{n}.json"
                command = [sys.executable, __file__, "--case", engine, str(n), "--out", str(out)]
                start, meter = time.perf_counter(), CpuMeter(os.getpid(), children=True)
                rounds = args.rounds_milvus if engine == "milvus" else args.rounds
                done = subprocess.run([*command, "--rounds", str(rounds)], check=False)
                other = meter.other_pct()
                if done.returncode != 0 or not out.exists():
                    failures[f"{engine}-{n}"] = f"exit status {done.returncode}"
                    continue
                results[str(n)][engine] = json.loads(out.read_text())
                results[str(n)][engine]["case_wall_s"] = round(time.perf_counter() - start, 1)
                results[str(n)][engine]["other_cpu_pct"] = other
                results[str(n)][engine]["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            if {"local", "milvus"} <= set(results[str(n)]):
                results[str(n)]["ratio"] = ratios(results[str(n)]["local"], results[str(n)]["milvus"])
    results = dict(sorted(results.items(), key=lambda kv: int(kv[0])))
    figures = {"note": NOTE, "wall_s": round(time.perf_counter() - started, 1), "sizes": results}
    if failures:
        figures["failures"] = failures
    write_result("engines", figures)
    print(NOTE)
    print(table(results))
    if failures:
        print(f"failed: {failures}")


if __name__ == "__main__":
    main()
