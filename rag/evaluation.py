"""Scoring responses on a question set, by the rules of the project's eval README.

A result is right when one of the question's answer strings appears in the scored text, compared
case-insensitively, with runs of white space folded and typographic apostrophes read as plain ones. Metrics are
reported over answerable questions, overall (crosslingual apart) and per kind; abstention over all questions.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import BadRequest

SPACE = re.compile(r"\s+")
APART = "crosslingual"  # needs a multilingual model: reported on its own line


def normalize(text: str) -> str:
    return SPACE.sub(" ", text.replace("\u2019", "'")).strip().lower()


def holds(text: str | None, answers: Iterable[str]) -> bool:
    return text is not None and any(normalize(a) in normalize(text) for a in answers)


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from a JSON-lines file: each needs `question`; `answers`, `kind`, `id` are optional."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            item["question"]
        except (ValueError, KeyError, TypeError):
            raise BadRequest(f'{path}:{number} is not a JSON object with a "question"') from None
        questions.append(item)
    return questions


def score_one(item: dict[str, Any], response: dict[str, Any], read_source: Callable[[str], str]) -> dict[str, Any]:
    """Per-question results: ranks, answer hit, abstention, exact quotes."""
    answers = item.get("answers") or []
    texts = [c["text"] for c in response["citations"]]
    rank = next((i + 1 for i, t in enumerate(texts[:10]) if holds(t, answers)), None)
    spans = [response["answer"]] if response["answer"] else []
    spans += response["citations"]
    exact = all(read_source(s["source"])[s["start"] : s["end"]] == s["text"] for s in spans)
    return {
        "id": item.get("id"),
        "kind": item.get("kind", "unknown"),
        "answerable": bool(answers),
        "rank": rank,
        "answer_right": holds((response["answer"] or {}).get("text"), answers),
        "abstained": response["abstained"],
        "exact": exact,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Metrics per group: 'overall' (answerable, crosslingual apart), each kind, and 'abstention'."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["answerable"]:
            groups[r["kind"]].append(r)
            if r["kind"] != APART:
                groups["overall"].append(r)
    table = {name: _metrics(rows) for name, rows in sorted(groups.items(), key=lambda kv: kv[0] != "overall")}
    table["abstention"] = {
        "n": len(results),
        "unanswerable_abstained": _rate([r["abstained"] for r in results if not r["answerable"]]),
        "answerable_answered": _rate([not r["abstained"] for r in results if r["answerable"]]),
        "exact_quotes": _rate([r["exact"] for r in results]),
    }
    return table


def _metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "n": len(rows),
        "R@1": _rate([r["rank"] == 1 for r in rows]),
        "R@5": _rate([r["rank"] is not None and r["rank"] <= 5 for r in rows]),
        "MRR@10": round(sum(1 / r["rank"] for r in rows if r["rank"]) / len(rows), 4),
        "answer_acc": _rate([r["answer_right"] for r in rows]),
    }


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def format_table(table: dict[str, dict[str, float]]) -> str:
    """A markdown table of `summarize`'s result."""
    lines = ["| group | n | R@1 | R@5 | MRR@10 | answer acc |", "|---|---|---|---|---|---|"]
    for name, m in table.items():
        if name != "abstention":
            lines.append(
                f"| {name} | {m['n']} | {m['R@1']:.2f} | {m['R@5']:.2f} | {m['MRR@10']:.2f} | {m['answer_acc']:.2f} |"
            )
    a = table["abstention"]
    lines += [
        "",
        f"unanswerable abstained: {a['unanswerable_abstained']:.2f}; answerable answered: "
        f"{a['answerable_answered']:.2f}; exact quotes: {a['exact_quotes']:.2f} ({a['n']} questions)",
    ]
    return "\n".join(lines)
