"""Milvus's own `hybrid_search` against our fusion of two Milvus searches, on the same Milvus collection: which
one the `milvus` engine should use (issue #10 asks for whichever scores better on dev and check).

For each question, the ten passages come from (a) `rag.retrieval.search` over the engine (a dense and a BM25
search, fused by our convex fusion with the best-sentence cosine as a third signal: what the engine does), or
(b) one `hybrid_search` over the dense and the BM25 field with Milvus's RRFRanker (k=60) or WeightedRanker (the
dense and lexical weights of our fusion, 0.3 and 0.4, on Milvus's normalized scores). The same answer selection
then reads each set of passages, and the shared scorer's rules score the responses.

    .venv/bin/python bench/hybrid.py [--sets check dev]      # writes bench/results/hybrid.json (Milvus Lite)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker  # noqa: E402

from bench.common import respond_as, write_result  # noqa: E402
from bench.quality import SETS  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.engines.dense import ef_search  # noqa: E402
from rag.engines.milvus import MilvusEngine  # noqa: E402
from rag.evaluation import read_questions, score_one, summarize  # noqa: E402
from rag.pipeline import POOL  # noqa: E402
from rag.retrieval import CANDIDATES, Hit, Weights, search  # noqa: E402

RANKERS = {"hybrid_search, RRFRanker(60)": RRFRanker(60), "hybrid_search, WeightedRanker(0.3, 0.4)": None}


def hybrid(engine: MilvusEngine, vector: Any, terms: list[str], ranker: Any, k: int) -> list[tuple[str, float]]:
    """One `hybrid_search` of the dense and the BM25 field, fused by Milvus's `ranker`."""
    if not terms:  # a question of stop words only: the dense side alone
        return engine.search_dense(vector, k)
    dense = AnnSearchRequest(
        [vector.tolist()], "vector", {"metric_type": "IP", "params": {"ef": ef_search(engine.count())}}, CANDIDATES
    )
    lexical = AnnSearchRequest([" ".join(terms)], "sparse", {"metric_type": "BM25"}, CANDIDATES)
    found = engine.client.hybrid_search(engine.collection, [dense, lexical], ranker, limit=k, output_fields=["id"])
    return [(str(h["id"]), float(h["distance"])) for h in found[0]]


def measure(name: str, corpus: Path, questions: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"rag-hybrid-{name}-"))
    settings = Settings(corpus=corpus, index=folder / "index", engine="milvus", collection=f"hybrid_{name}")
    bot = Assistant.open(settings, progress=False, say=lambda _: None)
    index, engine = bot.index, bot.index.engine
    assert isinstance(engine, MilvusEngine)
    weighted = WeightedRanker(Weights().dense, Weights().lexical)
    out: dict[str, Any] = {}
    for method in ["our fusion of two searches (used)", *RANKERS]:
        results = []
        for item in read_questions(questions):
            q = item["question"]
            vector, terms = bot.encoder.encode_one(q), index.vocabulary.query_terms(q)
            if method.startswith("our"):
                hits, passages = search(engine, vector, terms, POOL)
            else:
                ranker = RANKERS[method] or weighted
                scored = hybrid(engine, vector, terms, ranker, POOL)
                fetched = engine.fetch([i for i, _ in scored])
                top = max((s for _, s in scored), default=1.0) or 1.0
                held = set(fetched.ids)
                hits = [Hit(i, s / top, 0.0, 0.0, 0.0) for i, s in scored if i in held]
                passages = fetched.passages(range(len(hits)))
            response = respond_as(bot, q, vector, terms, hits, passages, 5)
            results.append(score_one(item, response.to_dict(), bot.document_text))
        m = summarize(results)
        out[method] = {"overall": m["overall"], "unanswerable": m.get("unanswerable")}
        o = m["overall"]
        figures = f"R@1 {o['R@1']:.3f} | R@5 {o['R@5']:.3f} | answer acc {o['answer_acc']:.3f}"
        print(f"{name} | {method} | {figures}", flush=True)
    engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", choices=["check", "dev"], default=["check", "dev"])
    args = parser.parse_args()
    figures = {}
    for name in args.sets:
        questions, corpus = SETS[name]
        figures[name] = measure(name, corpus, questions)
    write_result("hybrid", figures)


if __name__ == "__main__":
    main()
