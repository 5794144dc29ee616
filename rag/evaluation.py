"""Scoring responses on a question set, by the rules of the project's eval README (and its independent `score.py`).

A result is right when one of the question's answer strings appears in the scored text, compared
case-insensitively, with runs of white space folded and typographic apostrophes read as plain ones. The exact
answer span (`answer.exact.text`) is scored by SQuAD's rules instead: exact match and token F1, best over the
answer strings. Metrics are reported over answerable questions, overall (crosslingual apart) and per kind; the
abstention rate over unanswerable ones; exact quotes over every quoted span; calibration (ECE, 10 equal-width
bins) over every response that answered.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadRequest, RagError
from .readers.documents import Unreadable

SPACE = re.compile(r"\s+")
ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = frozenset(string.punctuation)
APART = "crosslingual"  # needs a multilingual model: reported on its own line
UNANSWERABLE = "unanswerable"
BINS = 10  # equal-width confidence bins of the calibration error
DIGITS = 3  # the independent scorer rounds to 3 decimals


def normalize(text: str) -> str:
    return SPACE.sub(" ", text.replace("\u2019", "'")).strip().lower()


def holds(text: str | None, answers: Iterable[str]) -> bool:
    scored = normalize(text or "")
    return bool(scored) and any(normalize(a) in scored for a in answers)


# SQuAD's official answer normalization and token F1 (evaluate-v2.0.py `normalize_answer` / `compute_f1`; v1.1 is
# the same but for an empty side, where v2.0 scores 1 when both are empty, as the eval's score.py does).
def squad_normalize(text: str) -> str:
    """Lower case, punctuation removed, articles a/an/the removed, white space folded."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def squad_f1(prediction: str, gold: str) -> float:
    pred, ref = squad_normalize(prediction).split(), squad_normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_em(prediction: str, gold: str) -> float:
    return float(squad_normalize(prediction) == squad_normalize(gold))


def best_over(metric: Callable[[str, str], float], span: str | None, answers: list[str]) -> float:
    """The best score of the span against any answer string; 0 without a span (or without answers)."""
    return max((metric(span, a) for a in answers), default=0.0) if span else 0.0


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


@dataclass(frozen=True)
class Scored:
    """One question's results."""

    id: str | None
    kind: str
    answerable: bool
    rank: int | None  # of the first of the first 10 citations that holds an answer string
    answer_right: bool  # an answer string is inside `answer.text` (always False for an unanswerable question)
    abstained: bool
    confidence: float
    has_exact: bool  # the response carries a non-empty exact answer span
    exact_em: float
    exact_f1: float
    quotes_checked: int  # spans checked against the source: citations, the answer, its exact span
    quotes_bad: int  # spans whose text is not the source's text there, plus highlights outside their citation


def exact_span(response: dict[str, Any]) -> dict[str, Any] | None:
    """`answer.exact` when there is one (old responses have no such key)."""
    return (response.get("answer") or {}).get("exact") or None


def quoted_spans(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span the response quotes: the citations, the answer, and the answer's exact span (in its source)."""
    spans = list(response.get("citations") or [])
    answer, exact = response.get("answer"), exact_span(response)
    if answer:
        spans.append(answer)
    if answer and exact and exact.get("text") is not None:
        spans.append({"source": answer.get("source"), **exact})
    return spans


def quote_faults(span: dict[str, Any], text: str | None) -> int:
    """0, 1 or 2: the span's text is not the source's text at its offsets; its highlight is not inside it."""
    faults = int(text is None or text[span["start"] : span["end"]] != span["text"])
    mark = span.get("highlight")
    if mark and text is not None and not (span["start"] <= mark["start"] <= mark["end"] <= span["end"]):
        faults += 1
    return faults


def source_text(read_source: Callable[[str], str], source: str | None) -> str | None:
    """The source's text, or None when it cannot be read (every quote from it is then wrong)."""
    try:
        return read_source(source) if source is not None else None
    except (OSError, LookupError, ValueError, RagError, Unreadable):  # missing, outside the corpus, not text
        return None


def score_one(item: dict[str, Any], response: dict[str, Any], read_source: Callable[[str], str]) -> Scored:
    """One question's results: ranks, answer hit, abstention, exact span EM/F1, exact quotes."""
    answers = item.get("answers") or []
    kind = item.get("kind", "unknown")
    answerable = kind != UNANSWERABLE and bool(answers)
    texts = [c.get("text") for c in response.get("citations") or []]
    rank = next((i + 1 for i, t in enumerate(texts[:10]) if holds(t, answers)), None) if answerable else None
    span = (exact_span(response) or {}).get("text")
    spans = quoted_spans(response)
    return Scored(
        id=item.get("id"),
        kind=kind,
        answerable=answerable,
        rank=rank,
        answer_right=answerable and holds((response.get("answer") or {}).get("text"), answers),
        abstained=bool(response.get("abstained")),
        confidence=float(response.get("confidence") or 0),
        has_exact=bool(span),
        exact_em=best_over(squad_em, span, answers) if answerable else 0.0,
        exact_f1=best_over(squad_f1, span, answers) if answerable else 0.0,
        quotes_checked=len(spans),
        quotes_bad=sum(quote_faults(s, source_text(read_source, s.get("source"))) for s in spans),
    )


@dataclass(frozen=True)
class Bin:
    """One bin of the reliability diagram: responses with a confidence in [bin/10, (bin+1)/10)."""

    bin: int
    n: int
    mean_confidence: float
    share_right: float

    def to_dict(self) -> dict[str, float]:
        return {
            "bin": self.bin,
            "n": self.n,
            "mean_confidence": _round(self.mean_confidence),
            "share_right": _round(self.share_right),
        }


def reliability(results: list[Scored]) -> list[Bin]:
    """The responses that answered (did not abstain), binned by confidence into tenths; empty bins left out."""
    bins: dict[int, list[Scored]] = defaultdict(list)
    for r in results:
        if not r.abstained:
            bins[min(int(r.confidence * BINS), BINS - 1)].append(r)
    return [
        Bin(b, len(rs), sum(r.confidence for r in rs) / len(rs), sum(r.answer_right for r in rs) / len(rs))
        for b, rs in sorted(bins.items())
    ]


def expected_calibration_error(bins: list[Bin]) -> float:
    """The gap between mean confidence and share right of each bin, weighted by the bin's size."""
    total = sum(b.n for b in bins)
    return sum(abs(b.mean_confidence - b.share_right) * b.n for b in bins) / total if total else float("nan")


def calibration(results: list[Scored]) -> dict[str, float]:
    """ECE, accuracy and mean confidence over the responses that answered."""
    answered = [r for r in results if not r.abstained]
    return {
        "answered": len(answered),
        "ece": _round(expected_calibration_error(reliability(answered))),
        "accuracy_when_answered": _rate([r.answer_right for r in answered]),
        "mean_confidence": _round(sum(r.confidence for r in answered) / len(answered)) if answered else float("nan"),
    }


def groups(results: list[Scored]) -> dict[str, list[Scored]]:
    """Answerable questions: 'overall' (crosslingual apart) first, then each kind; then 'unanswerable'."""
    found: dict[str, list[Scored]] = defaultdict(list)
    for r in results:
        if r.answerable and r.kind != APART:
            found["overall"].append(r)
        found[r.kind if r.answerable else UNANSWERABLE].append(r)
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "overall", kv[0] == UNANSWERABLE, kv[0])))


def summarize(results: list[Scored]) -> dict[str, dict[str, float]]:
    """Metrics per group (see `groups`), then 'quotes' and, when any response answered, 'calibration'."""
    table = {
        name: _metrics(rows) if name != UNANSWERABLE else _abstention(rows) for name, rows in groups(results).items()
    }
    table["quotes"] = {"checked": sum(r.quotes_checked for r in results), "bad": sum(r.quotes_bad for r in results)}
    if any(not r.abstained for r in results):
        table["calibration"] = calibration(results)
    return table


def _metrics(rows: list[Scored]) -> dict[str, float]:
    return {
        "n": len(rows),
        "R@1": _rate([r.rank == 1 for r in rows]),
        "R@5": _rate([r.rank is not None and r.rank <= 5 for r in rows]),
        "MRR@10": _round(sum(1 / r.rank for r in rows if r.rank) / len(rows)),
        "answer_acc": _rate([r.answer_right for r in rows]),
        "false_abstained": _rate([r.abstained for r in rows]),
        "exact_em": _round(sum(r.exact_em for r in rows) / len(rows)),
        "exact_f1": _round(sum(r.exact_f1 for r in rows) / len(rows)),
        "has_exact": _rate([r.has_exact for r in rows]),
    }


def _abstention(rows: list[Scored]) -> dict[str, float]:
    return {"n": len(rows), "abstained": _rate([r.abstained for r in rows])}


def _rate(flags: list[bool]) -> float:
    return _round(sum(flags) / len(flags)) if flags else float("nan")


def _round(value: float) -> float:
    return round(value, DIGITS)


COLUMNS = ("n", "R@1", "R@5", "MRR@10", "answer_acc", "false_abstained", "exact_em", "exact_f1")
HEADER = "| group | n | R@1 | R@5 | MRR@10 | answer acc | false abst. | exact EM | exact F1 |"


def format_table(table: dict[str, dict[str, float]]) -> str:
    """A markdown table of `summarize`'s result, then a line each for abstention, exact quotes, calibration."""
    rows = [name for name in table if name not in (UNANSWERABLE, "quotes", "calibration")]
    lines = [HEADER, "|---" * (len(COLUMNS) + 1) + "|"]
    lines += [f"| {name} | {table[name]['n']} | " + " | ".join(_cells(table[name])) + " |" for name in rows]
    return "\n".join([*lines, "", *_footer(table)])


def _cells(m: dict[str, float]) -> list[str]:
    return [f"{m[k]:.3f}" for k in COLUMNS[1:]]


def _footer(table: dict[str, dict[str, float]]) -> list[str]:
    none = table.get(UNANSWERABLE, {"n": 0, "abstained": float("nan")})
    quotes, overall = table["quotes"], table.get("overall", {"has_exact": float("nan")})
    lines = [
        f"unanswerable abstained: {none['abstained']:.3f} ({none['n']} questions)",
        f"exact spans given: {overall['has_exact']:.3f} of answerable responses (overall)",
        f"exact quotes: {quotes['checked']} checked, {quotes['bad']} bad",
    ]
    c = table.get("calibration")
    if c is None:
        return [*lines, "calibration: no response answered"]
    return [
        *lines,
        f"calibration ({c['answered']} answered): ECE {c['ece']:.3f}; accuracy when answered "
        f"{c['accuracy_when_answered']:.3f}; mean confidence {c['mean_confidence']:.3f}",
    ]
