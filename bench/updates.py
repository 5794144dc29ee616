"""1,000 single-document updates and their merges against one full build (issue #22): same answers and figures on
`squad11/check`.

The 13 articles of `../shared/eval/squad11/corpus` are added one update at a time; then 987 more updates, each one
document: small documents of real sentences (from the bundled corpus) added and later removed again, and each
article changed once (a line appended) and changed back. The corpus ends as it began, the 13 articles, and the
index as every update and the merges they called for left it. A full build of the same corpus is made beside it,
and every question of `check` is asked of both (`rag.evaluation.score_one`, as `rag eval` scores them).

    .venv/bin/python bench/updates.py [--updates 1000] [--questions PATH]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import ROOT, write_result  # noqa: E402
from bench.indexing import real_sentences  # noqa: E402
from rag import Assistant, Settings, indexing  # noqa: E402
from rag.embedding import Encoder  # noqa: E402
from rag.evaluation import read_questions, score_one, summarize  # noqa: E402

SQUAD = ROOT.parent / "shared" / "eval" / "squad11"


def updates(settings: Settings, articles: Path, encoder: Encoder, n: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """`n` single-document updates (see the module's docstring) of `settings.corpus`, ending with the articles."""
    rng = np.random.default_rng(seed)
    sentences = real_sentences()
    names = sorted(p.name for p in articles.glob("*.txt"))
    plan: list[tuple[str, str]] = [("add", name) for name in names]
    extra = (n - 3 * len(names)) // 2
    pending = [f"extra-{i:04d}.txt" for i in range(extra)]
    pending += [f"change:{name}" for name in names]
    order = list(rng.permutation(len(pending)))
    added: list[str] = []
    for i in order:  # each extra document is removed again later; each change is reverted later
        item = pending[i]
        if item.startswith("extra-"):
            plan.append(("add", item))
            added.append(item)
        elif item.startswith("change:"):
            plan.append(("change", item.split(":", 1)[1]))
        if added and rng.random() < 0.5:
            plan.append(("remove", added.pop(int(rng.integers(0, len(added))))))
    plan += [("remove", name) for name in added]
    changed = {name for kind, name in plan if kind == "change"}
    plan += [("revert", name) for name in sorted(changed)]
    index, seconds, segments = None, [], []
    for kind, name in plan:
        path = settings.corpus / name
        if kind == "add" and name.startswith("extra-"):
            picks = rng.choice(len(sentences), size=int(rng.integers(3, 7)), replace=False)
            path.write_text(f"Note {name}\n\n" + " ".join(sentences[j] for j in picks) + "\n", encoding="utf-8")
        elif kind == "add":
            shutil.copy(articles / name, path)
        elif kind == "change":
            path.write_text((articles / name).read_text(encoding="utf-8") + "\nA line added by an update.\n")
        elif kind == "revert":
            shutil.copy(articles / name, path)
        else:
            path.unlink()
        start = time.perf_counter()
        index, _ = indexing.build(settings, encoder, progress=False, loaded=index, paths=[name])
        seconds.append(time.perf_counter() - start)
        segments.append(len(index.stored))
    return index, {
        "updates": len(plan),
        "seconds_median": round(float(np.median(seconds)), 4),
        "seconds_p95": round(float(np.percentile(seconds, 95)), 4),
        "segments_max": max(segments),
        "segments_end": segments[-1],
    }


def evaluate(assistant: Assistant, questions: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    responses = [assistant.ask(q["question"]).to_dict() for q in questions]
    scored = [score_one(q, r, assistant.document_text) for q, r in zip(questions, responses, strict=True)]
    return scored, responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--questions", type=Path, default=SQUAD / "check.jsonl")
    parser.add_argument("--corpus", type=Path, default=SQUAD / "corpus")
    args = parser.parse_args()
    encoder = Encoder()
    questions = read_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "corpus").mkdir()
        settings = Settings(corpus=root / "corpus", index=root / "index", precision=encoder.precision)
        updated, run = updates(settings, args.corpus, encoder, args.updates, seed=5)
        full_settings = Settings(corpus=root / "corpus", index=root / "full", precision=encoder.precision)
        full, _ = indexing.build(full_settings, encoder, progress=False, full=True)
        a, a_responses = evaluate(Assistant(settings, updated, encoder), questions)
        b, b_responses = evaluate(Assistant(full_settings, full, encoder), questions)

    def key(r: dict[str, Any]) -> tuple:
        answer = r.get("answer") or {}
        return r["abstained"], answer.get("source"), answer.get("start"), answer.get("end")

    same = sum(key(x) == key(y) for x, y in zip(a_responses, b_responses, strict=True))
    result = {
        "run": run,
        "questions": len(questions),
        "same_answer": same,
        "updated": summarize(a),
        "full": summarize(b),
    }
    for name, table in (("updated", result["updated"]), ("full build", result["full"])):
        overall = table["overall"]
        print(
            f"{name}: R@1 {overall['R@1']}, answer accuracy {overall['answer_acc']}, "
            f"quotes {table['quotes']['checked']} checked, {table['quotes']['bad']} bad"
        )
    print(
        f"{run['updates']} updates (median {run['seconds_median']} s, p95 {run['seconds_p95']} s; at most "
        f"{run['segments_max']} segments, {run['segments_end']} at the end); the same answer to {same} of "
        f"{len(questions)} questions"
    )
    write_result("updates", result)


if __name__ == "__main__":
    main()
