"""What `train/fit_answer.py` prints: the confidence and the eval's answer figures of fitted weights on a set of
examples, computed from the examples directly with the choice `respond` makes (the type cap included)."""

from __future__ import annotations

import numpy as np

from rag.answer import question_features
from rag.answer.rerank import Choice
from rag.answer.scorer import Scorer
from rag.answer.select import holds_kind
from train import mix as mixing
from train.examples import Example


def inputs(examples: list[Example], picked: list[Choice]) -> np.ndarray:
    """The confidence's inputs (`CONFIDENCE_NAMES`) of each example."""
    rows = [
        np.concatenate([question_features(e.query, e.pool, c.logits), c.features])
        for e, c in zip(examples, picked, strict=True)
    ]
    return np.vstack(rows)


def confidences(examples: list[Example], picked: list[Choice], scorer: Scorer) -> np.ndarray:
    """The confidence of each example's chosen candidate, as `respond` computes it (the type cap included)."""
    p = [scorer.probability(x) for x in inputs(examples, picked)]
    capped = [not holds_kind(e.query, e.pool, c.best) for e, c in zip(examples, picked, strict=True)]
    return np.asarray([min(q, scorer.mix.type_cap) if cap else q for q, cap in zip(p, capped, strict=True)])


def measure(examples: list[Example], picked: list[Choice], scorer: Scorer, threshold: float) -> dict[str, float]:
    """The eval's answer figures, from the examples directly (the same choice the pipeline makes)."""
    p = confidences(examples, picked, scorer)
    ok = np.asarray([bool(e.labels[c.best]) for e, c in zip(examples, picked, strict=True)])
    able = np.asarray([e.answerable for e in examples])
    answered = p >= threshold
    f1 = [
        mixing.span_f1(e, c, scorer.mix) if a else 0.0
        for e, c, a in zip(examples, picked, answered, strict=True)
        if e.answerable
    ]
    return {
        "answer_acc": float(np.mean(ok[able] & answered[able])),
        "unanswerable_abstained": float(np.mean(~answered[~able])) if (~able).any() else float("nan"),
        "false_abstentions": float(np.mean(~answered[able])),
        "ece": ece(p[answered], ok[answered] & able[answered]),
        "span_f1": float(np.mean(f1)),
        "R@1": rank_at(examples, picked, 1),
        "R@5": rank_at(examples, picked, 5),
    }


def rank_at(examples: list[Example], picked: list[Choice], k: int) -> float:
    """Share of answerable questions with an answer-bearing passage among the first k, passages ordered by their
    best candidate's score (as `rank_passages` orders them; a sentence two passages share counts for the first)."""
    found = []
    for e, c in zip(examples, picked, strict=True):
        if e.answerable:
            best = np.full(len(e.passage_labels), -np.inf)
            np.maximum.at(best, e.pool.hit, c.logits)
            found.append(bool(e.passage_labels[np.argsort(-best, kind="stable")[:k]].any()))
    return float(np.mean(found))


def ece(confidence: np.ndarray, right: np.ndarray) -> float:
    if not len(confidence):
        return float("nan")
    bins = np.minimum((confidence * 10).astype(int), 9)
    gaps = [abs(confidence[bins == b].mean() - right[bins == b].mean()) * (bins == b).sum() for b in np.unique(bins)]
    return float(sum(gaps) / len(confidence))


def report(name: str, m: dict[str, float]) -> None:
    print(
        f"| {name} | {m['answer_acc']:.3f} | {m['unanswerable_abstained']:.3f} | {m['false_abstentions']:.3f} "
        f"| {m['span_f1']:.3f} | {m['ece']:.3f} | {m['R@1']:.3f} | {m['R@5']:.3f} |",
        flush=True,
    )
