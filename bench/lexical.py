"""BM25 over postings with index-wide statistics (the local engine since segments, `rag/engines/postings.py`)
against bm25s's precomputed scores (the local engine before, summing the question terms' sparse columns), on the
same synthetic chunks: the latency of one search and whether both rank the same top 10. Both leave out a large
index's common question terms alike (`Stats.selective`).

Chunks are 30 to 90 terms drawn from a Zipf law (exponent 1.07) over 200,000 term ids; questions are 2 to 5
terms taken among ids of every frequency (from the commonest to the rare).

    .venv/bin/python bench/lexical.py [--chunks 1000000] [--questions 300] [--samples 16 32 64 128]

`--samples` also times the postings search with each stride of the sampled threshold that ranks only a large
segment's best rows (`rag.engines.postings.SAMPLE`, chosen from this sweep at a million chunks), in turn, twice.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bm25s  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import write_result  # noqa: E402
from rag.engines import postings  # noqa: E402
from rag.engines.postings import COMMON, LARGE, Postings, Stats, search  # noqa: E402

TERMS = 200_000


def bm25s_search(retriever: bm25s.BM25, ids: list[int], k: int, exact: bool = False) -> list[int]:
    """The rows of the `k` best chunks for term ids `ids`, as the engine searched bm25s before segments: the
    precomputed scores of the question terms' sparse columns added up. `exact`: rows tied at the k-th score are
    ranked by row, as the postings search ranks them (the engine's argpartition kept any of them), to compare."""
    matrix = retriever.scores
    columns = [retriever.vocab_dict[str(t)] for t in ids if str(t) in retriever.vocab_dict]
    size = matrix["num_docs"]
    if size >= LARGE and len(columns) > 2:  # as the engine did (and does): common terms left out, two rarest kept
        doc_freq = np.diff(matrix["indptr"])
        by_rarity = sorted(columns, key=lambda c: doc_freq[c])
        columns = by_rarity[:2] + [c for c in by_rarity[2:] if doc_freq[c] <= COMMON * size]
    slices = [slice(matrix["indptr"][c], matrix["indptr"][c + 1]) for c in columns]
    rows = np.concatenate([matrix["indices"][s] for s in slices])
    weights = np.concatenate([matrix["data"][s] for s in slices]).astype(np.float64)
    if len(rows) * 8 < size:
        rows, inverse = np.unique(rows, return_inverse=True)
        scores = np.bincount(inverse, weights=weights)
    else:
        scores = np.bincount(rows, weights=weights, minlength=size)
        rows = np.flatnonzero(scores)
        scores = scores[rows]
    top = np.argpartition(-scores, min(k, len(rows)) - 1)[:k]
    if exact:
        top = np.flatnonzero(scores >= scores[top].min())
    return [int(rows[i]) for i in top[np.lexsort((rows[top], -scores[top]))][:k]]


def timed(run: Any, questions: list[list[int]]) -> dict[str, float]:
    times = []
    for q in questions:
        start = time.perf_counter()
        run(q)
        times.append(time.perf_counter() - start)
    return {
        "median_ms": round(1000 * float(np.median(times)), 3),
        "p95_ms": round(1000 * float(np.percentile(times, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--samples", type=int, nargs="*", default=[], metavar="STRIDE")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    lengths = rng.integers(30, 90, size=args.chunks)
    chunks = np.split((rng.zipf(1.07, size=int(lengths.sum())) - 1) % TERMS, np.cumsum(lengths)[:-1])
    questions = [
        list(rng.choice([1, 3, 10, 50, 300, 2000, 20000], size=rng.integers(2, 6))) for _ in range(args.questions)
    ]
    parts = [(Postings.build(chunks, TERMS), None)]
    stats = Stats.of(parts, TERMS)
    retriever = bm25s.BM25()
    retriever.index([[str(t) for t in c] for c in chunks], show_progress=False)
    same = sum(
        bm25s_search(retriever, q, 10, exact=True) == [row for _, row, _ in search(parts, stats, q, 10)]
        for q in questions
    )
    result = {
        "chunks": args.chunks,
        "questions": args.questions,
        "postings": timed(lambda q: search(parts, stats, q, 50), questions),
        "bm25s_precomputed": timed(lambda q: bm25s_search(retriever, q, 50), questions),
        "same_top10": same,
    }
    chosen, sweep = postings.SAMPLE, {}
    for stride in [*args.samples, *args.samples]:  # twice, in turn: a slower minute falls on each
        postings.SAMPLE = stride
        sweep.setdefault(str(stride), []).append(timed(lambda q: search(parts, stats, q, 50), questions)["median_ms"])
    postings.SAMPLE = chosen
    if sweep:
        result["postings_median_ms_by_sample"] = sweep
        print("median ms by the threshold's sample stride:", sweep)
    print(
        f"{args.chunks} chunks: postings {result['postings']['median_ms']} ms median, {result['postings']['p95_ms']} "
        f"ms p95; bm25s {result['bm25s_precomputed']['median_ms']} / {result['bm25s_precomputed']['p95_ms']} ms; "
        f"the same top 10 for {same} of {args.questions} questions"
    )
    write_result("lexical", result)


if __name__ == "__main__":
    main()
