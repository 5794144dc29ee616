"""Per-stage timing of one question through the real pipeline, shared by the latency and scale benchmarks.

Stages: question encoding, dense search, lexical search, fusion (the rest of `retrieval.search`: candidate
vectors, best-sentence cosines, normalization), answer selection (features, the scorer, the reader, the
confidence), response building (citations and JSON). The reader's own call (`reader`, the scorer's best
candidates read in one batch) is timed apart too: it is part of answer selection.
Each question is run through the stages once per round; figures are medians over all rounds and questions.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.common import spread
from rag.answer import Found, Query, gather_pool, quoted_text, respond
from rag.answer.rerank import top_candidates
from rag.pipeline import POOL, Assistant, ResponseCache
from rag.retrieval import CANDIDATES, search

STAGES = ["encode", "dense", "lexical", "fusion", "answer", "response"]
EXTRA = ["reader", "ask", "floor"]


def time_stages(assistant: Assistant, questions: list[str], rounds: int = 5) -> dict[str, Any]:
    """Median and spread of each stage, of the whole `ask`, and of a bare `encode` (the floor), in ms."""
    assistant.cache = ResponseCache(0)  # every ask does the whole work
    index, encoder, k = assistant.index, assistant.encoder, assistant.settings.top_k
    samples: dict[str, list[float]] = {s: [] for s in [*STAGES, *EXTRA]}
    for q in questions[:3]:  # warm-up
        assistant.ask(q)
    for _ in range(rounds):
        for q in questions:
            t0 = time.perf_counter()
            vector = encoder.encode_one(q)
            t1 = time.perf_counter()
            index.engine.search_dense(vector, max(CANDIDATES, k))
            t2 = time.perf_counter()
            terms = index.vocabulary.query_terms(q)
            index.engine.search_lexical(terms, max(CANDIDATES, k))
            t3 = time.perf_counter()
            hits, passages = search(index.engine, vector, terms, max(k, POOL))
            t4 = time.perf_counter()
            read = Query.read(q, vector, terms, index.vocabulary, index.words.language)
            found = Found(index, hits, passages)
            settings = assistant.settings
            response = respond(
                read, found, assistant.scorer, assistant.reader, min_confidence=settings.min_confidence, top_k=k
            )
            t5 = time.perf_counter()
            response.to_dict()
            t6 = time.perf_counter()
            assistant.ask(q).to_dict()
            t7 = time.perf_counter()
            encoder.encode_one(q)
            t8 = time.perf_counter()
            reader_ms = time_reader(assistant, read, found)  # apart, after the timed stages
            fusion = (t4 - t3) - (t2 - t1) - (t3 - t2)  # search() repeats both searches, then fuses
            for name, ms in zip(
                [*STAGES, *EXTRA],
                [t1 - t0, t2 - t1, t3 - t2, max(fusion, 0.0), t5 - t4, t6 - t5, reader_ms, t7 - t6, t8 - t7],
                strict=True,
            ):
                samples[name].append(ms * 1000)
    out = {name: spread(values) for name, values in samples.items()}
    out["ratio_to_floor"] = round(out["ask"]["median"] / out["floor"]["median"], 3)
    out["reader_share"] = round(out["reader"]["median"] / out["ask"]["median"], 3)
    return out


def time_reader(assistant: Assistant, query: Query, found: Found) -> float:
    """Seconds the reader takes over the scorer's best candidates of `found` (what `respond` has it read)."""
    pool = gather_pool(found.passages, found.hits, query)
    top = top_candidates(assistant.scorer.sentence_logits(pool), assistant.scorer.mix)
    texts = [quoted_text(found.passages.chunks[int(pool.hit[i])], pool.spans[i]) for i in top.tolist()]
    start = time.perf_counter()
    assistant.reader.read(query.text, texts)
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> float:
    return float(np.median(samples))
