"""The exact answer inside the answer sentence: a date, a number with its unit, a name, a short noun phrase.

The classic SQuAD baseline (Rajpurkar et al. 2016, section 5) without a parser: every run of up to `MAX_TOKENS`
tokens that neither starts nor ends on a function word or punctuation is a candidate, and a linear model scores it
from its type against the question's form (a date for "when", a number for "how many", a capitalized run for
"who"), how many of its words the question already has (answers rarely repeat the question), how near it sits to
the question's words, and its shape (length, delimiters, the words on either side). The weights are a softmax over
each question's candidates fitted on SQuAD 1.1 questions by `bench/train_spans.py` (`span_weights.json`); the
answer is the candidate with the highest expected token F1 against the best few (minimum Bayes risk).

English only. About 0.12 ms a call (median over 400 calls on 26-34-word sentences, `bench/train_spans.py`).

The parts: `span_words.py` (the vocabulary), `span_tokens.py` (a sentence's tokens and their flags, what a question
tells), `span_runs.py` (dates, numbers, names as token runs), `span_nearness.py` (where a span sits against the
question's words) and `span_features.py` (the candidates and their features); this module scores and chooses, and
loads the fitted weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorrupt
from ..text.question import FORMS
from .span_features import BASE, CROSSED, NAMES, Candidates, candidate_spans
from .span_runs import MAX_TOKENS
from .span_tokens import tokenize

__all__ = [
    "BASE",
    "CROSSED",
    "MAX_TOKENS",
    "NAMES",
    "TOP",
    "WEIGHTS",
    "Candidates",
    "SpanModel",
    "candidate_spans",
    "choose",
    "exact_span",
    "load_model",
    "score",
    "tokenize",
]

WEIGHTS = Path(__file__).with_name("span_weights.json")
TOP = 16  # candidates weighed against each other by the expected-F1 choice


@dataclass(frozen=True)
class SpanModel:
    base: np.ndarray  # weights over `BASE`
    crossed: np.ndarray  # (len(FORMS), len(CROSSED))
    threshold: float  # below this expected F1 the span is None


def exact_span(
    question: str, form: str, sentence: str, question_terms: set[str], language: str | None = "en"
) -> tuple[int, int] | None:
    """The short exact answer inside `sentence`.

    Args:
        question: the question as asked; `form` is `rag.text.question.question_form(question)`.
        question_terms: the question's stemmed terms (`rag.text.words.terms(question)`).
        language: the question's language; the rules are English, so any other gives None.

    Returns:
        (start, end) character offsets into `sentence`, or None when no span fits.
    """
    if language != "en" or form not in FORMS:
        return None
    tokens = tokenize(sentence, question, question_terms)
    candidates = candidate_spans(tokens, question)
    if not len(candidates.first):
        return None
    model = load_model()
    best, expected = choose(candidates, score(model, candidates.features, FORMS.index(form)))
    if expected < model.threshold:
        return None
    return int(tokens.starts[candidates.first[best]]), int(tokens.ends[candidates.last[best]])


def score(model: SpanModel, features: np.ndarray, form: int) -> np.ndarray:
    """Each candidate's logit: the base weights, plus the crossed ones of the question's form."""
    return features @ model.base + features[:, : len(CROSSED)] @ model.crossed[form]


def choose(candidates: Candidates, logits: np.ndarray) -> tuple[int, float]:
    """The candidate with the highest expected token F1 against the `TOP` best, weighted by their probabilities."""
    top = np.argsort(-logits)[:TOP]
    p = np.exp(logits[top] - logits[top[0]])
    p /= p.sum()
    first, last, words = candidates.first[top], candidates.last[top], candidates.words
    lo, hi = np.maximum.outer(first, first), np.minimum.outer(last, last)
    overlap = np.where(hi >= lo, words[np.maximum(hi, lo) + 1] - words[lo], 0)
    size = words[last + 1] - words[first]
    expected = (2 * overlap / np.add.outer(size, size)) @ p
    best = int(np.argmax(expected))
    return int(top[best]), float(expected[best])


@lru_cache(maxsize=1)
def load_model(path: Path = WEIGHTS) -> SpanModel:
    """The fitted weights; refuses a file whose feature names are not this module's."""
    data: dict[str, Any] = json.loads(path.read_text())
    names = tuple(data["names"])
    if names != NAMES:
        missing, extra = sorted(set(NAMES) - set(names)), sorted(set(names) - set(NAMES))
        raise IndexCorrupt(
            f"{path} was fitted for other span features (missing {missing[:5]}, unknown {extra[:5]}); "
            "refit with: .venv/bin/python bench/train_spans.py"
        )
    coef = np.asarray(data["coef"], dtype=np.float64)
    crossed = coef[len(BASE) :].reshape(len(FORMS), len(CROSSED))
    return SpanModel(coef[: len(BASE)], crossed, float(data["threshold"]))
