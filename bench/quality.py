"""Answer quality of the whole pipeline on the question sets, by the eval's rules (`rag.evaluation`, the same figures
as ../shared/eval/score.py), with the reliability of the confidence on the check split as a table and a plot.

    .venv/bin/python bench/quality.py --precision fp32   # bench/results/quality.json and reliability.png
    .venv/bin/python bench/quality.py                    # the default precision, int8: quality-int8.json
    .venv/bin/python bench/quality.py --precision fp32 int8 --sets check dev   # both, in one run; two sets

A set not run keeps the figures it has in the results file.

Sets: the SQuAD tune split (what the scorer is fitted on), the check split (never fitted), both on the SQuAD
articles, and the development set on the bundled corpus. Each set is asked through `Assistant.ask`, as a user would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, ROOT, write_result  # noqa: E402
from rag import Settings  # noqa: E402
from rag.evaluation import calibration, read_questions, reliability, score_one, summarize  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
SETS = {
    "tune": (SHARED / "squad11" / "tune.jsonl", SHARED / "squad11" / "corpus"),
    "check": (SHARED / "squad11" / "check.jsonl", SHARED / "squad11" / "corpus"),
    "dev": (SHARED / "dev.jsonl", ROOT / "corpus"),
}


def measure(
    questions: Path, corpus: Path, index: Path, engine: str = "local", precision: str = "fp32"
) -> dict[str, Any]:
    """The metrics, calibration and reliability bins of one set, answered with search engine `engine` and the
    encoder at `precision`."""
    collection = f"quality_{corpus.name}" + ("" if precision == "fp32" else f"_{precision}")
    settings = Settings(corpus=corpus, index=index, engine=engine, collection=collection, precision=precision)
    bot = Assistant.open(settings, progress=False, say=lambda _: None)
    items = read_questions(questions)
    results = [
        score_one(item, bot.ask(item["question"], history=item.get("history")).to_dict(), bot.document_text)
        for item in items
    ]
    return {
        "metrics": summarize(results),
        "calibration": calibration(results),
        "reliability": [b.to_dict() for b in reliability(results)],
    }


def plot_reliability(bins: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    xs, ys, ns = [b["mean_confidence"] for b in bins], [b["share_right"] for b in bins], [b["n"] for b in bins]
    ax.scatter(xs, ys, s=[12 + n / 4 for n in ns], color="#1f5fa8", zorder=3, label="check split (size: answers)")
    ax.plot(xs, ys, color="#1f5fa8", linewidth=1)
    ax.set_xlabel("confidence (mean of the bin)")
    ax.set_ylabel("share right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Reliability of the confidence, SQuAD check split", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/rag-quality-index"))
    parser.add_argument("--engine", choices=["local", "milvus"], default="local")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    default = Settings().precision_for(None)  # what a new index is built with
    parser.add_argument("--precision", nargs="+", choices=["fp32", "int8"], default=[default])
    args = parser.parse_args()
    for precision in args.precision:  # one after the other in one run, so that both meet the same code
        suffix = "".join(f"-{v}" for v, default in ((args.engine, "local"), (precision, "fp32")) if v != default)
        earlier = RESULTS / f"quality{suffix}.json"  # the sets not run this time keep their last figures
        figures = json.loads(earlier.read_text())["figures"] if earlier.exists() else {}
        for name in args.sets:
            questions, corpus = SETS[name]
            folder = args.index.with_name(f"{args.index.name}-{args.engine}-{precision}-{corpus.name}")
            figures[name] = measure(questions, corpus, folder, args.engine, precision)
            m, c = figures[name]["metrics"], figures[name]["calibration"]
            print(name, precision, m["overall"], m.get("unanswerable"), c, flush=True)
        write_result(f"quality{suffix}", figures)
        if "check" in args.sets and not suffix:
            plot_reliability(figures["check"]["reliability"], RESULTS / "reliability.png")


if __name__ == "__main__":
    main()
