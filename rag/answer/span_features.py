"""The candidate spans of a sentence and their feature rows: which token runs are candidates (up to `MAX_TOKENS`
long, not starting or ending on a function word or punctuation), the feature names (`BASE`, `CROSSED`, `NAMES`),
and the typed, shape, length, word, side and context-word features (the nearness ones are `span_nearness.py`'s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..text.question import FORMS
from .span_nearness import nearness
from .span_runs import MAX_TOKENS, run_grids
from .span_tokens import (
    BREAK,
    BY,
    CAP,
    CLAUSE,
    CLOSE,
    COMMA,
    CONJ,
    DATE,
    DIGIT,
    ED,
    FLAGS,
    HEAD,
    ING,
    LOWER,
    LY,
    NAMING,
    NUMBER,
    OF,
    OPEN,
    PLACE,
    PLURAL,
    QTERM,
    QUOTE,
    STOP,
    WORD,
    Tokens,
)
from .span_words import CONTEXT_WORDS, CURRENCY, DELIM_LEFT, DELIM_RIGHT

TYPED = ("date_any", "date_exact", "num_any", "num_exact", "num_unit", "cap_share", "cap_exact", "cap_partial")
SHAPE = ("left_place", "left_by", "left_naming", "left_of", "whole_unit", "q_share")
LENGTHS = ("len1", "len2", "len3", "len4_5", "len6_8")
WORDS = (
    "q_any", "q_all", "head_in", "head_last", "head_after", "cap_first", "cap_last", "commas_in", "conj_in",
    "clause_in", "stop_share", "last_ing", "last_ed", "last_ly", "last_plural", "first_ing", "first_ed", "first_ly",
)  # fmt: skip
SIDES = (
    "left_start", "left_delim", "left_cap", "left_lower", "left_digit", "left_q", "left_q2",
    "right_end", "right_delim", "right_cap", "right_lower", "right_digit", "right_q", "right_q2", "paren",
)  # fmt: skip
NEARNESS = (
    "dist_min", "dist_left", "dist_right", "content_left", "content_right", "no_q_left", "no_q_right",
    "q_near_left", "q_near_right", "q_wide_left", "q_wide_right", "q_left_share", "q_left_share_aux",
    "position", "focus_start", "focus_exact", "left_q_first", "left_q_last", "right_q_first", "right_q_last",
    "left_asked", "right_asked", "strong_left", "strong_right", "paired_left", "paired_right", "between",
    "between_close", "content1_left", "content1_right", "content2_left", "content2_right", "content4_left",
    "content4_right", "content8_left", "content8_right",
)  # fmt: skip
LEXICAL = tuple(f"left={w}" for w in CONTEXT_WORDS) + tuple(f"right={w}" for w in CONTEXT_WORDS)
CROSSED = TYPED + SHAPE + LENGTHS  # each also crossed with the question's form
BASE = CROSSED + WORDS + SIDES + NEARNESS + LEXICAL
NAMES = BASE + tuple(f"{form}*{name}" for form in FORMS for name in CROSSED)


@dataclass(frozen=True)
class Candidates:
    """Every candidate span of a sentence as token ranges [first, last], with its feature rows over `BASE`."""

    first: np.ndarray
    last: np.ndarray
    features: np.ndarray
    words: np.ndarray  # cumulative count of word tokens, for the pairwise overlap of the expected-F1 choice


def candidate_spans(tokens: Tokens, question: str) -> Candidates:
    """All candidate spans of the sentence and their features."""
    f, n = tokens.flags, len(tokens.lower)
    sums = np.vstack((np.zeros(FLAGS), np.cumsum(f, axis=0)))
    currency = np.asarray([w in CURRENCY for w in tokens.lower], dtype=bool)
    percent = np.asarray([w == "%" for w in tokens.lower], dtype=bool)
    content = (f[:, WORD] > 0) & (f[:, STOP] == 0)
    first = np.repeat(np.arange(n), MAX_TOKENS)
    last = first + np.tile(np.arange(MAX_TOKENS), n)
    first, last = first[last < n], last[last < n]
    inside = sums[last + 1] - sums[first]
    keep = (
        (content | currency)[first]
        & (content | percent)[last]
        & (inside[:, OPEN] == inside[:, CLOSE])
        & (inside[:, QUOTE] % 2 == 0)
        & (inside[:, BREAK] == 0)
    )
    first, last, inside = first[keep], last[keep], inside[keep]
    features = _features(tokens, question, first, last, inside) if len(first) else np.zeros((0, len(BASE)))
    return Candidates(first, last, features, sums[:, WORD])


def _features(tokens: Tokens, question: str, first: np.ndarray, last: np.ndarray, inside: np.ndarray) -> np.ndarray:
    f = tokens.flags
    words = np.maximum(inside[:, WORD], 1.0)
    padded = np.vstack((np.zeros(FLAGS), f, np.zeros(FLAGS)))  # row i + 1 is token i
    left, right = padded[first], padded[last + 2]
    sides = _sides(tokens, first, last, left, right, padded)
    typed = _typed(inside, words, run_grids(tokens), first, last - first + 1)
    shape = [left[:, PLACE], left[:, BY], left[:, NAMING], left[:, OF], sides[0] & sides[1], inside[:, QTERM] / words]
    lengths = [words == 1, words == 2, words == 3, (words >= 4) & (words <= 5), words >= 6]
    columns = typed + shape + lengths + _words(f, inside, words, right, first, last) + sides[2:]
    columns += nearness(tokens, question, first, last) + _lexical(tokens, first, last)
    return np.column_stack(columns)


def _typed(
    inside: np.ndarray, words: np.ndarray, grids: dict[str, np.ndarray], first: np.ndarray, length: np.ndarray
) -> list[np.ndarray]:
    at = (first, length - 1)
    member = grids["cap_member"]
    exact_cap = grids["cap"][at]
    partial = (member[first] == member[first + length - 1]) & (member[first] >= 0)
    return [
        inside[:, DATE] > 0,
        grids["date"][at],
        inside[:, NUMBER] > 0,
        grids["number"][at],
        grids["unit"][at],
        inside[:, CAP] / words,
        exact_cap,
        partial & ~exact_cap,
    ]


def _words(
    f: np.ndarray, inside: np.ndarray, words: np.ndarray, right: np.ndarray, first: np.ndarray, last: np.ndarray
) -> list[np.ndarray]:
    """What the span's own words are: question words, the question's head noun, capitals, inner clause words."""
    return [
        inside[:, QTERM] > 0,
        inside[:, QTERM] >= words,
        inside[:, HEAD] > 0,
        f[last, HEAD],
        right[:, HEAD],
        f[first, CAP],
        f[last, CAP],
        inside[:, COMMA] > 0,
        inside[:, CONJ] > 0,
        inside[:, CLAUSE] > 0,
        inside[:, STOP] / words,
        f[last, ING],
        f[last, ED],
        f[last, LY],
        f[last, PLURAL],
        f[first, ING],
        f[first, ED],
        f[first, LY],
    ]


def _sides(
    tokens: Tokens, first: np.ndarray, last: np.ndarray, left: np.ndarray, right: np.ndarray, padded: np.ndarray
) -> list[np.ndarray]:
    """The tokens on either side: delimiters, word classes, question words (the first pair of columns: the delimited
    start and end, for the whole-unit feature)."""
    n = len(tokens.lower)
    left2, right2 = padded[np.maximum(first - 1, 0)], padded[np.minimum(last + 3, n + 1)]
    left_delim = np.isin(first - 1, _positions(tokens, DELIM_LEFT))
    right_delim = np.isin(last + 1, _positions(tokens, DELIM_RIGHT))
    return [
        (first == 0) | left_delim,
        (last == n - 1) | right_delim,
        first == 0,
        left_delim,
        left[:, CAP] * (1 - left[:, STOP]),
        left[:, LOWER],
        left[:, DIGIT],
        left[:, QTERM],
        np.maximum(left[:, QTERM], left2[:, QTERM]),
        last == n - 1,
        right_delim,
        right[:, CAP] * (1 - right[:, STOP]),
        right[:, LOWER],
        right[:, DIGIT],
        right[:, QTERM],
        np.maximum(right[:, QTERM], right2[:, QTERM]),
        left[:, OPEN] * right[:, CLOSE],
    ]


def _positions(tokens: Tokens, marks: frozenset[str]) -> np.ndarray:
    return np.asarray([i for i, w in enumerate(tokens.lower) if w in marks], dtype=np.int64)


def _lexical(tokens: Tokens, first: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """One-hot of the word right before and right after the span, over `CONTEXT_WORDS`."""
    ids = np.concatenate(([-1], tokens.context, [-1]))
    vocabulary = np.arange(len(CONTEXT_WORDS))
    before = ids[first][:, None] == vocabulary
    after = ids[last + 2][:, None] == vocabulary
    return list(before.T) + list(after.T)
