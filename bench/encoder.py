"""The encoder's speed options, fp32 against int8, each figure measured in one run with the variants alternating.

1. Throughput on sentences (what a build embeds: every sentence once; `--sentences` drawn with seed 0 from the
   bundled corpus and ../shared/eval/squad11/corpus), one factor at a time around what `rag` runs (BASE: batches
   of `Settings.batch_size` sorted by length, run side by side on one-thread lanes, onnxruntime's graph
   optimizations all on, its threads spinning, up to 4 of them): batch size 1/8/16/32/64; unsorted (corpus order);
   batches in turn on all threads instead of lanes (at batch 8 and at 1); graph optimization levels off, basic,
   extended; threads not spinning; one thread; each at fp32 and int8. `rag` runs int8 one text a call (batch 1, see
   `OnnxEncoder`). Also, for each session: chunk texts (~120 words) and one question at a time
   (bench/tuning.jsonl), and how long the session took to load.
2. Full builds (`rag.indexing.build(full=True)`) of the bundled corpus and of squad11/corpus, fp32 and int8 in
   turn, as `rag` runs them: seconds, and int8's speed-up (the issue's goal: at least 1.5x; the question encode's
   at least 1.6x).
3. Agreement of the int8 vectors with the fp32 ones: cosine on every sentence, the nearest sentence of each
   question, and what batching would do (a sentence in a batch of 32 against the same sentence alone).
4. The ceiling: one MatMul layer of the model alone, int8 against fp32, at each of its weight shapes
   (bench/matmul.py).

Each round runs every variant once, forward on even rounds and backward on odd ones, so that both precisions meet
the same machine; a ratio is the median of the per-round ratios.

    .venv/bin/python bench/encoder.py [--rounds 3] [--sentences 256] [--skip-builds]
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import QUESTIONS, ROOT, seconds, write_result  # noqa: E402
from bench.matmul import gemm_ceiling  # noqa: E402
from rag import Settings, indexing  # noqa: E402
from rag.config import DEFAULT_MODEL  # noqa: E402
from rag.embedding import Encoder, resolve_model  # noqa: E402
from rag.evaluation import read_questions  # noqa: E402
from rag.onnx_backend import FILES, OnnxEncoder, cache_root, model_key  # noqa: E402
from rag.text.chunking import make_chunks  # noqa: E402

CORPORA = {"bundled": ROOT / "corpus", "squad11": ROOT.parent / "shared" / "eval" / "squad11" / "corpus"}
LEVELS = {"off": 0, "basic": 1, "extended": 2, "all": 99}  # onnxruntime.GraphOptimizationLevel values
BATCHES = (1, 8, 16, 32, 64)
# What rag runs: Settings.batch_size, Encoder.encode's sort, OnnxEncoder's defaults (threads None: up to 4).
BASE: dict[str, Any] = {"batch": Settings().batch_size, "sort": True, "lanes": True, "level": "all", "threads": None}
BASE["spinning"] = inspect.signature(OnnxEncoder).parameters["spinning"].default
SHIPPED = {"fp32": BASE, "int8": {**BASE, "batch": 1}}  # int8 runs one text a call (OnnxEncoder.one_at_a_time)


def corpus_texts(folder: Path) -> tuple[list[str], list[str]]:
    """The sentences and chunk texts of the .txt files in `folder`, as the chunker cuts them."""
    chunks = [c for p in sorted(folder.glob("*.txt")) for c in make_chunks(p.name, p.read_text(encoding="utf-8"))]
    sentences = [c.text[a - c.start : b - c.start] for c in chunks for a, b in c.sentences]
    return sentences, [c.text for c in chunks]


def run_batched(model: OnnxEncoder, texts: list[str], batch: int, sort: bool, lanes: bool = False) -> np.ndarray:
    """Vectors of `texts` in their order, batched as `Encoder.encode` does (sorted by length) or as given, the
    batches run one after another on all the session's threads or, with `lanes`, side by side
    (`OnnxEncoder.encode_batches`, what `Encoder.encode` does)."""
    order = np.argsort([len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
    groups = [order[i : i + batch] for i in range(0, len(texts), batch)]
    batches = [[texts[r] for r in rows] for rows in groups]
    out = np.zeros((len(texts), model.dimension), dtype=np.float32)
    vectors = model.encode_batches(batches) if lanes else (model.encode(b) for b in batches)
    for rows, v in zip(groups, vectors, strict=True):
        out[rows] = v
    return out


def variants() -> list[dict[str, Any]]:
    """The throughput variants: one factor changed at a time from BASE, at each precision."""
    changes: list[dict[str, Any]] = [{}, {"sort": False}, {"lanes": False}, {"batch": 1, "lanes": False}]
    changes.append({"spinning": not BASE["spinning"]})
    changes.append({"threads": 1})
    changes[1:1] = [{"batch": b} for b in BATCHES if b != BASE["batch"]]
    changes += [{"level": name} for name in LEVELS if name != BASE["level"]]
    return [{"precision": p, **BASE, **c} for c in changes for p in ("fp32", "int8")]


def name_of(v: dict[str, Any]) -> str:
    sort = "sorted" if v["sort"] else "unsorted"
    lanes = "lanes" if v["lanes"] else "in turn"
    return f"batch {v['batch']} {sort} {lanes}, {session_of(v)[5:]}"


def session_of(v: dict[str, Any]) -> str:
    """The onnxruntime session a variant runs on: its precision and session options."""
    spin = "spinning" if v["spinning"] else "no spinning"
    return f"{v['precision']} opt {v['level']}, {spin}, threads {v['threads'] or 'auto'}"


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a/b."""
    return round(float(np.median(np.array(a) / np.array(b))), 3)


def throughput(folder: Path, sentences: list[str], chunks: list[str], questions: list[str], rounds: int) -> dict:
    """Sentences/s of every variant; for every session: chunks/s (batched as shipped), question ms, load s."""
    grid = variants()
    models: dict[str, OnnxEncoder] = {}
    sessions: dict[str, dict[str, Any]] = {}
    for v in grid:
        key = session_of(v)
        if key not in models:
            start = time.perf_counter()
            models[key] = OnnxEncoder(folder, v["threads"], FILES[v["precision"]], LEVELS[v["level"]], v["spinning"])
            sessions[key] = {"load_s": round(time.perf_counter() - start, 3), "chunks_per_s": [], "question_ms": []}
            models[key].encode(sentences[:64])  # warm-up
    samples: dict[str, dict[str, list[float]]] = {"fp32": {}, "int8": {}}
    for r in range(rounds):
        for v in grid if r % 2 == 0 else grid[::-1]:
            key, model, p = session_of(v), models[session_of(v)], v["precision"]

            def run(m: OnnxEncoder = model, v: dict[str, Any] = v) -> np.ndarray:
                return run_batched(m, sentences, v["batch"], v["sort"], v["lanes"])

            s = seconds(run)
            samples[p].setdefault(name_of(v), []).append(len(sentences) / s)
            if v["batch"] == BASE["batch"] and v["sort"] and v["lanes"]:  # once a session and round
                batch = SHIPPED[p]["batch"]
                c = seconds(lambda m=model, b=batch: run_batched(m, chunks, b, True, True))  # type: ignore[misc]
                sessions[key]["chunks_per_s"].append(len(chunks) / c)
                ms = [seconds(lambda m=model, q=q: m.encode([q])) * 1000 for q in questions]  # type: ignore[misc]
                sessions[key]["question_ms"].append(float(np.median(ms)))
    shipped = {p: samples[p][name_of({"precision": p, **SHIPPED[p]})] for p in ("fp32", "int8")}
    rows = {
        name: {
            "fp32": round(float(np.median(samples["fp32"][name])), 1),
            "int8": round(float(np.median(samples["int8"][name])), 1),
            "int8_vs_fp32": median_ratio(samples["int8"][name], samples["fp32"][name]),
            "vs_shipped_fp32": median_ratio(samples["fp32"][name], shipped["fp32"]),
            "vs_shipped_int8": median_ratio(samples["int8"][name], shipped["int8"]),
        }
        for name in samples["fp32"]
    }
    speed_up = {"sentences": median_ratio(shipped["int8"], shipped["fp32"])}
    for key, figures in sessions.items():
        if key.startswith("int8"):
            fp32 = sessions["fp32" + key[4:]]
            figures["chunk_speed_up"] = median_ratio(figures["chunks_per_s"], fp32["chunks_per_s"])
            figures["question_speed_up"] = median_ratio(fp32["question_ms"], figures["question_ms"])
    base = session_of({"precision": "int8", **BASE})
    speed_up |= {"chunks": sessions[base]["chunk_speed_up"], "question": sessions[base]["question_speed_up"]}
    for figures in sessions.values():
        for name in ("chunks_per_s", "question_ms"):
            figures[name] = round(float(np.median(figures[name])), 2)
    return {"sentences_per_s": rows, "sessions": sessions, "shipped_int8_speed_up": speed_up, "n": len(sentences)}


def agreement(folder: Path, sentences: list[str], questions: list[str]) -> dict[str, float]:
    """How close int8 vectors (one text a call, as shipped) are to fp32 ones, and what batching would change."""
    fp32, int8 = OnnxEncoder(folder), OnnxEncoder(folder, file=FILES["int8"], one_at_a_time=True)
    a, b = run_batched(fp32, sentences, BASE["batch"], True, True), run_batched(int8, sentences, 32, True, True)
    qa, qb = fp32.encode(questions), int8.encode(questions)
    cosine, q_cosine = np.sum(a * b, axis=1), np.sum(qa * qb, axis=1)
    int8.one_at_a_time = False
    batched = run_batched(int8, sentences[:256], 32, True)
    return {
        "sentences": len(sentences),
        "sentence_cosine_mean": round(float(cosine.mean()), 4),
        "sentence_cosine_min": round(float(cosine.min()), 4),
        "question_cosine_mean": round(float(q_cosine.mean()), 4),
        "question_cosine_min": round(float(q_cosine.min()), 4),
        "same_nearest_sentence": round(float(np.mean((qa @ a.T).argmax(1) == (qb @ b.T).argmax(1))), 3),
        "int8_batched_32_vs_alone_min": round(float(np.sum(batched * b[:256], axis=1).min()), 4),
    }


def builds(rounds: int) -> dict[str, Any]:
    """Full builds of each corpus, fp32 and int8 in turn (a fresh index folder for each precision)."""
    encoders = {p: Encoder(precision=p) for p in ("fp32", "int8")}
    root = Path(tempfile.mkdtemp(prefix="rag-encoder-"))
    out: dict[str, Any] = {}
    try:
        for corpus, folder in CORPORA.items():
            times: dict[str, list[float]] = {"fp32": [], "int8": []}
            report = None
            for r in range(rounds):
                for p in ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32"):
                    settings = Settings(corpus=folder, index=root / f"{corpus}-{p}", precision=p)
                    start = time.perf_counter()
                    _, report = indexing.build(settings, encoders[p], full=True, progress=False)
                    times[p].append(time.perf_counter() - start)
            assert report is not None
            out[corpus] = {
                "chunks": report.chunks,
                "sentences": report.sentences_embedded,
                "fp32_s": round(float(np.median(times["fp32"])), 2),
                "int8_s": round(float(np.median(times["int8"])), 2),
                "int8_speed_up": median_ratio(times["fp32"], times["int8"]),
            }
            print(f"full build of {corpus}: {out[corpus]}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def print_throughput(t: dict[str, Any]) -> None:
    print(f"sentences/s ({t['n']} sentences)  fp32  int8  int8/fp32  vs shipped fp32  vs shipped int8")
    for name, row in t["sentences_per_s"].items():
        print(
            f"{name:<46} {row['fp32']:>6.1f} {row['int8']:>6.1f} {row['int8_vs_fp32']:>6.2f} "
            f"{row['vs_shipped_fp32']:>6.2f} {row['vs_shipped_int8']:>6.2f}"
        )
    for key, figures in t["sessions"].items():
        print(f"{key:<46} {figures}")
    print("int8 as shipped against fp32 as shipped:", t["shipped_int8_speed_up"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=256, help="sentences drawn for the throughput grid")
    parser.add_argument("--skip-builds", action="store_true")
    args = parser.parse_args()
    assert Encoder(precision="int8").dimension  # exports and quantizes first if this machine has not yet
    folder = cache_root() / "onnx" / model_key(Path(resolve_model(DEFAULT_MODEL)))
    pooled, chunks = [], []
    for corpus in CORPORA.values():
        s, c = corpus_texts(corpus)
        pooled += s
        chunks += c if corpus == CORPORA["bundled"] else []
    rng = np.random.default_rng(0)
    sentences = [pooled[i] for i in rng.choice(len(pooled), size=min(args.sentences, len(pooled)), replace=False)]
    questions = [q["question"] for q in read_questions(QUESTIONS)]
    figures: dict[str, Any] = {"throughput": throughput(folder, sentences, chunks, questions, args.rounds)}
    print_throughput(figures["throughput"])
    figures["agreement"] = agreement(folder, pooled, questions)
    print(figures["agreement"])
    figures["gemm_int8_vs_fp32"] = gemm_ceiling(folder, sentences, questions, args.rounds)
    for name, ratio in figures["gemm_int8_vs_fp32"].items():
        print(f"MatMul int8 against fp32, {name}: {ratio:.2f}x")
    if not args.skip_builds:
        figures["builds"] = builds(args.rounds)
    write_result("encoder", figures)


if __name__ == "__main__":
    main()
