"""Compare retrieval methods on a question set: each signal alone, reciprocal rank fusion, and the convex fusion
the project uses. Prints a markdown table (R@1, R@5, MRR@10, answer accuracy over answerable questions, crosslingual
left out).

    python bench/fusion.py ../shared/eval/dev.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import respond_as  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.evaluation import read_questions, score_one, summarize  # noqa: E402
from rag.retrieval import Weights, fuse_convex, fuse_rrf, search  # noqa: E402

METHODS = {
    "dense (chunk vectors) alone": (Weights(1, 0, 0), fuse_convex),
    "dense (best sentence) alone": (Weights(0, 1, 0), fuse_convex),
    "BM25 alone": (Weights(0, 0, 1), fuse_convex),
    "RRF, dense chunk + BM25": (Weights(1, 0, 1), fuse_rrf),
    "RRF, all three signals": (Weights(1, 1, 1), fuse_rrf),
    "convex, all three (chosen)": (Weights(), fuse_convex),
}


def main(path: str) -> None:
    bot = Assistant.open(Settings.from_env(), progress=False)
    items = read_questions(Path(path))
    print("| method | R@1 | R@5 | MRR@10 | answer acc |\n|---|---|---|---|---|")
    for name, (weights, fuse) in METHODS.items():
        results = []
        for item in items:
            q = item["question"]
            index = bot.index
            vector, terms = bot.encoder.encode_one(q), index.vocabulary.query_terms(q)
            hits, passages = search(index.engine, vector, terms, 10, weights, fuse)
            response = respond_as(bot, q, vector, terms, hits, passages, bot.settings.top_k).to_dict()
            results.append(score_one(item, response, bot.document_text))
        m = summarize(results)["overall"]
        print(f"| {name} | {m['R@1']:.2f} | {m['R@5']:.2f} | {m['MRR@10']:.2f} | {m['answer_acc']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
