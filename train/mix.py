"""The reader's part of `train/fit_answer.py`: what it reads of each example, and the fits on the tune split of how
many candidates it reads (`top`), how its score is mixed with the scorer's (`scorer_weight`), the exact-span
threshold (`span_threshold`) and the cap of a sentence without the kind of answer asked for (`type_cap`).

Every fit here prints what it chose and on what, and reads only the tune split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from rag.answer import Reader
from rag.answer.reader import Reading
from rag.answer.rerank import Choice, Mix, choose
from rag.answer.select import holds_kind
from rag.answer.spans import exact_answer, trim
from rag.evaluation import best_over, squad_f1

READ = 10  # the most candidates `top` may be
KEEP = 0.95  # `top` keeps an answer-bearing sentence this share of the times one is among all the candidates
WEIGHTS = tuple(round(float(w), 2) for w in np.arange(0.0, 3.01, 0.1))  # the scorer weights tried
GOOD_SPAN = 0.5  # a span is good when its token F1 against the answers is at least this (more right than wrong)


@dataclass
class Read:
    """The reader's view of one example's best candidates by the scorer."""

    top: np.ndarray  # candidate positions, the scorer's best first
    reading: Reading
    texts: list[str]  # what each would quote


def read_all(reader: Reader, examples: list, logits: list[np.ndarray], k: int) -> list[Read]:  # type: ignore[type-arg]
    """The reader's view of each example's `k` best candidates, read in one call as `respond` reads them (the
    int8 reader scales a call's activations together, so what else is in the call matters)."""
    out = []
    for e, z in zip(examples, logits, strict=True):
        top = np.argsort(-z, kind="stable")[:k]
        texts = [e.quoted[i] for i in top.tolist()]
        out.append(Read(top, reader.read(e.query.text, texts), texts))
    return out


def first(read: Read, k: int) -> Reading:
    r = read.reading
    return Reading(r.logits[:k], r.spans[:k], r.span_probability[:k])


def choose_top(examples: list, logits: list[np.ndarray]) -> int:  # type: ignore[type-arg]
    """The smallest k whose first k candidates by the scorer hold an answer `KEEP` of the times any candidate
    does."""
    able = [(e, np.argsort(-z, kind="stable")) for e, z in zip(examples, logits, strict=True)]
    able = [(e, order) for e, order in able if e.answerable and e.labels.any()]
    for k in range(1, READ + 1):
        kept = np.mean([e.labels[order[:k]].any() for e, order in able])
        print(f"  top {k}: an answer-bearing sentence among them {kept:.3f} of the times one is a candidate")
        if kept >= KEEP:
            return k
    return READ


def choices(examples: list, logits: list[np.ndarray], reads: list[Read], mix: Mix) -> list[Choice]:  # type: ignore[type-arg]
    return [choose(z, r.top[: mix.top], first(r, mix.top), mix) for z, r in zip(logits, reads, strict=True)]


def choose_weight(examples: list, logits: list[np.ndarray], reads: list[Read], top: int) -> float:  # type: ignore[type-arg]
    """The scorer weight with the best tune top-1 (ties: the smaller weight)."""
    scores = {}
    for w in WEIGHTS:
        picked = choices(examples, logits, reads, Mix(top, w, 0.0, 1.0))
        scores[w] = np.mean([e.labels[c.best] for e, c in zip(examples, picked, strict=True) if e.answerable])
    print("  scorer weight -> tune top-1: " + ", ".join(f"{w} {s:.3f}" for w, s in scores.items()))
    return max(scores, key=lambda w: (scores[w], -w))


def fit_span_threshold(examples: list, picked: list[Choice]) -> float:  # type: ignore[type-arg]
    """The span probability at which a logistic fit of "the span is good" (token F1 >= `GOOD_SPAN`) on the log
    probability crosses one half, over the tune questions whose chosen sentence holds an answer: below it, a span
    of a right sentence is more often wrong than right (and a wrong sentence's span is wrong anyway)."""
    x, y = [], []
    for e, c in zip(examples, picked, strict=True):
        if not (e.answerable and e.labels[c.best]):
            continue
        text = e.quoted[c.best]
        a, b = trim(text, *c.reading.spans[c.at])
        x.append(np.log(max(float(c.reading.span_probability[c.at]), 1e-6)))
        y.append(best_over(squad_f1, text[a:b], e.answers) >= GOOD_SPAN)
    model = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(x).reshape(-1, 1), np.asarray(y))
    threshold = float(np.exp(-model.intercept_[0] / model.coef_[0][0]))
    print(f"  span threshold {threshold:.3f}: {np.mean(y):.3f} of {len(y)} chosen spans good before it")
    return round(min(max(threshold, 0.0), 1.0), 3)


def fit_type_cap(examples: list, picked: list[Choice]) -> float:  # type: ignore[type-arg]
    """The share of the real tune questions answered right when the chosen sentence holds no answer of the kind
    the question asks for: the most confidence such an answer gets."""
    rights = [
        bool(e.answerable and e.labels[c.best])
        for e, c in zip(examples, picked, strict=True)
        if not e.made and not holds_kind(e.query, e.pool, c.best)
    ]
    cap = float(np.mean(rights)) if rights else 1.0
    print(f"  type cap {cap:.3f}: right share of {len(rights)} tune answers without the kind asked for")
    return round(cap, 3)


def span_f1(example, choice: Choice, mix: Mix) -> float:  # type: ignore[no-untyped-def]
    """The eval's exact-span F1 of the chosen span, 0 when none is marked."""
    text = example.quoted[choice.best]
    probability = float(choice.reading.span_probability[choice.at])
    exact = exact_answer(text, 0, choice.reading.spans[choice.at], probability, mix.span_threshold, example.query.form)
    return best_over(squad_f1, None if exact is None else exact.text, example.answers)
